//! The attach server: containers' `stdin`, `stdinOnce` and `tty` in the supervisor, and the
//! pod's `attach.sock`, through which a terminal is attached to a running container (`podrun
//! play --wait` at a terminal, like `kubectl attach -it`). What they mean, why the
//! supervisor relays and the protocol are described in [`podrun_pod_model::attach`]; the
//! client is podrun-pod's.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use podrun_pod_model::attach::SocketDir;
use podrun_pod_model::attach::{next_frame, ATTACH, INPUT, WINDOW};
use podrun_pod_model::layout::ATTACH_SOCKET as SOCKET;
use podrun_pod_model::plan::stdio::Stdio;
use podrun_runtime::ContainerInput;

use crate::PodError;

/// Input not yet taken by the terminal, per container: beyond it the client is not read.
const INPUT_BUFFER: usize = 64 * 1024;
/// Output a client has not taken yet: beyond it the client is too slow and is dropped (the
/// container and its log must not wait for it).
const OUTPUT_BUFFER: usize = 4 * 1024 * 1024;
/// A run's first output kept for the first client that attaches (the shell's prompt).
pub const BACKLOG: usize = 4 * 1024;
/// Bytes read from one terminal per round of the supervisor's loop.
const ROUND_BUDGET: usize = 256 * 1024;

