//! The holder's socket (`holder.sock`, mode 0600 in a 0700 directory): one request per
//! connection, one JSON object on one line each way, as slirp4netns' API socket.
//!
//! ```text
//! → {"attach":{"pid":4242,"name":"default/web"}}
//! ← {"attached":{"address":"10.89.0.2","prefix":24,"gateway":"10.89.0.1","interface":"eth0","mtu":65520}}
//! → {"attach":{"pid":4243,"name":"default/api","ports":[{"host_ip":"0.0.0.0","host_port":18080,...}]}}
//! → {"detach":{"pid":4242}}          ← "detached"
//! → {"ready":{"pid":4242,"ready":true}}   ← "done"   (the pod's Ready condition changed)
//! → "reload"                         ← "done"   (services.json changed)
//! → "status"                         ← {"status":{...}}
//! ← {"error":"..."}                  for any request the holder refuses
//! ```
//!
//! The holder takes the requester's credentials from the socket (SO_PEERCRED) and serves only
//! its own user; the client learns the holder's pid the same way (the pid that listened).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

use crate::ipam::{ProcessId, Subnet};
use crate::PodnetError;

/// A request to the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Attach process `pid`, which has unshared a user namespace (a child of the holder's)
    /// and a network namespace and waits: write its id maps, give it an address and a veth,
    /// and publish `ports` (host forwards of the holder's slirp4netns to the pod's address,
    /// removed when the pod is detached).
    Attach {
        pid: u32,
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ports: Vec<podrun_network::PortMapping>,
        /// What Services select the pod by and DNS names it by (absent: a pod no Service
        /// selects, named by `name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<PodIdentity>,
        /// The pod may reach the host's 127.0.0.1 at 10.0.2.2 (`[network]
        /// allow_host_loopback` when it was played); others are refused there.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        host_loopback: bool,
    },
    /// Release the address of `pid` and remove its veth (also done when `pid` ends).
    Detach {
        pid: u32,
    },
    /// The pod of `pid` became ready (every container ready) or stopped being: it is an
    /// endpoint of the Services that select it only while ready.
    Ready {
        pid: u32,
        ready: bool,
    },
    /// The Services ([`crate::services`]) changed: read them again.
    Reload,
    Status,
}

/// What a pod asks the holder for besides an address and a veth.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants<'a> {
    /// Published to its address (hostPort, `--publish`).
    pub ports: &'a [podrun_network::PortMapping],
    /// What Services select it by and DNS names it by.
    pub identity: Option<&'a PodIdentity>,
    /// It may reach the host's 127.0.0.1 at 10.0.2.2.
    pub host_loopback: bool,
}

/// A pod as Services and DNS see it: the fields of [`crate::cluster::PodRecord`] the pod
/// knows before it has an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIdentity {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_ports: Vec<crate::cluster::NamedPort>,
}

impl PodIdentity {
    /// The pod's record once it has `address` (not ready yet: a pod becomes an endpoint
    /// when its supervisor says it is ready).
    pub fn record(&self, address: Ipv4Addr) -> crate::cluster::PodRecord {
        crate::cluster::PodRecord {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            address,
            labels: self.labels.clone(),
            hostname: self.hostname.clone(),
            subdomain: self.subdomain.clone(),
            named_ports: self.named_ports.clone(),
            ready: false,
        }
    }

    /// The identity of a pod attached by name only (`namespace/name` or `name`).
    pub fn named(name: &str) -> PodIdentity {
        let (namespace, pod) = name.split_once('/').unwrap_or(("default", name));
        PodIdentity {
            namespace: namespace.to_string(),
            name: pod.to_string(),
            labels: Default::default(),
            hostname: pod.to_string(),
            subdomain: None,
            named_ports: Vec::new(),
        }
    }
}

/// The holder's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Attached(Attachment),
    Detached,
    Done,
    Status(Status),
    Error(String),
}

