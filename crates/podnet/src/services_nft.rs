//! Service forwarding with nftables in the holder's namespace (issue 17): the ClusterIPs and
//! NodePorts of the Services, spread over their endpoints by DNAT, as kube-proxy's nftables
//! mode does.
//!
//! One table, `ip podrun_services`, beside (never inside) the masquerade table of
//! [`crate::nft`], rewritten whole in one `nft -f -` transaction whenever a Service or an
//! endpoint changes:
//!
//! * `prerouting` (nat, `dstnat`): `ip daddr CIP tcp dport PORT` → `dnat to` one endpoint, or
//!   `numgen random mod N map { 0 : addr . port, … }` for several (random, as kube-proxy);
//!   NodePorts arrive from slirp4netns' tap device at [`ServiceNetwork::gateway`].
//! * `output` (nat, `dstnat`): the same for NodePorts the holder relays itself (pasta's way
//!   out, [`crate::relay`]): its relay connects to the gateway's node port from inside.
//! * `postrouting` (nat, `srcnat`): a pod's DNATed connection that leaves through the bridge
//!   is masqueraded to the bridge's address. Client and endpoint share one bridge: without
//!   it the endpoint's reply would be bridged straight to the client, never un-NATed, and the
//!   client would reset it (it talked to the ClusterIP, not to the pod).
//! * `forward` and `input` (filter): a Service port without endpoint is refused at once (TCP
//!   reset, ICMP port unreachable for UDP), as kube-proxy does, instead of letting the packet
//!   wander out of the uplink and the client hang; so is anything else sent to a ClusterIP.
//!
//! Connections already made keep their endpoint across a reload (conntrack holds the NAT
//! binding), as with kube-proxy; UDP flows to a gone endpoint last until conntrack forgets them.
//! The holder needs no sysctl beyond `ip_forward`, but a pod reaching its own Service needs,
//! where br_netfilter is active (`net.bridge.bridge-nf-call-iptables` = 1), either hairpin
//! mode on its bridge port or that sysctl set to 0 in the holder's namespace (see
//! docs/benchmarks.md).
//!
//! scripts/bench/service-forwarding.sh measured this against a userspace proxy and a direct
//! pod address (docs/benchmarks.md, "Service forwarding (issue 17)").

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use podrun_network::Protocol;

use crate::cluster::{self, Endpoint, PodRecord, ServicePort, ServiceRecord};
use crate::ipam::Subnet;
use crate::PodnetError;

/// The table's name (family `ip`).
pub const TABLE: &str = "podrun_services";

/// Where the Service rules apply: the holder's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// The pods' subnet: the sources whose DNATed connections are masqueraded.
    pub pod_subnet: Subnet,
    /// The pods' bridge (`podrun0`).
    pub bridge: String,
    /// slirp4netns' tap device (`tap0`): where NodePort connections come in.
    pub uplink: String,
    /// The address slirp4netns forwards the published NodePorts to (its `guest_addr`).
    pub gateway: Ipv4Addr,
}

