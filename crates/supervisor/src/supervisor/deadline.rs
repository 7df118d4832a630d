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
pub(super) fn start(seconds: Option<u64>, now: Instant) -> Option<Instant> {
    seconds.map(|s| now + Duration::from_secs(s))
}

impl Supervisor {
    /// Fails the pod and stops its containers once its deadline has passed, unless it has
    /// ended already or is being removed.
    pub(super) fn check_active_deadline(&mut self) {
        let Some(at) = self.active_deadline else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.active_deadline = None;
        let phase = self.state.compute_phase();
        if self.stopping || phase == PodPhase::Succeeded || phase == PodPhase::Failed {
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
