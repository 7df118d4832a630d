//! Working on a running container's files from podrun (`podrun cp`): a child process that
//! joins the pod's user namespace and the container's mount namespace, connected to its
//! parent by a socket.
//!
//! Joining the mount namespace makes the container's root the child's `/`: every path the
//! child opens, and every symbolic link on the way, resolves inside the container (its
//! volumes included), never to a host path. The parent stays in the host's namespaces, so
//! what it writes on the host belongs to the invoking user.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use crate::{ensure_single_threaded, RuntimeError};

/// The container whose files the child works on.
#[derive(Debug, Clone)]
pub struct ContainerFs {
    /// A process in the pod's user namespace (the supervisor).
    pub user_namespace_of: i32,
    /// A process in the container's mount namespace (its init).
    pub mount_namespace_of: i32,
    /// The child's working directory in the container (relative paths start there); `/`
    /// when empty or missing.
    pub cwd: String,
}

/// A child working inside a container's filesystem.
pub struct InContainer {
    pid: Pid,
    /// The parent's end of the socket whose other end the child's work got.
    pub stream: UnixStream,
    errors: std::fs::File,
}

/// How the child's work failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ChildError {
    pub message: String,
    /// It failed because the parent's side went away (the work's error was a broken pipe,
    /// a reset connection or an early end of the stream): the parent's own error is the one
    /// to report.
    pub consequence: bool,
}

const EXIT_CONSEQUENCE: i32 = 3;

impl InContainer {
    /// Forks a child that joins `target`'s namespaces as the pod's root (0:0 inside) and runs
    /// `work` with its end of a socket; `work`'s error (text) is passed back to
    /// [`InContainer::finish`]. The caller must be single-threaded (no async runtime).
    pub fn spawn(
        target: &ContainerFs,
        work: impl FnOnce(UnixStream) -> std::io::Result<()>,
    ) -> Result<InContainer, RuntimeError> {
        ensure_single_threaded("InContainer::spawn")?;
        // Opened here, so that a container that has just ended is reported by the parent.
        let user_ns = open_namespace(target.user_namespace_of, "user")?;
        let mount_ns = open_namespace(target.mount_namespace_of, "mnt")?;
        let (parent_end, child_end) =
            UnixStream::pair().map_err(|e| RuntimeError::io("cannot create a socket pair", e))?;
        let (error_read, error_write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| RuntimeError::sys("cannot create a pipe", e))?;
        // SAFETY: the process is single-threaded (checked above).
        match unsafe { fork() }.map_err(|e| RuntimeError::sys("cannot fork", e))? {
            ForkResult::Child => {
                drop((parent_end, error_read));
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    enter(&user_ns, &mount_ns, &target.cwd)?;
                    work(child_end)
                }));
                let code = match outcome {
                    Ok(Ok(())) => 0,
                    Ok(Err(error)) => report(error_write, &error),
                    Err(_) => report(error_write, &std::io::Error::other("it panicked")),
                };
                // SAFETY: leave without running the parent's destructors or atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => Ok(InContainer {
                pid: child,
                stream: parent_end,
                errors: std::fs::File::from(error_read),
            }),
        }
    }

    /// Closes the parent's end of the socket, waits for the child and returns how its work
    /// ended.
    pub fn finish(mut self) -> Result<Result<(), ChildError>, RuntimeError> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let status = loop {
            match waitpid(self.pid, None) {
                Err(nix::Error::EINTR) => continue,
                other => {
                    break other.map_err(|e| RuntimeError::sys("cannot wait for the child", e))?
                }
            }
        };
        let mut message = String::new();
        let _ = self.errors.read_to_string(&mut message);
        Ok(match status {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(ChildError {
                message: if message.is_empty() {
                    format!("the child ended with code {code}")
                } else {
                    message
                },
                consequence: code == EXIT_CONSEQUENCE,
            }),
            other => Err(ChildError {
                message: format!("the child ended: {other:?}"),
                consequence: false,
            }),
        })
    }
}

fn open_namespace(pid: i32, kind: &str) -> Result<std::fs::File, RuntimeError> {
    let path = format!("/proc/{pid}/ns/{kind}");
    std::fs::File::open(&path).map_err(|e| RuntimeError::io(format!("cannot open {path}"), e))
}

/// In the child: the pod's user namespace (where the invoking user is root), then the
/// container's mount namespace, which also makes the container's root our `/`.
fn enter(user_ns: &std::fs::File, mount_ns: &std::fs::File, cwd: &str) -> std::io::Result<()> {
    let failed = |what: &str, e: nix::Error| std::io::Error::other(format!("{what}: {e}"));
    setns(user_ns.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(|e| failed("cannot join the pod's user namespace", e))?;
    setns(mount_ns.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| failed("cannot join the container's mount namespace", e))?;
    crate::exec::drop_supplementary_groups().map_err(|e| std::io::Error::other(e.to_string()))?;
    // Files are created exactly with the modes the archive gives them.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if cwd.is_empty() || std::env::set_current_dir(cwd).is_err() {
        std::env::set_current_dir("/")?;
    }
    Ok(())
}

/// Writes the child's error for the parent; returns the child's exit code.
fn report(error_write: OwnedFd, error: &std::io::Error) -> i32 {
    let _ = std::fs::File::from(error_write).write_all(error.to_string().as_bytes());
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    if matches!(error.kind(), BrokenPipe | ConnectionReset | UnexpectedEof) {
        EXIT_CONSEQUENCE
    } else {
        1
    }
}
