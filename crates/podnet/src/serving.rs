//! What the holder serves on top of the bridge: the Services of `services.json`, forwarded
//! by nftables ([`crate::services_nft`]), named by its DNS server ([`crate::dns`]), and their
//! node ports published on the host through the holder's slirp4netns.
//!
//! Everything is derived from two lists, the Services and the attached pods (with their
//! readiness): after any change of either the holder calls [`Serving::refresh`], which
//! loads the new ruleset (one atomic nft transaction, skipped when unchanged), rebuilds the
//! DNS records and adds or removes host forwards for node ports.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;
use std::path::PathBuf;

use podrun_network::{PortMapping, Protocol};

use crate::cluster::{PodRecord, ServiceRecord};
use crate::dns::{DnsServer, Records};
use crate::services::ServiceFile;
use crate::services_nft::ServiceNetwork;
use crate::PodnetError;

/// slirp4netns' DNS forwarder, as seen from the holder's namespace: the upstream for every
/// name outside the cluster domain.
pub const UPSTREAM_DNS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 3), 53);

pub(crate) struct Serving {
    file: ServiceFile,
    network: ServiceNetwork,
    /// The directory of slirp4netns' API socket.
    slirp_dir: PathBuf,
    services: Vec<ServiceRecord>,
    dns: DnsServer,
    records: Records,
    /// The ruleset loaded last (none yet: empty).
    loaded: String,
    /// Published node ports: (port, protocol) → the host forward's id.
    node_ports: BTreeMap<(u16, Protocol), u64>,
    /// Whether the way out can publish them (slirp4netns; not pasta, see [`crate::uplink`]).
    publishes: bool,
}

impl Serving {
    /// Starts the DNS server on the gateway's port 53 and reads the Services.
    pub fn start(
        file: ServiceFile,
        network: ServiceNetwork,
        slirp_dir: PathBuf,
        publishes: bool,
    ) -> Result<Serving, PodnetError> {
        let dns = DnsServer::bind(SocketAddrV4::new(network.gateway, 53), UPSTREAM_DNS)?;
        let mut serving = Serving {
            file,
            network,
            slirp_dir,
            services: Vec::new(),
            dns,
            records: Records::build(&[], &[]),
            loaded: String::new(),
            node_ports: BTreeMap::new(),
            publishes,
        };
        serving.reload()?;
        Ok(serving)
    }

    /// Reads `services.json` again (the caller refreshes).
    pub fn reload(&mut self) -> Result<(), PodnetError> {
        self.services = self.file.read()?;
        Ok(())
    }

    pub fn services(&self) -> &[ServiceRecord] {
        &self.services
    }

    /// The DNS server's descriptors, for the holder's poll.
    pub fn fds(&self) -> [RawFd; 2] {
        self.dns.fds()
    }

    /// Answers what the DNS sockets have.
    pub fn on_dns_readable(&mut self) {
        self.dns.on_readable(&self.records);
    }

    /// Brings forwarding, names and node ports in line with the Services and `pods`.
    pub fn refresh(&mut self, pods: &[PodRecord]) {
        let ruleset = crate::services_nft::ruleset(&self.services, pods, &self.network);
        if ruleset != self.loaded {
            match crate::nft::load(&ruleset) {
                Ok(()) => self.loaded = ruleset,
                Err(e) => tracing::warn!("cannot load the Services' rules: {e}"),
            }
        }
        self.records = Records::build(&self.services, pods);
        self.publish_node_ports();
    }

    fn publish_node_ports(&mut self) {
        if !self.publishes {
            if self
                .services
                .iter()
                .flat_map(|s| &s.ports)
                .any(|p| p.node_port.is_some())
            {
                tracing::warn!("node ports are not published: the way out is pasta");
            }
            return;
        }
        let wanted: Vec<(u16, Protocol)> = self
            .services
            .iter()
            .flat_map(|s| &s.ports)
            .filter_map(|p| Some((p.node_port?, p.protocol)))
            .collect();
        let gone: Vec<(u16, Protocol)> = self
            .node_ports
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(id) = self.node_ports.remove(&key) {
                let api = podrun_network::slirp::API_SOCKET;
                if let Err(e) = podrun_network::slirp_api::remove_hostfwd(&self.slirp_dir, api, id)
                {
                    tracing::warn!("cannot unpublish node port {}: {e}", key.0);
                }
            }
        }
        for (port, protocol) in wanted {
            if self.node_ports.contains_key(&(port, protocol)) {
                continue;
            }
            let mapping = PortMapping {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: port,
                container_port: port,
                protocol,
            };
            // To the holder's own gateway address, where the node port's DNAT rule waits.
            match podrun_network::slirp_api::add_hostfwd_to(
                &self.slirp_dir,
                podrun_network::slirp::API_SOCKET,
                &mapping,
                Some(self.network.gateway),
            ) {
                Ok(id) => {
                    self.node_ports.extend(id.map(|id| ((port, protocol), id)));
                }
                Err(e) => tracing::warn!("cannot publish node port {port}: {e}"),
            }
        }
    }
}
