//! The pods in the runtime directory, as `podrun ps`, `describe` and the shell completions
//! list them, and how a pod named on the command line is found among them ([`resolve`]).

use std::path::{Path, PathBuf};

use podrun_pod_model::layout::supervisor_pid;
use podrun_pod_model::process::is_supervisor_of;
use podrun_pod_model::state::PodState;
use podrun_pod_model::{PodDirs, PodError, DEFAULT_NAMESPACE};

/// A pod found in the runtime directory.
#[derive(Debug, Clone)]
pub struct PodEntry {
    pub namespace: String,
    pub name: String,
    pub runtime_dir: PathBuf,
    /// `None` when the state file is missing (a pod being started, or a crashed start).
    pub state: Option<PodState>,
    pub supervisor_alive: bool,
}

impl PodEntry {
    /// The workload the pod belongs to: from its state, or its plan while it has none.
    pub fn controller(&self) -> Option<podrun_pod_model::plan::Controller> {
        match &self.state {
            Some(state) => state.controller.clone(),
            None => {
                podrun_pod_model::plan::Plan::read(&self.runtime_dir)
                    .ok()?
                    .controller
            }
        }
    }

    pub fn status(&self) -> String {
        match &self.state {
            Some(state) => state.status(self.supervisor_alive),
            None if self.supervisor_alive => "Pending".into(),
            None => "Lost".into(),
        }
    }
}

/// The pod in `dir`.
pub fn entry(dir: &Path) -> Option<PodEntry> {
    let key = dir.file_name()?.to_str()?;
    let (namespace, name) = PodDirs::split_key(key)?;
    let state = PodState::read(dir).ok();
    let pid = state
        .as_ref()
        .map(|s| s.supervisor_pid)
        .or_else(|| supervisor_pid(dir));
    Some(PodEntry {
        namespace: namespace.to_string(),
        name: name.to_string(),
        runtime_dir: dir.to_path_buf(),
        supervisor_alive: pid.is_some_and(|pid| is_supervisor_of(pid, dir)),
        state,
    })
}

/// Every pod in the runtime directory, sorted by namespace and name.
pub fn list(dirs: &PodDirs) -> Result<Vec<PodEntry>, PodError> {
    let read = match std::fs::read_dir(&dirs.runtime_root) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PodError::io(format!(
                "cannot read {}",
                dirs.runtime_root.display()
            ))(e))
        }
    };
    let mut pods: Vec<PodEntry> = read
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| entry(&e.path()))
        .collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(pods)
}

/// Why a pod named on the command line is not one pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A bare name that no pod of any namespace has.
    #[error("pod {0} not found in any namespace")]
    NotFound(String),
    /// A bare name that pods of several namespaces have (none in `default`).
    #[error("pod {name} exists in namespaces {}: say which with -n or NS/NAME", .namespaces.join(", "))]
    Ambiguous {
        name: String,
        namespaces: Vec<String>,
    },
    /// `NS/NAME` with `-n` naming another namespace.
    #[error("pod {reference} is in namespace {in_reference}, but -n says {given}")]
    Conflict {
        reference: String,
        in_reference: String,
        given: String,
    },
    /// Not `NAME` or `NAMESPACE/NAME`.
    #[error("`{0}` is not a pod: write NAME or NAMESPACE/NAME")]
    Invalid(String),
    /// `deploy/NAME` (kubectl's TYPE/NAME) where the workload has no pod.
    #[error("{reference}: no pod of {kind} `{name}` in namespace {namespace}")]
    NoWorkloadPod {
        reference: String,
        kind: String,
        name: String,
        namespace: String,
    },
}

/// kubectl's resource words for the workloads whose pods podrun runs (`deploy/api`), as the
/// kind their pods record as controller.
pub fn workload_kind(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "deploy" | "deployment" | "deployments" => "Deployment",
        "rs" | "replicaset" | "replicasets" => "ReplicaSet",
        "ds" | "daemonset" | "daemonsets" => "DaemonSet",
        "sts" | "statefulset" | "statefulsets" => "StatefulSet",
        "job" | "jobs" => "Job",
        _ => return None,
    })
}

/// The pod kubectl would pick for `logs`/`exec` of a workload: among the workload's pods of
/// `namespace`, a ready one first, then by name.
pub fn pick_workload_pod<'a>(
    pods: &'a [PodEntry],
    namespace: &str,
    kind: &str,
    name: &str,
) -> Option<&'a PodEntry> {
    let mut owned: Vec<&PodEntry> = pods
        .iter()
        .filter(|pod| pod.namespace == namespace)
        .filter(|pod| {
            pod.controller()
                .is_some_and(|c| c.kind == kind && c.name == name)
        })
        .collect();
    owned.sort_by_key(|pod| {
        let (ready, total) = pod.state.as_ref().map_or((0, 1), |s| s.ready());
        (ready < total, pod.name.clone())
    });
    owned.first().copied()
}

