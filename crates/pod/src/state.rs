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
    /// The pod's phase as the kubelet words it: `Pending`, `Running`, `Succeeded`, `Failed`
    /// (see [`PodState::compute_phase`]).
    #[serde(default)]
    pub phase: String,
    /// The pod is being stopped (`podrun down`): kubectl's `Terminating`.
    #[serde(default)]
    pub terminating: bool,
    /// Why the pod failed as a whole, as the kubelet words it (`DeadlineExceeded`: see
    /// `activeDeadlineSeconds`); the pod is Failed whatever its containers did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details of `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The app containers (`spec.containers`), in order.
    pub containers: Vec<ContainerState>,
    /// `spec.initContainers`, in order (native sidecars have `sidecar` set).
    #[serde(default)]
    pub init_containers: Vec<ContainerState>,
    /// What happened to the pod, oldest first, the last [`MAX_EVENTS`] only (see
    /// [`PodState::event`]).
    #[serde(default)]
    pub events: Vec<Event>,
}

/// How many events `state.json` keeps.
pub const MAX_EVENTS: usize = 100;

/// An event, as `kubectl describe` lists them; repeats of the last event are counted, not
/// added (as the kubelet's event recorder aggregates them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Pulled`, `Created`, `Started`, `Killing`, `BackOff`, `Failed`, `Unhealthy`, ...
    pub reason: String,
    /// The container it is about; `None` for the pod.
    pub container: Option<String>,
    pub message: String,
    /// RFC 3339: the first and the last time it happened.
    pub first_time: String,
    pub last_time: String,
    pub count: u32,
}

/// An event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Normal,
    Warning,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Normal => "Normal",
            EventKind::Warning => "Warning",
        }
    }
}

/// One container of the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub image: String,
    /// `running`, `exited`, or `waiting` (not started yet, or for a restart after a
    /// back-off): the kubelet's Running, Terminated and Waiting.
    pub state: String,
    /// Why it is in that state, as the kubelet words it. Waiting: `ContainerCreating`,
    /// `PodInitializing`, `CrashLoopBackOff`; exited: `Completed`, `Error`; running:
    /// `ContainerCreating` while its postStart hook runs (the kubelet reports the container
    /// only once the hook is done).
    #[serde(default)]
    pub reason: Option<String>,
    /// Details of `reason` (e.g. the back-off, a hook's failure).
    #[serde(default)]
    pub message: Option<String>,
    /// Running, its postStart hook done (and its readiness probe passed, where it has one).
    #[serde(default)]
    pub ready: bool,
    /// An init container with `restartPolicy: Always` (a native sidecar).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sidecar: bool,
    /// Running, and its startup probe has succeeded (or it has none): the kubelet's
    /// `started`.
    #[serde(default)]
    pub started: bool,
    /// Its probes' verdicts and last results (see [`crate::probe`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<crate::probe::ProbeStatus>,
    /// The container init's host pid while it runs.
    pub pid: Option<i32>,
    /// The libcontainer id of the current (or last) run.
    pub id: String,
    /// Exit code of the last run; 128+N when killed by signal N.
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
    /// The termination message of its last run (see [`crate::termination`]), also its
    /// `message` while it stays exited: the kubelet's `lastState.terminated.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message: Option<String>,
}

impl ContainerState {
    /// Waiting, or running but not yet reported by the kubelet (postStart): the reason
    /// kubectl shows for it.
    fn waiting_reason(&self) -> Option<&str> {
        match self.state.as_str() {
            "waiting" => self.reason.as_deref(),
            "running" if self.reason.as_deref() == Some("ContainerCreating") => {
                Some("ContainerCreating")
            }
            _ => None,
        }
    }

    fn terminated(&self) -> bool {
        self.state == "exited"
    }

    /// Exited once and not running now (back-off, or done): the kubelet's "stopped".
    fn has_run(&self) -> bool {
        self.exit_code.is_some() && self.state != "running"
    }
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

    /// Ready containers / all containers, as kubectl counts them: the app containers and
    /// the native sidecars.
    pub fn ready(&self) -> (usize, usize) {
        let counted = || {
            self.containers
                .iter()
                .chain(self.init_containers.iter().filter(|c| c.sidecar))
        };
        (counted().filter(|c| c.ready).count(), counted().count())
    }

    pub fn restarts(&self) -> u32 {
        self.containers
            .iter()
            .chain(&self.init_containers)
            .map(|c| c.restart_count)
            .sum()
    }

    /// Records an event (see [`Event`]); a repeat of the last one only counts it again.
    pub fn event(
        &mut self,
        kind: EventKind,
        reason: &str,
        container: Option<&str>,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Some(last) = self.events.last_mut() {
            if last.reason == reason
                && last.container.as_deref() == container
                && last.message == message
            {
                last.count += 1;
                last.last_time = now;
                return;
            }
        }
        self.events.push(Event {
            kind: kind.as_str().into(),
            reason: reason.into(),
            container: container.map(str::to_string),
            message,
            first_time: now.clone(),
            last_time: now,
            count: 1,
        });
        if self.events.len() > MAX_EVENTS {
            let extra = self.events.len() - MAX_EVENTS;
            self.events.drain(..extra);
        }
    }

