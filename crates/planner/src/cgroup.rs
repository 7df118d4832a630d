//! Planning resource limits: a pod's cgroup and its containers' limits as cgroup values
//! ([`podrun_pod_model::plan::cgroup`]).
//!
//! When the user has a delegated cgroup v2 (`podrun_hostcheck::delegated_cgroup`), `play`
//! plans a cgroup for each pod that declares resources, creates it in the delegated one
//! ([`PodCgroup::create`]) and the supervisor gives each container a cgroup below it through
//! libcontainer (`linux.cgroupsPath` and `linux.resources`, see [`ContainerLimits`]). The
//! pod's cgroup is removed when the pod ends ([`PodCgroup::remove`]: by the supervisor, or by
//! `play` and `down` when they clean up after it).
//!
//! The values are the kubelet's: `limits.memory` → `memory.max`; `limits.cpu` → `cpu.max`
//! (quota per 100 ms period, at least 1 ms); `requests.cpu` (else `limits.cpu`, as the API
//! server defaults it) → CPU shares (1024 per CPU, 2 at least), which libcontainer turns into
//! `cpu.weight` as runc does. `requests.memory` sets nothing (the kubelet sets `memory.min`
//! only with the MemoryQoS feature gate).

use std::path::PathBuf;

use podrun_manifest::k8s_openapi::api::core::v1::{Container, Pod};
use podrun_pod_model::plan::cgroup::{ContainerLimits, PodCgroup, CONTROLLERS, CPU_PERIOD};
use podrun_pod_model::plan::Plan;
use podrun_process::Quantity;

/// The smallest quota the kernel accepts (1 ms), as the kubelet's `MinQuotaPeriod`.
const MIN_CPU_QUOTA: u64 = 1_000;
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
const SHARES_PER_CPU: u64 = 1_024;

/// What the host offers pods for their cgroups, as `play` found it
/// (`podrun_hostcheck::delegated_cgroup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCgroups {
    /// A cgroup v2 directory delegated to `user`: its directory, hierarchy path and
    /// `cgroup.controllers`.
    Delegated {
        dir: PathBuf,
        path: String,
        controllers: Vec<String>,
        user: String,
    },
    /// None, for this reason (e.g. `this host gives user ann no cgroup v2 of their own
    /// (...)`).
    Missing { reason: String },
}

impl HostCgroups {
    /// The warning `play` prints for the limits of `pod` that will not be enforced; `None`
    /// when they all are, or it declares none. Requests alone never warn: they reserve
    /// nothing on one host and only weigh CPU time under contention, so a pod behaves as
    /// the manifest means it without them (and the downward API reports them either way).
    pub fn unenforced(&self, pod_name: &str, pod: &Pod) -> Option<String> {
        let (missing, why): (Vec<&str>, String) = match self {
            HostCgroups::Missing { reason } => (CONTROLLERS.to_vec(), reason.clone()),
            HostCgroups::Delegated {
                dir,
                controllers,
                user,
                ..
            } => {
                let missing: Vec<&str> = CONTROLLERS
                    .iter()
                    .filter(|c| !controllers.iter().any(|have| have == *c))
                    .copied()
                    .collect();
                let have = if controllers.is_empty() {
                    "none".to_string()
                } else {
                    controllers.join(" ")
                };
                let why = format!(
                    "the cgroup delegated to user {user} ({}) lacks the {} controller{} (it has: {have})",
                    dir.display(),
                    missing.join(" and "),
                    if missing.len() > 1 { "s" } else { "" },
                );
                (missing, why)
            }
        };
        let containers: Vec<String> = all_containers(pod)
            .filter(|c| {
                let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
                limits.is_some_and(|l| missing.iter().any(|m| l.contains_key(*m)))
            })
            .map(|c| format!("`{}`", c.name))
            .collect();
        if containers.is_empty() {
            return None;
        }
        let what = match self {
            HostCgroups::Missing { .. } => "resource".to_string(),
            HostCgroups::Delegated { .. } => missing.join(" and "),
        };
        let plural = if containers.len() > 1 { "s" } else { "" };
        Some(format!(
            "pod `{pod_name}`: {what} limits of container{plural} {} are not enforced: {why}; the downward API still reports them",
            containers.join(", ")
        ))
    }

