//! The runtime files of pods started by the previous release (tests/golden/previous-release,
//! written by commit df2f761) are read by this one, and mean the same: a pod started before
//! an upgrade is listed, described and taken down after it (issue 16).

use std::path::{Path, PathBuf};

use podrun_pod_model::plan::{Plan, RestartPolicy};
use podrun_pod_model::probe::{ProbeKind, ProbeResult};
use podrun_pod_model::state::{ContainerStatus, EventKind, PodPhase, PodState};

fn golden(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/previous-release")
        .join(dir)
}

/// What serde makes of a JSON file, to compare files by content.
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_running_pod_of_the_previous_release_reads_the_same() {
    let dir = golden("");
    let plan = Plan::read(&dir).unwrap();
    assert_eq!(
        (plan.namespace.as_str(), plan.name.as_str()),
        ("default", "upgrade")
    );
    assert_eq!(plan.restart_policy, RestartPolicy::Always);
    let names: Vec<&str> = plan.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "writer"]);
    assert!(plan.containers[0].probes.readiness.is_some());
    assert_eq!(plan.volumes.empty_dirs.len(), 1);
    assert!(!plan.ports.is_empty());
    // Written back, the plan is the file it was read from: no field is lost or renamed.
    assert_eq!(
        serde_json::to_value(&plan).unwrap(),
        json(&dir.join("plan.json"))
    );

    let state = PodState::read(&dir).unwrap();
    assert_eq!(state.phase, PodPhase::Running);
    assert_eq!(state.ready(), (2, 2));
    assert_eq!(state.status(true), "Running");
    assert!(state
        .containers
        .iter()
        .all(|c| c.state == ContainerStatus::Running));
    let probe = &state.containers[0].probes[0];
    assert_eq!(
        (probe.probe, probe.result),
        (ProbeKind::Readiness, ProbeResult::Success)
    );
    assert!(state
        .events
        .iter()
        .any(|e| e.kind == EventKind::Normal && e.reason == "Started"));
    assert_eq!(
        serde_json::to_value(&state).unwrap(),
        json(&dir.join("state.json"))
    );
}

#[test]
fn a_crash_looping_pod_of_the_previous_release_reads_the_same() {
    let dir = golden("init-backoff");
    let plan = Plan::read(&dir).unwrap();
    assert_eq!(plan.init_containers.len(), 1);
    assert_eq!(
        serde_json::to_value(&plan).unwrap(),
        json(&dir.join("plan.json"))
    );

    let state = PodState::read(&dir).unwrap();
    let crash = state.containers.iter().find(|c| c.name == "crash").unwrap();
    assert_eq!(crash.state, ContainerStatus::Waiting);
    assert_eq!(crash.reason.as_deref(), Some("CrashLoopBackOff"));
    assert!(crash.restart_count >= 1);
    assert_eq!(state.init_containers[0].state, ContainerStatus::Exited);
    assert_eq!(state.status(true), "CrashLoopBackOff");
    assert_eq!(state.compute_phase(), PodPhase::Running);
    assert_eq!(
        serde_json::to_value(&state).unwrap(),
        json(&dir.join("state.json"))
    );
}
