//! A container's log, written by the supervisor in the CRI format
//! ([`podrun_pod_model::logfile`]): [`ContainerLog`] reads a container's stdout and stderr
//! pipes and appends what it reads at once, like conmon: a read that ends in the middle of a
//! line is written as a `P` record. Nothing waits in the supervisor's memory, and `podrun
//! logs -f` shows a prompt that has no newline yet.
//!
//! A chatty container cannot fill the disk: once its file reaches half the pod's
//! `log_max_size` (`[logs] max_size`, 10 MiB by default: the kubelet's
//! `containerLogMaxSize`), it is renamed to `<container>.log.1`, replacing the one before, and
//! a new file begins; so a container's log never takes more than `log_max_size` (plus one
//! read's worth of records).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use podrun_pod_model::logfile::{format_records, rotated_path, timestamp_now, MAX_RECORD_TEXT};

pub(crate) use podrun_pod_model::logfile::Stream;

use crate::PodError;

/// Bytes read from a pipe at once.
const READ_SIZE: usize = 64 * 1024;

/// Reads from `fd` into `buffer`'s spare capacity, replacing its contents; the bytes read.
fn read_into(fd: RawFd, buffer: &mut Vec<u8>) -> Result<usize, Errno> {
    buffer.clear();
    let spare = buffer.spare_capacity_mut();
    // SAFETY: read writes at most `spare.len()` bytes into the vector's spare capacity.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    let n = usize::try_from(n).map_err(|_| Errno::last())?;
    // SAFETY: the first `n` bytes were just written by read.
    unsafe { buffer.set_len(n) };
    Ok(n)
}

/// Makes `path`'s file the rotated one and puts an empty file at `path`, so that a reader
/// never finds `path` missing (`podrun logs -f` opening it mid-rotation failed before): the
/// old file is hard-linked to a temporary name that replaces the rotated file in one
/// rename, then an empty file replaces `path` in another.
fn rotate_file(path: &Path) -> std::io::Result<()> {
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (old_tmp, new_tmp) = (with_suffix(".1.tmp"), with_suffix(".tmp"));
    let _ = std::fs::remove_file(&old_tmp);
    std::fs::hard_link(path, &old_tmp)?;
    std::fs::rename(&old_tmp, rotated_path(path))?;
    File::create(&new_tmp)?;
    std::fs::rename(&new_tmp, path)
}

/// The log of one container: its file, and the read ends of its runs' stdout and stderr
/// pipes that are still open.
pub(crate) struct ContainerLog {
    path: PathBuf,
    file: Option<File>,
    /// The size of `file`, and the size at which it is rotated.
    size: u64,
    rotate_at: u64,
    pipes: Vec<(Stream, OwnedFd)>,
    /// A write failed (disk full?): warn once, until one succeeds again.
    failing: bool,
}

impl ContainerLog {
    /// The log at `path`, taking at most about `max_size` bytes on disk.
    pub(crate) fn new(path: PathBuf, max_size: u64) -> ContainerLog {
        ContainerLog {
            path,
            file: None,
            size: 0,
            rotate_at: (max_size / 2).max(MAX_RECORD_TEXT as u64),
            pipes: Vec::new(),
            failing: false,
        }
    }

    /// Opens the file (appending) if need be and makes a new run's pipes; returns their write
    /// ends, the container's stdout and stderr. Every end is close-on-exec: the runtime
    /// `dup2`s the write ends onto fds 1 and 2, so that besides the container only the runner
    /// (until it exits) holds them, and the supervisor sees end-of-file once the container's
    /// processes are gone. The read ends are non-blocking, for the supervisor's poll loop.
    pub(crate) fn new_run(&mut self) -> Result<(OwnedFd, OwnedFd), PodError> {
        if self.file.is_none() {
            self.open()?;
        }
        let stdout = self.pipe(Stream::Stdout)?;
        let stderr = self.pipe(Stream::Stderr)?;
        Ok((stdout, stderr))
    }

