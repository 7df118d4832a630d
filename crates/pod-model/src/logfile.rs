//! Container logs in the CRI format that the kubelet's runtimes write: one file per container,
//! `logs/<container>.log`, appended to across restarts, one record per line:
//!
//! ```text
//! 2026-11-23T12:00:00.123456789Z stdout F a whole line
//! 2026-11-23T12:00:00.123460001Z stderr P the first part of a line (16 KiB at most)
//! 2026-11-23T12:00:00.123460001Z stderr F and its end
//! ```
//!
//! `F` ends a line; `P` is a part of one whose rest follows in a later record of the same
//! stream (or never, when the container ended in the middle of a line). Timestamps are
//! RFC 3339 in UTC with nine fractional digits, so they sort as text.
//!
//! * `ContainerLog` (podrun-supervisor's `logs`): reads a container's stdout and stderr pipes and
//!   appends what it reads at once, like conmon: a read that ends in the middle of a line is
//!   written as a `P` record. Nothing waits in the supervisor's memory, and `podrun logs -f`
//!   shows a prompt that has no newline yet.
//! * [`Lines`] (`podrun logs`, through podrun-pod's `logs`): parses the records and joins the parts into lines again.
//!
//! A chatty container cannot fill the disk: once its file reaches half the pod's
//! `log_max_size` (`[logs] max_size`, 10 MiB by default: the kubelet's
//! `containerLogMaxSize`), it is renamed to `<container>.log.1`, replacing the one before, and
//! a new file begins; so a container's log never takes more than `log_max_size` (plus one
//! read's worth of records). `podrun logs` reads the rotated file first, and `-f` follows the
//! rename.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The longest text of one record; longer lines are split into `P` records.
pub const MAX_RECORD_TEXT: usize = 16 * 1024;

/// The longest line [`Lines`] holds back while it waits for the line's end; a longer one is
/// returned in pieces (see [`Line::continued`]), so that a container that never writes a
/// newline cannot make `podrun logs` use unbounded memory.
const MAX_LINE: usize = 1024 * 1024;

/// A container's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    /// Its name in a record.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The time now, as a record's timestamp (RFC 3339, UTC, nanoseconds).
pub fn timestamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Appends to `out` the records of `data`, read from `stream` at `timestamp`: an `F` record
/// per line ended in `data`, `P` records for the parts of lines longer than
/// [`MAX_RECORD_TEXT`] and for the text after the last newline.
pub fn format_records(out: &mut Vec<u8>, timestamp: &str, stream: Stream, data: &[u8]) {
    for piece in data.split_inclusive(|&b| b == b'\n') {
        let (text, ended) = match piece.strip_suffix(b"\n") {
            Some(text) => (text, true),
            None => (piece, false),
        };
        if text.is_empty() {
            // An empty line (a piece is never empty, so this one was "\n").
            push_record(out, timestamp, stream, false, b"");
            continue;
        }
        let mut chunks = text.chunks(MAX_RECORD_TEXT).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            push_record(out, timestamp, stream, !(last && ended), chunk);
        }
    }
}

fn push_record(out: &mut Vec<u8>, timestamp: &str, stream: Stream, partial: bool, text: &[u8]) {
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(text);
    out.push(b'\n');
}

/// A line of a log file that is not a CRI record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a CRI log record ({reason}): {line:?}")]
pub struct LogFormatError {
    reason: &'static str,
    line: String,
}

/// One record of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: &'a str,
    pub stream: Stream,
    /// `P`: the line goes on in a later record.
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one record (`line`, with or without its newline).
pub fn parse_record(line: &[u8]) -> Result<Record<'_>, LogFormatError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let error = |reason| LogFormatError {
        reason,
        line: String::from_utf8_lossy(line).into_owned(),
    };
    let mut fields = line.splitn(4, |&b| b == b' ');
    let timestamp = fields
        .next()
        .and_then(|field| std::str::from_utf8(field).ok())
        .filter(|text| chrono::DateTime::parse_from_rfc3339(text).is_ok())
        .ok_or_else(|| error("no RFC 3339 timestamp"))?;
    let stream = match fields.next() {
        Some(b"stdout") => Stream::Stdout,
        Some(b"stderr") => Stream::Stderr,
        _ => return Err(error("no stream")),
    };
    // CRI tags are `:`-separated; `P` and `F` are the only ones defined.
    let partial = match fields
        .next()
        .and_then(|tags| tags.split(|&b| b == b':').next())
    {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(error("no P or F tag")),
    };
    Ok(Record {
        timestamp,
        stream,
        partial,
        text: fields.next().unwrap_or(b""),
    })
}

