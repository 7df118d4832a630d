//! The kubelet's container lifecycle, run by podrun as the ordinary test user: restart
//! policies with the crash-loop back-off, init containers, native sidecars, lifecycle hooks,
//! stop signals and grace periods, and `podrun describe`.
//!
//! Tests of crash loops scale the back-off down with `PODRUN_BACKOFF_SCALE` (documented in
//! the README); one test checks the real delays.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{log_output, podrun_bin, TestEnv};

/// `podrun play FILE` with the back-off scaled by `scale`.
fn play_scaled(env: &TestEnv, file: &str, scale: &str) -> Output {
    let output = env
        .command(podrun_bin())
        .env("PODRUN_BACKOFF_SCALE", scale)
        .args(["play", file])
        .output()
        .expect("run podrun");
    log_output(
        &format!("PODRUN_BACKOFF_SCALE={scale} podrun play {file}"),
        &output,
    );
    output
}

fn container<'a>(json: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    json["state"][list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {list} {name} in {json:#}"))
}

fn restarts(json: &serde_json::Value, name: &str) -> u64 {
    container(json, "containers", name)["restart_count"]
        .as_u64()
        .unwrap()
}

/// A directory of the test user's home, for hostPath volumes that outlive the pod.
fn host_dir(env: &TestEnv, name: &str) -> PathBuf {
    env.write_home_file(&format!("{name}/.keep"), "");
    env.home().join(name)
}

fn policy_pod(name: &str, policy: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  containers:
  - name: ok
    image: busybox
    command: ["sh", "-c", "echo ran; exit 0"]
  - name: bad
    image: busybox
    command: ["sh", "-c", "echo ran; exit 1"]
"#
    )
}

#[test]
fn restart_policies_restart_and_end_containers_as_kubernetes_does() {
    let env = TestEnv::new();
    let yaml = [
        policy_pod("never", "Never"),
        policy_pod("onfailure", "OnFailure"),
        policy_pod("always", "Always"),
    ]
    .join("---\n");
    let file = write_manifest(&env, "policies.yaml", &yaml);
    // Back-off 0.5 s, 1 s, 2 s...
    let out = play_scaled(&env, &file, "0.05");
    assert!(out.status.success());
    let _down = DownOnDrop(&env, file.clone());

    // Never: both end for good; kubectl shows the first container by name (bad): Error.
    let never = wait_for_pod(&env, "never", 30, "never ends", |j| {
        j["state"]["phase"] == "Failed"
    });
    assert_eq!(never["status"], "Error", "{never:#}");
    let ok = container(&never, "containers", "ok");
    assert_eq!(
        (ok["state"].as_str(), ok["reason"].as_str()),
        (Some("exited"), Some("Completed"))
    );
    let bad = container(&never, "containers", "bad");
    assert_eq!(
        (bad["exit_code"].as_i64(), bad["reason"].as_str()),
        (Some(1), Some("Error"))
    );
    assert_eq!(never["restarts"], 0);

    // OnFailure: ok stays Completed, bad is restarted again and again.
    let onfailure = wait_for_pod(&env, "onfailure", 30, "bad restarted twice", |j| {
        restarts(j, "bad") >= 2
    });
    assert_eq!(restarts(&onfailure, "ok"), 0, "{onfailure:#}");
    assert_eq!(
        container(&onfailure, "containers", "ok")["reason"],
        "Completed"
    );
    assert_eq!(onfailure["state"]["phase"], "Running");

    // Always: both are restarted, and the pod shows CrashLoopBackOff while backing off.
    wait_for_pod(&env, "always", 30, "both restarted twice", |j| {
        restarts(j, "ok") >= 2 && restarts(j, "bad") >= 2
    });
    let looping = wait_for_pod(&env, "always", 30, "CrashLoopBackOff", |j| {
        j["status"] == "CrashLoopBackOff"
    });
    let waiting = ["ok", "bad"]
        .iter()
        .map(|n| container(&looping, "containers", n))
        .find(|c| c["reason"] == "CrashLoopBackOff")
        .expect("a container in back-off");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off "),
        "{waiting:#}"
    );
    let ps = env.podrun_ok(&["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("never ") && l.contains("Error")),
        "{ps}"
    );
    // The logs keep every run.
    let log = env.podrun_ok(&["logs", "always", "-c", "bad"]);
    assert!(log.matches("ran").count() >= 3, "{log}");
    down_and_check(&env, &file, &["never", "onfailure", "always"]);
}

