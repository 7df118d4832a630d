//! The exec'd command's side of `podrun exec` while it runs: signals forwarded to it, its
//! pseudo-terminal (received from libcontainer over a console socket) copied to and from the
//! caller's stdin and stdout, and its exit status.
//!
//! Everything happens in one thread, in a `poll` loop over a self-pipe (written by the signal
//! handlers), the terminal's master side and the caller's stdin.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::exec::ExecTty;
use crate::RuntimeError;

/// Signals the caller of `podrun exec` passes on to the command.
const FORWARDED: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// At most this much of stdin is read ahead of what the terminal has taken.
const INPUT_BUFFER: usize = 64 * 1024;

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) and errno access are async-signal-safe.
        unsafe {
            let saved = *libc::__errno_location();
            let byte = signal as u8;
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Handlers for the forwarded signals, SIGCHLD and SIGWINCH that write the signal's number
/// into a pipe. Handlers rather than blocked signals: a handler is reset by `execve`, so the
/// command does not inherit it (a blocked signal mask would be inherited).
pub(crate) struct SignalPipe {
    read_end: OwnedFd,
    /// Kept open for the handler (which writes to its raw descriptor).
    _write_end: OwnedFd,
    previous: Vec<(Signal, SigAction)>,
}

impl SignalPipe {
    pub(crate) fn install() -> Result<SignalPipe, RuntimeError> {
        let (read_end, write_end) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| RuntimeError::sys("cannot create the signal pipe", e))?;
        SIGNAL_PIPE.store(write_end.as_raw_fd(), Ordering::Relaxed);
        let mut pipe = SignalPipe {
            read_end,
            _write_end: write_end,
            previous: Vec::new(),
        };
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in FORWARDED
            .into_iter()
            .chain([Signal::SIGCHLD, Signal::SIGWINCH])
        {
            // SAFETY: the handler only writes to a pipe.
            let previous = unsafe { sigaction(signal, &action) }
                .map_err(|e| RuntimeError::sys(format!("cannot handle {signal}"), e))?;
            pipe.previous.push((signal, previous));
        }
        Ok(pipe)
    }

    /// The signals received since the last call.
    fn take(&self) -> Vec<Signal> {
        let mut buffer = [0u8; 64];
        let mut signals = Vec::new();
        while let Ok(n @ 1..) = nix::unistd::read(self.read_end.as_raw_fd(), &mut buffer) {
            signals.extend(
                buffer[..n]
                    .iter()
                    .filter_map(|&b| Signal::try_from(i32::from(b)).ok()),
            );
        }
        signals
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (signal, previous) in self.previous.drain(..) {
            // SAFETY: restores the action that was there before.
            let _ = unsafe { sigaction(signal, &previous) };
        }
        SIGNAL_PIPE.store(-1, Ordering::Relaxed);
    }
}

/// The socket libcontainer sends the terminal's master side to (runc's `--console-socket`).
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on `dir/podrun-console-<pid>.sock`. It is bound by a relative name from
    /// within `dir`: the state directory's path may be longer than a socket address allows.
    pub(crate) fn bind(dir: &Path) -> Result<ConsoleSocket, RuntimeError> {
        let name = format!("podrun-console-{}.sock", std::process::id());
        let path = dir.join(&name);
        let _ = std::fs::remove_file(&path);
        let here = std::env::current_dir()
            .map_err(|e| RuntimeError::io("cannot read the working directory", e))?;
        std::env::set_current_dir(dir)
            .map_err(|e| RuntimeError::io(format!("cannot enter {}", dir.display()), e))?;
        let bound = UnixListener::bind(&name);
        let _ = std::env::set_current_dir(&here);
        let listener = bound
            .map_err(|e| RuntimeError::io(format!("cannot listen on {}", path.display()), e))?;
        Ok(ConsoleSocket { listener, path })
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Takes the master side that the process sent: libcontainer connected while it built
    /// the process, which sends the master before libcontainer's build returns.
    pub(crate) fn receive_master(self) -> Result<OwnedFd, RuntimeError> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| RuntimeError::io("cannot accept on the console socket", e))?;
        receive_fd(stream.as_raw_fd())
    }

    /// [`ConsoleSocket::receive_master`] for the exec'd process, with the caller's window
    /// size.
    pub(crate) fn receive_terminal(self, tty: &ExecTty) -> Result<Terminal, RuntimeError> {
        let master = self.receive_master()?;
        set_nonblocking(master.as_raw_fd())?;
        let terminal = Terminal {
            master: Some(master),
            input: tty.input.then_some(libc::STDIN_FILENO),
            size_from: tty.size_from,
            pending: Vec::new(),
            output_broken: false,
        };
        terminal.copy_window_size();
        Ok(terminal)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The one file descriptor of an SCM_RIGHTS message on `socket`.
fn receive_fd(socket: RawFd) -> Result<OwnedFd, RuntimeError> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = loop {
        match recvmsg::<()>(
            socket,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::Error::EINTR) => continue,
            other => break other,
        }
    }
    .map_err(|e| RuntimeError::sys("cannot receive the terminal from the container", e))?;
    let mut fds = Vec::new();
    for cmsg in message
        .cmsgs()
        .map_err(|e| RuntimeError::sys("cannot read the console socket's message", e))?
    {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            fds.extend(received);
        }
    }
    let mut fds = fds.into_iter();
    let Some(fd) = fds.next() else {
        return Err(RuntimeError::Libcontainer(
            "the process sent no terminal on the console socket".into(),
        ));
    };
    for extra in fds {
        // SAFETY: received with the message and owned by nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(extra) });
    }
    // SAFETY: received with the message and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_nonblocking(fd: RawFd) -> Result<(), RuntimeError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| RuntimeError::sys("F_GETFL", e))?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| RuntimeError::sys("F_SETFL", e))?;
    Ok(())
}

