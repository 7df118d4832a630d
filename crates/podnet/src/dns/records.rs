//! The names of the `cluster.local` zone, built from the cluster model: what each name
//! answers (A, SRV, PTR) and which names exist at all (for NODATA against NXDOMAIN).
//!
//! Names are kept lowercase and without the trailing dot (`api.default.svc.cluster.local`).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use crate::cluster::{PodRecord, ServicePort, ServiceRecord, CLUSTER_DOMAIN};

/// The names the server answers, built from the cluster model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// A records, each name's addresses sorted and without duplicates.
    addresses: HashMap<String, Vec<Ipv4Addr>>,
    /// SRV records of named Service ports (`_http._tcp.api.default.svc.cluster.local`).
    services: HashMap<String, Vec<Srv>>,
    /// PTR records: the name an address is known by.
    pointers: HashMap<Ipv4Addr, String>,
    /// Every name of the zone that exists, with records or not: a name above another
    /// (`default.svc.cluster.local`) is an "empty non-terminal" and must not be NXDOMAIN
    /// (RFC 8020: NXDOMAIN means nothing exists below either).
    names: HashSet<String>,
}

/// One SRV record: a port and the name that resolves to its address(es).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Srv {
    pub port: u16,
    pub target: String,
}

impl Records {
    /// The records of `services` and the `pods` attached, as CoreDNS' kubernetes plugin
    /// derives them from Services and their endpoints (only ready pods are endpoints).
    pub fn build(services: &[ServiceRecord], pods: &[PodRecord]) -> Records {
        let mut records = Records::default();
        records.add_name(CLUSTER_DOMAIN);
        records.add_name(&format!("svc.{CLUSTER_DOMAIN}"));
        // Pod hostnames first, so that a pod's PTR names its hostname when it has one.
        for pod in pods.iter().filter(|pod| pod.ready) {
            records.add_pod_hostname(pod, services);
        }
        for service in services {
            match service.cluster_ip {
                Some(ip) => records.add_cluster_ip_service(service, ip),
                None => records.add_headless_service(service, pods),
            }
        }
        for addresses in records.addresses.values_mut() {
            addresses.sort();
            addresses.dedup();
        }
        for srvs in records.services.values_mut() {
            srvs.sort();
            srvs.dedup();
        }
        records
    }

    /// The A records of `name` (lowercase, no trailing dot).
    pub(crate) fn addresses(&self, name: &str) -> &[Ipv4Addr] {
        self.addresses.get(name).map_or(&[], Vec::as_slice)
    }

    /// The SRV records of `name`.
    pub(crate) fn srv(&self, name: &str) -> &[Srv] {
        self.services.get(name).map_or(&[], Vec::as_slice)
    }

    /// The name `address` is known by, if any.
    pub(crate) fn pointer(&self, address: Ipv4Addr) -> Option<&str> {
        self.pointers.get(&address).map(String::as_str)
    }

    /// Whether `name` exists in the zone (with records of some type, or names below it).
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// `<svc>.<ns>.svc.cluster.local` at its virtual address, its SRV records pointing at it.
    fn add_cluster_ip_service(&mut self, service: &ServiceRecord, ip: Ipv4Addr) {
        let name = service_name(service);
        self.add_address(&name, ip);
        self.pointers.entry(ip).or_insert_with(|| name.clone());
        for port in &service.ports {
            let Some(srv) = srv_name(port, &name) else {
                continue;
            };
            self.add_srv(
                &srv,
                Srv {
                    port: port.port,
                    target: name.clone(),
                },
            );
        }
    }

    /// A headless Service: its name at each ready endpoint's address (the pods of
    /// [`crate::cluster::endpoint_addresses`]), each endpoint at a
    /// name of its own under it, and SRV records pointing at those (at the target port).
    /// With no ready endpoint the name does not exist (NXDOMAIN), as in CoreDNS.
    fn add_headless_service(&mut self, service: &ServiceRecord, pods: &[PodRecord]) {
        let name = service_name(service);
        let endpoints = pods
            .iter()
            .filter(|pod| pod.ready && pod.selected_by(service));
        for pod in endpoints {
            let endpoint = endpoint_name(pod, service);
            self.add_address(&name, pod.address);
            self.add_address(&endpoint, pod.address);
            self.pointers
                .entry(pod.address)
                .or_insert_with(|| endpoint.clone());
            for port in &service.ports {
                let srv = srv_name(port, &name);
                let target = pod.resolve(&port.target, port.protocol);
                if let (Some(srv), Some(port)) = (srv, target) {
                    let target = endpoint.clone();
                    self.add_srv(&srv, Srv { port, target });
                }
            }
        }
    }

    /// `<hostname>.<subdomain>.<ns>.svc.cluster.local` of a ready pod whose subdomain names
    /// a headless Service of its namespace.
    fn add_pod_hostname(&mut self, pod: &PodRecord, services: &[ServiceRecord]) {
        let Some(subdomain) = &pod.subdomain else {
            return;
        };
        let headless = services.iter().any(|service| {
            service.cluster_ip.is_none()
                && service.namespace == pod.namespace
                && &service.name == subdomain
        });
        if headless {
            let name = lowercase(format!(
                "{}.{subdomain}.{}.svc.{CLUSTER_DOMAIN}",
                pod.hostname, pod.namespace
            ));
            self.add_address(&name, pod.address);
            self.pointers.entry(pod.address).or_insert(name);
        }
    }

    fn add_address(&mut self, name: &str, address: Ipv4Addr) {
        self.add_name(name);
        self.addresses
            .entry(name.to_string())
            .or_default()
            .push(address);
    }

    fn add_srv(&mut self, name: &str, srv: Srv) {
        self.add_name(name);
        self.services.entry(name.to_string()).or_default().push(srv);
    }

    /// Records `name` and every name between it and the zone's apex as existing.
    fn add_name(&mut self, name: &str) {
        let mut rest = name;
        while rest.len() >= CLUSTER_DOMAIN.len() && self.names.insert(rest.to_string()) {
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => break,
            }
        }
    }
}

/// `<svc>.<ns>.svc.cluster.local`.
fn service_name(service: &ServiceRecord) -> String {
    lowercase(format!(
        "{}.{}.svc.{CLUSTER_DOMAIN}",
        service.name, service.namespace
    ))
}

/// The name of one endpoint of a headless Service, as Kubernetes' endpoint controller and
/// CoreDNS give it: the pod's hostname when its subdomain is the Service, else its address
/// with dashes (`10-89-0-2.<svc>.<ns>.svc.cluster.local`).
fn endpoint_name(pod: &PodRecord, service: &ServiceRecord) -> String {
    let label = if pod.subdomain.as_deref() == Some(service.name.as_str()) {
        pod.hostname.clone()
    } else {
        pod.address.to_string().replace('.', "-")
    };
    lowercase(format!("{label}.{}", service_name(service)))
}

/// `_<port name>._<protocol>.<service name>`, for a named port.
fn srv_name(port: &ServicePort, service_name: &str) -> Option<String> {
    let name = port.name.as_deref()?;
    Some(lowercase(format!(
        "_{name}._{}.{service_name}",
        port.protocol.name()
    )))
}

fn lowercase(mut name: String) -> String {
    name.make_ascii_lowercase();
    name
}
