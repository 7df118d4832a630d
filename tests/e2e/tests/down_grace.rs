//! A stop's own grace period (issue 18, "Fast down"): `down --grace-period N` and `--now`
//! (kubectl delete's), the same options on `play --replace` and `play --wait`'s Ctrl-C, a
//! second Ctrl-C that kills at once, and what a slow `down` says it waits for. The pods'
//! containers ignore SIGTERM, as a pid-1 shell without a handler does.

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{log_output, podrun_bin, TestEnv};

/// A pod whose container ignores SIGTERM, with `grace` as terminationGracePeriodSeconds
/// (`None`: Kubernetes' default, 30 s), and a second container whose preStop hook leaves a
/// mark in the home's `marks/` (hostPath) and then sleeps.
fn stubborn_pod(env: &TestEnv, name: &str, grace: Option<u64>) -> String {
    env.write_home_file("marks/.keep", "");
    let marks = env.home().join("marks");
    let grace = grace
        .map(|g| format!("  terminationGracePeriodSeconds: {g}\n"))
        .unwrap_or_default();
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
{grace}  containers:
  - name: stubborn
    image: busybox
    command: ["sh", "-c", "trap '' TERM; echo started; sleep 1000"]
  - name: hooked
    image: busybox
    command: ["sh", "-c", "trap '' TERM; sleep 1000"]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "touch /marks/{name}-prestop; sleep 100"]
    volumeMounts: [{{name: marks, mountPath: /marks}}]
  volumes:
  - name: marks
    hostPath: {{path: {marks}, type: Directory}}
"#,
        marks = marks.display()
    );
    write_manifest(env, &format!("{name}.yaml"), &yaml)
}

/// Plays the pod and waits until both its containers run.
fn play_running(env: &TestEnv, file: &str, name: &str) {
    env.podrun_ok(&["play", "--network", "none", file]);
    wait_for_pod(env, name, 30, "both containers running", |json| {
        json["state"]["containers"]
            .as_array()
            .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["state"] == "running"))
    });
}

/// Runs podrun and returns its output and how long it took.
fn timed(env: &TestEnv, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let output = env.podrun(args);
    (output, started.elapsed())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn down_grace_period_0_kills_at_once_without_pre_stop_hooks() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "stubborn", None);
    let _down = DownOnDrop(&env, file.clone());
    play_running(&env, &file, "stubborn");
    let (output, took) = timed(&env, &["down", "--grace-period", "0", "stubborn"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("pod default/stubborn removed"),
        "{output:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "down --grace-period 0 took {took:?} (the pod's grace period is 30 s)"
    );
    assert!(
        !env.home().join("marks/stubborn-prestop").exists(),
        "grace period 0 runs no preStop hook"
    );
    assert!(
        !stderr(&output).contains("waiting"),
        "nothing to wait for: {}",
        stderr(&output)
    );
    assert_nothing_left(&env);
}

#[test]
fn down_grace_period_0_on_slirp4netns_frees_the_published_port_before_it_returns() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "published", None);
    let _down = DownOnDrop(&env, file.clone());
    let port = podrun_e2e::net::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    env.podrun_ok(&["play", "--network", "slirp4netns", "-p", &publish, &file]);
    wait_for_pod(&env, "published", 30, "both containers running", |json| {
        json["state"]["containers"]
            .as_array()
            .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["state"] == "running"))
    });
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_err(),
        "slirp4netns holds the port"
    );
    let (output, took) = timed(&env, &["down", "--grace-period", "0", "published"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The network helper was killed with the containers, and reaped before down returned.
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the port is free once down returns"
    );
    assert!(took < Duration::from_secs(5), "down took {took:?}");
    assert_nothing_left(&env);
}

#[test]
fn down_now_gives_the_containers_one_second() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "hasty", None);
    let _down = DownOnDrop(&env, file.clone());
    play_running(&env, &file, "hasty");
    let (output, took) = timed(&env, &["down", "--now", &file]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The preStop hook gets the second, then the stop signal its 2 s, as the kubelet's.
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "down --now took {took:?}"
    );
    assert!(
        env.home().join("marks/hasty-prestop").exists(),
        "a grace period runs the preStop hook"
    );
    assert_nothing_left(&env);
}

#[test]
fn a_slow_down_says_after_two_seconds_what_it_waits_for() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "patient", Some(4));
    let _down = DownOnDrop(&env, file.clone());
    play_running(&env, &file, "patient");
    let (output, took) = timed(&env, &["down", "patient"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The pod's own grace period: SIGKILL after 4 s (6 s with the 2 s after the preStop hook).
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(12),
        "down took {took:?}"
    );
    let said = stderr(&output);
    assert!(
        said.contains("pod default/patient: waiting up to 4s for containers stubborn, hooked (terminationGracePeriodSeconds); --grace-period 0 stops them now"),
        "{said}"
    );
    assert_eq!(
        said.matches("waiting up to").count(),
        1,
        "said once: {said}"
    );
    assert_nothing_left(&env);
}

