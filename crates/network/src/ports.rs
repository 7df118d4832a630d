//! Published ports: what they are, how `--publish` writes them, and the checks made on the
//! host before a pod starts.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::NetworkError;

/// A port's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// Kubernetes' `protocol` (`TCP`, `UDP`; `SCTP` is not supported) or podman's `tcp`/`udp`.
    pub fn parse(text: &str) -> Option<Protocol> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One published port: connections to `host_ip:host_port` on the host reach `container_port`
/// in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `0.0.0.0`: every address of the host.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.protocol
        )
    }
}

/// Parses `[hostIP:][hostPort:]containerPort[/proto]` (podman's and docker's `--publish`).
/// A host port left out (`80`, `127.0.0.1::80`) or 0 (`0:80`) is 0 here: a free port, chosen by
/// [`reserve_free_ports`] when the pod is played.
pub fn parse_publish(text: &str) -> Result<PortMapping, NetworkError> {
    let bad = |reason: &str| NetworkError::BadPublish {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let (ports, protocol) = match text.rsplit_once('/') {
        Some((ports, proto)) => (
            ports,
            Protocol::parse(proto).ok_or_else(|| bad("the protocol must be tcp or udp"))?,
        ),
        None => (text, Protocol::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [container] => (Ipv4Addr::UNSPECIFIED, "0", *container),
        [host, container] => (Ipv4Addr::UNSPECIFIED, *host, *container),
        [ip, host, container] => (
            ip.parse()
                .map_err(|_| bad("the host address must be an IPv4 address"))?,
            *host,
            *container,
        ),
        _ => return Err(bad("too many `:`")),
    };
    let host_port = match host_port {
        "" => 0,
        text => text.parse::<u16>().map_err(|_| {
            bad("the host port must be a number from 1 to 65535 (0 or none: a free port)")
        })?,
    };
    let container_port = container_port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the container port must be a number from 1 to 65535"))?;
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

/// The lowest port an unprivileged process may bind in the current network namespace.
pub fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

/// Checks, before a pod starts, that its helper will be able to publish every port: none is
/// published twice, none is privileged for a non-root user, and each can be bound now
/// (a listener bound for the check and closed at once). Run it in the network namespace the
/// helper will bind in (that of `podrun play`).
///
/// Mappings whose host port is 0 are left out: [`reserve_free_ports`] picks theirs.
pub fn check_host_ports(ports: &[PortMapping]) -> Result<(), NetworkError> {
    let root = nix::unistd::geteuid().is_root();
    let start = unprivileged_port_start();
    let ports: Vec<&PortMapping> = ports.iter().filter(|p| p.host_port != 0).collect();
    for (i, mapping) in ports.iter().enumerate() {
        if ports[..i].iter().any(|other| overlap(other, mapping)) {
            return Err(NetworkError::DuplicatePort {
                addr: mapping.host_ip,
                port: mapping.host_port,
                protocol: mapping.protocol,
            });
        }
        if !root && mapping.host_port < start {
            return Err(NetworkError::PrivilegedPort {
                port: mapping.host_port,
                protocol: mapping.protocol,
                start,
            });
        }
        try_bind(mapping)?;
    }
    Ok(())
}

/// Whether `a` and `b` take the same host port: same number and protocol, and the same
/// address or one of them every address.
fn overlap(a: &PortMapping, b: &PortMapping) -> bool {
    a.host_port == b.host_port
        && a.protocol == b.protocol
        && (a.host_ip == b.host_ip || a.host_ip.is_unspecified() || b.host_ip.is_unspecified())
}

/// A free host port held for a published port until the pod's network helper has bound it;
/// dropping it lets the port go (see [`reserve_free_ports`]).
#[derive(Debug)]
pub struct PortReservation {
    _socket: socket2::Socket,
}

/// Picks a free host port for every mapping whose host port is 0 (`--publish 80`) and writes
/// it into the mapping; the ports stay reserved while the returned values live. Keep them
/// until the pods' helpers have bound the ports (the supervisor answers `play` after that).
///
/// **How, and why not bind-then-close.** Neither helper takes a bound socket from us:
/// slirp4netns' `add_hostfwd` takes a number (and with 0 would not tell which port it got),
/// pasta's `-t`/`-u` take numbers. Binding port 0, closing it and passing the number on
/// leaves a window in which another `podrun play` run in parallel, or any program asking the
/// kernel for port 0 (including the source port of an outgoing connection), gets the same
/// number. So the port is reserved instead: a socket with `SO_REUSEADDR` bound to
/// `hostIP:0`, never listening, is kept open. Linux then (a) never hands that port out for
/// another bind to port 0 or as a connection's source port (a port bound by `bind` is
/// skipped), and (b) still lets a second `SO_REUSEADDR` socket bind and listen on it, as
/// long as ours does not listen: libslirp and pasta both set `SO_REUSEADDR` on the sockets
/// of published ports, so the helper takes the port over while we hold it. A program that
/// binds the number explicitly without `SO_REUSEADDR` is refused meanwhile, which is what
/// we want. `taken` are the host ports the other mappings ask for by number: a port the
/// kernel picks among them is kept aside (held, so it is not picked again) and another is
/// taken.
pub fn reserve_free_ports(
    mappings: &mut [PortMapping],
) -> Result<Vec<PortReservation>, NetworkError> {
    let taken: Vec<PortMapping> = mappings
        .iter()
        .filter(|m| m.host_port != 0)
        .copied()
        .collect();
    let mut reservations = Vec::new();
    for mapping in mappings.iter_mut().filter(|m| m.host_port == 0) {
        let mut aside = Vec::new();
        loop {
            let (port, socket) = reserve(mapping)?;
            let candidate = PortMapping {
                host_port: port,
                ..*mapping
            };
            if taken.iter().any(|t| overlap(t, &candidate)) && aside.len() < 100 {
                aside.push(socket);
                continue;
            }
            mapping.host_port = port;
            reservations.push(PortReservation { _socket: socket });
            break;
        }
    }
    Ok(reservations)
}

/// Binds a `SO_REUSEADDR` socket of `mapping`'s protocol to its host address and port 0.
fn reserve(mapping: &PortMapping) -> Result<(u16, socket2::Socket), NetworkError> {
    use socket2::{Domain, Socket, Type};
    let error = |source| NetworkError::NoFreePort {
        addr: mapping.host_ip,
        container_port: mapping.container_port,
        protocol: mapping.protocol,
        source,
    };
    let kind = match mapping.protocol {
        Protocol::Tcp => Type::STREAM,
        Protocol::Udp => Type::DGRAM,
    };
    // socket2 opens it close-on-exec: supervisors and helpers do not inherit it.
    let socket = Socket::new(Domain::IPV4, kind, None).map_err(error)?;
    socket.set_reuse_address(true).map_err(error)?;
    socket
        .bind(&SocketAddrV4::new(mapping.host_ip, 0).into())
        .map_err(error)?;
    let port = socket
        .local_addr()
        .map_err(error)?
        .as_socket()
        .map(|a| a.port())
        .unwrap_or(0);
    Ok((port, socket))
}

/// Binds the host side of `mapping` and lets it go again.
fn try_bind(mapping: &PortMapping) -> Result<(), NetworkError> {
    let addr = SocketAddrV4::new(mapping.host_ip, mapping.host_port);
    let result = match mapping.protocol {
        Protocol::Tcp => TcpListener::bind(addr).map(drop),
        Protocol::Udp => UdpSocket::bind(addr).map(drop),
    };
    result.map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => NetworkError::PortInUse {
            addr: mapping.host_ip,
            port: mapping.host_port,
            protocol: mapping.protocol,
        },
        _ => NetworkError::HostAddress {
            addr: mapping.host_ip,
            port: mapping.host_port,
            protocol: mapping.protocol,
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host_ip: [u8; 4], host: u16, container: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: Ipv4Addr::from(host_ip),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn publish_forms() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            mapping([0, 0, 0, 0], 8080, 80, Protocol::Tcp)
        );
        assert_eq!(
            parse_publish("127.0.0.1:5353:53/udp").unwrap(),
            mapping([127, 0, 0, 1], 5353, 53, Protocol::Udp)
        );
        assert_eq!(
            parse_publish("9000:9000/TCP").unwrap().protocol,
            Protocol::Tcp
        );
        // No host port, or 0: a free one, picked at play.
        for free in ["80", "0:80", "0.0.0.0::80", "0.0.0.0:0:80"] {
            assert_eq!(
                parse_publish(free).unwrap(),
                mapping([0, 0, 0, 0], 0, 80, Protocol::Tcp),
                "{free}"
            );
        }
        assert_eq!(
            parse_publish("127.0.0.1::53/udp").unwrap(),
            mapping([127, 0, 0, 1], 0, 53, Protocol::Udp)
        );
        for bad in [
            "",
            "a:80",
            "0",
            "80/",
            "8080:0",
            "8080:70000",
            "8080:80/sctp",
            "::1:8080:80",
            "x.y:1:2",
            "1:2:3:4",
        ] {
            let err = parse_publish(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("`{bad}`")) && err.contains("[hostPort:]containerPort"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_port_in_use_is_named() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_host_ports(&[mapping([127, 0, 0, 1], port, 80, Protocol::Tcp)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "host port {port}/tcp on 127.0.0.1 is already in use"
            )),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        // The same number over UDP is free.
        check_host_ports(&[mapping([127, 0, 0, 1], port, 80, Protocol::Udp)]).unwrap();
    }

    #[test]
    fn free_ports_are_reserved_until_dropped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fixed = listener.local_addr().unwrap().port();
        drop(listener);
        let mut mappings = [
            mapping([127, 0, 0, 1], 0, 80, Protocol::Tcp),
            mapping([127, 0, 0, 1], 0, 80, Protocol::Tcp),
            mapping([127, 0, 0, 1], 0, 53, Protocol::Udp),
            mapping([127, 0, 0, 1], fixed, 81, Protocol::Tcp),
        ];
        // The fixed port is left to check_host_ports.
        check_host_ports(&mappings).unwrap();
        let held = reserve_free_ports(&mut mappings).unwrap();
        assert_eq!(held.len(), 3);
        let ports: Vec<u16> = mappings.iter().map(|m| m.host_port).collect();
        assert!(
            ports[..3].iter().all(|p| *p != 0 && *p != fixed),
            "{ports:?}"
        );
        assert_ne!(ports[0], ports[1]);
        assert_eq!(ports[3], fixed);
        // Held: a bind without SO_REUSEADDR fails, a port-0 bind never gets it, and a
        // helper's socket (SO_REUSEADDR, as libslirp and pasta make theirs) binds and
        // listens on it.
        let plain =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        assert!(plain
            .bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, ports[0]).into())
            .is_err());
        let picked: Vec<u16> = (0..200)
            .map(|_| {
                let (port, _socket) =
                    reserve(&mapping([127, 0, 0, 1], 0, 1, Protocol::Tcp)).unwrap();
                port
            })
            .collect();
        assert!(!picked.contains(&ports[0]) && !picked.contains(&ports[1]));
        let helper =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        helper.set_reuse_address(true).unwrap();
        helper
            .bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, ports[0]).into())
            .unwrap();
        helper.listen(1).unwrap();
        std::net::TcpStream::connect(("127.0.0.1", ports[0])).unwrap();
        let udp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        udp.set_reuse_address(true).unwrap();
        udp.bind(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, ports[2]).into())
            .unwrap();
        drop((helper, udp, held));
        TcpListener::bind(("127.0.0.1", ports[1])).unwrap();
    }

    #[test]
    fn twice_the_same_port_is_refused() {
        let err = check_host_ports(&[
            mapping([0, 0, 0, 0], 18080, 80, Protocol::Tcp),
            mapping([127, 0, 0, 1], 18080, 81, Protocol::Tcp),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("18080/tcp") && err.contains("twice"), "{err}");
    }

    #[test]
    fn privileged_ports_need_root() {
        let result = check_host_ports(&[mapping([127, 0, 0, 1], 1, 80, Protocol::Tcp)]);
        if nix::unistd::geteuid().is_root() || unprivileged_port_start() <= 1 {
            return;
        }
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("host port 1/tcp is privileged")
                && err.contains("ip_unprivileged_port_start"),
            "{err}"
        );
    }
}