#[test]
fn the_real_back_off_restarts_at_once_then_waits_10_s_then_20_s() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "crash.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: crash
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: crash
    image: busybox
    command: ["sh", "-c", "exit 1"]
"#,
    );
    let start = Instant::now();
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    // The moment each restart is seen.
    let mut seen: Vec<Instant> = Vec::new();
    let mut back_off_seen = false;
    let deadline = Instant::now() + Duration::from_secs(70);
    while seen.len() < 3 {
        let json = pod_json(&env, "crash");
        let count = restarts(&json, "crash") as usize;
        while seen.len() < count {
            seen.push(Instant::now());
        }
        back_off_seen |= json["status"] == "CrashLoopBackOff";
        assert!(
            Instant::now() < deadline,
            "restarts seen: {}: {json:#}",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The kubelet restarts at once the first time (no back-off entry yet), then waits
    // 10 s, then 20 s (the container itself runs for a few milliseconds).
    let first = seen[0] - start;
    let second = seen[1] - seen[0];
    let third = seen[2] - seen[1];
    eprintln!("restarts after {first:?}, then {second:?}, then {third:?}");
    assert!(
        first < Duration::from_secs(8),
        "first restart after {first:?}"
    );
    assert!(
        second >= Duration::from_secs(9) && second < Duration::from_secs(16),
        "second restart {second:?} after the first"
    );
    assert!(
        third >= Duration::from_secs(19) && third < Duration::from_secs(28),
        "third restart {third:?} after the second"
    );
    assert!(back_off_seen, "the pod never showed CrashLoopBackOff");
    down_and_check(&env, &file, &["crash"]);
}

#[test]
fn init_containers_run_in_order_before_the_app_containers() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "init.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: init
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: work
    emptyDir: {}
  initContainers:
  - name: first
    image: busybox
    command: ["sh", "-c", "sleep 1; echo first >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: busybox
    command: ["sh", "-c", "test -f /work/order && echo second >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo app >> /work/order; cat /work/order; exec sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
"#,
    );
    // play returns once the app container runs, after the init containers.
    let out = env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let row = out.lines().find(|l| l.starts_with("init ")).expect(&out);
    assert!(row.contains("1/1") && row.contains("Running"), "{out}");
    let log = wait_for_logs(&env, &["init", "-c", "app"], &["app"]);
    assert_eq!(log, "first\nsecond\napp\n");
    let json = pod_json(&env, "init");
    for name in ["first", "second"] {
        let c = container(&json, "init_containers", name);
        assert_eq!(
            (c["state"].as_str(), c["exit_code"].as_i64()),
            (Some("exited"), Some(0))
        );
        assert_eq!(c["reason"], "Completed");
    }
    assert_eq!(json["ready"], "1/1", "init containers do not count");
    assert_eq!(env.podrun_ok(&["logs", "init", "-c", "second"]), "");
    // describe lists both kinds, and the events of their starts.
    let text = env.podrun_ok(&["describe", "init"]);
    for wanted in [
        "Init Containers:",
        "  first:",
        "Containers:",
        "  app:",
        "Reason:",
        "Completed",
        "Events:",
        "Started container first",
        "Started container app",
    ] {
        assert!(text.contains(wanted), "describe lacks {wanted:?}:\n{text}");
    }
    let described: serde_json::Value =
        serde_json::from_str(&env.podrun_ok(&["describe", "init", "-o", "json"])).unwrap();
    let reasons: Vec<&str> = described["x-podrun"]["state"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"Pulled") && reasons.contains(&"Created"),
        "{reasons:?}"
    );
    down_and_check(&env, &file, &["init"]);
}

