//! The Services of the files played, kept in `services.json` in the network's directory
//! (under an exclusive flock of `services.lock`, as the leases): `podrun play` adds a file's
//! Services, `podrun down` removes them, and the holder reads them whenever it is told they
//! changed ([`crate::protocol::Request::Reload`]) and when it starts.
//!
//! A Service outlives its pods, as in Kubernetes: its cluster IP stays the same while its
//! endpoints come and go, and a Service played again keeps its address.
//!
//! **Cluster IPs** come from [`Subnet::SERVICES`] (10.96.0.0/16): the lowest free address,
//! or the one `spec.clusterIP` asks for (refused when outside the range or taken). **Node
//! ports** (NodePort and LoadBalancer Services) come from 30000–32767 the same way.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cluster::{ServicePort, ServiceRecord};
use crate::ipam::{read_json, store_json, Flock, Subnet};
use crate::{Paths, PodnetError};
use podrun_network::Protocol;

/// The node ports Kubernetes hands out by default (`--service-node-port-range`).
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// The contents of `services.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Services {
    pub services: Vec<ServiceRecord>,
}

/// What `spec.clusterIP` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterIp {
    /// Unset or `""`: any free address (the one it had, if the Service is played again).
    Allocate,
    /// `None`: a headless Service.
    Headless,
    /// This address.
    Fixed(Ipv4Addr),
}

/// A Service to add: its record (whose `cluster_ip` is ignored) and how to address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    pub record: ServiceRecord,
    pub cluster_ip: ClusterIp,
    /// NodePort or LoadBalancer: every port without a `nodePort` gets one.
    pub node_ports: bool,
}

impl Services {
    /// Adds (or replaces, by namespace and name) the requested Services; returns them as
    /// stored, with their addresses. Nothing changes when one of them is refused.
    /// `host_port_free` says whether a port is free on the host: a node port the Service
    /// does not hold already must be (another program, or another user's podrun, may
    /// have it; the holder would fail to publish it after play had said yes).
    pub fn add(
        &mut self,
        requests: &[ServiceRequest],
        host_port_free: &dyn Fn(u16, Protocol) -> bool,
    ) -> Result<Vec<ServiceRecord>, PodnetError> {
        let mut next = self.clone();
        let mut added = Vec::new();
        for request in requests {
            let record = next.place(request, host_port_free)?;
            next.services
                .retain(|s| (&s.namespace, &s.name) != (&record.namespace, &record.name));
            next.services.push(record.clone());
            added.push(record);
        }
        *self = next;
        Ok(added)
    }

    /// Removes Service `name` of `namespace`; returns it if there was one.
    pub fn remove(&mut self, namespace: &str, name: &str) -> Option<ServiceRecord> {
        let at = self
            .services
            .iter()
            .position(|s| s.namespace == namespace && s.name == name)?;
        Some(self.services.remove(at))
    }

    /// The stored form of `request`: its cluster IP and node ports chosen.
    fn place(
        &self,
        request: &ServiceRequest,
        host_port_free: &dyn Fn(u16, Protocol) -> bool,
    ) -> Result<ServiceRecord, PodnetError> {
        let mut record = request.record.clone();
        let name = format!("{}/{}", record.namespace, record.name);
        let previous = self
            .services
            .iter()
            .find(|s| s.namespace == record.namespace && s.name == record.name);
        let others: Vec<&ServiceRecord> = self
            .services
            .iter()
            .filter(|s| !(s.namespace == record.namespace && s.name == record.name))
            .collect();
        record.cluster_ip = match request.cluster_ip {
            ClusterIp::Headless => None,
            ClusterIp::Fixed(address) => Some(fixed_address(&name, address, &others)?),
            ClusterIp::Allocate => Some(match previous.and_then(|p| p.cluster_ip) {
                Some(address) => address,
                None => free_address(&name, &others)?,
            }),
        };
        let mut taken: BTreeSet<u16> = others
            .iter()
            .flat_map(|s| s.ports.iter().filter_map(|p| p.node_port))
            .collect();
        // Node ports the Service holds already (played again): published by the holder,
        // so busy on the host, and kept.
        let held: Vec<(u16, Protocol, u16)> = previous
            .iter()
            .flat_map(|p| &p.ports)
            .filter_map(|p| Some((p.port, p.protocol, p.node_port?)))
            .collect();
        let holds = |port: &ServicePort, node_port: u16| {
            held.contains(&(port.port, port.protocol, node_port))
        };
        for port in &mut record.ports {
            match port.node_port {
                Some(wanted) if taken.contains(&wanted) => {
                    return Err(PodnetError::Service {
                        service: name,
                        reason: format!("nodePort {wanted} is taken by another Service"),
                    })
                }
                Some(wanted) if !holds(port, wanted) && !host_port_free(wanted, port.protocol) => {
                    return Err(PodnetError::Service {
                        service: name,
                        reason: format!(
                            "nodePort {wanted}/{} is in use on the host\nhint: choose another nodePort, or leave it out for a free one",
                            port.protocol
                        ),
                    })
                }
                Some(_) => {}
                None if request.node_ports => {
                    let kept = held
                        .iter()
                        .find(|(p, protocol, n)| {
                            (*p, *protocol) == (port.port, port.protocol) && !taken.contains(n)
                        })
                        .map(|(_, _, n)| *n);
                    let free = || {
                        NODE_PORTS
                            .clone()
                            .find(|p| !taken.contains(p) && host_port_free(*p, port.protocol))
                    };
                    port.node_port =
                        Some(kept.or_else(free).ok_or_else(|| PodnetError::Service {
                            service: name.clone(),
                            reason: "no free node port left in 30000-32767".into(),
                        })?)
                }
                None => {}
            }
            taken.extend(port.node_port);
        }
        Ok(record)
    }
}

