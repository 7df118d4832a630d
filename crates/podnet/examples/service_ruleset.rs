//! Prints the Service table [`podrun_podnet::services_nft::ruleset`] renders, for
//! scripts/bench/service-forwarding.sh (which loads it into namespaces of its own) and for
//! reading. Each argument is one TCP Service port and its ready endpoints:
//!
//! ```text
//! cargo run -q -p podrun-podnet --example service_ruleset -- \
//!     10.96.0.10:5201=10.89.0.3:5201 10.96.0.11:7000=10.89.0.3,10.89.0.4:7000
//! ```
//!
//! `10.96.0.12:80=:80` is a Service port without endpoint. The network is the holder's
//! default one (10.89.0.0/24 on podrun0, uplink tap0).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use podrun_network::Protocol;
use podrun_podnet::cluster::{PodRecord, ServicePort, ServiceRecord, TargetPort};
use podrun_podnet::services_nft::{ruleset, ServiceNetwork};
use podrun_podnet::Subnet;

fn main() {
    let mut services = Vec::new();
    let mut pods: BTreeMap<Ipv4Addr, PodRecord> = BTreeMap::new();
    for (i, arg) in std::env::args().skip(1).enumerate() {
        let parsed = parse(&arg).unwrap_or_else(|| {
            eprintln!("usage: service_ruleset CIP:PORT=[ADDR[,ADDR…]]:TARGET …  (not `{arg}`)");
            std::process::exit(2);
        });
        let (cluster_ip, port, addresses, target) = parsed;
        let label = format!("svc{i}");
        for address in addresses {
            let pod = pods.entry(address).or_insert_with(|| PodRecord {
                namespace: "default".into(),
                name: format!("pod-{address}"),
                address,
                labels: BTreeMap::new(),
                hostname: format!("pod-{address}"),
                subdomain: None,
                named_ports: vec![],
                ready: true,
            });
            pod.labels.insert(label.clone(), "1".into());
        }
        services.push(ServiceRecord {
            namespace: "default".into(),
            name: label.clone(),
            cluster_ip: Some(cluster_ip),
            ports: vec![ServicePort {
                name: None,
                port,
                protocol: Protocol::Tcp,
                target: TargetPort::Number(target),
                node_port: None,
            }],
            selector: [(label, "1".to_string())].into(),
        });
    }
    let network = ServiceNetwork {
        pod_subnet: Subnet::DEFAULT,
        bridge: "podrun0".into(),
        uplink: "tap0".into(),
        gateway: Ipv4Addr::new(10, 0, 2, 100),
    };
    let pods: Vec<PodRecord> = pods.into_values().collect();
    print!("{}", ruleset(&services, &pods, &network));
}

/// `CIP:PORT=ADDR[,ADDR…]:TARGET`, or `CIP:PORT=:TARGET` for no endpoint.
fn parse(arg: &str) -> Option<(Ipv4Addr, u16, Vec<Ipv4Addr>, u16)> {
    let (front, back) = arg.split_once('=')?;
    let (cluster_ip, port) = front.split_once(':')?;
    let (addresses, target) = back.rsplit_once(':')?;
    let addresses = addresses
        .split(',')
        .filter(|a| !a.is_empty())
        .map(|a| a.parse().ok())
        .collect::<Option<Vec<Ipv4Addr>>>()?;
    Some((
        cluster_ip.parse().ok()?,
        port.parse().ok()?,
        addresses,
        target.parse().ok()?,
    ))
}
