//! Published ports and node ports when the way out cannot add host forwards while it runs
//! (pasta, see [`crate::uplink`]): the holder listens on the host's ports itself and relays
//! each connection (TCP) or datagram flow (UDP) into its namespace, as podman's
//! rootlessport does for pasta.
//!
//! A socket belongs to the network namespace its creator was in when it made it, whatever
//! thread or namespace uses it later. So the holder leaves one thread behind in the host's
//! network namespace when it unshares its own ([`HostSide::start`]: `unshare` of a network
//! namespace changes the calling thread only); that thread binds the host's ports on
//! request, and the relays, made in the holder's namespace, accept on them and connect to
//! the pod.
//!
//! Stopping a relay (its pod detached, its Service gone) shuts its listening socket down:
//! the kernel wakes the accepting thread, which ends and closes it, so the host port is free
//! at once; connections already made go on until either side closes, as with slirp4netns.

use std::collections::hash_map::{Entry, HashMap};
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use podrun_network::{PortMapping, Protocol};

/// How long a relay waits for a pod to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A UDP flow with no datagram either way for this long is forgotten (conntrack's 30 s for
/// an unanswered flow, 120 s for an answered one: the middle).
const UDP_IDLE: Duration = Duration::from_secs(60);
/// How often a UDP relay's threads look whether they should stop: the most a stop waits.
const UDP_TICK: Duration = Duration::from_millis(100);
/// The relays' threads copy with small buffers: small stacks do.
const STACK: usize = 128 * 1024;

/// A socket bound on the host's side.
enum HostSocket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

type BindRequest = (SocketAddrV4, Protocol, mpsc::Sender<io::Result<HostSocket>>);

/// The thread left in the host's network namespace, which binds the host's ports.
pub struct HostSide {
    requests: Mutex<mpsc::Sender<BindRequest>>,
}

impl HostSide {
    /// Starts the thread: call in the host's network namespace, before the holder unshares
    /// its own (the thread stays where it was made).
    pub fn start() -> io::Result<HostSide> {
        let (requests, incoming) = mpsc::channel::<BindRequest>();
        std::thread::Builder::new()
            .name("host-ports".into())
            .stack_size(STACK)
            .spawn(move || {
                for (address, protocol, reply) in incoming {
                    let _ = reply.send(bind_reusable(address, protocol));
                }
            })?;
        Ok(HostSide {
            requests: Mutex::new(requests),
        })
    }

    fn bind(&self, address: SocketAddrV4, protocol: Protocol) -> io::Result<HostSocket> {
        let (reply, answer) = mpsc::channel();
        let sent = self
            .requests
            .lock()
            .map_err(|_| io::Error::other("the host-ports thread is gone"))?
            .send((address, protocol, reply));
        sent.map_err(|_| io::Error::other("the host-ports thread is gone"))?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the host-ports thread is gone"))?
    }

    /// Listens on `mapping`'s host address and port and relays to `to`, the container port
    /// at address `to` in the holder's namespace.
    pub fn relay(&self, mapping: &PortMapping, to: Ipv4Addr) -> io::Result<Relay> {
        let host = SocketAddrV4::new(mapping.host_ip, mapping.host_port);
        let target = SocketAddrV4::new(to, mapping.container_port);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let socket = match self.bind(host, mapping.protocol)? {
            HostSocket::Tcp(listener) => {
                let listener = Arc::new(listener);
                let shared = listener.clone();
                let thread = spawn("relay-tcp", move || accept_loop(&shared, target, &flag))?;
                (Shared::Tcp(listener), thread)
            }
            HostSocket::Udp(socket) => {
                socket.set_read_timeout(Some(UDP_TICK))?;
                let socket = Arc::new(socket);
                let shared = socket.clone();
                let thread = spawn("relay-udp", move || udp_loop(&shared, target, &flag))?;
                (Shared::Udp(socket), thread)
            }
        };
        let (socket, thread) = socket;
        Ok(Relay {
            socket,
            stop,
            thread: Some(thread),
        })
    }
}

/// The host socket, shared by the relay and its thread (closed when both let it go).
#[derive(Debug)]
enum Shared {
    Tcp(Arc<TcpListener>),
    Udp(Arc<UdpSocket>),
}

/// Binds with `SO_REUSEADDR`, as libslirp does: `play` may still hold the port's reservation
/// (`podrun_network::reserve_free_ports`, a `SO_REUSEADDR` socket that never listens), which
/// only a socket with the option may share.
fn bind_reusable(address: SocketAddrV4, protocol: Protocol) -> io::Result<HostSocket> {
    use socket2::{Domain, Socket, Type};
    let kind = match protocol {
        Protocol::Tcp => Type::STREAM,
        Protocol::Udp => Type::DGRAM,
    };
    let socket = Socket::new(Domain::IPV4, kind, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::V4(address).into())?;
    Ok(match protocol {
        Protocol::Tcp => {
            socket.listen(128)?;
            HostSocket::Tcp(socket.into())
        }
        Protocol::Udp => HostSocket::Udp(socket.into()),
    })
}

