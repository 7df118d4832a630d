//! `podrun down FILE|POD...`: stop pods and remove everything they left.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use podrun_manifest::LoadOptions;
use podrun_pod::lock::PodLock;
use podrun_pod::stop::{stop_processes, Stopped};

use crate::context::{pod_dirs, remove_dirs};

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Pods (`NAME` in namespace `default`, or `NAMESPACE/NAME`), or manifests (a file, or
    /// `-` for stdin) whose pods to stop.
    #[arg(required = true, value_name = "FILE|POD", add = crate::complete::pod_or_file())]
    targets: Vec<String>,
}

/// How long past a pod's grace period the supervisor gets before the pod is killed here.
const EXTRA_WAIT: Duration = Duration::from_secs(10);
/// How long `down` waits for a `play` that is starting the pod: a little longer than play
/// itself waits for the pod to start (its pulls are done by then).
const PLAY_WAIT: Duration = Duration::from_secs(310);

pub fn run(args: DownArgs) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let mut pods: Vec<(String, String)> = Vec::new();
    for target in &args.targets {
        if target == "-" || Path::new(target).is_file() {
            let manifest = podrun_manifest::load_path(target, &LoadOptions::default())?;
            for pod in &manifest.pods {
                pods.push((pod.namespace().to_string(), pod.name().to_string()));
            }
        } else {
            pods.push(podrun_pod::parse_pod_ref(target));
        }
    }
    pods.dedup();
    let mut failed = false;
    for (namespace, name) in &pods {
        let shown = podrun_pod::display_name(namespace, name);
        // A `play` starting this pod holds its lock: wait for it, then remove what it made.
        let _lock = match PodLock::existing(&dirs.runtime_dir(namespace, name), PLAY_WAIT, || {
            eprintln!("waiting for the `podrun play` that is starting pod {shown}")
        }) {
            Ok(lock) => lock,
            Err(e) => {
                eprintln!("error: pod {shown}: {e}");
                failed = true;
                continue;
            }
        };
        match stop_processes(&dirs, namespace, name, EXTRA_WAIT) {
            Ok(Stopped::NotFound) => eprintln!("pod {shown} not found"),
            Ok(Stopped::Clean) => println!("pod {shown} removed"),
            Ok(Stopped::Forced) => {
                match remove_dirs(&[
                    dirs.data_dir(namespace, name),
                    dirs.runtime_dir(namespace, name),
                ]) {
                    Ok(()) => println!("pod {shown} removed"),
                    Err(e) => {
                        eprintln!("error: pod {shown}: {e:#}");
                        failed = true;
                    }
                }
            }
            Err(e) => {
                eprintln!("error: pod {shown}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