fn set_nonblocking(fd: RawFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

fn set_window(master: RawFd, size: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    unsafe { libc::ioctl(master, libc::TIOCSWINSZ, size) };
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// One container's stdin and terminal, in the supervisor.
#[derive(Debug)]
struct Console {
    name: String,
    stdio: Stdio,
    /// The running run's terminal.
    master: Option<OwnedFd>,
    /// The write end of the running run's stdin pipe (`stdin` without `tty`).
    stdin_pipe: Option<OwnedFd>,
    /// Input from the client, not yet taken by the terminal.
    input: Vec<u8>,
    /// The run's first output, while nobody has attached during it.
    backlog: Option<Vec<u8>>,
    /// The last window size a client gave, for this run's terminal and the next ones'.
    window: Option<libc::winsize>,
    /// The client attached, by its index in [`Attachments::clients`].
    client: Option<usize>,
    /// `stdinOnce`: closed for the rest of this run.
    stdin_closed: bool,
}

/// A connection to the attach endpoint.
#[derive(Debug)]
struct Client {
    stream: UnixStream,
    /// What it sent that is not a whole frame yet.
    received: Vec<u8>,
    /// Output it has not taken yet.
    output: Vec<u8>,
    /// The container it is attached to.
    console: Option<usize>,
    /// Refused or gone: dropped once `output` is sent (or cannot be).
    closing: bool,
}

/// The pod's consoles and its attach endpoint (see the module docs).
pub(crate) struct Attachments {
    listener: Option<UnixListener>,
    consoles: Vec<Console>,
    clients: Vec<Client>,
}

impl Attachments {
    /// One console per container, in the supervisor's order; the endpoint in `dir` if a
    /// container can be attached to.
    pub(crate) fn new(
        dir: &Path,
        containers: impl IntoIterator<Item = (String, Stdio)>,
    ) -> Result<Attachments, PodError> {
        let consoles: Vec<Console> = containers
            .into_iter()
            .map(|(name, stdio)| Console {
                name,
                stdio,
                master: None,
                stdin_pipe: None,
                input: Vec::new(),
                backlog: None,
                window: None,
                client: None,
                stdin_closed: false,
            })
            .collect();
        let listener = if consoles.iter().any(|c| c.stdio.attachable()) {
            Some(listen(dir)?)
        } else {
            None
        };
        Ok(Attachments {
            listener,
            consoles,
            clients: Vec::new(),
        })
    }

    /// The stdin of the container's next run.
    pub(crate) fn new_run(&mut self, index: usize) -> Result<ContainerInput, PodError> {
        let console = &mut self.consoles[index];
        console.master = None;
        console.stdin_pipe = None;
        console.stdin_closed = false;
        console.input.clear();
        if console.stdio.tty {
            return Ok(ContainerInput::Terminal);
        }
        if !console.stdio.stdin {
            return Ok(ContainerInput::Null);
        }
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| PodError::msg(format!("cannot create a stdin pipe: {e}")))?;
        console.stdin_pipe = Some(write_end);
        Ok(ContainerInput::Pipe(read_end))
    }

    /// The run has started; `terminal` is its master, if it has a terminal.
    pub(crate) fn started(&mut self, index: usize, terminal: Option<OwnedFd>) {
        let console = &mut self.consoles[index];
        if let Some(master) = &terminal {
            set_nonblocking(master.as_raw_fd());
            if let Some(size) = &console.window {
                set_window(master.as_raw_fd(), size);
            }
        }
        console.master = terminal;
        console.backlog = console.client.is_none().then(Vec::new);
    }

    /// The run has ended: its terminal's last output is recorded with `record`, and its
    /// stdin and terminal are closed.
    pub(crate) fn ended(&mut self, index: usize, record: &mut impl FnMut(usize, &[u8])) {
        self.read_terminal(index, usize::MAX, record);
        let console = &mut self.consoles[index];
        console.master = None;
        console.stdin_pipe = None;
        console.backlog = None;
        console.input.clear();
    }

    /// The descriptors to poll, with their events.
    pub(crate) fn poll_fds(&self) -> Vec<libc::pollfd> {
        let mut fds = Vec::new();
        if let Some(listener) = &self.listener {
            fds.push(pollfd(listener.as_raw_fd(), libc::POLLIN));
        }
        for console in &self.consoles {
            if let Some(master) = &console.master {
                let mut events = libc::POLLIN;
                if !console.input.is_empty() {
                    events |= libc::POLLOUT;
                }
                fds.push(pollfd(master.as_raw_fd(), events));
            }
        }
        for client in &self.clients {
            let full = client
                .console
                .is_some_and(|i| self.consoles[i].input.len() >= INPUT_BUFFER);
            let mut events = if full || client.closing {
                0
            } else {
                libc::POLLIN
            };
            if !client.output.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(client.stream.as_raw_fd(), events));
        }
        fds
    }

    /// Moves what is ready: new clients in, clients' frames to the terminals, terminals'
    /// output to `record` (the log) and to the clients.
    pub(crate) fn pump(&mut self, record: &mut impl FnMut(usize, &[u8])) {
        self.accept();
        for index in 0..self.clients.len() {
            self.read_client(index);
        }
        for index in 0..self.consoles.len() {
            self.write_terminal(index);
            self.read_terminal(index, ROUND_BUDGET, record);
            self.hang_up_if_closed(index, record);
        }
        for client in &mut self.clients {
            flush(client);
        }
        self.drop_closed_clients();
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    received: Vec::new(),
                    output: Vec::new(),
                    console: None,
                    closing: false,
                });
            }
        }
    }

    fn read_client(&mut self, index: usize) {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let client = &mut self.clients[index];
            if client.closing {
                return;
            }
            if let Some(console) = client.console {
                if self.consoles[console].input.len() >= INPUT_BUFFER {
                    return;
                }
            }
            match client.stream.read(&mut buffer) {
                Ok(0) => return self.detach(index),
                Ok(n) => client.received.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => return self.detach(index),
            }
            loop {
                match next_frame(&mut self.clients[index].received) {
                    Ok(Some((kind, payload))) => self.handle_frame(index, kind, &payload),
                    Ok(None) => break,
                    Err(e) => return self.refuse(index, &e),
                }
            }
        }
    }

    fn handle_frame(&mut self, index: usize, kind: u8, payload: &[u8]) {
        let attached = self.clients[index].console;
        match (kind, attached) {
            (ATTACH, None) => self.attach(index, &String::from_utf8_lossy(payload)),
            (INPUT, Some(console)) => {
                let console = &mut self.consoles[console];
                // Between runs, or with stdin closed (stdinOnce), input goes nowhere.
                if console.master.is_some() && !console.stdin_closed {
                    console.input.extend_from_slice(payload);
                }
            }
            (WINDOW, Some(console)) if payload.len() == 4 => {
                let size = libc::winsize {
                    ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                    ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let console = &mut self.consoles[console];
                if let Some(master) = &console.master {
                    set_window(master.as_raw_fd(), &size);
                }
                console.window = Some(size);
            }
            _ => self.refuse(index, &format!("unexpected frame {kind:#x}")),
        }
    }

    fn attach(&mut self, index: usize, name: &str) {
        let Some(console) = self.consoles.iter().position(|c| c.name == name) else {
            return self.refuse(index, &format!("no container `{name}` in this pod"));
        };
        let target = &mut self.consoles[console];
        if !target.stdio.attachable() {
            return self.refuse(
                index,
                &format!("container `{name}` has no terminal with stdin (it needs tty: true and stdin: true)"),
            );
        }
        if target.client.is_some() {
            return self.refuse(
                index,
                &format!("another client is attached to container `{name}`"),
            );
        }
        target.client = Some(index);
        let backlog = target.backlog.take().unwrap_or_default();
        let client = &mut self.clients[index];
        client.console = Some(console);
        client.output.extend_from_slice(b"ok\n");
        client.output.extend_from_slice(&backlog);
    }

    fn refuse(&mut self, index: usize, why: &str) {
        let client = &mut self.clients[index];
        if client.console.is_some() {
            return self.detach(index);
        }
        client.output = format!("error: {why}\n").into_bytes();
        client.closing = true;
    }

    /// The client is gone: the first attach of a `stdinOnce` container's run closes its
    /// stdin.
    fn detach(&mut self, index: usize) {
        let client = &mut self.clients[index];
        client.closing = true;
        client.output.clear();
        let Some(console) = client.console.take() else {
            return;
        };
        let console = &mut self.consoles[console];
        console.client = None;
        if console.stdio.stdin_once && !console.stdin_closed {
            tracing::info!(container = %console.name, "stdinOnce: the first attach ended, closing stdin");
            console.stdin_closed = true;
            console.stdin_pipe = None;
            console.input.clear();
        }
    }

    /// A terminal whose stdin is closed (`stdinOnce`) is hung up once what it wrote so far
    /// is recorded.
    fn hang_up_if_closed(&mut self, index: usize, record: &mut impl FnMut(usize, &[u8])) {
        let console = &self.consoles[index];
        if console.stdin_closed && console.stdio.tty && console.master.is_some() {
            self.read_terminal(index, usize::MAX, record);
            self.consoles[index].master = None;
        }
    }

    fn write_terminal(&mut self, index: usize) {
        let console = &mut self.consoles[index];
        let Some(master) = &console.master else {
            return;
        };
        while !console.input.is_empty() {
            match nix::unistd::write(master.as_fd(), &console.input) {
                Ok(n) => {
                    console.input.drain(..n);
                }
                Err(nix::Error::EINTR) => continue,
                Err(_) => return, // EAGAIN: its input queue is full.
            }
        }
    }

    /// Reads up to `budget` bytes of the terminal's output.
    fn read_terminal(
        &mut self,
        index: usize,
        budget: usize,
        record: &mut impl FnMut(usize, &[u8]),
    ) {
        let mut buffer = [0u8; 16 * 1024];
        let mut total = 0;
        while total < budget {
            let console = &mut self.consoles[index];
            let Some(master) = &console.master else {
                return;
            };
            let n = match nix::unistd::read(master.as_raw_fd(), &mut buffer) {
                // EIO: every slave descriptor is closed (the run ended).
                Ok(0) | Err(nix::Error::EIO) => {
                    console.master = None;
                    return;
                }
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            };
            total += n;
            let output = &buffer[..n];
            record(index, output);
            if let Some(backlog) = &mut console.backlog {
                let room = BACKLOG.saturating_sub(backlog.len());
                backlog.extend_from_slice(&output[..n.min(room)]);
            }
            if let Some(client) = console.client {
                let client = &mut self.clients[client];
                client.output.extend_from_slice(output);
                if client.output.len() > OUTPUT_BUFFER {
                    tracing::warn!(container = %self.consoles[index].name, "the attached client does not read: dropped");
                    self.detach(self.consoles[index].client.unwrap_or_default());
                }
            }
        }
    }

    fn drop_closed_clients(&mut self) {
        let mut index = 0;
        while index < self.clients.len() {
            let client = &self.clients[index];
            if !(client.closing && client.output.is_empty()) {
                index += 1;
                continue;
            }
            self.clients.remove(index);
            for console in &mut self.consoles {
                if let Some(attached) = &mut console.client {
                    if *attached > index {
                        *attached -= 1;
                    }
                }
            }
        }
    }
}

