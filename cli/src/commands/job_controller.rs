//! `podrun job-controller <namespace>/<name>`: a Job's controller, a hidden role of this
//! binary started by `play` (one per Job, detached, so that `play` without `--wait` returns
//! at once). It loops: reads the Job's pods (by their controller), asks
//! `podrun_pod::job::next` what to do, stops and starts pods as told (new pods through
//! `play_job::start_job_pod`, play's own path), records the Job's status, and ends when
//! the Job is Complete or Failed, or on SIGTERM (`podrun down FILE`).

use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use podrun_pod::job::{self, Decision, JobPod, JobPodPhase, JobSpec, Outcome};
use podrun_pod::listing::PodEntry;
use podrun_pod::remove::{stop_and_remove, Lock};
use podrun_pod::PodDirs;
use podrun_pod_model::plan::RestartPolicy;
use podrun_pod_model::state::PodPhase;

use super::job_state::{
    ConditionType, JobCondition, JobDir, JobInputs, JobStatus, CONTROLLER_ROLE, JOB_DIR_ENV,
};
use crate::context::{pod_dirs, Context};

/// How often the Job's pods are looked at (a pod's end is seen within this).
const POLL: Duration = Duration::from_millis(200);
/// After a pod could not be started: the wait before the next try.
const START_RETRY: Duration = Duration::from_secs(2);

/// Starts the controller of Job `namespace/name` detached (own session, output to
/// `controller.log`), and records its pid.
pub fn spawn(dir: &JobDir, namespace: &str, name: &str) -> anyhow::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.log_file())
        .with_context(|| format!("cannot open {}", dir.log_file().display()))?;
    let [program, role, job] = podrun_pod_model::process::title(CONTROLLER_ROLE, namespace, name);
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(program)
        .args([role, job])
        .env(JOB_DIR_ENV, &dir.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .context("cannot start the Job's controller")?;
    std::fs::write(dir.pid_file(), child.id().to_string())
        .with_context(|| format!("cannot write {}", dir.pid_file().display()))?;
    Ok(())
}

