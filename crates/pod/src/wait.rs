//! `podrun wait`: whether a pod has reached the condition waited for ([`judge`], pure), from
//! what its runtime directory shows ([`observe`]).

use podrun_pod_model::state::{ContainerState, PodPhase, PodState};
use podrun_pod_model::PodDirs;

/// What `podrun wait --for` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Every container ready (READY n/n, as `play --wait-ready`).
    Ready,
    /// The pod Succeeded: every container ended for good, all with exit code 0.
    Completed,
    /// The pod is gone (`podrun down`, or its owner ended).
    Deleted,
}

/// What a pod's runtime directory shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// No runtime directory.
    Gone,
    /// Its supervisor runs but has written no state yet (the pod is being started).
    Starting,
    /// Its supervisor runs: its last state.
    Running(Box<PodState>),
    /// Its supervisor is gone without removing it (`ps` shows `Lost`).
    Lost,
}

/// Where a pod stands with respect to the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not there yet; why (for the timeout's message).
    Waiting(String),
    /// The condition holds.
    Done,
    /// The condition can no longer come true; why.
    Failed(String),
}

/// The pod's verdict for `condition`.
///
/// * ready: done once every counted container (app containers and native sidecars) is
///   ready; failed when an app container ended for good, the pod completed, is gone or lost.
/// * completed: done when the pod Succeeded; failed when it Failed (naming the container and
///   its exit code), is gone or lost.
/// * deleted: done when the pod is gone; a lost pod is still there (`podrun down` removes it).
pub fn judge(condition: Condition, observed: &Observed) -> Verdict {
    let state = match (condition, observed) {
        (Condition::Deleted, Observed::Gone) => return Verdict::Done,
        (Condition::Deleted, _) => return Verdict::Waiting("the pod still exists".into()),
        (_, Observed::Gone) => return Verdict::Failed("the pod does not exist".into()),
        (_, Observed::Lost) => {
            return Verdict::Failed("its supervisor is gone (ps shows Lost)".into())
        }
        (_, Observed::Starting) => return Verdict::Waiting("the pod is being started".into()),
        (_, Observed::Running(state)) => state,
    };
    let phase = state.compute_phase();
    match condition {
        Condition::Ready => {
            let ended = state.containers.iter().find(|c| c.terminated());
            let failed = all_containers(state).find(|c| c.exit_code.unwrap_or(0) != 0);
            let completed = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
            if let Some(ended) = ended.or(failed.filter(|_| completed)) {
                return Verdict::Failed(format!(
                    "container `{}` ended (exit code {}) before the pod was ready",
                    ended.name,
                    exit_code(ended)
                ));
            }
            if completed {
                return Verdict::Failed(format!(
                    "the pod {} before it was ready",
                    phase_word(phase)
                ));
            }
            match state.ready() {
                (ready, total) if ready == total && total > 0 => Verdict::Done,
                (ready, total) => Verdict::Waiting(format!("{ready}/{total} containers ready")),
            }
        }
        Condition::Completed => match phase {
            PodPhase::Succeeded => Verdict::Done,
            PodPhase::Failed => {
                let why = match all_containers(state).find(|c| c.exit_code.unwrap_or(0) != 0) {
                    Some(c) => format!("container `{}` exited with code {}", c.name, exit_code(c)),
                    None => state.reason.clone().unwrap_or_else(|| "Failed".into()),
                };
                Verdict::Failed(format!("the pod failed: {why}"))
            }
            phase => Verdict::Waiting(format!("phase {}", phase_word(phase))),
        },
        Condition::Deleted => unreachable!("decided above"),
    }
}

fn all_containers(state: &PodState) -> impl Iterator<Item = &ContainerState> {
    state.init_containers.iter().chain(&state.containers)
}

fn exit_code(c: &ContainerState) -> String {
    c.exit_code.map_or("none".into(), |code| code.to_string())
}

