//! Stopping a pod from outside (`podrun down`, and `podrun play` undoing a failed start).
//!
//! The usual way is to send the supervisor SIGTERM and wait: it stops the containers and
//! removes the pod's directories itself. A stop with a grace period of its own (`down
//! --grace-period N`, `--now`) writes it in the pod's stop request first (podrun-pod-model's
//! `stop`), which the supervisor reads on SIGTERM. When it does not end in time (or is gone), the pod's
//! processes are killed here: they are found by their user namespace (recorded in
//! `state.json`), since rootless pods have no cgroup to list them. The directories left are
//! removed by [`crate::remove`], inside podrun's user namespace.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use podrun_pod_model::plan::{Plan, DEFAULT_GRACE_SECONDS};
use podrun_pod_model::process::{is_supervisor_of, process_alive};
use podrun_pod_model::state::PodState;
use podrun_pod_model::stop::StopRequest;
use podrun_pod_model::{PodDirs, PodError, PodLayout};

/// What [`stop_processes`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Neither a runtime nor a data directory exists for the pod.
    NotFound,
    /// The supervisor stopped the pod and removed everything.
    Clean,
    /// Processes were killed here, or no supervisor ran; directories may be left for
    /// [`crate::remove`].
    Forced,
}

/// Processes whose user namespace is `user_namespace` (`user:[inode]`).
pub fn processes_in_user_namespace(user_namespace: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(ns) = std::fs::read_link(entry.path().join("ns/user")) {
            if ns.to_str() == Some(user_namespace) && process_alive(pid) {
                found.push(pid);
            }
        }
    }
    found
}

/// Polls `done` until it holds or `deadline` passes. The first polls come quickly (2 ms,
/// doubling up to 50 ms): a supervisor usually ends within tens of milliseconds, and `down`
/// should not sleep longer than the pod takes to stop.
fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    let mut pause = Duration::from_millis(2);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// After how long a stop says what it waits for ([`Stop::on_slow`]).
pub const SLOW_STOP: Duration = Duration::from_secs(2);

/// How one stop goes.
pub struct Stop<'a> {
    /// The grace period of this stop in seconds, instead of the pod's
    /// `terminationGracePeriodSeconds` (`down --grace-period N`); 0: SIGKILL at once.
    pub grace: Option<u64>,
    /// How long past the grace period the supervisor gets before the pod is killed here (it
    /// stops the containers, then removes the pod).
    pub extra: Duration,
    /// Called once when the supervisor is still at work after [`SLOW_STOP`], with what it
    /// waits for.
    pub on_slow: &'a dyn Fn(&Waiting),
    /// Polled while waiting: true asks for SIGKILL at once (`play --wait`'s second Ctrl-C).
    pub kill_now: &'a dyn Fn() -> bool,
}

impl Stop<'_> {
    /// A stop with the grace period `grace` (`None`: the pod's), `extra` after it, that says
    /// nothing and is never hurried.
    pub fn new(grace: Option<u64>, extra: Duration) -> Stop<'static> {
        Stop {
            grace,
            extra,
            on_slow: &|_| {},
            kill_now: &|| false,
        }
    }
}

/// What a slow stop waits for ([`Stop::on_slow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The containers still running, as `state.json` records them (init containers first).
    pub running: Vec<String>,
    /// The grace period they were given, in seconds.
    pub grace_seconds: u64,
    /// Whether that is the pod's `terminationGracePeriodSeconds` (not [`Stop::grace`]).
    pub pod_grace: bool,
    /// Seconds (rounded up) until the pod's processes are killed from outside, should the
    /// supervisor not be done by then (the grace period, the margin after it).
    pub left_seconds: u64,
}

