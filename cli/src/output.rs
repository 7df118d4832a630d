//! Shared output helpers: tables, sizes, ages, errors, output formats.

use std::io::IsTerminal;

/// `-o` values of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// The table with more columns.
    Wide,
    /// A JSON array for scripts.
    Json,
    /// The same data as YAML.
    Yaml,
}

impl Format {
    /// `json` or `yaml`: data for programs rather than a table.
    pub fn is_data(self) -> bool {
        matches!(self, Format::Json | Format::Yaml)
    }
}

/// Prints `value` as JSON (pretty) or, with `-o yaml`, as YAML, on stdout.
pub fn print_data<T: serde::Serialize>(value: &T, format: Format) -> anyhow::Result<()> {
    let text = match format {
        Format::Yaml => serde_yaml_ng::to_string(value)?,
        _ => serde_json::to_string_pretty(value)? + "\n",
    };
    print!("{text}");
    Ok(())
}

/// Prints one name per line (`--quiet`), for scripts such as `podrun down $(podrun ps -q)`.
pub fn print_names<'a>(names: impl IntoIterator<Item = &'a str>) {
    for name in names {
        println!("{name}");
    }
}

/// Prints rows as left-aligned columns separated by three spaces, as kubectl does.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        println!("{}", text.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Sizes as docker and podman print them: decimal units, three significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// "5 minutes ago" from an RFC 3339 time.
pub fn human_age(rfc3339: Option<&str>) -> String {
    let Some(time) = rfc3339.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return "unknown".into();
    };
    let seconds = (chrono::Utc::now() - time.with_timezone(&chrono::Utc)).num_seconds();
    let (n, unit) = match seconds {
        s if s < 60 => return "less than a minute ago".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86400 => (s / 3600, "hour"),
        s if s < 86400 * 30 => (s / 86400, "day"),
        s if s < 86400 * 365 => (s / (86400 * 30), "month"),
        s => (s / (86400 * 365), "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Whether stderr is a terminal (progress bars only then).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The streams podrun writes to: data on stdout, logs and errors on stderr.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether to colour what goes to `stream`: only a terminal, and never with NO_COLOR set
/// (to anything but the empty string, as no-color.org asks).
pub fn colour(stream: Stream) -> bool {
    let terminal = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    colour_allowed(std::env::var_os("NO_COLOR").as_deref(), terminal)
}

fn colour_allowed(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// A fix for an error, attached as its context: `print_error` shows it on a `hint:` line
/// after the message, wherever it is in the chain (as libraries' `\nhint: …` lines are).
#[derive(Debug)]
pub struct Hint(pub String);

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hint: {}", self.0)
    }
}

/// `.hint("…")` on results, next to anyhow's `.context("…")`.
pub trait HintExt<T> {
    fn hint(self, text: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E> HintExt<T> for Result<T, E>
where
    Result<T, E>: anyhow::Context<T, E>,
{
    fn hint(self, text: impl Into<String>) -> anyhow::Result<T> {
        anyhow::Context::context(self, Hint(text.into()))
    }
}

/// Prints an error the way a user wants it (see [`render_error`]); every cause with
/// `--debug`, or with PODRUN_LOG at debug or trace level.
pub fn print_error(error: &anyhow::Error, debug: bool) {
    let debug = debug
        || std::env::var("PODRUN_LOG").is_ok_and(|v| v.contains("debug") || v.contains("trace"));
    let chain: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
    eprint!("{}", render_error(&chain, debug, colour(Stream::Stderr)));
}

/// The text of an error whose chain of messages (outermost first) is `chain`: `error: ` and
/// what failed, each cause that adds something appended after `: ` (the first line of a
/// message is joined, its other lines follow below), then every `hint:` line of the chain,
/// once, last. With `debug`, every message of the chain, repeated or not, on `caused by:`
/// lines of its own.
pub fn render_error(chain: &[String], debug: bool, colour: bool) -> String {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut hints: Vec<&str> = Vec::new();
    let mut head = String::new();
    let mut below: Vec<String> = Vec::new();
    let mut shown = String::new();
    for message in chain {
        let mut body = Vec::new();
        for line in message.lines() {
            match line.strip_prefix("hint:").map(str::trim) {
                Some(hint) if !hints.contains(&hint) => hints.push(hint),
                Some(_) => {}
                None => body.push(line),
            }
        }
        let Some((first, rest)) = body.split_first() else {
            continue;
        };
        if head.is_empty() {
            head = first.to_string();
            below.extend(rest.iter().map(|line| line.to_string()));
        } else if debug {
            below.push(format!("  {} {first}", paint("2", "caused by:")));
            below.extend(rest.iter().map(|line| format!("    {line}")));
        } else if !shown.contains(first.trim()) {
            head.push_str(&format!(": {first}"));
            below.extend(rest.iter().map(|line| line.to_string()));
        }
        shown.push_str(message);
    }
    let mut out = format!("{} {head}\n", paint("1;31", "error:"));
    for line in below {
        out.push_str(&line);
        out.push('\n');
    }
    for hint in hints {
        out.push_str(&format!("{} {hint}\n", paint("1;36", "hint:")));
    }
    out
}

/// A panic is a bug of podrun: say so in two lines and ask for a report, instead of Rust's
/// message (the exit status stays Rust's 101). With `--debug` or RUST_BACKTRACE, where it
/// happened and the backtrace too.
pub fn install_panic_hook(debug: bool) {
    let details = debug || std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("podrun: internal error: {}", panic_message(info.payload()));
        if details {
            if let Some(location) = info.location() {
                eprintln!("  at {location}");
            }
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        eprintln!("hint: this is a bug in podrun; please report it with the output of the same command run with --debug");
    }));
}

/// What a panic said (`panic!("…")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Log lines for people: `warning: …` like the `error: …` lines, no timestamps; with
/// `--debug`, the level and target too; with `timestamps`, the UTC time of day in
/// microseconds first.
pub struct LogFormat {
    pub debug: bool,
    pub timestamps: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LogFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let label = match *meta.level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        if self.timestamps {
            write!(writer, "{} ", chrono::Utc::now().format("%H:%M:%S%.6f"))?;
        }
        if self.debug {
            write!(writer, "{label} [{}]: ", meta.target())?;
        } else {
            write!(writer, "{label}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(62_100_000), "62.1MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }

    fn chain(messages: &[&str]) -> Vec<String> {
        messages.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn an_error_is_one_line_then_its_hints() {
        let text = render_error(
            &chain(&[
                "cannot open the image store in /d",
                "Permission denied (os error 13)",
            ]),
            false,
            false,
        );
        assert_eq!(
            text,
            "error: cannot open the image store in /d: Permission denied (os error 13)\n"
        );
        // A cause already told by the message is not repeated; hints come last, once.
        let text = render_error(
            &chain(&[
                "pod `default/web` not found\nhint: podrun ps lists the pods",
                "hint: podrun ps lists the pods",
                "pod `default/web` not found",
            ]),
            false,
            false,
        );
        assert_eq!(
            text,
            "error: pod `default/web` not found\nhint: podrun ps lists the pods\n"
        );
    }

    #[test]
    fn a_hint_given_as_context_follows_the_message() {
        let error = Err::<(), _>(std::io::Error::other("no such file"))
            .hint("create it first")
            .unwrap_err()
            .context("cannot read /etc/x");
        let messages: Vec<String> = error.chain().map(|c| c.to_string()).collect();
        assert_eq!(
            render_error(&messages, false, false),
            "error: cannot read /etc/x: no such file\nhint: create it first\n"
        );
    }

    #[test]
    fn debug_shows_every_cause() {
        let text = render_error(
            &chain(&["cannot pull busybox: layer failed", "layer failed"]),
            true,
            false,
        );
        assert_eq!(
            text,
            "error: cannot pull busybox: layer failed\n  caused by: layer failed\n"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_allowed(None, true));
        assert!(colour_allowed(Some(OsStr::new("")), true));
        assert!(!colour_allowed(Some(OsStr::new("1")), true));
        assert!(!colour_allowed(None, false));
        let text = render_error(&chain(&["x\nhint: y"]), false, true);
        assert_eq!(
            text,
            "\x1b[1;31merror:\x1b[0m x\n\x1b[1;36mhint:\x1b[0m y\n"
        );
    }

    #[test]
    fn a_panic_is_told_by_its_message() {
        let payload = std::panic::catch_unwind(|| panic!("index {} out of range", 3)).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "index 3 out of range");
        let payload = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "plain");
    }

    #[test]
    fn yaml_and_json_print_the_same_data() {
        let value = serde_json::json!([{"name": "web", "ready": "1/1"}]);
        let yaml = serde_yaml_ng::to_string(&value).unwrap();
        assert_eq!(yaml, "- name: web\n  ready: 1/1\n");
        assert!(Format::Yaml.is_data() && Format::Json.is_data() && !Format::Wide.is_data());
    }
}
