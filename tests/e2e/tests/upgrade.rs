//! Upgrades (issue 16): pods started by the previous release are listed, described, logged,
//! exec'd into and taken down by the binary under test. The previous release's binary comes
//! from scripts/build-previous-release.sh, which scripts/test.sh runs and exports as
//! `PODRUN_PREVIOUS_BIN`.
//!
//! The runtime files (plan.json, state.json) those pods get from the previous release are
//! kept in tests/golden/previous-release/ for the crates' unit tests: a run with
//! `PODRUN_WRITE_GOLDEN=1` writes them again (tests/golden/README.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podrun_e2e::net::{free_port, http_get};
use podrun_e2e::pods::*;
use podrun_e2e::TestEnv;

/// The previous release's binary; `None` (the test passes, with a warning) only when
/// `PODRUN_SKIP_PREVIOUS=1` says there is none.
fn previous_release() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("PODRUN_PREVIOUS_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "PODRUN_PREVIOUS_BIN={}: no such file",
            bin.display()
        );
        return Some(bin);
    }
    if std::env::var("PODRUN_SKIP_PREVIOUS").as_deref() == Ok("1") {
        eprintln!(
            "WARNING: the upgrade test is SKIPPED: PODRUN_SKIP_PREVIOUS=1 (no binary of the \
             previous release; see scripts/build-previous-release.sh)"
        );
        return None;
    }
    panic!(
        "PODRUN_PREVIOUS_BIN is not set: run the end-to-end tests through scripts/test.sh, or \
         set it to the path `bash scripts/build-previous-release.sh` prints (as root; it builds \
         the previous release once); PODRUN_SKIP_PREVIOUS=1 skips this test"
    );
}

/// Runs the previous release's `bin` with `args` as the test user; fails unless it succeeds.
fn previous_ok(env: &TestEnv, bin: &Path, args: &[&str]) -> String {
    let output = env.podrun_with(bin, args);
    assert!(
        output.status.success(),
        "{} {} failed: {}",
        bin.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A file of the pod's runtime directory, as JSON.
fn runtime_json(env: &TestEnv, pod: &str, name: &str) -> serde_json::Value {
    let path = runtime_dir(env, pod).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// With `PODRUN_WRITE_GOLDEN=1`, copies the pod's plan.json and state.json as the previous
/// release wrote them into tests/golden/previous-release/`dir`, with the environment's
/// random temporary directory written as `/tmp/podrun-e2e.golden` (nothing else changes).
fn write_golden(env: &TestEnv, pod: &str, dir: &str) {
    if std::env::var("PODRUN_WRITE_GOLDEN").as_deref() != Ok("1") {
        return;
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../golden/previous-release")
        .join(dir);
    std::fs::create_dir_all(&golden).unwrap();
    let root = env.root().to_str().unwrap();
    for name in ["plan.json", "state.json"] {
        let text = std::fs::read_to_string(runtime_dir(env, pod).join(name)).unwrap();
        let text = text.replace(root, "/tmp/podrun-e2e.golden");
        std::fs::write(golden.join(name), text).unwrap();
        eprintln!("wrote {}", golden.join(name).display());
    }
}

/// A web server and a writer sharing an emptyDir; the server has a readiness probe and a
/// published port.
fn web_pod(port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: upgrade
  labels:
    app: upgrade
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: www
    emptyDir: {{}}
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "echo served-by-previous > /www/index.html; exec httpd -f -vv -p 80 -h /www"]
    ports:
    - containerPort: 80
      hostPort: {port}
    volumeMounts: [{{name: www, mountPath: /www}}]
    readinessProbe:
      httpGet: {{path: /, port: 80}}
      periodSeconds: 1
  - name: writer
    image: busybox
    command: ["sh", "-c", "until [ -f /www/index.html ]; do sleep 1; done; echo writer saw $(cat /www/index.html); exec sleep 3600"]
    volumeMounts: [{{name: www, mountPath: /www}}]
"#
    )
}

#[test]
fn a_pod_started_by_the_previous_release_is_run_and_taken_down_by_this_one() {
    let Some(previous) = previous_release() else {
        return;
    };
    let env = TestEnv::new();
    let port = free_port();
    let file = write_manifest(&env, "upgrade.yaml", &web_pod(port));
    let out = previous_ok(
        &env,
        &previous,
        &["play", "--wait-ready", "--timeout", "2m", &file],
    );
    let row = out.lines().find(|l| l.starts_with("upgrade ")).expect(&out);
    assert!(row.contains("2/2"), "{out}");
    // What the previous release wrote, before this binary reads any of it.
    let state = runtime_json(&env, "upgrade", "state.json");
    assert_eq!(state["pod"], "upgrade", "{state:#}");
    runtime_json(&env, "upgrade", "plan.json");
    write_golden(&env, "upgrade", "");

    // ps, in both forms.
    let ps = env.podrun_ok(&["ps"]);
    let row = ps.lines().find(|l| l.starts_with("upgrade ")).expect(&ps);
    assert!(row.contains("2/2") && row.contains("Running"), "{ps}");
    let json = pod_json(&env, "upgrade");
    assert_eq!(json["status"], "Running", "{json:#}");
    assert_eq!(json["ready"], "2/2", "{json:#}");
    let names: Vec<&str> = json["state"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "writer"], "{json:#}");

    // The published port and the shared emptyDir work as before.
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("served-by-previous"));
    wait_for_logs(
        &env,
        &["upgrade", "-c", "writer"],
        &["writer saw served-by-previous"],
    );
    wait_for_logs(&env, &["upgrade"], &["url:/"]);

    // describe: both containers, the probe and the events the previous release recorded.
    let text = env.podrun_ok(&["describe", "upgrade"]);
    for wanted in [
        "Containers:",
        "  web:",
        "  writer:",
        "Readiness:",
        "Events:",
        "Started container web",
        "Started container writer",
    ] {
        assert!(text.contains(wanted), "describe lacks {wanted:?}:\n{text}");
    }

    // exec into both containers, through the volume they share and the pod's network.
    env.podrun_ok(&[
        "exec",
        "upgrade",
        "-c",
        "writer",
        "--",
        "sh",
        "-c",
        "echo from-exec > /www/exec.txt",
    ]);
    let read = env.podrun_ok(&["exec", "upgrade", "-c", "web", "--", "cat", "/www/exec.txt"]);
    assert_eq!(read, "from-exec\n");
    let fetched = env.podrun_ok(&[
        "exec",
        "upgrade",
        "-c",
        "writer",
        "--",
        "wget",
        "-qO-",
        "http://127.0.0.1/exec.txt",
    ]);
    assert_eq!(fetched, "from-exec\n");

    down_and_check(&env, "upgrade", &["upgrade"]);
    assert_nothing_left(&env);
}

