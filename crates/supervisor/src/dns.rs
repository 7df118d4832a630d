//! The pod's name resolution files, as the kubelet writes them (the settings are planned
//! into [`podrun_pod_model::plan::dns::PodDns`]): /etc/hosts with the pod's address and
//! names (its FQDN with `subdomain`) and `hostAliases`, and /etc/resolv.conf with `dnsPolicy`
//! and `dnsConfig` applied.
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

use podrun_network::Backend;
use podrun_pod_model::plan::dns::{PodDns, PodDomain};

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

/// The pod's /etc/hosts, as the kubelet writes it (`ensureHostsFile`): for a pod with a
/// network of its own, the localhost entries and the pod's address with its names; for a
/// pod on the host's network, the host's file. Then the host aliases.
/// `hostname` is the pod's (the kernel's), `backend` its network's; `pod_ip` its address
/// when the backend does not fix it (the shared network's lease).
pub fn hosts_file(
    dns: &PodDns,
    hostname: &str,
    backend: Backend,
    pod_ip: Option<&str>,
) -> Result<String, PodError> {
    if backend == Backend::Host {
        let node = std::fs::read_to_string(NODE_HOSTS)
            .map_err(PodError::io(format!("cannot read {NODE_HOSTS}")))?;
        return Ok(host_network_hosts(&node, dns));
    }
    let pod_ip = match pod_ip {
        Some(ip) => ip.to_string(),
        None => podrun_pod_model::node::pod_ip(backend),
    };
    Ok(managed_hosts(&pod_ip, hostname, dns))
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

/// What the DNS policies give the pod on the network `backend`: the host's resolv.conf as
/// the pod can use it (see podrun-network's `resolv`), or on the shared network, unless
/// `dnsPolicy: Default`, the cluster's DNS ([`cluster_resolv_conf`]).
pub fn policy_resolv_conf(backend: Backend, dns: &PodDns, cluster: Option<&ClusterDns>) -> String {
    match cluster {
        Some(cluster) if backend == Backend::Shared && !dns.host_resolver => {
            cluster_resolv_conf(cluster)
        }
        _ => {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            podrun_network::resolv::resolv_conf(backend, &host)
        }
    }
}

/// Where a pod on the shared network finds the cluster's DNS: the holder's server on the
/// gateway, and the pod's namespace for the search path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    pub nameserver: String,
    pub namespace: String,
}

/// The kubelet's resolv.conf for `ClusterFirst` with a cluster DNS: the cluster's server,
/// the namespace's, the services' and the cluster's domains to search, `ndots:5` (so that
/// `api` and `api.prod` are tried inside the cluster first).
pub fn cluster_resolv_conf(cluster: &ClusterDns) -> String {
    let domain = "cluster.local";
    format!(
        "search {ns}.svc.{domain} svc.{domain} {domain}\nnameserver {server}\noptions ndots:5\n",
        ns = cluster.namespace,
        server = cluster.nameserver,
    )
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

    /// What the kubelet writes before the pod's own line.
    const MANAGED: &str = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

    const POLICY: &str = "nameserver 10.0.2.3\nsearch example.org\noptions edns0 ndots:1\n";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_pod_s_line_has_its_address_fqdn_and_hostname() {
        let dns = PodDns {
            domain: Some(PodDomain {
                hostname: "busybox-1".into(),
                domain: "busybox-subdomain.default.svc.cluster.local".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            managed_hosts("10.0.2.100", "busybox-1", &dns),
            format!("{MANAGED}10.0.2.100\tbusybox-1.busybox-subdomain.default.svc.cluster.local\tbusybox-1\n")
        );
        // With setHostnameAsFQDN the kernel's name is the FQDN; the line is the same.
        assert_eq!(
            managed_hosts(
                "10.0.2.100",
                "busybox-1.busybox-subdomain.default.svc.cluster.local",
                &dns
            ),
            managed_hosts("10.0.2.100", "busybox-1", &dns)
        );
        assert_eq!(
            hosts_file(&PodDns::default(), "web", Backend::Slirp4netns, None).unwrap(),
            format!("{MANAGED}10.0.2.100\tweb\n")
        );
    }

    #[test]
    fn without_settings_the_files_are_podrun_s() {
        let dns = PodDns::default();
        assert_eq!(resolv_conf(POLICY, &dns), POLICY);
        assert!(
            !managed_hosts("10.0.2.100", "web", &dns).contains("HostAliases"),
            "no alias section without aliases"
        );
    }

    #[test]
    fn dns_config_is_merged_as_the_kubelet_merges_it() {
        // After the "Pod's DNS Config" example of the Kubernetes documentation.
        let dns = PodDns {
            nameservers: strings(&["192.0.2.1", "10.0.2.3"]),
            searches: strings(&["ns1.svc.cluster-domain.example", "my.dns.search.suffix"]),
            options: strings(&["ndots:2", "edns0", "trust-ad"]),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(POLICY, &dns),
            "search example.org ns1.svc.cluster-domain.example my.dns.search.suffix\n\
             nameserver 10.0.2.3\nnameserver 192.0.2.1\n\
             options edns0 ndots:2 trust-ad\n"
        );
    }

    #[test]
    fn policy_none_uses_dns_config_only() {
        let dns = PodDns {
            policy_none: true,
            nameservers: strings(&["192.0.2.1"]),
            searches: strings(&["a.example"]),
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(POLICY, &dns),
            "search a.example\nnameserver 192.0.2.1\n"
        );
    }

    #[test]
    fn at_most_three_nameservers() {
        let dns = PodDns {
            nameservers: strings(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
            ..Default::default()
        };
        let text = resolv_conf(POLICY, &dns);
        assert_eq!(text.matches("nameserver").count(), 3, "{text}");
        assert!(!text.contains("192.0.2.3"), "{text}");
    }

    #[test]
    fn host_aliases_as_the_kubelet_writes_them() {
        // The "Adding entries to Pod /etc/hosts with HostAliases" example.
        let dns = PodDns {
            host_aliases: vec![
                ("127.0.0.1".into(), strings(&["foo.local", "bar.local"])),
                ("10.1.2.3".into(), strings(&["foo.remote", "bar.remote"])),
            ],
            ..Default::default()
        };
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
    }
}
