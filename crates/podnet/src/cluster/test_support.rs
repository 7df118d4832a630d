//! The Service and pod fixtures the tests of the cluster rules, the Service forwarding
//! ([`crate::services_nft`]) and the DNS server ([`crate::dns`]) build: everything in the
//! `default` namespace, pod `N` at 10.89.0.N labelled `app`, a Service selecting the pods
//! whose `app` is its name. A test sets what else it needs on the records these return.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use podrun_network::Protocol;

use super::{NamedPort, PodRecord, ServicePort, ServiceRecord, TargetPort};

/// `app: APP`.
pub(crate) fn labels(app: &str) -> BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into()
}

/// A pod at 10.89.0.`last` labelled `app: APP`, its hostname its name, in no subdomain and
/// with no named container port.
pub(crate) fn pod(name: &str, last: u8, app: &str, ready: bool) -> PodRecord {
    PodRecord {
        namespace: "default".into(),
        name: name.into(),
        address: Ipv4Addr::new(10, 89, 0, last),
        labels: labels(app),
        hostname: name.into(),
        subdomain: None,
        named_ports: vec![],
        ready,
    }
}

/// A named TCP container port.
pub(crate) fn named_port(name: &str, port: u16) -> NamedPort {
    NamedPort {
        name: name.into(),
        port,
        protocol: Protocol::Tcp,
    }
}

/// An unnamed Service port, not published on a node port.
pub(crate) fn port(port: u16, protocol: Protocol, target: TargetPort) -> ServicePort {
    ServicePort {
        name: None,
        port,
        protocol,
        target,
        node_port: None,
    }
}

/// A Service selecting `app: NAME` (headless when `cluster_ip` is `None`).
pub(crate) fn service(
    name: &str,
    cluster_ip: Option<[u8; 4]>,
    ports: Vec<ServicePort>,
) -> ServiceRecord {
    ServiceRecord {
        namespace: "default".into(),
        name: name.into(),
        cluster_ip: cluster_ip.map(Ipv4Addr::from),
        ports,
        selector: labels(name),
    }
}
