//! `podrun logs POD [-c CONTAINER] [-f] [--timestamps] [--tail N]`
//!
//! The container's log file holds CRI records (see `podrun_pod::logs`); this prints their text
//! joined into lines, stdout and stderr alike to stdout, like kubectl.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use clap::Args;
use podrun_pod::logs::{Line, Lines};
use podrun_pod::plan::Plan;
use podrun_pod::state::PodState;

use crate::context::pod_dirs;
use crate::output::HintExt as _;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod: `NAME` (namespace `default`) or `NAMESPACE/NAME`.
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

pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = podrun_pod::parse_pod_ref(&args.pod);
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
    let path = dir.join("logs").join(format!("{container}.log"));
    let mut file = match File::open(&path) {
        Ok(file) => file,
        // The container has not started yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.follow => {
            return Ok(ExitCode::SUCCESS)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    print_log(&mut file, &path, &dir, &args)
        .with_context(|| format!("cannot print {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the log (its last `--tail` lines), then with `--follow` what is appended, until the
/// pod's runtime directory `dir` is gone. `file` is the open `path`; the supervisor may
/// rotate it (`podrun_pod::logs`): the rotated file is read first, and `--follow` goes on
/// with the new file once the open one was renamed.
fn print_log(file: &mut File, path: &Path, dir: &Path, args: &LogsArgs) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut lines = Lines::default();
    let mut last = VecDeque::new();
    let mut keep = |line: Line| -> std::io::Result<()> {
        match args.tail {
            Some(n) => {
                last.push_back(line);
                if last.len() > n {
                    last.pop_front();
                }
                Ok(())
            }
            None => line.write_to(&mut out, args.timestamps),
        }
    };
    if let Ok(mut older) = File::open(podrun_pod::logs::rotated_path(path)) {
        // Unless the open file was rotated in between: it is the same file then.
        if !same_file(&older, file) {
            read_lines(&mut older, &mut lines, &mut keep)?;
        }
    }
    read_lines(file, &mut lines, &mut keep)?;
    // A line the container has not ended (yet) counts as a line.
    lines.flush().into_iter().try_for_each(&mut keep)?;
    for line in last {
        line.write_to(&mut out, args.timestamps)?;
    }
    out.flush()?;
    while args.follow && dir.is_dir() {
        std::thread::sleep(Duration::from_millis(200));
        let mut print = |line: Line| line.write_to(&mut out, args.timestamps);
        let mut new = read_lines(file, &mut lines, &mut print)?;
        if let Ok(current) = File::open(path) {
            if !same_file(&current, file) {
                // Rotated: what was written before the rename was read just now.
                *file = current;
                new |= read_lines(file, &mut lines, &mut print)?;
            }
        }
        if !new {
            // Nothing new: show what there is of an unended line (a prompt, a progress bar).
            lines.flush().into_iter().try_for_each(print)?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Both are the same file (device and inode).
fn same_file(a: &File, b: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Reads the file from where the last read ended to its end, giving every line ended to
/// `sink`; returns whether there was anything new.
fn read_lines(
    file: &mut File,
    lines: &mut Lines,
    sink: &mut dyn FnMut(Line) -> std::io::Result<()>,
) -> anyhow::Result<bool> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut any = false;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(any);
        }
        any = true;
        lines
            .push(&buffer[..n])
            .into_iter()
            .try_for_each(&mut *sink)?;
    }
}