/// The whole Service table as one `nft -f -` transaction that replaces the previous one:
/// creating the table first makes its deletion valid on the first load too, and the kernel
/// applies the three steps at once, so no connection sees a table half written.
///
/// Services are taken in (namespace, name) order and their ports in (port, protocol) order,
/// endpoints in address order ([`cluster::endpoints`]): the same cluster always gives the
/// same text, so the holder can skip a reload when nothing changed. Headless Services
/// (no ClusterIP) get no rule: their name resolves to the pods themselves.
pub fn ruleset(services: &[ServiceRecord], pods: &[PodRecord], config: &ServiceNetwork) -> String {
    let mut services: Vec<&ServiceRecord> = services.iter().collect();
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut dnat = Vec::new();
    let mut dnat_local = Vec::new();
    let mut reject_forward = Vec::new();
    let mut reject_input = Vec::new();
    let mut cluster_ips = Vec::new();
    for service in services {
        let Some(cluster_ip) = service.cluster_ip else {
            continue;
        };
        cluster_ips.push(cluster_ip);
        let mut ports: Vec<&ServicePort> = service.ports.iter().collect();
        ports.sort_by_key(|p| (p.port, p.protocol.name()));
        for port in ports {
            let endpoints = cluster::endpoints(service, port, pods);
            let proto = port.protocol.name();
            let comment = comment(service, port);
            let cluster_match = format!("ip daddr {cluster_ip} {proto} dport {}", port.port);
            let node_match = port.node_port.map(|node_port| {
                format!(
                    "iifname \"{}\" ip daddr {} {proto} dport {node_port}",
                    config.uplink, config.gateway
                )
            });
            if endpoints.is_empty() {
                let reject = reject(port.protocol);
                reject_forward.push(format!("{cluster_match} {reject} comment {comment}"));
                if let Some(node_match) = node_match {
                    reject_input.push(format!("{node_match} {reject} comment {comment}"));
                }
            } else {
                let target = dnat_target(&endpoints);
                dnat.push(format!("{cluster_match} {target} comment {comment}"));
                if let Some(node_match) = node_match {
                    dnat.push(format!("{node_match} {target} comment {comment}"));
                }
                if let Some(node_port) = port.node_port {
                    let local_match =
                        format!("ip daddr {} {proto} dport {node_port}", config.gateway);
                    dnat_local.push(format!("{local_match} {target} comment {comment}"));
                }
            }
        }
    }
    cluster_ips.sort();
    cluster_ips.dedup();
    if !cluster_ips.is_empty() {
        // Any other port (or protocol) of a ClusterIP: nothing answers there in Kubernetes
        // either; refuse rather than send it out of the uplink.
        let set = cluster_ips
            .iter()
            .map(Ipv4Addr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        reject_forward.push(format!(
            "ip daddr {{ {set} }} meta l4proto tcp reject with tcp reset comment \"cluster IP, no such port\""
        ));
        reject_forward.push(format!(
            "ip daddr {{ {set} }} reject comment \"cluster IP, no such port\""
        ));
    }
    let masquerade = format!(
        "ip saddr {} oifname \"{}\" ct status dnat masquerade comment \"hairpin: replies come back through here\"",
        config.pod_subnet, config.bridge
    );

    let mut text = format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n");
    chain(
        &mut text,
        "prerouting",
        "nat",
        "prerouting",
        "dstnat",
        &dnat,
    );
    chain(
        &mut text,
        "output",
        "nat",
        "output",
        // dstnat's value: nft 1.0.6 (Debian 12) takes that word on prerouting only.
        "-100",
        &dnat_local,
    );
    chain(
        &mut text,
        "postrouting",
        "nat",
        "postrouting",
        "srcnat",
        &[masquerade],
    );
    chain(
        &mut text,
        "forward",
        "filter",
        "forward",
        "filter",
        &reject_forward,
    );
    chain(
        &mut text,
        "input",
        "filter",
        "input",
        "filter",
        &reject_input,
    );
    text.push_str("}\n");
    text
}

/// Loads a [`ruleset`] in the caller's network namespace (the holder's): the same `nft -f -`
/// as the masquerade table's ([`crate::nft::load`]), so one place knows how to run `nft`.
pub fn load(ruleset: &str) -> Result<(), PodnetError> {
    crate::nft::load(ruleset)
}

/// Writes one base chain; an empty one is still written, so that every table has the same
/// five chains whatever the cluster holds.
fn chain(text: &mut String, name: &str, kind: &str, hook: &str, priority: &str, rules: &[String]) {
    let _ = writeln!(text, "\tchain {name} {{");
    let _ = writeln!(
        text,
        "\t\ttype {kind} hook {hook} priority {priority}; policy accept;"
    );
    for rule in rules {
        let _ = writeln!(text, "\t\t{rule}");
    }
    text.push_str("\t}\n");
}

/// The DNAT statement: one endpoint is a plain `dnat to`; several are chosen by a random
/// number per new connection, the way kube-proxy spreads them (nft 1.0.6 accepts the
/// address . port map, checked by the namespace test below), so no chain per endpoint is
/// needed.
fn dnat_target(endpoints: &[Endpoint]) -> String {
    match endpoints {
        [one] => format!("dnat to {}:{}", one.address, one.port),
        many => {
            let entries = many
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{i} : {} . {}", e.address, e.port))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "dnat to numgen random mod {} map {{ {entries} }}",
                many.len()
            )
        }
    }
}

