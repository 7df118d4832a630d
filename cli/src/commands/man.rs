//! `podrun __man DIR` (hidden; scripts/gen-man.sh runs it): man pages generated from the same
//! definitions as `--help`, `podrun.1` and one `podrun-COMMAND.1` per command (and
//! `podrun-COMMAND-SUBCOMMAND.1`), each titled with podrun's version.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing).
    dir: PathBuf,
}

pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut command = crate::Cli::command().disable_help_subcommand(true);
    // Gives each subcommand its display name (`podrun-ps`), the pages' names.
    command.build();
    write_pages(&command, &args.dir)
        .with_context(|| format!("cannot write the man pages into {}", args.dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The page of `command`, then those of its visible subcommands.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    clap_mangen::Man::new(command.clone())
        .source(format!("podrun {}", env!("CARGO_PKG_VERSION")))
        .manual("podrun manual")
        .generate_to(dir)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    Ok(())
}
