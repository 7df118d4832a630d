//! A container's stop, as the kubelet's `killContainer` runs it: its preStop hook (if any),
//! then its stop signal (`lifecycle.stopSignal`, the image's STOPSIGNAL, SIGTERM), then
//! SIGKILL once its grace period is over. A preStop hook that uses up the grace period is
//! killed, and the container still gets [`MIN_GRACE_AFTER_PRE_STOP`] after its stop signal.
//!
//! [`Stopping`] is that sequence's clock, fed the time by the supervisor: it says what is due
//! when, and the supervisor sends the signals.

use std::time::{Duration, Instant};

/// The kubelet's minimum grace period for the stop signal after a preStop hook
/// (`minimumGracePeriodInSeconds`).
pub const MIN_GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

/// A container being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopping {
    /// Its stop signal has been sent (after the preStop hook, if any).
    signalled: bool,
    /// The end of its grace period: the preStop hook is cut short, then SIGKILL.
    deadline: Instant,
    /// SIGKILL has been sent.
    killed: bool,
}

/// What a stop's timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopStep {
    /// The grace period ended during the preStop hook: kill the hook, send the stop signal
    /// ([`Stopping::signal`]).
    EndPreStop,
    /// The grace period ended after the stop signal: SIGKILL.
    Kill,
}

impl Stopping {
    /// A stop begun at `now`, with `grace` to go.
    pub fn new(now: Instant, grace: Duration) -> Stopping {
        Stopping {
            signalled: false,
            deadline: now + grace,
            killed: false,
        }
    }

    /// The stop signal is to be sent at `now` (the preStop hook is over, or there is none):
    /// false when it has been sent already. The container gets at least
    /// [`MIN_GRACE_AFTER_PRE_STOP`] from now.
    pub fn signal(&mut self, now: Instant) -> bool {
        if self.signalled {
            return false;
        }
        self.signalled = true;
        self.deadline = self.deadline.max(now + MIN_GRACE_AFTER_PRE_STOP);
        true
    }

    /// What is due at `now`, if anything; a [`StopStep::Kill`] is returned once.
    pub fn due(&mut self, now: Instant) -> Option<StopStep> {
        if self.deadline > now || self.killed {
            return None;
        }
        if !self.signalled {
            return Some(StopStep::EndPreStop);
        }
        self.killed = true;
        Some(StopStep::Kill)
    }

    /// When [`Stopping::due`] will have something to do; `None` once SIGKILL was sent.
    pub fn next_timer(&self) -> Option<Instant> {
        (!self.killed).then_some(self.deadline)
    }
}

/// The grace period of a sidecar stopped at `now`, after the pod's other containers: what
/// is left of the pod's (ending at `pod_deadline` when the pod is being removed, else a
/// whole `pod_grace`), at least [`MIN_GRACE_AFTER_PRE_STOP`].
pub fn sidecar_grace(pod_deadline: Option<Instant>, now: Instant, pod_grace: Duration) -> Duration {
    pod_deadline
        .map(|d| d.saturating_duration_since(now))
        .unwrap_or(pod_grace)
        .max(MIN_GRACE_AFTER_PRE_STOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn without_a_pre_stop_hook_sigkill_comes_after_the_grace_period() {
        let t0 = Instant::now();
        let mut stop = Stopping::new(t0, secs(30));
        assert!(stop.signal(t0));
        assert!(!stop.signal(t0 + secs(1)), "the stop signal is sent once");
        assert_eq!(stop.next_timer(), Some(t0 + secs(30)));
        assert_eq!(stop.due(t0 + secs(29)), None);
        assert_eq!(stop.due(t0 + secs(30)), Some(StopStep::Kill));
        assert_eq!(stop.due(t0 + secs(31)), None, "SIGKILL once");
        assert_eq!(stop.next_timer(), None);
    }

    #[test]
    fn a_pre_stop_hook_that_overruns_is_cut_short_and_the_container_gets_two_seconds() {
        let t0 = Instant::now();
        let mut stop = Stopping::new(t0, secs(5));
        assert_eq!(stop.due(t0 + secs(4)), None);
        assert_eq!(stop.due(t0 + secs(5)), Some(StopStep::EndPreStop));
        // Asked again before the signal went out: still the hook's end.
        assert_eq!(stop.due(t0 + secs(5)), Some(StopStep::EndPreStop));
        assert!(stop.signal(t0 + secs(5)));
        assert_eq!(stop.next_timer(), Some(t0 + secs(7)));
        assert_eq!(stop.due(t0 + secs(6)), None);
        assert_eq!(stop.due(t0 + secs(7)), Some(StopStep::Kill));
    }

    #[test]
    fn a_pre_stop_hook_that_ends_in_time_leaves_the_grace_period_as_it_was() {
        let t0 = Instant::now();
        let mut stop = Stopping::new(t0, secs(30));
        assert!(stop.signal(t0 + secs(1)));
        assert_eq!(stop.next_timer(), Some(t0 + secs(30)));
        // A zero grace period: the signal, then SIGKILL two seconds later.
        let mut now = Stopping::new(t0, Duration::ZERO);
        assert_eq!(now.due(t0), Some(StopStep::EndPreStop));
        assert!(now.signal(t0));
        assert_eq!(now.due(t0 + secs(2)), Some(StopStep::Kill));
    }

    #[test]
    fn sidecars_get_what_is_left_of_the_pod_s_grace_period() {
        let t0 = Instant::now();
        assert_eq!(sidecar_grace(None, t0, secs(30)), secs(30));
        assert_eq!(sidecar_grace(Some(t0 + secs(12)), t0, secs(30)), secs(12));
        assert_eq!(
            sidecar_grace(Some(t0 + secs(1)), t0, secs(30)),
            MIN_GRACE_AFTER_PRE_STOP
        );
        assert_eq!(
            sidecar_grace(Some(t0), t0 + secs(5), secs(30)),
            MIN_GRACE_AFTER_PRE_STOP,
            "past the pod's deadline"
        );
    }
}