/// Sends what it can of the client's output; a client that cannot take it is closing.
fn flush(client: &mut Client) {
    while !client.output.is_empty() {
        match client.stream.write(&client.output) {
            Ok(n) => {
                client.output.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(_) => {
                // EPIPE (SIGPIPE is handled by the supervisor): gone.
                client.output.clear();
                client.closing = true;
                return;
            }
        }
    }
}

/// Listens on `dir/attach.sock`, mode 0600, non-blocking.
fn listen(dir: &Path) -> Result<UnixListener, PodError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let dir_fd = SocketDir::open(dir)?;
    let listener = UnixListener::bind(dir_fd.socket_address())
        .map_err(PodError::io(format!("cannot listen on {}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(PodError::io(format!("cannot chmod {}", path.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(PodError::io(format!("cannot listen on {}", path.display())))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::openpty;
    use podrun_pod_model::attach::{frame, window_frame};
    use std::time::{Duration, Instant};

    /// The client's side, as podrun-pod's attach client does it: the attach frame, the
    /// answer line, then frames in and the terminal's output back.
    struct TestClient {
        stream: UnixStream,
    }

    impl TestClient {
        fn connect(dir: &Path, container: &str) -> Result<TestClient, String> {
            let dir_fd = SocketDir::open(dir).map_err(|e| e.to_string())?;
            let mut stream =
                UnixStream::connect(dir_fd.socket_address()).map_err(|e| e.to_string())?;
            stream
                .write_all(&frame(ATTACH, container.as_bytes()))
                .map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while stream.read(&mut byte).map_err(|e| e.to_string())? == 1 && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            let answer = String::from_utf8_lossy(&line).into_owned();
            if answer != "ok" {
                return Err(answer);
            }
            Ok(TestClient { stream })
        }

        fn send(&mut self, frame: &[u8]) {
            self.stream.write_all(frame).unwrap();
        }

        /// Copies the terminal's output to `out` until the supervisor's side closes.
        fn copy_output(mut self, out: OwnedFd) {
            let mut out = std::fs::File::from(out);
            let mut buffer = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = self.stream.read(&mut buffer) {
                out.write_all(&buffer[..n]).unwrap();
            }
        }
    }

    fn stdio(stdin: bool, stdin_once: bool, tty: bool) -> Stdio {
        Stdio {
            stdin,
            stdin_once,
            tty,
        }
    }

    /// Attachments for one container `c`, its run started with a terminal; returns the
    /// slave side as the container's end.
    fn with_terminal(dir: &Path, stdio: Stdio) -> (Attachments, OwnedFd) {
        let mut attach = Attachments::new(dir, [("c".to_string(), stdio)]).unwrap();
        assert!(attach.new_run(0).unwrap().is_terminal());
        let pty = openpty(None, None).unwrap();
        attach.started(0, Some(pty.master));
        (attach, pty.slave)
    }

    /// Pumps `attach` until `done` holds (at most 10 s); the log's records are collected.
    fn pump_until(
        attach: &mut Attachments,
        log: &mut Vec<u8>,
        mut done: impl FnMut(&Attachments, &[u8]) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(attach, log) {
            assert!(Instant::now() < deadline, "timed out");
            let mut fds = attach.poll_fds();
            // SAFETY: poll on descriptors `attach` holds.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 20) };
            attach.pump(&mut |_, output: &[u8]| log.extend_from_slice(output));
        }
    }

    fn raw(fd: &OwnedFd) {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let mut mode = tcgetattr(fd).unwrap();
        cfmakeraw(&mut mode);
        tcsetattr(fd, SetArg::TCSANOW, &mode).unwrap();
    }

    #[test]
    fn stdin_without_a_terminal_is_a_pipe_kept_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut attach = Attachments::new(
            dir.path(),
            [
                ("in".to_string(), stdio(true, false, false)),
                ("null".to_string(), stdio(false, false, false)),
            ],
        )
        .unwrap();
        // Nothing to attach to: no endpoint.
        assert!(!dir.path().join(SOCKET).exists());
        assert!(matches!(attach.new_run(1).unwrap(), ContainerInput::Null));
        let ContainerInput::Pipe(read_end) = attach.new_run(0).unwrap() else {
            panic!("no pipe");
        };
        set_nonblocking(read_end.as_raw_fd());
        let mut buffer = [0u8; 8];
        // Open, empty: a read would block (EAGAIN here), not end.
        assert_eq!(
            nix::unistd::read(read_end.as_raw_fd(), &mut buffer),
            Err(nix::Error::EAGAIN)
        );
        attach.ended(0, &mut |_, _: &[u8]| {});
        assert_eq!(nix::unistd::read(read_end.as_raw_fd(), &mut buffer), Ok(0));
    }

    #[test]
    fn a_terminal_is_logged_with_nobody_attached_and_relayed_to_who_attaches() {
        let dir = tempfile::tempdir().unwrap();
        let (mut attach, slave) = with_terminal(dir.path(), stdio(true, false, true));
        raw(&slave);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SOCKET))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Far more than a terminal buffers: nobody attached, yet the writer never blocks.
        let line = [b'x'; 1023];
        let mut log = Vec::new();
        for _ in 0..256 {
            nix::unistd::write(&slave, b"/ # ").unwrap();
            nix::unistd::write(&slave, &line).unwrap();
            attach.pump(&mut |_, output: &[u8]| log.extend_from_slice(output));
        }
        pump_until(&mut attach, &mut log, |_, log| log.len() >= 256 * 1027);
        assert!(log.starts_with(b"/ # xxx"));

        let client_dir = dir.path().to_path_buf();
        let (out_read, out_write) = nix::unistd::pipe().unwrap();
        let client = std::thread::spawn(move || {
            let mut client = TestClient::connect(&client_dir, "c").unwrap();
            client.send(&window_frame(&libc::winsize {
                ws_row: 33,
                ws_col: 99,
                ws_xpixel: 0,
                ws_ypixel: 0,
            }));
            client.send(&frame(INPUT, b"typed\n"));
            client.copy_output(out_write);
        });
        // The run's first output (the backlog) comes first, then what follows.
        let mut relayed = Vec::new();
        let mut typed = Vec::new();
        set_nonblocking(out_read.as_raw_fd());
        set_nonblocking(slave.as_raw_fd());
        let mut buffer = [0u8; 65536];
        pump_until(&mut attach, &mut log, |_, _| {
            if let Ok(n) = nix::unistd::read(slave.as_raw_fd(), &mut buffer) {
                typed.extend_from_slice(&buffer[..n]);
                if typed == b"typed\n" {
                    nix::unistd::write(&slave, b"after\n").unwrap();
                }
            }
            if let Ok(n) = nix::unistd::read(out_read.as_raw_fd(), &mut buffer) {
                relayed.extend_from_slice(&buffer[..n]);
            }
            relayed.ends_with(b"after\n")
        });
        assert_eq!(&relayed[..BACKLOG], &log[..BACKLOG]);
        assert!(relayed.starts_with(b"/ # xxx"));
        let size = podrun_runtime_window(&slave);
        assert_eq!((size.ws_row, size.ws_col), (33, 99));
        // A second client is refused while the first is attached.
        let second_dir = dir.path().to_path_buf();
        let second = std::thread::spawn(move || TestClient::connect(&second_dir, "c").err());
        pump_until(&mut attach, &mut log, |_, _| second.is_finished());
        let refused = second.join().unwrap().expect("refused").to_string();
        assert!(refused.contains("another client is attached"), "{refused}");
        // The run ends: the client's attach stays (for the next run), the terminal goes.
        drop(slave);
        attach.ended(0, &mut |_, output: &[u8]| log.extend_from_slice(output));
        assert!(attach.consoles[0].master.is_none());
        assert!(attach.consoles[0].client.is_some());
        drop(attach);
        client.join().unwrap();
    }

    fn podrun_runtime_window(fd: &OwnedFd) -> libc::winsize {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes into a winsize we own.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        size
    }

    #[test]
    fn stdin_once_hangs_up_the_terminal_when_the_first_attach_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut attach, slave) = with_terminal(dir.path(), stdio(true, true, true));
        let mut log = Vec::new();
        // Open until someone attaches.
        attach.pump(&mut |_, output: &[u8]| log.extend_from_slice(output));
        assert!(attach.consoles[0].master.is_some());
        nix::unistd::write(&slave, b"bye\n").unwrap();
        let client_dir = dir.path().to_path_buf();
        let client = std::thread::spawn(move || TestClient::connect(&client_dir, "c").map(drop));
        pump_until(&mut attach, &mut log, |_, _| client.is_finished());
        client.join().unwrap().unwrap();
        pump_until(&mut attach, &mut log, |attach, _| {
            attach.consoles[0].master.is_none()
        });
        // What it wrote before is in the log; then its terminal is hung up.
        assert_eq!(log, b"bye\r\n");
        let mut buffer = [0u8; 8];
        assert!(matches!(
            nix::unistd::read(slave.as_raw_fd(), &mut buffer),
            Ok(0) | Err(nix::Error::EIO)
        ));
    }

    #[test]
    fn only_a_terminal_with_stdin_can_be_attached() {
        let dir = tempfile::tempdir().unwrap();
        let mut attach = Attachments::new(
            dir.path(),
            [
                ("sh".to_string(), stdio(true, false, true)),
                ("out".to_string(), stdio(false, false, true)),
            ],
        )
        .unwrap();
        let mut log = Vec::new();
        for (name, why) in [
            ("out", "container `out` has no terminal with stdin"),
            ("nope", "no container `nope` in this pod"),
        ] {
            let client_dir = dir.path().to_path_buf();
            let client = std::thread::spawn(move || TestClient::connect(&client_dir, name).err());
            pump_until(&mut attach, &mut log, |_, _| client.is_finished());
            let error = client.join().unwrap().expect("refused").to_string();
            assert!(error.contains(why), "{error}");
        }
        assert!(attach.clients.is_empty());
    }
}
