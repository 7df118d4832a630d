//! `podrun completions SHELL`: the shell script that completes podrun's subcommands, options,
//! and the names of pods and containers (see `crate::complete`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use clap_complete::env::EnvCompleter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Load the completions in every new shell (they ask podrun for pods and containers as you type):
  bash: echo 'source <(podrun completions bash)' >> ~/.bashrc
  zsh:  echo 'source <(podrun completions zsh)' >> ~/.zshrc
  fish: echo 'podrun completions fish | source' >> ~/.config/fish/config.fish")]
pub struct CompletionsArgs {
    /// The shell to print the script for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &clap_complete::env::Bash,
        Shell::Zsh => &clap_complete::env::Zsh,
        Shell::Fish => &clap_complete::env::Fish,
    };
    let mut script = Vec::new();
    shell.write_registration(
        crate::complete::ENV_VAR,
        "podrun",
        "podrun",
        &completer(),
        &mut script,
    )?;
    std::io::stdout().write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// How the script calls podrun back: as it was called now (`podrun` from PATH, or the same
/// path, made absolute).
fn completer() -> String {
    let program = PathBuf::from(
        std::env::args_os()
            .next()
            .unwrap_or_else(|| "podrun".into()),
    );
    let program = if program.components().count() > 1 {
        std::env::current_dir()
            .map(|dir| dir.join(&program))
            .unwrap_or(program)
    } else {
        program
    };
    program.to_string_lossy().into_owned()
}
