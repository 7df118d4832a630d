//! Termination messages at run time (the rules are in
//! [`podrun_pod_model::plan::termination`]): the file a container may write is created (or
//! emptied) before each start ([`prepare_file`]), and when the container ends its message is
//! read from it, or from the tail of its log ([`message`]).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use podrun_pod_model::logfile::{rotated_path, Lines};
use podrun_pod_model::plan::termination::TerminationMessage;

use crate::PodError;

/// The most of the file that becomes the message (the kubelet's
/// `MaxContainerTerminationMessageLength`).
pub const MAX_MESSAGE: usize = 4096;
/// The log lines and bytes a failed container's message falls back to.
pub const FALLBACK_LINES: usize = 80;
pub const FALLBACK_BYTES: usize = 2048;
/// The most of all the termination messages of a pod together (the kubelet's
/// `MaxPodTerminationMessageLogLength`).
pub const MAX_POD_MESSAGES: usize = 12 * 1024;
/// The bytes read from the end of a log file to find its last lines: records carry about 45
/// bytes besides the text, so this holds 80 lines of up to 300 characters; with longer lines
/// fewer are read, which the 2 KiB cap would cut anyway.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// The host file of a container whose directory is `container_dir`.
pub fn file_path(container_dir: &Path) -> PathBuf {
    container_dir.join("termination-log")
}

