//! The supervisor's container lifecycle, as the kubelet runs it: init containers one at a
//! time before the app containers, native sidecars beside them, restarts with the crash-loop
//! back-off, postStart and preStop hooks, and each container's stop (preStop, its stop
//! signal, SIGKILL after the grace period).
//!
//! The rules are pure functions, tested on their own: what becomes of a container that ended
//! ([`crate::restart`]), what a hook's end means ([`crate::hooks::outcome`]), a stop's
//! timers ([`crate::stop`]). This file applies them to the pod.
//!
//! Container indices: `runs[0..n]` are the app containers (`plan.containers`, so index `i`
//! is `plan.containers[i]`), `runs[n..]` the init containers in order
//! (`plan.init_containers`).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use podrun_pod_model::plan::hooks::Handler;
use podrun_pod_model::plan::ContainerPlan;
use podrun_pod_model::state::{ContainerStatus, EventKind};
use podrun_pod_model::stop::StopRequest;
use podrun_pod_model::{display_name, now_rfc3339, PodError};

use super::{Run, Supervisor};
use crate::hooks::{AfterHook, EndedHook, HookKind};
use crate::restart::{AfterExit, PodCondition, Role};
use crate::stop::{StopStep, Stopping};

/// A hook's process while it runs.
pub(super) struct HookChild {
    pub pid: Pid,
    pub container: usize,
    pub kind: HookKind,
}

impl Supervisor {
    pub(super) fn plan_of(&self, index: usize) -> &ContainerPlan {
        let apps = self.plan.containers.len();
        if index < apps {
            &self.plan.containers[index]
        } else {
            &self.plan.init_containers[index - apps]
        }
    }

    pub(super) fn role(&self, index: usize) -> Role {
        if index < self.plan.containers.len() {
            Role::App
        } else if self.plan_of(index).sidecar {
            Role::Sidecar
        } else {
            Role::Init
        }
    }

    fn init_indices(&self) -> std::ops::Range<usize> {
        self.plan.containers.len()..self.runs.len()
    }

    fn pod_name(&self) -> String {
        display_name(&self.plan.namespace, &self.plan.name)
    }

    /// Moves the pod on: starts the next init container once the one before has succeeded
    /// (or, for a sidecar, has started), and the app containers once every init container
    /// is done. A start that fails before `play` got its answer fails the pod's start.
    pub(super) fn advance(&mut self) -> Result<(), PodError> {
        if self.stopping || self.pod_failed || self.apps_started {
            return Ok(());
        }
        for index in self.init_indices() {
            let run = &self.runs[index];
            let fresh = run.state.started_at.is_none() && run.restart_at.is_none();
            match self.role(index) {
                Role::Sidecar => {
                    if fresh {
                        self.start_or_retry(index)?;
                    }
                    // The next one starts once this one has started: running, its postStart
                    // hook done (the kubelet also waits for its startupProbe).
                    if !self.sidecar_started(index) {
                        return Ok(());
                    }
                }
                _ => {
                    if run.state.terminated() && run.state.exit_code == Some(0) {
                        continue;
                    }
                    if fresh {
                        self.start_or_retry(index)?;
                    }
                    return Ok(());
                }
            }
        }
        self.apps_started = true;
        let apps: Vec<usize> = (0..self.plan.containers.len()).collect();
        for (index, result) in self.start_containers(&apps) {
            self.retry_failed_start(index, result)?;
        }
        Ok(())
    }

    /// Whether a sidecar counts as started for the next init container.
    pub(super) fn sidecar_started(&self, index: usize) -> bool {
        let state = &self.runs[index].state;
        state.running() && state.reason.is_none()
    }

    /// Starts a container; once `play` has its answer, a failed start is recorded and
    /// retried with the back-off instead of failing the pod.
    fn start_or_retry(&mut self, index: usize) -> Result<(), PodError> {
        let result = self.start_container(index);
        self.retry_failed_start(index, result)
    }

