//! What `play` does for a file's Jobs besides starting their first pods: it hands each Job
//! to a controller process of its own (`podrun job-controller`, see [`super::job_controller`]),
//! which outlives play and starts the Job's other pods through [`start_job_pod`], the same
//! path as play's own pods. `down FILE`, `play --replace` and the end of `play --wait` take
//! a Job down with [`remove_job`]: its controller first, then its pods, then its files.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use podrun_manifest::{LoadOptions, Manifest, PodManifest};
use podrun_planner::network::NetworkOptions;
use podrun_pod::remove::{stop_and_remove, Lock, Stop, EXTRA_WAIT};
use podrun_pod::PodDirs;
use podrun_pod_model::plan::Controller;

use super::job_state::{JobDir, JobInputs, JobStatus};
use crate::context::Context;

/// The manifest's text, read once: play loads it, and hands it to the Jobs' controllers.
/// Returns the file's label in messages (`<stdin>` for `-`) and the text.
pub fn read_text(file: &str) -> anyhow::Result<(String, String)> {
    use std::io::Read as _;
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .context("<stdin>")?;
        return Ok(("<stdin>".into(), text));
    }
    let text = std::fs::read_to_string(file).with_context(|| file.to_string())?;
    Ok((file.to_string(), text))
}

/// The Job's controller as its pods record it.
pub fn controller_of(name: &str) -> Controller {
    Controller {
        kind: podrun_manifest::WorkloadKind::Job.name().to_string(),
        name: name.to_string(),
    }
}

/// The pods of Job `namespace/name`, by their controller (their names are random).
pub fn pods_of_job(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
) -> Vec<podrun_pod::listing::PodEntry> {
    let controller = controller_of(name);
    podrun_pod::listing::list(dirs)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.namespace == namespace && e.controller().as_ref() == Some(&controller))
        .collect()
}

/// Before play starts anything: a Job of the file that exists already (its controller's
/// files or its pods) is an error, as in Kubernetes, unless `replace` takes it down first.
pub fn check_absent(
    dirs: &PodDirs,
    manifest: &Manifest,
    replace: bool,
    stop: &Stop,
) -> anyhow::Result<()> {
    for job in &manifest.jobs {
        let exists = JobDir::of(dirs, &job.namespace, &job.name).exists()
            || !pods_of_job(dirs, &job.namespace, &job.name).is_empty();
        if !exists {
            continue;
        }
        let shown = podrun_pod::display_name(&job.namespace, &job.name);
        if !replace {
            bail!(
                "job `{shown}` already exists; run `podrun down {}` first",
                job.source.file
            );
        }
        eprintln!("replacing job {shown}");
        remove_job(dirs, &job.namespace, &job.name, stop)?;
    }
    Ok(())
}

/// After play started the file's pods: each Job's directory (inputs and first status) and
/// its controller. `started_at`: when play began starting the pods (the Job's start time).
pub fn start_controllers(
    dirs: &PodDirs,
    manifest: &Manifest,
    (file, text): (&str, &str),
    namespace_option: Option<&str>,
    network: &NetworkOptions,
    started_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    for job in &manifest.jobs {
        let dir = JobDir::of(dirs, &job.namespace, &job.name);
        std::fs::create_dir_all(&dir.dir)
            .with_context(|| format!("cannot create {}", dir.dir.display()))?;
        dir.write_inputs(&JobInputs {
            file: file.to_string(),
            text: text.to_string(),
            namespace_option: namespace_option.map(str::to_string),
            network: network.backend,
            publish_all: network.publish_all,
            completions: job.completions,
            parallelism: job.parallelism,
            backoff_limit: job.backoff_limit,
            active_deadline_seconds: job.active_deadline_seconds,
        })?;
        dir.write_status(&JobStatus {
            namespace: job.namespace.clone(),
            name: job.name.clone(),
            start_time: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            completion_time: None,
            active: pods_of_job(dirs, &job.namespace, &job.name).len(),
            succeeded: 0,
            failed: 0,
            conditions: Vec::new(),
        })?;
        super::job_controller::spawn(&dir, &job.namespace, &job.name)?;
    }
    Ok(())
}

/// Starts one more pod of Job `namespace/name` (the controller's work), through play's
/// steps for a pod: the file loaded again from `inputs`, the Job's pod template under a new
/// name, its network planned, its images pulled as its pull policy says, the file's
/// Services registered, the pod planned and started. Returns the pod's name.
pub fn start_job_pod(
    context: &Context,
    dirs: &PodDirs,
    inputs: &JobInputs,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let options = LoadOptions {
        strict: false,
        namespace: inputs.namespace_option.clone(),
    };
    let manifest = podrun_manifest::load_str(&inputs.file, &inputs.text, &options)?;
    let pod = job_template(&manifest, namespace, name)?;
    let network = NetworkOptions {
        backend: inputs.network,
        allow_host_loopback: context.config.network.allow_host_loopback,
        publish: Vec::new(),
        publish_all: inputs.publish_all,
        several_pods: true,
    };
    let planned = podrun_planner::network::plan(&pod, &network)?;
    let only = Manifest {
        pods: vec![pod.clone()],
        ..manifest.clone()
    };
    let images = super::play::pull_images(context, &only)?;
    let cgroups = super::play::host_cgroups(context, &only);
    let services = super::play_services::register(context, &manifest)?;
    super::play::start_pod(
        context,
        dirs,
        &manifest,
        &pod,
        &images,
        planned,
        &cgroups,
        None,
        services.all(),
    )?;
    Ok(pod.name().to_string())
}