/// An init container, a steady container and one that fails at once, so that it is in
/// back-off.
const BACKOFF_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: backoff
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  volumes:
  - name: work
    emptyDir: {}
  initContainers:
  - name: setup
    image: busybox
    command: ["sh", "-c", "echo set-up > /work/setup"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: steady
    image: busybox
    command: ["sh", "-c", "cat /work/setup; exec sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: crash
    image: busybox
    command: ["sh", "-c", "echo crashing; exit 1"]
"#;

#[test]
fn a_crash_looping_pod_of_the_previous_release_is_described_and_taken_down() {
    let Some(previous) = previous_release() else {
        return;
    };
    let env = TestEnv::new();
    let file = write_manifest(&env, "backoff.yaml", BACKOFF_POD);
    previous_ok(&env, &previous, &["play", "--network", "none", &file]);
    // The state file, as the previous release's supervisor writes it, shows the back-off.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = runtime_json(&env, "backoff", "state.json");
        let crash = &state["containers"][1];
        if crash["reason"] == "CrashLoopBackOff" && crash["restart_count"].as_u64() >= Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "never in back-off: {state:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    write_golden(&env, "backoff", "init-backoff");

    let ps = env.podrun_ok(&["ps"]);
    assert!(ps.lines().any(|l| l.starts_with("backoff ")), "{ps}");
    let json = wait_for_pod(&env, "backoff", 60, "CrashLoopBackOff", |j| {
        j["status"] == "CrashLoopBackOff"
    });
    let state = &json["state"];
    let setup = &state["init_containers"][0];
    assert_eq!(setup["name"], "setup", "{json:#}");
    assert_eq!(setup["exit_code"], 0, "{json:#}");
    assert_eq!(setup["reason"], "Completed", "{json:#}");
    assert_eq!(state["containers"][0]["state"], "running", "{json:#}");
    assert!(state["containers"][1]["restart_count"].as_u64() >= Some(1));
    let user_namespace = state["user_namespace"].as_str().unwrap().to_string();

    let text = env.podrun_ok(&["describe", "backoff"]);
    for wanted in [
        "Init Containers:",
        "  setup:",
        "Containers:",
        "  steady:",
        "  crash:",
        "Events:",
        "Started container setup",
        "BackOff",
    ] {
        assert!(text.contains(wanted), "describe lacks {wanted:?}:\n{text}");
    }
    assert!(env
        .podrun_ok(&["logs", "backoff", "-c", "crash"])
        .contains("crashing"));
    assert_eq!(
        env.podrun_ok(&[
            "exec",
            "backoff",
            "-c",
            "steady",
            "--",
            "cat",
            "/work/setup"
        ]),
        "set-up\n"
    );

    // The crashing container comes and goes: down, then nothing of the pod is left.
    env.podrun_ok(&["down", "backoff"]);
    assert_nothing_left(&env);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_in_user_namespace(&user_namespace);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left in the pod's user namespace: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `down --grace-period 0` of a pod whose supervisor, of the previous release, does not read
/// the stop request (issue 18): it stops the pod with its own grace period (30 s, a container
/// that ignores SIGTERM), and down kills it all once the grace period asked for and the 10 s
/// margin are over.
#[test]
fn down_grace_period_0_takes_a_pod_of_the_previous_release_down_after_its_margin() {
    let Some(previous) = previous_release() else {
        return;
    };
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "stubborn.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  containers:
  - name: stubborn
    image: busybox
    command: ["sh", "-c", "trap '' TERM; sleep 1000"]
"#,
    );
    previous_ok(&env, &previous, &["play", "--network", "none", &file]);
    let started = Instant::now();
    let output = env.podrun(&["down", "--grace-period", "0", "stubborn"]);
    let took = started.elapsed();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "down took {took:?} (30 s grace period, 0 asked for, 10 s margin)"
    );
    assert!(
        said.contains(
            "pod default/stubborn: waiting up to 8s for container stubborn to end after SIGKILL"
        ),
        "{said}"
    );
    assert_nothing_left(&env);
}
