//! Where a pod's files are. Every path of a pod's runtime and data directories is a method
//! of [`PodLayout`], so that the planner, the supervisor and the pod operations cannot
//! disagree on one:
//!
//! ```text
//! $XDG_RUNTIME_DIR/podrun/pods/<namespace>_<name>/    (/run/podrun/pods/... for root)
//!   plan.json  state.json  supervisor.pid  supervisor.log  attach.sock  stop.json
//!   logs/<container>.log[.1]   libcontainer/   etc/{hosts,hostname,resolv.conf}   shm/
//!   hooks/   volumes/<secret or projected volume>/
//! $XDG_DATA_HOME/podrun/pods/<namespace>_<name>/      (/var/lib/podrun/pods/... for root)
//!   containers/<name>/{bundle,upper,work,termination-log}   volumes/<volume>/
//! $XDG_DATA_HOME/podrun/volumes/<namespace>/<claim>/   (named volumes: see crate::claims)
//! ```
//!
//! The runtime directory is on a tmpfs (XDG_RUNTIME_DIR): the state of running pods goes
//! with a reboot, as their processes do.

use std::path::{Path, PathBuf};

use crate::PodError;

/// `plan.json`: what the supervisor runs (see [`crate::plan`]).
pub const PLAN_FILE: &str = "plan.json";
/// `state.json`: what the supervisor last recorded (see [`crate::state`]).
pub const STATE_FILE: &str = "state.json";
/// The supervisor's pid, written first thing (before `state.json` exists).
pub const PID_FILE: &str = "supervisor.pid";
/// The supervisor's own stdout and stderr.
pub const SUPERVISOR_LOG_FILE: &str = "supervisor.log";
/// The attach endpoint (see [`crate::attach`]).
pub const ATTACH_SOCKET: &str = "attach.sock";
/// A stop's own grace period (see [`crate::stop`]).
pub const STOP_REQUEST_FILE: &str = "stop.json";

/// Where pods live: one runtime directory and one data directory per pod.
#[derive(Debug, Clone)]
pub struct PodDirs {
    /// `$XDG_RUNTIME_DIR/podrun/pods` (`/run/podrun/pods` for root).
    pub runtime_root: PathBuf,
    /// `$XDG_DATA_HOME/podrun/pods` (`/var/lib/podrun/pods` for root).
    pub data_root: PathBuf,
    /// `$XDG_DATA_HOME/podrun/volumes` (`/var/lib/podrun/volumes` for root): the named
    /// volumes of PersistentVolumeClaims, which outlive the pods (see [`crate::claims`]).
    pub volume_root: PathBuf,
}

impl PodDirs {
    /// `runtime_dir` is podrun's runtime directory (`$XDG_RUNTIME_DIR/podrun`, `None` when
    /// XDG_RUNTIME_DIR is unset), `data_dir` its data directory.
    pub fn new(
        runtime_dir: Option<&Path>,
        xdg_runtime_dir: Option<&Path>,
        data_dir: &Path,
    ) -> Result<PodDirs, PodError> {
        let hint = "hint: export XDG_RUNTIME_DIR=/run/user/$(id -u) (the directory must exist, be owned by you and have mode 0700)";
        let Some(runtime_dir) = runtime_dir else {
            return Err(PodError::msg(format!(
                "XDG_RUNTIME_DIR is not set: podrun keeps the state of running pods there\n{hint}"
            )));
        };
        if let Some(xdg) = xdg_runtime_dir {
            if !xdg.is_dir() {
                return Err(PodError::msg(format!(
                    "XDG_RUNTIME_DIR {} does not exist or is not a directory\n{hint}",
                    xdg.display()
                )));
            }
        }
        Ok(PodDirs {
            runtime_root: runtime_dir.join("pods"),
            data_root: data_dir.join("pods"),
            volume_root: data_dir.join("volumes"),
        })
    }

    /// The directory name of a pod: `<namespace>_<name>` (neither may contain `_`).
    pub fn key(namespace: &str, name: &str) -> String {
        format!("{namespace}_{name}")
    }

    /// The namespace and name of the pod whose directory is named `key`.
    pub fn split_key(key: &str) -> Option<(&str, &str)> {
        key.split_once('_')
    }

    pub fn runtime_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.runtime_root.join(Self::key(namespace, name))
    }

    pub fn data_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.data_root.join(Self::key(namespace, name))
    }

    /// The named volumes (see [`crate::claims`]).
    pub fn volumes(&self) -> crate::claims::VolumeRoot {
        crate::claims::VolumeRoot(self.volume_root.clone())
    }

    /// The layout of pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> PodLayout {
        PodLayout {
            runtime_dir: self.runtime_dir(namespace, name),
            data_dir: self.data_dir(namespace, name),
        }
    }
}

