//! `podrun logs POD [-c CONTAINER] [-f]`

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use podrun_pod::plan::Plan;
use podrun_pod::state::PodState;

use crate::context::pod_dirs;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod: `NAME` (namespace `default`) or `NAMESPACE/NAME`.
    #[arg(value_name = "POD")]
    pod: String,

    /// The container (default: the pod's first container).
    #[arg(short, long, value_name = "NAME")]
    container: Option<String>,

    /// Keep printing what the container writes, until the pod is removed.
    #[arg(short, long)]
    follow: bool,
}

pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = podrun_pod::parse_pod_ref(&args.pod);
    let dir = dirs.runtime_dir(&namespace, &name);
    if !dir.is_dir() {
        bail!(
            "pod `{}` not found",
            podrun_pod::display_name(&namespace, &name)
        );
    }
    let containers: Vec<String> = match PodState::read(&dir) {
        Ok(state) => state.containers.into_iter().map(|c| c.name).collect(),
        Err(_) => Plan::read(&dir)?
            .containers
            .into_iter()
            .map(|c| c.name)
            .collect(),
    };
    let container = match args.container {
        Some(container) => {
            if !containers.contains(&container) {
                bail!(
                    "container `{container}` is not in pod `{}` (its containers: {})",
                    podrun_pod::display_name(&namespace, &name),
                    containers.join(", ")
                );
            }
            container
        }
        None => containers
            .first()
            .cloned()
            .context("the pod has no containers")?,
    };
    let path = dir.join("logs").join(format!("{container}.log"));
    let mut out = std::io::stdout().lock();
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.follow => {
            return Ok(ExitCode::SUCCESS)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut position = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        file.seek(SeekFrom::Start(position))?;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            position += n as u64;
            out.write_all(&buffer[..n])?;
        }
        out.flush()?;
        if !args.follow || !dir.is_dir() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(ExitCode::SUCCESS)
}
