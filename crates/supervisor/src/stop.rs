//! A container's stop, as the kubelet's `killContainer` runs it: its preStop hook (if any),
//! then its stop signal (`lifecycle.stopSignal`, the image's STOPSIGNAL, SIGTERM), then
//! SIGKILL once its grace period is over. A preStop hook that uses up the grace period is
//! killed, and the container still gets [`MIN_GRACE_AFTER_PRE_STOP`] after its stop signal.
//!
//! A stop request (`podrun down --grace-period N`, podrun-pod-model's `stop`) gives the
//! pod's stop a grace period of its own: N seconds instead of the pod's, or with 0 SIGKILL at
//! once, without the preStop hook or the stop signal. A request that comes while the pod is
//! stopping already cuts the stops in progress short ([`Stopping::cut_short`]).
//!
//! [`Stopping`] is that sequence's clock, fed the time by the supervisor: it says what is due
//! when, and the supervisor sends the signals.

use std::time::{Duration, Instant};

/// The kubelet's minimum grace period for the stop signal after a preStop hook
/// (`minimumGracePeriodInSeconds`).
pub const MIN_GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);

/// `now + grace`, or (a grace period too long to count) a time that never comes.
pub fn deadline_after(now: Instant, grace: Duration) -> Instant {
    now.checked_add(grace)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

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
            deadline: deadline_after(now, grace),
            killed: false,
        }
    }

    /// A stop request with `grace` to go came at `now`: the grace period ends then at the
    /// latest. With a zero `grace`, SIGKILL is due at once, without the preStop hook's end or
    /// the stop signal: returns true (once) when the caller is to kill the container now
    /// (and its preStop hook).
    pub fn cut_short(&mut self, now: Instant, grace: Duration) -> bool {
        if self.killed {
            return false;
        }
        if grace.is_zero() {
            self.signalled = true;
            self.killed = true;
            self.deadline = now;
            return true;
        }
        self.deadline = self.deadline.min(deadline_after(now, grace));
        false
    }

    /// The stop signal is to be sent at `now` (the preStop hook is over, or there is none):
    /// false when it has been sent already. The container gets at least
    /// [`MIN_GRACE_AFTER_PRE_STOP`] from now.
    pub fn signal(&mut self, now: Instant) -> bool {
        if self.signalled {
            return false;
        }
        self.signalled = true;
        self.deadline = self
            .deadline
            .max(deadline_after(now, MIN_GRACE_AFTER_PRE_STOP));
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
    fn a_zero_grace_request_kills_at_once_whatever_the_stop_was_doing() {
        let t0 = Instant::now();
        // Not begun yet (the caller skips the preStop hook and the stop signal).
        let mut fresh = Stopping::new(t0, secs(30));
        assert!(fresh.cut_short(t0, Duration::ZERO));
        assert_eq!(fresh.next_timer(), None);
        assert_eq!(fresh.due(t0 + secs(31)), None, "SIGKILL was sent, once");
        assert!(!fresh.signal(t0), "no stop signal after SIGKILL");
        // During the preStop hook, and after the stop signal.
        let mut hook = Stopping::new(t0, secs(30));
        assert!(hook.cut_short(t0 + secs(3), Duration::ZERO));
        let mut signalled = Stopping::new(t0, secs(30));
        assert!(signalled.signal(t0));
        assert!(signalled.cut_short(t0 + secs(3), Duration::ZERO));
        assert!(!signalled.cut_short(t0 + secs(4), Duration::ZERO), "once");
        // After SIGKILL there is nothing to cut short.
        let mut killed = Stopping::new(t0, secs(3));
        assert!(killed.signal(t0));
        assert_eq!(killed.due(t0 + secs(3)), Some(StopStep::Kill));
        assert!(!killed.cut_short(t0 + secs(4), Duration::ZERO));
    }

    #[test]
    fn a_shorter_grace_request_moves_the_deadline_closer_never_further() {
        let t0 = Instant::now();
        let mut stop = Stopping::new(t0, secs(30));
        assert!(stop.signal(t0));
        assert!(!stop.cut_short(t0 + secs(5), secs(1)));
        assert_eq!(stop.next_timer(), Some(t0 + secs(6)));
        assert_eq!(stop.due(t0 + secs(6)), Some(StopStep::Kill));
        let mut longer = Stopping::new(t0, secs(10));
        assert!(!longer.cut_short(t0 + secs(5), secs(60)));
        assert_eq!(longer.next_timer(), Some(t0 + secs(10)));
        // During the preStop hook: the hook ends at the new deadline, then the stop signal
        // and its 2 s, as for the pod's own grace period.
        let mut hook = Stopping::new(t0, secs(30));
        assert!(!hook.cut_short(t0, secs(1)));
        assert_eq!(hook.due(t0 + secs(1)), Some(StopStep::EndPreStop));
        assert!(hook.signal(t0 + secs(1)));
        assert_eq!(hook.next_timer(), Some(t0 + secs(3)));
    }

    #[test]
    fn a_grace_period_too_long_to_count_never_ends() {
        let t0 = Instant::now();
        let mut stop = Stopping::new(t0, Duration::from_secs(u64::MAX));
        assert!(stop.signal(t0));
        assert_eq!(stop.due(t0 + secs(3600)), None);
        assert!(!stop.cut_short(t0, Duration::from_secs(u64::MAX)));
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
