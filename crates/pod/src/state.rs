//! The pod's state file (`state.json`, written by the supervisor) and what `podrun ps` shows.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{is_supervisor_of, write_atomic, PodDirs, PodError};

pub const STATE_FILE: &str = "state.json";

/// A pod as its supervisor last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    pub pod: String,
    pub namespace: String,
    pub uid: String,
    pub supervisor_pid: i32,
    /// `/proc/PID/ns/user` of the supervisor (`user:[inode]`): every process of the pod is in
    /// this user namespace, which is how `down` finds leftovers.
    #[serde(default)]
    pub user_namespace: String,
    /// RFC 3339.
    pub created: String,
    pub restart_policy: String,
    pub termination_grace_period_seconds: u64,
    pub containers: Vec<ContainerState>,
}

/// One container of the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub image: String,
    /// `running`, `exited`, or `waiting` (for a restart after a back-off).
    pub state: String,
    /// The container init's host pid while it runs.
    pub pid: Option<i32>,
    /// The libcontainer id of the current (or last) run.
    pub id: String,
    /// Exit code of the last run; 128+N when killed by signal N.
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
}

impl PodState {
    pub fn read(dir: &Path) -> Result<PodState, PodError> {
        let path = dir.join(STATE_FILE);
        let bytes = std::fs::read(&path).map_err(PodError::io(format!(
            "cannot read the pod state {}",
            path.display()
        )))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PodError::msg(format!("{} is damaged: {e}", path.display())))
    }

    pub fn write(&self, dir: &Path) -> Result<(), PodError> {
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        write_atomic(&dir.join(STATE_FILE), &json)
    }

    /// Running containers / all containers.
    pub fn ready(&self) -> (usize, usize) {
        let running = self
            .containers
            .iter()
            .filter(|c| c.state == "running")
            .count();
        (running, self.containers.len())
    }

    pub fn restarts(&self) -> u32 {
        self.containers.iter().map(|c| c.restart_count).sum()
    }

    /// The STATUS column, as kubectl words it. `supervisor_alive`: whether the supervisor
    /// still runs (otherwise the pod is `Lost`).
    pub fn status(&self, supervisor_alive: bool) -> String {
        if !supervisor_alive {
            return "Lost".into();
        }
        let any = |state: &str| self.containers.iter().any(|c| c.state == state);
        if self
            .containers
            .iter()
            .any(|c| c.state == "waiting" && c.exit_code.is_some())
        {
            return "CrashLoopBackOff".into();
        }
        if any("running") {
            return "Running".into();
        }
        if self
            .containers
            .iter()
            .all(|c| c.state == "exited" && c.exit_code == Some(0))
        {
            return "Completed".into();
        }
        if self
            .containers
            .iter()
            .any(|c| c.state == "exited" && c.exit_code.unwrap_or(0) != 0)
        {
            return "Error".into();
        }
        "Pending".into()
    }
}

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
    pub fn status(&self) -> String {
        match &self.state {
            Some(state) => state.status(self.supervisor_alive),
            None if self.supervisor_alive => "Pending".into(),
            None => "Lost".into(),
        }
    }
}

/// Reads the supervisor's pid file of a pod directory.
pub fn supervisor_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(crate::supervisor::PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The pod in `dir`.
pub fn entry(dir: &Path) -> Option<PodEntry> {
    let key = dir.file_name()?.to_str()?;
    let (namespace, name) = key.split_once('_')?;
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

    fn container(state: &str, exit_code: Option<i32>, restarts: u32) -> ContainerState {
        ContainerState {
            name: "c".into(),
            image: "busybox".into(),
            state: state.into(),
            pid: None,
            id: "x".into(),
            exit_code,
            started_at: None,
            finished_at: None,
            restart_count: restarts,
        }
    }

    fn pod(containers: Vec<ContainerState>) -> PodState {
        PodState {
            pod: "p".into(),
            namespace: "default".into(),
            uid: "u".into(),
            supervisor_pid: 1,
            user_namespace: String::new(),
            created: chrono::Utc::now().to_rfc3339(),
            restart_policy: "Always".into(),
            termination_grace_period_seconds: 30,
            containers,
        }
    }

    #[test]
    fn statuses_like_kubectl() {
        let p = pod(vec![
            container("running", None, 0),
            container("running", None, 0),
        ]);
        assert_eq!(p.status(true), "Running");
        assert_eq!(p.ready(), (2, 2));
        assert_eq!(p.status(false), "Lost");
        let p = pod(vec![
            container("exited", Some(0), 0),
            container("exited", Some(0), 0),
        ]);
        assert_eq!(p.status(true), "Completed");
        let p = pod(vec![
            container("exited", Some(0), 0),
            container("exited", Some(2), 0),
        ]);
        assert_eq!(p.status(true), "Error");
        let p = pod(vec![
            container("running", None, 0),
            container("waiting", Some(1), 3),
        ]);
        assert_eq!(p.status(true), "CrashLoopBackOff");
        assert_eq!(p.restarts(), 3);
        assert_eq!(age(&chrono::Utc::now().to_rfc3339()), "0s");
    }
}