/// A line of a container's output, joined from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its first record's timestamp; none for a line of the file that is not a record.
    pub timestamp: Option<String>,
    pub text: Vec<u8>,
    /// The line ended (an `F` record). Otherwise this is what there is of it so far.
    pub complete: bool,
    /// The rest of a line whose beginning was returned before, unfinished.
    pub continued: bool,
}

impl Line {
    /// Writes the line as `podrun logs` prints it: with `timestamps` its timestamp and a space
    /// first (not before the rest of a line already begun), then its text, then a newline if
    /// it ended.
    pub fn write_to(&self, out: &mut impl Write, timestamps: bool) -> std::io::Result<()> {
        if let (true, false, Some(timestamp)) = (timestamps, self.continued, &self.timestamp) {
            out.write_all(timestamp.as_bytes())?;
            out.write_all(b" ")?;
        }
        out.write_all(&self.text)?;
        if self.complete {
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Turns the bytes of a log file, read in any pieces, into lines.
#[derive(Debug, Default)]
pub struct Lines {
    /// The bytes after the file's last newline read: a record still being written.
    unread: Vec<u8>,
    /// Per stream, the line whose `P` records have come but not its `F`.
    pending: [Option<Line>; 2],
    /// Per stream, whether its pending line's beginning was returned already.
    continued: [bool; 2],
}

impl Lines {
    /// Takes the next bytes of the file; returns the lines they end, in the order they ended.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        self.unread.extend_from_slice(bytes);
        let Some(end) = self.unread.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let records: Vec<u8> = self.unread.drain(..=end).collect();
        let mut lines = Vec::new();
        for record in records.split_inclusive(|&b| b == b'\n') {
            self.push_record(record, &mut lines);
        }
        lines
    }

    fn push_record(&mut self, raw: &[u8], lines: &mut Vec<Line>) {
        let Ok(record) = parse_record(raw) else {
            // Not a record (a log written by an older podrun): the line as it is.
            lines.push(Line {
                timestamp: None,
                text: raw.strip_suffix(b"\n").unwrap_or(raw).to_vec(),
                complete: true,
                continued: false,
            });
            return;
        };
        let stream = record.stream as usize;
        let continued = &mut self.continued[stream];
        let line = self.pending[stream].get_or_insert_with(|| Line {
            timestamp: Some(record.timestamp.to_string()),
            text: Vec::new(),
            complete: false,
            continued: std::mem::take(continued),
        });
        line.text.extend_from_slice(record.text);
        if !record.partial {
            line.complete = true;
            lines.extend(self.pending[stream].take());
        } else if line.text.len() >= MAX_LINE {
            lines.extend(self.pending[stream].take());
            self.continued[stream] = true;
        }
    }

    /// Returns the lines begun but not ended, as far as they go (at the end of the file, or
    /// when a follower has read everything there is); what comes of them later is returned
    /// with [`Line::continued`] set.
    pub fn flush(&mut self) -> Vec<Line> {
        let mut lines = Vec::new();
        for (pending, continued) in self.pending.iter_mut().zip(&mut self.continued) {
            if let Some(line) = pending.take() {
                *continued = true;
                lines.push(line);
            }
        }
        // Fixed-width UTC timestamps sort in time order.
        lines.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        lines
    }
}

/// Where a container's log goes when it is rotated: `<container>.log.1`.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-23T12:00:00.123456789Z";

    fn records(stream: Stream, data: &[u8]) -> String {
        let mut out = Vec::new();
        format_records(&mut out, TS, stream, data);
        String::from_utf8(out).unwrap()
    }

    fn text_of(lines: &[Line], timestamps: bool) -> String {
        let mut out = Vec::new();
        for line in lines {
            line.write_to(&mut out, timestamps).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_become_f_records_and_an_unended_tail_a_p_record() {
        assert_eq!(
            records(Stream::Stdout, b"one\n\ntwo"),
            format!("{TS} stdout F one\n{TS} stdout F \n{TS} stdout P two\n")
        );
        assert_eq!(
            records(Stream::Stderr, b"x\n"),
            format!("{TS} stderr F x\n")
        );
        assert_eq!(records(Stream::Stdout, b""), "");
    }

    #[test]
    fn long_lines_are_split_into_parts_of_16_kib() {
        let line = vec![b'a'; 2 * MAX_RECORD_TEXT + 5];
        let mut data = line.clone();
        data.push(b'\n');
        let text = records(Stream::Stdout, &data);
        let tags: Vec<(&str, usize)> = text
            .lines()
            .map(|l| {
                let record = parse_record(l.as_bytes()).unwrap();
                (if record.partial { "P" } else { "F" }, record.text.len())
            })
            .collect();
        assert_eq!(
            tags,
            [("P", MAX_RECORD_TEXT), ("P", MAX_RECORD_TEXT), ("F", 5)]
        );
        // Exactly 16 KiB and ended: one F record.
        let mut exact = vec![b'b'; MAX_RECORD_TEXT];
        exact.push(b'\n');
        assert_eq!(records(Stream::Stdout, &exact).lines().count(), 1);
        // Joined again.
        let lines = Lines::default().push(text.as_bytes());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, line);
        assert!(lines[0].complete);
    }

    #[test]
    fn records_parse_back() {
        let line = format!("{TS} stderr P a b  c\n");
        let record = parse_record(line.as_bytes()).unwrap();
        assert_eq!(
            record,
            Record {
                timestamp: TS,
                stream: Stream::Stderr,
                partial: true,
                text: b"a b  c",
            }
        );
        let line = format!("{TS} stdout F");
        let empty = parse_record(line.as_bytes()).unwrap();
        assert_eq!(empty.text, b"");
        assert!(!empty.partial);
        // Go's RFC3339Nano (trailing zeros cut) and tags after a colon are read too.
        let go = parse_record(b"2026-11-23T12:00:00.1Z stdout F:x hi").unwrap();
        assert_eq!(go.text, b"hi");
    }

    #[test]
    fn malformed_records_are_errors_naming_what_is_wrong() {
        for (line, reason) in [
            ("hello world", "no RFC 3339 timestamp"),
            ("2026-13-01T00:00:00Z stdout F x", "no RFC 3339 timestamp"),
            (&format!("{TS} stdin F x") as &str, "no stream"),
            (&format!("{TS} stdout X x"), "no P or F tag"),
            (&format!("{TS} stdout"), "no P or F tag"),
        ] {
            let error = parse_record(line.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(reason), "{line}: {error}");
        }
    }

    #[test]
    fn parts_are_joined_per_stream_across_reads_of_the_file() {
        let file = format!(
            "{TS} stdout P hel\n{TS} stderr F oops\n2026-11-23T12:00:01.000000000Z stdout P lo\n2026-11-23T12:00:02.000000000Z stdout F  world\n"
        );
        let mut lines = Lines::default();
        let mut got = Vec::new();
        // Byte by byte: records torn anywhere.
        for byte in file.as_bytes() {
            got.extend(lines.push(std::slice::from_ref(byte)));
        }
        assert!(lines.flush().is_empty());
        assert_eq!(text_of(&got, false), "oops\nhello world\n");
        assert_eq!(
            text_of(&got, true),
            format!("{TS} oops\n{TS} hello world\n"),
            "a joined line carries its first part's timestamp"
        );
    }

    #[test]
    fn flush_returns_unended_lines_and_marks_their_rest_continued() {
        let mut lines = Lines::default();
        assert!(lines
            .push(format!("{TS} stdout P prompt> \n").as_bytes())
            .is_empty());
        let flushed = lines.flush();
        assert_eq!(text_of(&flushed, true), format!("{TS} prompt> "));
        let rest = lines.push(b"2026-11-23T12:00:05.000000000Z stdout F yes\n");
        assert!(rest[0].continued);
        // Printed one after the other, the line has one timestamp.
        assert_eq!(text_of(&rest, true), "yes\n");
        let next = lines.push(b"2026-11-23T12:00:06.000000000Z stdout F next\n");
        assert_eq!(
            text_of(&next, true),
            "2026-11-23T12:00:06.000000000Z next\n"
        );
    }

    #[test]
    fn a_line_without_end_is_returned_in_pieces_of_bounded_size() {
        let mut lines = Lines::default();
        let part = records(Stream::Stdout, &vec![b'z'; MAX_RECORD_TEXT]);
        let mut got = Vec::new();
        for _ in 0..(MAX_LINE / MAX_RECORD_TEXT + 1) {
            got.extend(lines.push(part.as_bytes()));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text.len(), MAX_LINE);
        assert!(!got[0].complete);
        let rest = lines.flush();
        assert_eq!(rest[0].text.len(), MAX_RECORD_TEXT);
        assert!(rest[0].continued);
    }

    #[test]
    fn lines_that_are_not_records_pass_unchanged() {
        let got = Lines::default().push(b"plain old output\n");
        assert_eq!(text_of(&got, true), "plain old output\n");
    }
}
