//! A Job's controller decisions, pure: fed the Job's spec, its pods as they stand and a
//! clock, [`next`] says how many pods to start, which to stop, and whether the Job is over.
//! The `podrun job-controller` process (one per Job, see the CLI) runs it in a loop; the
//! rules are Kubernetes' Job controller's for a non-indexed Job:
//!
//! * pods run until `completions` (default 1) have Succeeded, at most `parallelism`
//!   (default 1) at a time; without `completions` but with `parallelism` (a work queue)
//!   the Job completes once one pod Succeeded and none is active any more, and no pod is
//!   started after the first success;
//! * a Failed pod counts as a failure and is replaced, after the controller's back-off
//!   (10 s doubling per failure, capped at 6 min, counted from the last failure's end);
//!   with `restartPolicy: OnFailure` the kubelet restarts containers in place and each
//!   restart counts as a failure too;
//! * more failures than `backoffLimit` (default 6): the Job Failed (BackoffLimitExceeded),
//!   its active pods are stopped;
//! * `activeDeadlineSeconds` after the Job's start: the Job Failed (DeadlineExceeded), its
//!   active pods are stopped.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The controller's first back-off (`DefaultJobPodFailureBackOff`).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The controller's longest back-off (`MaxJobPodFailureBackOff`).
pub const BACKOFF_MAX: Duration = Duration::from_secs(360);
/// `backoffLimit` when the Job gives none.
pub const DEFAULT_BACKOFF_LIMIT: u32 = 6;

/// What the controller needs of a Job's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// `completions`; `None` with `parallelism` set is a work queue (see the module docs).
    pub completions: Option<u32>,
    /// `parallelism` (1 unless given; 0 runs nothing, as a suspended Job).
    pub parallelism: u32,
    /// `backoffLimit`.
    pub backoff_limit: u32,
    /// `activeDeadlineSeconds`.
    pub active_deadline: Option<Duration>,
    /// Scales the back-off (`PODRUN_BACKOFF_SCALE`, for tests); 1.0 otherwise.
    pub backoff_scale: f64,
}

impl Default for JobSpec {
    fn default() -> JobSpec {
        JobSpec {
            completions: Some(1),
            parallelism: 1,
            backoff_limit: DEFAULT_BACKOFF_LIMIT,
            active_deadline: None,
            backoff_scale: 1.0,
        }
    }
}

/// Where one of the Job's pods stands, for the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPodPhase {
    /// Being started, pending or running: an active pod.
    Running,
    Succeeded,
    Failed,
}

/// One of the Job's pods.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPod {
    pub name: String,
    pub phase: JobPodPhase,
    /// Container restarts (`restartPolicy: OnFailure`): each is a failure.
    pub restarts: u32,
    /// When its last container ended (a Failed pod's failure time), if known.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Why a Job failed, as Kubernetes' `Failed` condition words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    BackoffLimitExceeded,
    DeadlineExceeded,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::BackoffLimitExceeded => "BackoffLimitExceeded",
            FailReason::DeadlineExceeded => "DeadlineExceeded",
        }
    }

    /// The condition's message, as the Job controller writes it.
    pub fn message(self) -> &'static str {
        match self {
            FailReason::BackoffLimitExceeded => "Job has reached the specified backoff limit",
            FailReason::DeadlineExceeded => "Job was active longer than specified deadline",
        }
    }
}

/// How a Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    Failed(FailReason),
}

/// What the controller does now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// How many new pods to start.
    pub start: usize,
    /// The pods to stop (the active ones of a Job that is over).
    pub stop: Vec<String>,
    /// The Job is over.
    pub outcome: Option<Outcome>,
    /// When something is due with no pod changing: the deadline, or the end of a back-off.
    pub wake_at: Option<DateTime<Utc>>,
}

/// The counts a Job's status shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub active: usize,
    pub succeeded: usize,
    /// Failed pods, plus container restarts (each a failure, as with OnFailure).
    pub failed: u32,
}

/// The counts of `pods`.
pub fn counts(pods: &[JobPod]) -> Counts {
    let of = |phase| pods.iter().filter(|p| p.phase == phase).count();
    let failed_pods = of(JobPodPhase::Failed) as u32;
    let restarts: u32 = pods.iter().map(|p| p.restarts).sum();
    Counts {
        active: of(JobPodPhase::Running),
        succeeded: of(JobPodPhase::Succeeded),
        failed: failed_pods + restarts,
    }
}

