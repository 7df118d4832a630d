//! `podrun wait --for ready|completed|deleted` (kubectl wait, with `play --wait-ready`'s exit
//! codes) and `play --owner-pid`: pods that go when their owner ends, even by SIGKILL
//! (issue 18).

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{stdout, TestEnv};

/// A pod whose container ignores SIGTERM and becomes ready after `ready_after` seconds (a
/// readiness probe on a file it creates), then runs `then` (a shell command); `grace`:
/// terminationGracePeriodSeconds.
fn pod(name: &str, policy: &str, grace: u32, ready_after: u32, then: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: {grace}
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "trap '' TERM; sleep {ready_after}; touch /tmp/ready; {then}"]
    readinessProbe:
      exec: {{command: ["test", "-f", "/tmp/ready"]}}
      periodSeconds: 1
"#
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `podrun ARGS` and returns its output and how long it took.
fn timed(env: &TestEnv, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = env.podrun(args);
    (output, started.elapsed())
}

#[test]
fn wait_for_ready_completed_and_deleted() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "w.yaml", &pod("w", "Never", 1, 2, "sleep 8; exit 0"));
    let _down = DownOnDrop(&env, "w".into());
    env.podrun_ok(&["play", "--network", "none", &file]);

    // Ready: play returned before the probe passed; wait returns once it has.
    let (out, took) = timed(&env, &["wait", "w", "--for", "ready", "--timeout", "30s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod default/w condition met\n");
    assert_eq!(pod_json(&env, "w")["ready"], "1/1", "waited {took:?}");

    // Not completed within 1 s: the timeout's exit code, naming what is awaited.
    let out = env.podrun(&["wait", "w", "--for", "completed", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out waiting for the condition")
            && stderr(&out).contains("pod default/w: phase running"),
        "{}",
        stderr(&out)
    );

    // Completed: the container exits 0 (restartPolicy Never).
    let out = env.podrun(&["wait", "w", "--for", "completed", "--timeout", "30s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pod_json(&env, "w")["state"]["phase"], "Succeeded");
    // A completed pod can no longer become ready.
    let out = env.podrun(&["wait", "w", "--for", "ready", "--timeout", "5s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("before the pod was ready"),
        "{}",
        stderr(&out)
    );

    // Deleted: wait while `down` runs (kubectl's spelling, `delete`, too).
    std::thread::scope(|scope| {
        let waiter =
            scope.spawn(|| env.podrun(&["wait", "w", "--for", "delete", "--timeout", "30s"]));
        std::thread::sleep(Duration::from_millis(500));
        env.podrun_ok(&["down", "w"]);
        let out = waiter.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "pod default/w condition met\n");
    });
    // A pod that does not exist is deleted already; it never becomes ready.
    env.podrun_ok(&["wait", "w", "--for", "deleted"]);
    let out = env.podrun(&["wait", "w", "--for", "ready"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pod w not found in any namespace"),
        "{}",
        stderr(&out)
    );
    assert_nothing_left(&env);
}

#[test]
fn wait_for_completed_fails_with_a_failed_pod() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "f.yaml", &pod("f", "Never", 1, 0, "exit 3"));
    let _down = DownOnDrop(&env, "f".into());
    env.podrun(&["play", "--network", "none", &file]);
    let out = env.podrun(&["wait", "f", "--for", "completed", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pod default/f: the pod failed: container `main` exited with code 3"),
        "{}",
        stderr(&out)
    );
    env.podrun_ok(&["down", "f"]);
    assert_nothing_left(&env);
}

/// `sleep 1000` as the test user: the owner of the pods.
fn owner(env: &TestEnv) -> std::process::Child {
    env.command("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .expect("start sleep")
}

#[test]
fn pods_go_when_their_owner_is_killed() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "o.yaml", &pod("o", "Always", 2, 0, "exec sleep 1000"));
    let _down = DownOnDrop(&env, "o".into());
    let mut sleeper = owner(&env);
    let pid = sleeper.id().to_string();
    env.podrun_ok(&["play", "--network", "none", "--owner-pid", &pid, &file]);

    // ps -o wide, describe and the JSON show the owner.
    let wide = env.podrun_ok(&["ps", "-o", "wide"]);
    let row = wide.lines().find(|l| l.contains(" o ")).expect(&wide);
    assert!(wide.lines().next().unwrap().ends_with("OWNER"), "{wide}");
    assert!(row.ends_with(&format!("{pid} (sleep)")), "{wide}");
    let describe = env.podrun_ok(&["describe", "o"]);
    assert!(
        describe
            .lines()
            .any(|l| l.starts_with("Owner:") && l.ends_with(&format!("pid {pid} (sleep)"))),
        "{describe}"
    );
    assert_eq!(
        pod_json(&env, "o")["state"]["owner"]["pid"].to_string(),
        pid
    );

    // SIGKILL: the owner runs no cleanup. The pod goes within its grace period (2 s: its
    // container ignores SIGTERM).
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let out = env.podrun(&["wait", "o", "--for", "deleted", "--timeout", "10s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_left(&env);
}

#[test]
fn the_owners_end_stops_the_pods_with_the_grace_period_given() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "g.yaml",
        &pod("g", "Always", 30, 0, "exec sleep 1000"),
    );
    let _down = DownOnDrop(&env, "g".into());
    let mut sleeper = owner(&env);
    let pid = sleeper.id().to_string();
    let args = [
        "play",
        "--network",
        "none",
        "--owner-pid",
        &pid,
        "--grace-period",
        "1",
        &file,
    ];
    env.podrun_ok(&args);
    wait_for_pod(&env, "g", 30, "running", |json| json["status"] == "Running");
    let killed = Instant::now();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // The container ignores SIGTERM: it goes with SIGKILL after 1 s, not the pod's 30 s.
    let out = env.podrun(&["wait", "g", "--for", "deleted", "--timeout", "15s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "{:?}",
        killed.elapsed()
    );
    assert_nothing_left(&env);

    // An owner that is no process: play refuses before anything starts.
    let err = env.podrun_err(&["play", "--network", "none", "--owner-pid", &pid, &file]);
    assert!(
        err.contains(&format!("--owner-pid {pid}: no such process")),
        "{err}"
    );
    assert_nothing_left(&env);
}
