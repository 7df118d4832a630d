//! A file's Services as the shared network keeps them ([`podrun_podnet::services`]), and
//! the environment variables the kubelet gives a pod for the Services that exist when it
//! starts.
//!
//! The manifest has validated the Services already (ports, target ports, type, clusterIP);
//! this only translates them.

use std::net::Ipv4Addr;

use podrun_manifest::k8s_openapi::api::core::v1::Service;
use podrun_manifest::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use podrun_network::Protocol;
use podrun_pod_model::PodError;
use podrun_podnet::cluster::{ServicePort, ServiceRecord, TargetPort};
use podrun_podnet::services::{ClusterIp, ServiceRequest};

/// What the shared network stores for `service` (namespace filled in by the manifest).
pub fn request(service: &Service) -> Result<ServiceRequest, PodError> {
    let name = service.metadata.name.clone().unwrap_or_default();
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let who = format!("Service `{name}`");
    let cluster_ip = match spec.cluster_ip.as_deref() {
        None | Some("") => ClusterIp::Allocate,
        Some("None") => ClusterIp::Headless,
        Some(text) => ClusterIp::Fixed(text.parse::<Ipv4Addr>().map_err(|_| {
            PodError::msg(format!(
                "{who}: spec.clusterIP: Invalid value: \"{text}\": must be a valid IPv4 address or None"
            ))
        })?),
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|port| ServicePort {
            name: port.name.clone().filter(|n| !n.is_empty()),
            port: port.port as u16,
            protocol: match port.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                _ => Protocol::Tcp,
            },
            target: match &port.target_port {
                Some(IntOrString::Int(number)) => TargetPort::Number(*number as u16),
                Some(IntOrString::String(name)) => match name.parse::<u16>() {
                    Ok(number) => TargetPort::Number(number),
                    Err(_) => TargetPort::Name(name.clone()),
                },
                None => TargetPort::Number(port.port as u16),
            },
            node_port: port.node_port.filter(|p| *p > 0).map(|p| p as u16),
        })
        .collect();
    Ok(ServiceRequest {
        record: ServiceRecord {
            namespace,
            name,
            cluster_ip: None,
            ports,
            selector: spec.selector.unwrap_or_default(),
        },
        cluster_ip,
        node_ports: matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")),
    })
}

/// The kubelet's Service variables for a pod of `namespace` (`enableServiceLinks`, on by
/// default): for each Service of the namespace with a cluster IP, `NAME_SERVICE_HOST`,
/// `NAME_SERVICE_PORT` (the first port), `NAME_SERVICE_PORT_PORTNAME` per named port, and
/// the Docker-link-style `NAME_PORT`, `NAME_PORT_80_TCP{,_PROTO,_PORT,_ADDR}`. The name is
/// the Service's, upper-cased, `-` as `_`. Headless Services give none.
pub fn environment(services: &[ServiceRecord], namespace: &str) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut sorted: Vec<&ServiceRecord> = services
        .iter()
        .filter(|s| s.namespace == namespace)
        .collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for service in sorted {
        let (Some(ip), Some(first)) = (service.cluster_ip, service.ports.first()) else {
            continue;
        };
        let prefix = env_name(&service.name);
        vars.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        vars.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for port in &service.ports {
            if let Some(name) = &port.name {
                vars.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(name)),
                    port.port.to_string(),
                ));
            }
        }
        let url = |port: &ServicePort| format!("{}://{ip}:{}", port.protocol.name(), port.port);
        vars.push((format!("{prefix}_PORT"), url(first)));
        for port in &service.ports {
            let protocol = port.protocol.name();
            let base = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_uppercase());
            vars.push((base.clone(), url(port)));
            vars.push((format!("{base}_PROTO"), protocol.to_string()));
            vars.push((format!("{base}_PORT"), port.port.to_string()));
            vars.push((format!("{base}_ADDR"), ip.to_string()));
        }
    }
    vars
}

fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn ports_target_ports_and_addresses_translate() {
        let request = request(&service(serde_json::json!({
            "metadata": {"name": "api", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "api"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "x", "port": 81, "targetPort": 8081, "nodePort": 30080}
            ]}
        })))
        .unwrap();
        assert_eq!(request.cluster_ip, ClusterIp::Allocate);
        assert!(request.node_ports);
        let ports = &request.record.ports;
        assert_eq!(ports[0].target, TargetPort::Name("web".into()));
        assert_eq!(ports[1].target, TargetPort::Number(53));
        assert_eq!(ports[1].protocol, Protocol::Udp);
        assert_eq!(ports[2].node_port, Some(30080));
        let headless = request_of("None");
        assert_eq!(headless, ClusterIp::Headless);
        assert_eq!(
            request_of("10.96.1.2"),
            ClusterIp::Fixed(Ipv4Addr::new(10, 96, 1, 2))
        );
    }

    fn request_of(cluster_ip: &str) -> ClusterIp {
        request(&service(serde_json::json!({
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"clusterIP": cluster_ip, "ports": [{"port": 5432}]}
        })))
        .unwrap()
        .cluster_ip
    }

    #[test]
    fn the_kubelet_s_variables_for_the_namespace_s_services() {
        let mut api = request(&service(serde_json::json!({
            "metadata": {"name": "my-api", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
        })))
        .unwrap()
        .record;
        api.cluster_ip = Some(Ipv4Addr::new(10, 96, 0, 1));
        let mut elsewhere = api.clone();
        elsewhere.namespace = "prod".into();
        let mut headless = api.clone();
        headless.name = "db".into();
        headless.cluster_ip = None;
        let vars = environment(&[api, elsewhere, headless], "default");
        let get = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("MY_API_SERVICE_HOST"), Some("10.96.0.1"));
        assert_eq!(get("MY_API_SERVICE_PORT"), Some("80"));
        assert_eq!(get("MY_API_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("MY_API_SERVICE_PORT_DNS"), Some("53"));
        assert_eq!(get("MY_API_PORT"), Some("tcp://10.96.0.1:80"));
        assert_eq!(get("MY_API_PORT_53_UDP"), Some("udp://10.96.0.1:53"));
        assert_eq!(get("MY_API_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get("MY_API_PORT_80_TCP_ADDR"), Some("10.96.0.1"));
        assert!(get("DB_SERVICE_HOST").is_none(), "headless");
        assert_eq!(vars.len(), 13, "one namespace only: {vars:?}");
    }
}
