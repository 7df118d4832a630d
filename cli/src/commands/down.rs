//! `podrun down FILE|POD...`: stop pods and remove everything they left; for a file, also
//! the pods of its workloads and its Services (and with `--volumes` its claims' volumes,
//! which otherwise stay).

use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use podrun_manifest::{LoadOptions, Manifest};
use podrun_pod::remove::{stop_and_remove, Lock, Removed, EXTRA_WAIT};
use podrun_pod::PodDirs;
use podrun_pod_model::plan::Controller;

use crate::context::pod_dirs;

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Pods (`NAME`: in `default`, or the only pod of that name, or with -n in NS; or
    /// `NAMESPACE/NAME`), or manifests (a file, or `-` for stdin): their pods, the pods of
    /// their workloads (Deployments, StatefulSets, ...) and their Services are removed.
    #[arg(required = true, value_name = "FILE|POD", add = crate::complete::pod_or_file())]
    targets: Vec<String>,

    #[command(flatten)]
    stop: super::stop_options::StopArgs,

    /// Also remove the volumes of the files' PersistentVolumeClaims and of their
    /// StatefulSets' volumeClaimTemplates, with their data (as `podman kube down --force`);
    /// without it they stay for the next `play`.
    #[arg(long)]
    volumes: bool,
}

/// The pods a file made: its Pods by name, its workloads' pods by their controller (their
/// names have random parts).
pub fn pods_of_file(dirs: &PodDirs, manifest: &Manifest) -> Vec<(String, String)> {
    let mut pods = Vec::new();
    let mut controllers = Vec::new();
    for pod in &manifest.pods {
        match &pod.owner {
            None => pods.push((pod.namespace().to_string(), pod.name().to_string())),
            Some(owner) => controllers.push((
                pod.namespace().to_string(),
                Controller {
                    kind: owner.kind.name().to_string(),
                    name: owner.name.clone(),
                },
            )),
        }
    }
    if !controllers.is_empty() {
        for entry in podrun_pod::listing::list(dirs).unwrap_or_default() {
            let owned = entry.controller().is_some_and(|controller| {
                controllers.contains(&(entry.namespace.clone(), controller))
            });
            if owned {
                pods.push((entry.namespace, entry.name));
            }
        }
    }
    pods
}

/// Stops and removes one pod, saying so; false when it failed.
fn remove_pod(
    dirs: &PodDirs,
    stop: &super::stop_options::StopArgs,
    namespace: &str,
    name: &str,
) -> bool {
    let shown = podrun_pod::display_name(namespace, name);
    // A `play` starting this pod holds its lock: wait for it, then remove what it made.
    let on_wait = || eprintln!("waiting for the `podrun play` that is starting pod {shown}");
    let on_slow = |waiting: &_| {
        eprintln!(
            "{}",
            stop.waiting_message(&shown, waiting, "--grace-period 0")
        )
    };
    let how = stop.stop(EXTRA_WAIT, &on_slow, &|| false);
    match stop_and_remove(dirs, namespace, name, Lock::Take(&on_wait), &how) {
        Ok(Removed::NotFound) => eprintln!("pod {shown} not found"),
        Ok(Removed::Removed) => println!("pod {shown} removed"),
        Err(e) => {
            eprintln!("error: pod {shown}: {e}");
            return false;
        }
    }
    true
}

pub fn run(args: DownArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let mut pods: Vec<(String, String)> = Vec::new();
    let mut services: Vec<(String, String)> = Vec::new();
    let mut manifests = Vec::new();
    let mut failed = false;
    for target in &args.targets {
        if target == "-" || Path::new(target).is_file() {
            let options = LoadOptions {
                namespace: namespace.map(str::to_string),
                ..LoadOptions::default()
            };
            let manifest = podrun_manifest::load_path(target, &options)?;
            // A Job's controller first: it would replace the pods taken down.
            super::play_job::stop_jobs(&dirs, &manifest);
            pods.extend(pods_of_file(&dirs, &manifest));
            services.extend(manifest.services.iter().map(|s| {
                let meta = &s.service.metadata;
                (
                    meta.namespace.clone().unwrap_or_default(),
                    meta.name.clone().unwrap_or_default(),
                )
            }));
            manifests.push(manifest);
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
    // All at once: each waits out its own grace period, not the sum of them.
    let failures = std::thread::scope(|scope| {
        let stops: Vec<_> = pods
            .iter()
            .map(|(namespace, name)| scope.spawn(|| remove_pod(&dirs, &args.stop, namespace, name)))
            .collect();
        stops
            .into_iter()
            .map(|stop| stop.join().unwrap_or(false))
            .filter(|removed| !removed)
            .count()
    });
    failed |= failures > 0;
    if !services.is_empty() {
        let context = crate::context::Context::load()?;
        match super::play_services::unregister(&context, &services) {
            Ok(removed) => {
                for service in removed {
                    let shown = podrun_pod::display_name(&service.namespace, &service.name);
                    println!("service {shown} removed");
                }
            }
            Err(e) => {
                eprintln!("error: the file's Services: {e:#}");
                failed = true;
            }
        }
    }
    if args.volumes {
        for manifest in &manifests {
            failed |= !super::volume::remove_file_volumes(&dirs, manifest);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
