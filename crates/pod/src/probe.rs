//! Probes, run by the supervisor itself: startupProbe, livenessProbe and readinessProbe with
//! exec, httpGet and tcpSocket handlers, timed and judged as the kubelet does.
//!
//! * [`spec`]: the probes of the plan (defaults, validation, named ports), built in the CLI.
//! * [`Prober`] (here): each probe's schedule, thresholds and verdict, for the supervisor.
//! * `check`, `tls`: the network probes themselves.
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
pub mod spec;
mod tls;

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::plan::{ContainerPlan, Plan};
pub use spec::{ContainerProbes, ProbeAction, ProbePlan};

/// How long past its timeout a probe's process may run before it is killed.
pub const BACKSTOP: Duration = Duration::from_secs(2);

/// The most of a probe's output kept as its message (the kubelet keeps 10 KiB).
const MAX_MESSAGE: usize = 10 * 1024;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As the kubelet's events name it: `Liveness probe failed: ...`.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// A probe's verdict (after its thresholds) or the result of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

/// A probe as `state.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub probe: ProbeKind,
    /// The verdict after the thresholds (initially: liveness success, readiness failure,
    /// startup unknown, as the kubelet has them).
    pub result: ProbeResult,
    /// The last run's result, its message (the command's output, the HTTP status or the
    /// connection's error) and time (RFC 3339); none before the first run.
    pub last_result: Option<ProbeResult>,
    pub last_message: String,
    pub last_time: Option<String>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
}

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
    /// The probes of the plan's containers, indexed as the supervisor's runs: the app
    /// containers, then the init containers (only native sidecars have probes).
    /// `state_root` is the pod's libcontainer root.
    pub fn new(plan: &Plan, state_root: PathBuf) -> Prober {
        let containers = plan
            .containers
            .iter()
            .chain(&plan.init_containers)
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
            let mut message = read_message(&running.output);
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
                    exec: crate::exec::container_exec(
                        &container.plan,
                        id.clone(),
                        self.state_root.clone(),
                        supervisor,
                        Vec::new(),
                    ),
                };
                match spawn(&job) {
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

/// One probe run, as the child gets it.
struct Job<'a> {
    action: &'a ProbeAction,
    timeout: Duration,
    exec: podrun_runtime::ExecConfig,
}

/// The message a probe's process wrote (at most [`MAX_MESSAGE`] bytes, trimmed).
fn read_message(output: &File) -> String {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let mut total = 0;
    while total < buffer.len() {
        match output.read_at(&mut buffer[total..], total as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    String::from_utf8_lossy(&buffer[..total]).trim().to_string()
}

/// Forks the probe's process; returns its pid and the memfd it writes its message into.
fn spawn(job: &Job) -> Result<(Pid, File), String> {
    // SAFETY: memfd_create with a static name; the descriptor is owned below.
    let fd = unsafe { libc::memfd_create(c"podrun-probe".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor of ours.
    let output = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the supervisor is single-threaded, so the child may do anything after fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => child_main(output.as_raw_fd(), job),
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok((child, File::from(output))),
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// The probe's process: default signal dispositions (the supervisor's handlers write into
/// its self-pipe), stdin from /dev/null, stdout and stderr into the memfd; killed with the
/// supervisor. Exits 0 on success, 1 on failure.
fn child_main(output: RawFd, job: &Job) -> ! {
    // SAFETY: plain system calls in a single-threaded child.
    unsafe {
        for signal in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGPIPE,
        ] {
            libc::signal(signal, libc::SIG_DFL);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        libc::dup2(null, 0);
        libc::dup2(output, 1);
        libc::dup2(output, 2);
    }
    // The supervisor's log subscriber would write libcontainer's logs to stderr, which is
    // the probe's message now: nothing is logged in this process.
    let result =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            run_job(job)
        });
    let code = match result {
        Ok(message) => {
            print_message(&message);
            0
        }
        Err(message) => {
            print_message(&message);
            1
        }
    };
    // SAFETY: ends the child without running the supervisor's exit code.
    unsafe { libc::_exit(code) }
}

fn print_message(message: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(message.as_bytes());
    let _ = out.flush();
}

/// Runs the probe; `Ok` and `Err` carry the message to add to what the probe wrote.
fn run_job(job: &Job) -> Result<String, String> {
    match job.action {
        ProbeAction::TcpSocket { host, port } => check::tcp_socket(host, *port, job.timeout),
        ProbeAction::HttpGet {
            https,
            host,
            port,
            path,
            headers,
        } => check::HttpGet {
            https: *https,
            host,
            port: *port,
            path,
            headers,
        }
        .run(job.timeout),
        ProbeAction::Exec { command } => run_exec(job, command),
    }
}

/// An exec probe: the command's output (already in the memfd) is the message; an empty
/// one is replaced by what happened.
fn run_exec(job: &Job, command: &[String]) -> Result<String, String> {
    let mut config = job.exec.clone();
    config.args = command.to_vec();
    let wrote_nothing = || {
        // SAFETY: fstat on our stdout.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        unsafe { libc::fstat(1, &mut stat) == 0 && stat.st_size == 0 }
    };
    match podrun_runtime::exec_in_container_with_timeout(config, job.timeout) {
        Ok(Some(0)) => Ok(String::new()),
        Ok(Some(code)) if wrote_nothing() => Err(format!(
            "command {:?} exited with code {code}",
            command.join(" ")
        )),
        Ok(Some(_)) => Err(String::new()),
        Ok(None) => Err(format!("command {:?} timed out", command.join(" "))),
        Err(e) => Err(format!("exec failed: {e}")),
    }
}