/// How a port without endpoint refuses: a TCP reset, or for UDP the ICMP port unreachable
/// a closed port would send (what kube-proxy answers too).
fn reject(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "reject with tcp reset",
        Protocol::Udp => "reject with icmp type port-unreachable",
    }
}

/// `"namespace/name:port"`, quoted, for `nft list` readers. Kubernetes' names are DNS labels
/// already; anything else is replaced, so no name can end the string or the rule.
fn comment(service: &ServiceRecord, port: &ServicePort) -> String {
    let port_name = port
        .name
        .clone()
        .unwrap_or_else(|| format!("{}/{}", port.port, port.protocol.name()));
    let text = format!("{}/{}:{port_name}", service.namespace, service.name);
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._/:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::test_support::{self, pod, service};
    use crate::cluster::TargetPort;

    fn network() -> ServiceNetwork {
        ServiceNetwork {
            pod_subnet: Subnet::DEFAULT,
            bridge: "podrun0".into(),
            uplink: "tap0".into(),
            gateway: Ipv4Addr::new(10, 0, 2, 100),
        }
    }

    /// An unnamed port to a numbered target port.
    fn port(port: u16, protocol: Protocol, target: u16, node_port: Option<u16>) -> ServicePort {
        ServicePort {
            node_port,
            ..test_support::port(port, protocol, TargetPort::Number(target))
        }
    }

    /// `web` has two ready endpoints (and a NodePort), `db` none (its pod is not ready),
    /// `peers` is headless.
    fn cluster() -> (Vec<ServiceRecord>, Vec<PodRecord>) {
        let services = vec![
            service(
                "web",
                Some([10, 96, 0, 10]),
                vec![port(80, Protocol::Tcp, 8080, Some(30080))],
            ),
            service("peers", None, vec![port(7000, Protocol::Tcp, 7000, None)]),
            service(
                "db",
                Some([10, 96, 0, 11]),
                vec![
                    port(5432, Protocol::Tcp, 5432, None),
                    port(53, Protocol::Udp, 5353, None),
                ],
            ),
        ];
        let pods = vec![
            pod("web-b", 3, "web", true),
            pod("web-a", 2, "web", true),
            pod("web-c", 4, "web", false),
            pod("db-a", 5, "db", false),
            pod("peer-a", 6, "peers", true),
        ];
        (services, pods)
    }

    const EXPECTED: &str = r#"table ip podrun_services {}
delete table ip podrun_services
table ip podrun_services {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.96.0.10 tcp dport 80 dnat to numgen random mod 2 map { 0 : 10.89.0.2 . 8080, 1 : 10.89.0.3 . 8080 } comment "default/web:80/tcp"
		iifname "tap0" ip daddr 10.0.2.100 tcp dport 30080 dnat to numgen random mod 2 map { 0 : 10.89.0.2 . 8080, 1 : 10.89.0.3 . 8080 } comment "default/web:80/tcp"
	}
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 10.0.2.100 tcp dport 30080 dnat to numgen random mod 2 map { 0 : 10.89.0.2 . 8080, 1 : 10.89.0.3 . 8080 } comment "default/web:80/tcp"
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.89.0.0/24 oifname "podrun0" ct status dnat masquerade comment "hairpin: replies come back through here"
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip daddr 10.96.0.11 udp dport 53 reject with icmp type port-unreachable comment "default/db:53/udp"
		ip daddr 10.96.0.11 tcp dport 5432 reject with tcp reset comment "default/db:5432/tcp"
		ip daddr { 10.96.0.10, 10.96.0.11 } meta l4proto tcp reject with tcp reset comment "cluster IP, no such port"
		ip daddr { 10.96.0.10, 10.96.0.11 } reject comment "cluster IP, no such port"
	}
	chain input {
		type filter hook input priority filter; policy accept;
	}
}
"#;

    #[test]
    fn renders_dnat_for_endpoints_reject_for_none_and_nothing_for_headless() {
        let (services, pods) = cluster();
        assert_eq!(ruleset(&services, &pods, &network()), EXPECTED);
    }

    #[test]
    fn the_same_cluster_in_any_order_gives_the_same_text() {
        let (mut services, mut pods) = cluster();
        services.reverse();
        pods.reverse();
        services[1].ports.reverse();
        assert_eq!(ruleset(&services, &pods, &network()), EXPECTED);
    }

    #[test]
    fn one_endpoint_is_a_plain_dnat_and_a_node_port_without_endpoint_is_refused_on_input() {
        let services = vec![
            service(
                "one",
                Some([10, 96, 0, 20]),
                vec![port(80, Protocol::Tcp, 8080, None)],
            ),
            service(
                "none",
                Some([10, 96, 0, 21]),
                vec![port(53, Protocol::Udp, 53, Some(30053))],
            ),
        ];
        let pods = vec![pod("one-a", 7, "one", true)];
        let text = ruleset(&services, &pods, &network());
        assert!(
            text.contains("ip daddr 10.96.0.20 tcp dport 80 dnat to 10.89.0.7:8080 comment"),
            "{text}"
        );
        let input = &text[text.find("chain input").unwrap()..];
        assert!(
            input.contains(
                "iifname \"tap0\" ip daddr 10.0.2.100 udp dport 30053 reject with icmp type port-unreachable"
            ),
            "{text}"
        );
    }

    #[test]
    fn no_service_still_gives_the_five_chains_and_no_cluster_ip_set() {
        let text = ruleset(&[], &[], &network());
        for chain in ["prerouting", "output", "postrouting", "forward", "input"] {
            assert!(text.contains(&format!("chain {chain} {{")), "{text}");
        }
        assert!(!text.contains("ip daddr {"), "{text}");
    }

    #[test]
    fn a_comment_cannot_break_out_of_its_quotes() {
        let mut svc = service(
            "web",
            Some([10, 96, 0, 10]),
            vec![port(80, Protocol::Tcp, 80, None)],
        );
        svc.ports[0].name = Some("x\" accept; #".into());
        assert_eq!(comment(&svc, &svc.ports[0]), "\"default/web:x__accept___\"");
    }

    /// `nft` itself, in a user and network namespace of its own (no privilege, nothing of the
    /// machine touched): the ruleset loads, loads again over itself (the replacing
    /// transaction), and reads back with the DNAT map nft 1.0.6 must accept.
    #[test]
    fn nft_loads_the_ruleset_twice_in_a_throwaway_namespace() {
        let Some(nft) = find_program("nft") else {
            eprintln!("skipped: nft is not installed (Debian's nftables)");
            return;
        };
        let Some(unshare) = find_program("unshare") else {
            eprintln!("skipped: unshare is not installed (util-linux)");
            return;
        };
        let (services, pods) = cluster();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.nft");
        std::fs::write(&file, ruleset(&services, &pods, &network())).unwrap();
        let script = format!(
            "{nft} -f {file} && {nft} -f {file} && {nft} list table ip {TABLE}",
            nft = nft.display(),
            file = file.display()
        );
        let out = std::process::Command::new(unshare)
            .args(["--user", "--map-root-user", "--net", "sh", "-c", &script])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout
                .contains("numgen random mod 2 map { 0 : 10.89.0.2 . 8080, 1 : 10.89.0.3 . 8080 }"),
            "{stdout}"
        );
        assert_eq!(stdout.matches("chain ").count(), 5, "{stdout}");
    }

    fn find_program(name: &str) -> Option<std::path::PathBuf> {
        let path = std::env::var("PATH").unwrap_or_default();
        let found = path
            .split(':')
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .map(|dir| std::path::Path::new(dir).join(name))
            .find(|candidate| candidate.is_file());
        found
    }
}