    /// A start's result: before `play` has its answer an error fails the pod; after, the
    /// failure is recorded and retried with the back-off.
    fn retry_failed_start(
        &mut self,
        index: usize,
        result: Result<(), PodError>,
    ) -> Result<(), PodError> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if self.ready.0.is_some() => Err(e),
            Err(e) => {
                eprintln!("error: {e}");
                let name = self.plan_of(index).name.clone();
                self.state
                    .event(EventKind::Warning, "Failed", Some(&name), e.to_string());
                self.container_ended(index, 128);
                Ok(())
            }
        }
    }

    /// The container was started: events, and its postStart hook (it is not ready, and
    /// shows as `ContainerCreating`, until the hook is done).
    pub(super) fn container_started(&mut self, index: usize) {
        let plan = self.plan_of(index).clone();
        let name = plan.name.as_str();
        self.state.event(
            EventKind::Normal,
            "Pulled",
            Some(name),
            format!(
                "Container image \"{}\" already present on machine",
                plan.image
            ),
        );
        self.state.event(
            EventKind::Normal,
            "Created",
            Some(name),
            format!("Created container: {name}"),
        );
        self.state.event(
            EventKind::Normal,
            "Started",
            Some(name),
            format!("Started container {name}"),
        );
        let run = &mut self.runs[index];
        run.stopping = None;
        run.state.message = None;
        match &plan.hooks.post_start {
            Some(handler) => {
                run.state.reason = Some("ContainerCreating".into());
                run.state.ready = false;
                self.spawn_hook(index, HookKind::PostStart, handler);
            }
            None => self.post_start_done(index),
        }
    }

    /// The container runs and its postStart hook is done.
    fn post_start_done(&mut self, index: usize) {
        let state = &mut self.runs[index].state;
        state.reason = None;
        state.ready = true;
    }

    fn spawn_hook(&mut self, index: usize, kind: HookKind, handler: &Handler) {
        let plan = self.plan_of(index).clone();
        let _ = std::fs::create_dir_all(self.layout.hooks_dir());
        let output = self.hook_output(&plan.name, kind);
        let exec = plan.exec_config(
            self.runs[index].state.id.clone(),
            self.state_root(),
            std::process::id() as i32,
            Vec::new(),
        );
        match crate::hooks::spawn(handler, exec, &output) {
            Ok(pid) => self.hooks.push(HookChild {
                pid,
                container: index,
                kind,
            }),
            Err(e) => {
                eprintln!("warning: {}: {kind:?} hook: {e}", plan.name);
                self.hook_ended(index, kind, 1, e.to_string());
            }
        }
    }

    /// Handles a reaped process if it is a hook's; returns whether it was.
    pub(super) fn reap_hook(&mut self, pid: i32, code: i32) -> bool {
        let Some(position) = self.hooks.iter().position(|h| h.pid.as_raw() == pid) else {
            return false;
        };
        let hook = self.hooks.remove(position);
        let name = self.plan_of(hook.container).name.clone();
        let output = self.hook_output(&name, hook.kind);
        let tail = crate::hooks::output_tail(&output);
        self.hook_ended(hook.container, hook.kind, code, tail);
        true
    }

    fn hook_ended(&mut self, index: usize, kind: HookKind, code: i32, output: String) {
        let plan = self.plan_of(index).clone();
        let pod = self.pod_name();
        let handler = match kind {
            HookKind::PostStart => plan.hooks.post_start.as_ref(),
            HookKind::PreStop => plan.hooks.pre_stop.as_ref(),
        };
        let (failure, then) = crate::hooks::outcome(&EndedHook {
            kind,
            code,
            handler,
            output: &output,
            container: &plan.name,
            pod: &pod,
            running: self.runs[index].running(),
        });
        if let Some(failure) = failure {
            self.state.event(
                EventKind::Warning,
                failure.reason,
                Some(&plan.name),
                failure.message.clone(),
            );
            self.runs[index].state.message = Some(failure.message);
        }
        match then {
            AfterHook::Nothing => {}
            AfterHook::Ready => self.post_start_done(index),
            AfterHook::Kill => {
                self.stop_container(index, self.grace(), "FailedPostStartHook".into())
            }
            AfterHook::StopSignal => self.send_stop_signal(index),
        }
    }

    /// Where hook `kind` of container `name` writes its output.
    fn hook_output(&self, name: &str, kind: HookKind) -> std::path::PathBuf {
        self.layout
            .hooks_dir()
            .join(format!("{name}.{}", kind.name()))
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.plan.termination_grace_period_seconds)
    }

    /// Stops a running container: its preStop hook, then its stop signal
    /// (`lifecycle.stopSignal`, the image's STOPSIGNAL, SIGTERM), SIGKILL when `grace` has
    /// passed. Probes that kill a container call this too.
    pub(super) fn stop_container(&mut self, index: usize, grace: Duration, why: String) {
        let run = &self.runs[index];
        if !run.running() || run.stopping.is_some() {
            return;
        }
        let plan = self.plan_of(index).clone();
        self.state.event(
            EventKind::Normal,
            "Killing",
            Some(&plan.name),
            format!("Stopping container {} ({why})", plan.name),
        );
        let now = Instant::now();
        let mut stopping = Stopping::new(now, grace);
        // A stop request of grace 0: SIGKILL at once, no preStop hook, no stop signal.
        let at_once = self.stop_grace.is_some_and(|g| stopping.cut_short(now, g));
        self.runs[index].stopping = Some(stopping);
        // A postStart hook still running is of no use any more.
        self.kill_hooks(index, Some(HookKind::PostStart));
        if at_once {
            self.signal_container(index, Signal::SIGKILL);
            return;
        }
        match &plan.hooks.pre_stop {
            Some(handler) => self.spawn_hook(index, HookKind::PreStop, handler),
            None => self.send_stop_signal(index),
        }
    }

    /// The stop signal, after the preStop hook (or its time) is over (see [`crate::stop`]).
    fn send_stop_signal(&mut self, index: usize) {
        let Some(stopping) = self.runs[index].stopping.as_mut() else {
            return;
        };
        if !stopping.signal(Instant::now()) {
            return;
        }
        let signal = super::stop_signal(self.plan_of(index).stop_signal.as_deref());
        self.signal_container(index, signal);
    }

    fn kill_hooks(&mut self, index: usize, kind: Option<HookKind>) {
        for hook in &self.hooks {
            if hook.container == index && kind.is_none_or(|k| k == hook.kind) {
                let _ = nix::sys::signal::kill(hook.pid, Signal::SIGKILL);
            }
        }
    }

    /// preStop hooks past their time, containers past their grace period.
    pub(super) fn stop_timers(&mut self) {
        let now = Instant::now();
        for index in 0..self.runs.len() {
            let Some(stopping) = self.runs[index].stopping.as_mut() else {
                continue;
            };
            match stopping.due(now) {
                None => {}
                Some(StopStep::EndPreStop) => {
                    self.kill_hooks(index, Some(HookKind::PreStop));
                    self.send_stop_signal(index);
                }
                Some(StopStep::Kill) => self.signal_container(index, Signal::SIGKILL),
            }
        }
    }

    /// The next stop timer, for the main loop's timeout.
    pub(super) fn next_stop_timer(&self) -> Option<Instant> {
        self.runs
            .iter()
            .filter_map(|r| r.stopping.as_ref()?.next_timer())
            .min()
    }

    /// A container ended with `code`: record it, and restart it (after the back-off) as
    /// its role and the pod's restartPolicy say.
    pub(super) fn container_ended(&mut self, index: usize, code: i32) {
        self.kill_hooks(index, None);
        let role = self.role(index);
        let pod_condition = PodCondition {
            stopping: self.stopping,
            failed: self.pod_failed,
            apps_done: self.apps_done(),
        };
        let finished = Instant::now();
        let termination_message = self.termination_message(index, code);
        let name = self.plan_of(index).name.clone();
        let pod = self.pod_name();
        let run = &mut self.runs[index];
        let after = crate::restart::after_exit(
            role,
            self.plan.restart_policy,
            code,
            pod_condition,
            &run.backoff,
            finished,
        );
        let restart = matches!(after, AfterExit::Restart { .. });
        tracing::info!(container = %name, code, restart, "exited");
        run.stopping = None;
        run.finished = Some(finished);
        run.state.pid = None;
        run.state.ready = false;
        run.state.exit_code = Some(code);
        run.state.finished_at = Some(now_rfc3339());
        run.state.termination_message = termination_message;
        match after {
            AfterExit::Restart { at, backoff } => {
                run.restart_at = Some(at);
                run.state.state = ContainerStatus::Waiting;
                match backoff {
                    Some(delay) => {
                        run.state.reason = Some("CrashLoopBackOff".into());
                        run.state.message =
                            Some(crate::restart::backoff_message(delay, &name, &pod));
                        self.state.event(
                            EventKind::Warning,
                            "BackOff",
                            Some(&name),
                            format!("Back-off restarting failed container {name} in pod {pod}"),
                        );
                    }
                    None => run.state.reason = None,
                }
            }
            AfterExit::Exit { reason, fails_pod } => {
                run.state.state = ContainerStatus::Exited;
                run.state.reason = Some(reason.into());
                if run.state.termination_message.is_some() {
                    // Otherwise what was said before stays (a failed hook's message).
                    run.state.message = run.state.termination_message.clone();
                }
                run.restart_at = None;
                if fails_pod {
                    self.pod_failed = true;
                    self.state.event(
                        EventKind::Warning,
                        "Failed",
                        Some(&name),
                        format!("Init container {name} failed with exit code {code}; the pod failed (restartPolicy Never)"),
                    );
                }
            }
        }
        if self.pod_failed || self.apps_done() {
            self.stop_sidecars();
        }
        if let Err(e) = self.advance() {
            // Only while `play` waits: afterwards failed starts are retried.
            self.start_error = Some(e.to_string());
        }
    }

    /// The message of the container's run that ended with `code` (see
    /// [`crate::termination`]).
    fn termination_message(&self, index: usize, code: i32) -> Option<String> {
        let plan = self.plan_of(index);
        let file = crate::termination::file_path(&self.layout.container_dir(&plan.name));
        let log = self.layout.container_log(&plan.name);
        crate::termination::message(
            &plan.termination_message,
            &file,
            code,
            &log,
            self.runs[index].state.started_at.as_deref(),
            self.plan.containers.len() + self.plan.init_containers.len(),
        )
    }

    /// Every app container has ended for good (none runs or waits for a restart).
    fn apps_done(&self) -> bool {
        self.apps_started
            && (0..self.plan.containers.len()).all(|i| self.runs[i].state.terminated())
    }

    /// Sidecars stop after the app containers (and the other init containers), the last
    /// one first, as the kubelet stops them; each gets what is left of the pod's grace
    /// period (at least 2 s).
    pub(super) fn stop_sidecars(&mut self) {
        let others_running =
            (0..self.runs.len()).any(|i| self.role(i) != Role::Sidecar && self.runs[i].running());
        if others_running {
            return;
        }
        for index in self.init_indices().rev() {
            if self.role(index) != Role::Sidecar {
                continue;
            }
            let run = &mut self.runs[index];
            if run.state.state == ContainerStatus::Waiting {
                run.state.state = ContainerStatus::Exited;
                run.restart_at = None;
            }
            if !run.running() {
                continue;
            }
            if run.stopping.is_none() {
                let grace =
                    crate::stop::sidecar_grace(self.pod_deadline, Instant::now(), self.grace());
                self.stop_container(index, grace, "the pod's other containers ended".into());
            }
            // One at a time: the next sidecar once this one is gone.
            return;
        }
    }

    /// Restarts the containers whose back-off is over.
    pub(super) fn restart_due(&mut self) {
        let now = Instant::now();
        for index in 0..self.runs.len() {
            if self.stopping || self.runs[index].restart_at.is_none_or(|at| at > now) {
                continue;
            }
            let run = &mut self.runs[index];
            run.state.restart_count += 1;
            let finished = run.finished.unwrap_or(now);
            run.backoff.restarted(finished, now);
            run.restart_at = None;
            if let Err(e) = self.start_or_retry(index) {
                self.start_error = Some(e.to_string());
            }
        }
    }

    /// The pod stops (SIGTERM to the supervisor): no more restarts; the app and init
    /// containers are stopped, the sidecars after them, with the pod's grace period or the
    /// one `request` asks for. A request that comes once the pod is stopping already cuts
    /// the stops in progress short (a shorter grace period only, as kubectl's).
    pub(super) fn stop_as_asked(&mut self, request: Option<StopRequest>) {
        let asked = request.map(|r| Duration::from_secs(r.grace_period_seconds));
        let shorter = asked.filter(|a| self.stop_grace.is_none_or(|g| *a < g));
        if self.stopping && shorter.is_none() {
            return;
        }
        if shorter.is_some() {
            self.stop_grace = shorter;
        }
        let now = Instant::now();
        let grace = self.stop_grace.unwrap_or(self.grace());
        let deadline = crate::stop::deadline_after(now, grace);
        self.pod_deadline = Some(self.pod_deadline.map_or(deadline, |d| d.min(deadline)));
        if !self.stopping {
            self.stopping = true;
            self.state.terminating = true;
            for run in &mut self.runs {
                if run.state.state == ContainerStatus::Waiting {
                    run.state.state = ContainerStatus::Exited;
                    run.restart_at = None;
                }
            }
            for index in 0..self.runs.len() {
                if self.role(index) != Role::Sidecar {
                    self.stop_container(index, grace, "the pod is stopping".into());
                }
            }
        }
        if grace.is_zero() {
            self.end_network_now();
        }
        // Stops begun before the request (a probe's, or the pod's with a longer grace period).
        for index in 0..self.runs.len() {
            let Some(stopping) = self.runs[index]
                .stopping
                .as_mut()
                .filter(|_| shorter.is_some())
            else {
                continue;
            };
            if stopping.cut_short(now, grace) {
                self.kill_hooks(index, Some(HookKind::PreStop));
                self.signal_container(index, Signal::SIGKILL);
            }
        }
        self.stop_sidecars();
        self.write_state();
    }

    /// A stop of grace period 0: the network helper is killed with the containers (no one
    /// can use the network any more) rather than after them, so that its end, mostly the
    /// kernel's teardown of the pod's tap device (~15 ms), overlaps theirs. It is reaped with
    /// them, or when dropped at the cleanup (an unreaped child: its pid cannot be reused).
    fn end_network_now(&mut self) {
        if let Some(helper) = &self.network {
            let _ = nix::sys::signal::kill(Pid::from_raw(helper.pid()), Signal::SIGKILL);
        }
    }

    /// Whether `play` can have its answer: the app containers run (their postStart hooks
    /// done), some ended, the pod failed, or an init container is failing.
    pub(super) fn settled(&self) -> bool {
        if self.pod_failed {
            return true;
        }
        if !self.apps_started {
            return self
                .init_indices()
                .any(|i| self.runs[i].state.reason.as_deref() == Some("CrashLoopBackOff"));
        }
        (0..self.plan.containers.len())
            .all(|i| self.runs[i].state.reason.as_deref() != Some("ContainerCreating"))
    }

    /// Any container or hook process still to wait for.
    pub(super) fn anything_running(&self) -> bool {
        !self.hooks.is_empty() || self.runs.iter().any(Run::running)
    }
}