    /// The kubelet's pod phase (its `getPhase`): `Failed` when an init container failed
    /// and the pod's restartPolicy is Never; `Pending` until the init containers are done
    /// and every app container has started; then `Running` while some container runs or
    /// will be restarted; `Succeeded` or `Failed` when all have ended for good.
    pub fn compute_phase(&self) -> &'static str {
        if self.reason.is_some() {
            return "Failed";
        }
        let never = self.restart_policy == "Never";
        for init in &self.init_containers {
            if init.sidecar {
                if init.state != "running" && init.exit_code.is_none() {
                    return "Pending";
                }
                continue;
            }
            match init.exit_code {
                Some(0) if init.terminated() => continue,
                Some(_) if init.terminated() && never => return "Failed",
                _ => return "Pending",
            }
        }
        let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
        for c in &self.containers {
            match c.state.as_str() {
                "running" => running += 1,
                _ if c.has_run() => match c.exit_code {
                    Some(0) => succeeded += 1,
                    _ => failed += 1,
                },
                _ => waiting += 1,
            }
        }
        let stopped = succeeded + failed;
        match () {
            _ if waiting > 0 => "Pending",
            _ if running > 0 => "Running",
            _ if stopped > 0 => match self.restart_policy.as_str() {
                "Always" => "Running",
                "OnFailure" if failed > 0 => "Running",
                "OnFailure" => "Succeeded",
                _ if failed > 0 => "Failed",
                _ => "Succeeded",
            },
            _ => "Pending",
        }
    }

    /// The STATUS column, worked out as kubectl's `printPod` does. `supervisor_alive`:
    /// whether the supervisor still runs (otherwise the pod is `Lost`).
    pub fn status(&self, supervisor_alive: bool) -> String {
        if !supervisor_alive {
            return "Lost".into();
        }
        if self.terminating {
            return "Terminating".into();
        }
        // kubectl: the pod's reason, else its phase; then the containers' say.
        let mut reason = match (&self.reason, self.phase.is_empty()) {
            (Some(reason), _) => reason.clone(),
            (None, true) => self.compute_phase().to_string(),
            (None, false) => self.phase.clone(),
        };
        if let Some(init) = self.init_status() {
            return init;
        }
        let mut has_running = false;
        // The kubelet reports container statuses sorted by name, and kubectl lets the first
        // one of them that has a reason decide.
        let mut sorted: Vec<&ContainerState> = self.containers.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for c in sorted.into_iter().rev() {
            if let Some(waiting) = c.waiting_reason() {
                reason = waiting.to_string();
            } else if c.terminated() {
                reason = match &c.reason {
                    Some(r) => r.clone(),
                    None => format!("ExitCode:{}", c.exit_code.unwrap_or(0)),
                };
            } else if c.state == "running" && c.ready {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let (ready, total) = self.ready();
            reason = if ready == total {
                "Running"
            } else {
                "NotReady"
            }
            .into();
        }
        reason
    }

    /// `Init:N/M`, `Init:Error`, `Init:CrashLoopBackOff`... while the init containers are
    /// not done (kubectl's rule: the first one not done decides).
    fn init_status(&self) -> Option<String> {
        let total = self.init_containers.len();
        for (i, c) in self.init_containers.iter().enumerate() {
            if c.terminated() && c.exit_code == Some(0) {
                continue;
            }
            if c.sidecar && c.state == "running" && c.reason.is_none() {
                continue;
            }
            return Some(if c.terminated() {
                match &c.reason {
                    Some(r) => format!("Init:{r}"),
                    None => format!("Init:ExitCode:{}", c.exit_code.unwrap_or(0)),
                }
            } else {
                match c.waiting_reason() {
                    Some(r) if r != "PodInitializing" => format!("Init:{r}"),
                    _ => format!("Init:{i}/{total}"),
                }
            });
        }
        None
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

    /// A container as the supervisor records it: `reason` follows from the state.
    fn container(state: &str, exit_code: Option<i32>, restarts: u32) -> ContainerState {
        let reason = match (state, exit_code) {
            ("exited", Some(0)) => Some("Completed".to_string()),
            ("exited", Some(_)) => Some("Error".to_string()),
            ("waiting", Some(_)) => Some("CrashLoopBackOff".to_string()),
            _ => None,
        };
        ContainerState {
            name: "c".into(),
            image: "busybox".into(),
            state: state.into(),
            reason,
            message: None,
            ready: state == "running",
            sidecar: false,
            started: state == "running",
            probes: Vec::new(),
            pid: None,
            id: "x".into(),
            exit_code,
            started_at: None,
            finished_at: None,
            restart_count: restarts,
            termination_message: None,
        }
    }

    fn pod(policy: &str, containers: Vec<ContainerState>) -> PodState {
        let mut pod = PodState {
            pod: "p".into(),
            namespace: "default".into(),
            uid: "u".into(),
            supervisor_pid: 1,
            user_namespace: String::new(),
            created: chrono::Utc::now().to_rfc3339(),
            restart_policy: policy.into(),
            termination_grace_period_seconds: 30,
            phase: String::new(),
            terminating: false,
            reason: None,
            message: None,
            containers,
            init_containers: Vec::new(),
            events: Vec::new(),
        };
        pod.phase = pod.compute_phase().into();
        pod
    }

    #[test]
    fn a_pod_past_its_deadline_is_failed_whatever_its_containers_did() {
        let mut p = pod("Always", vec![container("running", None, 0)]);
        assert_eq!(p.compute_phase(), "Running");
        p.reason = Some("DeadlineExceeded".into());
        assert_eq!(p.compute_phase(), "Failed");
        p.containers[0].ready = false;
        assert_eq!(p.status(true), "DeadlineExceeded");
        let mut done = pod("Never", vec![container("exited", Some(0), 0)]);
        done.reason = Some("DeadlineExceeded".into());
        assert_eq!(done.compute_phase(), "Failed");
    }

    #[test]
    fn statuses_like_kubectl() {
        let p = pod(
            "Always",
            vec![container("running", None, 0), container("running", None, 0)],
        );
        assert_eq!(p.status(true), "Running");
        assert_eq!(p.ready(), (2, 2));
        assert_eq!(p.status(false), "Lost");
        let p = pod(
            "Never",
            vec![
                container("exited", Some(0), 0),
                container("exited", Some(0), 0),
            ],
        );
        assert_eq!(p.status(true), "Completed");
        assert_eq!(p.phase, "Succeeded");
        let mut p = pod(
            "Never",
            vec![
                container("exited", Some(0), 0),
                container("exited", Some(2), 0),
            ],
        );
        p.containers[0].name = "good".into();
        p.containers[1].name = "bad".into();
        assert_eq!(p.status(true), "Error");
        p.containers[1].name = "worse".into();
        assert_eq!(
            p.status(true),
            "Completed",
            "kubectl: the first by name decides"
        );
        assert_eq!(p.phase, "Failed");
        let p = pod(
            "Always",
            vec![
                container("running", None, 0),
                container("waiting", Some(1), 3),
            ],
        );
        assert_eq!(p.status(true), "CrashLoopBackOff");
        assert_eq!(p.phase, "Running");
        assert_eq!(p.restarts(), 3);
        let p = pod(
            "OnFailure",
            vec![
                container("running", None, 0),
                container("exited", Some(0), 0),
            ],
        );
        // kubectl: a Completed container beside a running one makes the pod not Ready.
        assert_eq!(p.status(true), "NotReady");
        let mut p = pod("Always", vec![container("running", None, 0)]);
        p.containers[0].reason = Some("ContainerCreating".into());
        p.containers[0].ready = false;
        assert_eq!(p.status(true), "ContainerCreating");
        p.terminating = true;
        assert_eq!(p.status(true), "Terminating");
        assert_eq!(age(&chrono::Utc::now().to_rfc3339()), "0s");
    }

    #[test]
    fn init_statuses_like_kubectl() {
        let mut app = container("waiting", None, 0);
        app.reason = Some("PodInitializing".into());
        let mut p = pod("Never", vec![app.clone()]);
        let mut sidecar = container("running", None, 0);
        sidecar.sidecar = true;
        p.init_containers = vec![
            container("exited", Some(0), 0),
            sidecar,
            container("running", None, 0),
        ];
        assert_eq!(p.compute_phase(), "Pending");
        assert_eq!(p.status(true), "Init:2/3");
        assert_eq!(p.ready(), (1, 2), "the sidecar counts");
        p.init_containers[2] = container("exited", Some(1), 0);
        assert_eq!(p.compute_phase(), "Failed");
        assert_eq!(p.status(true), "Init:Error");
        p.init_containers[2] = container("waiting", Some(1), 2);
        assert_eq!(p.status(true), "Init:CrashLoopBackOff");
        assert_eq!(p.restarts(), 2);
        p.init_containers[2] = container("exited", Some(0), 0);
        assert_eq!(p.status(true), "PodInitializing");
    }

    #[test]
    fn events_are_counted_and_capped() {
        let mut p = pod("Always", vec![]);
        p.event(
            EventKind::Warning,
            "BackOff",
            Some("c"),
            "Back-off restarting",
        );
        p.event(
            EventKind::Warning,
            "BackOff",
            Some("c"),
            "Back-off restarting",
        );
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.events[0].count, 2);
        assert_eq!(p.events[0].kind, "Warning");
        for i in 0..MAX_EVENTS + 5 {
            p.event(EventKind::Normal, "Started", None, format!("{i}"));
        }
        assert_eq!(p.events.len(), MAX_EVENTS);
        assert_eq!(
            p.events.last().unwrap().message,
            format!("{}", MAX_EVENTS + 4)
        );
    }
}
