//! The pod's owner (`play --owner-pid`): a pidfd inherited from `play`, which the main loop
//! polls with its other descriptors. The kernel makes it readable when the process ends,
//! however it ends; the supervisor then stops the pod as on `podrun down`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use podrun_pod_model::state::Owner;

/// The owner's pidfd as `play` passes it (see podrun-pod's `start`).
#[derive(Debug, Clone, Copy)]
pub struct OwnerFd {
    /// The inherited pidfd.
    pub fd: RawFd,
    /// The grace period of the stop the owner's end begins; `None`: the pod's.
    pub grace_period_seconds: Option<u64>,
}

/// The owner's pidfd and who it is.
pub(crate) struct OwnerWatch {
    fd: OwnedFd,
    /// `None` when the process had ended before the supervisor looked.
    pub(crate) owner: Option<Owner>,
    pub(crate) grace_period_seconds: Option<u64>,
}

impl OwnerWatch {
    /// Takes over the pidfd passed by `play`: closed on exec from here on (containers must
    /// not hold it), its pid read from `/proc/self/fdinfo`.
    pub(crate) fn adopt(passed: OwnerFd) -> Option<OwnerWatch> {
        // SAFETY: the fd was handed to us by our parent and is used only here.
        let fd = unsafe { OwnedFd::from_raw_fd(passed.fd) };
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .ok()?;
        let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .unwrap_or_default();
        let owner = pid_of(&fdinfo).map(|pid| {
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            Owner {
                pid,
                command: command.trim_end().to_string(),
            }
        });
        Some(OwnerWatch {
            fd,
            owner,
            grace_period_seconds: passed.grace_period_seconds,
        })
    }

    /// The descriptor to poll (readable once the owner ended).
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether the owner has ended.
    pub(crate) fn ended(&self) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on one valid descriptor, without waiting.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
        n > 0 && fds[0].revents != 0
    }
}

/// The `Pid:` line of a pidfd's fdinfo; `-1` (the process ended) is none.
fn pid_of(fdinfo: &str) -> Option<i32> {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("Pid:"))
        .and_then(|pid| pid.trim().parse().ok())
        .filter(|pid| *pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_of_a_pidfd() {
        assert_eq!(
            pid_of("pos:\t0\nflags:\t02000002\nPid:\t4242\nNSpid:\t4242\n"),
            Some(4242)
        );
        assert_eq!(pid_of("Pid:\t-1\n"), None);
        assert_eq!(pid_of("pos:\t0\n"), None);
    }

    #[test]
    fn a_pidfd_is_readable_once_its_process_ended() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        // The child may still carry this test thread's name until its exec is through (seen
        // when the crate's tests run in parallel): wait for it.
        let comm = format!("/proc/{}/comm", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            assert!(std::time::Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // SAFETY: pidfd_open(2) with no flags returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as i32, 0) };
        assert!(fd >= 0);
        let watch = OwnerWatch::adopt(OwnerFd {
            fd: fd as RawFd,
            grace_period_seconds: None,
        })
        .unwrap();
        assert_eq!(watch.owner.as_ref().unwrap().pid, child.id() as i32);
        assert_eq!(watch.owner.as_ref().unwrap().command, "sleep");
        assert!(!watch.ended());
        child.kill().unwrap();
        // Another test's reaping may have collected it already: the pidfd tells either way.
        let _ = child.wait();
        assert!(watch.ended());
    }
}