/// The controller's decision for the Job of `spec`, started at `started_at`, whose pods
/// are `pods`, at `now`. See the module docs for the rules.
pub fn next(
    spec: &JobSpec,
    pods: &[JobPod],
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Decision {
    let counts = counts(pods);
    let active: Vec<String> = pods
        .iter()
        .filter(|p| p.phase == JobPodPhase::Running)
        .map(|p| p.name.clone())
        .collect();
    let over = |outcome| Decision {
        start: 0,
        stop: active.clone(),
        outcome: Some(outcome),
        wake_at: None,
    };
    if complete(spec, counts) {
        return over(Outcome::Complete);
    }
    if counts.failed > spec.backoff_limit {
        return over(Outcome::Failed(FailReason::BackoffLimitExceeded));
    }
    let deadline = spec.active_deadline.map(|d| started_at + to_chrono(d));
    if deadline.is_some_and(|d| now >= d) {
        return over(Outcome::Failed(FailReason::DeadlineExceeded));
    }
    let wanted = wanted_active(spec, counts);
    let mut decision = Decision {
        wake_at: deadline,
        ..Decision::default()
    };
    if wanted > counts.active {
        match backoff_until(spec, pods, counts) {
            Some(until) if now < until => decision.wake_at = earliest(deadline, until),
            _ => decision.start = wanted - counts.active,
        }
    }
    decision
}

/// Whether enough pods succeeded: `completions` of them, or (a work queue) one, with none
/// active any more.
fn complete(spec: &JobSpec, counts: Counts) -> bool {
    match spec.completions {
        Some(completions) => counts.succeeded >= completions as usize,
        None => counts.succeeded > 0 && counts.active == 0,
    }
}

/// How many pods should be active: `parallelism`, but no more than the completions left;
/// none in a work queue once a pod succeeded.
fn wanted_active(spec: &JobSpec, counts: Counts) -> usize {
    let parallelism = spec.parallelism as usize;
    match spec.completions {
        Some(completions) => {
            parallelism.min((completions as usize).saturating_sub(counts.succeeded))
        }
        None if counts.succeeded > 0 => 0,
        None => parallelism,
    }
}

/// Until when a replacement waits after failures: the last failure's end plus the
/// back-off of that many failures; `None` with no failure (or none with a known end).
fn backoff_until(spec: &JobSpec, pods: &[JobPod], counts: Counts) -> Option<DateTime<Utc>> {
    if counts.failed == 0 {
        return None;
    }
    let last = pods
        .iter()
        .filter(|p| p.phase == JobPodPhase::Failed)
        .filter_map(|p| p.ended_at)
        .max()?;
    Some(last + to_chrono(backoff(spec, counts.failed)))
}

/// The back-off after `failures` failures: 10 s, 20 s, 40 s, ... capped at 6 min, scaled.
pub fn backoff(spec: &JobSpec, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let delay = BACKOFF_INITIAL
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX);
    delay.mul_f64(spec.backoff_scale)
}