fn fixed_address(
    name: &str,
    address: Ipv4Addr,
    others: &[&ServiceRecord],
) -> Result<Ipv4Addr, PodnetError> {
    let range = Subnet::SERVICES;
    let refuse = |reason: String| PodnetError::Service {
        service: name.to_string(),
        reason,
    };
    if !range.contains(address) || address == range.network() {
        return Err(refuse(format!(
            "spec.clusterIP: Invalid value: \"{address}\": provided IP is not in the valid range. The range of valid IPs is {range}"
        )));
    }
    if let Some(owner) = others.iter().find(|s| s.cluster_ip == Some(address)) {
        return Err(refuse(format!(
            "spec.clusterIP: Invalid value: \"{address}\": provided IP is already allocated (to {}/{})",
            owner.namespace, owner.name
        )));
    }
    Ok(address)
}

fn free_address(name: &str, others: &[&ServiceRecord]) -> Result<Ipv4Addr, PodnetError> {
    let range = Subnet::SERVICES;
    let taken: BTreeSet<Ipv4Addr> = others.iter().filter_map(|s| s.cluster_ip).collect();
    let first = u32::from(range.network()) + 1;
    let last = u32::from(range.network()) + (1 << (32 - range.prefix())) - 2;
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|a| !taken.contains(a))
        .ok_or_else(|| PodnetError::Service {
            service: name.to_string(),
            reason: format!("no free cluster IP left in {range}"),
        })
}

/// `services.json` and its lock.
#[derive(Debug, Clone)]
pub struct ServiceFile {
    path: PathBuf,
    lock: PathBuf,
}

impl ServiceFile {
    pub fn of(paths: &Paths) -> ServiceFile {
        ServiceFile {
            path: paths.services(),
            lock: paths.services_lock(),
        }
    }

    /// Runs `change` on the Services under the lock and writes the result back.
    pub fn update<T>(&self, change: impl FnOnce(&mut Services) -> T) -> Result<T, PodnetError> {
        let _lock = Flock::exclusive(&self.lock)?;
        let mut services: Services = read_json(&self.path)?;
        let result = change(&mut services);
        store_json(&self.path, &services, services.services.is_empty())?;
        Ok(result)
    }

