//! One probe of one container, as the kubelet's prober worker judges it: its schedule
//! (`initialDelaySeconds`, then every `periodSeconds`), its run in progress and when that run
//! is past its time (`timeoutSeconds` + [`BACKSTOP`]), and its verdict
//! (`successThreshold` successes or `failureThreshold` failures in a row). No process and no
//! clock of its own: the prober tells it the time and what its runs did.

use std::time::{Duration, Instant};

use nix::unistd::Pid;
use podrun_pod_model::plan::probes::ProbePlan;
use podrun_pod_model::probe::{ProbeKind, ProbeResult, ProbeStatus};

/// How long past its timeout a probe's process may run before it is killed.
pub(super) const BACKSTOP: Duration = Duration::from_secs(2);

/// A run's process while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InProgress {
    pid: Pid,
    /// When it is killed if it still runs.
    kill_at: Instant,
    killed: bool,
}

/// What is due for a worker at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tick {
    Idle,
    /// Start a run ([`Worker::run_started`] or [`Worker::start_failed`] once done).
    Start,
    /// Kill the run in progress: it is past its time (its end is still awaited).
    Kill(Pid),
}

/// A finished run, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Judged {
    /// The run failed: the kubelet's `Unhealthy` event's message (`Liveness probe failed:
    /// ...`).
    pub failure: Option<String>,
    /// The verdict has just become failure, for a probe that kills its container (liveness,
    /// startup): the worker holds until the container is started again.
    pub kill: bool,
}

#[derive(Debug)]
pub(super) struct Worker {
    pub kind: ProbeKind,
    pub plan: ProbePlan,
    /// The next run (while the container runs and the probe is not on hold).
    next_at: Option<Instant>,
    running: Option<InProgress>,
    verdict: ProbeResult,
    successes: u32,
    failures: u32,
    /// The last run's result, message and time (RFC 3339).
    last: Option<(ProbeResult, String, String)>,
    /// Its verdict stopped the container: no more runs until it is started again.
    on_hold: bool,
}

