//! The pod's network: the backend and published ports, worked out from the manifest and
//! `podrun play`'s options (the supervisor's `network` runs the helper, podrun-network).
//!
//! * `hostNetwork: true` (or `--network host`): the pod stays in the network namespace podrun
//!   runs in and takes the host's hostname; ports need no publishing.
//! * `none`: loopback only; nothing can be published.
//! * `slirp4netns` (the default) and `pasta`: a helper gives the pod 10.0.2.100/24 on `tap0`,
//!   a default route via 10.0.2.2 and DNS at 10.0.2.3; published ports are forwarded by it.

use std::net::Ipv4Addr;

use podrun_manifest::PodManifest;
use podrun_network::{Backend, NetworkPlan, PortMapping, Protocol};
use podrun_pod_model::plan::Plan;
use podrun_pod_model::PodError;

/// What `podrun play` was asked for (command line and config file).
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    pub backend: Backend,
    pub allow_host_loopback: bool,
    /// `--publish`: each replaces the manifest's ports of the same containerPort and protocol.
    pub publish: Vec<PortMapping>,
    /// `--publish-all`: containerPorts without a hostPort are published on the same number.
    pub publish_all: bool,
    /// Whether the manifest has more than one pod: then a `--publish` applies only to the pods
    /// that declare its containerPort.
    pub several_pods: bool,
}

/// The network of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    pub plan: NetworkPlan,
    pub ports: Vec<PortMapping>,
    /// Things the user asked for that do not apply (printed as warnings).
    pub warnings: Vec<String>,
}

/// The ports declared in the manifest: `(containerPort, protocol, hostIP, hostPort)`, hostPort
/// 0 when not given. `who` prefixes errors.
fn declared_ports(
    pod: &PodManifest,
    who: &str,
) -> Result<Vec<(u16, Protocol, Ipv4Addr, u16)>, PodError> {
    let mut ports = Vec::new();
    let containers = pod.pod.spec.iter().flat_map(|s| s.containers.iter());
    for (i, container) in containers.enumerate() {
        for (j, port) in container.ports.iter().flatten().enumerate() {
            let field = format!("{who}: spec.containers[{i}].ports[{j}]");
            let number = |value: i32, name: &str| {
                u16::try_from(value)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        PodError::msg(format!("{field}.{name}: {value} is not a port (1-65535)"))
                    })
            };
            let text = port.protocol.as_deref().unwrap_or("TCP");
            let protocol = Protocol::parse(text).ok_or_else(|| {
                PodError::msg(format!(
                    "{field}.protocol: `{text}` is not supported (TCP or UDP)"
                ))
            })?;
            let host_ip = match port.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
                None => Ipv4Addr::UNSPECIFIED,
                Some(ip) => ip.parse().map_err(|_| {
                    PodError::msg(format!("{field}.hostIP: `{ip}` is not an IPv4 address"))
                })?,
            };
            let host_port = match port.host_port {
                None | Some(0) => 0,
                Some(value) => number(value, "hostPort")?,
            };
            ports.push((
                number(port.container_port, "containerPort")?,
                protocol,
                host_ip,
                host_port,
            ));
        }
    }
    Ok(ports)
}

/// Works out the network of `pod`.
pub fn plan(pod: &PodManifest, options: &NetworkOptions) -> Result<PodNetwork, PodError> {
    let who = format!(
        "{}: pod `{}`",
        pod.source,
        podrun_pod_model::display_name(pod.namespace(), pod.name())
    );
    let host_network = pod.pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    let backend = if host_network {
        Backend::Host
    } else {
        options.backend
    };
    let declared = declared_ports(pod, &who)?;
    let mut ports: Vec<PortMapping> = declared
        .iter()
        .filter(|(_, _, _, host_port)| *host_port != 0 || options.publish_all)
        .map(
            |&(container_port, protocol, host_ip, host_port)| PortMapping {
                host_ip,
                host_port: if host_port == 0 {
                    container_port
                } else {
                    host_port
                },
                container_port,
                protocol,
            },
        )
        .collect();
    let is_declared = |p: &PortMapping| {
        declared
            .iter()
            .any(|d| d.0 == p.container_port && d.1 == p.protocol)
    };
    let publish: Vec<PortMapping> = options
        .publish
        .iter()
        .filter(|p| !options.several_pods || is_declared(p))
        .copied()
        .collect();
    ports.retain(|port| {
        !publish
            .iter()
            .any(|p| p.container_port == port.container_port && p.protocol == port.protocol)
    });
    ports.extend(publish.iter().copied());
    let mut warnings = Vec::new();
    match backend {
        Backend::None if !publish.is_empty() || options.publish_all => {
            return Err(PodError::msg(format!(
                "{who}: --publish needs a network, and the pod has none (--network none)\nhint: use --network slirp4netns"
            )))
        }
        Backend::None => {
            warnings.extend(ports.iter().map(|p| {
                format!("{who}: hostPort {} is not published: the pod has no network (--network none)", p.host_port)
            }));
            ports.clear();
        }
        Backend::Host => {
            if !publish.is_empty() || options.publish_all {
                warnings.push(format!(
                    "{who}: --publish is ignored: the pod shares the host's network, where its servers listen directly"
                ));
            }
            ports.clear();
        }
        Backend::Slirp4netns | Backend::Pasta | Backend::Shared => {}
    }
    Ok(PodNetwork {
        plan: NetworkPlan {
            backend,
            allow_host_loopback: options.allow_host_loopback,
        },
        ports,
        warnings,
    })
}

