//! Finding the user's network holder, or starting it: exactly one, even when several
//! processes ask at once.
//!
//! Whoever looks for the holder takes `start.lock` (flock) first and keeps it until it has
//! connected to the holder's socket. Under it: if `holder.lock` is held (the holder takes it
//! for its whole life), the holder runs; otherwise the caller starts one and waits until it
//! says it is ready. A second caller waits on `start.lock` meanwhile, then finds the holder
//! running. The holder itself ends only under `start.lock` too ([`crate::holder`]), so it
//! never goes away between a caller's finding it and connecting.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::HolderConnection;
use crate::holder::READY_FD_ENV;
use crate::ipam::Flock;
use crate::{Paths, PodnetError};

/// How long a new holder may take to get ready (it takes tens of milliseconds).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to the user's holder, starting it first with `holder_command` (a command whose
/// process calls [`crate::holder::main`]) if none runs.
pub fn connect(
    paths: &Paths,
    holder_command: impl FnOnce() -> Command,
) -> Result<HolderConnection, PodnetError> {
    paths.create()?;
    let _start = Flock::exclusive(&paths.start_lock())?;
    if !Flock::is_held(&paths.holder_lock())? {
        spawn(paths, holder_command())?;
    }
    connect_socket(paths)
}

/// Connects to the holder if one runs; `None` if none does. Starts nothing.
pub fn connect_running(paths: &Paths) -> Result<Option<HolderConnection>, PodnetError> {
    if !paths.dir.exists() {
        return Ok(None);
    }
    let _start = Flock::exclusive(&paths.start_lock())?;
    if !Flock::is_held(&paths.holder_lock())? {
        return Ok(None);
    }
    connect_socket(paths).map(Some)
}

fn connect_socket(paths: &Paths) -> Result<HolderConnection, PodnetError> {
    let socket = paths.socket();
    let stream = UnixStream::connect(&socket).map_err(PodnetError::io(format!(
        "the network holder does not answer on {}",
        socket.display()
    )))?;
    HolderConnection::new(stream)
}

/// Starts the holder and waits for its ready line.
fn spawn(paths: &Paths, mut command: Command) -> Result<(), PodnetError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(PodnetError::sys("cannot start the network holder"))?;
    let log = std::fs::File::create(paths.log()).map_err(PodnetError::io(format!(
        "cannot create {}",
        paths.log().display()
    )))?;
    let log_err = log
        .try_clone()
        .map_err(PodnetError::io("cannot start the network holder"))?;
    let fd = write.as_raw_fd();
    command
        .env(READY_FD_ENV, fd.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: fcntl is async-signal-safe; it only clears close-on-exec of the pipe's end.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(PodnetError::io("cannot start the network holder"))?;
    drop(write);
    // The first process forks the holder and exits at once.
    let _ = child.wait();
    match read_ready(read) {
        Ok(line) if line == "ready" => Ok(()),
        Ok(line) if line.starts_with("error: ") => Err(PodnetError::HolderStart(
            line.trim_start_matches("error: ").to_string(),
        )),
        Ok(_) => {
            let log = std::fs::read_to_string(paths.log()).unwrap_or_default();
            Err(PodnetError::HolderStart(format!(
                "it ended before it was ready: {}",
                log.trim()
            )))
        }
        Err(why) => Err(PodnetError::HolderStart(why)),
    }
}

/// The first line on the ready pipe (empty at end-of-file), within [`READY_TIMEOUT`].
fn read_ready(read: OwnedFd) -> Result<String, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut file = std::fs::File::from(read);
    let mut text = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("not ready within {} s", READY_TIMEOUT.as_secs()));
        }
        let mut fds = [libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on one descriptor we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, left.as_millis().min(1000) as i32) };
        if n <= 0 {
            continue;
        }
        let mut buffer = [0u8; 512];
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                text.extend_from_slice(&buffer[..n]);
                if text.contains(&b'\n') {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = String::from_utf8_lossy(&text);
    Ok(text.lines().next().unwrap_or_default().to_string())
}
