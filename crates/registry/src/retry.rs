//! When to try a registry request again: exponential back-off with jitter, bounded in count
//! and in total time, and a registry's `Retry-After` honoured. Attempts that receive nothing
//! at all end the series sooner: a registry that stalls every time would otherwise hold a
//! pull for the stall timeout times the retries.

use std::time::{Duration, Instant};

use podrun_config::{PullConfig, MAX_RETRY_DELAY};

/// How transient failures are retried (from `[pull]` in config.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts after the first.
    pub retries: u32,
    /// The first back-off; it doubles per attempt up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No attempt starts once this long has passed since the first failure.
    pub time_limit: Duration,
    /// A response or transfer with no byte for this long is abandoned.
    pub stall_timeout: Duration,
}

impl RetryPolicy {
    pub fn from_config(pull: &PullConfig) -> Self {
        RetryPolicy {
            retries: pull.retries,
            base_delay: pull.retry_delay,
            max_delay: MAX_RETRY_DELAY.max(pull.retry_delay),
            time_limit: pull.retry_time_limit,
            stall_timeout: pull.stall_timeout,
        }
    }

    /// The back-off before retry number `retry` (0 for the first retry), without jitter:
    /// `base × 2^retry`, at most `max_delay`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The back-off before retry number `retry` with "equal jitter": half the ceiling, plus a
    /// random part of the other half (`unit` in [0, 1)). Clients that failed together (a
    /// registry restart) spread out instead of returning in step, and no wait is shorter than
    /// half the ceiling, so a struggling registry still gets its breather.
    pub fn jittered(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// How many attempts in a row may stall without receiving a byte before the retries end.
/// One stall can be a blip (a registry restarting, a proxy's full queue); a second in a row
/// means the registry takes requests and sends nothing, and each further attempt would cost
/// another stall timeout (30 s by default) for the same answer.
pub const STALLED_ATTEMPTS_LIMIT: u32 = 2;

/// How a transient failure ended an attempt, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// A reset or refused connection, a cut transfer, 408, 429, 5xx; `retry_after` is the
    /// registry's `Retry-After`, when it sent one.
    Error { retry_after: Option<Duration> },
    /// Nothing arrived for the stall timeout, and nothing had in this attempt: no answer to
    /// the request, or not one byte of the body.
    Stalled,
}

/// The retries of one request (or of one blob transfer, across its resumptions).
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    retries_done: u32,
    first_failure: Option<Instant>,
    /// Attempts that stalled, in a row (any other failure, or progress, resets it).
    stalled_in_a_row: u32,
}

/// Why no further attempt is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// `retries` attempts were made already.
    Count(u32),
    /// The next attempt would start after the time limit (a `Retry-After` may ask for that).
    Time(Duration),
    /// `attempts` in a row received nothing for the stall timeout.
    Stalled {
        attempts: u32,
        stall_timeout: Duration,
    },
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GiveUp::Count(n) => write!(f, "gave up after {} attempts", n + 1),
            GiveUp::Time(limit) => write!(
                f,
                "gave up: the next attempt would start more than {} after the first failure",
                crate::retry::seconds(*limit)
            ),
            GiveUp::Stalled {
                attempts,
                stall_timeout,
            } => write!(
                f,
                "gave up after {attempts} attempts in a row that received nothing for the stall timeout ({})",
                crate::retry::seconds(*stall_timeout)
            ),
        }
    }
}

