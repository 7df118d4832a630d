//! `podrun down FILE|POD...`: stop pods and remove everything they left.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use podrun_manifest::LoadOptions;
use podrun_pod::remove::{stop_and_remove, Lock, Removed, EXTRA_WAIT};

use crate::context::pod_dirs;

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Pods (`NAME`: in `default`, or the only pod of that name, or with -n in NS; or
    /// `NAMESPACE/NAME`), or manifests (a file, or `-` for stdin) whose pods to stop.
    #[arg(required = true, value_name = "FILE|POD", add = crate::complete::pod_or_file())]
    targets: Vec<String>,

    #[command(flatten)]
    stop: super::stop_options::StopArgs,
}

pub fn run(args: DownArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let mut pods: Vec<(String, String)> = Vec::new();
    let mut failed = false;
    for target in &args.targets {
        if target == "-" || Path::new(target).is_file() {
            let options = LoadOptions {
                namespace: namespace.map(str::to_string),
                ..LoadOptions::default()
            };
            let manifest = podrun_manifest::load_path(target, &options)?;
            for pod in &manifest.pods {
                pods.push((pod.namespace().to_string(), pod.name().to_string()));
            }
        } else {
            match podrun_pod::listing::resolve(&dirs, namespace, target) {
                Ok(pod) => pods.push(pod),
                // As for a pod named outright that does not exist.
                Err(e @ podrun_pod::listing::ResolveError::NotFound(_)) => eprintln!("{e}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
    }
    pods.dedup();
    for (namespace, name) in &pods {
        let shown = podrun_pod::display_name(namespace, name);
        // A `play` starting this pod holds its lock: wait for it, then remove what it made.
        let on_wait = || eprintln!("waiting for the `podrun play` that is starting pod {shown}");
        let on_slow = |waiting: &_| {
            eprintln!(
                "{}",
                args.stop
                    .waiting_message(&shown, waiting, "--grace-period 0")
            )
        };
        let how = args.stop.stop(EXTRA_WAIT, &on_slow, &|| false);
        match stop_and_remove(&dirs, namespace, name, Lock::Take(&on_wait), &how) {
            Ok(Removed::NotFound) => eprintln!("pod {shown} not found"),
            Ok(Removed::Removed) => println!("pod {shown} removed"),
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
