//! A Job's files, in its directory beside the pods' (`$XDG_RUNTIME_DIR/podrun/jobs/<ns>_<name>`):
//!
//! * `job.json` ([`JobInputs`]): what `play` hands the Job's controller: the manifest's
//!   text and how it was read, the network the pods use, the Job's fields;
//! * `status.json` ([`JobStatus`]): the Job's status as Kubernetes shows it (active,
//!   succeeded and failed counts, start and completion times, the `Complete` or `Failed`
//!   condition), written by `play` first, then by the controller on every change;
//! * `controller.pid` and `controller.log`: the controller process and its output.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use podrun_pod::PodDirs;
use serde::{Deserialize, Serialize};

/// The controller's role word: `podrun job-controller <namespace>/<name>`.
pub const CONTROLLER_ROLE: &str = "job-controller";
/// The environment variable that tells a `podrun job-controller` process its Job's
/// directory.
pub const JOB_DIR_ENV: &str = "PODRUN_JOB_DIR";

/// Where a Job's files are.
#[derive(Debug, Clone)]
pub struct JobDir {
    pub dir: PathBuf,
}

impl JobDir {
    /// The directory of Job `namespace/name`.
    pub fn of(dirs: &PodDirs, namespace: &str, name: &str) -> JobDir {
        JobDir {
            dir: jobs_root(dirs).join(PodDirs::key(namespace, name)),
        }
    }

    pub fn inputs_file(&self) -> PathBuf {
        self.dir.join("job.json")
    }

    pub fn status_file(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("controller.pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("controller.log")
    }

    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// The controller's pid, if it runs (its command line names its role: a recycled pid
    /// is not taken for it).
    pub fn controller_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let role = cmdline.split(|b| *b == 0).nth(1)?;
        let alive = podrun_pod_model::process::process_alive(pid);
        (alive && role == CONTROLLER_ROLE.as_bytes()).then_some(pid)
    }

    pub fn read_inputs(&self) -> anyhow::Result<JobInputs> {
        read_json(&self.inputs_file())
    }

    pub fn read_status(&self) -> anyhow::Result<JobStatus> {
        read_json(&self.status_file())
    }

    pub fn write_inputs(&self, inputs: &JobInputs) -> anyhow::Result<()> {
        write_json(&self.inputs_file(), inputs)
    }

    pub fn write_status(&self, status: &JobStatus) -> anyhow::Result<()> {
        write_json(&self.status_file(), status)
    }
}

/// `$XDG_RUNTIME_DIR/podrun/jobs`: beside `pods`.
fn jobs_root(dirs: &PodDirs) -> PathBuf {
    dirs.runtime_root
        .parent()
        .unwrap_or(&dirs.runtime_root)
        .join("jobs")
}

/// What the controller needs to make more pods as `play` made the first ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobInputs {
    /// The file as `play` named it (`<stdin>` for `-`), for messages.
    pub file: String,
    /// The file's text: the controller loads it again, as `play` did.
    pub text: String,
    /// `play -n`.
    pub namespace_option: Option<String>,
    /// The pods' network, as `play` chose it.
    pub network: podrun_network::Backend,
    pub publish_all: bool,
    pub completions: Option<u32>,
    pub parallelism: u32,
    pub backoff_limit: u32,
    pub active_deadline_seconds: Option<u64>,
}

/// A Job's condition once it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionType {
    Complete,
    Failed,
}

/// The Job's `Complete` or `Failed` condition, as Kubernetes words it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCondition {
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// `BackoffLimitExceeded`, `DeadlineExceeded` (Failed) or `CompletionsReached`.
    pub reason: String,
    pub message: String,
}

/// `status.json`: the Job's status (Kubernetes' `JobStatus`, in its JSON names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub namespace: String,
    pub name: String,
    /// RFC 3339.
    pub start_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    pub active: usize,
    pub succeeded: usize,
    pub failed: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<JobCondition>,
}

impl JobStatus {
    /// The condition that ended the Job, if it is over.
    pub fn finished(&self) -> Option<&JobCondition> {
        self.conditions.first()
    }

    /// One line: `job/NAME Complete: 3 succeeded, 0 failed` or
    /// `job/NAME Failed (BackoffLimitExceeded: ...): 0 succeeded, 2 failed`.
    pub fn summary(&self) -> String {
        let name = podrun_pod::display_name(&self.namespace, &self.name);
        let state = match self.finished() {
            Some(c) if c.type_ == ConditionType::Complete => "Complete".to_string(),
            Some(c) => format!("Failed ({}: {})", c.reason, c.message),
            None => "Running".to_string(),
        };
        format!(
            "job {name} {state}: {} succeeded, {} failed, {} active",
            self.succeeded, self.failed, self.active
        )
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("cannot parse {}", path.display()))
}

/// Written whole or not at all (a temporary file renamed): readers never see half of it.
fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value)?;
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_file_speaks_kubernetes_json_and_sums_up_in_one_line() {
        let mut status = JobStatus {
            namespace: "default".into(),
            name: "migrate".into(),
            start_time: "2026-01-01T00:00:00.000Z".into(),
            completion_time: None,
            active: 1,
            succeeded: 2,
            failed: 0,
            conditions: Vec::new(),
        };
        assert_eq!(
            status.summary(),
            "job default/migrate Running: 2 succeeded, 0 failed, 1 active"
        );
        status.conditions.push(JobCondition {
            type_: ConditionType::Failed,
            reason: "DeadlineExceeded".into(),
            message: "Job was active longer than specified deadline".into(),
        });
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["startTime"], "2026-01-01T00:00:00.000Z");
        assert_eq!(json["conditions"][0]["type"], "Failed");
        assert!(json.get("completionTime").is_none());
        let back: JobStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
        assert!(status
            .summary()
            .starts_with("job default/migrate Failed (DeadlineExceeded: Job was active longer"));
    }

    #[test]
    fn job_directories_are_beside_the_pods() {
        let runtime = Path::new("/run/user/1/podrun");
        let dirs = PodDirs::new(Some(runtime), None, Path::new("/data/podrun")).unwrap();
        let dir = JobDir::of(&dirs, "ns", "migrate");
        assert_eq!(
            dir.status_file(),
            Path::new("/run/user/1/podrun/jobs/ns_migrate/status.json")
        );
        assert_eq!(dir.controller_pid(), None);
    }
}