impl Waiting {
    fn of(
        state: Option<&PodState>,
        grace_seconds: u64,
        pod_grace: bool,
        left: Duration,
    ) -> Waiting {
        let running = state
            .map(|s| {
                s.init_containers
                    .iter()
                    .chain(&s.containers)
                    .filter(|c| c.running())
                    .map(|c| c.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        Waiting {
            running,
            grace_seconds,
            pod_grace,
            left_seconds: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        }
    }
}

/// `now + seconds`, or (too far to count) a time that never comes.
fn deadline_after(now: Instant, time: Duration) -> Instant {
    now.checked_add(time)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Asks the supervisor `pid` to stop the pod with the grace period `grace` (`None`: the
/// pod's): the request file, then SIGTERM (also when the file cannot be written: the
/// supervisor then stops the pod with its own grace period, and the caller still kills it
/// once the grace period asked for is over).
fn ask_to_stop(layout: &PodLayout, pid: i32, grace: Option<u64>) -> Result<(), PodError> {
    let written = match grace {
        Some(seconds) => StopRequest {
            grace_period_seconds: seconds,
        }
        .write(layout),
        None => {
            StopRequest::clear(layout);
            Ok(())
        }
    };
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    written
}

/// A pod being stopped already (its state says terminating: another `down`, which holds
/// its lock, is waiting out a longer grace period) gets the stop request for `grace` at
/// once, rather than after that stop. Returns whether it was sent.
pub(crate) fn hurry(layout: &PodLayout, grace: u64) -> bool {
    let Ok(state) = PodState::read(&layout.runtime_dir) else {
        return false;
    };
    let pid = state.supervisor_pid;
    if !state.terminating || !is_supervisor_of(pid, &layout.runtime_dir) {
        return false;
    }
    // The pod may be going away meanwhile, and its directory with it.
    let _ = ask_to_stop(layout, pid, Some(grace));
    true
}

/// Stops the pod `namespace/name`: SIGTERM to its supervisor (with a stop request when
/// `stop.grace` is set), then waits up to the grace period + `stop.extra` for it to finish;
/// after that (or without a supervisor), SIGKILLs every process of the pod. Must run where
/// signalling the pod's processes is allowed: in the initial user namespace as the pod's
/// owner, or in the pod's own user namespace.
pub fn stop_processes(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
    stop: &Stop,
) -> Result<Stopped, PodError> {
    let layout = dirs.pod(namespace, name);
    if !layout.exists() {
        return Ok(Stopped::NotFound);
    }
    let runtime_dir = &layout.runtime_dir;
    let state = PodState::read(runtime_dir).ok();
    let pid = state
        .as_ref()
        .map(|s| s.supervisor_pid)
        .or_else(|| layout.supervisor_pid());
    let pod_grace = state
        .as_ref()
        .map(|s| s.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    let user_namespace = state
        .as_ref()
        .map(|s| s.user_namespace.clone())
        .unwrap_or_default();
    // Read before the supervisor removes the plan: its cgroup, if it does not remove it.
    let cgroup = Plan::read(runtime_dir).ok().and_then(|plan| plan.cgroup);

    if let Some(pid) = pid.filter(|pid| is_supervisor_of(*pid, runtime_dir)) {
        let finished = wait_for_supervisor(&layout, pid, pod_grace, stop);
        if finished && !layout.exists() {
            return Ok(Stopped::Clean);
        }
        if !finished {
            tracing::warn!("the supervisor of pod {namespace}/{name} (pid {pid}) did not stop in time; killing the pod");
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    kill_leftovers(&user_namespace);
    if let Some(cgroup) = cgroup {
        if let Err(e) = cgroup.remove() {
            tracing::warn!("pod {namespace}/{name}: {e}");
        }
    }
    Ok(Stopped::Forced)
}

/// Asks the supervisor `pid` to stop the pod and waits for its end: true when it ended in
/// time (the grace period + `stop.extra`; a supervisor of an older release, which does not
/// read the request, is killed once the grace period asked for is over that way). Says what
/// it waits for after [`SLOW_STOP`]; a `stop.kill_now` asks again with grace period 0.
fn wait_for_supervisor(layout: &PodLayout, pid: i32, pod_grace: u64, stop: &Stop) -> bool {
    let started = Instant::now();
    let grace = stop.grace.unwrap_or(pod_grace);
    // Opened before the signal: it wakes the wait the moment the supervisor ends.
    let pidfd = crate::owner::open(pid).ok();
    if let Err(e) = ask_to_stop(layout, pid, stop.grace) {
        tracing::warn!("{e}");
    }
    let mut deadline = deadline_after(
        started,
        Duration::from_secs(grace).saturating_add(stop.extra),
    );
    let mut slow_said = false;
    let mut killing = grace == 0;
    let mut pause = Duration::from_millis(2);
    loop {
        if !process_alive(pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if !killing && (stop.kill_now)() {
            killing = true;
            if let Err(e) = ask_to_stop(layout, pid, Some(0)) {
                tracing::warn!("{e}");
            }
            deadline = deadline.min(deadline_after(now, stop.extra));
        }
        if !slow_said && now >= started + SLOW_STOP {
            slow_said = true;
            let state = PodState::read(&layout.runtime_dir).ok();
            let (grace, pod_grace) = match (killing, stop.grace) {
                (true, _) => (0, false),
                (false, Some(grace)) => (grace, false),
                (false, None) => (pod_grace, true),
            };
            let left = deadline.saturating_duration_since(now);
            (stop.on_slow)(&Waiting::of(state.as_ref(), grace, pod_grace, left));
        }
        match &pidfd {
            // Until the supervisor ends, a signal comes (`kill_now`), or the next step is
            // due; at most 100 ms.
            Some(fd) => {
                let mut next = deadline.min(now + Duration::from_millis(100));
                if !slow_said {
                    next = next.min(started + SLOW_STOP);
                }
                wait_readable(fd, next.saturating_duration_since(now));
            }
            None => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// Waits up to `timeout` for `fd` (a pidfd: its process has ended) to become readable, or a
/// signal to come.
fn wait_readable(fd: &OwnedFd, timeout: Duration) {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, 1000) as libc::c_int;
    // SAFETY: one valid descriptor, which outlives the call.
    unsafe { libc::poll(&mut poll, 1, ms) };
}

/// SIGKILLs every process of the pod's user namespace, or (without one recorded) nothing:
/// a recorded pid alone may have been reused by an unrelated process.
fn kill_leftovers(user_namespace: &str) {
    if user_namespace.is_empty() {
        return;
    }
    if !is_a_pods_own(user_namespace) {
        // A pod run by host root records the initial user namespace: every process of the
        // machine is in it.
        tracing::warn!(
            user_namespace,
            "the pod has no user namespace of its own: its leftover processes are not killed"
        );
        return;
    }
    for _ in 0..5 {
        let pids = processes_in_user_namespace(user_namespace);
        if pids.is_empty() {
            return;
        }
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        wait_until(Instant::now() + Duration::from_secs(2), || {
            pids.iter().all(|pid| !process_alive(*pid))
        });
    }
}

/// The initial user namespace's inode (`PROC_USER_INIT_INO`), the same on every machine.
const INITIAL_USER_NAMESPACE: &str = "user:[4026531837]";

/// Whether `user_namespace` can be a pod's own: neither the initial one nor the caller's.
fn is_a_pods_own(user_namespace: &str) -> bool {
    let own = std::fs::read_link("/proc/self/ns/user").map(|l| l.display().to_string());
    user_namespace != INITIAL_USER_NAMESPACE && own.ok().as_deref() != Some(user_namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_and_the_own_user_namespace_are_never_killed() {
        assert!(!is_a_pods_own(INITIAL_USER_NAMESPACE));
        let own = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert!(!is_a_pods_own(&own.display().to_string()));
        assert!(is_a_pods_own("user:[1]"));
    }
}
