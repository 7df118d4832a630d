//! The pods in the runtime directory, as `podrun ps`, `describe` and the shell completions
//! list them.

use std::path::{Path, PathBuf};

use podrun_pod_model::layout::supervisor_pid;
use podrun_pod_model::process::is_supervisor_of;
use podrun_pod_model::state::PodState;
use podrun_pod_model::{PodDirs, PodError};

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
