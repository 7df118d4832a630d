//! `ps` on the host shows which pod each podrun process belongs to (issue 16): the
//! supervisor and the watchdog name their role and their pod in their command line, and
//! the containers' processes are in the pod's user namespace under them.

use podrun_e2e::pods::{down_and_check, pod_json, processes, write_manifest, DownOnDrop};
use podrun_e2e::TestEnv;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: titled
  namespace: team-a
spec:
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
"#;

/// The command line of `pid` as `ps` shows it (arguments joined by spaces, trailing NULs
/// dropped).
fn cmdline(pid: i64) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    text.trim_end().to_string()
}

#[test]
fn podrun_processes_name_their_role_and_their_pod() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "titled.yaml", POD);
    let _down = DownOnDrop(&env, file.clone());
    env.podrun_ok(&["play", &file]);
    let state = &pod_json(&env, "titled")["state"];
    let supervisor = state["supervisor_pid"].as_i64().unwrap();
    assert_eq!(cmdline(supervisor), "podrun supervisor team-a/titled");
    let userns = std::fs::read_link(format!("/proc/{supervisor}/ns/user")).unwrap();
    let watchdogs: Vec<String> = processes()
        .map(|(pid, _)| cmdline(pid))
        .filter(|line| line.starts_with("podrun watchdog") && line.ends_with("/titled"))
        .collect();
    assert_eq!(
        watchdogs,
        ["podrun watchdog team-a/titled"],
        "one watchdog, named after its pod"
    );
    // Every other process of the pod is a container's (or the pod's pid-1 reaper).
    let app = state["containers"][0]["pid"].as_i64().unwrap();
    assert_eq!(cmdline(app), "sleep 3600");
    assert_eq!(
        std::fs::read_link(format!("/proc/{app}/ns/user")).unwrap(),
        userns
    );
    down_and_check(&env, &file, &["titled"]);
}
