//! `play --network shared` (experimental, issue 17): the pod joins the user's shared pod
//! network (podrun-podnet) instead of getting a user namespace of its own from newuidmap
//! and a slirp4netns of its own.
//!
//! First thing, still in the host's namespaces and single-threaded, the supervisor connects
//! to the network holder (starting it as `podrun network-holder` if none runs), enters the
//! holder's user namespace, unshares its own user and network namespaces (a child of the
//! holder's, so the holder can write its id maps) and asks to be attached. It comes back
//! root of the pod's user namespace, with the same ids as newuidmap would have given it,
//! and `eth0` with a leased address in a network namespace of its own, which the pod's
//! sandbox then keeps ([`crate::network::become_sandbox`]). The holder releases the address
//! and deletes the veth when the supervisor ends.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use podrun_network::Protocol;
use podrun_pod_model::plan::Plan;
use podrun_pod_model::process::{NETWORK_DIR_ENV, NETWORK_HOLDER_ROLE, PROGRAM};
use podrun_pod_model::PodError;
use podrun_podnet::cluster::NamedPort;
use podrun_podnet::protocol::PodIdentity;

/// The shared network's directory: `network` beside `pods` in podrun's runtime directory
/// (`pod_runtime_dir` is `$XDG_RUNTIME_DIR/podrun/pods/<ns>_<name>`).
pub(crate) fn paths(pod_runtime_dir: &Path) -> Option<podrun_podnet::Paths> {
    let podrun_runtime_dir = pod_runtime_dir.parent()?.parent()?;
    Some(podrun_podnet::Paths::in_runtime_dir(podrun_runtime_dir))
}

/// Puts this process (the supervisor, single-threaded, in the host's user namespace) on the
/// shared network and has the holder publish the pod's ports to it; returns what the pod got.
pub(crate) fn join(
    pod_runtime_dir: &Path,
    pod: &str,
    plan: &Plan,
) -> Result<podrun_podnet::Attachment, PodError> {
    let fail = |e: podrun_podnet::PodnetError| {
        PodError::msg(format!("pod `{pod}`: the shared network: {e}"))
    };
    let paths = paths(pod_runtime_dir)
        .ok_or_else(|| PodError::msg(format!("pod `{pod}`: no runtime directory")))?;
    let holder = podrun_podnet::start::connect(&paths, || holder_command(&paths)).map_err(fail)?;
    let identity = identity(plan);
    let wants = podrun_podnet::protocol::Wants {
        ports: &plan.ports,
        identity: Some(&identity),
        host_loopback: plan.network.allow_host_loopback,
    };
    let attachment = podrun_podnet::client::attach_self(holder, pod, &wants).map_err(fail)?;
    tracing::info!(
        address = %attachment.address,
        interface = %attachment.interface,
        "attached to the shared network"
    );
    Ok(attachment)
}

/// What Services select the pod by (its labels, its named container ports) and what DNS
/// names it by (its hostname and subdomain).
fn identity(plan: &Plan) -> PodIdentity {
    let (hostname, subdomain) = match &plan.dns.domain {
        // `<subdomain>.<namespace>.svc.cluster.local`
        Some(domain) => (
            domain.hostname.clone(),
            domain.domain.split('.').next().map(str::to_string),
        ),
        None => (plan.hostname.clone(), None),
    };
    PodIdentity {
        namespace: plan.namespace.clone(),
        name: plan.name.clone(),
        labels: plan.labels.clone(),
        hostname,
        subdomain,
        named_ports: plan.pod_spec.as_ref().map(named_ports).unwrap_or_default(),
    }
}

/// `ports[]` with a name, of every container of the pod's spec (JSON, as the plan keeps it).
fn named_ports(spec: &serde_json::Value) -> Vec<NamedPort> {
    let containers = spec["containers"].as_array().into_iter().flatten();
    containers
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|port| {
            Some(NamedPort {
                name: port["name"].as_str()?.to_string(),
                port: u16::try_from(port["containerPort"].as_u64()?).ok()?,
                protocol: match port["protocol"].as_str() {
                    Some("UDP") => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
            })
        })
        .collect()
}

/// The pod's link to the holder after it joined: it reports its readiness, since only a
/// ready pod is an endpoint of the Services that select it.
#[derive(Debug)]
pub(crate) struct SharedNetwork {
    paths: podrun_podnet::Paths,
    /// What the holder was told last.
    reported_ready: bool,
}

impl SharedNetwork {
    pub(crate) fn new(pod_runtime_dir: &Path) -> Option<SharedNetwork> {
        Some(SharedNetwork {
            paths: paths(pod_runtime_dir)?,
            reported_ready: false,
        })
    }

    /// Tells the holder when the pod's readiness changed. A holder that cannot be told is
    /// logged and told again at the next change of state.
    pub(crate) fn report_ready(&mut self, ready: bool) {
        if ready == self.reported_ready {
            return;
        }
        let told =
            podrun_podnet::start::connect_running(&self.paths).and_then(|holder| match holder {
                Some(holder) => holder.set_ready(std::process::id(), ready),
                None => Err(podrun_podnet::PodnetError::Refused(
                    "the network holder does not run".into(),
                )),
            });
        match told {
            Ok(()) => self.reported_ready = ready,
            Err(e) => tracing::warn!("cannot tell the network holder the pod's readiness: {e}"),
        }
    }

    /// Leaves the network as the pod ends: the holder frees its published ports and its
    /// address now, so they are free when `down` returns (the holder would otherwise do it
    /// when it sees this process end, a moment after `down` has seen it too).
    pub(crate) fn leave(self) {
        let left = podrun_podnet::start::connect_running(&self.paths)
            .and_then(|holder| holder.map(|h| h.detach(std::process::id())).transpose());
        if let Err(e) = left {
            tracing::warn!("cannot leave the shared network (the holder frees it later): {e}");
        }
    }
}

/// `podrun network-holder`: this binary in the holder's role (see the CLI). It inherits
/// none of the supervisor's descriptors (play's ready pipe, the owner's pidfd, the pod's
/// files): it outlives the pod.
fn holder_command(paths: &podrun_podnet::Paths) -> Command {
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(PROGRAM)
        .arg(NETWORK_HOLDER_ROLE)
        .env(NETWORK_DIR_ENV, &paths.dir);
    // SAFETY: only fcntl, async-signal-safe, between fork and exec. podrun-podnet's start
    // clears close-on-exec of its ready pipe after this (its pre_exec runs later).
    unsafe {
        command.pre_exec(|| {
            for fd in 3..1024 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            Ok(())
        });
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_is_beside_the_pods() {
        let paths = paths(Path::new("/run/user/7/podrun/pods/default_web")).unwrap();
        assert_eq!(paths.dir, Path::new("/run/user/7/podrun/network"));
    }

    #[test]
    fn named_ports_come_from_every_container() {
        let spec = serde_json::json!({"containers": [
            {"name": "a", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9}]},
            {"name": "b", "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]},
            {"name": "c"}
        ]});
        assert_eq!(
            named_ports(&spec),
            [
                NamedPort {
                    name: "http".into(),
                    port: 8080,
                    protocol: Protocol::Tcp
                },
                NamedPort {
                    name: "dns".into(),
                    port: 53,
                    protocol: Protocol::Udp
                }
            ]
        );
    }
}