/// The controller's main: runs the Job of directory `dir` to its end.
pub fn main(dir: &std::path::Path) -> ExitCode {
    super::play_wait::catch_stop_signals();
    match control(&JobDir { dir: dir.into() }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn control(dir: &JobDir) -> anyhow::Result<()> {
    let context = Context::load()?;
    let dirs = pod_dirs(&context.paths)?;
    let inputs = dir.read_inputs()?;
    let mut status = dir.read_status()?;
    let started_at: DateTime<Utc> = DateTime::parse_from_rfc3339(&status.start_time)
        .context("the Job's start time")?
        .into();
    let spec = spec_of(&inputs);
    let (namespace, name) = (status.namespace.clone(), status.name.clone());
    let mut retry_at: Option<DateTime<Utc>> = None;
    loop {
        if super::play_wait::received_signal().is_some() {
            eprintln!("job {name}: stopped");
            return Ok(());
        }
        let now = Utc::now();
        let pods = job_pods(&dirs, &namespace, &name);
        let decision = job::next(&spec, &pods, started_at, now);
        // Stopped before the status says the Job is over: `play --wait` then finds them gone.
        stop_pods(&dirs, &namespace, &decision.stop);
        record(dir, &mut status, &pods, &decision, now)?;
        if let Some(outcome) = decision.outcome {
            eprintln!("job {name}: {outcome:?}");
            return Ok(());
        }
        if decision.start > 0 && retry_at.is_none_or(|at| now >= at) {
            retry_at = start_pods(&context, &dirs, &inputs, &namespace, &name, decision.start);
        }
        sleep_until(decision.wake_at);
    }
}

/// The Job's fields as the decisions take them.
fn spec_of(inputs: &JobInputs) -> JobSpec {
    JobSpec {
        completions: inputs.completions,
        parallelism: inputs.parallelism,
        backoff_limit: inputs.backoff_limit,
        active_deadline: inputs.active_deadline_seconds.map(Duration::from_secs),
        backoff_scale: backoff_scale(),
    }
}

/// `PODRUN_BACKOFF_SCALE`, the supervisor's knob for the kubelet's crash-loop back-off
/// (tests), scales the Job's pod failure back-off too: 1 unless it holds a positive number.
fn backoff_scale() -> f64 {
    std::env::var("PODRUN_BACKOFF_SCALE")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(1.0)
}

/// The Job's pods as the decisions see them.
fn job_pods(dirs: &PodDirs, namespace: &str, name: &str) -> Vec<JobPod> {
    super::play_job::pods_of_job(dirs, namespace, name)
        .iter()
        .map(job_pod)
        .collect()
}

fn job_pod(entry: &PodEntry) -> JobPod {
    let Some(state) = &entry.state else {
        // Being started; or lost before it wrote a state.
        let phase = if entry.supervisor_alive {
            JobPodPhase::Running
        } else {
            JobPodPhase::Failed
        };
        return JobPod {
            name: entry.name.clone(),
            phase,
            restarts: 0,
            ended_at: None,
        };
    };
    let phase = match state.compute_phase() {
        _ if !entry.supervisor_alive => JobPodPhase::Failed,
        PodPhase::Succeeded => JobPodPhase::Succeeded,
        PodPhase::Failed => JobPodPhase::Failed,
        _ => JobPodPhase::Running,
    };
    // Restarts in place count as failures only where the kubelet restarts on failure.
    let restarts = match state.restart_policy {
        RestartPolicy::OnFailure => state.restarts(),
        _ => 0,
    };
    let ended_at = state
        .init_containers
        .iter()
        .chain(&state.containers)
        .filter_map(|c| c.finished_at.as_deref())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max();
    JobPod {
        name: entry.name.clone(),
        phase,
        restarts,
        ended_at,
    }
}

/// Writes the Job's status when it changed.
fn record(
    dir: &JobDir,
    status: &mut JobStatus,
    pods: &[JobPod],
    decision: &Decision,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let counts = job::counts(pods);
    let mut next = status.clone();
    next.active = counts.active - decision.stop.len().min(counts.active);
    next.succeeded = counts.succeeded;
    next.failed = counts.failed;
    if let Some(outcome) = decision.outcome {
        next.conditions = vec![condition(outcome)];
        if outcome == Outcome::Complete {
            next.completion_time = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
    }
    if next != *status {
        dir.write_status(&next)?;
        *status = next;
    }
    Ok(())
}

fn condition(outcome: Outcome) -> JobCondition {
    match outcome {
        Outcome::Complete => JobCondition {
            type_: ConditionType::Complete,
            reason: "CompletionsReached".into(),
            message: "Reached expected number of succeeded pods".into(),
        },
        Outcome::Failed(reason) => JobCondition {
            type_: ConditionType::Failed,
            reason: reason.as_str().into(),
            message: reason.message().into(),
        },
    }
}

/// Stops and removes the pods of a Job that is over (Kubernetes deletes them).
fn stop_pods(dirs: &PodDirs, namespace: &str, names: &[String]) {
    let stop = super::play_job::default_stop();
    for name in names {
        if let Err(e) = stop_and_remove(dirs, namespace, name, Lock::Take(&|| {}), &stop) {
            eprintln!("error: pod {name}: cannot stop it: {e}");
        }
    }
}

/// Starts `count` pods; when one cannot be started, says why and returns when to try again.
fn start_pods(
    context: &Context,
    dirs: &PodDirs,
    inputs: &JobInputs,
    namespace: &str,
    name: &str,
    count: usize,
) -> Option<DateTime<Utc>> {
    for _ in 0..count {
        match super::play_job::start_job_pod(context, dirs, inputs, namespace, name) {
            Ok(pod) => eprintln!("job {name}: started pod {pod}"),
            Err(e) => {
                eprintln!("error: job {name}: cannot start a pod: {e:#}");
                return chrono::Duration::from_std(START_RETRY)
                    .ok()
                    .map(|d| Utc::now() + d);
            }
        }
    }
    None
}

/// Sleeps [`POLL`], or less when something is due sooner.
fn sleep_until(wake_at: Option<DateTime<Utc>>) {
    let due = wake_at
        .and_then(|at| (at - Utc::now()).to_std().ok())
        .unwrap_or(POLL);
    std::thread::sleep(due.min(POLL));
}
