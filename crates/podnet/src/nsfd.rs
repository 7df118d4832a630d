//! Namespace files and pidfds: opening, comparing, asking for a user namespace's parent.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::PodnetError;

/// `ioctl_ns(2)`: the user namespace that owns a namespace, and a user namespace's parent.
const NS_GET_USERNS: libc::c_ulong = 0xb701;
const NS_GET_PARENT: libc::c_ulong = 0xb702;

/// Opens `/proc/PID/ns/KIND` (`pid` may be `self`).
pub(crate) fn open(pid: &str, kind: &str) -> Result<File, PodnetError> {
    let path = format!("/proc/{pid}/ns/{kind}");
    File::open(&path).map_err(PodnetError::io(format!("cannot open {path}")))
}

/// Whether two namespace files are the same namespace.
pub(crate) fn same(a: &File, b: &File) -> Result<bool, PodnetError> {
    let meta = |f: &File| {
        f.metadata()
            .map(|m| (m.dev(), m.ino()))
            .map_err(PodnetError::io("cannot stat a namespace"))
    };
    Ok(meta(a)? == meta(b)?)
}

fn ns_ioctl(ns: &File, request: libc::c_ulong, what: &str) -> Result<File, PodnetError> {
    // SAFETY: these ioctls take no argument and return a new descriptor or -1.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), request as _) };
    if fd < 0 {
        return Err(PodnetError::io(what.to_string())(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a descriptor the kernel just gave us.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The parent of user namespace `userns`.
pub(crate) fn parent(userns: &File) -> Result<File, PodnetError> {
    ns_ioctl(
        userns,
        NS_GET_PARENT,
        "cannot find the parent of a user namespace",
    )
}

/// The user namespace that owns namespace `ns`.
pub(crate) fn owner(ns: &File) -> Result<File, PodnetError> {
    ns_ioctl(ns, NS_GET_USERNS, "cannot find the owner of a namespace")
}

/// `setns(2)` into the namespace of `ns` (of type `nstype`, e.g. `CLONE_NEWNET`).
pub(crate) fn enter(ns: &File, nstype: libc::c_int, what: &str) -> Result<(), PodnetError> {
    // SAFETY: setns on a namespace descriptor.
    if unsafe { libc::setns(ns.as_raw_fd(), nstype) } != 0 {
        return Err(PodnetError::io(what.to_string())(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A pidfd of `pid` (readable once the process has ended).
pub(crate) fn pidfd(pid: u32) -> Result<OwnedFd, PodnetError> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(PodnetError::io(format!("cannot watch process {pid}"))(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a descriptor the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
