//! The DNS server's sockets, for the holder's poll loop: the listening socket answers
//! queries from the records ([`super::respond`]) and forwards the others upstream; the
//! upstream socket relays the upstream's replies back to their clients.
//!
//! A forwarded query is sent with an id of the server's own (unpredictable, unique among the
//! queries in flight), remembered with its client and id; the reply gets the client's id
//! back. Forwards without a reply are forgotten after [`FORWARD_TIMEOUT`] (the client
//! retries or gives up on its own), and at most [`MAX_FORWARDS`] are in flight (more are
//! dropped).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::{respond, Records, Reply};
use crate::PodnetError;

/// How long a forwarded query waits for its reply.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// How many forwarded queries may wait at once.
pub const MAX_FORWARDS: usize = 1024;
/// The most datagrams read from one socket per [`DnsServer::on_readable`] (the poll loop
/// comes back for the rest: its other work is not starved by a flood).
const BATCH: usize = 256;
/// The largest UDP datagram.
const MAX_DATAGRAM: usize = 65535;
/// The size of a DNS header: the least a reply to relay has.
const HEADER: usize = 12;

/// The shared network's DNS server: two non-blocking UDP sockets.
#[derive(Debug)]
pub struct DnsServer {
    listen: UdpSocket,
    /// Connected to the upstream: the kernel delivers its datagrams only.
    upstream: UdpSocket,
    forwards: HashMap<u16, Forward>,
    /// Keys the hash that makes upstream ids unpredictable.
    ids: RandomState,
    counter: u64,
    buffer: Vec<u8>,
}

/// A query forwarded upstream, waiting for its reply.
#[derive(Debug, Clone, Copy)]
struct Forward {
    client: SocketAddr,
    id: u16,
    sent: Instant,
}

impl DnsServer {
    /// Binds `listen` (UDP) and an upstream socket (ephemeral port) for forwarding to
    /// `upstream`; both non-blocking. In the holder: after the bridge has the listening
    /// address and the route to `upstream` exists (the socket is connected to it).
    pub fn bind(listen: SocketAddrV4, upstream: SocketAddrV4) -> Result<DnsServer, PodnetError> {
        let listening = UdpSocket::bind(listen).map_err(PodnetError::io(format!(
            "cannot listen for DNS on {listen}"
        )))?;
        let upstream_socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .map_err(PodnetError::io("cannot bind the DNS upstream socket"))?;
        upstream_socket
            .connect(upstream)
            .map_err(PodnetError::io(format!(
                "cannot reach the DNS upstream {upstream}"
            )))?;
        for socket in [&listening, &upstream_socket] {
            socket
                .set_nonblocking(true)
                .map_err(PodnetError::io("cannot make a DNS socket non-blocking"))?;
        }
        Ok(DnsServer {
            listen: listening,
            upstream: upstream_socket,
            forwards: HashMap::new(),
            ids: RandomState::new(),
            counter: 0,
            buffer: vec![0; MAX_DATAGRAM],
        })
    }

    /// The descriptors the holder polls for POLLIN: the listening socket, the upstream one.
    pub fn fds(&self) -> [RawFd; 2] {
        [self.listen.as_raw_fd(), self.upstream.as_raw_fd()]
    }

