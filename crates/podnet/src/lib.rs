//! The shared rootless pod network (issue 17): one network for many pods of a user.
//!
//! ```text
//! host user namespace
//!  └─ U0: user namespace of the network holder (the user's full subuid map, via newuidmap)
//!      ├─ N0: its network namespace: lo; bridge podrun0 10.89.0.1/24; tap0 of slirp4netns
//!      │      (10.0.2.100/24, default route); ip_forward=1; nftables masquerade out of tap0
//!      ├─ pod A: user namespace UA, a CHILD of U0, network namespace NA: eth0 10.89.0.2/24
//!      └─ pod B: the same, 10.89.0.3
//! ```
//!
//! * [`netlink`]: links, addresses and routes over rtnetlink, in process (no `ip`).
//! * [`ipam`]: pod addresses from the subnet, leased in a JSON file under a lock.
//! * [`nft`]: the holder's masquerade rule.
//! * [`holder`]: the holder process: its namespaces, bridge, slirp4netns, and its request loop.
//! * [`start`]: finding the holder, or starting exactly one.
//! * [`attach`]: what a pod needs from the holder: its id maps and a veth with an address;
//!   [`client`] is the pod's side of the request.
//! * [`protocol`]: the requests and answers on the holder's socket.
//! * [`cluster`]: Services and pods, and which pods a Service leads to; [`services`] keeps
//!   the Services (and allocates their cluster IPs), [`services_nft`] forwards them and
//!   [`dns`] names them.
//! * [`publish`]: host ports into the holder's namespace (published ports, node ports):
//!   slirp4netns' host forwards, or the holder's own [`relay`]s when the way out is pasta.
//!
//! `podrun play --network shared` (experimental) uses it: see podrun-supervisor's
//! `shared_network` and the CLI's `podrun network-holder` role.

pub mod attach;
pub mod client;
pub mod cluster;
pub mod dns;
pub mod holder;
pub mod ipam;
pub mod netlink;
pub mod nft;
mod nsfd;
pub mod protocol;
pub mod publish;
pub mod relay;
pub mod services;
pub mod services_nft;
mod serving;
pub mod start;
pub mod uplink;

use std::path::{Path, PathBuf};

pub use client::HolderConnection;
pub use holder::HolderConfig;
pub use ipam::{Lease, Leases, ProcessId, Subnet};
pub use protocol::{Attachment, Status};
pub use uplink::UplinkKind;

/// The files of a user's shared network, all in one directory of the runtime dir
/// (`$XDG_RUNTIME_DIR/podrun/network`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    /// The network's directory under podrun's runtime directory (`$XDG_RUNTIME_DIR/podrun`).
    pub fn in_runtime_dir(podrun_runtime_dir: &Path) -> Paths {
        Paths {
            dir: podrun_runtime_dir.join("network"),
        }
    }

    /// Held (flock) by whoever checks for the holder and starts it: one start at a time.
    pub fn start_lock(&self) -> PathBuf {
        self.dir.join("start.lock")
    }
    /// Held (flock) by the holder for as long as it lives: the proof that it runs.
    pub fn holder_lock(&self) -> PathBuf {
        self.dir.join("holder.lock")
    }
    /// The holder's pid, start time and slirp4netns' pid (JSON), written once it is ready.
    pub fn holder_file(&self) -> PathBuf {
        self.dir.join("holder.json")
    }
    /// The holder's request socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("holder.sock")
    }
    /// The holder's stdout and stderr.
    pub fn log(&self) -> PathBuf {
        self.dir.join("holder.log")
    }
    /// The address leases.
    pub fn leases(&self) -> PathBuf {
        self.dir.join("ipam.json")
    }
    /// Held (flock) while the leases are read and written.
    pub fn leases_lock(&self) -> PathBuf {
        self.dir.join("ipam.lock")
    }
    /// The Services of the played files, with their cluster IPs.
    pub fn services(&self) -> PathBuf {
        self.dir.join("services.json")
    }
    /// Held (flock) while the Services are read and written.
    pub fn services_lock(&self) -> PathBuf {
        self.dir.join("services.lock")
    }

    /// Creates the directory (mode 0700) if needed.
    pub fn create(&self) -> Result<(), PodnetError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(PodnetError::io(format!(
                "cannot create {}",
                self.dir.display()
            )))
    }
}

/// Errors of the shared network. Each names what failed; the holder's are sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum PodnetError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("netlink: {what}: {source}")]
    Netlink {
        what: String,
        source: std::io::Error,
    },
    #[error("invalid subnet `{text}`: {reason} (expected an IPv4 network such as 10.89.0.0/24)")]
    BadSubnet { text: String, reason: String },
    #[error("no free address left in {subnet} ({leased} leased)\nhint: take pods down, or configure a larger subnet")]
    Exhausted { subnet: String, leased: usize },
    #[error("the lease file {path} is not valid: {reason}\nhint: it is rebuilt when removed while no pod runs")]
    BadLeaseFile { path: String, reason: String },
    #[error("{path} is not valid: {reason}\nhint: remove it while no pod runs")]
    BadStateFile { path: String, reason: String },
    #[error("Service {service}: {reason}")]
    Service { service: String, reason: String },
    #[error("user namespace: {0}")]
    Userns(#[from] podrun_userns::UsernsError),
    #[error("slirp4netns: {0}")]
    Slirp(#[from] podrun_network::NetworkError),
    #[error("nft: {0}")]
    Nft(String),
    #[error("the network holder did not start: {0}")]
    HolderStart(String),
    #[error("the network holder refused the request: {0}")]
    Refused(String),
    #[error("bad message on the holder's socket: {0}")]
    Protocol(String),
}

impl PodnetError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PodnetError {
        let what = what.into();
        move |source| PodnetError::Io { what, source }
    }

    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> PodnetError {
        let what = what.into();
        move |errno| PodnetError::Io {
            what,
            source: errno.into(),
        }
    }
}
