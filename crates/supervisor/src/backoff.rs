//! The kubelet's crash-loop back-off, per container.
//!
//! Checked against the kubelet's source: `doBackOff` in
//! `pkg/kubelet/kuberuntime/kuberuntime_manager.go` asks `IsInBackOffSince(key, finishedAt)`
//! and, when that is false, restarts the container and calls `Next(key, finishedAt)`;
//! `k8s.io/client-go/util/flowcontrol/backoff.go` keeps per key a delay and the time of the
//! last `Next`. So:
//!
//! * the first exit has no entry yet: the container is restarted at once (the kubelet's next
//!   sync, about a second later), and `Next` starts the delay at 10 s;
//! * a later exit waits until `finishedAt + delay`; the restart then doubles the delay,
//!   capped at 5 min: 0, 10, 20, 40, 80, 160, 300, 300 s...;
//! * `hasExpired`: when a container ends more than 2 × 5 min = 10 min after its last restart
//!   (it ran 10 minutes), the entry counts as new again: immediate restart, then 10 s.
//!
//! `PODRUN_BACKOFF_SCALE` (a positive factor, e.g. `0.1`, read by the supervisor) scales all
//! three durations, so that tests of crash loops take seconds.

use std::time::{Duration, Instant};

/// The kubelet's initial back-off.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The kubelet's maximum back-off (`MaxContainerBackOff`).
pub const MAX: Duration = Duration::from_secs(300);
/// The environment variable that scales the back-off (tests).
pub const SCALE_ENV: &str = "PODRUN_BACKOFF_SCALE";

/// The scale factor from [`SCALE_ENV`]: 1 unless it holds a positive number.
pub fn scale_from_env() -> f64 {
    std::env::var(SCALE_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(1.0)
}

/// One container's back-off.
#[derive(Debug, Clone)]
pub struct Backoff {
    scale: f64,
    /// The current delay and the time of the last restart (`Next`).
    entry: Option<(Duration, Instant)>,
}

impl Backoff {
    pub fn new(scale: f64) -> Backoff {
        Backoff { scale, entry: None }
    }

    fn initial(&self) -> Duration {
        INITIAL.mul_f64(self.scale)
    }

    fn max(&self) -> Duration {
        MAX.mul_f64(self.scale)
    }

    /// `hasExpired`: the container ended more than twice the maximum after its last restart.
    fn expired(&self, finished: Instant, last_restart: Instant) -> bool {
        finished.saturating_duration_since(last_restart) > self.max() * 2
    }

    /// When a container that ended at `finished` may be restarted (`IsInBackOffSince`):
    /// `finished` itself when it is not backing off.
    pub fn restart_at(&self, finished: Instant) -> Instant {
        match self.entry {
            Some((delay, last)) if !self.expired(finished, last) => finished + delay,
            _ => finished,
        }
    }

    /// The delay the next crash will wait (for messages), as the kubelet's `Get`.
    pub fn current(&self) -> Duration {
        self.entry.map(|(d, _)| d).unwrap_or_default()
    }

    /// The container, ended at `finished`, is restarted now (`Next`).
    pub fn restarted(&mut self, finished: Instant, now: Instant) {
        let delay = match self.entry {
            Some((delay, last)) if !self.expired(finished, last) => (delay * 2).min(self.max()),
            _ => self.initial(),
        };
        self.entry = Some((delay, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Crashes right after each restart: the waits are 0, 10, 20, 40, ... 300, 300 s.
    #[test]
    fn immediate_first_restart_then_doubling_to_five_minutes() {
        let mut backoff = Backoff::new(1.0);
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..9 {
            let at = backoff.restart_at(now);
            waits.push((at - now).as_secs());
            now = at;
            backoff.restarted(now - Duration::from_millis(1), now);
            now += Duration::from_secs(1);
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_container_that_ran_ten_minutes_starts_over() {
        let mut backoff = Backoff::new(1.0);
        let start = Instant::now();
        backoff.restarted(start, start);
        backoff.restarted(
            start + Duration::from_secs(1),
            start + Duration::from_secs(11),
        );
        assert_eq!(backoff.current(), Duration::from_secs(20));
        // Ends 9 minutes after its restart: still backing off.
        let finished = start + Duration::from_secs(11 + 540);
        assert_eq!(
            backoff.restart_at(finished),
            finished + Duration::from_secs(20)
        );
        // Ends 10 min 1 s after it: restarted at once, and the delay starts at 10 s again.
        let finished = start + Duration::from_secs(11 + 601);
        assert_eq!(backoff.restart_at(finished), finished);
        backoff.restarted(finished, finished);
        assert_eq!(backoff.current(), Duration::from_secs(10));
    }

    #[test]
    fn scaled_for_tests() {
        let mut backoff = Backoff::new(0.1);
        let now = Instant::now();
        assert_eq!(backoff.restart_at(now), now);
        backoff.restarted(now, now);
        assert_eq!(backoff.restart_at(now), now + Duration::from_secs(1));
        for _ in 0..10 {
            backoff.restarted(now, now);
        }
        assert_eq!(backoff.current(), Duration::from_secs(30));
    }
}
