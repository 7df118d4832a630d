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

/// Parses `[hostIP:]hostPort:containerPort[/proto]` (podman's `--publish`).
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
        [host, container] => (Ipv4Addr::UNSPECIFIED, *host, *container),
        [ip, host, container] => (
            ip.parse()
                .map_err(|_| bad("the host address must be an IPv4 address"))?,
            *host,
            *container,
        ),
        _ => return Err(bad("a host port and a container port are needed")),
    };
    let port = |text: &str, which: &str| -> Result<u16, NetworkError> {
        text.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            bad(&format!(
                "the {which} port must be a number from 1 to 65535"
            ))
        })
    };
    Ok(PortMapping {
        host_ip,
        host_port: port(host_port, "host")?,
        container_port: port(container_port, "container")?,
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
pub fn check_host_ports(ports: &[PortMapping]) -> Result<(), NetworkError> {
    let root = nix::unistd::geteuid().is_root();
    let start = unprivileged_port_start();
    for (i, mapping) in ports.iter().enumerate() {
        let clash = ports[..i].iter().any(|other| {
            other.host_port == mapping.host_port
                && other.protocol == mapping.protocol
                && (other.host_ip == mapping.host_ip
                    || other.host_ip.is_unspecified()
                    || mapping.host_ip.is_unspecified())
        });
        if clash {
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
        for bad in [
            "80",
            "a:80",
            "8080:0",
            "8080:70000",
            "8080:80/sctp",
            "::1:8080:80",
            "x.y:1:2",
            "1:2:3:4",
        ] {
            let err = parse_publish(bad).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("hostPort:containerPort"),
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