#[test]
fn a_second_down_with_grace_period_0_cuts_a_slow_one_short() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "overtaken", None);
    let _down = DownOnDrop(&env, file.clone());
    play_running(&env, &file, "overtaken");
    let started = Instant::now();
    let slow = spawn_podrun(&env, &["down", "overtaken"]);
    wait_for_pod(&env, "overtaken", 10, "terminating", |json| {
        json["state"]["terminating"] == true
    });
    // The first down holds the pod's lock: the second one's request goes to the supervisor
    // at once all the same.
    let (output, _) = timed(&env, &["down", "--grace-period", "0", "overtaken"]);
    let slow = finish(slow, Duration::from_secs(15));
    assert!(slow.status.success(), "{}", stderr(&slow));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("pod default/overtaken removed"),
        "{output:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 30 s grace period was cut short: {:?}",
        started.elapsed()
    );
    assert_nothing_left(&env);
}

#[test]
fn play_replace_grace_period_0_replaces_at_once() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "renewed", None);
    let _down = DownOnDrop(&env, file.clone());
    play_running(&env, &file, "renewed");
    let before = pod_json(&env, "renewed")["state"]["supervisor_pid"].clone();
    let (output, took) = timed(
        &env,
        &[
            "play",
            "--replace",
            "--grace-period",
            "0",
            "--network",
            "none",
            &file,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("replacing pod default/renewed"));
    assert!(
        took < Duration::from_secs(5),
        "play --replace took {took:?}"
    );
    let after = pod_json(&env, "renewed");
    assert_ne!(
        after["state"]["supervisor_pid"], before,
        "a new pod: {after}"
    );
    env.podrun_ok(&["down", "--grace-period", "0", "renewed"]);
    assert_nothing_left(&env);
}

fn spawn_podrun(env: &TestEnv, args: &[&str]) -> Child {
    env.command(podrun_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start podrun")
}

/// Waits up to `within` for the child to end; its output.
fn finish(mut child: Child, within: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > within {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            log_output("podrun (killed: it went on)", &output);
            panic!("podrun went on for {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    log_output("podrun", &output);
    output
}

fn sigint(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

#[test]
fn play_wait_a_second_ctrl_c_kills_at_once() {
    let env = TestEnv::new();
    let file = stubborn_pod(&env, "interrupted", None);
    let _down = DownOnDrop(&env, file.clone());
    let play = spawn_podrun(&env, &["play", "--wait", "--network", "none", &file]);
    let state = runtime_dir(&env, "interrupted").join("state.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !state.exists() {
        assert!(Instant::now() < deadline, "the pod never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_pod(&env, "interrupted", 30, "both containers running", |json| {
        json["state"]["containers"]
            .as_array()
            .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["state"] == "running"))
    });
    let first = Instant::now();
    sigint(&play);
    wait_for_pod(&env, "interrupted", 10, "terminating", |json| {
        json["state"]["terminating"] == true
    });
    // Past the 2 s after which the removal says what it waits for.
    std::thread::sleep(Duration::from_millis(2500));
    sigint(&play);
    let output = finish(play, Duration::from_secs(20));
    let took = first.elapsed();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        took < Duration::from_secs(8),
        "the second Ctrl-C did not kill at once: {took:?}"
    );
    let said = stderr(&output);
    assert!(said.contains("interrupted: removing the pods"), "{said}");
    assert!(
        said.contains("pod default/interrupted: waiting up to 30s for containers stubborn, hooked (terminationGracePeriodSeconds); Ctrl-C again stops them now"),
        "{said}"
    );
    assert_nothing_left(&env);
}

#[test]
fn grace_periods_are_whole_seconds_and_now_excludes_them() {
    let env = TestEnv::new();
    let said = env.podrun_err(&["down", "--grace-period", "-1", "web"]);
    assert!(
        said.contains("invalid grace period `-1`") && said.contains("0 or more"),
        "{said}"
    );
    let said = env.podrun_err(&["down", "--grace-period", "soon", "web"]);
    assert!(said.contains("invalid grace period `soon`"), "{said}");
    let said = env.podrun_err(&["down", "--now", "--grace-period", "0", "web"]);
    assert!(said.contains("cannot be used with"), "{said}");
    let said = env.podrun_err(&["play", "--grace-period", "x", "pod.yaml"]);
    assert!(said.contains("invalid grace period `x`"), "{said}");
}