/// The two directories of one pod, and every path in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLayout {
    pub runtime_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl PodLayout {
    pub fn new(runtime_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> PodLayout {
        PodLayout {
            runtime_dir: runtime_dir.into(),
            data_dir: data_dir.into(),
        }
    }

    pub fn plan_file(&self) -> PathBuf {
        self.runtime_dir.join(PLAN_FILE)
    }

    pub fn state_file(&self) -> PathBuf {
        self.runtime_dir.join(STATE_FILE)
    }

    pub fn pid_file(&self) -> PathBuf {
        self.runtime_dir.join(PID_FILE)
    }

    pub fn supervisor_log(&self) -> PathBuf {
        self.runtime_dir.join(SUPERVISOR_LOG_FILE)
    }

    pub fn attach_socket(&self) -> PathBuf {
        self.runtime_dir.join(ATTACH_SOCKET)
    }

    /// The stop request (see [`crate::stop`]).
    pub fn stop_request_file(&self) -> PathBuf {
        self.runtime_dir.join(STOP_REQUEST_FILE)
    }

    /// libcontainer's state directory (its `root`).
    pub fn libcontainer_root(&self) -> PathBuf {
        self.runtime_dir.join("libcontainer")
    }

    /// The directory of the containers' logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.runtime_dir.join("logs")
    }

    /// Container `container`'s log (`logs/<container>.log`); rotated, it becomes
    /// [`crate::logfile::rotated_path`] of it.
    pub fn container_log(&self, container: &str) -> PathBuf {
        self.logs_dir().join(format!("{container}.log"))
    }

    /// The pod's /etc files (`hosts`, `hostname`, `resolv.conf`), bind-mounted into every
    /// container.
    pub fn etc_dir(&self) -> PathBuf {
        self.runtime_dir.join("etc")
    }

    /// The pod's /dev/shm, shared by its containers.
    pub fn shm_dir(&self) -> PathBuf {
        self.runtime_dir.join("shm")
    }

    /// Where hooks' output goes while they run.
    pub fn hooks_dir(&self) -> PathBuf {
        self.runtime_dir.join("hooks")
    }

    /// A container's directories: `containers/<name>/{bundle,upper,work,termination-log}`.
    pub fn container_dir(&self, container: &str) -> PathBuf {
        self.data_dir.join("containers").join(container)
    }

    /// An emptyDir, configMap or downwardAPI volume's directory.
    pub fn data_volume(&self, volume: &str) -> PathBuf {
        self.data_dir.join("volumes").join(volume)
    }

    /// A secret or projected volume's directory (on the runtime tmpfs: secrets stay off
    /// disk).
    pub fn runtime_volume(&self, volume: &str) -> PathBuf {
        self.runtime_dir.join("volumes").join(volume)
    }

    /// Whether anything of the pod is left on disk.
    pub fn exists(&self) -> bool {
        self.runtime_dir.exists() || self.data_dir.exists()
    }

    /// Removes both directories. Run it inside podrun's user namespace: the data directory
    /// holds files of the containers' users and overlayfs work directories.
    pub fn remove(&self) -> Result<(), PodError> {
        crate::remove_tree(&self.data_dir)?;
        crate::remove_tree(&self.runtime_dir)
    }

    /// The supervisor's pid as its pid file records it.
    pub fn supervisor_pid(&self) -> Option<i32> {
        supervisor_pid(&self.runtime_dir)
    }
}

/// The supervisor's pid as the pid file in the pod's runtime directory records it (for
/// callers that found the pod by its runtime directory alone).
pub fn supervisor_pid(runtime_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(runtime_dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_runtime_dir_has_a_hint() {
        let err = PodDirs::new(None, None, Path::new("/d")).unwrap_err();
        assert!(err.to_string().contains("export XDG_RUNTIME_DIR"), "{err}");
        let dirs = PodDirs::new(Some(Path::new("/r/podrun")), None, Path::new("/d")).unwrap();
        assert_eq!(
            dirs.runtime_dir("default", "web"),
            PathBuf::from("/r/podrun/pods/default_web")
        );
        let pod = dirs.pod("default", "web");
        assert_eq!(
            pod.container_log("c"),
            PathBuf::from("/r/podrun/pods/default_web/logs/c.log")
        );
        assert_eq!(
            pod.data_volume("v"),
            PathBuf::from("/d/pods/default_web/volumes/v")
        );
    }
}
