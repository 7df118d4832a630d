//! `podrun ps`: the pods of this user.

use std::process::ExitCode;

use clap::Args;
use podrun_pod::state::{age, PodEntry};

use crate::context::pod_dirs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PsFormat {
    /// NAME READY STATUS RESTARTS AGE, as kubectl prints pods.
    Table,
    /// Also the namespace, the supervisor's pid and the pod uid.
    Wide,
    /// The pods' state files with their status, as a JSON array.
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = PsFormat::Table)]
    output: PsFormat,
}

pub fn run(args: PsArgs) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let pods = podrun_pod::state::list(&dirs)?;
    match args.output {
        PsFormat::Json => {
            let list: Vec<serde_json::Value> = pods
                .iter()
                .map(|pod| {
                    let (ready, total) = ready(pod);
                    let metadata = podrun_pod::plan::PodMetadata::read(&pod.runtime_dir);
                    serde_json::json!({
                        "namespace": pod.namespace,
                        "name": pod.name,
                        "labels": metadata.labels,
                        "annotations": metadata.annotations,
                        "status": pod.status(),
                        "ready": format!("{ready}/{total}"),
                        "restarts": pod.state.as_ref().map(|s| s.restarts()).unwrap_or(0),
                        "supervisor_alive": pod.supervisor_alive,
                        "state": pod.state,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        PsFormat::Table | PsFormat::Wide => {
            if pods.is_empty() {
                eprintln!("No pods found.");
            } else {
                print_table(&pods, args.output == PsFormat::Wide);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ready(pod: &PodEntry) -> (usize, usize) {
    match &pod.state {
        Some(state) if pod.supervisor_alive => state.ready(),
        Some(state) => (0, state.containers.len()),
        None => (0, 0),
    }
}

/// Prints pods like `kubectl get pods` (`wide`: with namespace, supervisor pid and uid).
pub fn print_table(pods: &[PodEntry], wide: bool) {
    let mut header = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        header.insert(0, "NAMESPACE");
        header.extend(["SUPERVISOR", "UID"]);
    }
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|pod| {
            let (ready_count, total) = ready(pod);
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
            if wide {
                row.insert(0, pod.namespace.clone());
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
            }
            row
        })
        .collect();
    crate::output::print_table(&header, &rows);
}
