//! `podrun exec [-i] [-t] POD [-c NAME] -- CMD...`: run a command in a running container.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use nix::sys::termios::{self, SetArg, Termios};

use crate::context::pod_dirs;

#[derive(Debug, Args)]
#[command(after_help = "\
The command's exit code is podrun's (128+N when signal N ended it). SIGTERM, SIGINT and \
SIGHUP sent to podrun are passed on to the command.

With -t the command gets a terminal of the container as stdin, stdout, stderr and \
controlling terminal, with TERM from podrun's environment (default xterm) and podrun's \
window size (also after a resize). With -i as well, podrun's terminal is put into raw mode \
while the command runs, so keys such as Ctrl-C reach the command. -t needs stdin to be a \
terminal: otherwise podrun warns \"Unable to use a TTY - input is not a terminal\" and runs \
the command without one, as kubectl does.

Examples:
  podrun exec web -- nginx -T
  podrun exec -it web -c debug -- sh")]
pub struct ExecArgs {
    /// The pod: `NAME` (in `default`, or the only pod of that name; `-n NS NAME` in NS) or
    /// `NAMESPACE/NAME`.
    #[arg(value_name = "POD", add = crate::complete::pod())]
    pod: String,

    /// The container (default: the pod's first container).
    #[arg(short, long, value_name = "NAME", add = crate::complete::container())]
    container: Option<String>,

    /// Pass stdin to the command (otherwise it reads /dev/null, or nothing with -t).
    #[arg(short, long)]
    interactive: bool,

    /// Give the command a terminal (stdin must be a terminal).
    #[arg(short, long)]
    tty: bool,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs single-threaded (no async runtime): it joins the pod's user namespace.
pub fn run(args: ExecArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = super::resolve_pod(&dirs, namespace, &args.pod)?;
    let mut config = podrun_pod::exec::exec_config(
        &dirs,
        &namespace,
        &name,
        args.container.as_deref(),
        args.command,
    )?;
    let tty = args.tty && stdin_is_terminal();
    if args.tty && !tty {
        eprintln!("Unable to use a TTY - input is not a terminal");
    }
    if !args.interactive && !tty {
        let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
        nix::unistd::dup2(null.as_raw_fd(), 0).context("cannot redirect stdin")?;
    }
    // Raw only when the keys go to the command; restored when this guard drops, on every
    // way out of this function (the command's end, an error, a panic).
    let _raw = if tty && args.interactive {
        Some(RawMode::enter().context("cannot put the terminal into raw mode")?)
    } else {
        None
    };
    if tty {
        config.tty = Some(podrun_runtime::ExecTty {
            term: std::env::var("TERM")
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "xterm".into()),
            input: args.interactive,
            size_from: Some(libc::STDIN_FILENO),
        });
    }
    let shown = podrun_pod::display_name(&namespace, &name);
    let code = podrun_runtime::exec_in_container(config)
        .with_context(|| format!("pod `{shown}`: exec failed"))?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn stdin_is_terminal() -> bool {
    nix::unistd::isatty(libc::STDIN_FILENO).unwrap_or(false)
}

/// podrun's terminal (stdin) in raw mode while this lives.
pub(crate) struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub(crate) fn enter() -> nix::Result<RawMode> {
        let stdin = stdin_fd();
        let saved = termios::tcgetattr(stdin)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin, SetArg::TCSANOW, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(stdin_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn stdin_fd() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the whole life of the process.
    unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) }
}
