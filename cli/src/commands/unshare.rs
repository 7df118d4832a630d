//! `podrun unshare [COMMAND...]`

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct UnshareArgs {
    /// The command to run (default: $SHELL, else /bin/sh).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// Runs the command in place of podrun, inside the user namespace entered by main.
pub fn run(args: &UnshareArgs) -> anyhow::Result<ExitCode> {
    let mut words = args.command.clone();
    if words.is_empty() {
        words.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
    }
    let error = std::process::Command::new(&words[0])
        .args(&words[1..])
        .exec();
    anyhow::bail!("cannot run `{}`: {error}", words[0])
}
