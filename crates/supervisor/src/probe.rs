//! Probes, run by the supervisor itself: startupProbe, livenessProbe and readinessProbe with
//! exec, httpGet and tcpSocket handlers, timed and judged as the kubelet does.
//!
//! * [`podrun_pod_model::plan::probes`]: the probes of the plan (defaults, validation and
//!   named ports are podrun-planner's).
//! * [`Prober`] (here): each probe's schedule, thresholds and verdict, for the supervisor.
//! * `child`: a probe's process; `check`, `tls`: the network probes themselves.
//!
//! **Why each probe runs in a forked child.** The supervisor is single-threaded and must stay
//! responsive to signals, container exits and output. Every probe run is a child process
//! forked from it: it inherits the pod's network namespace (httpGet and tcpSocket need no
//! curl or nc in the image) and user namespace (an exec probe joins the container from there,
//! with podrun-runtime's exec), does its blocking work with the probe's timeout, writes its
//! message into a memfd and exits 0 (success) or 1 (failure). The supervisor learns the
//! result on SIGCHLD, in the `waitpid` it does anyway, and reads the memfd. Non-blocking
//! sockets in the poll loop would have covered httpGet and tcpSocket only: an exec probe
//! needs a process of its own (libcontainer's tenant start blocks), TLS would need a
//! non-blocking handshake, and DNS names would block. A probe still running past its
//! timeout + [`BACKSTOP`] is SIGKILLed (its own timeouts should have ended it first).
//!
//! Kubernetes' rules: a probe first runs `initialDelaySeconds` after the container started,
//! then every `periodSeconds`. `successThreshold` successes in a row make its verdict
//! success, `failureThreshold` failures in a row failure. Until the startup probe has
//! succeeded, liveness and readiness probes do not run; once it has, it runs no more. A
//! liveness (or startup) verdict of failure stops the container (the supervisor's
//! container stop: preStop hook, stop signal, SIGKILL after the probe's or the pod's grace
//! period), and the pod's `restartPolicy` decides whether it is restarted; the probe waits
//! for the new container. A container is ready when
//! it runs, has started (startup probe) and its readiness verdict is success; without a
//! readiness probe, when it runs and has started.

mod check;
mod child;
mod tls;

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podrun_pod_model::plan::probes::ProbePlan;
use podrun_pod_model::plan::ContainerPlan;
use podrun_pod_model::probe::{ProbeKind, ProbeResult, ProbeStatus};

use child::Job;

/// How long past its timeout a probe's process may run before it is killed.
pub const BACKSTOP: Duration = Duration::from_secs(2);

/// What a probe result asks of the supervisor, or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// A run failed: the kubelet's `Unhealthy` event (`Liveness probe failed: ...`).
    Unhealthy { container: usize, message: String },
    /// Stop the container (the kubelet's `Killing`: `Container web failed liveness probe,
    /// will be restarted`), with the probe's grace period if it has one, else the pod's.
    Kill {
        container: usize,
        message: String,
        grace: Option<Duration>,
    },
}

/// A probe's process while it runs.
struct Running {
    pid: Pid,
    /// Where it writes its message.
    output: File,
    /// When it is killed if it still runs.
    kill_at: Instant,
    killed: bool,
}

struct Worker {
    kind: ProbeKind,
    plan: ProbePlan,
    /// The next run (while the container runs and the probe is not on hold).
    next_at: Option<Instant>,
    running: Option<Running>,
    verdict: ProbeResult,
    successes: u32,
    failures: u32,
    last: Option<(ProbeResult, String, String)>,
    /// Its verdict stopped the container: no more runs until it is started again.
    on_hold: bool,
}

impl Worker {
    fn new(kind: ProbeKind, plan: ProbePlan) -> Worker {
        let mut worker = Worker {
            kind,
            plan,
            next_at: None,
            running: None,
            verdict: ProbeResult::Unknown,
            successes: 0,
            failures: 0,
            last: None,
            on_hold: false,
        };
        worker.reset(None);
        worker
    }

    /// A new container: counts and verdict start again; the first run is after the initial
    /// delay (when `started` is given).
    fn reset(&mut self, started: Option<Instant>) {
        self.abandon();
        self.verdict = match self.kind {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Startup => ProbeResult::Unknown,
        };
        self.successes = 0;
        self.failures = 0;
        self.on_hold = false;
        self.next_at =
            started.map(|at| at + Duration::from_secs(self.plan.initial_delay_seconds.into()));
    }

