//! What the shared network knows of the cluster it imitates: the Services (from the files
//! played) and the pods attached, and the pure rules that join them, as Kubernetes' endpoint
//! controller does: a Service's endpoints are the **ready** pods of its namespace whose labels
//! match its selector, each at the target port the Service names (by number, or by the name
//! of one of the pod's container ports).
//!
//! The holder feeds these to its Service forwarding ([`crate::services_nft`]) and its DNS
//! server ([`crate::dns`]); no process, socket or clock here.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use podrun_network::Protocol;
use serde::{Deserialize, Serialize};

/// The cluster's domain, as a kubelet's default `--cluster-domain`.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// A Service as the network serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub namespace: String,
    pub name: String,
    /// The virtual address connections are spread from; `None` for a headless Service
    /// (`clusterIP: None`), whose name resolves to its endpoints' addresses instead.
    pub cluster_ip: Option<Ipv4Addr>,
    pub ports: Vec<ServicePort>,
    /// `spec.selector`; a Service without one has no endpoints here (Kubernetes leaves them
    /// to whoever writes an Endpoints object, which podrun does not read).
    pub selector: BTreeMap<String, String>,
}

/// One entry of a Service's `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// `name` (required by Kubernetes when there are several ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    pub target: TargetPort,
    /// NodePort/LoadBalancer: the host port it is published on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u16>,
}

/// `targetPort`: a number, or the name of a container port of each endpoint pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

/// An attached pod as the Service rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub address: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    /// `spec.hostname` (default: the pod's name) and `spec.subdomain`: with a headless
    /// Service named as the subdomain in its namespace, the pod answers at
    /// `hostname.subdomain.namespace.svc.cluster.local`.
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// The pod's named container ports (`ports[].name`), for named target ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_ports: Vec<NamedPort>,
    /// Every container ready (the pod's Ready condition): only ready pods are endpoints.
    pub ready: bool,
}

/// A container port with a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// Where one Service port sends a connection: a ready pod's address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub address: Ipv4Addr,
    pub port: u16,
}

impl PodRecord {
    /// Whether the pod is selected by `service` (same namespace, every selector label
    /// matches; an empty selector selects nothing, as for a Service without a selector).
    pub fn selected_by(&self, service: &ServiceRecord) -> bool {
        self.namespace == service.namespace
            && !service.selector.is_empty()
            && service
                .selector
                .iter()
                .all(|(key, value)| self.labels.get(key) == Some(value))
    }

    /// The port `target` means on this pod, if any (a name the pod lacks: none, and the pod
    /// is no endpoint of that Service port, as in Kubernetes).
    pub fn resolve(&self, target: &TargetPort, protocol: Protocol) -> Option<u16> {
        match target {
            TargetPort::Number(port) => Some(*port),
            TargetPort::Name(name) => self
                .named_ports
                .iter()
                .find(|p| &p.name == name && p.protocol == protocol)
                .map(|p| p.port),
        }
    }
}

/// The endpoints of one port of `service`: the ready pods it selects, in address order.
pub fn endpoints(service: &ServiceRecord, port: &ServicePort, pods: &[PodRecord]) -> Vec<Endpoint> {
    let mut endpoints: Vec<Endpoint> = pods
        .iter()
        .filter(|pod| pod.ready && pod.selected_by(service))
        .filter_map(|pod| {
            let target = pod.resolve(&port.target, port.protocol)?;
            Some(Endpoint {
                address: pod.address,
                port: target,
            })
        })
        .collect();
    endpoints.sort();
    endpoints.dedup();
    endpoints
}

/// The addresses a headless Service's name resolves to: its ready selected pods'.
pub fn endpoint_addresses(service: &ServiceRecord, pods: &[PodRecord]) -> Vec<Ipv4Addr> {
    let mut addresses: Vec<Ipv4Addr> = pods
        .iter()
        .filter(|pod| pod.ready && pod.selected_by(service))
        .map(|pod| pod.address)
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{self, named_port, port, service};
    use super::*;

    /// A pod with the named port `http` at 8000 + `last`.
    fn pod(name: &str, last: u8, app: &str, ready: bool) -> PodRecord {
        PodRecord {
            named_ports: vec![named_port("http", 8000 + u16::from(last))],
            ..test_support::pod(name, last, app, ready)
        }
    }

    /// The Service `api` (10.96.0.1) and its one port, 80/tcp to `target`.
    fn api(target: TargetPort) -> (ServiceRecord, ServicePort) {
        let port = port(80, Protocol::Tcp, target);
        let service = service("api", Some([10, 96, 0, 1]), vec![port.clone()]);
        (service, port)
    }

    #[test]
    fn only_ready_selected_pods_of_the_namespace_are_endpoints() {
        let (svc, port) = api(TargetPort::Number(8080));
        let mut other_ns = pod("x", 9, "api", true);
        other_ns.namespace = "prod".into();
        let pods = [
            pod("b", 3, "api", true),
            pod("a", 2, "api", true),
            pod("c", 4, "api", false),
            pod("d", 5, "db", true),
            other_ns,
        ];
        let got = endpoints(&svc, &port, &pods);
        let want: Vec<Endpoint> = [2, 3]
            .iter()
            .map(|&last| Endpoint {
                address: Ipv4Addr::new(10, 89, 0, last),
                port: 8080,
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_named_target_port_resolves_per_pod_and_skips_pods_without_it() {
        let (svc, port) = api(TargetPort::Name("http".into()));
        let mut nameless = pod("c", 4, "api", true);
        nameless.named_ports.clear();
        let pods = [pod("a", 2, "api", true), pod("b", 3, "api", true), nameless];
        let ports: Vec<u16> = endpoints(&svc, &port, &pods)
            .iter()
            .map(|e| e.port)
            .collect();
        assert_eq!(ports, [8002, 8003]);
        let (svc, udp) = api(TargetPort::Name("http".into()));
        let udp = ServicePort {
            protocol: Protocol::Udp,
            ..udp
        };
        assert!(
            endpoints(&svc, &udp, &pods).is_empty(),
            "http is a tcp port"
        );
    }

    #[test]
    fn a_service_without_selector_selects_nothing() {
        let (mut svc, port) = api(TargetPort::Number(80));
        svc.selector.clear();
        assert!(endpoints(&svc, &port, &[pod("a", 2, "api", true)]).is_empty());
        assert!(endpoint_addresses(&svc, &[pod("a", 2, "api", true)]).is_empty());
    }
}
