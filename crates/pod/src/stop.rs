//! Stopping a pod from outside (`podrun down`, and `podrun play` undoing a failed start).
//!
//! The usual way is to send the supervisor SIGTERM and wait: it stops the containers and
//! removes the pod's directories itself. When it does not end in time (or is gone), the pod's
//! processes are killed here: they are found by their user namespace (recorded in
//! `state.json`), since rootless pods have no cgroup to list them. The directories left are
//! removed by [`crate::remove`], inside podrun's user namespace.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use podrun_pod_model::plan::{Plan, DEFAULT_GRACE_SECONDS};
use podrun_pod_model::process::{is_supervisor_of, process_alive};
use podrun_pod_model::state::PodState;
use podrun_pod_model::{PodDirs, PodError};

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

/// Stops the pod `namespace/name`: SIGTERM to its supervisor, then waits up to its grace
/// period + `extra` for it to finish; after that (or without a supervisor), SIGKILLs every
/// process of the pod. Must run where signalling the pod's processes is allowed: in the
/// initial user namespace as the pod's owner, or in the pod's own user namespace.
pub fn stop_processes(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
    extra: Duration,
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
    let grace = Duration::from_secs(
        state
            .as_ref()
            .map(|s| s.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_SECONDS),
    );
    let user_namespace = state
        .as_ref()
        .map(|s| s.user_namespace.clone())
        .unwrap_or_default();
    // Read before the supervisor removes the plan: its cgroup, if it does not remove it.
    let cgroup = Plan::read(runtime_dir).ok().and_then(|plan| plan.cgroup);

    if let Some(pid) = pid.filter(|pid| is_supervisor_of(*pid, runtime_dir)) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let finished = wait_until(Instant::now() + grace + extra, || !process_alive(pid));
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