impl Attempts {
    pub fn new(policy: RetryPolicy) -> Self {
        Attempts {
            policy,
            retries_done: 0,
            first_failure: None,
            stalled_in_a_row: 0,
        }
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// How many retries were made so far.
    pub fn retries(&self) -> u32 {
        self.retries_done
    }

    /// After a transient failure at `now`: how long to wait before the next attempt, or why
    /// there is none. A registry's `Retry-After` replaces the back-off when longer; the
    /// [`STALLED_ATTEMPTS_LIMIT`]th stall in a row ends the series.
    pub fn next_delay(
        &mut self,
        now: Instant,
        failed: Failed,
        unit: f64,
    ) -> Result<Duration, GiveUp> {
        let retry_after = match failed {
            Failed::Stalled => {
                self.stalled_in_a_row += 1;
                if self.stalled_in_a_row >= STALLED_ATTEMPTS_LIMIT {
                    return Err(GiveUp::Stalled {
                        attempts: self.stalled_in_a_row,
                        stall_timeout: self.policy.stall_timeout,
                    });
                }
                None
            }
            Failed::Error { retry_after } => {
                self.stalled_in_a_row = 0;
                retry_after
            }
        };
        if self.retries_done >= self.policy.retries {
            return Err(GiveUp::Count(self.retries_done));
        }
        let first = *self.first_failure.get_or_insert(now);
        let backoff = self.policy.jittered(self.retries_done, unit);
        let delay = retry_after.map_or(backoff, |asked| asked.max(backoff));
        if now.duration_since(first) + delay > self.policy.time_limit {
            return Err(GiveUp::Time(self.policy.time_limit));
        }
        self.retries_done += 1;
        Ok(delay)
    }

    /// A transfer made progress: its later failures start a new series of retries (a long
    /// download on a flaky link may be cut many times, as long as each resumption advances).
    pub fn progressed(&mut self) {
        self.retries_done = 0;
        self.first_failure = None;
        self.stalled_in_a_row = 0;
    }
}

/// `Retry-After` as seconds (`120`) or an HTTP date, as a wait from now.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // An HTTP-date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) is RFC 2822's form.
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = std::time::SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(when.timestamp()).ok()?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A duration as a person reads it: `1.5 s`, `250 ms`.
pub fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::from_config(&PullConfig::default())
    }

    const ERROR: Failed = Failed::Error { retry_after: None };

    fn after(seconds: u64) -> Failed {
        Failed::Error {
            retry_after: Some(Duration::from_secs(seconds)),
        }
    }

    #[test]
    fn the_default_backoff_doubles_from_one_second_to_thirty() {
        let p = policy();
        let ceilings: Vec<u64> = (0..7).map(|r| p.ceiling(r).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(p.ceiling(200), Duration::from_secs(30), "no overflow");
        assert_eq!(p.retries, 5);
        assert_eq!(p.stall_timeout, Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_ceiling() {
        let p = policy();
        for retry in 0..8 {
            let ceiling = p.ceiling(retry);
            assert_eq!(p.jittered(retry, 0.0), ceiling / 2);
            assert_eq!(p.jittered(retry, 1.0), ceiling);
            for _ in 0..100 {
                let d = p.jittered(retry, rand::random());
                assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} of {ceiling:?}");
            }
        }
        // Two clients failing together do not come back together.
        let spread: std::collections::BTreeSet<_> =
            (0..20).map(|_| p.jittered(3, rand::random())).collect();
        assert!(spread.len() > 10);
    }

    #[test]
    fn attempts_are_bounded_in_count() {
        let mut attempts = Attempts::new(policy());
        let now = Instant::now();
        let delays: Vec<Duration> = (0..5)
            .map(|_| attempts.next_delay(now, ERROR, 1.0).unwrap())
            .collect();
        assert_eq!(delays[0], Duration::from_secs(1));
        assert_eq!(delays[4], Duration::from_secs(16));
        assert_eq!(attempts.next_delay(now, ERROR, 1.0), Err(GiveUp::Count(5)));
        // Progress starts a new series.
        attempts.progressed();
        assert_eq!(
            attempts.next_delay(now, ERROR, 1.0),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn attempts_are_bounded_in_time_and_honour_retry_after() {
        let p = RetryPolicy {
            retries: 100,
            time_limit: Duration::from_secs(60),
            ..policy()
        };
        let mut attempts = Attempts::new(p);
        let start = Instant::now();
        // Retry-After longer than the back-off wins; shorter does not shorten it.
        assert_eq!(
            attempts.next_delay(start, after(7), 1.0),
            Ok(Duration::from_secs(7))
        );
        assert_eq!(
            attempts.next_delay(start, after(0), 1.0),
            Ok(Duration::from_secs(2))
        );
        // A Retry-After past the time limit ends the retries at once.
        assert_eq!(
            attempts.next_delay(start, after(3600), 1.0),
            Err(GiveUp::Time(Duration::from_secs(60)))
        );
        let late = start + Duration::from_secs(59);
        assert_eq!(
            attempts.next_delay(late, ERROR, 1.0),
            Err(GiveUp::Time(Duration::from_secs(60)))
        );
    }

    #[test]
    fn a_second_stall_in_a_row_ends_the_retries() {
        let mut attempts = Attempts::new(policy());
        // A fake clock: the attempts' times are given, nothing waits.
        let mut now = Instant::now();
        let mut fail = |failed: Failed| {
            now += Duration::from_secs(31);
            attempts.next_delay(now, failed, 1.0)
        };
        assert_eq!(fail(Failed::Stalled), Ok(Duration::from_secs(1)));
        let gave_up = fail(Failed::Stalled).unwrap_err();
        assert_eq!(
            gave_up,
            GiveUp::Stalled {
                attempts: 2,
                stall_timeout: Duration::from_secs(30)
            }
        );
        assert_eq!(
            gave_up.to_string(),
            "gave up after 2 attempts in a row that received nothing for the stall timeout (30.0 s)"
        );
    }

    #[test]
    fn stalls_apart_or_after_progress_do_not_end_the_retries() {
        let mut attempts = Attempts::new(policy());
        let now = Instant::now();
        assert!(attempts.next_delay(now, Failed::Stalled, 1.0).is_ok());
        // Another failure in between: the registry answered something.
        assert!(attempts.next_delay(now, ERROR, 1.0).is_ok());
        assert!(attempts.next_delay(now, Failed::Stalled, 1.0).is_ok());
        // Bytes arrived: a new series, whose first stall is a first one again.
        attempts.progressed();
        assert!(attempts.next_delay(now, Failed::Stalled, 1.0).is_ok());
        assert!(matches!(
            attempts.next_delay(now, Failed::Stalled, 1.0),
            Err(GiveUp::Stalled { attempts: 2, .. })
        ));
        // Without retries, a stall ends it as any failure does.
        let mut none = Attempts::new(RetryPolicy {
            retries: 0,
            ..policy()
        });
        assert_eq!(
            none.next_delay(now, Failed::Stalled, 1.0),
            Err(GiveUp::Count(0))
        );
    }

    #[test]
    fn retry_after_forms() {
        // 1994-11-06 08:49:37 UTC
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:07 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:48:07 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
