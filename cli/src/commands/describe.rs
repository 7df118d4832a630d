//! `podrun describe POD`: a pod's containers (init and app) with their state, reason, exit
//! codes, restarts and times, and the pod's events, laid out as `kubectl describe pod`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use podrun_pod::listing::{age, PodEntry};
use podrun_pod_model::state::{ContainerState, ContainerStatus, PodState};

use crate::context::pod_dirs;
use crate::output::{print_data, Format, HintExt as _};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DescribeFormat {
    /// Sections as `kubectl describe pod` prints them.
    Text,
    /// The pod as a Kubernetes `v1` `Pod` (an item of `ps -o json`), as JSON.
    Json,
    /// The same data as YAML.
    Yaml,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The pod: NAME (in `default`, or the only pod of that name; `-n NS NAME` in NS) or
    /// NAMESPACE/NAME.
    #[arg(value_name = "POD", add = crate::complete::pod())]
    pod: String,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = DescribeFormat::Text)]
    output: DescribeFormat,
}

pub fn run(args: DescribeArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = super::resolve_pod(&dirs, namespace, &args.pod)?;
    let dir = dirs.runtime_dir(&namespace, &name);
    let shown = podrun_pod::display_name(&namespace, &name);
    let Some(entry) = podrun_pod::listing::entry(&dir).filter(|_| dir.is_dir()) else {
        bail!("pod `{shown}` not found\nhint: podrun ps lists the pods");
    };
    let Some(state) = &entry.state else {
        return Err(anyhow::anyhow!(
            "pod `{shown}` has no state yet (it is being started, or its start failed)"
        ))
        .hint(format!(
            "run it again in a moment; if the start failed, `podrun down {shown}` removes the pod"
        ));
    };
    match args.output {
        DescribeFormat::Json | DescribeFormat::Yaml => {
            let plan = podrun_pod_model::plan::Plan::read(&entry.runtime_dir).ok();
            let json = crate::kube::pod(&entry, plan.as_ref(), &crate::kube::Node::this_host());
            let format = match args.output {
                DescribeFormat::Yaml => Format::Yaml,
                _ => Format::Json,
            };
            print_data(&json, format)?;
        }
        DescribeFormat::Text => print!("{}", describe(&entry, state)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The text of `podrun describe`.
fn describe(entry: &PodEntry, state: &PodState) -> String {
    let mut out = String::new();
    let field = |out: &mut String, indent: usize, key: &str, value: &str| {
        let key = format!("{key}:");
        out.push_str(&format!(
            "{:indent$}{key:<width$}{value}\n",
            "",
            width = 20usize.saturating_sub(indent)
        ));
    };
    field(&mut out, 0, "Name", &state.pod);
    field(&mut out, 0, "Namespace", &state.namespace);
    let node = crate::kube::Node::this_host();
    field(&mut out, 0, "Node", &format!("{}/{}", node.name, node.ip));
    let metadata = podrun_pod_model::plan::PodMetadata::read(&entry.runtime_dir);
    field(&mut out, 0, "Labels", &metadata.labels_text(20));
    field(&mut out, 0, "Annotations", &metadata.annotations_text(20));
    field(&mut out, 0, "Start Time", &state.created);
    field(&mut out, 0, "Status", &entry.status());
    field(&mut out, 0, "Phase", state.phase.as_str());
    for (key, value) in [("Reason", &state.reason), ("Message", &state.message)] {
        if let Some(value) = value {
            field(&mut out, 0, key, value);
        }
    }
    let plan = podrun_pod_model::plan::Plan::read(&entry.runtime_dir).ok();
    let ip = crate::kube::pod_ip(entry, plan.as_ref());
    field(&mut out, 0, "IP", ip.as_deref().unwrap_or("<none>"));
    let ports: Vec<String> = plan
        .iter()
        .flat_map(|p| &p.ports)
        .map(ToString::to_string)
        .collect();
    let ports = match ports.is_empty() {
        true => "<none>".to_string(),
        false => ports.join(&format!("\n{:20}", "")),
    };
    field(&mut out, 0, "Ports", &ports);
    field(&mut out, 0, "Restart Policy", state.restart_policy.as_str());
    field(&mut out, 0, "UID", &state.uid);
    field(&mut out, 0, "Supervisor", &supervisor(entry, state));
    if let Some(owner) = &state.owner {
        // `play --owner-pid`: the pod goes when this process ends.
        field(&mut out, 0, "Owner", &format!("pid {owner}"));
    }
    let sections = [
        ("Init Containers", &state.init_containers),
        ("Containers", &state.containers),
    ];
    for (title, containers) in sections {
        if containers.is_empty() {
            continue;
        }
        out.push_str(&format!("{title}:\n"));
        for container in containers {
            container_text(&mut out, container, &field);
        }
    }
    out.push_str(&events_text(state));
    out
}

fn supervisor(entry: &PodEntry, state: &PodState) -> String {
    if entry.supervisor_alive {
        format!("pid {}", state.supervisor_pid)
    } else {
        format!("pid {} (gone: the pod is lost)", state.supervisor_pid)
    }
}

fn container_text(
    out: &mut String,
    c: &ContainerState,
    field: &impl Fn(&mut String, usize, &str, &str),
) {
    out.push_str(&format!("  {}:\n", c.name));
    field(out, 4, "Image", &c.image);
    if c.sidecar {
        field(out, 4, "Restart Policy", "Always (sidecar)");
    }
    let now_state = match c.state {
        ContainerStatus::Running if c.reason.as_deref() == Some("ContainerCreating") => "Waiting",
        ContainerStatus::Running => "Running",
        ContainerStatus::Exited => "Terminated",
        ContainerStatus::Waiting => "Waiting",
    };
    field(out, 4, "State", now_state);
    let show = |out: &mut String, key: &str, value: &Option<String>| {
        if let Some(value) = value {
            field(out, 6, key, value);
        }
    };
    show(out, "Reason", &c.reason);
    show(out, "Message", &c.message);
    match now_state {
        "Running" => show(out, "Started", &c.started_at),
        "Terminated" => {
            show(out, "Exit Code", &c.exit_code.map(|e| e.to_string()));
            show(out, "Started", &c.started_at);
            show(out, "Finished", &c.finished_at);
        }
        _ => {}
    }
    if now_state != "Terminated" && c.exit_code.is_some() {
        field(out, 4, "Last State", "Terminated");
        let reason = match c.exit_code {
            Some(0) => "Completed",
            _ => "Error",
        };
        field(out, 6, "Reason", reason);
        show(out, "Message", &c.termination_message);
        show(out, "Exit Code", &c.exit_code.map(|e| e.to_string()));
        show(out, "Finished", &c.finished_at);
    }
    field(out, 4, "Ready", if c.ready { "True" } else { "False" });
    field(out, 4, "Restart Count", &c.restart_count.to_string());
    for probe in &c.probes {
        field(out, 4, probe.probe.title(), &probe_text(probe));
    }
    if let Some(pid) = c.pid {
        field(out, 4, "PID", &pid.to_string());
    }
}

/// A probe's verdict and its last run: `Failure (last run: failure at TIME: MESSAGE; 2
/// failures in a row)`.
fn probe_text(probe: &podrun_pod_model::probe::ProbeStatus) -> String {
    let word = |r: podrun_pod_model::probe::ProbeResult| format!("{r:?}");
    let mut text = word(probe.result);
    if let (Some(last), Some(time)) = (probe.last_result, &probe.last_time) {
        let failed = last == podrun_pod_model::probe::ProbeResult::Failure;
        let count = if failed {
            probe.consecutive_failures
        } else {
            probe.consecutive_successes
        };
        let noun = match (failed, count == 1) {
            (true, true) => "failure",
            (true, false) => "failures",
            (false, true) => "success",
            (false, false) => "successes",
        };
        text.push_str(&format!(
            " (last run: {} at {time}",
            word(last).to_lowercase()
        ));
        if !probe.last_message.trim().is_empty() {
            text.push_str(&format!(": {}", probe.last_message.trim()));
        }
        text.push_str(&format!("; {count} {noun} in a row)"));
    }
    text
}

fn events_text(state: &PodState) -> String {
    if state.events.is_empty() {
        return "Events:             <none>\n".into();
    }
    let header = ["Type", "Reason", "Age", "From", "Message"];
    let rows: Vec<[String; 5]> = state
        .events
        .iter()
        .map(|e| {
            let age = if e.count > 1 {
                format!(
                    "{} (x{} over {})",
                    age(&e.last_time),
                    e.count,
                    age(&e.first_time)
                )
            } else {
                age(&e.last_time)
            };
            let from = match &e.container {
                Some(c) => format!("podrun/{c}"),
                None => "podrun".into(),
            };
            [
                e.kind.as_str().to_string(),
                e.reason.clone(),
                age,
                from,
                e.message.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut text = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = String::from("Events:\n");
    out.push_str(&line(header));
    out.push_str(&line(
        header.map(|h| "----".get(..h.len().min(4)).unwrap_or("----")),
    ));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}
