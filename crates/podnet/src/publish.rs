//! Host ports into the holder's namespace: a pod's published ports (hostPort, `--publish`)
//! to its address, and Services' node ports to the gateway, where their DNAT rules wait
//! ([`crate::services_nft`]). Each way out has its own means: slirp4netns adds host forwards
//! while it runs (its API socket); pasta cannot, so the holder relays them itself
//! ([`crate::relay`]).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use podrun_network::PortMapping;

use crate::relay::{HostSide, Relay};
use crate::PodnetError;

/// How the holder publishes host ports.
pub enum Publisher {
    /// Host forwards of the holder's slirp4netns, through its API socket in `dir`.
    Slirp { dir: PathBuf },
    /// The holder's own relays, from a thread left in the host's network namespace.
    Relay(HostSide),
}

/// One published port; [`Publisher::unpublish`] frees its host port (a relay also stops
/// when dropped).
#[derive(Debug)]
pub enum Published {
    /// slirp4netns' id of the forward.
    Slirp(u64),
    Relay(Relay),
}

impl Publisher {
    /// Publishes `mapping`'s host port to its container port at `to`.
    pub fn publish(
        &self,
        mapping: &PortMapping,
        to: Ipv4Addr,
    ) -> Result<Option<Published>, PodnetError> {
        match self {
            Publisher::Slirp { dir } => {
                let api = podrun_network::slirp::API_SOCKET;
                let id = podrun_network::slirp_api::add_hostfwd_to(dir, api, mapping, Some(to))?;
                Ok(id.map(Published::Slirp))
            }
            Publisher::Relay(host) => host
                .relay(mapping, to)
                .map(|r| Some(Published::Relay(r)))
                .map_err(PodnetError::io(format!(
                    "cannot publish host port {}/{} on {} (to container port {})",
                    mapping.host_port, mapping.protocol, mapping.host_ip, mapping.container_port
                ))),
        }
    }

    /// Frees the host port of `published`.
    pub fn unpublish(&self, published: Published) -> Result<(), PodnetError> {
        match (self, published) {
            (Publisher::Slirp { dir }, Published::Slirp(id)) => {
                let api = podrun_network::slirp::API_SOCKET;
                podrun_network::slirp_api::remove_hostfwd(dir, api, id).map_err(PodnetError::io(
                    "cannot remove a host forward of slirp4netns",
                ))
            }
            (_, Published::Relay(relay)) => {
                drop(relay);
                Ok(())
            }
            (Publisher::Relay(_), Published::Slirp(_)) => Ok(()),
        }
    }
}
