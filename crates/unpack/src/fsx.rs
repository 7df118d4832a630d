//! Small wrappers over the `*at` system calls, all relative to directory file descriptors so
//! that a name is only ever looked up inside a directory we already hold open.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use nix::unistd::{self, UnlinkatFlags};

/// Flags for holding a directory only as a lookup anchor: no read permission needed.
pub(crate) const DIR_ANCHOR: OFlag = OFlag::O_PATH.union(OFlag::O_DIRECTORY);

/// Flags for a directory we read (to list it) or change (fchmod, fsetxattr).
pub(crate) const DIR_READ: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY);

/// Set once openat2 turns out to be unavailable (old kernel, or a seccomp filter).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// `openat` returning an owned descriptor. Always close-on-exec, never follows a final symlink.
pub(crate) fn open_at(
    dir: &OwnedFd,
    name: &OsStr,
    flags: OFlag,
    mode: Mode,
) -> nix::Result<OwnedFd> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = fcntl::openat(Some(dir.as_raw_fd()), name, flags, mode)?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` (relative, no `..`) under `root` without following any symlink on the way.
/// Fails with ELOOP or ENOTDIR when a component is a symlink, ENOENT when one is missing.
pub(crate) fn open_beneath(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    if rel.as_os_str().is_empty() {
        return open_at(root, OsStr::new("."), flags, Mode::empty());
    }
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(root.as_raw_fd(), rel, flags) {
            Err(Errno::ENOSYS | Errno::EPERM) => NO_OPENAT2.store(true, Ordering::Relaxed),
            result => return result,
        }
    }
    open_by_components(root, rel, flags)
}

fn openat2_beneath(root: RawFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = fcntl::openat2(root, rel, how)?;
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The fallback for kernels without openat2: one `openat(O_NOFOLLOW)` per component.
fn open_by_components(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let names: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Errno::EINVAL),
        })
        .collect::<nix::Result<_>>()?;
    let (last, parents) = names.split_last().ok_or(Errno::EINVAL)?;
    let mut dir = open_at(root, OsStr::new("."), DIR_ANCHOR, Mode::empty())?;
    for name in parents {
        dir = open_at(&dir, name, DIR_ANCHOR, Mode::empty())?;
    }
    open_at(&dir, last, flags, Mode::empty())
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat(dir: &OwnedFd, name: &OsStr) -> nix::Result<Option<FileStat>> {
    match stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file type bits of a stat result.
pub(crate) fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Creates an empty regular file for writing; fails if anything already has the name.
pub(crate) fn create_file(dir: &OwnedFd, name: &OsStr) -> nix::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
    // 0600 until the content is written and the owner set; the final mode comes last.
    Ok(File::from(open_at(
        dir,
        name,
        flags,
        Mode::from_bits_truncate(0o600),
    )?))
}

/// Opens a directory (given by an anchor or any descriptor) for fchmod/fsetxattr.
pub(crate) fn reopen_readable(dir: &OwnedFd) -> nix::Result<File> {
    Ok(File::from(open_at(
        dir,
        OsStr::new("."),
        DIR_READ,
        Mode::empty(),
    )?))
}

pub(crate) fn mkdir(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
}

/// Removes `name` from `dir`, whatever it is; a directory is removed with its contents.
/// Never follows symlinks: a symlink is removed, not what it points to.
pub(crate) fn remove_tree(dir: &OwnedFd, name: &OsStr) -> nix::Result<()> {
    match unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {}
        other => return other,
    }
    let child = open_at(dir, name, DIR_READ, Mode::empty())?;
    for entry in list_dir(&child)? {
        remove_tree(&child, OsStr::from_bytes(entry.as_bytes()))?;
    }
    unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
}

/// The names in a directory, without `.` and `..`. Listed in full before anything is removed.
fn list_dir(dir: &OwnedFd) -> nix::Result<Vec<OsString>> {
    // Dir takes ownership of the descriptor it reads from, so give it a duplicate.
    let duplicate = dir
        .try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let mut listing = Dir::from(duplicate)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(&name).to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn open_root(dir: &Path) -> OwnedFd {
        let fd = fcntl::open(dir, DIR_ANCHOR | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        // SAFETY: open just returned this descriptor.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// Both lookup strategies (openat2, and the per-component fallback for old kernels)
    /// refuse symlinks anywhere on the path, including absolute and `..` ones.
    #[test]
    fn lookups_never_follow_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        symlink("/", tmp.path().join("a/abs")).unwrap();
        symlink("..", tmp.path().join("a/up")).unwrap();
        symlink("b", tmp.path().join("a/rel")).unwrap();
        let root = open_root(tmp.path());
        for open in [openat2_beneath_owned, open_by_components] {
            assert!(open(&root, Path::new("a/b"), DIR_ANCHOR).is_ok());
            for bad in ["a/abs", "a/abs/tmp", "a/up", "a/up/a", "a/rel"] {
                let error = open(&root, Path::new(bad), DIR_ANCHOR).unwrap_err();
                assert!(
                    matches!(error, Errno::ELOOP | Errno::ENOTDIR),
                    "{bad}: {error}"
                );
            }
            assert_eq!(
                open(&root, Path::new("a/none"), DIR_ANCHOR).unwrap_err(),
                Errno::ENOENT
            );
        }
    }

    fn openat2_beneath_owned(root: &OwnedFd, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        openat2_beneath(root.as_raw_fd(), rel, flags)
    }

    #[test]
    fn remove_tree_removes_symlinks_not_their_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = tmp.path().join("keep");
        fs::create_dir(&keep).unwrap();
        fs::write(keep.join("file"), b"kept").unwrap();
        fs::create_dir_all(tmp.path().join("tree/sub/deeper")).unwrap();
        fs::write(tmp.path().join("tree/sub/file"), b"").unwrap();
        symlink(&keep, tmp.path().join("tree/sub/link")).unwrap();
        let root = open_root(tmp.path());
        remove_tree(&root, OsStr::new("tree")).unwrap();
        assert!(!tmp.path().join("tree").exists());
        assert_eq!(fs::read(keep.join("file")).unwrap(), b"kept");
        assert_eq!(remove_tree(&root, OsStr::new("tree")), Err(Errno::ENOENT));
    }
}