impl Worker {
    pub fn new(kind: ProbeKind, plan: ProbePlan) -> Worker {
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

    /// A new container (started at `started`; `None`: none yet): counts and verdict start
    /// again, the first run is after the initial delay. Returns the run in progress, to be
    /// abandoned (its result will not count).
    pub fn reset(&mut self, started: Option<Instant>) -> Option<Pid> {
        let abandoned = self.running.take().map(|r| r.pid);
        self.verdict = match self.kind {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Startup => ProbeResult::Unknown,
        };
        self.successes = 0;
        self.failures = 0;
        self.on_hold = false;
        self.next_at = started.map(|at| at + seconds(self.plan.initial_delay_seconds));
        abandoned
    }

    /// The container ended: no more runs. Returns the run in progress, to be abandoned.
    pub fn stop(&mut self) -> Option<Pid> {
        self.next_at = None;
        self.running.take().map(|r| r.pid)
    }

    /// What is due at `now`, for a worker whose container lets it run (see the prober's
    /// gating). A run that is started is scheduled to be followed a period later.
    pub fn tick(&mut self, now: Instant) -> Tick {
        if let Some(running) = &mut self.running {
            if !running.killed && running.kill_at <= now {
                running.killed = true;
                return Tick::Kill(running.pid);
            }
            return Tick::Idle;
        }
        if self.next_at.is_none_or(|at| at > now) {
            return Tick::Idle;
        }
        self.next_at = Some(now + seconds(self.plan.period_seconds));
        Tick::Start
    }

    /// The run's process `pid` started at `now`.
    pub fn run_started(&mut self, pid: Pid, now: Instant) {
        self.running = Some(InProgress {
            pid,
            kill_at: now + self.timeout() + BACKSTOP,
            killed: false,
        });
    }

    /// The run could not be started: a failure (recorded only: no event, and a verdict it
    /// changes stops no container).
    pub fn start_failed(&mut self, error: &str) {
        self.record(false, format!("cannot start the probe: {error}"));
    }

    /// Whether `pid` is this worker's run.
    pub fn owns(&self, pid: Pid) -> bool {
        self.running.is_some_and(|r| r.pid == pid)
    }

    /// The run ended with `code` (128+N for signal N), having written `output`.
    pub fn run_ended(&mut self, code: i32, output: String) -> Judged {
        let killed = self.running.take().is_some_and(|r| r.killed);
        let message = if killed {
            format!(
                "probe did not end within its timeout ({} s)",
                self.plan.timeout_seconds
            )
        } else if code > 1 && output.is_empty() {
            format!("the probe's process ended with status {code}")
        } else {
            output
        };
        let success = code == 0 && !killed;
        let changed = self.record(success, message.clone());
        let kill = changed == Some(ProbeResult::Failure) && self.kind != ProbeKind::Readiness;
        if kill {
            self.on_hold = true;
        }
        Judged {
            failure: (!success).then(|| format!("{} probe failed: {message}", self.kind.title())),
            kill,
        }
    }

    /// Records a run's result; returns the new verdict when it changed.
    pub fn record(&mut self, success: bool, message: String) -> Option<ProbeResult> {
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
        (self.verdict != before).then_some(self.verdict)
    }

    /// When [`Worker::tick`] has something to do next: the end of the run's time, or the
    /// next run.
    pub fn next_due(&self) -> Option<Instant> {
        match &self.running {
            Some(running) if !running.killed => Some(running.kill_at),
            Some(_) => None,
            None => self.next_at,
        }
    }

    pub fn verdict(&self) -> ProbeResult {
        self.verdict
    }

    /// Its verdict stopped the container.
    pub fn on_hold(&self) -> bool {
        self.on_hold
    }

    /// The grace period of a container this probe kills, when the probe has its own.
    pub fn grace(&self) -> Option<Duration> {
        self.plan
            .termination_grace_period_seconds
            .map(Duration::from_secs)
    }

    pub fn timeout(&self) -> Duration {
        seconds(self.plan.timeout_seconds)
    }

    pub fn status(&self) -> ProbeStatus {
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

fn seconds(s: u32) -> Duration {
    Duration::from_secs(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_pod_model::plan::probes::ProbeAction;

    fn probe(delay: u32, period: u32, success: u32, failure: u32) -> ProbePlan {
        ProbePlan {
            action: ProbeAction::TcpSocket {
                host: "127.0.0.1".into(),
                port: 8080,
            },
            initial_delay_seconds: delay,
            period_seconds: period,
            timeout_seconds: 1,
            success_threshold: success,
            failure_threshold: failure,
            termination_grace_period_seconds: None,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn verdicts_start_as_the_kubelet_s_and_follow_the_thresholds() {
        let liveness = Worker::new(ProbeKind::Liveness, probe(0, 10, 1, 3));
        assert_eq!(liveness.verdict(), ProbeResult::Success);
        let startup = Worker::new(ProbeKind::Startup, probe(0, 10, 1, 3));
        assert_eq!(startup.verdict(), ProbeResult::Unknown);
        let mut readiness = Worker::new(ProbeKind::Readiness, probe(0, 10, 2, 3));
        assert_eq!(readiness.verdict(), ProbeResult::Failure);
        // Two successes in a row make it ready; one failure in between starts over.
        assert_eq!(readiness.record(true, String::new()), None);
        assert_eq!(readiness.record(false, "503".into()), None);
        assert_eq!(readiness.record(true, String::new()), None);
        assert_eq!(
            readiness.record(true, String::new()),
            Some(ProbeResult::Success)
        );
        // Three failures in a row make it unready again.
        assert_eq!(readiness.record(false, "503".into()), None);
        assert_eq!(readiness.record(false, "503".into()), None);
        assert_eq!(
            readiness.record(false, "503".into()),
            Some(ProbeResult::Failure)
        );
        let status = readiness.status();
        assert_eq!(status.consecutive_failures, 3);
        assert_eq!(status.last_message, "503");
        assert_eq!(status.last_result, Some(ProbeResult::Failure));
    }

    #[test]
    fn runs_come_after_the_initial_delay_then_every_period() {
        let t0 = Instant::now();
        let mut worker = Worker::new(ProbeKind::Liveness, probe(5, 10, 1, 3));
        assert_eq!(worker.tick(t0), Tick::Idle, "no container yet");
        assert_eq!(worker.next_due(), None);
        worker.reset(Some(t0));
        assert_eq!(worker.next_due(), Some(t0 + secs(5)));
        assert_eq!(worker.tick(t0 + secs(4)), Tick::Idle);
        assert_eq!(worker.tick(t0 + secs(5)), Tick::Start);
        worker.run_started(Pid::from_raw(7), t0 + secs(5));
        // While it runs: the end of its time (timeout 1 s + the backstop).
        assert_eq!(worker.next_due(), Some(t0 + secs(8)));
        assert_eq!(worker.tick(t0 + secs(7)), Tick::Idle);
        assert!(worker.owns(Pid::from_raw(7)));
        let judged = worker.run_ended(0, String::new());
        assert_eq!(
            judged,
            Judged {
                failure: None,
                kill: false
            }
        );
        assert_eq!(worker.next_due(), Some(t0 + secs(15)));
        assert_eq!(worker.tick(t0 + secs(15)), Tick::Start);
    }

    #[test]
    fn a_run_past_its_time_is_killed_once_and_fails() {
        let t0 = Instant::now();
        let mut worker = Worker::new(ProbeKind::Liveness, probe(0, 10, 1, 1));
        worker.reset(Some(t0));
        assert_eq!(worker.tick(t0), Tick::Start);
        let pid = Pid::from_raw(9);
        worker.run_started(pid, t0);
        assert_eq!(worker.tick(t0 + secs(3)), Tick::Kill(pid));
        assert_eq!(worker.tick(t0 + secs(4)), Tick::Idle, "killed once");
        assert_eq!(worker.next_due(), None, "its end is awaited");
        let judged = worker.run_ended(137, "partial output".into());
        assert_eq!(
            judged.failure.as_deref(),
            Some("Liveness probe failed: probe did not end within its timeout (1 s)")
        );
        assert!(judged.kill);
        assert!(worker.on_hold());
    }

    #[test]
    fn messages_of_failed_runs() {
        let mut worker = Worker::new(ProbeKind::Readiness, probe(0, 10, 1, 1));
        worker.reset(Some(Instant::now()));
        worker.run_started(Pid::from_raw(1), Instant::now());
        let judged = worker.run_ended(1, "HTTP probe failed with statuscode: 503".into());
        assert_eq!(
            judged.failure.as_deref(),
            Some("Readiness probe failed: HTTP probe failed with statuscode: 503")
        );
        assert!(!judged.kill, "readiness never kills");
        worker.run_started(Pid::from_raw(2), Instant::now());
        let judged = worker.run_ended(126, String::new());
        assert_eq!(
            judged.failure.as_deref(),
            Some("Readiness probe failed: the probe's process ended with status 126")
        );
        worker.start_failed("fork: EAGAIN");
        assert_eq!(
            worker.status().last_message,
            "cannot start the probe: fork: EAGAIN"
        );
    }

    #[test]
    fn a_new_container_abandons_the_run_in_progress() {
        let t0 = Instant::now();
        let mut worker = Worker::new(ProbeKind::Startup, probe(0, 10, 1, 1));
        worker.reset(Some(t0));
        worker.tick(t0);
        worker.run_started(Pid::from_raw(3), t0);
        assert_eq!(worker.reset(Some(t0 + secs(1))), Some(Pid::from_raw(3)));
        assert!(!worker.owns(Pid::from_raw(3)));
        assert_eq!(worker.stop(), None);
        assert_eq!(worker.next_due(), None);
    }
}