fn earliest(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn pod(name: &str, phase: JobPodPhase, ended: Option<i64>) -> JobPod {
        JobPod {
            name: name.into(),
            phase,
            restarts: 0,
            ended_at: ended.map(t),
        }
    }

    use JobPodPhase::{Failed, Running, Succeeded};

    fn spec(completions: Option<u32>, parallelism: u32) -> JobSpec {
        JobSpec {
            completions,
            parallelism,
            ..JobSpec::default()
        }
    }

    #[test]
    fn starts_parallelism_pods_but_no_more_than_completions_left() {
        let s = spec(Some(3), 2);
        assert_eq!(next(&s, &[], t(0), t(0)).start, 2);
        let one_running = [pod("a", Running, None)];
        assert_eq!(next(&s, &one_running, t(0), t(1)).start, 1);
        let two_done = [pod("a", Succeeded, Some(1)), pod("b", Succeeded, Some(1))];
        let d = next(&s, &two_done, t(0), t(2));
        assert_eq!((d.start, d.outcome), (1, None));
        let one_left = [
            two_done[0].clone(),
            two_done[1].clone(),
            pod("c", Running, None),
        ];
        assert_eq!(next(&s, &one_left, t(0), t(2)).start, 0);
        assert_eq!(next(&spec(Some(1), 5), &[], t(0), t(0)).start, 1);
        assert_eq!(next(&spec(Some(4), 0), &[], t(0), t(0)).start, 0);
    }

    #[test]
    fn complete_once_completions_succeeded() {
        let s = spec(Some(2), 2);
        let done = [pod("a", Succeeded, Some(1)), pod("b", Succeeded, Some(2))];
        let d = next(&s, &done, t(0), t(3));
        assert_eq!(d.outcome, Some(Outcome::Complete));
        assert_eq!((d.start, d.stop.len()), (0, 0));
        // The default Job: one pod, one completion.
        let d = next(
            &JobSpec::default(),
            &[pod("a", Succeeded, Some(1))],
            t(0),
            t(1),
        );
        assert_eq!(d.outcome, Some(Outcome::Complete));
    }

    #[test]
    fn a_work_queue_completes_when_one_succeeded_and_the_rest_ended() {
        let s = spec(None, 3);
        assert_eq!(next(&s, &[], t(0), t(0)).start, 3);
        let one_done = [
            pod("a", Succeeded, Some(1)),
            pod("b", Running, None),
            pod("c", Failed, Some(1)),
        ];
        let d = next(&s, &one_done, t(0), t(2));
        assert_eq!((d.start, d.outcome), (0, None));
        let all_ended = [
            one_done[0].clone(),
            pod("b", Succeeded, Some(3)),
            one_done[2].clone(),
        ];
        assert_eq!(
            next(&s, &all_ended, t(0), t(4)).outcome,
            Some(Outcome::Complete)
        );
    }

    #[test]
    fn a_failed_pod_is_replaced_after_the_back_off() {
        let s = spec(Some(1), 1);
        let failed = [pod("a", Failed, Some(5))];
        // 10 s after the failure.
        let d = next(&s, &failed, t(0), t(6));
        assert_eq!((d.start, d.wake_at), (0, Some(t(15))));
        assert_eq!(next(&s, &failed, t(0), t(15)).start, 1);
        // Two failures: 20 s.
        let twice = [pod("a", Failed, Some(5)), pod("b", Failed, Some(30))];
        assert_eq!(next(&s, &twice, t(0), t(40)).wake_at, Some(t(50)));
        assert_eq!(next(&s, &twice, t(0), t(50)).start, 1);
    }

    #[test]
    fn the_back_off_doubles_to_six_minutes_and_scales() {
        let s = JobSpec::default();
        let delays: Vec<u64> = (1..=8).map(|n| backoff(&s, n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 360, 360]);
        let scaled = JobSpec {
            backoff_scale: 0.1,
            ..JobSpec::default()
        };
        assert_eq!(backoff(&scaled, 1), Duration::from_secs(1));
        assert_eq!(backoff(&s, u32::MAX).as_secs(), 360);
    }

    #[test]
    fn more_failures_than_the_backoff_limit_fail_the_job_and_stop_its_pods() {
        let s = JobSpec {
            backoff_limit: 1,
            parallelism: 2,
            completions: Some(2),
            ..JobSpec::default()
        };
        let one = [pod("a", Failed, Some(1)), pod("b", Running, None)];
        assert_eq!(next(&s, &one, t(0), t(2)).outcome, None);
        let two = [
            pod("a", Failed, Some(1)),
            pod("b", Running, None),
            pod("c", Failed, Some(3)),
        ];
        let d = next(&s, &two, t(0), t(4));
        assert_eq!(
            d.outcome,
            Some(Outcome::Failed(FailReason::BackoffLimitExceeded))
        );
        assert_eq!((d.start, d.stop), (0, vec!["b".to_string()]));
        // backoffLimit 0: the first failure ends the Job.
        let zero = JobSpec {
            backoff_limit: 0,
            ..JobSpec::default()
        };
        let d = next(&zero, &[pod("a", Failed, Some(1))], t(0), t(2));
        assert_eq!(
            d.outcome,
            Some(Outcome::Failed(FailReason::BackoffLimitExceeded))
        );
    }

    #[test]
    fn restarts_in_place_count_as_failures() {
        let s = JobSpec {
            backoff_limit: 2,
            ..JobSpec::default()
        };
        let mut restarting = pod("a", Running, None);
        restarting.restarts = 2;
        let d = next(&s, std::slice::from_ref(&restarting), t(0), t(5));
        assert_eq!((d.start, d.outcome), (0, None));
        restarting.restarts = 3;
        let d = next(&s, std::slice::from_ref(&restarting), t(0), t(6));
        assert_eq!(
            d.outcome,
            Some(Outcome::Failed(FailReason::BackoffLimitExceeded))
        );
        assert_eq!(d.stop, vec!["a".to_string()]);
        assert_eq!(counts(&[restarting]).failed, 3);
    }

    #[test]
    fn the_active_deadline_fails_the_job_and_stops_its_pods() {
        let s = JobSpec {
            active_deadline: Some(Duration::from_secs(2)),
            ..JobSpec::default()
        };
        let running = [pod("a", Running, None)];
        let d = next(&s, &running, t(0), t(1));
        assert_eq!((d.outcome, d.wake_at), (None, Some(t(2))));
        let d = next(&s, &running, t(0), t(2));
        assert_eq!(
            d.outcome,
            Some(Outcome::Failed(FailReason::DeadlineExceeded))
        );
        assert_eq!(d.stop, vec!["a".to_string()]);
        // A back-off that ends after the deadline: the deadline wakes first.
        let failed = [pod("a", Failed, Some(1))];
        assert_eq!(next(&s, &failed, t(0), t(1)).wake_at, Some(t(2)));
    }

    #[test]
    fn completion_wins_over_a_deadline_passed_at_the_same_time() {
        let s = JobSpec {
            active_deadline: Some(Duration::from_secs(2)),
            ..JobSpec::default()
        };
        let done = [pod("a", Succeeded, Some(2))];
        assert_eq!(next(&s, &done, t(0), t(3)).outcome, Some(Outcome::Complete));
    }
}
