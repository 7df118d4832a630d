//! Resource limits as the plan holds them: a pod's cgroup and its containers' limits as
//! cgroup values (worked out by podrun-planner's `cgroup`). The pod's cgroup is created and
//! removed here because `play`, the supervisor and `down` all do it.
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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::PodError;

/// The controllers podrun uses for limits, in the order it names them.
pub const CONTROLLERS: [&str; 2] = ["memory", "cpu"];

/// The CFS period the kubelet uses, in microseconds.
pub const CPU_PERIOD: u64 = 100_000;

/// A pod's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodCgroup {
    /// Its directory on the host, in the user's delegated cgroup.
    pub dir: PathBuf,
    /// Its path in the cgroup v2 hierarchy: each container's `cgroupsPath` is
    /// `<path>/<container name>`.
    pub path: String,
    /// The controllers enabled for the containers (those of [`CONTROLLERS`] the delegated
    /// cgroup has); limits of the others are not applied.
    pub controllers: Vec<String>,
}

impl PodCgroup {
    /// The cgroup of pod `namespace/name` (uid `uid`) in the delegated cgroup `delegated_dir`
    /// (hierarchy path `delegated_path`) with `available` controllers. The uid keeps pods of
    /// the same name apart (other podrun directories of the same user).
    pub fn new(
        delegated_dir: &Path,
        delegated_path: &str,
        available: &[String],
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> PodCgroup {
        let short_uid: String = uid.chars().filter(|c| *c != '-').take(8).collect();
        let leaf = format!("podrun-{namespace}_{name}-{short_uid}");
        PodCgroup {
            dir: delegated_dir.join(&leaf),
            path: format!("{}/{leaf}", delegated_path.trim_end_matches('/')),
            controllers: CONTROLLERS
                .iter()
                .filter(|c| available.iter().any(|a| a == *c))
                .map(|c| c.to_string())
                .collect(),
        }
    }

    /// The `cgroupsPath` of container `name`.
    pub fn container_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// Enables the controllers in the delegated cgroup for its children, creates the pod's
    /// cgroup and enables them there for the containers'. Neither holds processes of its own
    /// (cgroup v2 allows controllers for children only then).
    pub fn create(&self) -> Result<(), PodError> {
        let parent = self.dir.parent().unwrap_or(Path::new("/"));
        self.enable_controllers(parent)?;
        match std::fs::create_dir(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(PodError::io(format!(
                    "cannot create the pod's cgroup {}",
                    self.dir.display()
                ))(e))
            }
        }
        self.enable_controllers(&self.dir)
    }

    fn enable_controllers(&self, dir: &Path) -> Result<(), PodError> {
        let file = dir.join("cgroup.subtree_control");
        for controller in &self.controllers {
            std::fs::write(&file, format!("+{controller}")).map_err(PodError::io(format!(
                "cannot enable the {controller} controller in {}",
                file.display()
            )))?;
        }
        Ok(())
    }

    /// Removes the containers' cgroups and the pod's (a missing one is not an error). A
    /// cgroup whose last process is exiting is busy for a moment: the removal is retried
    /// for up to a second.
    pub fn remove(&self) -> Result<(), PodError> {
        let children = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => Vec::new(),
        };
        for dir in children.iter().chain([&self.dir]) {
            remove_cgroup_dir(dir)?;
        }
        Ok(())
    }
}

fn remove_cgroup_dir(dir: &Path) -> Result<(), PodError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(PodError::io(format!(
                    "cannot remove cgroup {}",
                    dir.display()
                ))(e))
            }
        }
    }
}

/// A container's resources as cgroup values (see the module's documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerLimits {
    /// `memory.max` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// `cpu.max`'s quota in microseconds per [`CPU_PERIOD`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<u64>,
    /// CPU shares (cgroup v1 units; libcontainer writes them as `cpu.weight`).
    #[serde(default)]
    pub cpu_shares: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cgroup_paths_and_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let available = ["hugetlb".to_string(), "cpu".to_string()];
        let cgroup = PodCgroup::new(
            dir.path(),
            "/user.slice/app.slice/",
            &available,
            "default",
            "web",
            "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        );
        assert_eq!(
            cgroup.path,
            "/user.slice/app.slice/podrun-default_web-0a1b2c3d"
        );
        assert_eq!(cgroup.dir, dir.path().join("podrun-default_web-0a1b2c3d"));
        assert_eq!(cgroup.controllers, ["cpu"]);
        assert_eq!(
            cgroup.container_path("app"),
            "/user.slice/app.slice/podrun-default_web-0a1b2c3d/app"
        );
        // On a plain directory the subtree_control files are ordinary files.
        cgroup.create().unwrap();
        assert_eq!(
            std::fs::read_to_string(cgroup.dir.join("cgroup.subtree_control")).unwrap(),
            "+cpu"
        );
        std::fs::remove_file(cgroup.dir.join("cgroup.subtree_control")).unwrap();
        std::fs::create_dir(cgroup.dir.join("app")).unwrap();
        cgroup.remove().unwrap();
        assert!(!cgroup.dir.exists());
        cgroup.remove().unwrap();
    }
}
