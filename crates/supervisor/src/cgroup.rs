//! A container's cgroup, below the pod's (see [`podrun_pod_model::plan::cgroup`]): its path
//! and the limits libcontainer writes there.

use podrun_pod_model::plan::cgroup::{ContainerLimits, PodCgroup, CPU_PERIOD};

/// The cgroup of container `name` (with `limits`) in the pod's `cgroup` (none without one),
/// with the limits whose controller the pod's cgroup has.
pub fn container_cgroup(
    cgroup: Option<&PodCgroup>,
    name: &str,
    limits: &ContainerLimits,
) -> Option<podrun_runtime::ContainerCgroup> {
    let cgroup = cgroup?;
    let has = |name: &str| cgroup.controllers.iter().any(|c| c == name);
    Some(podrun_runtime::ContainerCgroup {
        path: cgroup.container_path(name),
        memory_max: limits.memory_max.filter(|_| has("memory")),
        cpu_max: limits
            .cpu_quota
            .filter(|_| has("cpu"))
            .map(|quota| podrun_runtime::CpuMax {
                quota,
                period: CPU_PERIOD,
            }),
        cpu_shares: Some(limits.cpu_shares).filter(|_| has("cpu")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_cgroups_get_the_limits_of_the_enabled_controllers() {
        // `limits: {cpu: 500m, memory: 64Mi}`, as the planner works it out.
        let limits = ContainerLimits {
            memory_max: Some(64 << 20),
            cpu_quota: Some(50_000),
            cpu_shares: 512,
        };
        assert_eq!(container_cgroup(None, "app", &limits), None);
        let mut pod = PodCgroup {
            dir: "/sys/fs/cgroup/u/p".into(),
            path: "/u/p".into(),
            controllers: vec!["memory".into()],
        };
        let cgroup = container_cgroup(Some(&pod), "app", &limits).unwrap();
        assert_eq!(cgroup.path, "/u/p/app");
        assert_eq!(cgroup.memory_max, Some(64 << 20));
        assert_eq!(cgroup.cpu_max, None);
        assert_eq!(cgroup.cpu_shares, None);
        pod.controllers = vec!["memory".into(), "cpu".into()];
        let cgroup = container_cgroup(Some(&pod), "app", &limits).unwrap();
        assert_eq!(
            cgroup.cpu_max,
            Some(podrun_runtime::CpuMax {
                quota: 50_000,
                period: 100_000
            })
        );
        assert_eq!(cgroup.cpu_shares, Some(512));
    }
}
