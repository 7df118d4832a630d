//! Services: validated as the API server validates what podrun uses of them, and defaulted
//! as it defaults them (type, cluster IP, port protocols and target ports).

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Diag;
use crate::validate::{
    dns_label_error, label_key_errors, label_value_errors, port_name_error, unsupported_value,
};

const DNS1035_LABEL_MAX: usize = 63;
/// The types podrun serves (ExternalName is refused by name).
pub(crate) const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer"];
pub(crate) const NODE_PORT_MIN: i32 = 30000;
pub(crate) const NODE_PORT_MAX: i32 = 32767;

/// Why `s` is not an RFC 1035 label (a Service's name), if it is not.
pub(crate) fn dns1035_label_error(s: &str) -> Option<String> {
    if s.len() > DNS1035_LABEL_MAX {
        return Some(format!(
            "Invalid value: {s:?}: must be no more than {DNS1035_LABEL_MAX} characters"
        ));
    }
    let b = s.as_bytes();
    let valid = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    (!valid).then(|| {
        format!(
            "Invalid value: {s:?}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        )
    })
}

/// Why `ip` cannot be a Service's cluster IP: `""` (one is allocated), `None` (headless)
/// or an IPv4 address (whether it is in the Service range is checked when it is run).
fn cluster_ip_error(ip: &str) -> Option<String> {
    if ip.is_empty() || ip == "None" {
        return None;
    }
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => None,
        Ok(IpAddr::V6(_)) => Some(format!(
            "Invalid value: {ip:?}: podrun's Service network is IPv4 only"
        )),
        Err(_) => Some(format!(
            "Invalid value: {ip:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        )),
    }
}

fn port_number_error(port: i32) -> Option<String> {
    (!(1..=65535).contains(&port))
        .then(|| format!("Invalid value: {port}: must be between 1 and 65535, inclusive"))
}

/// `metadata.name` (required, an RFC 1035 label) and `metadata.namespace`.
fn name(diag: &mut Diag, doc: usize, service: &Service) {
    let meta = &service.metadata;
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None if meta.generate_name.as_deref().is_some_and(|g| !g.is_empty()) => diag.error(
            doc,
            "metadata.name",
            "Required value: generateName is not supported by podrun; give the Service a name",
        ),
        None => diag.error(doc, "metadata.name", "Required value: name is required"),
        Some(name) => {
            if let Some(e) = dns1035_label_error(name) {
                diag.error(doc, "metadata.name", e);
            }
        }
    }
    if let Some(e) = meta
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .and_then(dns_label_error)
    {
        diag.error(doc, "metadata.namespace", e);
    }
}

/// Validates `service` (document `doc`) and fills in the API server's defaults.
pub(crate) fn service(diag: &mut Diag, doc: usize, service: &mut Service) {
    name(diag, doc, service);
    service.status = None;
    let spec = service.spec.get_or_insert_with(Default::default);

    let type_ = spec
        .type_
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "ClusterIP".to_string());
    match type_.as_str() {
        t if SERVICE_TYPES.contains(&t) => {}
        "ExternalName" => {
            diag.error(
                doc,
                "spec.type",
                "Unsupported value: \"ExternalName\": podrun serves no ExternalName Services (a DNS alias of a name outside the file); supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\"",
            );
            return;
        }
        other => diag.error(doc, "spec.type", unsupported_value(other, SERVICE_TYPES)),
    }
    spec.type_ = Some(type_.clone());

    // The cluster IP: clusterIP, or the first of clusterIPs; one IPv4 address at most.
    let given = spec.cluster_ip.clone().unwrap_or_default();
    if let Some(e) = cluster_ip_error(&given) {
        diag.error(doc, "spec.clusterIP", e);
    }
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    for (i, ip) in ips.iter().enumerate() {
        let path = format!("spec.clusterIPs[{i}]");
        if i > 0 {
            diag.error(
                doc,
                &path,
                format_args!("Invalid value: {ip:?}: podrun's Service network is IPv4 only: a Service has one cluster IP"),
            );
        } else if let Some(e) = cluster_ip_error(ip) {
            diag.error(doc, &path, e);
        } else if !given.is_empty() && *ip != given {
            diag.error(
                doc,
                &path,
                format_args!(
                    "Invalid value: {ip:?}: must be the same as spec.clusterIP ({given:?})"
                ),
            );
        }
    }
    let cluster_ip = if given.is_empty() {
        ips.first().cloned().unwrap_or_default()
    } else {
        given
    };
    let headless = cluster_ip == "None";
    if headless && type_ != "ClusterIP" {
        diag.error(
            doc,
            "spec.clusterIP",
            format_args!("Invalid value: \"None\": may not be set to 'None' for {type_} services"),
        );
    }
    spec.cluster_ip = Some(cluster_ip);

    let ports = spec.ports.get_or_insert_with(Vec::new);
    if ports.is_empty() && !headless {
        diag.error(doc, "spec.ports", "Required value");
    }
    let several = ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter_mut().enumerate() {
        let path = format!("spec.ports[{i}]");
        match port.name.as_deref().filter(|n| !n.is_empty()) {
            None if several => diag.error(doc, &format!("{path}.name"), "Required value"),
            None => {}
            Some(name) => {
                if let Some(e) = dns_label_error(name) {
                    diag.error(doc, &format!("{path}.name"), e);
                }
                if !names.insert(name.to_string()) {
                    diag.error(
                        doc,
                        &format!("{path}.name"),
                        format_args!("Duplicate value: {name:?}"),
                    );
                }
            }
        }
        if let Some(e) = port_number_error(port.port) {
            diag.error(doc, &format!("{path}.port"), e);
        }
        let protocol = port
            .protocol
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "TCP".to_string());
        match protocol.as_str() {
            "TCP" | "UDP" => {}
            "SCTP" => diag.error(
                doc,
                &format!("{path}.protocol"),
                "Unsupported value: \"SCTP\": podrun's Services forward TCP and UDP only; supported values: \"TCP\", \"UDP\"",
            ),
            other => diag.error(
                doc,
                &format!("{path}.protocol"),
                unsupported_value(other, &["TCP", "UDP"]),
            ),
        }
        port.protocol = Some(protocol.clone());
        match &port.target_port {
            None => port.target_port = Some(IntOrString::Int(port.port)),
            Some(IntOrString::Int(0)) => port.target_port = Some(IntOrString::Int(port.port)),
            Some(IntOrString::String(s)) if s.is_empty() => {
                port.target_port = Some(IntOrString::Int(port.port))
            }
            Some(IntOrString::Int(n)) => {
                if let Some(e) = port_number_error(*n) {
                    diag.error(doc, &format!("{path}.targetPort"), e);
                }
            }
            Some(IntOrString::String(s)) => {
                if let Some(e) = port_name_error(s) {
                    diag.error(doc, &format!("{path}.targetPort"), e);
                }
            }
        }
        if let Some(app) = port.app_protocol.as_deref() {
            for e in label_key_errors(app) {
                diag.error(
                    doc,
                    &format!("{path}.appProtocol"),
                    format_args!("Invalid value: {app:?}: {e}"),
                );
            }
        }
        if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
            let node_path = format!("{path}.nodePort");
            if type_ == "ClusterIP" {
                diag.error(
                    doc,
                    &node_path,
                    "Forbidden: may not be used when `type` is 'ClusterIP'",
                );
            } else if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&node_port) {
                diag.error(
                    doc,
                    &node_path,
                    format_args!("Invalid value: {node_port}: provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"),
                );
            } else if !node_ports.insert((node_port, protocol.clone())) {
                diag.error(
                    doc,
                    &node_path,
                    format_args!("Duplicate value: {node_port}"),
                );
            }
        }
        if !seen.insert((port.port, protocol.clone())) {
            diag.error(
                doc,
                &path,
                format_args!("Duplicate value: \"{}/{protocol}\"", port.port),
            );
        }
    }
    if headless && ports.is_empty() {
        spec.ports = None;
    }

    match spec.selector.as_ref().filter(|s| !s.is_empty()) {
        None => diag.warn(
            doc,
            "spec.selector",
            "the Service selects no pods: podrun reads no EndpointSlices, so it has no endpoints",
        ),
        Some(selector) => {
            for (key, value) in selector {
                for e in label_key_errors(key) {
                    diag.error(
                        doc,
                        "spec.selector",
                        format_args!("Invalid value: {key:?}: {e}"),
                    );
                }
                for e in label_value_errors(value) {
                    diag.error(
                        doc,
                        "spec.selector",
                        format_args!("Invalid value: {value:?}: {e}"),
                    );
                }
            }
        }
    }
}
