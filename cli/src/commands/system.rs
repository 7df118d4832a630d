//! `podrun system check` (what the host lacks for rootless pods, and the commands that fix
//! it) and `podrun system config` (the effective configuration and where each value came
//! from).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use podrun_config::{Origin, Paths, Setting};
use podrun_hostcheck::{Check, Host, Status};

#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check this host for what rootless pods need, and print the command that fixes each
    /// problem.
    ///
    /// Checks user namespaces (and the sysctls that forbid them), the user's subordinate id
    /// ranges, newuidmap/newgidmap, XDG_RUNTIME_DIR, overlayfs in a user namespace (mounted for
    /// real in a throw-away child process, on the store's file system), /dev/net/tun,
    /// slirp4netns and pasta, cgroup delegation, free space in the store, the configuration
    /// file and registry credential files. Exits with 0 when everything `podrun play` needs is
    /// there (warnings allowed), 1 otherwise.
    Check(CheckArgs),
    /// Print the effective configuration and where each value came from: `default`, the
    /// configuration file, or an environment variable (PODRUN_CONFIG, XDG_CONFIG_HOME,
    /// XDG_DATA_HOME, XDG_RUNTIME_DIR).
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format: aligned lines for people, or a JSON list of the checks with all their
    /// fields (id, title, status, detail, fix, needed_for_play).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckFormat::Text)]
    pub output: CheckFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Output format: a table (KEY, VALUE, SOURCE), a JSON list, or a TOML file with the
    /// source of each value as a comment (usable as a config file).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ConfigFormat::Table)]
    pub output: ConfigFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormat {
    Table,
    Json,
    Toml,
}

pub fn run(args: SystemArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SystemCommand::Check(args) => check(&args),
        SystemCommand::Config(args) => config(&args),
    }
}

/// Runs every check. Forks probe children: must run while the process is single-threaded.
fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let checks = podrun_hostcheck::run_all(&Host::current(paths));
    match args.output {
        CheckFormat::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        CheckFormat::Text => print!("{}", render_checks(&checks, use_colour())),
    }
    let blocked = checks.iter().any(Check::blocks_play);
    Ok(if blocked {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
fn use_colour() -> bool {
    colour_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    )
}

fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// One aligned line per check (status, title, detail), a `fix:` line under each problem
/// that has one, and a verdict.
fn render_checks(checks: &[Check], colour: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let title_width = checks.iter().map(|c| c.title.len()).max().unwrap_or(0);
    let status_width = "warning".len();
    for check in checks {
        let name = check.status.name();
        let padded = format!("{name:<status_width$}");
        let status = if colour {
            let code = match check.status {
                Status::Ok => "32",
                Status::Warning => "33",
                Status::Error => "31",
            };
            format!("\x1b[{code}m{padded}\x1b[0m")
        } else {
            padded
        };
        // Continuation lines (a TOML parse error quotes the file) stay in the detail column.
        let indent = " ".repeat(status_width + 2 + title_width + 2);
        let mut lines = check.detail.lines();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(out, "{status}  {:<title_width$}  {first}", check.title);
        for line in lines {
            let _ = writeln!(out, "{indent}{line}");
        }
        if let Some(fix) = check.fix.as_ref().filter(|_| check.status != Status::Ok) {
            let _ = writeln!(out, "{indent}fix: {fix}");
        }
    }
    let errors = checks.iter().filter(|c| c.status == Status::Error).count();
    let warnings = checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    let counts = format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    );
    out.push('\n');
    if checks.iter().any(Check::blocks_play) {
        let _ = writeln!(
            out,
            "podrun play cannot work here: fix the errors above ({counts})"
        );
    } else if errors + warnings == 0 {
        out.push_str("podrun play has everything it needs\n");
    } else {
        let _ = writeln!(
            out,
            "podrun play can run here ({counts} about what some pods or options need)"
        );
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn config(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let settings = podrun_config::effective_settings(
        &paths,
        |name| std::env::var_os(name).map(std::path::PathBuf::from),
        podrun_userns::is_root_in_initial_namespace(),
    )?;
    match args.output {
        ConfigFormat::Table => {
            let rows: Vec<Vec<String>> = settings
                .iter()
                .map(|s| vec![s.key(), shown_value(s), s.origin.to_string()])
                .collect();
            crate::output::print_table(&["KEY", "VALUE", "SOURCE"], &rows);
        }
        ConfigFormat::Json => {
            let list: Vec<serde_json::Value> = settings
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "key": s.key(),
                        "section": s.section,
                        "name": s.name,
                        "value": s.value,
                        "source": source_json(&s.origin),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        ConfigFormat::Toml => print!("{}", as_toml(&settings)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Config values as TOML writes them; directories as plain paths.
fn shown_value(setting: &Setting) -> String {
    match (&setting.value, setting.section.as_str()) {
        (toml::Value::String(text), "paths") => text.clone(),
        (value, _) => value.to_string(),
    }
}

/// `"default"`, `"file"` or `"env"` with the file or variable.
fn source_json(origin: &Origin) -> serde_json::Value {
    match origin {
        Origin::Default => serde_json::json!({"kind": "default"}),
        Origin::File(path) => serde_json::json!({"kind": "file", "path": path}),
        Origin::Env(name) => serde_json::json!({"kind": "env", "variable": name}),
    }
}

/// A configuration file with every effective value, each followed by its source; the
/// directories (which the file cannot set) as comments first.
fn as_toml(settings: &[Setting]) -> String {
    let mut text =
        String::from("# podrun's effective configuration; after each value, where it came from.\n");
    for setting in settings.iter().filter(|s| s.section == "paths") {
        text.push_str(&format!(
            "# {} = {}  ({})\n",
            setting.name,
            shown_value(setting),
            setting.origin
        ));
    }
    let mut section = "";
    for setting in settings.iter().filter(|s| s.section != "paths") {
        if setting.section != section {
            section = &setting.section;
            text.push_str(&format!("\n[{section}]\n"));
        }
        text.push_str(&format!(
            "{} = {}  # {}\n",
            setting.name, setting.value, setting.origin
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(title: &'static str, status: Status, fix: Option<&str>) -> Check {
        Check {
            id: "x",
            title,
            status,
            detail: format!("{title} detail"),
            fix: fix.map(str::to_string),
            needed_for_play: true,
        }
    }

    #[test]
    fn lines_align_and_fixes_follow_problems() {
        let checks = [
            check("short", Status::Ok, None),
            check("a longer title", Status::Error, Some("sudo fix-it")),
        ];
        let text = render_checks(&checks, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok       short           short detail");
        assert_eq!(lines[1], "error    a longer title  a longer title detail");
        assert_eq!(lines[2], "                         fix: sudo fix-it");
        assert!(
            lines[4].starts_with("podrun play cannot work here"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(render_checks(&checks, true).contains("\x1b[31merror  \x1b[0m"));
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