/// Records `network` in `plan`; a pod on the host's network takes the host's hostname.
pub fn apply(plan: &mut Plan, network: PodNetwork) {
    if network.plan.backend == Backend::Host {
        if let Ok(hostname) = nix::unistd::gethostname() {
            plan.hostname = hostname.to_string_lossy().into_owned();
        }
    }
    plan.network = network.plan;
    plan.ports = network.ports;
}

/// The checks `podrun play` makes before it pulls or starts anything, over all the pods of
/// a manifest: each helper is installed, the TUN device usable, and every host port free,
/// allowed, and published once. Returns warnings to print (once each): a pasta build known
/// to stall.
pub fn preflight(networks: &[&PodNetwork]) -> Result<Vec<String>, PodError> {
    let error = |e: podrun_network::NetworkError| PodError::msg(e.to_string());
    let backends: Vec<Backend> = networks.iter().map(|n| n.plan.backend).collect();
    let mut warnings = Vec::new();
    if backends.contains(&Backend::Slirp4netns) || backends.contains(&Backend::Shared) {
        podrun_network::slirp::find_binary().map_err(error)?;
    }
    if backends.contains(&Backend::Pasta) {
        let binary = podrun_network::pasta::find_binary().map_err(error)?;
        if let Some(version) = podrun_network::pasta::known_to_stall(&binary) {
            warnings.push(stall_warning(&version));
        }
    }
    if backends.iter().any(|b| b.uses_helper_dns()) {
        podrun_network::tun::check_tun_device().map_err(error)?;
    }
    let ports: Vec<PortMapping> = networks.iter().flat_map(|n| n.ports.clone()).collect();
    podrun_network::check_host_ports(&ports).map_err(error)?;
    Ok(warnings)
}

/// Picks the free host ports of every pod of the manifest (`--publish` without a host port,
/// 0 until now) and writes them into `networks`, after [`preflight`] has checked the others.
/// The ports stay reserved while the returned values live: `play` keeps them until its pods
/// have started (their helpers have bound the ports then); see
/// `podrun_network::reserve_free_ports` for how this avoids a race with parallel plays.
pub fn reserve_free_ports(
    networks: &mut [PodNetwork],
) -> Result<Vec<podrun_network::PortReservation>, PodError> {
    let mut all: Vec<PortMapping> = networks.iter().flat_map(|n| n.ports.clone()).collect();
    let held =
        podrun_network::reserve_free_ports(&mut all).map_err(|e| PodError::msg(e.to_string()))?;
    let mut chosen = all.into_iter();
    for port in networks.iter_mut().flat_map(|n| n.ports.iter_mut()) {
        *port = chosen.next().expect("one port chosen per mapping");
    }
    Ok(held)
}