    /// The address the server listens on (its port, when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, PodnetError> {
        self.listen
            .local_addr()
            .map_err(PodnetError::io("cannot read the DNS socket's address"))
    }

    /// Drains both sockets without blocking: answers queries from `records`, forwards the
    /// rest upstream, relays upstream replies back to their clients, and forgets forwards
    /// older than [`FORWARD_TIMEOUT`].
    pub fn on_readable(&mut self, records: &Records) {
        let now = Instant::now();
        self.forwards
            .retain(|_, forward| now.duration_since(forward.sent) < FORWARD_TIMEOUT);
        self.serve_queries(records);
        self.relay_replies();
    }

    fn serve_queries(&mut self, records: &Records) {
        for _ in 0..BATCH {
            let (len, client) = match self.listen.recv_from(&mut self.buffer) {
                Ok(received) => received,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("DNS: cannot receive a query: {e}");
                    return;
                }
            };
            match respond(&self.buffer[..len], records) {
                Reply::Answer(answer) => self.send_to_client(&answer, client),
                Reply::Forward => self.forward(len, client),
                Reply::Drop => {}
            }
        }
    }

    /// Sends the query in the buffer upstream under an id of its own.
    fn forward(&mut self, len: usize, client: SocketAddr) {
        if self.forwards.len() >= MAX_FORWARDS {
            tracing::debug!(%client, "DNS: too many queries in flight; one dropped");
            return;
        }
        let id = self.new_id();
        let query = &mut self.buffer[..len];
        let client_id = u16::from_be_bytes([query[0], query[1]]);
        query[..2].copy_from_slice(&id.to_be_bytes());
        if let Err(e) = self.upstream.send(query) {
            tracing::debug!("DNS: cannot forward a query upstream: {e}");
            return;
        }
        let sent = Instant::now();
        let forward = Forward {
            client,
            id: client_id,
            sent,
        };
        self.forwards.insert(id, forward);
    }

    /// An id no forward in flight has, from a keyed hash of a counter.
    fn new_id(&mut self) -> u16 {
        loop {
            self.counter = self.counter.wrapping_add(1);
            let mut hasher = self.ids.build_hasher();
            hasher.write_u64(self.counter);
            let id = hasher.finish() as u16;
            if !self.forwards.contains_key(&id) {
                return id;
            }
        }
    }

    fn relay_replies(&mut self) {
        for _ in 0..BATCH {
            let len = match self.upstream.recv(&mut self.buffer) {
                Ok(len) => len,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // An ICMP error of an earlier send (the upstream's port is closed): read.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => {
                    tracing::debug!("DNS: cannot receive from upstream: {e}");
                    return;
                }
            };
            self.relay(len);
        }
    }

    /// Sends the reply in the buffer to the client of its forward, under the client's id.
    fn relay(&mut self, len: usize) {
        let reply = &mut self.buffer[..len];
        let is_response = len >= HEADER && reply[2] & 0x80 != 0;
        if !is_response {
            return;
        }
        let id = u16::from_be_bytes([reply[0], reply[1]]);
        let Some(forward) = self.forwards.remove(&id) else {
            return;
        };
        reply[..2].copy_from_slice(&forward.id.to_be_bytes());
        let reply = &self.buffer[..len];
        if let Err(e) = self.listen.send_to(reply, forward.client) {
            tracing::debug!(client = %forward.client, "DNS: cannot relay a reply: {e}");
        }
    }

    fn send_to_client(&self, answer: &[u8], client: SocketAddr) {
        if let Err(e) = self.listen.send_to(answer, client) {
            tracing::debug!(%client, "DNS: cannot answer: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn query(id: u16, name: &str) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        let name = Name::from_ascii(name).expect("name");
        message.add_query(Query::query(name, RecordType::A));
        message.to_vec().expect("encodes")
    }

    fn loopback() -> UdpSocket {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        socket
    }

    fn v4(socket: &UdpSocket) -> SocketAddrV4 {
        match socket.local_addr().expect("address") {
            SocketAddr::V4(address) => address,
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        }
    }

    /// Calls `on_readable` until `socket` has a datagram (loopback sends are immediate, but
    /// the test does not rely on it).
    fn serve_until_received(server: &mut DnsServer, socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buffer = [0u8; 4096];
        socket.set_nonblocking(true).expect("non-blocking");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            server.on_readable(&Records::default());
            match socket.recv_from(&mut buffer) {
                Ok((len, from)) => {
                    socket.set_nonblocking(false).expect("blocking");
                    return (buffer[..len].to_vec(), from);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("nothing received: {e}"),
            }
        }
    }

    #[test]
    fn a_forwarded_query_comes_back_to_its_client_with_its_id() {
        let upstream = loopback();
        let listen = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let mut server = DnsServer::bind(listen, v4(&upstream)).expect("binds");
        let client = loopback();
        let server_address = server.local_addr().expect("address");
        client
            .send_to(&query(0x1234, "example.org."), server_address)
            .expect("sends");

        let (forwarded, from) = serve_until_received(&mut server, &upstream);
        let mut reply = Message::from_vec(&forwarded).expect("a query upstream");
        assert_eq!(reply.queries[0].name().to_ascii(), "example.org.");
        reply.metadata.message_type = MessageType::Response;
        let name = reply.queries[0].name().clone();
        let address = RData::A(A(Ipv4Addr::new(192, 0, 2, 7)));
        reply.add_answer(Record::from_rdata(name, 60, address));
        upstream
            .send_to(&reply.to_vec().expect("encodes"), from)
            .expect("replies");

        let (relayed, from) = serve_until_received(&mut server, &client);
        assert_eq!(from, server_address);
        let relayed = Message::from_vec(&relayed).expect("a reply");
        assert_eq!(relayed.metadata.id, 0x1234);
        assert_eq!(relayed.answers.len(), 1);
        assert!(server.forwards.is_empty(), "the forward is done");
    }

    #[test]
    fn a_cluster_name_is_answered_without_the_upstream() {
        let upstream = loopback();
        let listen = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let mut server = DnsServer::bind(listen, v4(&upstream)).expect("binds");
        let client = loopback();
        let server_address = server.local_addr().expect("address");
        let name = "nope.default.svc.cluster.local.";
        client
            .send_to(&query(7, name), server_address)
            .expect("sends");
        let (answer, _) = serve_until_received(&mut server, &client);
        let answer = Message::from_vec(&answer).expect("an answer");
        assert_eq!(answer.metadata.id, 7);
        assert_eq!(
            answer.metadata.response_code,
            hickory_proto::op::ResponseCode::NXDomain
        );
        assert!(server.forwards.is_empty());
    }

    #[test]
    fn forwards_in_flight_are_bounded_and_forgotten_after_the_timeout() {
        let upstream = loopback();
        let listen = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let mut server = DnsServer::bind(listen, v4(&upstream)).expect("binds");
        let client: SocketAddr = (Ipv4Addr::LOCALHOST, 9).into();
        let bytes = query(1, "example.org.");
        for _ in 0..MAX_FORWARDS + 10 {
            server.buffer[..bytes.len()].copy_from_slice(&bytes);
            server.forward(bytes.len(), client);
        }
        assert_eq!(server.forwards.len(), MAX_FORWARDS);
        for forward in server.forwards.values_mut() {
            forward.sent -= FORWARD_TIMEOUT;
        }
        server.on_readable(&Records::default());
        assert!(server.forwards.is_empty());
    }
}