fn failing_init_pod(name: &str, policy: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: setup
    image: busybox
    command: ["sh", "-c", "echo setting up; exit 3"]
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
"#
    )
}

#[test]
fn a_failing_init_container_keeps_the_app_containers_from_starting() {
    let env = TestEnv::new();
    // Never: the pod fails; play says so, and leaves the pod to look at.
    let file = write_manifest(&env, "never.yaml", &failing_init_pod("blocked", "Never"));
    let out = play_scaled(&env, &file, "0.05");
    let _down = DownOnDrop(&env, file.clone());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("init container `setup` failed with exit code 3") && err.contains("hint:"),
        "{err}"
    );
    let json = pod_json(&env, "blocked");
    assert_eq!(json["status"], "Init:Error", "{json:#}");
    assert_eq!(json["state"]["phase"], "Failed");
    let app = container(&json, "containers", "app");
    assert_eq!(app["state"], "waiting");
    assert!(app["started_at"].is_null(), "{app:#}");
    assert_eq!(
        env.podrun_ok(&["logs", "blocked", "-c", "setup"]),
        "setting up\n"
    );
    let text = env.podrun_ok(&["describe", "blocked"]);
    assert!(text.contains("Init container setup failed"), "{text}");
    env.podrun_ok(&["down", &file]);

    // OnFailure: the init container is retried with the back-off; the app still waits.
    let file = write_manifest(
        &env,
        "again.yaml",
        &failing_init_pod("retried", "OnFailure"),
    );
    let out = play_scaled(&env, &file, "0.05");
    assert!(!out.status.success());
    let json = wait_for_pod(&env, "retried", 30, "setup retried twice", |j| {
        container(j, "init_containers", "setup")["restart_count"]
            .as_u64()
            .unwrap()
            >= 2
    });
    assert!(
        json["status"]
            .as_str()
            .is_some_and(|s| s == "Init:CrashLoopBackOff" || s == "Init:0/1"),
        "{json:#}"
    );
    assert!(container(&json, "containers", "app")["started_at"].is_null());
    wait_for_pod(&env, "retried", 30, "Init:CrashLoopBackOff", |j| {
        j["status"] == "Init:CrashLoopBackOff"
    });
    down_and_check(&env, &file, &["retried"]);
}

