//! Planning the pod's name resolution (written by the supervisor's `dns` as the kubelet
//! writes it): /etc/hosts with the pod's address
//! and names (its FQDN with `subdomain`, see podrun-manifest's `hostname`) and
//! `hostAliases`, and `dnsPolicy` / `dnsConfig` applied to /etc/resolv.conf.
//!
//! There is no cluster DNS on one host, so the policies mean:
//! * `Default`: the host's resolver (through the network helper's forwarder, see
//!   podrun-network's `resolv`), as the node's resolv.conf on a cluster.
//! * `ClusterFirst` (Kubernetes' default) and `ClusterFirstWithHostNet`: the same, as the
//!   kubelet does when it has no cluster DNS configured.
//! * `None`: only what `dnsConfig` says (which must then be set, with a nameserver).
//!
//! `dnsConfig` is merged as the kubelet merges it: its nameservers and searches are added
//! after those of the policy (duplicates dropped, 3 nameservers and 32 searches at most), its
//! options replace the policy's options of the same name.

use std::net::IpAddr;

use podrun_manifest::hostname::PodHostname;
use podrun_manifest::k8s_openapi::api::core::v1::PodSpec;
use podrun_pod_model::plan::dns::{PodDns, PodDomain};
use podrun_pod_model::PodError;

/// The names of the pod of `pod` (see podrun-manifest's `hostname`); `field` is `spec` (or a
/// workload's `spec.template.spec`). The manifest's validation refuses the same error.
pub fn hostname(
    pod: &podrun_manifest::k8s_openapi::api::core::v1::Pod,
    field: &str,
) -> Result<PodHostname, PodError> {
    podrun_manifest::hostname::pod_hostname(pod)
        .map_err(|e| PodError::msg(format!("{field}.setHostnameAsFQDN: {e}")))
}

/// The pod's settings, checked as the API server checks them; `field` is `spec` (or a
/// workload's `spec.template.spec`).
pub fn plan(spec: &PodSpec, names: &PodHostname, field: &str) -> Result<PodDns, PodError> {
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let policy_none = match policy {
        "ClusterFirst" | "ClusterFirstWithHostNet" | "Default" => false,
        "None" => true,
        other => {
            return Err(PodError::msg(format!(
                "{field}.dnsPolicy: Unsupported value: \"{other}\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""
            )))
        }
    };
    let config = spec.dns_config.clone().unwrap_or_default();
    let nameservers = config.nameservers.unwrap_or_default();
    if policy_none && (spec.dns_config.is_none() || nameservers.is_empty()) {
        return Err(PodError::msg(format!(
            "{field}.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None\nhint: add `dnsConfig: {{nameservers: [ADDRESS]}}`, or use `dnsPolicy: Default` for the host's resolver"
        )));
    }
    for (i, server) in nameservers.iter().enumerate() {
        if server.parse::<IpAddr>().is_err() {
            return Err(PodError::msg(format!(
                "{field}.dnsConfig.nameservers[{i}]: Invalid value: \"{server}\": must be a valid IP address"
            )));
        }
    }
    let mut options = Vec::new();
    for (i, option) in config.options.unwrap_or_default().into_iter().enumerate() {
        let name = option.name.unwrap_or_default();
        if name.is_empty() {
            return Err(PodError::msg(format!(
                "{field}.dnsConfig.options[{i}].name: Required value"
            )));
        }
        options.push(match option.value {
            Some(value) => format!("{name}:{value}"),
            None => name,
        });
    }
    let mut host_aliases = Vec::new();
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        if alias.ip.parse::<IpAddr>().is_err() {
            return Err(PodError::msg(format!(
                "{field}.hostAliases[{i}].ip: Invalid value: \"{}\": must be a valid IP address",
                alias.ip
            )));
        }
        host_aliases.push((
            alias.ip.clone(),
            alias.hostnames.clone().unwrap_or_default(),
        ));
    }
    Ok(PodDns {
        policy_none,
        host_resolver: policy == "Default",
        nameservers,
        searches: config.searches.unwrap_or_default(),
        options,
        host_aliases,
        domain: names.domain.clone().map(|domain| PodDomain {
            hostname: names.hostname.clone(),
            domain,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> PodSpec {
        serde_json::from_value(json).unwrap()
    }

    /// A pod `web` without a domain.
    fn names() -> PodHostname {
        PodHostname {
            hostname: "web".into(),
            domain: None,
            kernel: "web".into(),
        }
    }

    // What the planned settings become in /etc/hosts and /etc/resolv.conf is tested with
    // the supervisor's `dns`, which writes them.
    #[test]
    fn bad_settings_name_their_field() {
        let none = plan(
            &spec(serde_json::json!({
                "containers": [],
                "dnsPolicy": "None",
                "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["a.example"]}
            })),
            &names(),
            "spec",
        )
        .unwrap();
        assert!(none.policy_none);
        assert_eq!(none.nameservers, ["192.0.2.1"]);
        let e = plan(
            &spec(serde_json::json!({"containers": [], "dnsPolicy": "None"})),
            &names(),
            "spec",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("spec.dnsConfig.nameservers: Required value"),
            "{e}"
        );
        assert!(e.contains("hint:"), "{e}");
        let e = plan(
            &spec(serde_json::json!({"containers": [], "dnsPolicy": "Cluster"})),
            &names(),
            "spec",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("spec.dnsPolicy: Unsupported value: \"Cluster\""),
            "{e}"
        );
        let e = plan(
            &spec(serde_json::json!({"containers": [], "dnsConfig": {"nameservers": ["dns.example"]}})),
            &names(),
            "spec",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("spec.dnsConfig.nameservers[0]: Invalid value"),
            "{e}"
        );
    }
}