    /// The Services now.
    pub fn read(&self) -> Result<Vec<ServiceRecord>, PodnetError> {
        let _lock = Flock::exclusive(&self.lock)?;
        Ok(read_json::<Services>(&self.path)?.services)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TargetPort;

    /// Every port is free on the host.
    fn free(_: u16, _: Protocol) -> bool {
        true
    }
    use podrun_network::Protocol;

    fn request(name: &str, cluster_ip: ClusterIp, node_port: Option<u16>) -> ServiceRequest {
        ServiceRequest {
            record: ServiceRecord {
                namespace: "default".into(),
                name: name.into(),
                cluster_ip: None,
                ports: vec![ServicePort {
                    name: None,
                    port: 80,
                    protocol: Protocol::Tcp,
                    target: TargetPort::Number(8080),
                    node_port,
                }],
                selector: [("app".to_string(), name.to_string())].into(),
            },
            cluster_ip,
            node_ports: node_port.is_some(),
        }
    }

    #[test]
    fn addresses_are_the_lowest_free_and_stay_when_played_again() {
        let mut services = Services::default();
        let a = services
            .add(&[request("a", ClusterIp::Allocate, None)], &free)
            .unwrap();
        let b = services
            .add(&[request("b", ClusterIp::Allocate, None)], &free)
            .unwrap();
        assert_eq!(a[0].cluster_ip, Some(Ipv4Addr::new(10, 96, 0, 1)));
        assert_eq!(b[0].cluster_ip, Some(Ipv4Addr::new(10, 96, 0, 2)));
        let again = services
            .add(&[request("b", ClusterIp::Allocate, None)], &free)
            .unwrap();
        assert_eq!(again[0].cluster_ip, Some(Ipv4Addr::new(10, 96, 0, 2)));
        assert_eq!(services.services.len(), 2);
        assert!(services.remove("default", "a").is_some());
        let c = services
            .add(&[request("c", ClusterIp::Allocate, None)], &free)
            .unwrap();
        assert_eq!(c[0].cluster_ip, Some(Ipv4Addr::new(10, 96, 0, 1)));
    }

    #[test]
    fn headless_and_fixed_addresses() {
        let mut services = Services::default();
        let fixed = Ipv4Addr::new(10, 96, 7, 7);
        let got = services
            .add(
                &[
                    request("db", ClusterIp::Headless, None),
                    request("api", ClusterIp::Fixed(fixed), None),
                ],
                &free,
            )
            .unwrap();
        assert_eq!(got[0].cluster_ip, None);
        assert_eq!(got[1].cluster_ip, Some(fixed));
        let taken = services
            .add(&[request("other", ClusterIp::Fixed(fixed), None)], &free)
            .unwrap_err();
        assert!(
            taken
                .to_string()
                .contains("already allocated (to default/api)"),
            "{taken}"
        );
        let outside = services
            .add(
                &[request(
                    "x",
                    ClusterIp::Fixed(Ipv4Addr::new(10, 0, 0, 1)),
                    None,
                )],
                &free,
            )
            .unwrap_err();
        assert!(
            outside.to_string().contains("not in the valid range"),
            "{outside}"
        );
        assert_eq!(services.services.len(), 2, "refusals change nothing");
    }

    #[test]
    fn node_ports_are_allocated_and_never_shared() {
        let mut services = Services::default();
        let mut wanted = request("a", ClusterIp::Allocate, None);
        wanted.node_ports = true;
        let a = services.add(&[wanted], &free).unwrap();
        assert_eq!(a[0].ports[0].node_port, Some(30000));
        let clash = services
            .add(&[request("b", ClusterIp::Allocate, Some(30000))], &free)
            .unwrap_err();
        assert!(
            clash.to_string().contains("nodePort 30000 is taken"),
            "{clash}"
        );
    }

    #[test]
    fn node_ports_busy_on_the_host_are_skipped_or_refused_but_a_replayed_service_keeps_its_own() {
        // 30000 and 30001 are taken on the host by something else.
        let host = |port: u16, _: Protocol| port > 30001;
        let mut services = Services::default();
        let mut wanted = request("a", ClusterIp::Allocate, None);
        wanted.node_ports = true;
        let a = services.add(&[wanted.clone()], &host).unwrap();
        assert_eq!(a[0].ports[0].node_port, Some(30002));
        let busy = services
            .add(&[request("b", ClusterIp::Allocate, Some(30001))], &host)
            .unwrap_err();
        assert!(busy.to_string().contains("in use on the host"), "{busy}");
        // Played again: its port is busy now (the holder publishes it), and stays its own.
        let published = |port: u16, p: Protocol| port != 30002 && host(port, p);
        let again = services.add(&[wanted], &published).unwrap();
        assert_eq!(again[0].ports[0].node_port, Some(30002));
        let fixed = request("a", ClusterIp::Allocate, Some(30002));
        assert_eq!(
            services.add(&[fixed], &published).unwrap()[0].ports[0].node_port,
            Some(30002)
        );
    }

    #[test]
    fn the_file_round_trips_under_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            dir: dir.path().to_path_buf(),
        };
        let file = ServiceFile::of(&paths);
        assert!(file.read().unwrap().is_empty());
        file.update(|s| s.add(&[request("a", ClusterIp::Allocate, None)], &free))
            .unwrap()
            .unwrap();
        assert_eq!(file.read().unwrap()[0].name, "a");
        assert!(paths.services().exists());
        // The last Service removed: no file left (read as none).
        file.update(|s| s.remove("default", "a")).unwrap();
        assert!(!paths.services().exists());
        assert!(file.read().unwrap().is_empty());
    }
}