#[test]
fn a_native_sidecar_runs_beside_the_app_container_and_stops_after_it() {
    let env = TestEnv::new();
    let out_dir = host_dir(&env, "sidecar-out");
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: sidecar
spec:
  terminationGracePeriodSeconds: 5
  volumes:
  - name: out
    hostPath: {{path: {out}, type: Directory}}
  initContainers:
  - name: proxy
    image: busybox
    restartPolicy: Always
    command: ["sh", "-c", "trap 'echo proxy-stop >> /out/log; exit 0' TERM; echo proxy-up >> /out/log; while :; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  - name: check
    image: busybox
    command: ["sh", "-c", "grep -q proxy-up /out/log && echo check >> /out/log"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "trap 'echo app-stop >> /out/log; sleep 1; exit 0' TERM; echo app-up >> /out/log; while :; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
"#,
        out = out_dir.display()
    );
    let file = write_manifest(&env, "sidecar.yaml", &yaml);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let json = wait_for_pod(&env, "sidecar", 30, "app and sidecar up", |j| {
        j["ready"] == "2/2"
    });
    assert_eq!(json["status"], "Running", "{json:#}");
    let proxy = container(&json, "init_containers", "proxy");
    assert_eq!(
        (proxy["state"].as_str(), proxy["sidecar"].as_bool()),
        (Some("running"), Some(true))
    );
    assert_eq!(
        container(&json, "init_containers", "check")["reason"],
        "Completed"
    );
    down_and_check(&env, &file, &["sidecar"]);
    let log = std::fs::read_to_string(out_dir.join("log")).unwrap();
    assert_eq!(log, "proxy-up\ncheck\napp-up\napp-stop\nproxy-stop\n");
}

#[test]
fn pre_stop_hooks_stop_signals_and_the_grace_period() {
    let env = TestEnv::new();
    let out_dir = host_dir(&env, "stop-out");
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: stopping
spec:
  terminationGracePeriodSeconds: 3
  volumes:
  - name: out
    hostPath: {{path: {out}, type: Directory}}
  - name: scratch
    emptyDir: {{}}
  containers:
  - name: hooked
    image: busybox
    command: ["sh", "-c", "trap 'cat /scratch/note >> /out/hooked; echo term >> /out/hooked; exit 0' TERM; while :; do sleep 0.1; done"]
    lifecycle:
      postStart:
        exec: {{command: ["sh", "-c", "echo post-start > /scratch/note"]}}
      preStop:
        exec: {{command: ["sh", "-c", "echo pre-stop >> /out/hooked"]}}
    volumeMounts: [{{name: out, mountPath: /out}}, {{name: scratch, mountPath: /scratch}}]
  - name: quitter
    image: busybox
    command: ["sh", "-c", "trap 'echo quit >> /out/quitter; exit 0' QUIT; trap '' TERM; touch /out/quitter-ready; while :; do sleep 0.1; done"]
    lifecycle:
      stopSignal: SIGQUIT
    volumeMounts: [{{name: out, mountPath: /out}}]
  - name: stubborn
    image: busybox
    command: ["sh", "-c", "trap 'echo ignored >> /out/stubborn' TERM; touch /out/stubborn-ready; while :; do sleep 0.1; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
"#,
        out = out_dir.display()
    );
    let file = write_manifest(&env, "stopping.yaml", &yaml);
    let out = env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    // play waited for the postStart hook: the container is ready.
    let row = out
        .lines()
        .find(|l| l.starts_with("stopping "))
        .expect(&out);
    assert!(row.contains("3/3") && row.contains("Running"), "{out}");
    // A shell that is pid 1 of its container ignores a signal it has no trap for yet: stop
    // the pod only once the traps are set.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(out_dir.join("quitter-ready").exists() && out_dir.join("stubborn-ready").exists()) {
        assert!(
            Instant::now() < deadline,
            "the containers never set their traps"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    down_and_check(&env, &file, &["stopping"]);
    let took = started.elapsed();
    // The stubborn container ignores SIGTERM: killed when the 3 s grace period ends.
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(20),
        "down took {took:?}"
    );
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap_or_default();
    // preStop ran before SIGTERM, which the container trapped to write (its emptyDir note
    // from the postStart hook) before it ended.
    assert_eq!(read("hooked"), "pre-stop\npost-start\nterm\n");
    assert_eq!(
        read("quitter"),
        "quit\n",
        "lifecycle.stopSignal is sent, not SIGTERM"
    );
    assert_eq!(read("stubborn"), "ignored\n");
}

#[test]
fn a_failing_post_start_hook_kills_the_container() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "poststart.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: poststart
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["sleep", "3600"]
    lifecycle:
      postStart:
        httpGet: {port: 8080, path: /ready}
"#,
    );
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let json = wait_for_pod(&env, "poststart", 30, "web killed", |j| {
        container(j, "containers", "web")["state"] == "exited"
    });
    let web = container(&json, "containers", "web");
    assert!(
        web["message"]
            .as_str()
            .is_some_and(|m| m.contains("httpGet lifecycle hook") && m.contains("8080")),
        "{web:#}"
    );
    let text = env.podrun_ok(&["describe", "poststart"]);
    assert!(
        text.contains("FailedPostStartHook") && text.contains("Killing"),
        "{text}"
    );
    down_and_check(&env, &file, &["poststart"]);
}