/// What a pod got: its interface in its own network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub interface: String,
    pub mtu: u32,
}

/// The holder and the pods attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub holder: ProcessId,
    pub slirp4netns_pid: u32,
    pub subnet: Subnet,
    pub pods: Vec<AttachedPod>,
    /// The Services the holder serves, each with its endpoints now.
    #[serde(default)]
    pub services: Vec<ServiceStatus>,
}

/// A Service and where its ports lead now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: crate::cluster::ServiceRecord,
    /// Per port of the Service (same order): its endpoints as `address:port`.
    pub endpoints: Vec<Vec<String>>,
}

/// One attached pod, as the holder knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedPod {
    pub pid: u32,
    pub name: String,
    pub address: Ipv4Addr,
    /// The veth's end on the bridge, in the holder's namespace.
    pub host_interface: String,
    /// Whether the pod is ready (an endpoint of the Services that select it).
    #[serde(default)]
    pub ready: bool,
}

/// `holder.json`: who the running holder is (written once it is ready).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderFile {
    pub holder: ProcessId,
    pub slirp4netns_pid: u32,
}

/// The longest message either side accepts.
const MAX_MESSAGE: u64 = 1 << 20;

/// Writes `message` as one line.
pub fn send<T: Serialize>(stream: &mut UnixStream, message: &T) -> Result<(), PodnetError> {
    let mut line = serde_json::to_vec(message).expect("messages serialize");
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(PodnetError::io("cannot write to the holder's socket"))
}

/// Reads one line and parses it.
pub fn receive<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> Result<T, PodnetError> {
    let mut line = String::new();
    let read = BufReader::new(Read::by_ref(stream).take(MAX_MESSAGE))
        .read_line(&mut line)
        .map_err(PodnetError::io("cannot read from the holder's socket"))?;
    if read == 0 {
        return Err(PodnetError::Protocol(
            "the connection closed without an answer".into(),
        ));
    }
    serde_json::from_str(line.trim_end())
        .map_err(|e| PodnetError::Protocol(format!("{e}: {}", line.trim_end())))
}

/// The credentials of the process at the other end of `stream` (pid, uid), as the kernel
/// recorded them at connect (a client) or listen (a server) time.
pub fn peer(stream: &UnixStream) -> Result<(u32, u32), PodnetError> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut length = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `length` bytes into `credentials`.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(PodnetError::io("cannot read the peer's credentials")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok((credentials.pid as u32, credentials.uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_read_as_documented() {
        let attach = Request::Attach {
            pid: 4242,
            name: "default/web".into(),
            ports: Vec::new(),
            identity: None,
            host_loopback: false,
        };
        assert_eq!(
            serde_json::to_string(&attach).unwrap(),
            r#"{"attach":{"pid":4242,"name":"default/web"}}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#""status""#
        );
        let answer = Answer::Attached(Attachment {
            address: Ipv4Addr::new(10, 89, 0, 2),
            prefix: 24,
            gateway: Ipv4Addr::new(10, 89, 0, 1),
            interface: "eth0".into(),
            mtu: 65520,
        });
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"attached":{"address":"10.89.0.2","prefix":24,"gateway":"10.89.0.1","interface":"eth0","mtu":65520}}"#
        );
    }

    #[test]
    fn one_line_each_way_over_a_socket() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        send(&mut a, &Request::Detach { pid: 7 }).unwrap();
        let got: Request = receive(&mut b).unwrap();
        assert_eq!(got, Request::Detach { pid: 7 });
        drop(a);
        let err = receive::<Request>(&mut b).unwrap_err();
        assert!(
            err.to_string().contains("closed without an answer"),
            "{err}"
        );
        let (peer_pid, peer_uid) = peer(&b).unwrap();
        assert_eq!(peer_pid, std::process::id());
        assert_eq!(peer_uid, nix::unistd::geteuid().as_raw());
    }
}
