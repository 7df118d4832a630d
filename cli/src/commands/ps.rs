//! `podrun ps`: the pods of this user.

use std::process::ExitCode;

use clap::Args;
use podrun_pod::listing::{age, PodEntry};

use crate::context::pod_dirs;
use crate::output::{print_data, print_names, Format};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format: table (NAME READY STATUS RESTARTS AGE, as kubectl prints pods, and
    /// NAMESPACE first when the pods are of several namespaces), wide (also the namespace,
    /// the pod's IP, its published ports, the supervisor's pid, the pod uid and the owner of
    /// `play --owner-pid`), json or yaml (a Kubernetes `v1` `PodList`, as `kubectl get pods -o
    /// json` prints it, with podrun's own fields under each item's `x-podrun`).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,

    /// Print only the pods' names (NAMESPACE/NAME outside the default namespace), one per
    /// line.
    #[arg(short, long, conflicts_with = "output")]
    quiet: bool,
}

/// `namespace`: `-n`, the only namespace to list.
pub fn run(args: PsArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let mut pods = podrun_pod::listing::list(&dirs)?;
    pods.retain(|pod| namespace.is_none_or(|ns| pod.namespace == ns));
    if args.quiet {
        let names: Vec<String> = pods.iter().map(pod_ref).collect();
        print_names(names.iter().map(String::as_str));
        return Ok(ExitCode::SUCCESS);
    }
    match args.output {
        format if format.is_data() => print_data(&crate::kube::pod_list(&pods), format)?,
        format => {
            if pods.is_empty() {
                match namespace {
                    Some(ns) => eprintln!("No pods found in {ns} namespace."),
                    None => eprintln!("No pods found."),
                }
            } else {
                print_table(&pods, format == Format::Wide);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How commands take the pod: `NAME` in the default namespace, else `NAMESPACE/NAME`.
pub fn pod_ref(pod: &PodEntry) -> String {
    if pod.namespace == podrun_manifest::DEFAULT_NAMESPACE {
        pod.name.clone()
    } else {
        podrun_pod::display_name(&pod.namespace, &pod.name)
    }
}

/// Prints `pods` as `-o format` asks (a table, or a PodList for json and yaml): `ps`'s output,
/// and `play`'s once its pods have started.
pub fn print_pods(pods: &[PodEntry], format: Format) -> anyhow::Result<()> {
    if format.is_data() {
        print_data(&crate::kube::pod_list(pods), format)
    } else {
        print_table(pods, format == Format::Wide);
        Ok(())
    }
}

/// Prints pods like `kubectl get pods` (`wide`: with namespace, IP, published ports,
/// supervisor pid, uid and owner); the namespace also when the pods are of several
/// namespaces, as `kubectl get pods -A` shows it; WORKLOAD (`Deployment/api`) when a pod
/// is a workload's replica.
pub fn print_table(pods: &[PodEntry], wide: bool) {
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    let namespaces: std::collections::BTreeSet<&str> =
        pods.iter().map(|pod| pod.namespace.as_str()).collect();
    let with_namespace = wide || namespaces.len() > 1;
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    // The workload a pod is a replica of (its controller), when any pod has one.
    let controllers: Vec<Option<String>> = pods
        .iter()
        .map(|pod| pod.controller().map(|c| c.to_string()))
        .collect();
    let with_workload = controllers.iter().any(Option::is_some);
    if with_workload {
        header.push("WORKLOAD");
    }
    if wide {
        header.extend(["IP", "PORTS", "SUPERVISOR", "UID", "OWNER"]);
    }
    let rows: Vec<Vec<String>> = pods
        .iter()
        .zip(&controllers)
        .map(|(pod, controller)| {
            let (ready_count, total) = crate::kube::ready(pod);
            let mut row = vec![
                pod.name.clone(),
                format!("{ready_count}/{total}"),
                pod.status(),
                pod.state
                    .as_ref()
                    .map(|s| s.restarts())
                    .unwrap_or(0)
                    .to_string(),
                pod.state
                    .as_ref()
                    .map(|s| age(&s.created))
                    .unwrap_or_else(|| "<unknown>".into()),
            ];
            if with_namespace {
                row.insert(0, pod.namespace.clone());
            }
            if with_workload {
                row.push(controller.clone().unwrap_or_else(|| "<none>".into()));
            }
            if wide {
                let plan = podrun_pod_model::plan::Plan::read(&pod.runtime_dir).ok();
                let ip = crate::kube::pod_ip(pod, plan.as_ref());
                row.push(ip.unwrap_or_else(|| "<none>".into()));
                let ports = plan.map(|p| p.ports).unwrap_or_default();
                row.push(match ports.is_empty() {
                    true => "<none>".into(),
                    false => crate::kube::ports_text(&ports),
                });
                row.push(
                    pod.state
                        .as_ref()
                        .map(|s| s.supervisor_pid.to_string())
                        .unwrap_or_else(|| "-".into()),
                );
                row.push(
                    pod.state
                        .as_ref()
                        .map(|s| s.uid.clone())
                        .unwrap_or_else(|| "-".into()),
                );
                row.push(
                    pod.state
                        .as_ref()
                        .and_then(|s| s.owner.as_ref())
                        .map_or_else(|| "-".into(), |owner| owner.to_string()),
                );
            }
            row
        })
        .collect();
    crate::output::print_table(&header, &rows);
}