    /// Stops a run in progress; its result will not count.
    fn abandon(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = kill(running.pid, Signal::SIGKILL);
        }
    }

    /// Records a run's result; returns whether the verdict changed.
    fn record(&mut self, success: bool, message: String) -> bool {
        let result = if success {
            self.successes += 1;
            self.failures = 0;
            ProbeResult::Success
        } else {
            self.failures += 1;
            self.successes = 0;
            ProbeResult::Failure
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.last = Some((result, message, time));
        let before = self.verdict;
        if self.successes >= self.plan.success_threshold {
            self.verdict = ProbeResult::Success;
        } else if self.failures >= self.plan.failure_threshold {
            self.verdict = ProbeResult::Failure;
        }
        self.verdict != before
    }

    fn status(&self) -> ProbeStatus {
        let (last_result, last_message, last_time) = match &self.last {
            Some((result, message, time)) => (Some(*result), message.clone(), Some(time.clone())),
            None => (None, String::new(), None),
        };
        ProbeStatus {
            probe: self.kind,
            result: self.verdict,
            last_result,
            last_message,
            last_time,
            consecutive_successes: self.successes,
            consecutive_failures: self.failures,
        }
    }
}

/// The probes of one container.
struct ContainerProber {
    plan: ContainerPlan,
    /// Startup first, so that its verdict gates the others in the same round.
    workers: Vec<Worker>,
    /// The libcontainer id of the running container (exec probes join it).
    id: Option<String>,
}

impl ContainerProber {
    fn started(&self) -> bool {
        self.workers
            .iter()
            .all(|w| w.kind != ProbeKind::Startup || w.verdict == ProbeResult::Success)
    }

    fn ready(&self) -> bool {
        self.id.is_some()
            && self.started()
            && self
                .workers
                .iter()
                .all(|w| w.kind != ProbeKind::Readiness || w.verdict == ProbeResult::Success)
    }

    /// Whether worker `index` runs now: its container runs, it is not on hold, and the
    /// startup probe gates it (liveness and readiness before startup succeeded) or is done.
    fn active(&self, index: usize) -> bool {
        let worker = &self.workers[index];
        self.id.is_some()
            && !worker.on_hold
            && match worker.kind {
                ProbeKind::Startup => worker.verdict != ProbeResult::Success,
                _ => self.started(),
            }
    }
}

/// Every container's probes; owned by the supervisor.
pub struct Prober {
    containers: Vec<ContainerProber>,
    state_root: PathBuf,
    events: Vec<ProbeEvent>,
}

