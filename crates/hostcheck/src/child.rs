//! Running a probe in a throw-away child process: whatever it does to its namespaces, mounts
//! or credentials dies with it, and the parent only gets its verdict through a pipe.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe, ForkResult};

/// How long a probe may take before it is killed (an overlay mount or a setuid helper that
/// hangs must not hang `podrun system check`).
const PROBE_TIME_LIMIT: Duration = Duration::from_secs(20);

/// Runs `probe` in a forked child and returns its result. The process must be
/// single-threaded (the child runs ordinary Rust code after the fork).
pub(crate) fn run_in_child(
    probe: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        return Err(format!(
            "cannot run the probe: the process has {threads} threads (it must fork while single-threaded)"
        ));
    }
    let (read_end, write_end) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read_end);
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe))
                .unwrap_or_else(|_| Err("the probe panicked".into()));
            let message = match verdict {
                Ok(text) => format!("O{text}"),
                Err(text) => format!("E{text}"),
            };
            let _ = std::fs::File::from(write_end).write_all(message.as_bytes());
            // Leave without running the parent's exit handlers or flushing its buffers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let text = read_with_limit(read_end, PROBE_TIME_LIMIT);
            if text.is_none() {
                let _ = kill(child, Signal::SIGKILL);
            }
            let _ = waitpid(child, None);
            let text = text.ok_or_else(|| {
                format!(
                    "the probe did not finish within {} s",
                    PROBE_TIME_LIMIT.as_secs()
                )
            })?;
            match text.split_at_checked(1) {
                Some(("O", rest)) => Ok(rest.to_string()),
                Some(("E", rest)) => Err(rest.to_string()),
                _ => Err("the probe ended without a verdict".into()),
            }
        }
    }
}

/// Everything written to `fd` until it is closed, or `None` when that takes longer than
/// `limit`.
fn read_with_limit(fd: OwnedFd, limit: Duration) -> Option<String> {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut file = std::fs::File::from(fd);
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return None,
        }
        match file.read(&mut buffer) {
            Ok(0) => return Some(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}
