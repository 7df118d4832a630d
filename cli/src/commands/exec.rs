//! `podrun exec [-i] POD [-c NAME] -- CMD...`: run a command in a running container.

use std::os::fd::AsRawFd;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Args;

use crate::context::pod_dirs;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod: `NAME` (namespace `default`) or `NAMESPACE/NAME`.
    #[arg(value_name = "POD")]
    pod: String,

    /// The container (default: the pod's first container).
    #[arg(short, long, value_name = "NAME")]
    container: Option<String>,

    /// Pass stdin to the command (otherwise it reads /dev/null).
    #[arg(short, long)]
    interactive: bool,

    /// Allocate a terminal (not supported yet).
    #[arg(short, long)]
    tty: bool,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs single-threaded (no async runtime): it joins the pod's user namespace.
pub fn run(args: ExecArgs) -> anyhow::Result<ExitCode> {
    if args.tty {
        bail!("podrun exec: -t/--tty is not supported yet (use -i without a terminal)");
    }
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = podrun_pod::parse_pod_ref(&args.pod);
    let config = podrun_pod::exec::exec_config(
        &dirs,
        &namespace,
        &name,
        args.container.as_deref(),
        args.command,
    )?;
    if !args.interactive {
        let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
        nix::unistd::dup2(null.as_raw_fd(), 0).context("cannot redirect stdin")?;
    }
    let shown = podrun_pod::display_name(&namespace, &name);
    let code = podrun_runtime::exec_in_container(config)
        .with_context(|| format!("pod `{shown}`: exec failed"))?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
