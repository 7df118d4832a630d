//! Probes run by podrun's supervisor (exec, httpGet, tcpSocket; startup, liveness,
//! readiness), and `podrun play --wait`, `--wait-ready` and `--replace`, as the ordinary test
//! user. Probe periods are 1 s; deadlines are generous for a loaded machine.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::TestEnv;

/// The probe `kind` of the pod's container `index`.
fn probe<'a>(json: &'a serde_json::Value, index: usize, kind: &str) -> &'a serde_json::Value {
    json["state"]["containers"][index]["probes"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["probe"] == kind))
        .unwrap_or(&serde_json::Value::Null)
}

fn events(json: &serde_json::Value) -> String {
    json["state"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| format!("{} {}\n", e["reason"], e["message"]))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_failing_http_liveness_probe_restarts_the_container() {
    let env = TestEnv::new();
    // The health page is there for 4 s after each start, then deleted: httpd answers 404.
    let file = write_manifest(
        &env,
        "live.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: live
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/healthz; (sleep 4; rm /www/healthz) & exec httpd -f -p 8080 -h /www"]
    ports:
    - name: http
      containerPort: 8080
    livenessProbe:
      httpGet:
        port: http
        path: /healthz
        httpHeaders:
        - name: X-Probe
          value: podrun
      periodSeconds: 1
      failureThreshold: 2
"#,
    );
    env.podrun_ok(&["play", "--network", "none", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let json = wait_for_pod(&env, "live", 20, "a successful liveness probe", |j| {
        probe(j, 0, "liveness")["last_result"] == "success"
    });
    assert_eq!(json["state"]["containers"][0]["restart_count"], 0);
    // Two failures in a row stop it; the restart policy (Always) starts it again after the
    // back-off (10 s).
    let json = wait_for_pod(&env, "live", 90, "a restart", |j| {
        j["state"]["containers"][0]["restart_count"].as_u64() >= Some(1)
    });
    let events = events(&json);
    assert!(
        events.contains("Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{events}"
    );
    assert!(
        events.contains("failed liveness probe, will be restarted"),
        "{events}"
    );
    // The new container is probed afresh.
    wait_for_pod(&env, "live", 30, "the new container probed", |j| {
        j["state"]["containers"][0]["state"] == "running"
            && probe(j, 0, "liveness")["last_result"] == "success"
    });
    down_and_check(&env, "live", &["live"]);
}

#[test]
fn an_exec_readiness_probe_flips_ready() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "ready.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: ready
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 4; touch /tmp/ready; exec sleep 3600"]
    readinessProbe:
      exec:
        command: ["sh", "-c", "test -f /tmp/ready || { echo not ready yet; exit 1; }"]
      periodSeconds: 1
"#,
    );
    let out = env.podrun_ok(&["play", "--network", "none", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let row = out.lines().find(|l| l.starts_with("ready ")).expect(&out);
    assert!(row.contains("0/1") && row.contains("Running"), "{out}");
    let json = wait_for_pod(&env, "ready", 20, "a failed readiness probe", |j| {
        probe(j, 0, "readiness")["last_result"] == "failure"
    });
    assert_eq!(json["ready"], "0/1", "{json:#}");
    assert_eq!(
        probe(&json, 0, "readiness")["last_message"],
        "not ready yet",
        "{json:#}"
    );
    // describe shows the probe's verdict and its last run, like kubectl's Unhealthy events.
    let text = env.podrun_ok(&["describe", "ready"]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Readiness:"))
        .unwrap_or_else(|| panic!("no Readiness line:\n{text}"));
    assert!(
        line.contains("Failure (last run: failure at") && line.contains(": not ready yet;"),
        "{line}"
    );
    assert!(
        text.contains("Readiness probe failed: not ready yet"),
        "{text}"
    );
    let json = wait_for_pod(&env, "ready", 30, "ready", |j| j["ready"] == "1/1");
    let readiness = probe(&json, 0, "readiness");
    assert_eq!(readiness["result"], "success", "{json:#}");
    assert!(readiness["consecutive_successes"].as_u64() >= Some(1));
    assert_eq!(readiness["consecutive_failures"], 0);
    assert_eq!(json["state"]["containers"][0]["ready"], true);
    let ps = env.podrun_ok(&["ps"]);
    let row = ps.lines().find(|l| l.starts_with("ready ")).expect(&ps);
    assert!(row.contains("1/1"), "{ps}");
    let text = env.podrun_ok(&["describe", "ready"]);
    assert!(
        text.contains("Readiness:") && text.contains("Success (last run: success at"),
        "{text}"
    );
    down_and_check(&env, "ready", &["ready"]);
}

#[test]
fn tcp_socket_probes_need_no_nc_in_the_image() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "tcp.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: tcp
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: nginx
    image: nginx:1.23
    ports:
    - name: web
      containerPort: 80
    readinessProbe:
      tcpSocket:
        port: web
      periodSeconds: 1
  - name: closed
    image: nginx:1.23
    command: ["sleep", "3600"]
    readinessProbe:
      tcpSocket:
        port: 81
      periodSeconds: 1
"#,
    );
    env.podrun_ok(&["play", "--network", "none", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let nc = env.podrun_ok(&[
        "exec",
        "tcp",
        "--",
        "sh",
        "-c",
        "command -v nc netcat ncat busybox || echo none",
    ]);
    assert_eq!(nc.trim(), "none", "the image has a netcat");
    let json = wait_for_pod(&env, "tcp", 30, "nginx ready", |j| {
        j["state"]["containers"][0]["ready"] == true
            && probe(j, 1, "readiness")["consecutive_failures"].as_u64() >= Some(3)
    });
    assert_eq!(json["ready"], "1/2", "{json:#}");
    assert_eq!(
        probe(&json, 1, "readiness")["last_message"],
        "dial tcp 127.0.0.1:81: connect: connection refused"
    );
    down_and_check(&env, "tcp", &["tcp"]);
}

#[test]
fn a_startup_probe_holds_back_liveness() {
    let env = TestEnv::new();
    // Without the startup probe, the liveness probe (one failure is enough) would kill the
    // container during its slow start.
    let file = write_manifest(
        &env,
        "slow.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: slow
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 5; touch /tmp/started; exec sleep 3600"]
    startupProbe:
      exec:
        command: ["test", "-f", "/tmp/started"]
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec:
        command: ["test", "-f", "/tmp/started"]
      periodSeconds: 1
      failureThreshold: 1
"#,
    );
    env.podrun_ok(&["play", "--network", "none", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let json = wait_for_pod(&env, "slow", 20, "a failed startup probe", |j| {
        probe(j, 0, "startup")["consecutive_failures"].as_u64() >= Some(2)
    });
    let container = &json["state"]["containers"][0];
    assert_eq!(container["started"], false, "{json:#}");
    assert_eq!(container["ready"], false, "{json:#}");
    assert!(
        probe(&json, 0, "liveness")["last_result"].is_null(),
        "liveness ran before the start: {json:#}"
    );
    let json = wait_for_pod(&env, "slow", 40, "started and live", |j| {
        j["state"]["containers"][0]["started"] == true
            && probe(j, 0, "liveness")["last_result"] == "success"
    });
    let container = &json["state"]["containers"][0];
    assert_eq!(container["restart_count"], 0, "{json:#}");
    assert_eq!(container["ready"], true, "{json:#}");
    assert_eq!(probe(&json, 0, "startup")["result"], "success");
    down_and_check(&env, "slow", &["slow"]);
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

#[test]
fn play_wait_prints_the_logs_and_exits_with_the_first_failure() {
    let env = TestEnv::new();
    let ok = write_manifest(
        &env,
        "ok.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: job
spec:
  restartPolicy: Never
  containers:
  - name: a
    image: busybox
    command: ["sh", "-c", "echo hello from a; echo to stderr >&2"]
  - name: bb
    image: busybox
    command: ["sh", "-c", "sleep 1; printf 'no newline'"]
"#,
    );
    let output = env.podrun(&["play", "--wait", "--network", "none", &ok]);
    assert_eq!(code(&output), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("job/a  | hello from a\n"), "{stdout}");
    assert!(stdout.contains("job/a  | to stderr\n"), "{stdout}");
    assert!(stdout.contains("job/bb | no newline"), "{stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "no colour off a terminal: {stdout}"
    );
    assert_nothing_left(&env);

    // The container listed first fails last: the one that failed first decides.
    let failing = write_manifest(
        &env,
        "fail.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: fail
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: late
    image: busybox
    command: ["sh", "-c", "sleep 4; exit 5"]
  - name: early
    image: busybox
    command: ["sh", "-c", "sleep 1; exit 3"]
  - name: fine
    image: busybox
    command: ["true"]
"#,
    );
    let output = env.podrun(&["play", "--wait", "--network", "none", &failing]);
    assert_eq!(code(&output), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("late exited with code 5") && stderr.contains("early exited with code 3"),
        "{stderr}"
    );
    assert_nothing_left(&env);
}

const FOREVER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: forever
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: loop
    image: busybox
    command: ["sh", "-c", "echo started; exec sleep 3600"]
"#;

#[test]
fn play_wait_times_out_with_124_and_removes_the_pod() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "forever.yaml", FOREVER);
    let started = Instant::now();
    let output = env.podrun(&[
        "play",
        "--wait",
        "--timeout",
        "3s",
        "--network",
        "none",
        &file,
    ]);
    assert_eq!(code(&output), Some(124));
    assert!(started.elapsed() >= Duration::from_secs(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("forever/loop | started"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("timed out"));
    assert_nothing_left(&env);
}

#[test]
fn play_wait_interrupted_by_sigint_exits_130_and_removes_the_pod() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "forever.yaml", FOREVER);
    let mut child = env
        .command(podrun_e2e::podrun_bin())
        .args(["play", "--wait", "--network", "none", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _down = DownOnDrop(&env, file.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pod_json_exists(&env, "forever") {
        assert!(Instant::now() < deadline, "the pod never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let output = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "play went on");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        code(&output),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_nothing_left(&env);
}

/// Whether the pod runs with its container started.
fn pod_json_exists(env: &TestEnv, pod: &str) -> bool {
    pod_list(env).iter().any(|p| {
        p["metadata"]["name"] == pod
            && p["x-podrun"]["state"]["containers"][0]["state"] == "running"
    })
}

#[test]
fn play_wait_ready_returns_once_ready_and_replace_starts_afresh() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "gate.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: gate
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 3600"]
    readinessProbe:
      exec:
        command: ["test", "-f", "/tmp/ready"]
      periodSeconds: 1
  - name: plain
    image: busybox
    command: ["sleep", "3600"]
"#,
    );
    let started = Instant::now();
    let out = env.podrun_ok(&["play", "--wait-ready", "--network", "none", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "returned early"
    );
    let row = out.lines().find(|l| l.starts_with("gate ")).expect(&out);
    assert!(row.contains("2/2"), "{out}");
    let json = pod_json(&env, "gate");
    assert_eq!(json["ready"], "2/2", "{json:#}");
    let uid = json["state"]["uid"].clone();

    // Without --replace the pod exists; with it, a new pod replaces it.
    let err = env.podrun_err(&["play", "--network", "none", &file]);
    assert!(err.contains("already exists"), "{err}");
    let old_supervisor = json["state"]["supervisor_pid"].as_i64().unwrap();
    env.podrun_ok(&["play", "--replace", "--network", "none", &file]);
    let json = pod_json(&env, "gate");
    assert_ne!(json["state"]["uid"], uid);
    assert!(!is_live(old_supervisor), "the old pod's supervisor is left");
    down_and_check(&env, "gate", &["gate"]);
}

#[test]
fn play_wait_ready_times_out_with_the_probe_output() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "never.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: never
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
    readinessProbe:
      exec:
        command: ["sh", "-c", "echo database unreachable; exit 1"]
      periodSeconds: 1
"#,
    );
    let output = env.podrun(&[
        "play",
        "--wait-ready",
        "--timeout",
        "4s",
        "--network",
        "none",
        &file,
    ]);
    assert_eq!(code(&output), Some(124));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("container app") && stderr.contains("database unreachable"),
        "{stderr}"
    );
    assert_nothing_left(&env);
}
