//! `--grace-period N` and `--now`, kubectl delete's options, for the commands that stop pods
//! (`down`, and `play` for the pods it removes), and what a stop says when it takes a while.

use std::time::Duration;

use clap::Args;
use podrun_pod::remove::{Stop, Waiting};

#[derive(Debug, Clone, Copy, Default, Args)]
pub struct StopArgs {
    /// Seconds each container gets to stop (its preStop hook, then its stop signal) before
    /// SIGKILL, instead of the pod's terminationGracePeriodSeconds; 0 kills every container
    /// at once, without preStop hooks (kubectl delete's --grace-period).
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_grace_period,
        allow_negative_numbers = true
    )]
    pub grace_period: Option<u64>,

    /// Stop with a grace period of 1 second (kubectl delete's --now).
    #[arg(long, conflicts_with = "grace_period")]
    pub now: bool,
}

/// `--grace-period`'s value: a whole number of seconds, 0 or more.
fn parse_grace_period(text: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|_| {
        format!(
            "invalid grace period `{text}`: expected a whole number of seconds, 0 or more (0 kills at once; leave the option out for the pod's terminationGracePeriodSeconds)"
        )
    })
}

impl StopArgs {
    /// The grace period asked for, in seconds; `None`: the pod's own.
    pub fn grace(&self) -> Option<u64> {
        if self.now {
            Some(1)
        } else {
            self.grace_period
        }
    }

    /// The option that set the grace period, as a slow stop names it.
    fn source(&self) -> &'static str {
        if self.now {
            "--now"
        } else {
            "--grace-period"
        }
    }

    /// A stop with these options, `extra` after the grace period, that says after 2 s what
    /// it waits for (ending with `hint`, what stops it at once) and is cut short when
    /// `kill_now` says so.
    pub fn stop<'a>(
        &self,
        extra: Duration,
        on_slow: &'a dyn Fn(&Waiting),
        kill_now: &'a dyn Fn() -> bool,
    ) -> Stop<'a> {
        Stop {
            grace: self.grace(),
            extra,
            on_slow,
            kill_now,
        }
    }

    /// What a stop of pod `pod` says once it has taken [`podrun_pod::remove::SLOW_STOP`].
    pub fn waiting_message(&self, pod: &str, waiting: &Waiting, hint: &str) -> String {
        waiting_message(pod, waiting, self.source(), hint)
    }
}

/// What a slow stop of pod `pod` waits for: the containers still running, the grace period
/// and where it comes from (`terminationGracePeriodSeconds`, else `source`), and `hint`,
/// what stops them at once (e.g. `--grace-period 0`).
pub fn waiting_message(pod: &str, waiting: &Waiting, source: &str, hint: &str) -> String {
    let source = if waiting.pod_grace {
        "terminationGracePeriodSeconds"
    } else {
        source
    };
    let (what, them) = match waiting.running.as_slice() {
        [] => return format!("pod {pod}: waiting for its supervisor to remove it"),
        [one] => (format!("container {one}"), "it"),
        many => (format!("containers {}", many.join(", ")), "them"),
    };
    if waiting.grace_seconds == 0 {
        return format!(
            "pod {pod}: waiting up to {}s for {what} to end after SIGKILL",
            waiting.left_seconds
        );
    }
    format!(
        "pod {pod}: waiting up to {}s for {what} ({source}); {hint} stops {them} now",
        waiting.grace_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        stop: StopArgs,
    }

    fn parse(args: &[&str]) -> Result<StopArgs, String> {
        let args = std::iter::once("down").chain(args.iter().copied());
        Command::try_parse_from(args)
            .map(|c| c.stop)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn grace_periods_from_the_options() {
        assert_eq!(parse(&[]).unwrap().grace(), None);
        assert_eq!(parse(&["--grace-period", "0"]).unwrap().grace(), Some(0));
        assert_eq!(parse(&["--grace-period=45"]).unwrap().grace(), Some(45));
        assert_eq!(parse(&["--now"]).unwrap().grace(), Some(1));
        for bad in ["-1", "1.5", "soon", ""] {
            let error = parse(&["--grace-period", bad]).unwrap_err();
            assert!(
                error.contains(&format!("invalid grace period `{bad}`"))
                    && error.contains("0 or more"),
                "{bad}: {error}"
            );
        }
        let error = parse(&["--now", "--grace-period", "3"]).unwrap_err();
        assert!(error.contains("cannot be used with"), "{error}");
    }

    fn waiting(running: &[&str], grace_seconds: u64, pod_grace: bool) -> Waiting {
        Waiting {
            running: running.iter().map(|s| s.to_string()).collect(),
            grace_seconds,
            pod_grace,
            left_seconds: 8,
        }
    }

    #[test]
    fn a_slow_stop_says_what_it_waits_for() {
        let args = StopArgs::default();
        assert_eq!(
            args.waiting_message(
                "default/web",
                &waiting(&["collect"], 30, true),
                "--grace-period 0"
            ),
            "pod default/web: waiting up to 30s for container collect (terminationGracePeriodSeconds); --grace-period 0 stops it now"
        );
        assert_eq!(
            args.waiting_message(
                "default/web",
                &waiting(&["a", "b"], 30, true),
                "Ctrl-C again"
            ),
            "pod default/web: waiting up to 30s for containers a, b (terminationGracePeriodSeconds); Ctrl-C again stops them now"
        );
        let asked = parse(&["--grace-period", "10"]).unwrap();
        assert_eq!(
            asked.waiting_message("t/web", &waiting(&["a"], 10, false), "--grace-period 0"),
            "pod t/web: waiting up to 10s for container a (--grace-period); --grace-period 0 stops it now"
        );
        let now = parse(&["--now"]).unwrap();
        assert_eq!(
            now.waiting_message("t/web", &waiting(&["a"], 1, false), "--grace-period 0"),
            "pod t/web: waiting up to 1s for container a (--now); --grace-period 0 stops it now"
        );
        assert_eq!(
            args.waiting_message("t/web", &waiting(&["a"], 0, false), "--grace-period 0"),
            "pod t/web: waiting up to 8s for container a to end after SIGKILL"
        );
        assert_eq!(
            args.waiting_message("t/web", &waiting(&[], 30, true), "--grace-period 0"),
            "pod t/web: waiting for its supervisor to remove it"
        );
    }
}
