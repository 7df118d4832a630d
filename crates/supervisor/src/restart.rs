//! What becomes of a container that ended, as the kubelet decides it: restarted (at once or
//! after the crash-loop back-off, [`crate::backoff`]) or left exited, by the container's role
//! in the pod, the pod's `restartPolicy` and what the pod is doing. The supervisor acts on the
//! answer ([`after_exit`]).
//!
//! * App containers: `Always` restarts them, `OnFailure` when they failed (non-zero exit),
//!   `Never` never (the kubelet's `ShouldContainerBeRestarted`).
//! * Init containers: restarted when they failed, unless the policy is `Never`, in which case
//!   the pod fails.
//! * Native sidecars (init containers with `restartPolicy: Always`): restarted until every
//!   app container has ended for good.
//! * Nothing is restarted while the pod stops, or once it failed.

use std::time::{Duration, Instant};

use podrun_pod_model::plan::RestartPolicy;

use crate::backoff::Backoff;

/// What a container is to the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    App,
    Init,
    Sidecar,
}

/// What the pod is doing when a container ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodCondition {
    /// The pod is being stopped.
    pub stopping: bool,
    /// The pod has failed (an init container under `Never`, its active deadline).
    pub failed: bool,
    /// Every app container has ended for good.
    pub apps_done: bool,
}

/// What becomes of a container that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Restarted at `at`; `backoff` is the wait when it is backing off (the kubelet's
    /// `CrashLoopBackOff`), `None` when it is restarted at once.
    Restart {
        at: Instant,
        backoff: Option<Duration>,
    },
    /// Stays exited, with `reason` (`Completed`, `Error`). `fails_pod`: an init container
    /// failed and is not retried, so the pod fails.
    Exit {
        reason: &'static str,
        fails_pod: bool,
    },
}

/// Whether a container of `role` that ended with `code` is started again.
pub fn restarts(role: Role, policy: RestartPolicy, code: i32, pod: PodCondition) -> bool {
    !pod.stopping
        && !pod.failed
        && match role {
            Role::Sidecar => !pod.apps_done,
            // The kubelet retries a failed init container under Always and OnFailure.
            Role::Init => code != 0 && policy != RestartPolicy::Never,
            Role::App => policy.restarts(code),
        }
}

/// What becomes of a container of `role` that ended with `code` at `finished`, whose
/// back-off is `backoff`.
pub fn after_exit(
    role: Role,
    policy: RestartPolicy,
    code: i32,
    pod: PodCondition,
    backoff: &Backoff,
    finished: Instant,
) -> AfterExit {
    if restarts(role, policy, code, pod) {
        let at = backoff.restart_at(finished);
        AfterExit::Restart {
            at,
            backoff: (at > finished).then(|| backoff.current()),
        }
    } else {
        AfterExit::Exit {
            reason: if code == 0 { "Completed" } else { "Error" },
            fails_pod: role == Role::Init && code != 0 && !pod.stopping,
        }
    }
}

/// A backing-off container's message, as the kubelet words it.
pub fn backoff_message(delay: Duration, container: &str, pod: &str) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod}",
        format_duration(delay)
    )
}

/// `10s`, `2m40s`, `5m0s`, as Go prints a duration in the kubelet's messages.
fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        let text = format!("{secs:.1}");
        format!("{}s", text.trim_end_matches(".0"))
    } else {
        let whole = d.as_secs();
        format!("{}m{}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: PodCondition = PodCondition {
        stopping: false,
        failed: false,
        apps_done: false,
    };

    #[test]
    fn app_containers_follow_the_restart_policy() {
        use RestartPolicy::*;
        for (policy, code, restarted) in [
            (Always, 0, true),
            (Always, 1, true),
            (OnFailure, 0, false),
            (OnFailure, 137, true),
            (Never, 0, false),
            (Never, 1, false),
        ] {
            assert_eq!(
                restarts(Role::App, policy, code, RUNNING),
                restarted,
                "{policy} exit {code}"
            );
        }
    }

    #[test]
    fn failed_init_containers_are_retried_unless_never_which_fails_the_pod() {
        let backoff = Backoff::new(1.0);
        let t0 = Instant::now();
        let exit = |policy, code| after_exit(Role::Init, policy, code, RUNNING, &backoff, t0);
        assert_eq!(
            exit(RestartPolicy::Always, 1),
            AfterExit::Restart {
                at: t0,
                backoff: None
            }
        );
        assert!(matches!(
            exit(RestartPolicy::OnFailure, 1),
            AfterExit::Restart { .. }
        ));
        assert_eq!(
            exit(RestartPolicy::Never, 1),
            AfterExit::Exit {
                reason: "Error",
                fails_pod: true
            }
        );
        assert_eq!(
            exit(RestartPolicy::Always, 0),
            AfterExit::Exit {
                reason: "Completed",
                fails_pod: false
            },
            "a succeeded init container is done"
        );
        // Stopped with the pod: it does not fail it.
        let stopping = PodCondition {
            stopping: true,
            ..RUNNING
        };
        assert_eq!(
            after_exit(
                Role::Init,
                RestartPolicy::Never,
                143,
                stopping,
                &backoff,
                t0
            ),
            AfterExit::Exit {
                reason: "Error",
                fails_pod: false
            }
        );
    }

    #[test]
    fn sidecars_run_until_the_app_containers_are_done() {
        let policy = RestartPolicy::Never;
        assert!(restarts(Role::Sidecar, policy, 0, RUNNING));
        assert!(restarts(Role::Sidecar, policy, 1, RUNNING));
        let done = PodCondition {
            apps_done: true,
            ..RUNNING
        };
        assert!(!restarts(Role::Sidecar, policy, 1, done));
    }

    #[test]
    fn nothing_restarts_while_the_pod_stops_or_once_it_failed() {
        for pod in [
            PodCondition {
                stopping: true,
                ..RUNNING
            },
            PodCondition {
                failed: true,
                ..RUNNING
            },
        ] {
            for role in [Role::App, Role::Init, Role::Sidecar] {
                assert!(!restarts(role, RestartPolicy::Always, 1, pod), "{role:?}");
            }
        }
    }

    /// A container that crashes right after each start: restarted at once, then after 10,
    /// 20, 40 s..., each wait announced as the kubelet's CrashLoopBackOff message.
    #[test]
    fn a_crash_loop_backs_off_on_a_fake_clock() {
        let mut backoff = Backoff::new(1.0);
        let mut now = Instant::now();
        let mut waits = Vec::new();
        let mut messages = Vec::new();
        for _ in 0..8 {
            let finished = now;
            match after_exit(
                Role::App,
                RestartPolicy::Always,
                1,
                RUNNING,
                &backoff,
                finished,
            ) {
                AfterExit::Restart { at, backoff: delay } => {
                    waits.push((at - finished).as_secs());
                    if let Some(delay) = delay {
                        assert_eq!(delay, at - finished);
                        messages.push(backoff_message(delay, "app", "default/web"));
                    }
                    now = at;
                }
                other => panic!("{other:?}"),
            }
            backoff.restarted(finished, now);
            now += Duration::from_millis(500);
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            messages[..2],
            [
                "back-off 10s restarting failed container=app pod=default/web",
                "back-off 20s restarting failed container=app pod=default/web"
            ]
        );
        assert_eq!(
            messages[4],
            "back-off 2m40s restarting failed container=app pod=default/web"
        );
    }

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(format_duration(Duration::from_secs(160)), "2m40s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
    }
}