    /// The cgroup of the pod whose plan is `plan`: in the delegated cgroup, when there is one
    /// and a container declares CPU or memory limits or a CPU request.
    pub fn pod_cgroup(&self, pod: &Pod, plan: &Plan) -> Option<PodCgroup> {
        let HostCgroups::Delegated {
            dir,
            path,
            controllers,
            ..
        } = self
        else {
            return None;
        };
        pod_declares_resources(pod).then(|| {
            PodCgroup::new(
                dir,
                path,
                controllers,
                &plan.namespace,
                &plan.name,
                &plan.uid,
            )
        })
    }
}

/// The containers of `pod`, init containers first (as they run).
/// Whether some container of `pod` declares what a cgroup would enforce.
pub fn pod_declares_resources(pod: &Pod) -> bool {
    all_containers(pod).any(declares_resources)
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
}

/// The limits of `container` as cgroup values (see the module's documentation); a quantity
/// that does not parse is an error naming it.
pub fn container_limits(container: &Container) -> Result<ContainerLimits, String> {
    let quantity = |which, name| podrun_process::quantity::declared(container, which, name);
    let cpu_limit = quantity("limits", "cpu")?;
    let cpu_request = quantity("requests", "cpu")?.or(cpu_limit);
    Ok(ContainerLimits {
        memory_max: quantity("limits", "memory")?
            .map(|q| u64::try_from(q.value()).unwrap_or(u64::MAX)),
        cpu_quota: cpu_limit.map(millis).filter(|m| *m > 0).map(cpu_quota),
        cpu_shares: cpu_shares(cpu_request.map(millis).unwrap_or(0)),
    })
}

fn millis(q: Quantity) -> u64 {
    u64::try_from(q.milli_value()).unwrap_or(u64::MAX)
}

/// The kubelet's `MilliCPUToShares`: 1024 shares per CPU, at least 2 (also for no request).
pub fn cpu_shares(milli_cpu: u64) -> u64 {
    (milli_cpu.saturating_mul(SHARES_PER_CPU) / 1_000).clamp(MIN_SHARES, MAX_SHARES)
}

/// The kubelet's `MilliCPUToQuota` for [`CPU_PERIOD`]: at least 1 ms.
pub fn cpu_quota(milli_cpu: u64) -> u64 {
    (milli_cpu.saturating_mul(CPU_PERIOD) / 1_000).max(MIN_CPU_QUOTA)
}

/// Whether `container` declares a CPU or memory limit (what a pod without a cgroup would
/// silently not enforce).
pub fn declares_limits(container: &Container) -> bool {
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    limits.is_some_and(|l| CONTROLLERS.iter().any(|c| l.contains_key(*c)))
}

