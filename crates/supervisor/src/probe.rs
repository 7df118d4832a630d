//! Probes, run by the supervisor itself: startupProbe, livenessProbe and readinessProbe with
//! exec, httpGet and tcpSocket handlers, timed and judged as the kubelet does.
//!
//! * [`podrun_pod_model::plan::probes`]: the probes of the plan (defaults, validation and
//!   named ports are podrun-planner's).
//! * [`Prober`] (here): the probes of every container, the startup probe's gating, the
//!   events for the supervisor.
//! * `worker`: one probe's schedule, thresholds and verdict, fed the time (tested on a fake
//!   clock).
//! * `child`: a probe's process and the `Runner` that starts and kills them (faked in the
//!   tests); `check`, `tls`: the network probes themselves.
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
//! timeout + `worker::BACKSTOP` is SIGKILLed (its own timeouts should have ended it first).
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
mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use podrun_pod_model::plan::ContainerPlan;
use podrun_pod_model::probe::{ProbeKind, ProbeResult, ProbeStatus};

use child::{ForkRunner, Job, Runner};
use worker::{Tick, Worker};

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
            .all(|w| w.kind != ProbeKind::Startup || w.verdict() == ProbeResult::Success)
    }

    fn ready(&self) -> bool {
        self.id.is_some()
            && self.started()
            && self
                .workers
                .iter()
                .all(|w| w.kind != ProbeKind::Readiness || w.verdict() == ProbeResult::Success)
    }

    /// Whether worker `index` runs now: its container runs, it is not on hold, and the
    /// startup probe gates it (liveness and readiness before startup succeeded) or is done.
    fn active(&self, index: usize) -> bool {
        let worker = &self.workers[index];
        self.id.is_some()
            && !worker.on_hold()
            && match worker.kind {
                ProbeKind::Startup => worker.verdict() != ProbeResult::Success,
                _ => self.started(),
            }
    }
}

/// Every container's probes; owned by the supervisor.
pub struct Prober {
    containers: Vec<ContainerProber>,
    state_root: PathBuf,
    events: Vec<ProbeEvent>,
    runner: Box<dyn Runner>,
}

