//! A container's cgroup in the spec: libcontainer's `linux.cgroupsPath` and
//! `linux.resources`, which its cgroup v2 manager applies (creating the cgroup, moving the
//! container's init into it, writing `memory.max`, `cpu.max` and `cpu.weight`).

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::{
    Linux, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder,
};

use crate::RuntimeError;

/// Where the container's cgroup is, and the limits it enforces. Only the limits whose
/// controller the parent cgroup enables may be set: libcontainer fails to write the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// The cgroup's path in the cgroup v2 hierarchy (`/user.slice/.../app`). It is absolute,
    /// so libcontainer uses its cgroupfs manager (not systemd's); on a hybrid host the runner
    /// puts the cgroup2 mount at /sys/fs/cgroup, where libcontainer looks for it.
    pub path: String,
    /// `memory.max`, in bytes.
    pub memory_max: Option<u64>,
    /// `cpu.max`: the quota in microseconds per `period`.
    pub cpu_max: Option<CpuMax>,
    /// CPU shares (cgroup v1 units, 2..=262144); libcontainer converts them to `cpu.weight`
    /// as runc does (1024 → 100).
    pub cpu_shares: Option<u64>,
}

/// `cpu.max`: `quota` microseconds of CPU time per `period` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub quota: u64,
    pub period: u64,
}

fn spec_error(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidConfig(format!("{what}: {e}"))
}

/// Sets `linux.cgroupsPath` and `linux.resources` for `cgroup`; without one, leaves both
/// out (libcontainer then makes a cgroup of its default name, which a rootless runner
/// without a delegated cgroup cannot create; it carries on without).
pub(crate) fn apply(
    linux: &mut Linux,
    cgroup: Option<&ContainerCgroup>,
) -> Result<(), RuntimeError> {
    let Some(cgroup) = cgroup else {
        linux.set_resources(None);
        return Ok(());
    };
    if !cgroup.path.starts_with('/') {
        return Err(RuntimeError::InvalidConfig(format!(
            "cgroup path {:?} is not absolute",
            cgroup.path
        )));
    }
    linux.set_cgroups_path(Some(PathBuf::from(&cgroup.path)));
    if cgroup.memory_max.is_none() && cgroup.cpu_max.is_none() && cgroup.cpu_shares.is_none() {
        // Only the cgroup itself (its controllers are missing).
        linux.set_resources(None);
        return Ok(());
    }
    let mut resources = LinuxResourcesBuilder::default();
    if let Some(bytes) = cgroup.memory_max {
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .build()
                .map_err(|e| spec_error("memory limit", e))?,
        );
    }
    if cgroup.cpu_max.is_some() || cgroup.cpu_shares.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(max) = cgroup.cpu_max {
            cpu = cpu
                .quota(i64::try_from(max.quota).unwrap_or(i64::MAX))
                .period(max.period);
        }
        if let Some(shares) = cgroup.cpu_shares {
            cpu = cpu.shares(shares);
        }
        resources = resources.cpu(cpu.build().map_err(|e| spec_error("cpu limit", e))?);
    }
    linux.set_resources(Some(
        resources.build().map_err(|e| spec_error("resources", e))?,
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_the_spec() {
        let mut linux = Linux::default();
        let cgroup = ContainerCgroup {
            path: "/user.slice/app.slice/podrun-default_web-0a1b2c3d/app".into(),
            memory_max: Some(64 << 20),
            cpu_max: Some(CpuMax {
                quota: 50_000,
                period: 100_000,
            }),
            cpu_shares: Some(512),
        };
        apply(&mut linux, Some(&cgroup)).unwrap();
        let json = serde_json::to_value(&linux).unwrap();
        assert_eq!(json["cgroupsPath"], cgroup.path.as_str());
        assert_eq!(json["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(json["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(json["resources"]["cpu"]["period"], 100_000);
        assert_eq!(json["resources"]["cpu"]["shares"], 512);
    }

    #[test]
    fn only_what_is_given_and_no_cgroup_means_no_resources() {
        let mut linux = Linux::default();
        let cgroup = ContainerCgroup {
            path: "/d/pod/app".into(),
            ..Default::default()
        };
        apply(&mut linux, Some(&cgroup)).unwrap();
        let json = serde_json::to_value(&linux).unwrap();
        assert_eq!(json["cgroupsPath"], "/d/pod/app");
        assert!(json.get("resources").is_none());

        let mut linux = Linux::default();
        apply(&mut linux, None).unwrap();
        let json = serde_json::to_value(&linux).unwrap();
        assert!(json.get("resources").is_none());
        assert!(json.get("cgroupsPath").is_none());

        let relative = ContainerCgroup {
            path: "d/pod/app".into(),
            ..Default::default()
        };
        assert!(apply(&mut Linux::default(), Some(&relative)).is_err());
    }
}