fn stall_warning(version: &str) -> String {
    format!(
        "this pasta (`{version}`: Debian 12's passt 0.0~git20230309) is known to stall when a pod \
         sends bulk TCP through it (0.02-0.3 Gbit/s measured: uploads from the pod, replies to \
         clients that reach a published port through a non-loopback address); the pod starts \
         anyway\nhint: use --network slirp4netns (the default), or a newer passt"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> PodManifest {
        let manifest = podrun_manifest::load_str("pod.yaml", yaml, &Default::default()).unwrap();
        manifest.pods.into_iter().next().unwrap()
    }

    const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: nginx:1.23
    ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 53, protocol: UDP, hostIP: 127.0.0.1, hostPort: 5353}
    - {containerPort: 9000}
"#;

    fn options() -> NetworkOptions {
        NetworkOptions {
            backend: Backend::Slirp4netns,
            ..Default::default()
        }
    }

    fn mapping(text: &str) -> PortMapping {
        podrun_network::parse_publish(text).unwrap()
    }

    #[test]
    fn yaml_host_ports_are_published() {
        let network = plan(&pod(WEB), &options()).unwrap();
        assert_eq!(
            network.ports,
            vec![mapping("8080:80"), mapping("127.0.0.1:5353:53/udp")]
        );
        assert_eq!(network.plan.backend, Backend::Slirp4netns);
    }

    #[test]
    fn publish_overrides_and_publish_all_adds() {
        let mut options = options();
        options.publish = vec![mapping("18080:80")];
        options.publish_all = true;
        let network = plan(&pod(WEB), &options).unwrap();
        assert_eq!(
            network.ports,
            vec![
                mapping("127.0.0.1:5353:53/udp"),
                mapping("9000:9000"),
                mapping("18080:80")
            ]
        );
    }

    #[test]
    fn publish_without_a_host_port_gets_a_free_one() {
        let mut options = options();
        options.publish = vec![mapping("127.0.0.1::80"), mapping("0:53/udp")];
        let mut networks = vec![
            plan(&pod(WEB), &options).unwrap(),
            plan(&pod(WEB), &options).unwrap(),
        ];
        // Both of the manifest's published ports are replaced; 0 until reserved.
        assert_eq!(networks[0].ports, options.publish);
        let ports = |networks: &[PodNetwork]| -> Vec<PortMapping> {
            networks.iter().flat_map(|n| n.ports.clone()).collect()
        };
        podrun_network::check_host_ports(&ports(&networks)).unwrap();
        let held = reserve_free_ports(&mut networks).unwrap();
        assert_eq!(held.len(), 4);
        let chosen = ports(&networks);
        assert!(chosen.iter().all(|p| p.host_port != 0), "{chosen:?}");
        assert_eq!(chosen[0].host_ip, Ipv4Addr::LOCALHOST);
        assert_eq!(chosen[1].protocol, Protocol::Udp);
        assert_ne!(
            chosen[0].host_port, chosen[2].host_port,
            "each pod its own port"
        );
        // hostPort 0 in the manifest still means "not published".
        let yaml = WEB.replace(
            "{containerPort: 9000}",
            "{containerPort: 9000, hostPort: 0}",
        );
        let network = plan(&pod(&yaml), &super::tests::options()).unwrap();
        assert!(!network.ports.iter().any(|p| p.container_port == 9000));
    }

    #[test]
    fn several_pods_take_only_their_declared_ports() {
        let mut options = options();
        options.publish = vec![mapping("18080:80"), mapping("19000:7000")];
        options.several_pods = true;
        let network = plan(&pod(WEB), &options).unwrap();
        assert!(network.ports.contains(&mapping("18080:80")));
        assert!(!network.ports.iter().any(|p| p.container_port == 7000));
    }

    #[test]
    fn no_network_publishes_nothing() {
        let mut options = options();
        options.backend = Backend::None;
        let network = plan(&pod(WEB), &options).unwrap();
        assert!(network.ports.is_empty());
        assert_eq!(network.warnings.len(), 2, "{:?}", network.warnings);
        options.publish = vec![mapping("18080:80")];
        let err = plan(&pod(WEB), &options).unwrap_err().to_string();
        assert!(err.contains("--network none"), "{err}");
    }

    #[test]
    fn host_network_wins_and_needs_no_ports() {
        let yaml = WEB.replace("spec:\n", "spec:\n  hostNetwork: true\n");
        let network = plan(&pod(&yaml), &options()).unwrap();
        assert_eq!(network.plan.backend, Backend::Host);
        assert!(network.ports.is_empty());
    }

    #[test]
    fn bad_ports_name_their_field() {
        let yaml = WEB.replace("protocol: UDP", "protocol: SCTP");
        let err = plan(&pod(&yaml), &options()).unwrap_err().to_string();
        assert!(
            err.contains("spec.containers[0].ports[1].protocol") && err.contains("SCTP"),
            "{err}"
        );
        let yaml = WEB.replace("hostIP: 127.0.0.1", "hostIP: localhost");
        let err = plan(&pod(&yaml), &options()).unwrap_err().to_string();
        assert!(err.contains("ports[1].hostIP"), "{err}");
    }
}