impl Prober {
    /// The probes of the pod's `containers`, indexed as the supervisor's runs: the app
    /// containers, then the init containers (only native sidecars have probes).
    /// `state_root` is the pod's libcontainer root.
    pub fn new<'a>(
        containers: impl IntoIterator<Item = &'a ContainerPlan>,
        state_root: PathBuf,
    ) -> Prober {
        Self::with_runner(containers, state_root, Box::new(ForkRunner::default()))
    }

    fn with_runner<'a>(
        containers: impl IntoIterator<Item = &'a ContainerPlan>,
        state_root: PathBuf,
        runner: Box<dyn Runner>,
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
            runner,
        }
    }

    /// Container `index` has started as libcontainer container `id`: its probes begin anew.
    pub fn container_started(&mut self, index: usize, id: &str, now: Instant) {
        let container = &mut self.containers[index];
        container.id = Some(id.to_string());
        for worker in &mut container.workers {
            if let Some(pid) = worker.reset(Some(now)) {
                self.runner.abandon(pid);
            }
        }
    }

    /// Container `index` has ended: its probes stop (a run in progress is killed).
    pub fn container_ended(&mut self, index: usize) {
        let container = &mut self.containers[index];
        container.id = None;
        for worker in &mut container.workers {
            if let Some(pid) = worker.stop() {
                self.runner.abandon(pid);
            }
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
            let Some(worker) = container.workers.iter_mut().find(|w| w.owns(pid)) else {
                continue;
            };
            let judged = worker.run_ended(code, self.runner.output(pid));
            if let Some(message) = judged.failure {
                self.events.push(ProbeEvent::Unhealthy {
                    container: index,
                    message,
                });
            }
            if judged.kill {
                self.events.push(ProbeEvent::Kill {
                    container: index,
                    message: format!(
                        "Container {} failed {} probe, will be restarted",
                        container.plan.name,
                        worker.kind.title().to_lowercase()
                    ),
                    grace: worker.grace(),
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
                match worker.tick(now) {
                    Tick::Idle => {}
                    Tick::Kill(pid) => self.runner.kill(pid),
                    Tick::Start => {
                        let job = Job {
                            action: &worker.plan.action,
                            timeout: worker.timeout(),
                            exec: container.plan.exec_config(
                                id,
                                self.state_root.clone(),
                                supervisor,
                                Vec::new(),
                            ),
                        };
                        match self.runner.start(&job) {
                            Ok(pid) => worker.run_started(pid, now),
                            Err(e) => worker.start_failed(&e),
                        }
                    }
                }
            }
        }
    }

    /// The next time [`Prober::run_due`] has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        self.containers
            .iter()
            .flat_map(|c| {
                c.workers
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| c.active(*index))
                    .filter_map(|(_, worker)| worker.next_due())
            })
            .min()
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

#[cfg(test)]
mod tests {
    //! The prober's rules with a fake runner (no process) on a fake clock (`Instant`
    //! arithmetic), as the kubelet's prober tests run its workers.

    use std::cell::RefCell;
    use std::rc::Rc;

    use podrun_pod_model::plan::probes::{ContainerProbes, ProbeAction, ProbePlan};

    use super::*;

    /// What the fake runner was asked.
    #[derive(Default)]
    struct Calls {
        /// Each run started: its pid and command.
        started: Vec<(Pid, Vec<String>)>,
        killed: Vec<Pid>,
        abandoned: Vec<Pid>,
        /// The output each run will have written.
        outputs: Vec<(Pid, String)>,
        /// Starts fail with this.
        refuse: Option<String>,
    }

    #[derive(Clone, Default)]
    struct FakeRunner(Rc<RefCell<Calls>>);

    impl Runner for FakeRunner {
        fn start(&mut self, job: &Job) -> Result<Pid, String> {
            let mut calls = self.0.borrow_mut();
            if let Some(e) = &calls.refuse {
                return Err(e.clone());
            }
            let pid = Pid::from_raw(100 + calls.started.len() as i32);
            let ProbeAction::Exec { command } = job.action else {
                panic!("the tests' probes are exec probes");
            };
            calls.started.push((pid, command.clone()));
            Ok(pid)
        }

        fn output(&mut self, pid: Pid) -> String {
            let calls = self.0.borrow();
            let found = calls.outputs.iter().find(|(p, _)| *p == pid);
            found.map(|(_, o)| o.clone()).unwrap_or_default()
        }

        fn kill(&mut self, pid: Pid) {
            self.0.borrow_mut().killed.push(pid);
        }

        fn abandon(&mut self, pid: Pid) {
            self.0.borrow_mut().abandoned.push(pid);
        }
    }

    impl FakeRunner {
        /// The last run started, if its command is `command`.
        fn last(&self, command: &str) -> Option<Pid> {
            let calls = self.0.borrow();
            let (pid, args) = calls.started.last()?;
            (args == &[command.to_string()]).then_some(*pid)
        }

        fn starts(&self) -> usize {
            self.0.borrow().started.len()
        }
    }

    /// An exec probe running `command`: first after `delay` s, then every 10 s, timeout 1 s.
    fn probe(command: &str, delay: u32, success: u32, failure: u32) -> Option<ProbePlan> {
        Some(ProbePlan {
            action: ProbeAction::Exec {
                command: vec![command.into()],
            },
            initial_delay_seconds: delay,
            period_seconds: 10,
            timeout_seconds: 1,
            success_threshold: success,
            failure_threshold: failure,
            termination_grace_period_seconds: None,
        })
    }

    fn container(probes: ContainerProbes) -> ContainerPlan {
        let mut plan: ContainerPlan = serde_json::from_value(serde_json::json!({
            "name": "app", "image": "busybox", "lower_dirs": [], "args": ["sh"], "env": [],
            "cwd": "/", "uid": 0, "gid": 0, "additional_gids": [], "mounts": []
        }))
        .unwrap();
        plan.probes = probes;
        plan
    }

    fn prober(probes: ContainerProbes) -> (Prober, FakeRunner) {
        let runner = FakeRunner::default();
        let prober = Prober::with_runner(
            [&container(probes)],
            PathBuf::from("/run/podrun/pods/default_web/libcontainer"),
            Box::new(runner.clone()),
        );
        (prober, runner)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Ends run `pid` with `code`, having written `output`.
    fn end(prober: &mut Prober, runner: &FakeRunner, pid: Pid, code: i32, output: &str) {
        runner.0.borrow_mut().outputs.push((pid, output.into()));
        assert!(prober.child_exited(pid.as_raw(), code));
    }

    #[test]
    fn liveness_failures_up_to_the_threshold_stop_the_container_once() {
        let (mut prober, runner) = prober(ContainerProbes {
            liveness: probe("live", 5, 1, 3),
            ..Default::default()
        });
        let t0 = Instant::now();
        prober.run_due(t0);
        assert_eq!(runner.starts(), 0, "no container yet");
        prober.container_started(0, "c1", t0);
        assert_eq!(prober.next_due(), Some(t0 + secs(5)));
        prober.run_due(t0 + secs(4));
        assert_eq!(runner.starts(), 0, "within the initial delay");
        let mut now = t0 + secs(5);
        for round in 1..=3 {
            prober.run_due(now);
            let pid = runner.last("live").expect("a run");
            assert_eq!(runner.starts(), round);
            end(&mut prober, &runner, pid, 1, "unhealthy");
            let events = prober.take_events();
            assert_eq!(
                events[0],
                ProbeEvent::Unhealthy {
                    container: 0,
                    message: "Liveness probe failed: unhealthy".into()
                }
            );
            assert_eq!(events.len(), if round == 3 { 2 } else { 1 }, "{events:?}");
            now += secs(10);
        }
        let (ready, started, statuses) = prober.status(0);
        assert!(ready && started, "liveness says nothing of readiness");
        assert_eq!(statuses[0].result, ProbeResult::Failure);
        assert_eq!(statuses[0].consecutive_failures, 3);
        // The kill was asked for once; the probe holds until the container starts again.
        prober.run_due(now);
        assert_eq!(runner.starts(), 3);
        assert_eq!(prober.next_due(), None);
        prober.container_ended(0);
        let t1 = now + secs(1);
        prober.container_started(0, "c2", t1);
        let (_, _, statuses) = prober.status(0);
        assert_eq!(statuses[0].result, ProbeResult::Success, "a new verdict");
        prober.run_due(t1 + secs(5));
        assert_eq!(runner.starts(), 4);
    }

    #[test]
    fn the_kill_names_the_container_and_the_probe_s_grace_period() {
        let mut startup = probe("start", 0, 1, 1).unwrap();
        startup.termination_grace_period_seconds = Some(3);
        let (mut prober, runner) = prober(ContainerProbes {
            startup: Some(startup),
            ..Default::default()
        });
        let t0 = Instant::now();
        prober.container_started(0, "c1", t0);
        prober.run_due(t0);
        end(&mut prober, &runner, runner.last("start").unwrap(), 1, "");
        assert_eq!(
            prober.take_events()[1],
            ProbeEvent::Kill {
                container: 0,
                message: "Container app failed startup probe, will be restarted".into(),
                grace: Some(secs(3)),
            }
        );
    }

    #[test]
    fn the_startup_probe_gates_the_others_until_it_succeeds() {
        let (mut prober, runner) = prober(ContainerProbes {
            startup: probe("start", 0, 1, 30),
            liveness: probe("live", 0, 1, 3),
            readiness: probe("ready", 0, 2, 3),
        });
        let t0 = Instant::now();
        prober.container_started(0, "c1", t0);
        prober.run_due(t0);
        assert_eq!(runner.starts(), 1, "only the startup probe");
        let start = runner.last("start").unwrap();
        end(&mut prober, &runner, start, 1, "not yet");
        assert!(!prober.status(0).1, "not started");
        prober.run_due(t0 + secs(10));
        end(&mut prober, &runner, runner.last("start").unwrap(), 0, "");
        let (ready, started, _) = prober.status(0);
        assert!(started && !ready);
        // Started: the others run (their initial delay counted from the container's
        // start), the startup probe runs no more.
        prober.run_due(t0 + secs(11));
        let commands: Vec<String> = runner.0.borrow().started[2..]
            .iter()
            .map(|(_, c)| c[0].clone())
            .collect();
        assert_eq!(commands, ["live", "ready"]);
        let (live, ready) = {
            let calls = runner.0.borrow();
            (calls.started[2].0, calls.started[3].0)
        };
        end(&mut prober, &runner, live, 0, "");
        end(&mut prober, &runner, ready, 0, "");
        assert!(!prober.status(0).0, "one success of two");
        prober.run_due(t0 + secs(21));
        assert_eq!(runner.starts(), 6);
        end(&mut prober, &runner, runner.last("ready").unwrap(), 0, "");
        assert!(prober.status(0).0, "ready after two successes");
        assert_eq!(
            prober.take_events(),
            [ProbeEvent::Unhealthy {
                container: 0,
                message: "Startup probe failed: not yet".into()
            }],
            "a failure, below the startup probe's threshold"
        );
    }

    #[test]
    fn readiness_failures_make_the_container_unready_without_stopping_it() {
        let (mut prober, runner) = prober(ContainerProbes {
            readiness: probe("ready", 0, 1, 1),
            ..Default::default()
        });
        let t0 = Instant::now();
        prober.container_started(0, "c1", t0);
        prober.run_due(t0);
        end(&mut prober, &runner, runner.last("ready").unwrap(), 0, "");
        assert!(prober.status(0).0);
        prober.run_due(t0 + secs(10));
        end(
            &mut prober,
            &runner,
            runner.last("ready").unwrap(),
            1,
            "503",
        );
        assert!(!prober.status(0).0);
        let events = prober.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        prober.run_due(t0 + secs(20));
        assert_eq!(runner.starts(), 3, "it goes on");
    }

    #[test]
    fn a_run_past_its_timeout_is_killed_and_fails() {
        let (mut prober, runner) = prober(ContainerProbes {
            liveness: probe("live", 0, 1, 3),
            ..Default::default()
        });
        let t0 = Instant::now();
        prober.container_started(0, "c1", t0);
        prober.run_due(t0);
        let pid = runner.last("live").unwrap();
        // Timeout 1 s + the backstop.
        assert_eq!(prober.next_due(), Some(t0 + secs(3)));
        prober.run_due(t0 + secs(2));
        assert!(runner.0.borrow().killed.is_empty());
        prober.run_due(t0 + secs(3));
        assert_eq!(runner.0.borrow().killed, [pid]);
        prober.run_due(t0 + secs(4));
        assert_eq!(runner.0.borrow().killed, [pid], "once");
        end(&mut prober, &runner, pid, 128 + 9, "");
        assert_eq!(
            prober.take_events(),
            [ProbeEvent::Unhealthy {
                container: 0,
                message: "Liveness probe failed: probe did not end within its timeout (1 s)".into()
            }]
        );
    }

    #[test]
    fn runs_of_an_ended_container_are_abandoned_and_not_counted() {
        let (mut prober, runner) = prober(ContainerProbes {
            liveness: probe("live", 0, 1, 1),
            ..Default::default()
        });
        let t0 = Instant::now();
        prober.container_started(0, "c1", t0);
        prober.run_due(t0);
        let pid = runner.last("live").unwrap();
        prober.container_ended(0);
        assert_eq!(runner.0.borrow().abandoned, [pid]);
        assert!(
            !prober.child_exited(pid.as_raw(), 1),
            "not a probe's any more"
        );
        assert!(prober.take_events().is_empty());
        assert_eq!(prober.next_due(), None);
        let (ready, started, _) = prober.status(0);
        assert!(!ready && started);
        // The pod stops: nothing runs.
        prober.container_started(0, "c2", t0 + secs(1));
        prober.stop_all();
        prober.run_due(t0 + secs(100));
        assert_eq!(runner.starts(), 1);
    }

    #[test]
    fn a_run_that_cannot_start_counts_as_a_failure() {
        let (mut prober, runner) = prober(ContainerProbes {
            readiness: probe("ready", 0, 1, 1),
            ..Default::default()
        });
        runner.0.borrow_mut().refuse = Some("fork: EAGAIN".into());
        let t0 = Instant::now();
        prober.container_started(0, "c1", t0);
        prober.run_due(t0);
        let (_, _, statuses) = prober.status(0);
        assert_eq!(
            statuses[0].last_message,
            "cannot start the probe: fork: EAGAIN"
        );
        assert_eq!(
            prober.next_due(),
            Some(t0 + secs(10)),
            "tried again a period later"
        );
    }
}
