//! `podrun logs POD [-c CONTAINER] [-f] [--timestamps] [--tail N]`
//!
//! The container's log file holds CRI records (see `podrun_pod_model::logfile`); this prints
//! their text joined into lines, stdout and stderr alike to stdout, like kubectl, read
//! through podrun-pod's `LogReader` (which follows the supervisor's rotations).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::Args;
use podrun_pod::logs::LogReader;
use podrun_pod_model::plan::Plan;
use podrun_pod_model::state::PodState;

use crate::context::pod_dirs;
use crate::output::HintExt as _;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod: `NAME` (in `default`, or the only pod of that name; `-n NS NAME` in NS) or
    /// `NAMESPACE/NAME`.
    #[arg(value_name = "POD", add = crate::complete::pod())]
    pod: String,

    /// The container (default: the pod's first container).
    #[arg(short, long, value_name = "NAME", add = crate::complete::container())]
    container: Option<String>,

    /// Keep printing what the container writes, until the pod is removed.
    #[arg(short, long)]
    follow: bool,

    /// Begin each line with the time the container wrote it (RFC 3339, UTC, nanoseconds).
    #[arg(long)]
    timestamps: bool,

    /// Print only the last N lines (then, with -f, what comes).
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
}

pub fn run(args: LogsArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = super::resolve_pod(&dirs, namespace, &args.pod)?;
    let dir = dirs.runtime_dir(&namespace, &name);
    if !dir.is_dir() {
        return Err(anyhow!(
            "pod `{}` not found",
            podrun_pod::display_name(&namespace, &name)
        ))
        .hint("podrun ps lists the pods");
    }
    let containers: Vec<String> = match PodState::read(&dir) {
        // The app containers first: the default is the first of them.
        Ok(state) => state
            .containers
            .into_iter()
            .chain(state.init_containers)
            .map(|c| c.name)
            .collect(),
        Err(_) => {
            let plan = Plan::read(&dir)?;
            plan.containers
                .into_iter()
                .chain(plan.init_containers)
                .map(|c| c.name)
                .collect()
        }
    };
    let container = match args.container.clone() {
        Some(container) => {
            if !containers.contains(&container) {
                return Err(anyhow!(
                    "container `{container}` is not in pod `{}` (its containers: {})",
                    podrun_pod::display_name(&namespace, &name),
                    containers.join(", ")
                ))
                .hint(format!(
                    "name one of them: podrun logs {} -c NAME",
                    args.pod
                ));
            }
            container
        }
        None => containers
            .first()
            .cloned()
            .context("the pod has no containers")?,
    };
    let path = dirs.pod(&namespace, &name).container_log(&container);
    if !path.exists() && !args.follow {
        // The container has not started yet.
        return Ok(ExitCode::SUCCESS);
    }
    let mut log = LogReader::new(&path);
    print_log(&mut log, &dir, &args).with_context(|| format!("cannot print {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the log (its last `--tail` lines), then with `--follow` what is appended, until the
/// pod's runtime directory `dir` is gone.
fn print_log(log: &mut LogReader, dir: &Path, args: &LogsArgs) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut lines = log.read_history()?;
    // A line the container has not ended (yet) counts as a line.
    lines.extend(log.flush());
    let skip = args.tail.map_or(0, |n| lines.len().saturating_sub(n));
    for line in lines.into_iter().skip(skip) {
        line.write_to(&mut out, args.timestamps)?;
    }
    out.flush()?;
    while args.follow && dir.is_dir() {
        std::thread::sleep(Duration::from_millis(200));
        let new = log.read_new()?;
        let nothing_new = new.is_empty();
        for line in new {
            line.write_to(&mut out, args.timestamps)?;
        }
        if nothing_new {
            // Nothing new: show what there is of an unended line (a prompt, a progress bar).
            for line in log.flush() {
                line.write_to(&mut out, args.timestamps)?;
            }
        }
        out.flush()?;
    }
    Ok(())
}
