//! The pod's name resolution, as the kubelet writes it: /etc/hosts with the pod's address
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
use podrun_network::Backend;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::PodError;

/// The first line of the kubelet's /etc/hosts (`managedHostsHeader`), and of the one it
/// makes from the node's for a pod on the host's network.
const MANAGED_HOSTS_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HOSTS_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";

/// The node's hosts file, the base of a host-network pod's.
const NODE_HOSTS: &str = "/etc/hosts";

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
    /// `subdomain`: the pod's short hostname and its domain, for its /etc/hosts line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<PodDomain>,
}

/// A pod's FQDN in parts: `<hostname>.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDomain {
    pub hostname: String,
    /// `<subdomain>.<namespace>.svc.cluster.local`.
    pub domain: String,
}

/// The names of the pod of `pod` (see podrun-manifest's `hostname`); `field` is `spec` (or a
/// workload's `spec.template.spec`). The manifest's validation refuses the same error.
pub fn hostname(
    pod: &podrun_manifest::k8s_openapi::api::core::v1::Pod,
    field: &str,
) -> Result<PodHostname, PodError> {
    podrun_manifest::hostname::pod_hostname(pod)
        .map_err(|e| PodError::msg(format!("{field}.setHostnameAsFQDN: {e}")))
}

impl PodDns {
    /// Whether anything changes the files podrun writes without it.
    pub fn is_empty(&self) -> bool {
        *self == PodDns::default()
    }
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

/// The pod's /etc/hosts, as the kubelet writes it (`ensureHostsFile`): for a pod with a
/// network of its own, the localhost entries and the pod's address with its names; for a
/// pod on the host's network, the host's file. Then the host aliases.
pub fn hosts_file(plan: &Plan) -> Result<String, PodError> {
    if plan.network.backend == Backend::Host {
        let node = std::fs::read_to_string(NODE_HOSTS)
            .map_err(PodError::io(format!("cannot read {NODE_HOSTS}")))?;
        return Ok(host_network_hosts(&node, &plan.dns));
    }
    let pod_ip = crate::node::pod_ip(plan.network.backend);
    Ok(managed_hosts(&pod_ip, &plan.hostname, &plan.dns))
}

/// The kubelet's `managedHostsFileContent`: `hostname` is the kernel's, the pod's own name
/// when it has no domain.
fn managed_hosts(pod_ip: &str, hostname: &str, dns: &PodDns) -> String {
    let mut text = String::from(MANAGED_HOSTS_HEADER);
    text.push_str("127.0.0.1\tlocalhost\n");
    text.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    text.push_str("fe00::0\tip6-localnet\n");
    text.push_str("fe00::0\tip6-mcastprefix\n");
    text.push_str("fe00::1\tip6-allnodes\n");
    text.push_str("fe00::2\tip6-allrouters\n");
    match &dns.domain {
        Some(PodDomain { hostname, domain }) => {
            text.push_str(&format!("{pod_ip}\t{hostname}.{domain}\t{hostname}\n"))
        }
        None => text.push_str(&format!("{pod_ip}\t{hostname}\n")),
    }
    push_host_aliases(&mut text, dns);
    text
}

/// The kubelet's `nodeHostsFileContent`.
fn host_network_hosts(node: &str, dns: &PodDns) -> String {
    let mut text = format!("{MANAGED_HOSTS_HEADER_HOST_NETWORK}{node}");
    push_host_aliases(&mut text, dns);
    text
}

/// The kubelet's `hostsEntriesFromHostAliases`: one line per address.
fn push_host_aliases(text: &mut String, dns: &PodDns) {
    if dns.host_aliases.is_empty() {
        return;
    }
    text.push_str("\n# Entries added by HostAliases.\n");
    for (ip, names) in &dns.host_aliases {
        text.push_str(&format!("{ip}\t{}\n", names.join("\t")));
    }
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

    /// A pod `web` without a domain.
    fn names() -> PodHostname {
        PodHostname {
            hostname: "web".into(),
            domain: None,
            kernel: "web".into(),
        }
    }

    /// What the kubelet writes before the pod's own line.
    const MANAGED: &str = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

    #[test]
    fn the_pod_s_line_has_its_address_fqdn_and_hostname() {
        let pod: podrun_manifest::k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "busybox1", "namespace": "default"},
                "spec": {"containers": [], "hostname": "busybox-1", "subdomain": "busybox-subdomain"}
            }))
            .unwrap();
        let names = hostname(&pod, "spec").unwrap();
        let dns = plan(pod.spec.as_ref().unwrap(), &names, "spec").unwrap();
        assert!(!dns.is_empty(), "the domain is kept in the plan");
        assert_eq!(
            managed_hosts("10.0.2.100", &names.kernel, &dns),
            format!("{MANAGED}10.0.2.100\tbusybox-1.busybox-subdomain.default.svc.cluster.local\tbusybox-1\n")
        );
        // With setHostnameAsFQDN the kernel's name is the FQDN; the line is the same.
        let mut fqdn_pod = pod.clone();
        fqdn_pod.spec.as_mut().unwrap().set_hostname_as_fqdn = Some(true);
        let fqdn_names = hostname(&fqdn_pod, "spec").unwrap();
        assert_eq!(
            fqdn_names.kernel,
            "busybox-1.busybox-subdomain.default.svc.cluster.local"
        );
        assert_eq!(
            managed_hosts("10.0.2.100", &fqdn_names.kernel, &dns),
            managed_hosts("10.0.2.100", &names.kernel, &dns)
        );
        // Too long for the kernel: refused, naming the field and the length.
        fqdn_pod.spec.as_mut().unwrap().subdomain = Some("s".repeat(30));
        let e = hostname(&fqdn_pod, "spec.template.spec")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "spec.template.spec.setHostnameAsFQDN: Invalid value: true: the pod's FQDN"
            ),
            "{e}"
        );
        assert!(e.contains("is 66 characters long"), "{e}");
    }

    const POLICY: &str = "nameserver 10.0.2.3\nsearch example.org\noptions edns0 ndots:1\n";

    #[test]
    fn without_settings_the_files_are_podrun_s() {
        let dns = plan(
            &spec(serde_json::json!({"containers": []})),
            &names(),
            "spec",
        )
        .unwrap();
        assert!(dns.is_empty());
        assert_eq!(resolv_conf(POLICY, &dns), POLICY);
        assert!(
            !managed_hosts("10.0.2.100", "web", &dns).contains("HostAliases"),
            "no alias section without aliases"
        );
        let default = plan(
            &spec(serde_json::json!({"containers": [], "dnsPolicy": "Default"})),
            &names(),
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
            &names(),
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
            &names(),
            "spec",
        )
        .unwrap();
        assert_eq!(
            resolv_conf(POLICY, &dns),
            "search a.example\nnameserver 192.0.2.1\n"
        );
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
            &names(),
            "spec",
        )
        .unwrap();
        let aliases = "\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\tbar.remote\n";
        assert_eq!(
            managed_hosts("10.0.2.100", "web", &dns),
            format!("{MANAGED}10.0.2.100\tweb\n{aliases}")
        );
        // On the host's network: the host's file, then the aliases.
        assert_eq!(
            host_network_hosts("127.0.0.1\tlocalhost\n", &dns),
            format!(
                "# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n{aliases}"
            )
        );
        let e = plan(
            &spec(serde_json::json!({"containers": [], "hostAliases": [{"ip": "local", "hostnames": ["a"]}]})),
            &names(),
            "spec",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("spec.hostAliases[0].ip: Invalid value"), "{e}");
    }
}
