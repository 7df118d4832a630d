//! The pod's state file (`state.json`, written by the supervisor) and what `podrun ps`
//! shows of it: the kubelet's container states, pod phase and kubectl's STATUS column.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::layout::STATE_FILE;
use crate::plan::RestartPolicy;
use crate::probe::ProbeStatus;
use crate::{write_atomic, PodError};

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
    /// The pod's address when it is not fixed by its network's backend: the one the shared
    /// network's holder leased it (`--network shared`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// RFC 3339.
    pub created: String,
    pub restart_policy: RestartPolicy,
    pub termination_grace_period_seconds: u64,
    /// The pod's phase (see [`PodState::compute_phase`]).
    #[serde(default)]
    pub phase: PodPhase,
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
    /// The process whose end stops the pod (`play --owner-pid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The workload the pod belongs to (the plan's `controller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<crate::plan::Controller>,
}

/// The owner of a pod started with `play --owner-pid`: when it ends, the pod is stopped and
/// removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`) when the pod started.
    #[serde(default)]
    pub command: String,
}

impl fmt::Display for Owner {
    /// `1234 (pytest)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.command.is_empty() {
            write!(f, "{}", self.pid)
        } else {
            write!(f, "{} ({})", self.pid, self.command)
        }
    }
}

/// How many events `state.json` keeps.
pub const MAX_EVENTS: usize = 100;

/// An event, as `kubectl describe` lists them; repeats of the last event are counted, not
/// added (as the kubelet's event recorder aggregates them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    pub state: ContainerStatus,
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
    pub probes: Vec<ProbeStatus>,
    /// The container init's host pid while it runs.
    pub pid: Option<i32>,
    /// The libcontainer id of the current (or last) run.
    pub id: String,
    /// Exit code of the last run; 128+N when killed by signal N.
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
    /// The termination message of its last run (see [`crate::plan::termination`]), also its
    /// `message` while it stays exited: the kubelet's `lastState.terminated.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message: Option<String>,
}

/// A container's state: the kubelet's Waiting, Running and Terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Not started yet, or waiting for a restart after a back-off.
    Waiting,
    Running,
    /// Ended (the kubelet's Terminated).
    Exited,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Waiting => "waiting",
            ContainerStatus::Running => "running",
            ContainerStatus::Exited => "exited",
        }
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pod's phase as the kubelet words it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    /// Not worked out yet (a state written before phases were recorded).
    #[default]
    #[serde(rename = "")]
    Unknown,
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl PodPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Unknown => "",
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }
}

impl fmt::Display for PodPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ContainerState {
    /// Waiting, or running but not yet reported by the kubelet (postStart): the reason
    /// kubectl shows for it.
    fn waiting_reason(&self) -> Option<&str> {
        match self.state {
            ContainerStatus::Waiting => self.reason.as_deref(),
            ContainerStatus::Running if self.reason.as_deref() == Some("ContainerCreating") => {
                Some("ContainerCreating")
            }
            _ => None,
        }
    }

    pub fn terminated(&self) -> bool {
        self.state == ContainerStatus::Exited
    }

    pub fn running(&self) -> bool {
        self.state == ContainerStatus::Running
    }

