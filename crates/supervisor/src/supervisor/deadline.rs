//! `activeDeadlineSeconds`: once the pod has run that long, the kubelet fails it with the
//! reason `DeadlineExceeded` and stops its containers (each within its grace period, preStop
//! hooks included); nothing is restarted, and the pod stays, Failed, until it is removed.
//! The time counts from the supervisor's start (the images are pulled by then; the kubelet
//! counts from the pod's `startTime`, before its pulls).

use std::time::{Duration, Instant};

use podrun_pod_model::state::{ContainerStatus, EventKind, PodPhase};

use super::Supervisor;

/// The reason and message the kubelet gives the pod.
pub const REASON: &str = "DeadlineExceeded";
pub const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// When the deadline of a pod with `activeDeadlineSeconds` `seconds`, started at `now`, runs
/// out, if it has one.
fn start(seconds: Option<u64>, now: Instant) -> Option<Instant> {
    seconds.map(|s| now + Duration::from_secs(s))
}

/// Whether the deadline `at` has passed at `now`.
pub(super) fn passed(at: Instant, now: Instant) -> bool {
    now >= at
}

/// Whether a passed deadline fails a pod in `phase`: not one that has ended already, nor one
/// being removed (`stopping`).
pub(super) fn fails_pod(phase: PodPhase, stopping: bool) -> bool {
    !stopping && !matches!(phase, PodPhase::Succeeded | PodPhase::Failed)
}

impl Supervisor {
    /// Starts the pod's `activeDeadlineSeconds`, counted from `now`.
    pub(super) fn arm_active_deadline(&mut self, now: Instant) {
        self.active_deadline = start(self.plan.active_deadline_seconds, now);
    }

    /// Fails the pod and stops its containers once its deadline has passed, unless it has
    /// ended already or is being removed.
    pub(super) fn check_active_deadline(&mut self) {
        let Some(at) = self.active_deadline else {
            return;
        };
        if !passed(at, Instant::now()) {
            return;
        }
        self.active_deadline = None;
        if !fails_pod(self.state.compute_phase(), self.stopping) {
            return;
        }
        tracing::info!("active deadline exceeded: stopping the pod's containers");
        self.pod_failed = true;
        self.state.reason = Some(REASON.into());
        self.state.message = Some(MESSAGE.into());
        self.state
            .event(EventKind::Warning, REASON, None, MESSAGE.to_string());
        for run in &mut self.runs {
            if run.state.state == ContainerStatus::Waiting {
                run.state.state = ContainerStatus::Exited;
                run.restart_at = None;
            }
        }
        // Sidecars last, as when the pod is removed (see `stop_sidecars`).
        let grace = Duration::from_secs(self.plan.termination_grace_period_seconds);
        for index in 0..self.runs.len() {
            if !self.runs[index].state.sidecar {
                self.stop_container(index, grace, "the pod's active deadline passed".into());
            }
        }
        self.stop_sidecars();
        self.write_state();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_counts_from_the_start() {
        let t0 = Instant::now();
        assert_eq!(start(None, t0), None);
        let at = start(Some(30), t0).unwrap();
        assert!(!passed(at, t0));
        assert!(!passed(at, t0 + Duration::from_millis(29_999)));
        assert!(passed(at, t0 + Duration::from_secs(30)));
        assert!(passed(at, t0 + Duration::from_secs(31)));
    }

    #[test]
    fn only_a_pod_still_going_fails_when_its_deadline_passes() {
        for phase in [PodPhase::Pending, PodPhase::Running, PodPhase::Unknown] {
            assert!(fails_pod(phase, false), "{phase:?}");
            assert!(!fails_pod(phase, true), "{phase:?} while being removed");
        }
        assert!(!fails_pod(PodPhase::Succeeded, false));
        assert!(!fails_pod(PodPhase::Failed, false));
    }
}