    fn open(&mut self) -> Result<(), PodError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(PodError::io(format!("cannot open {}", self.path.display())))?;
        self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(file);
        Ok(())
    }

    /// Renames the full file to [`rotated_path`] (replacing the older one) and begins a new
    /// one. `podrun logs -f` notices the rename and goes on with the new file.
    fn rotate(&mut self) {
        self.file = None;
        if let Err(e) = rotate_file(&self.path) {
            eprintln!("warning: cannot rotate {}: {e}", self.path.display());
        }
        if let Err(e) = self.open() {
            eprintln!("warning: {e}; the container's output is lost");
        }
    }

    fn pipe(&mut self, stream: Stream) -> Result<OwnedFd, PodError> {
        let what =
            |e: Errno| PodError::msg(format!("cannot create a {} pipe: {e}", stream.as_str()));
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(what)?;
        let flags =
            nix::fcntl::fcntl(read_end.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).map_err(what)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(read_end.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(what)?;
        self.pipes.push((stream, read_end));
        Ok(write_end)
    }

    /// The read ends to poll.
    pub(crate) fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.pipes.iter().map(|(_, fd)| fd.as_raw_fd())
    }

    /// Reads each pipe until it is empty or `budget` bytes came from it, and appends what
    /// came. A pipe at end-of-file (every writer gone) is closed. The budget keeps a
    /// container that writes without pause from holding up the supervisor's loop; what is
    /// left waits in the pipe (whose writer blocks when it is full) for the next round.
    pub(crate) fn pump(&mut self, budget: usize) {
        let mut index = 0;
        while index < self.pipes.len() {
            if self.read_pipe(index, budget) {
                index += 1;
            } else {
                self.pipes.remove(index);
            }
        }
    }

    /// Reads one pipe; false at its end-of-file, or on an error.
    ///
    /// The buffer is the call's own and is not zeroed: a short read touches one page of it,
    /// and no container's log keeps 64 KiB of the supervisor's memory between reads.
    fn read_pipe(&mut self, index: usize, budget: usize) -> bool {
        let (stream, fd) = (self.pipes[index].0, self.pipes[index].1.as_raw_fd());
        let mut buffer: Vec<u8> = Vec::with_capacity(READ_SIZE);
        let mut total = 0;
        while total < budget {
            match read_into(fd, &mut buffer) {
                Ok(0) => return false,
                Ok(n) => {
                    total += n;
                    self.record(stream, &buffer);
                }
                Err(Errno::EAGAIN) => return true,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!(
                        "warning: {}: cannot read the container's {}: {e}",
                        self.path.display(),
                        stream.as_str()
                    );
                    return false;
                }
            }
        }
        true
    }

    /// Appends `data`, read from `stream` (or from the container's terminal), as records,
    /// in one write.
    pub(crate) fn record(&mut self, stream: Stream, data: &[u8]) {
        let mut records = Vec::with_capacity(data.len() + 64);
        format_records(&mut records, &timestamp_now(), stream, data);
        let Some(file) = &mut self.file else {
            return;
        };
        match file.write_all(&records) {
            Ok(()) => {
                self.failing = false;
                self.size += records.len() as u64;
                if self.size >= self.rotate_at {
                    self.rotate();
                }
            }
            Err(e) if !self.failing => {
                self.failing = true;
                eprintln!(
                    "warning: cannot write {}; the container's output is lost until a write succeeds: {e}",
                    self.path.display()
                );
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_pod_model::logfile::{parse_record, Lines};

    #[test]
    fn a_container_log_records_its_pipes_until_end_of_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = ContainerLog::new(path.clone(), 1 << 20);
        let (stdout, stderr) = log.new_run().unwrap();
        assert_eq!(log.fds().count(), 2);
        let (mut stdout, mut stderr) = (File::from(stdout), File::from(stderr));
        stdout.write_all(b"out 1\nout 2 no newline").unwrap();
        log.pump(usize::MAX);
        stderr.write_all(b"err\n").unwrap();
        drop((stdout, stderr));
        log.pump(usize::MAX);
        assert_eq!(log.fds().count(), 0, "pipes at end-of-file are closed");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: Vec<(Stream, bool, String)> = text
            .lines()
            .map(|l| {
                let r = parse_record(l.as_bytes()).unwrap();
                (
                    r.stream,
                    r.partial,
                    String::from_utf8(r.text.to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            parsed,
            [
                (Stream::Stdout, false, "out 1".into()),
                (Stream::Stdout, true, "out 2 no newline".into()),
                (Stream::Stderr, false, "err".into()),
            ]
        );
        // A second run appends to the same file.
        let (stdout, _stderr) = log.new_run().unwrap();
        File::from(stdout).write_all(b"again\n").unwrap();
        log.pump(usize::MAX);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.ends_with(" stdout F again\n"), "{text}");
    }

    #[test]
    fn a_chatty_container_log_is_rotated_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let max = 256 << 10;
        let mut log = ContainerLog::new(path.clone(), max);
        let (stdout, _stderr) = log.new_run().unwrap();
        let mut stdout = File::from(stdout);
        let line = format!("{}\n", "x".repeat(999));
        for round in 0..200 {
            // 10 KB a round, 2 MB in all: eight times the cap.
            for _ in 0..10 {
                stdout.write_all(line.as_bytes()).unwrap();
            }
            stdout
                .write_all(format!("round {round}\n").as_bytes())
                .unwrap();
            log.pump(usize::MAX);
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let rotated = rotated_path(&path);
        assert!(size(&rotated) > 0, "rotated once at least");
        assert!(
            size(&path) + size(&rotated) <= max + READ_SIZE as u64 * 2,
            "{} + {} bytes",
            size(&path),
            size(&rotated)
        );
        // The newest output is kept, whole records in both files.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(" stdout F round 199\n"),
            "{}",
            &text[text.len() - 80..]
        );
        for file in [&path, &rotated] {
            for line in std::fs::read_to_string(file).unwrap().lines() {
                parse_record(line.as_bytes()).unwrap();
            }
        }
    }

    #[test]
    fn the_budget_leaves_the_rest_in_the_pipe_for_the_next_round() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut log = ContainerLog::new(path.clone(), 1 << 20);
        let (stdout, _stderr) = log.new_run().unwrap();
        // Room for more than one read's worth.
        nix::fcntl::fcntl(
            stdout.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(4 * READ_SIZE as i32),
        )
        .unwrap();
        let mut stdout = File::from(stdout);
        stdout.write_all(&vec![b'q'; 3 * READ_SIZE]).unwrap();
        log.pump(1);
        let read = |_: &ContainerLog| {
            let mut reader = Lines::default();
            assert!(reader.push(&std::fs::read(&path).unwrap()).is_empty());
            reader.flush().iter().map(|l| l.text.len()).sum::<usize>()
        };
        assert_eq!(read(&log), READ_SIZE, "one read, then the next pipe");
        assert_eq!(log.fds().count(), 2, "the pipe stays open");
        drop(stdout);
        log.pump(usize::MAX);
        assert_eq!(read(&log), 3 * READ_SIZE);
        assert_eq!(log.fds().count(), 1);
    }
}