impl Prober {
    /// The probes of the pod's `containers`, indexed as the supervisor's runs: the app
    /// containers, then the init containers (only native sidecars have probes).
    /// `state_root` is the pod's libcontainer root.
    pub fn new<'a>(
        containers: impl IntoIterator<Item = &'a ContainerPlan>,
        state_root: PathBuf,
    ) -> Prober {
        let containers = containers
            .into_iter()
            .map(|c| {
                let probes = &c.probes;
                let workers: Vec<Worker> = [
                    (ProbeKind::Startup, &probes.startup),
                    (ProbeKind::Liveness, &probes.liveness),
                    (ProbeKind::Readiness, &probes.readiness),
                ]
                .into_iter()
                .filter_map(|(kind, p)| p.clone().map(|p| Worker::new(kind, p)))
                .collect();
                ContainerProber {
                    plan: c.clone(),
                    workers,
                    id: None,
                }
            })
            .collect();
        Prober {
            containers,
            state_root,
            events: Vec::new(),
        }
    }

    /// Container `index` has started as libcontainer container `id`: its probes begin anew.
    pub fn container_started(&mut self, index: usize, id: &str, now: Instant) {
        let container = &mut self.containers[index];
        container.id = Some(id.to_string());
        for worker in &mut container.workers {
            worker.reset(Some(now));
        }
    }

    /// Container `index` has ended: its probes stop (a run in progress is killed).
    pub fn container_ended(&mut self, index: usize) {
        let container = &mut self.containers[index];
        container.id = None;
        for worker in &mut container.workers {
            worker.abandon();
            worker.next_at = None;
        }
    }

    /// Stops every probe (the pod is stopping).
    pub fn stop_all(&mut self) {
        for index in 0..self.containers.len() {
            self.container_ended(index);
        }
    }

    /// A child has ended with `code` (128+N for signal N). Returns whether it was a probe's
    /// process; its result is recorded.
    pub fn child_exited(&mut self, pid: i32, code: i32) -> bool {
        let pid = Pid::from_raw(pid);
        for (index, container) in self.containers.iter_mut().enumerate() {
            let Some(worker) = container
                .workers
                .iter_mut()
                .find(|w| w.running.as_ref().is_some_and(|r| r.pid == pid))
            else {
                continue;
            };
            let running = worker.running.take().expect("found running");
            let mut message = child::read_message(&running.output);
            if running.killed {
                message = format!(
                    "probe did not end within its timeout ({} s)",
                    worker.plan.timeout_seconds
                );
            } else if code > 1 && message.is_empty() {
                message = format!("the probe's process ended with status {code}");
            }
            let success = code == 0 && !running.killed;
            let changed = worker.record(success, message.clone());
            let kind = worker.kind;
            if !success {
                self.events.push(ProbeEvent::Unhealthy {
                    container: index,
                    message: format!("{} probe failed: {message}", kind.title()),
                });
            }
            if changed && worker.verdict == ProbeResult::Failure && kind != ProbeKind::Readiness {
                worker.on_hold = true;
                self.events.push(ProbeEvent::Kill {
                    container: index,
                    message: format!(
                        "Container {} failed {} probe, will be restarted",
                        container.plan.name,
                        kind.title().to_lowercase()
                    ),
                    grace: worker
                        .plan
                        .termination_grace_period_seconds
                        .map(Duration::from_secs),
                });
            }
            return true;
        }
        false
    }

    /// Starts the probes that are due and kills the ones past their time.
    pub fn run_due(&mut self, now: Instant) {
        let supervisor = std::process::id() as i32;
        for container in &mut self.containers {
            for index in 0..container.workers.len() {
                if !container.active(index) {
                    continue;
                }
                let id = container.id.clone().unwrap_or_default();
                let worker = &mut container.workers[index];
                if let Some(running) = &mut worker.running {
                    if !running.killed && running.kill_at <= now {
                        running.killed = true;
                        let _ = kill(running.pid, Signal::SIGKILL);
                    }
                    continue;
                }
                if worker.next_at.is_none_or(|at| at > now) {
                    continue;
                }
                worker.next_at = Some(now + Duration::from_secs(worker.plan.period_seconds.into()));
                let job = Job {
                    action: &worker.plan.action,
                    timeout: Duration::from_secs(worker.plan.timeout_seconds.into()),
                    exec: container.plan.exec_config(
                        id.clone(),
                        self.state_root.clone(),
                        supervisor,
                        Vec::new(),
                    ),
                };
                match child::spawn(&job) {
                    Ok((pid, output)) => {
                        worker.running = Some(Running {
                            pid,
                            output,
                            kill_at: now + job.timeout + BACKSTOP,
                            killed: false,
                        });
                    }
                    Err(e) => {
                        worker.record(false, format!("cannot start the probe: {e}"));
                    }
                }
            }
        }
    }

    /// The next time [`Prober::run_due`] has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        for container in &self.containers {
            for (index, worker) in container.workers.iter().enumerate() {
                if !container.active(index) {
                    continue;
                }
                match &worker.running {
                    Some(running) if !running.killed => consider(running.kill_at),
                    Some(_) => {}
                    None => worker.next_at.into_iter().for_each(&mut consider),
                }
            }
        }
        next
    }

    /// What the probes found since the last call: failures, and containers to stop.
    pub fn take_events(&mut self) -> Vec<ProbeEvent> {
        std::mem::take(&mut self.events)
    }

    /// Whether container `index` is ready, has started, and its probes' statuses.
    pub fn status(&self, index: usize) -> (bool, bool, Vec<ProbeStatus>) {
        let container = &self.containers[index];
        (
            container.ready(),
            container.started(),
            container.workers.iter().map(Worker::status).collect(),
        )
    }
}