fn phase_word(phase: PodPhase) -> String {
    match phase {
        PodPhase::Unknown => "unknown".into(),
        phase => phase.as_str().to_lowercase(),
    }
}

/// What the runtime directory of pod `namespace/name` shows now.
pub fn observe(dirs: &PodDirs, namespace: &str, name: &str) -> Observed {
    let dir = dirs.runtime_dir(namespace, name);
    let Some(entry) = crate::listing::entry(&dir).filter(|_| dir.is_dir()) else {
        return Observed::Gone;
    };
    match (entry.state, entry.supervisor_alive) {
        (_, false) => {
            // Removed between the two looks: gone, not lost.
            if dir.is_dir() {
                Observed::Lost
            } else {
                Observed::Gone
            }
        }
        (None, true) => Observed::Starting,
        (Some(state), true) => Observed::Running(Box::new(state)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, state: &str, exit: Option<i32>, ready: bool) -> serde_json::Value {
        serde_json::json!({
            "name": name, "image": "i", "state": state, "pid": null, "id": "x",
            "exit_code": exit, "started_at": null, "finished_at": null, "restart_count": 0,
            "ready": ready
        })
    }

    fn pod(policy: &str, containers: Vec<serde_json::Value>) -> Observed {
        let state: PodState = serde_json::from_value(serde_json::json!({
            "pod": "p", "namespace": "default", "uid": "u", "supervisor_pid": 1,
            "created": "2026-01-01T00:00:00Z", "restart_policy": policy,
            "termination_grace_period_seconds": 1, "containers": containers
        }))
        .unwrap();
        Observed::Running(Box::new(state))
    }

    fn waiting(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Waiting(_))
    }

    #[test]
    fn ready_when_every_container_is() {
        let half = pod(
            "Always",
            vec![
                container("a", "running", None, true),
                container("b", "running", None, false),
            ],
        );
        assert_eq!(
            judge(Condition::Ready, &half),
            Verdict::Waiting("1/2 containers ready".into())
        );
        let all = pod("Always", vec![container("a", "running", None, true)]);
        assert_eq!(judge(Condition::Ready, &all), Verdict::Done);
        assert!(waiting(judge(Condition::Ready, &Observed::Starting)));
        // A container that ended for good can no longer be ready.
        let ended = pod(
            "Never",
            vec![
                container("a", "running", None, true),
                container("b", "exited", Some(3), false),
            ],
        );
        assert_eq!(
            judge(Condition::Ready, &ended),
            Verdict::Failed("container `b` ended (exit code 3) before the pod was ready".into())
        );
        assert!(matches!(
            judge(Condition::Ready, &Observed::Gone),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            judge(Condition::Ready, &Observed::Lost),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn completed_when_the_pod_succeeded() {
        let running = pod("Never", vec![container("a", "running", None, true)]);
        assert_eq!(
            judge(Condition::Completed, &running),
            Verdict::Waiting("phase running".into())
        );
        let done = pod("Never", vec![container("a", "exited", Some(0), false)]);
        assert_eq!(judge(Condition::Completed, &done), Verdict::Done);
        let failed = pod(
            "Never",
            vec![
                container("a", "exited", Some(0), false),
                container("b", "exited", Some(7), false),
            ],
        );
        assert_eq!(
            judge(Condition::Completed, &failed),
            Verdict::Failed("the pod failed: container `b` exited with code 7".into())
        );
        // Restarted after a failure: not completed, still running.
        let restarting = pod("OnFailure", vec![container("a", "exited", Some(1), false)]);
        assert!(waiting(judge(Condition::Completed, &restarting)));
        assert!(matches!(
            judge(Condition::Completed, &Observed::Gone),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn deleted_when_gone() {
        assert_eq!(judge(Condition::Deleted, &Observed::Gone), Verdict::Done);
        assert!(waiting(judge(Condition::Deleted, &Observed::Lost)));
        let running = pod("Always", vec![container("a", "running", None, true)]);
        assert!(waiting(judge(Condition::Deleted, &running)));
    }
}
