//! podrun pods: from a manifest to running containers, and back.
//!
//! * [`plan`]: in the CLI (inside the user namespace, images pulled): works out, for every
//!   container of a pod, its image layers, its process (podrun-process) and its mounts, and
//!   writes them as `plan.json` into the pod's runtime directory.
//! * [`supervisor`]: the long-lived, single-threaded process that holds the pod
//!   (`podrun __supervise DIR`): the pod sandbox, the containers, their exits and restarts,
//!   `state.json`, and the clean-up when it is told to stop (SIGTERM).
//! * [`logs`]: container logs in the kubelet's CRI format: written by the supervisor from
//!   the containers' pipes, read back into lines by `podrun logs`.
//! * [`network`]: the pod's network backend and published ports (planned in the CLI), and
//!   the helper the supervisor runs for it (podrun-network).
//! * [`exec`] and [`cp`]: finding a running container; copying files between it and the
//!   host (a tar stream between podrun and a child inside the container's namespaces).
//! * [`probe`]: startup, liveness and readiness probes, run by the supervisor in forked
//!   children from inside the pod's namespaces.
//! * [`state`]: the pod's on-disk state, as `podrun ps`, `logs` and `down` read it.
//! * [`stop`]: stopping a pod from another process (`podrun down`), with a fallback when the
//!   supervisor does not answer.
//! * [`attach`]: containers' `stdin`, `stdinOnce` and `tty`; attaching a terminal to a
//!   container (`attach.sock`, served by the supervisor).
//!
//! ```text
//! $XDG_RUNTIME_DIR/podrun/pods/<namespace>_<name>/    (/run/podrun/pods/... for root)
//!   plan.json  state.json  supervisor.pid  supervisor.log  attach.sock
//!   logs/<container>.log   libcontainer/   etc/{hosts,hostname,resolv.conf}   shm/
//! $XDG_DATA_HOME/podrun/pods/<namespace>_<name>/      (/var/lib/podrun/pods/... for root)
//!   containers/<name>/{bundle,upper,work,termination-log}   volumes/<volume>/
//! ```

pub mod attach;
pub mod backoff;
pub mod cgroup;
pub mod cp;
pub mod dns;
pub mod exec;
mod footprint;
pub mod ids;
pub mod lifecycle;
pub mod lock;
pub mod logs;
pub mod network;
pub mod node;
pub mod plan;
pub mod probe;
pub mod security;
pub mod state;
pub mod stop;
pub mod supervisor;
pub mod termination;
pub mod volumes;
pub mod watchdog;
pub mod workdir;

use std::path::{Path, PathBuf};

/// Errors of this crate; each names the pod, container, field or file it is about.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("{0}")]
    Message(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl PodError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PodError {
        let what = what.into();
        move |source| PodError::Io { what, source }
    }

    pub(crate) fn msg(text: impl Into<String>) -> PodError {
        PodError::Message(text.into())
    }
}

/// Where pods live: one runtime directory and one data directory per pod.
#[derive(Debug, Clone)]
pub struct PodDirs {
    /// `$XDG_RUNTIME_DIR/podrun/pods` (`/run/podrun/pods` for root).
    pub runtime_root: PathBuf,
    /// `$XDG_DATA_HOME/podrun/pods` (`/var/lib/podrun/pods` for root).
    pub data_root: PathBuf,
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
        })
    }

    /// The directory name of a pod: `<namespace>_<name>` (neither may contain `_`).
    pub fn key(namespace: &str, name: &str) -> String {
        format!("{namespace}_{name}")
    }

    pub fn runtime_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.runtime_root.join(Self::key(namespace, name))
    }

    pub fn data_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.data_root.join(Self::key(namespace, name))
    }
}

/// Splits `ns/name` or `name` (namespace `default`).
pub fn parse_pod_ref(text: &str) -> (String, String) {
    match text.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (
            podrun_manifest::DEFAULT_NAMESPACE.to_string(),
            text.to_string(),
        ),
    }
}

/// `ns/name`, or `name` in the default namespace, as messages show a pod.
pub fn display_name(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Removes a directory tree; a missing one is fine.
pub fn remove_tree(path: &Path) -> Result<(), PodError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PodError::io(format!("cannot remove {}", path.display()))(e)),
    }
}

/// Writes `content` to `path` atomically (temporary file in the same directory + rename).
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), PodError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let what = || format!("cannot write {}", path.display());
    let mut file = std::fs::File::create(&tmp).map_err(PodError::io(what()))?;
    file.write_all(content).map_err(PodError::io(what()))?;
    file.sync_all().map_err(PodError::io(what()))?;
    std::fs::rename(&tmp, path).map_err(PodError::io(what()))
}

/// Whether `pid` is a live (not zombie) process.
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses (which may itself hold spaces).
        Ok(stat) => match stat.rfind(')') {
            Some(end) => !matches!(stat[end + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// Whether `pid` is alive and is the supervisor of the pod whose runtime directory is `dir`.
pub fn is_supervisor_of(pid: i32, dir: &Path) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    use std::os::unix::ffi::OsStrExt;
    args.iter()
        .any(|a| *a == supervisor::SUPERVISE_COMMAND.as_bytes())
        && args.iter().any(|a| *a == dir.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_refs() {
        assert_eq!(
            parse_pod_ref("web"),
            ("default".to_string(), "web".to_string())
        );
        assert_eq!(
            parse_pod_ref("team/web"),
            ("team".to_string(), "web".to_string())
        );
    }

    #[test]
    fn missing_runtime_dir_has_a_hint() {
        let err = PodDirs::new(None, None, Path::new("/d")).unwrap_err();
        assert!(err.to_string().contains("export XDG_RUNTIME_DIR"), "{err}");
        let dirs = PodDirs::new(Some(Path::new("/r/podrun")), None, Path::new("/d")).unwrap();
        assert_eq!(
            dirs.runtime_dir("default", "web"),
            PathBuf::from("/r/podrun/pods/default_web")
        );
        assert!(process_alive(std::process::id() as i32));
    }
}
