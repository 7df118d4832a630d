//! The pod's volumes at run time (what each kind is and where it lives:
//! [`podrun_pod_model::plan::volumes`]): the supervisor creates the emptyDir directories and
//! the `...OrCreate` host paths, mounts the memory-backed emptyDirs, writes the files of the
//! configMap, secret, downwardAPI and projected volumes, makes the named volumes of the
//! persistentVolumeClaims on first use, and resolves each mount's `subPath` inside its
//! volume before a container starts.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use podrun_pod_model::plan::volumes::{
    check_host_path, FileVolume, HostPathVolume, MemoryVolume, MountPlan, PodVolumes,
};

use crate::PodError;

/// An emptyDir with `medium: Memory`: one tmpfs for the whole pod at `path`, `sizeLimit`
/// its size, `mode` its `emptyDir.mode` (else tmpfs's 1777, as the kubelet leaves it).
pub fn mount_memory_volume(
    path: &Path,
    volume: &MemoryVolume,
    mode: Option<u32>,
) -> Result<(), PodError> {
    use nix::mount::{mount, MsFlags};
    let mut options = format!("mode={:o}", mode.unwrap_or(0o1777));
    if let Some(size) = volume.size_limit {
        options.push_str(&format!(",size={size}"));
    }
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| {
        PodError::msg(format!(
            "volume `{}`: cannot mount a tmpfs (medium: Memory): {e}",
            volume.name
        ))
    })
}

/// Unmounts a memory-backed emptyDir's tmpfs (at the pod's end); best effort.
pub fn unmount_memory_volume(path: &Path) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
}

/// Creates the `...OrCreate` host paths, writes the files of the configMap, secret,
/// downwardAPI and projected volumes, and makes the claims' volumes that do not exist yet
/// (mode 0777 and owned by the supervisor, root of the pod's user namespace, as emptyDirs).
pub fn prepare(volumes: &PodVolumes) -> Result<(), PodError> {
    for claim in &volumes.claims {
        podrun_pod_model::claims::ensure(&claim.dir, claim.meta.as_ref()).map_err(|e| {
            PodError::msg(format!(
                "volume `{}`: PersistentVolumeClaim `{}`: {e}",
                claim.name, claim.claim
            ))
        })?;
    }
    for host in &volumes.host_paths {
        create_host_path(host)?;
    }
    for volume in &volumes.files {
        write_files(volume)?;
    }
    Ok(())
}

fn create_host_path(host: &HostPathVolume) -> Result<(), PodError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let what = format!("volume `{}`: hostPath `{}`", host.name, host.path.display());
    match host.kind.as_str() {
        // No type: like containerd, make a missing directory rather than fail.
        "" | "DirectoryOrCreate" if !host.path.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&host.path)
            .map_err(PodError::io(format!("{what}: cannot create the directory"))),
        "FileOrCreate" if !host.path.exists() => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&host.path)
            .map(drop)
            .map_err(PodError::io(format!("{what}: cannot create the file"))),
        kind => {
            check_host_path(&host.path, kind).map_err(|e| PodError::msg(format!("{what}: {e}")))
        }
    }
}

fn write_files(volume: &FileVolume) -> Result<(), PodError> {
    use std::os::unix::fs::PermissionsExt;
    let what = format!("volume `{}`", volume.name);
    std::fs::create_dir_all(&volume.dir).map_err(PodError::io(format!(
        "{what}: cannot create {}",
        volume.dir.display()
    )))?;
    for file in &volume.files {
        let path = volume.dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(PodError::io(format!(
                "{what}: cannot create {}",
                parent.display()
            )))?;
        }
        std::fs::write(&path, &file.data).map_err(PodError::io(format!(
            "{what}: cannot write {}",
            path.display()
        )))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode)).map_err(
            PodError::io(format!("{what}: cannot chmod {}", path.display())),
        )?;
    }
    Ok(())
}

/// Before a container starts: the host path to bind-mount for `mount`.
/// A `subPath` is resolved inside the volume with openat2(RESOLVE_BENEATH), so a symlink
/// that a container planted in a shared volume cannot lead the mount outside it; missing
/// directories on the way are created (as the kubelet does). The resolved path is then
/// mounted by path: a container that swaps a directory for a symlink in between could still
/// win that race, which gains nothing in a rootless pod (the user owns both sides).
pub fn mount_source(mount: &MountPlan) -> Result<PathBuf, String> {
    let Some(sub) = &mount.sub_path else {
        return Ok(mount.volume_path.clone());
    };
    let what = format!("volume `{}`: subPath `{sub}`", mount.volume);
    let root = open_path(None, &mount.volume_path, OFlag::O_DIRECTORY)
        .map_err(|e| format!("{what}: cannot open {}: {e}", mount.volume_path.display()))?;
    let found = match open_beneath(&root, Path::new(sub)) {
        Err(Errno::ENOENT) => create_beneath(&root, sub, mount.create_mode())
            .and_then(|()| open_beneath(&root, Path::new(sub))),
        other => other,
    };
    let fd = found.map_err(|e| match e {
        Errno::EXDEV | Errno::ELOOP => format!("{what}: leads outside the volume (a symlink)"),
        e => format!("{what}: {e}"),
    })?;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| format!("{what}: cannot resolve: {e}"))
}

fn open_path(dir: Option<&OwnedFd>, path: &Path, extra: OFlag) -> nix::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let fd = nix::fcntl::openat(
        Some(dirfd),
        path,
        OFlag::O_PATH | OFlag::O_CLOEXEC | extra,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` under `root`, following symlinks only while they stay beneath it.
fn open_beneath(root: &OwnedFd, rel: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(root.as_raw_fd(), rel, how)?;
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates the missing directories of `sub` under `root`, one component at a time, each
/// looked up beneath the root.
fn create_beneath(root: &OwnedFd, sub: &str, mode: u32) -> nix::Result<()> {
    let mut done = PathBuf::new();
    for component in Path::new(sub).components() {
        done.push(component);
        match open_beneath(root, &done) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = match done.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => open_beneath(root, parent)?,
            None => open_path(Some(root), Path::new("."), OFlag::O_DIRECTORY)?,
        };
        let name = done.file_name().expect("a normal component");
        match nix::sys::stat::mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        // mkdirat obeys the umask; the mode must be exact.
        let dir = open_beneath(root, &done)?;
        let _ = std::fs::set_permissions(
            format!("/proc/self/fd/{}", dir.as_raw_fd()),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(volume_path: &Path, sub: &str) -> MountPlan {
        MountPlan {
            volume: "v".into(),
            volume_path: volume_path.to_path_buf(),
            sub_path: Some(sub.into()),
            destination: "/x".into(),
            readonly: false,
        }
    }

    #[test]
    fn sub_paths_stay_inside_their_volume() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("volumes/v");
        std::fs::create_dir_all(volume.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc", volume.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", volume.join("up")).unwrap();
        std::os::unix::fs::symlink("a", volume.join("inside")).unwrap();
        assert_eq!(
            mount_source(&mount(&volume, "a")).unwrap(),
            volume.join("a")
        );
        assert_eq!(
            mount_source(&mount(&volume, "inside")).unwrap(),
            volume.join("a")
        );
        for escaping in ["abs", "up", "abs/passwd", "up/x/y"] {
            let e = mount_source(&mount(&volume, escaping)).unwrap_err();
            assert!(e.contains("leads outside the volume"), "{escaping}: {e}");
        }
        let made = mount_source(&mount(&volume, "new/deeper")).unwrap();
        assert_eq!(made, volume.join("new/deeper"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o777);
    }
}