/// The Job's pod template (the first of its pods in the file) under a new name.
fn job_template(manifest: &Manifest, namespace: &str, name: &str) -> anyhow::Result<PodManifest> {
    let controller = controller_of(name);
    let mut pod = manifest
        .pods
        .iter()
        .find(|p| {
            p.namespace() == namespace
                && p.owner.as_ref().is_some_and(|o| {
                    o.kind == podrun_manifest::WorkloadKind::Job && o.name == controller.name
                })
        })
        .cloned()
        .with_context(|| format!("the file has no pod of Job `{name}` any more"))?;
    pod.pod.metadata.name = Some(podrun_manifest::job_pod_name(name));
    Ok(pod)
}

/// Takes Job `namespace/name` down: its controller is stopped first (so that it starts no
/// pod meanwhile), then its pods are stopped and removed, then its files.
pub fn remove_job(dirs: &PodDirs, namespace: &str, name: &str, stop: &Stop) -> anyhow::Result<()> {
    let dir = JobDir::of(dirs, namespace, name);
    stop_controller(&dir);
    for pod in pods_of_job(dirs, namespace, name) {
        let on_wait = || {};
        stop_and_remove(dirs, &pod.namespace, &pod.name, Lock::Take(&on_wait), stop)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir.dir)
            .with_context(|| format!("cannot remove {}", dir.dir.display()))?;
    }
    Ok(())
}

/// `down FILE`, before it takes the pods down: the controllers of the file's Jobs are
/// stopped (so that none starts a pod meanwhile) and the Jobs' files removed.
pub fn stop_jobs(dirs: &PodDirs, manifest: &Manifest) {
    for job in &manifest.jobs {
        let dir = JobDir::of(dirs, &job.namespace, &job.name);
        stop_controller(&dir);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir.dir) {
                eprintln!("error: cannot remove {}: {e}", dir.dir.display());
            }
        }
    }
}

/// SIGTERM to the controller, then SIGKILL if it has not ended after a few seconds.
fn stop_controller(dir: &JobDir) {
    use nix::sys::signal::{kill, Signal};
    let Some(pid) = dir.controller_pid() else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while dir.controller_pid().is_some() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stop of the Job's pods with their own grace period, as `down` does.
pub fn default_stop() -> Stop<'static> {
    Stop::new(None, EXTRA_WAIT)
}

/// `play --wait`'s view of the file's Jobs.
pub struct WaitedJobs {
    pub jobs: Vec<(String, String)>,
}

impl WaitedJobs {
    pub fn of(manifest: &Manifest) -> WaitedJobs {
        WaitedJobs {
            jobs: manifest
                .jobs
                .iter()
                .map(|j| (j.namespace.clone(), j.name.clone()))
                .collect(),
        }
    }

    /// The pods of the Jobs now.
    pub fn pods(&self, dirs: &PodDirs) -> Vec<(String, String)> {
        self.jobs
            .iter()
            .flat_map(|(namespace, name)| pods_of_job(dirs, namespace, name))
            .map(|e| (e.namespace, e.name))
            .collect()
    }

    /// The Jobs' statuses once every Job is over (`Ok(None)` while one runs); an error
    /// when a Job's controller is gone without finishing it.
    pub fn finished(&self, dirs: &PodDirs) -> Result<Option<Vec<JobStatus>>, String> {
        let mut statuses = Vec::new();
        for (namespace, name) in &self.jobs {
            let dir = JobDir::of(dirs, namespace, name);
            let shown = podrun_pod::display_name(namespace, name);
            let status = dir
                .read_status()
                .map_err(|e| format!("job `{shown}`: {e:#}"))?;
            if status.finished().is_none() {
                if dir.controller_pid().is_none() {
                    return Err(format!(
                        "job `{shown}`: its controller is gone (see {})",
                        dir.log_file().display()
                    ));
                }
                return Ok(None);
            }
            statuses.push(status);
        }
        Ok(Some(statuses))
    }

    /// Takes the Jobs down (errors are printed: the exit status is decided already).
    pub fn tear_down(&self, dirs: &PodDirs, stop: &Stop) {
        for (namespace, name) in &self.jobs {
            if let Err(e) = remove_job(dirs, namespace, name, stop) {
                eprintln!(
                    "error: job {}: {e:#}",
                    podrun_pod::display_name(namespace, name)
                );
            }
        }
    }
}
