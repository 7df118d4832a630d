//! The pod-wide security settings the supervisor applies itself
//! ([`podrun_pod_model::plan::security::PodSecurity`]): the pod's sysctls and its fsGroup.
//! What each container may do is the runtime's business
//! ([`podrun_pod_model::plan::security::ContainerSecurity::privileges`]).

use std::path::Path;

use crate::PodError;

/// In the pod's network and IPC namespaces (before any container starts): writes the pod's sysctls.
/// /proc/sys/net and the IPC sysctls show the writer's own namespaces.
pub fn apply_sysctls(sysctls: &[(String, String)]) -> Result<(), PodError> {
    for (name, value) in sysctls {
        let path = Path::new("/proc/sys").join(name.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| {
            PodError::msg(format!(
                "sysctl `{name}={value}`: cannot write {}: {e}{}",
                path.display(),
                match e.raw_os_error() {
                    Some(libc::ENOENT) => " (this kernel has no such sysctl)",
                    Some(libc::EPERM) | Some(libc::EACCES) =>
                        " (the kernel does not let the pod's user namespace set it)",
                    Some(libc::EINVAL) => " (the kernel refuses this value)",
                    _ => "",
                }
            ))
        })?;
    }
    Ok(())
}

/// Gives a volume to `fs_group` as the kubelet's `SetVolumeOwnership`
/// does: everything under `root` group-owned by it, read-write for the group (read-only for
/// `readonly` volumes: configMap, secret, downwardAPI, projected), directories set-group-ID
/// so that new files inherit the group. Symbolic links are not followed.
pub fn apply_fs_group(root: &Path, fs_group: u32, readonly: bool) -> Result<(), PodError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let what = |path: &Path| format!("fsGroup {fs_group}: {}", path.display());
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(PodError::io(what(&path)))?;
        std::os::unix::fs::lchown(&path, None, Some(fs_group))
            .map_err(PodError::io(format!("{}: cannot chown", what(&path))))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mut mask = if readonly { 0o440 } else { 0o660 };
        if meta.is_dir() {
            mask |= 0o2110;
            for entry in std::fs::read_dir(&path).map_err(PodError::io(what(&path)))? {
                pending.push(entry.map_err(PodError::io(what(&path)))?.path());
            }
        }
        let mode = (meta.mode() & 0o7777) | mask;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(PodError::io(format!("{}: cannot chmod", what(&path))))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_group_owns_volumes_as_the_kubelet_sets_them() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), "x").unwrap();
        std::fs::set_permissions(
            root.join("sub/file"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("link")).unwrap();
        // The test may only give files to a group it belongs to.
        let gid = nix::unistd::getegid().as_raw();
        apply_fs_group(&root, gid, false).unwrap();
        let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("sub/file"), 0o660);
        assert_eq!(mode("sub") & 0o2000, 0o2000);
        assert_eq!(std::fs::metadata(root.join("sub/file")).unwrap().gid(), gid);
        apply_fs_group(&root, gid, true).unwrap();
        assert_eq!(mode("sub/file"), 0o660, "modes only gain bits");
    }
}
