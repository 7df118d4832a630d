//! What the holder serves on top of the bridge: the Services of `services.json`, forwarded
//! by nftables ([`crate::services_nft`]), named by its DNS server ([`crate::dns`]), and their
//! node ports published on the host ([`crate::publish`]).
//!
//! Everything is derived from two lists, the Services and the attached pods (with their
//! readiness): after any change of either the holder calls [`Serving::refresh`], which
//! loads the new ruleset (one atomic nft transaction, skipped when unchanged), rebuilds the
//! DNS records and adds or removes host forwards for node ports.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

use podrun_network::{PortMapping, Protocol};

use crate::cluster::{PodRecord, ServiceRecord};
use crate::dns::{DnsServer, Records};
use crate::publish::{Published, Publisher};
use crate::services::ServiceFile;
use crate::services_nft::ServiceNetwork;
use crate::PodnetError;

pub(crate) struct Serving {
    file: ServiceFile,
    network: ServiceNetwork,
    services: Vec<ServiceRecord>,
    dns: DnsServer,
    records: Records,
    /// The ruleset loaded last (none yet: empty).
    loaded: String,
    /// Published node ports.
    node_ports: BTreeMap<(u16, Protocol), Published>,
}

impl Serving {
    /// Starts the DNS server on the gateway's port 53, forwarding other names to
    /// `dns_upstream`, and reads the Services.
    pub fn start(
        file: ServiceFile,
        network: ServiceNetwork,
        dns_upstream: SocketAddrV4,
    ) -> Result<Serving, PodnetError> {
        let dns = DnsServer::bind(SocketAddrV4::new(network.gateway, 53), dns_upstream)?;
        let mut serving = Serving {
            file,
            network,
            services: Vec::new(),
            dns,
            records: Records::build(&[], &[]),
            loaded: String::new(),
            node_ports: BTreeMap::new(),
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
    pub fn refresh(&mut self, pods: &[PodRecord], publisher: &Publisher) {
        let ruleset = crate::services_nft::ruleset(&self.services, pods, &self.network);
        if ruleset != self.loaded {
            match crate::nft::load(&ruleset) {
                Ok(()) => self.loaded = ruleset,
                Err(e) => tracing::warn!("cannot load the Services' rules: {e}"),
            }
        }
        self.records = Records::build(&self.services, pods);
        self.publish_node_ports(publisher);
    }

    /// Publishes the node ports of the Services not published yet and frees those of
    /// Services gone, each to the gateway's same port, where its DNAT rule waits.
    fn publish_node_ports(&mut self, publisher: &Publisher) {
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
            if let Some(published) = self.node_ports.remove(&key) {
                if let Err(e) = publisher.unpublish(published) {
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
            match publisher.publish(&mapping, self.network.gateway) {
                Ok(published) => {
                    self.node_ports
                        .extend(published.map(|p| ((port, protocol), p)));
                }
                Err(e) => tracing::warn!("cannot publish node port {port}: {e}"),
            }
        }
    }
}