/// Whether `container` declares CPU or memory limits or a CPU request: what a cgroup would
/// enforce.
pub fn declares_resources(container: &Container) -> bool {
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    declares_limits(container) || requests.is_some_and(|r| r.contains_key("cpu"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_manifest::k8s_openapi::api::core::v1::ResourceRequirements;
    use podrun_manifest::k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), K8sQuantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                limits: map(limits),
                requests: map(requests),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn kubelet_values() {
        let limits =
            container_limits(&container(&[("cpu", "500m"), ("memory", "64Mi")], &[])).unwrap();
        assert_eq!(
            limits,
            ContainerLimits {
                memory_max: Some(64 << 20),
                cpu_quota: Some(50_000),
                // The request defaults to the limit.
                cpu_shares: 512,
            }
        );
        let limits = container_limits(&container(
            &[("cpu", "2")],
            &[("cpu", "250m"), ("memory", "1Gi")],
        ))
        .unwrap();
        assert_eq!(limits.cpu_quota, Some(200_000));
        assert_eq!(limits.cpu_shares, 256);
        assert_eq!(limits.memory_max, None, "a memory request sets nothing");
        let none = container_limits(&Container::default()).unwrap();
        assert_eq!(
            none,
            ContainerLimits {
                cpu_shares: 2,
                ..Default::default()
            }
        );
        let bad = container_limits(&container(&[("memory", "lots")], &[])).unwrap_err();
        assert_eq!(
            bad,
            "container `app`: resources.limits.memory: \"lots\" is not a quantity"
        );
    }

    #[test]
    fn shares_and_quota_bounds() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(1), 2);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(1_000_000), 262_144);
        assert_eq!(cpu_quota(1), 1_000, "at least 1 ms");
        assert_eq!(cpu_quota(10), 1_000);
        assert_eq!(cpu_quota(1500), 150_000);
    }

    #[test]
    fn which_containers_declare_what() {
        assert!(declares_limits(&container(&[("memory", "1Mi")], &[])));
        assert!(!declares_limits(&container(&[], &[("cpu", "1")])));
        assert!(declares_resources(&container(&[], &[("cpu", "1")])));
        assert!(!declares_resources(&container(&[], &[("memory", "1Mi")])));
        assert!(!declares_limits(&container(
            &[("ephemeral-storage", "1Gi")],
            &[]
        )));
    }

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(podrun_manifest::k8s_openapi::api::core::v1::PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn named(name: &str, mut container: Container) -> Container {
        container.name = name.into();
        container
    }

    #[test]
    fn one_warning_names_every_container_with_unenforced_limits() {
        let pod = pod(vec![
            named("a", container(&[("memory", "64Mi")], &[])),
            named("b", container(&[("cpu", "1")], &[])),
            named("c", container(&[], &[("cpu", "1")])),
        ]);
        let missing = HostCgroups::Missing {
            reason: "this host gives user ann no cgroup v2 of their own (cgroup v1 only)".into(),
        };
        assert_eq!(
            missing.unenforced("x", &pod).unwrap(),
            "pod `x`: resource limits of containers `a`, `b` are not enforced: this host gives user ann no cgroup v2 of their own (cgroup v1 only); the downward API still reports them"
        );
        let requests_only = self::pod(vec![named("c", container(&[], &[("cpu", "1")]))]);
        assert_eq!(missing.unenforced("x", &requests_only), None);

        let no_cpu = HostCgroups::Delegated {
            dir: "/sys/fs/cgroup/u".into(),
            path: "/u".into(),
            controllers: vec!["memory".into(), "pids".into()],
            user: "ann".into(),
        };
        assert_eq!(
            no_cpu.unenforced("x", &pod).unwrap(),
            "pod `x`: cpu limits of container `b` are not enforced: the cgroup delegated to user ann (/sys/fs/cgroup/u) lacks the cpu controller (it has: memory pids); the downward API still reports them"
        );
        let all = HostCgroups::Delegated {
            dir: "/sys/fs/cgroup/u".into(),
            path: "/u".into(),
            controllers: vec!["cpu".into(), "memory".into()],
            user: "ann".into(),
        };
        assert_eq!(all.unenforced("x", &pod), None);
        let none = HostCgroups::Delegated {
            dir: "/sys/fs/cgroup/u".into(),
            path: "/u".into(),
            controllers: Vec::new(),
            user: "ann".into(),
        };
        assert!(none
            .unenforced("x", &pod)
            .unwrap()
            .contains("memory and cpu limits of containers `a`, `b` are not enforced: the cgroup delegated to user ann (/sys/fs/cgroup/u) lacks the memory and cpu controllers (it has: none)"));
    }
}
