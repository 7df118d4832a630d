//! The attach protocol between a terminal's client (podrun-pod's `attach`, used by `podrun
//! play --wait`) and the supervisor's server (podrun-supervisor's `attach`), like `kubectl
//! attach -it`.
//!
//! * `tty: true`: the container gets a pseudo-terminal of its own devpts as stdin, stdout and
//!   stderr (podrun-runtime receives its master over libcontainer's console socket). The
//!   supervisor holds the master and reads it all the time, whoever is attached, into the
//!   container's log (as `stdout`, as the CRI runtimes log a terminal): a terminal nobody
//!   reads would block the container once its buffer (a few KiB) is full.
//! * `stdin: true` without a terminal: stdin is a pipe whose write end the supervisor keeps,
//!   so reads block instead of ending at once (`/dev/null`, the default).
//! * `stdinOnce: true`: when the first attach ends, the container's stdin is closed until
//!   its next run: the pipe's write end is closed, a terminal is hung up (its master
//!   closed, as containerd does: the container gets SIGHUP and reads fail).
//!
//! Why the supervisor relays, rather than handing the master to the attaching process: the
//! log must get all of the output whether or not someone is attached, and a terminal has one
//! output queue, which two readers would split between them. So one process reads it, and
//! the single-threaded supervisor already polls everything of the pod. An attachment is to
//! the container, not to one run: after a restart the new run's terminal is relayed to the
//! same client.
//!
//! The endpoint is the unix socket `attach.sock` (mode 0600) in the pod's runtime
//! directory, there when a container has `stdin` and `tty`. The client sends frames (a kind
//! byte, a big-endian `u32` length, the payload): [`ATTACH`] once with the container's name,
//! then [`INPUT`] (bytes for the terminal) and [`WINDOW`] (rows and columns, two big-endian
//! `u16`). The supervisor answers `ok\n` or `error: <why>\n`, then sends the terminal's
//! output as it comes, beginning with what the run wrote before anyone attached (up to
//! the supervisor's backlog). One client at a time per container.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::layout::ATTACH_SOCKET;
use crate::PodError;

/// Frame kinds, client to supervisor.
pub const ATTACH: u8 = b'a';
pub const INPUT: u8 = b'i';
pub const WINDOW: u8 = b'w';

/// The longest frame payload.
pub const MAX_FRAME: usize = 64 * 1024;
/// One frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A [`WINDOW`] frame.
pub fn window_frame(size: &libc::winsize) -> Vec<u8> {
    let mut payload = size.ws_row.to_be_bytes().to_vec();
    payload.extend_from_slice(&size.ws_col.to_be_bytes());
    frame(WINDOW, &payload)
}

/// Takes the first whole frame off `buffer`; `Err` for a frame longer than allowed.
pub fn next_frame(buffer: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, String> {
    if buffer.len() < 5 {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
    if length > MAX_FRAME {
        return Err(format!("a frame of {length} bytes (at most {MAX_FRAME})"));
    }
    if buffer.len() < 5 + length {
        return Ok(None);
    }
    let kind = buffer[0];
    let payload = buffer[5..5 + length].to_vec();
    buffer.drain(..5 + length);
    Ok(Some((kind, payload)))
}

/// The pod's runtime directory held open, so that its attach socket is named by a short
/// path: `/proc/self/fd/N/attach.sock` (a socket address holds 107 bytes, less than a
/// runtime directory's path may take). The supervisor binds it, the client connects to it.
pub struct SocketDir(OwnedFd);

impl SocketDir {
    pub fn open(runtime_dir: &Path) -> Result<SocketDir, PodError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(runtime_dir)
            .map(|dir| SocketDir(OwnedFd::from(dir)))
            .map_err(PodError::io(format!(
                "cannot open {}",
                runtime_dir.display()
            )))
    }

    /// The socket's address while this is open.
    pub fn socket_address(&self) -> String {
        format!("/proc/self/fd/{}/{ATTACH_SOCKET}", self.0.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_bounded() {
        let mut buffer = frame(INPUT, b"ls\n");
        buffer.extend(window_frame(&libc::winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }));
        let last = buffer.pop().unwrap();
        assert_eq!(next_frame(&mut buffer), Ok(Some((INPUT, b"ls\n".to_vec()))));
        assert_eq!(next_frame(&mut buffer), Ok(None));
        buffer.push(last);
        assert_eq!(
            next_frame(&mut buffer),
            Ok(Some((WINDOW, vec![0, 40, 0, 120])))
        );
        assert!(buffer.is_empty());
        let mut huge = vec![INPUT];
        huge.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(next_frame(&mut huge).is_err());
    }
}
