//! The shared network's way out: one user-mode helper on the holder's network namespace,
//! slirp4netns (the default) or pasta, each started exactly as a pod's own (podrun-network),
//! with the same addresses (tap0 10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3),
//! so the masquerade rule and the DNS server's upstream are the same for both.
//!
//! They differ in when they are forked and in published ports. pasta joins the holder's
//! namespaces from outside, so its launcher is forked before the holder enters its user
//! namespace; slirp4netns' after (it must make its connections in the host's network
//! namespace, which the holder still is in then). Published ports and node ports are host
//! forwards that slirp4netns adds while it runs (its API socket); pasta takes its forwards
//! on its command line only, so with pasta the holder relays them itself ([`crate::publish`]).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use podrun_network::{Pasta, PendingPasta, PendingSlirp, Slirp4netns};

use crate::PodnetError;

/// The way out's DNS forwarder, as seen from the holder's namespace (both helpers forward
/// it to the host's resolvers): the default upstream for every name outside the cluster.
pub const DNS_FORWARDER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 3), 53);

/// Where the way out maps the host's 127.0.0.1 when allowed (slirp4netns without
/// `--disable-host-loopback`, pasta without `--no-map-gw`).
pub const HOST_LOOPBACK: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);

/// The way out always maps the host's loopback at [`HOST_LOOPBACK`]: for a DNS upstream
/// there and for the pods allowed; the holder's loopback table refuses the others
/// ([`crate::nft::loopback_ruleset`]).
const MAPS_HOST_LOOPBACK: bool = true;

/// Which helper is the way out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UplinkKind {
    #[default]
    Slirp4netns,
    Pasta,
}

impl UplinkKind {
    pub fn name(self) -> &'static str {
        match self {
            UplinkKind::Slirp4netns => "slirp4netns",
            UplinkKind::Pasta => "pasta",
        }
    }
}

/// A helper's launcher, forked, not yet released.
pub(crate) enum PendingUplink {
    Slirp(PendingSlirp),
    Pasta(PendingPasta),
}

/// The running helper, the holder's child (ended when dropped, or with the holder).
pub(crate) enum Uplink {
    Slirp(Slirp4netns),
    Pasta(Pasta),
}

/// Forks pasta's launcher: call while still in the host's user namespace. None for
/// slirp4netns (see [`after_user_namespace`]).
pub(crate) fn before_user_namespace(
    kind: UplinkKind,
    dir: &Path,
    holder_pid: u32,
) -> Result<Option<PendingUplink>, PodnetError> {
    if kind != UplinkKind::Pasta {
        return Ok(None);
    }
    let config = podrun_network::PastaConfig {
        runtime_dir: dir.to_path_buf(),
        allow_host_loopback: MAPS_HOST_LOOPBACK,
        ports: Vec::new(),
    };
    Ok(Some(PendingUplink::Pasta(PendingPasta::prepare(
        config, holder_pid,
    )?)))
}

/// Forks slirp4netns' launcher: call in the holder's user namespace, before it unshares its
/// network namespace. `early` is what [`before_user_namespace`] forked (pasta's).
pub(crate) fn after_user_namespace(
    early: Option<PendingUplink>,
    dir: &Path,
    holder_pid: u32,
) -> Result<PendingUplink, PodnetError> {
    if let Some(pending) = early {
        return Ok(pending);
    }
    let config = podrun_network::SlirpConfig {
        runtime_dir: dir.to_path_buf(),
        allow_host_loopback: MAPS_HOST_LOOPBACK,
        ports: Vec::new(),
    };
    Ok(PendingUplink::Slirp(PendingSlirp::prepare(
        config, holder_pid,
    )?))
}

impl PendingUplink {
    /// Releases the helper on the holder's network namespace and waits until it is ready.
    pub fn start(self) -> Result<Uplink, PodnetError> {
        Ok(match self {
            PendingUplink::Slirp(pending) => Uplink::Slirp(pending.start()?),
            PendingUplink::Pasta(pending) => Uplink::Pasta(pending.start()?),
        })
    }
}

/// Removes what the way out leaves in `dir` besides its log (slirp4netns' API socket,
/// pasta's pid file): the holder ends, and with it the helper.
pub(crate) fn remove_files(dir: &Path) {
    for file in [
        podrun_network::slirp::API_SOCKET,
        podrun_network::pasta::PID_FILE,
    ] {
        let _ = std::fs::remove_file(dir.join(file));
    }
}

impl Uplink {
    pub fn pid(&self) -> i32 {
        match self {
            Uplink::Slirp(slirp) => slirp.pid(),
            Uplink::Pasta(pasta) => pasta.pid(),
        }
    }
}