/// One published port relayed by the holder; stopped when dropped, and its host port free
/// once the drop returns (the relay's threads have ended and closed it; connections already
/// relayed go on).
#[derive(Debug)]
pub struct Relay {
    socket: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let fd = match &self.socket {
            Shared::Tcp(listener) => listener.as_raw_fd(),
            Shared::Udp(socket) => socket.as_raw_fd(),
        };
        // Wakes a thread blocked in accept (EINVAL) or recv; it sees `stop` and ends.
        // SAFETY: shutdown of a socket this relay still holds open; no memory is involved.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        // Its threads hold the socket: once they have ended, ours is the last reference, and
        // the port is free as this returns.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(STACK)
        .spawn(body)
}

/// Accepts until the relay stops; each connection gets its own pair of threads.
fn accept_loop(listener: &TcpListener, target: SocketAddrV4, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let _ = spawn("relay-conn", move || relay_connection(client, target));
            }
            // Out of descriptors or memory, or a connection reset before it was taken:
            // the listener itself is fine.
            Err(_) if !stop.load(Ordering::SeqCst) => std::thread::sleep(UDP_TICK / 5),
            Err(_) => {}
        }
    }
}

/// Connects to the pod and copies both ways; each direction's end is passed on (a half
/// close), so protocols that shut down their sending side keep working.
fn relay_connection(client: TcpStream, target: SocketAddrV4) {
    let Ok(upstream) = TcpStream::connect_timeout(&SocketAddr::V4(target), CONNECT_TIMEOUT) else {
        // Nothing answers there: the client sees its connection closed.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(client_reader), Ok(upstream_writer)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let to_pod = spawn("relay-up", move || {
        copy_then_close(client_reader, upstream_writer)
    });
    if to_pod.is_err() {
        return;
    }
    copy_then_close(upstream, client);
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    if let Err(e) = splice_all(&from, &to) {
        // No pipe to be had (out of descriptors): copy through this process.
        if e.raw_os_error() == Some(libc::EMFILE) || e.raw_os_error() == Some(libc::ENFILE) {
            let _ = io::copy(&mut from, &mut to);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// How much one splice moves at most: a pipe of this size (the default is 64 KiB).
const SPLICE_CHUNK: usize = 256 * 1024;

/// Moves everything `from` sends to `to` until its end, through a pipe with splice(2):
/// the bytes stay in the kernel. std's `io::copy` reads and writes 8 KiB at a time
/// through user memory between two sockets (it splices only to or from a pipe), which
/// made the relay half as fast as podman's rootlessport (docs/benchmarks.md).
fn splice_all(from: &TcpStream, to: &TcpStream) -> io::Result<()> {
    let (pipe_out, pipe_in) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: fcntl on a pipe this function owns. A smaller pipe still works.
    unsafe {
        libc::fcntl(
            pipe_in.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            SPLICE_CHUNK as libc::c_int,
        )
    };
    let splice = |source: i32, sink: i32, length: usize| -> io::Result<usize> {
        loop {
            // SAFETY: splice between descriptors that stay open for the call; no offsets.
            let moved = unsafe {
                libc::splice(
                    source,
                    std::ptr::null_mut(),
                    sink,
                    std::ptr::null_mut(),
                    length,
                    libc::SPLICE_F_MOVE,
                )
            };
            if moved >= 0 {
                return Ok(moved as usize);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    };
    loop {
        let mut queued = splice(from.as_raw_fd(), pipe_in.as_raw_fd(), SPLICE_CHUNK)?;
        if queued == 0 {
            return Ok(());
        }
        while queued > 0 {
            let sent = splice(pipe_out.as_raw_fd(), to.as_raw_fd(), queued)?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            queued -= sent;
        }
    }
}

/// Relays datagrams: one socket towards the pod per client address (so its replies can be
/// told apart), each with a thread sending the replies back through the host socket.
/// Ends once every flow's thread has ended (each within [`UDP_TICK`] of the stop), so that
/// no thread holds the host socket after it.
fn udp_loop(host: &Arc<UdpSocket>, target: SocketAddrV4, stop: &Arc<AtomicBool>) {
    let flows: Arc<Mutex<HashMap<SocketAddr, UdpSocket>>> = Arc::default();
    let mut threads: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let (length, client) = match host.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut table = flows.lock().unwrap_or_else(|e| e.into_inner());
        let upstream = match table.entry(client) {
            Entry::Occupied(flow) => flow.into_mut(),
            Entry::Vacant(slot) => match open_flow(host, client, target, &flows, stop) {
                Ok((upstream, thread)) => {
                    threads.retain(|t| !t.is_finished());
                    threads.push(thread);
                    slot.insert(upstream)
                }
                Err(e) => {
                    tracing::warn!("cannot relay UDP from {client} to {target}: {e}");
                    continue;
                }
            },
        };
        let _ = upstream.send(&buffer[..length]);
    }
    for thread in threads {
        let _ = thread.join();
    }
}

/// A socket connected to the pod for `client`'s datagrams, and the thread that returns
/// the pod's replies to `client` until the flow has been idle for [`UDP_IDLE`].
fn open_flow(
    host: &Arc<UdpSocket>,
    client: SocketAddr,
    target: SocketAddrV4,
    flows: &Arc<Mutex<HashMap<SocketAddr, UdpSocket>>>,
    stop: &Arc<AtomicBool>,
) -> io::Result<(UdpSocket, std::thread::JoinHandle<()>)> {
    let upstream = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    upstream.connect(target)?;
    upstream.set_read_timeout(Some(UDP_TICK))?;
    let (replies, host) = (upstream.try_clone()?, host.clone());
    let (flows, stop) = (flows.clone(), stop.clone());
    let thread = spawn("relay-udp-flow", move || {
        let mut buffer = vec![0u8; 65536];
        let mut idle = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) && idle < UDP_IDLE {
            match replies.recv(&mut buffer) {
                Ok(length) => {
                    idle = Duration::ZERO;
                    let _ = host.send_to(&buffer[..length], client);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    idle += UDP_TICK
                }
                // The pod's port is closed (ICMP): the client will retry or give up.
                Err(_) => idle += UDP_TICK,
            }
        }
        flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&client);
    })?;
    Ok((upstream, thread))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn mapping(protocol: Protocol, container_port: u16) -> PortMapping {
        PortMapping {
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: free_port(protocol),
            container_port,
            protocol,
        }
    }

    fn free_port(protocol: Protocol) -> u16 {
        match protocol {
            Protocol::Tcp => TcpListener::bind("127.0.0.1:0").unwrap().local_addr(),
            Protocol::Udp => UdpSocket::bind("127.0.0.1:0").unwrap().local_addr(),
        }
        .unwrap()
        .port()
    }

    #[test]
    fn tcp_is_relayed_both_ways_with_half_close_and_the_port_is_freed() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = server.accept().unwrap();
            let mut request = String::new();
            conn.read_to_string(&mut request).unwrap();
            conn.write_all(format!("got {request}").as_bytes()).unwrap();
        });
        let host = HostSide::start().unwrap();
        let mapping = mapping(Protocol::Tcp, port);
        let relay = host.relay(&mapping, Ipv4Addr::LOCALHOST).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", mapping.host_port)).unwrap();
        client.write_all(b"hello").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "got hello");

        drop(relay);
        // Free as the drop returns, for a bind without SO_REUSEADDR too.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let address: SocketAddr = ([127, 0, 0, 1], mapping.host_port).into();
        socket
            .bind(&address.into())
            .expect("the host port is free again");
    }

    #[test]
    fn megabytes_go_through_whole_and_in_order() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        // The server echoes what it reads until the client's end.
        std::thread::spawn(move || {
            let (conn, _) = server.accept().unwrap();
            let mut reader = conn.try_clone().unwrap();
            let mut writer = conn;
            io::copy(&mut reader, &mut writer).unwrap();
        });
        let host = HostSide::start().unwrap();
        let mapping = mapping(Protocol::Tcp, port);
        let _relay = host.relay(&mapping, Ipv4Addr::LOCALHOST).unwrap();
        let client = TcpStream::connect(("127.0.0.1", mapping.host_port)).unwrap();
        let sent: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut writer = client.try_clone().unwrap();
        let data = sent.clone();
        let sender = std::thread::spawn(move || {
            writer.write_all(&data).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut received = Vec::new();
        (&client).read_to_end(&mut received).unwrap();
        sender.join().unwrap();
        assert!(
            received == sent,
            "{} bytes back of {}",
            received.len(),
            sent.len()
        );
    }

    #[test]
    fn a_closed_target_closes_the_client_s_connection() {
        let host = HostSide::start().unwrap();
        let mapping = mapping(Protocol::Tcp, free_port(Protocol::Tcp));
        let _relay = host.relay(&mapping, Ipv4Addr::LOCALHOST).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", mapping.host_port)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let read = client.read_to_end(&mut answer);
        assert!(matches!(read, Ok(0)), "{read:?}");
    }

    #[test]
    fn udp_replies_reach_each_client() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 64];
            while let Ok((n, from)) = server.recv_from(&mut buffer) {
                let reply = [b"echo ".as_slice(), &buffer[..n]].concat();
                server.send_to(&reply, from).unwrap();
            }
        });
        let host = HostSide::start().unwrap();
        let mapping = mapping(Protocol::Udp, port);
        let relay = host.relay(&mapping, Ipv4Addr::LOCALHOST).unwrap();
        for word in ["one", "two"] {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            client
                .send_to(word.as_bytes(), ("127.0.0.1", mapping.host_port))
                .unwrap();
            let mut buffer = [0u8; 64];
            let n = client.recv(&mut buffer).unwrap();
            assert_eq!(&buffer[..n], format!("echo {word}").as_bytes());
        }
        drop(relay);
        // Free as the drop returns (the flows' threads ended with it).
        UdpSocket::bind(("127.0.0.1", mapping.host_port)).expect("the host port is free again");
    }
}
