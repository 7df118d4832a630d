//! `play --owner-pid PID`: the pods are taken down when process PID ends. `play` opens a
//! pidfd for it ([`open`]) and each pod's supervisor inherits it (see [`crate::start`]); the
//! supervisor polls it with everything else and stops the pod when it becomes readable,
//! which the kernel does when the process ends, however it ends (SIGKILL too). A pidfd
//! names the process itself, not its number: a pid reused by another process later changes
//! nothing.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use podrun_pod_model::state::Owner;
use podrun_pod_model::PodError;

/// What a pod's supervisor gets of its owner.
#[derive(Debug, Clone, Copy)]
pub struct OwnerLink<'a> {
    /// The owner's pidfd (see [`open`]).
    pub pidfd: BorrowedFd<'a>,
    /// The grace period of the stop its end begins (`--grace-period`); `None`: the pod's.
    pub grace_period_seconds: Option<u64>,
}

/// A pidfd for process `pid` (close-on-exec); fails, naming the pid, when there is no such
/// process.
pub fn open(pid: i32) -> Result<OwnedFd, PodError> {
    if pid <= 0 {
        return Err(PodError::msg(format!(
            "--owner-pid {pid}: not a process id"
        )));
    }
    // SAFETY: pidfd_open(2) with no flags returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return Err(PodError::msg(match error.raw_os_error() {
            Some(libc::ESRCH) => format!("--owner-pid {pid}: no such process"),
            Some(libc::ENOSYS) => format!(
                "--owner-pid {pid}: this kernel has no pidfd_open (Linux 5.3 or later is needed)"
            ),
            _ => format!("--owner-pid {pid}: cannot open a pidfd: {error}"),
        }));
    }
    // SAFETY: a descriptor just returned to us, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The owner as `ps` and `describe` show it: its pid and command name.
pub fn describe(pid: i32) -> Owner {
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Owner {
        pid,
        command: command.trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pidfd_for_a_live_process_only() {
        assert!(open(std::process::id() as i32).is_ok());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        let error = open(pid).unwrap_err().to_string();
        assert!(error.contains("no such process"), "{error}");
        assert!(open(0)
            .unwrap_err()
            .to_string()
            .contains("not a process id"));
        assert_eq!(
            describe(std::process::id() as i32).pid,
            std::process::id() as i32
        );
    }
}