/// Creates (or empties) the file before a start: writable by whatever user the container
/// runs as, as the kubelet makes it.
pub fn prepare_file(path: &Path) -> Result<(), PodError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(PodError::io(format!("cannot create {}", parent.display())))?;
    }
    std::fs::write(path, b"").map_err(PodError::io(format!("cannot create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(PodError::io(format!("cannot chmod {}", path.display())))
}

/// The message of a container that ended with `exit_code`: the end of its file, else (when
/// it failed and its policy says so) the tail of its log `log_path` from `started_at`
/// (RFC 3339) on, cut to its share of the pod's budget ([`pod_share`]) among the pod's
/// `pod_containers` (containers and init containers). `None` when there is nothing to say.
pub fn message(
    settings: &TerminationMessage,
    file: &Path,
    exit_code: i32,
    log_path: &Path,
    started_at: Option<&str>,
    pod_containers: usize,
) -> Option<String> {
    let text = unshared_message(settings, file, exit_code, log_path, started_at)?;
    Some(cut_to_share(text, pod_share(pod_containers)))
}

/// The bytes of each container's message the kubelet keeps in a pod of `containers`
/// containers and init containers: the pod's 12 KiB divided evenly (integer division, as in
/// the kubelet's `normalizeStatus`).
pub fn pod_share(containers: usize) -> usize {
    MAX_POD_MESSAGES / containers.max(1)
}

/// The first `share` bytes of `text`, as the kubelet keeps them; a character `share` would
/// split is left out whole (the kubelet cuts bytes, which a Go JSON encoder then shows as
/// U+FFFD).
fn cut_to_share(mut text: String, share: usize) -> String {
    if text.len() > share {
        let mut end = share;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The message before the pod's cap.
fn unshared_message(
    settings: &TerminationMessage,
    file: &Path,
    exit_code: i32,
    log_path: &Path,
    started_at: Option<&str>,
) -> Option<String> {
    let written = match read_tail(file, MAX_MESSAGE as u64) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Some(format!(
                "Error on reading termination log {}: {e}",
                file.display()
            ))
        }
    };
    let text = if written.is_empty() && settings.fallback_to_logs && exit_code != 0 {
        log_tail(log_path, started_at)
    } else {
        written
    };
    (!text.is_empty()).then(|| String::from_utf8_lossy(&text).into_owned())
}

/// The last `limit` bytes of a file.
fn read_tail(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(limit)))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The last [`FALLBACK_LINES`] lines of a CRI log (and its rotated predecessor when the
/// current file is short) written since `started_at` (to the second), stdout and stderr
/// interleaved as written, at most their last [`FALLBACK_BYTES`] bytes.
fn log_tail(log_path: &Path, started_at: Option<&str>) -> Vec<u8> {
    let mut records = Vec::new();
    let current = read_tail(log_path, LOG_TAIL_BYTES).unwrap_or_default();
    if (current.len() as u64) < LOG_TAIL_BYTES {
        let wanted = LOG_TAIL_BYTES - current.len() as u64;
        let rotated = read_tail(&rotated_path(log_path), wanted).unwrap_or_default();
        records.extend(whole_records(&rotated, wanted));
    }
    records.extend(whole_records(&current, LOG_TAIL_BYTES));
    let mut lines = Lines::default();
    let mut all = lines.push(&records);
    all.extend(lines.flush());
    // Timestamps are fixed-width UTC: compare them to the second.
    let since = started_at.map(|s| s.get(..19).unwrap_or(s).to_string());
    let mut out = Vec::new();
    let recent = all.iter().filter(|line| match (&since, &line.timestamp) {
        (Some(since), Some(t)) => t.get(..19).unwrap_or(t) >= since.as_str(),
        _ => true,
    });
    let recent: Vec<_> = recent.collect();
    for line in &recent[recent.len().saturating_sub(FALLBACK_LINES)..] {
        let _ = line.write_to(&mut out, false);
    }
    let cut = out.len().saturating_sub(FALLBACK_BYTES);
    out.split_off(cut)
}

/// `bytes` read from the end of a file with at most `limit` bytes asked for: without the
/// first, partial record when the read did not start at the file's beginning.
fn whole_records(bytes: &[u8], limit: u64) -> &[u8] {
    if (bytes.len() as u64) < limit {
        return bytes;
    }
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[end + 1..],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_pod_model::logfile::{format_records, Stream};

    fn log(dir: &Path, lines: &[(&str, Stream, &str)]) -> PathBuf {
        let mut bytes = Vec::new();
        for (time, stream, text) in lines {
            format_records(&mut bytes, time, *stream, text.as_bytes());
        }
        let path = dir.join("c.log");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_file_wins_and_is_capped_at_4096_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("termination-log");
        prepare_file(&file).unwrap();
        let settings = TerminationMessage {
            fallback_to_logs: true,
            ..Default::default()
        };
        let log = log(
            dir.path(),
            &[("2026-01-01T00:00:01.000000000Z", Stream::Stdout, "out\n")],
        );
        assert_eq!(message(&settings, &file, 0, &log, None, 1), None);
        std::fs::write(&file, "Sleep expired\n").unwrap();
        assert_eq!(
            message(&settings, &file, 1, &log, None, 1).as_deref(),
            Some("Sleep expired\n")
        );
        let long = format!("{}{}", "a".repeat(100), "b".repeat(MAX_MESSAGE));
        std::fs::write(&file, &long).unwrap();
        assert_eq!(
            message(&settings, &file, 0, &log, None, 1),
            Some("b".repeat(MAX_MESSAGE))
        );
        // Emptied for the next start.
        prepare_file(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"");
    }

    #[test]
    fn a_failed_container_falls_back_to_its_last_log_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("termination-log");
        prepare_file(&file).unwrap();
        let mut lines = vec![(
            "2026-01-01T00:00:00.500000000Z",
            Stream::Stdout,
            "from the run before\n".to_string(),
        )];
        for i in 0..100 {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            lines.push(("2026-01-01T00:00:01.000000000Z", stream, format!("{i}\n")));
        }
        let borrowed: Vec<_> = lines.iter().map(|(t, s, x)| (*t, *s, x.as_str())).collect();
        let log = log(dir.path(), &borrowed);
        let fallback = TerminationMessage {
            fallback_to_logs: true,
            ..Default::default()
        };
        let started = Some("2026-01-01T00:00:01Z");
        let expected: String = (20..100).map(|i| format!("{i}\n")).collect();
        assert_eq!(
            message(&fallback, &file, 2, &log, started, 1),
            Some(expected)
        );
        // Only on failure, and only under FallbackToLogsOnError.
        assert_eq!(message(&fallback, &file, 0, &log, started, 1), None);
        assert_eq!(
            message(&TerminationMessage::default(), &file, 2, &log, started, 1),
            None
        );
        // A few lines from this run: the earlier run's are left out.
        let short = log_tail(&log, Some("2026-01-01T00:00:02Z"));
        assert!(short.is_empty());
        let all = log_tail(&log, None);
        assert!(
            all.starts_with(b"20\n"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }

    #[test]
    fn the_fallback_keeps_the_last_2_kib() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}\n", "x".repeat(1500));
        let log = log(
            dir.path(),
            &[
                ("2026-01-01T00:00:01.000000000Z", Stream::Stdout, &long),
                ("2026-01-01T00:00:01.000000000Z", Stream::Stderr, &long),
                ("2026-01-01T00:00:01.000000000Z", Stream::Stderr, "fatal\n"),
            ],
        );
        let tail = log_tail(&log, None);
        assert_eq!(tail.len(), FALLBACK_BYTES);
        assert!(tail.ends_with(b"x\nfatal\n"));
    }

    #[test]
    fn the_fallback_reads_the_rotated_log_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(
            dir.path(),
            &[("2026-01-01T00:00:02.000000000Z", Stream::Stdout, "new\n")],
        );
        let mut old = Vec::new();
        format_records(
            &mut old,
            "2026-01-01T00:00:01.000000000Z",
            Stream::Stdout,
            b"old\n",
        );
        std::fs::write(rotated_path(&path), old).unwrap();
        assert_eq!(log_tail(&path, None), b"old\nnew\n");
    }

    #[test]
    fn the_pod_s_12_kib_are_shared_evenly_among_its_containers() {
        // Three containers or fewer: each keeps the 4 KiB its file gives.
        assert_eq!(pod_share(0), 12288);
        assert_eq!(pod_share(3), 4096);
        assert_eq!(pod_share(4), 3072);
        assert_eq!(pod_share(5), 2457, "integer division, as the kubelet's");
        assert_eq!(pod_share(48), 256);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("termination-log");
        let log = dir.path().join("c.log");
        let written = format!("{}{}", "a".repeat(3000), "b".repeat(1096));
        std::fs::write(&file, &written).unwrap();
        let settings = TerminationMessage::default();
        let message_of = |containers| message(&settings, &file, 1, &log, None, containers);
        assert_eq!(message_of(3).as_deref(), Some(written.as_str()));
        // Its first bytes are kept (the file's last 4096 bytes, then the first share).
        assert_eq!(message_of(4), Some(written[..3072].to_string()));
        assert_eq!(message_of(6), Some("a".repeat(2048)));
        // The fallback to the logs (at most 2 KiB) is cut the same way.
        std::fs::write(&file, "").unwrap();
        let mut records = Vec::new();
        for i in 0..80 {
            format_records(
                &mut records,
                "2026-01-01T00:00:01.000000000Z",
                Stream::Stderr,
                format!("error {i:03} {}\n", "x".repeat(20)).as_bytes(),
            );
        }
        std::fs::write(&log, records).unwrap();
        let fallback = TerminationMessage {
            fallback_to_logs: true,
            ..Default::default()
        };
        let tail = message(&fallback, &file, 1, &log, None, 1).unwrap();
        assert_eq!(tail.len(), FALLBACK_BYTES);
        let shared = message(&fallback, &file, 1, &log, None, 8).unwrap();
        assert_eq!(shared, tail[..1536]);
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        assert_eq!(cut_to_share("ab\u{e9}c".to_string(), 3), "ab");
        assert_eq!(cut_to_share("ab\u{e9}c".to_string(), 4), "ab\u{e9}");
        assert_eq!(cut_to_share("abc".to_string(), 10), "abc");
    }
}