    /// Exited once and not running now (back-off, or done): the kubelet's "stopped".
    fn has_run(&self) -> bool {
        self.exit_code.is_some() && !self.running()
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
        let now = crate::now_rfc3339();
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
            kind,
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
    pub fn compute_phase(&self) -> PodPhase {
        if self.reason.is_some() {
            return PodPhase::Failed;
        }
        let never = self.restart_policy == RestartPolicy::Never;
        for init in &self.init_containers {
            if init.sidecar {
                if !init.running() && init.exit_code.is_none() {
                    return PodPhase::Pending;
                }
                continue;
            }
            match init.exit_code {
                Some(0) if init.terminated() => continue,
                Some(_) if init.terminated() && never => return PodPhase::Failed,
                _ => return PodPhase::Pending,
            }
        }
        let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
        for c in &self.containers {
            match c.state {
                ContainerStatus::Running => running += 1,
                _ if c.has_run() => match c.exit_code {
                    Some(0) => succeeded += 1,
                    _ => failed += 1,
                },
                _ => waiting += 1,
            }
        }
        let stopped = succeeded + failed;
        match () {
            _ if waiting > 0 => PodPhase::Pending,
            _ if running > 0 => PodPhase::Running,
            _ if stopped > 0 => match self.restart_policy {
                RestartPolicy::Always => PodPhase::Running,
                RestartPolicy::OnFailure if failed > 0 => PodPhase::Running,
                RestartPolicy::OnFailure => PodPhase::Succeeded,
                RestartPolicy::Never if failed > 0 => PodPhase::Failed,
                RestartPolicy::Never => PodPhase::Succeeded,
            },
            _ => PodPhase::Pending,
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
        let mut reason = match (&self.reason, self.phase) {
            (Some(reason), _) => reason.clone(),
            (None, PodPhase::Unknown) => self.compute_phase().to_string(),
            (None, phase) => phase.to_string(),
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
            } else if c.running() && c.ready {
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
            if c.sidecar && c.running() && c.reason.is_none() {
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
        let status = match state {
            "running" => ContainerStatus::Running,
            "exited" => ContainerStatus::Exited,
            _ => ContainerStatus::Waiting,
        };
        ContainerState {
            name: "c".into(),
            image: "busybox".into(),
            state: status,
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
            pod_ip: None,
            created: chrono::Utc::now().to_rfc3339(),
            restart_policy: RestartPolicy::parse(policy).unwrap(),
            termination_grace_period_seconds: 30,
            phase: PodPhase::Unknown,
            terminating: false,
            reason: None,
            message: None,
            containers,
            init_containers: Vec::new(),
            events: Vec::new(),
            owner: None,
            controller: None,
        };
        pod.phase = pod.compute_phase();
        pod
    }

    #[test]
    fn the_owner_is_optional_and_shown_with_its_command() {
        let mut p = pod("Always", Vec::new());
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("owner").is_none(), "{json}");
        p.owner = Some(Owner {
            pid: 42,
            command: "pytest".into(),
        });
        let back: PodState = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back.owner.as_ref().unwrap().to_string(), "42 (pytest)");
    }

    #[test]
    fn a_pod_past_its_deadline_is_failed_whatever_its_containers_did() {
        let mut p = pod("Always", vec![container("running", None, 0)]);
        assert_eq!(p.compute_phase(), PodPhase::Running);
        p.reason = Some("DeadlineExceeded".into());
        assert_eq!(p.compute_phase(), PodPhase::Failed);
        p.containers[0].ready = false;
        assert_eq!(p.status(true), "DeadlineExceeded");
        let mut done = pod("Never", vec![container("exited", Some(0), 0)]);
        done.reason = Some("DeadlineExceeded".into());
        assert_eq!(done.compute_phase(), PodPhase::Failed);
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
        assert_eq!(p.phase, PodPhase::Succeeded);
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
        assert_eq!(p.phase, PodPhase::Failed);
        let p = pod(
            "Always",
            vec![
                container("running", None, 0),
                container("waiting", Some(1), 3),
            ],
        );
        assert_eq!(p.status(true), "CrashLoopBackOff");
        assert_eq!(p.phase, PodPhase::Running);
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
        assert_eq!(p.compute_phase(), PodPhase::Pending);
        assert_eq!(p.status(true), "Init:2/3");
        assert_eq!(p.ready(), (1, 2), "the sidecar counts");
        p.init_containers[2] = container("exited", Some(1), 0);
        assert_eq!(p.compute_phase(), PodPhase::Failed);
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
        assert_eq!(p.events[0].kind, EventKind::Warning);
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
