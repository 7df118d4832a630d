//! The pod's name resolution, as the kubelet writes it: `hostAliases` appended to
//! /etc/hosts, and `dnsPolicy` / `dnsConfig` applied to /etc/resolv.conf.
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

use podrun_manifest::k8s_openapi::api::core::v1::PodSpec;
use serde::{Deserialize, Serialize};

use crate::PodError;

/// The kubelet's limits (`validation.MaxDNSNameservers`, `MaxDNSSearchPaths`).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// A pod's DNS settings (its plan).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDns {
    /// `dnsPolicy: None`: the host's resolver is not used.
    #[serde(default)]
    pub policy_none: bool,
    /// `dnsConfig`, if set.
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    /// `name` or `name:value`.
    #[serde(default)]
    pub options: Vec<String>,
    /// `hostAliases`: an address and its names.
    #[serde(default)]
    pub host_aliases: Vec<(String, Vec<String>)>,
}

impl PodDns {
    /// Whether anything changes the files podrun writes without it.
    pub fn is_empty(&self) -> bool {
        *self == PodDns::default()
    }
}

/// The pod's settings, checked as the API server checks them; `field` is `spec` (or a
/// workload's `spec.template.spec`).
pub fn plan(spec: &PodSpec, field: &str) -> Result<PodDns, PodError> {
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
        nameservers,
        searches: config.searches.unwrap_or_default(),
        options,
        host_aliases,
    })
}

/// /etc/hosts: `base` (podrun's own entries), then the host aliases as the kubelet writes
/// them.
pub fn hosts(base: &str, dns: &PodDns) -> String {
    let mut text = base.to_string();
    if dns.host_aliases.is_empty() {
        return text;
    }
    text.push_str("\n# Entries added by HostAliases.\n");
    for (ip, names) in &dns.host_aliases {
        text.push_str(&format!("{ip}\t{}\n", names.join("\t")));
    }
    text
}

/// /etc/resolv.conf: `policy` (what podrun writes for the pod's network, from the host's)
/// with `dnsConfig` merged in; `policy` as it is when there is no `dnsConfig`.
pub fn resolv_conf(policy: &str, dns: &PodDns) -> String {
    let config_set =
        !(dns.nameservers.is_empty() && dns.searches.is_empty() && dns.options.is_empty());
    if !dns.policy_none && !config_set {
        return policy.to_string();
    }
    let (mut nameservers, mut searches, mut options) = (Vec::new(), Vec::new(), Vec::new());
    if !dns.policy_none {
        for line in policy.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => nameservers.extend(words.next().map(String::from)),
                // The last search (or domain) line wins, as in resolv.conf(5).
                Some("search") | Some("domain") => searches = words.map(String::from).collect(),
                Some("options") => options.extend(words.map(String::from)),
                _ => {}
            }
        }
    }
    nameservers.extend(dns.nameservers.iter().cloned());
    searches.extend(dns.searches.iter().cloned());
    let mut nameservers = without_duplicates(nameservers);
    nameservers.truncate(MAX_NAMESERVERS);
    let mut searches = without_duplicates(searches);
    searches.truncate(MAX_SEARCHES);
    // By name: the pod's value replaces the policy's, in its place.
    for option in &dns.options {
        let name = option_name(option);
        match options.iter_mut().find(|o| option_name(o) == name) {
            Some(existing) => *existing = option.clone(),
            None => options.push(option.clone()),
        }
    }
    let mut text = String::new();
    if !searches.is_empty() {
        text.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for server in &nameservers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    text
}

fn option_name(option: &str) -> &str {
    option.split(':').next().unwrap_or(option)
}

fn without_duplicates(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> PodSpec {
        serde_json::from_value(json).unwrap()
    }

    const POLICY: &str = "nameserver 10.0.2.3\nsearch example.org\noptions edns0 ndots:1\n";

    #[test]
    fn without_settings_the_files_are_podrun_s() {
        let dns = plan(&spec(serde_json::json!({"containers": []})), "spec").unwrap();
        assert!(dns.is_empty());
        assert_eq!(resolv_conf(POLICY, &dns), POLICY);
        assert_eq!(
            hosts("127.0.0.1\tlocalhost\n", &dns),
            "127.0.0.1\tlocalhost\n"
        );
        let default = plan(
            &spec(serde_json::json!({"containers": [], "dnsPolicy": "Default"})),
            "spec",
        )
        .unwrap();
        assert_eq!(resolv_conf(POLICY, &default), POLICY);
    }

    #[test]
    fn dns_config_is_merged_as_the_kubelet_merges_it() {
        // After the "Pod's DNS Config" example of the Kubernetes documentation.
        let dns = plan(
            &spec(serde_json::json!({
                "containers": [],
                "dnsConfig": {
                    "nameservers": ["192.0.2.1", "10.0.2.3"],
                    "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}, {"name": "trust-ad"}]
                }
            })),
            "spec",
        )
        .unwrap();
        assert_eq!(
            resolv_conf(POLICY, &dns),
            "search example.org ns1.svc.cluster-domain.example my.dns.search.suffix\n\
             nameserver 10.0.2.3\nnameserver 192.0.2.1\n\
             options edns0 ndots:2 trust-ad\n"
        );
    }

    #[test]
    fn policy_none_uses_dns_config_only() {
        let dns = plan(
            &spec(serde_json::json!({
                "containers": [],
                "dnsPolicy": "None",
                "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["a.example"]}
            })),
            "spec",
        )
        .unwrap();
        assert_eq!(
            resolv_conf(POLICY, &dns),
            "search a.example\nnameserver 192.0.2.1\n"
        );
        let e = plan(
            &spec(serde_json::json!({"containers": [], "dnsPolicy": "None"})),
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
            "spec",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("spec.dnsConfig.nameservers[0]: Invalid value"),
            "{e}"
        );
    }

    #[test]
    fn at_most_three_nameservers() {
        let dns = PodDns {
            nameservers: ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        };
        let text = resolv_conf(POLICY, &dns);
        assert_eq!(text.matches("nameserver").count(), 3, "{text}");
        assert!(!text.contains("192.0.2.3"), "{text}");
    }

    #[test]
    fn host_aliases_as_the_kubelet_writes_them() {
        // The "Adding entries to Pod /etc/hosts with HostAliases" example.
        let dns = plan(
            &spec(serde_json::json!({
                "containers": [],
                "hostAliases": [
                    {"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                    {"ip": "10.1.2.3", "hostnames": ["foo.remote", "bar.remote"]}
                ]
            })),
            "spec",
        )
        .unwrap();
        assert_eq!(
            hosts("127.0.0.1\tlocalhost\n", &dns),
            "127.0.0.1\tlocalhost\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\tbar.remote\n"
        );
        let e = plan(
            &spec(serde_json::json!({"containers": [], "hostAliases": [{"ip": "local", "hostnames": ["a"]}]})),
            "spec",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("spec.hostAliases[0].ip: Invalid value"), "{e}");
    }
}