/// The pod that `reference` (as a command line gives it) names, with `namespace` from `-n`:
/// `NS/NAME` and `-n NS NAME` name it outright (whether it exists or not: the caller says
/// so); a bare `NAME` is `default/NAME` if that exists, else the one pod of that name in
/// any namespace. Pure: `pods` are the existing pods' `(namespace, name)`.
pub fn resolve_among<'a>(
    pods: impl IntoIterator<Item = (&'a str, &'a str)>,
    namespace: Option<&str>,
    reference: &str,
) -> Result<(String, String), ResolveError> {
    let invalid = || ResolveError::Invalid(reference.to_string());
    if let Some((ns, name)) = reference.split_once('/') {
        if ns.is_empty() || name.is_empty() || name.contains('/') {
            return Err(invalid());
        }
        if let Some(given) = namespace.filter(|given| *given != ns) {
            return Err(ResolveError::Conflict {
                reference: reference.to_string(),
                in_reference: ns.to_string(),
                given: given.to_string(),
            });
        }
        return Ok((ns.to_string(), name.to_string()));
    }
    if reference.is_empty() {
        return Err(invalid());
    }
    if let Some(ns) = namespace {
        return Ok((ns.to_string(), reference.to_string()));
    }
    let mut namespaces: Vec<String> = pods
        .into_iter()
        .filter(|(_, name)| *name == reference)
        .map(|(ns, _)| ns.to_string())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    if namespaces.iter().any(|ns| ns == DEFAULT_NAMESPACE) {
        return Ok((DEFAULT_NAMESPACE.to_string(), reference.to_string()));
    }
    match namespaces.len() {
        0 => Err(ResolveError::NotFound(reference.to_string())),
        1 => Ok((namespaces.remove(0), reference.to_string())),
        _ => Err(ResolveError::Ambiguous {
            name: reference.to_string(),
            namespaces,
        }),
    }
}

/// [`resolve_among`] the pods of the runtime directory.
pub fn resolve(
    dirs: &PodDirs,
    namespace: Option<&str>,
    reference: &str,
) -> Result<(String, String), ResolveError> {
    if let Some((word, name)) = reference.split_once('/') {
        if matches!(word, "pod" | "pods" | "po") {
            return resolve(dirs, namespace, name);
        }
        if let Some(kind) = workload_kind(word) {
            let namespace = namespace.unwrap_or(DEFAULT_NAMESPACE);
            let pods = list(dirs).unwrap_or_default();
            return pick_workload_pod(&pods, namespace, kind, name)
                .map(|pod| (pod.namespace.clone(), pod.name.clone()))
                .ok_or_else(|| ResolveError::NoWorkloadPod {
                    reference: reference.to_string(),
                    kind: kind.to_string(),
                    name: name.to_string(),
                    namespace: namespace.to_string(),
                });
        }
    }
    if reference.contains('/') || namespace.is_some() {
        return resolve_among([], namespace, reference);
    }
    let keys = pod_keys(dirs);
    let pods = keys.iter().filter_map(|key| PodDirs::split_key(key));
    resolve_among(pods, namespace, reference)
}

/// The names of the pods' runtime directories (`<namespace>_<name>`); none when the
/// directory cannot be read.
fn pod_keys(dirs: &PodDirs) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(&dirs.runtime_root) else {
        return Vec::new();
    };
    read.flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}

/// kubectl's AGE: `42s`, `5m`, `3h`, `2d`.
pub fn age(created: &str) -> String {
    let Ok(time) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let seconds = (chrono::Utc::now() - time.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_as_kubectl_shows_them() {
        assert_eq!(age(&chrono::Utc::now().to_rfc3339()), "0s");
        let hours_ago = chrono::Utc::now() - chrono::Duration::hours(3);
        assert_eq!(age(&hours_ago.to_rfc3339()), "3h");
        assert_eq!(age("yesterday"), "<unknown>");
    }

    fn resolved(pods: &[(&str, &str)], ns: Option<&str>, reference: &str) -> String {
        match resolve_among(pods.iter().copied(), ns, reference) {
            Ok((ns, name)) => format!("{ns}/{name}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn pods_are_found_as_users_name_them() {
        let pods = [
            ("default", "web"),
            ("team-a", "web"),
            ("team-a", "hweb"),
            ("team-a", "db"),
            ("team-b", "db"),
        ];
        // Explicit: as written, existing or not.
        assert_eq!(resolved(&pods, None, "team-b/web"), "team-b/web");
        assert_eq!(resolved(&pods, Some("team-c"), "x"), "team-c/x");
        assert_eq!(resolved(&pods, Some("team-a"), "team-a/db"), "team-a/db");
        // Bare: default first, else the only one.
        assert_eq!(resolved(&pods, None, "web"), "default/web");
        assert_eq!(resolved(&pods, None, "hweb"), "team-a/hweb");
        assert_eq!(
            resolved(&pods, None, "nope"),
            "pod nope not found in any namespace"
        );
        assert_eq!(
            resolved(&pods, None, "db"),
            "pod db exists in namespaces team-a, team-b: say which with -n or NS/NAME"
        );
        assert_eq!(
            resolved(&pods, Some("team-a"), "team-b/db"),
            "pod team-b/db is in namespace team-b, but -n says team-a"
        );
        for bad in ["", "/web", "team-a/", "a/b/c"] {
            assert!(resolved(&pods, None, bad).contains("is not a pod"), "{bad}");
        }
    }

    #[test]
    fn a_pod_directory_without_state_is_pending_or_lost() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("default_web");
        std::fs::create_dir(&dir).unwrap();
        let found = entry(&dir).unwrap();
        assert_eq!(
            (found.namespace.as_str(), found.name.as_str()),
            ("default", "web")
        );
        assert_eq!(found.status(), "Lost");
        assert!(entry(&root.path().join("nounderscore")).is_none());
    }
}
