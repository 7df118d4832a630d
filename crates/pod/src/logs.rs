//! Reading a container's log as it grows (`podrun logs [-f]`, `play --wait`): the CRI
//! records of [`podrun_pod_model::logfile`] joined into lines again, across the supervisor's
//! rotations (the file is renamed to `<container>.log.1` and a new one begins).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use podrun_pod_model::logfile::{rotated_path, Line, Lines};

/// One container's log, read from where the last read ended.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    /// The file being read; `None` until it exists (the container has not started yet).
    file: Option<File>,
    lines: Lines,
}

impl LogReader {
    /// The log at `path` (see `PodLayout::container_log`); nothing is read yet.
    pub fn new(path: impl Into<PathBuf>) -> LogReader {
        LogReader {
            path: path.into(),
            file: None,
            lines: Lines::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole log so far: the rotated file's lines (unless the file was rotated while it
    /// was opened: it is the same file then), then the current file's.
    pub fn read_history(&mut self) -> std::io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        self.open();
        if let Ok(mut older) = File::open(rotated_path(&self.path)) {
            if !self.file.as_ref().is_some_and(|f| same_file(&older, f)) {
                read_to_end(&mut older, &mut self.lines, &mut lines)?;
            }
        }
        lines.extend(self.read_new()?);
        Ok(lines)
    }

    /// The lines ended since the last read. A rotation is followed: what was written to the
    /// renamed file before the rename is read, then the new file from its start.
    pub fn read_new(&mut self) -> std::io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        if self.file.is_none() && !self.open() {
            return Ok(lines);
        }
        if let Some(file) = &mut self.file {
            read_to_end(file, &mut self.lines, &mut lines)?;
        }
        if let Ok(current) = File::open(&self.path) {
            if !self.file.as_ref().is_some_and(|f| same_file(&current, f)) {
                let mut current = current;
                read_to_end(&mut current, &mut self.lines, &mut lines)?;
                self.file = Some(current);
            }
        }
        Ok(lines)
    }

    /// The text of lines not ended yet (a prompt, a progress bar), as lines whose rest may
    /// follow (see [`Line::continued`]).
    pub fn flush(&mut self) -> Vec<Line> {
        self.lines.flush()
    }

    /// Opens the file if it exists; whether it is open.
    fn open(&mut self) -> bool {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        self.file.is_some()
    }
}

/// Both are the same file (device and inode).
fn same_file(a: &File, b: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Reads `file` from where the last read ended to its end into `out`, through `lines`.
fn read_to_end(file: &mut File, lines: &mut Lines, out: &mut Vec<Line>) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend(lines.push(&buffer[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_pod_model::logfile::{format_records, Stream};

    fn append(path: &Path, text: &str) {
        use std::io::Write;
        let mut records = Vec::new();
        format_records(
            &mut records,
            "2026-01-01T00:00:00.000000000Z",
            Stream::Stdout,
            text.as_bytes(),
        );
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(&records).unwrap();
    }

    fn texts(lines: Vec<Line>) -> Vec<String> {
        lines
            .into_iter()
            .map(|l| {
                let mut out = Vec::new();
                l.write_to(&mut out, false).unwrap();
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_reader_follows_the_log_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut reader = LogReader::new(&path);
        assert!(reader.read_history().unwrap().is_empty(), "not started yet");
        append(&path, "one\n");
        assert_eq!(texts(reader.read_new().unwrap()), ["one\n"]);
        append(&path, "two\n");
        // The supervisor's rotation: the file becomes c.log.1, a new c.log begins.
        std::fs::rename(&path, rotated_path(&path)).unwrap();
        append(&path, "three\n");
        assert_eq!(texts(reader.read_new().unwrap()), ["two\n", "three\n"]);
        append(&path, "four");
        assert!(reader.read_new().unwrap().is_empty());
        assert_eq!(texts(reader.flush()), ["four"]);
        let mut again = LogReader::new(&path);
        assert_eq!(
            texts(again.read_history().unwrap()),
            ["one\n", "two\n", "three\n"]
        );
    }
}