/// The exec'd command's terminal as seen from podrun: output to stdout, stdin (optionally)
/// into it.
pub(crate) struct Terminal {
    /// `None` once every slave descriptor is closed (reads fail with EIO).
    master: Option<OwnedFd>,
    /// The caller's stdin, until it ends.
    input: Option<RawFd>,
    size_from: Option<RawFd>,
    /// Read from stdin, not yet taken by the terminal.
    pending: Vec<u8>,
    /// stdout failed (e.g. the caller's terminal is gone): output is dropped from then on.
    output_broken: bool,
}

impl Terminal {
    fn copy_window_size(&self) {
        let (Some(from), Some(master)) = (self.size_from, &self.master) else {
            return;
        };
        if let Some(size) = window_size(from) {
            // SAFETY: TIOCSWINSZ reads a winsize we own.
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        }
    }

    /// The descriptors to poll, with their events.
    fn poll_fds(&self) -> Vec<libc::pollfd> {
        let mut fds = Vec::new();
        if let Some(master) = &self.master {
            let mut events = libc::POLLIN;
            if !self.pending.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(master.as_raw_fd(), events));
        }
        if let Some(input) = self.input {
            if self.pending.len() < INPUT_BUFFER {
                fds.push(pollfd(input, libc::POLLIN));
            }
        }
        fds
    }

    /// Moves what is ready: terminal output to stdout, stdin to the pending input, pending
    /// input into the terminal.
    fn pump(&mut self) {
        self.copy_output();
        self.read_input();
        self.write_input();
    }

    /// Copies what the terminal has to stdout; notes when it is closed.
    fn copy_output(&mut self) {
        let Some(master) = self.master.as_ref().map(|m| m.as_raw_fd()) else {
            return;
        };
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match nix::unistd::read(master, &mut buffer) {
                Ok(0) | Err(nix::Error::EIO) => {
                    self.master = None;
                    return;
                }
                Ok(n) => self.write_output(&buffer[..n]),
                Err(nix::Error::EINTR) => continue,
                Err(_) => return, // EAGAIN: nothing more for now.
            }
        }
    }

    fn write_output(&mut self, mut bytes: &[u8]) {
        while !self.output_broken && !bytes.is_empty() {
            // SAFETY: writes from a buffer we own to stdout.
            let n = unsafe { libc::write(libc::STDOUT_FILENO, bytes.as_ptr().cast(), bytes.len()) };
            if n > 0 {
                bytes = &bytes[n as usize..];
            } else if nix::Error::last() != nix::Error::EINTR {
                self.output_broken = true;
            }
        }
    }

    fn read_input(&mut self) {
        let Some(input) = self.input else { return };
        if self.pending.len() >= INPUT_BUFFER || !readable(input) {
            return;
        }
        let mut buffer = [0u8; 4096];
        match nix::unistd::read(input, &mut buffer) {
            Ok(0) => self.input = None,
            Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
            Err(_) => self.input = None,
        }
    }

    fn write_input(&mut self) {
        let Some(master) = &self.master else {
            self.pending.clear();
            return;
        };
        while !self.pending.is_empty() {
            match nix::unistd::write(master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(nix::Error::EINTR) => continue,
                Err(_) => return, // EAGAIN: the terminal's input queue is full.
            }
        }
    }
}

/// The window size of terminal `fd`, if it is one.
pub fn window_size(fd: RawFd) -> Option<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into a winsize we own.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0).then_some(size)
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Whether a read from `fd` would not block (stdin is left blocking: it may be shared).
fn readable(fd: RawFd) -> bool {
    let mut fds = [pollfd(fd, libc::POLLIN)];
    // SAFETY: poll on one descriptor, no waiting.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) > 0 }
}

/// Waits for the exec'd command `pid` (a child of this process) and returns its exit code,
/// 128+N when signal N killed it. Meanwhile forwards SIGTERM, SIGINT and SIGHUP to it and
/// runs its terminal, if it has one. Its last output is copied before returning. At
/// `deadline` it is SIGKILLed, reaped, and `None` is returned.
pub(crate) fn wait_for_exec(
    pid: Pid,
    signals: &SignalPipe,
    mut terminal: Option<Terminal>,
    deadline: Option<std::time::Instant>,
) -> Result<Option<i32>, RuntimeError> {
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(terminal) = &mut terminal {
                terminal.copy_output();
            }
            return Ok(Some(code));
        }
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return Ok(None);
                }
                left.as_millis().min(60_000) as libc::c_int + 1
            }
        };
        let mut fds = vec![pollfd(signals.read_end.as_raw_fd(), libc::POLLIN)];
        if let Some(terminal) = &terminal {
            fds.extend(terminal.poll_fds());
        }
        // SAFETY: poll on descriptors we hold, until the deadline if there is one.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if ready < 0 && nix::Error::last() != nix::Error::EINTR {
            return Err(RuntimeError::sys("poll", nix::Error::last()));
        }
        for signal in signals.take() {
            match signal {
                Signal::SIGWINCH => {
                    if let Some(terminal) = &terminal {
                        terminal.copy_window_size();
                    }
                }
                Signal::SIGCHLD => {} // reaped at the top of the loop
                forwarded => {
                    // ESRCH: it has just ended; the next reap sees it.
                    let _ = kill(pid, forwarded);
                }
            }
        }
        if let Some(terminal) = &mut terminal {
            terminal.pump();
        }
    }
}

/// The exit code of `pid` if it has ended (without waiting).
fn reap(pid: Pid) -> Result<Option<i32>, RuntimeError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Some(128 + signal as i32)),
            Ok(_) => return Ok(None),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys("cannot wait for the exec'd process", e)),
        }
    }
}
