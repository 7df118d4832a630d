//! Attaching a terminal to a container, from the attaching side (`podrun play --wait` at a
//! terminal, like `kubectl attach -it`): frames of [`podrun_pod_model::attach`] sent to the
//! supervisor's `attach.sock`, which relays the container's terminal (see the supervisor's
//! `attach` for why it relays).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use podrun_pod_model::attach::SocketDir;
use podrun_pod_model::attach::{frame, window_frame, ATTACH, INPUT};
use podrun_pod_model::layout::ATTACH_SOCKET as SOCKET;
use podrun_pod_model::PodError;

/// Input not yet taken by the terminal, per container: beyond it the client is not read.
const INPUT_BUFFER: usize = 64 * 1024;

/// A terminal attached to a container, from the attaching side (`podrun play --wait`).
pub struct AttachClient {
    stream: UnixStream,
    /// Frames not sent yet.
    pending: Vec<u8>,
    /// The caller's input ended.
    input_done: bool,
}

impl AttachClient {
    /// Attaches to container `container` of the pod whose runtime directory is `dir`.
    pub fn connect(dir: &Path, container: &str) -> Result<AttachClient, PodError> {
        let path = dir.join(SOCKET);
        let what = format!(
            "cannot attach to container `{container}` ({})",
            path.display()
        );
        let dir_fd = SocketDir::open(dir)?;
        let mut stream =
            UnixStream::connect(dir_fd.socket_address()).map_err(PodError::io(what.clone()))?;
        stream
            .write_all(&frame(ATTACH, container.as_bytes()))
            .map_err(PodError::io(what.clone()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(PodError::io(what.clone()))?;
        let answer = read_line(&mut stream).map_err(PodError::io(what.clone()))?;
        if answer != "ok" {
            return Err(PodError::msg(format!(
                "{what}: {}",
                answer.strip_prefix("error: ").unwrap_or(&answer)
            )));
        }
        stream
            .set_nonblocking(true)
            .map_err(PodError::io(what.clone()))?;
        Ok(AttachClient {
            stream,
            pending: Vec::new(),
            input_done: false,
        })
    }

    /// Passes a window size on to the container's terminal.
    pub fn send_window(&mut self, size: &libc::winsize) {
        self.pending.extend_from_slice(&window_frame(size));
    }

    /// Relays for up to `timeout`: what `input` has goes to the terminal, what the terminal
    /// writes goes to `output`. Returns false once the attach is over (the supervisor closed
    /// it: the pod stopped). A signal ends the wait early.
    pub fn relay(&mut self, input: RawFd, output: RawFd, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.flush() || !self.copy_output(output) {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            let mut fds = vec![pollfd(self.stream.as_raw_fd(), libc::POLLIN)];
            if !self.pending.is_empty() {
                fds[0].events |= libc::POLLOUT;
            }
            if !self.input_done && self.pending.len() < INPUT_BUFFER {
                fds.push(pollfd(input, libc::POLLIN));
            }
            let millis = left.as_millis().clamp(1, 1000) as libc::c_int;
            // SAFETY: poll on descriptors we hold.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
            if ready < 0 {
                return true; // EINTR: a signal for the caller to look at.
            }
            if fds.len() > 1 && fds[1].revents != 0 {
                self.read_input(input);
            }
        }
    }

    fn read_input(&mut self, input: RawFd) {
        let mut buffer = [0u8; 4096];
        match nix::unistd::read(input, &mut buffer) {
            Ok(0) => self.input_done = true,
            Ok(n) => self.pending.extend_from_slice(&frame(INPUT, &buffer[..n])),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
            Err(_) => self.input_done = true,
        }
    }

    /// Sends the pending frames it can; false when the supervisor is gone.
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    }

    /// Copies the terminal's output that has come; false at the end of the attach.
    fn copy_output(&mut self, output: RawFd) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return false,
                Ok(n) => write_all(output, &buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Writes all of `bytes` to `fd` (the caller's terminal); gives up when it fails.
fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a buffer we own.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if nix::Error::last() != nix::Error::EINTR {
            return;
        }
    }
}

/// The supervisor's answer line, without its newline.
fn read_line(stream: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 4096 {
        match stream.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the pod's supervisor closed the connection",
        ));
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}
