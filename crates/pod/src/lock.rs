//! The pod lock: `play` holds it while it creates and starts a pod, `down` takes it before it
//! stops one, so a `down` that races a `play` of the same pod waits for the start to finish
//! (or fail) and then removes the pod: the race ends with nothing left.
//!
//! The lock is `flock` on the pod's runtime directory itself: no lock file to leave behind,
//! and the kernel releases it when its holder dies (a `play` killed halfway leaves a pod that
//! `down` can take at once and clean). Two `play`s of the same pod are told apart before any
//! locking by `mkdir`, which exactly one of them wins.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podrun_pod_model::PodError;

/// A held pod lock; dropping it releases the lock.
#[derive(Debug)]
pub struct PodLock {
    _dir: File,
}

/// How `create` failed.
#[derive(Debug)]
pub enum CreateError {
    /// The pod exists already, or another `play` is creating it right now.
    Exists(PathBuf),
    /// Anything else.
    Other(PodError),
}

impl PodLock {
    /// Creates the pod's runtime directory and locks it (for `play`). Fails with
    /// [`CreateError::Exists`] when the directory exists, whoever made it.
    pub fn create(runtime_dir: &Path) -> Result<PodLock, CreateError> {
        match std::fs::create_dir(runtime_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(CreateError::Exists(runtime_dir.to_path_buf()))
            }
            Err(e) => {
                return Err(CreateError::Other(PodError::io(format!(
                    "cannot create {}",
                    runtime_dir.display()
                ))(e)))
            }
        }
        let dir = open_dir(runtime_dir).map_err(CreateError::Other)?;
        // A `down` may have taken the directory between the mkdir and here; it then removes
        // the directory, and holding a lock on a removed directory would prove nothing.
        flock(&dir, true).map_err(CreateError::Other)?;
        if !same_directory(&dir, runtime_dir) {
            return Err(CreateError::Other(PodError::msg(format!(
                "{} was removed (by `podrun down`) while the pod was being created",
                runtime_dir.display()
            ))));
        }
        Ok(PodLock { _dir: dir })
    }

    /// Locks an existing pod (for `down`), waiting up to `timeout` for a `play` that is
    /// starting it; `on_wait` is called once if it has to wait. `None` when the pod does not
    /// exist (any more).
    pub fn existing(
        runtime_dir: &Path,
        timeout: Duration,
        on_wait: &dyn Fn(),
    ) -> Result<Option<PodLock>, PodError> {
        let dir = match open_dir(runtime_dir) {
            Ok(dir) => dir,
            Err(_) if !runtime_dir.exists() => return Ok(None),
            Err(e) => return Err(e),
        };
        if !try_flock(&dir)? {
            on_wait();
            let deadline = Instant::now() + timeout;
            while !try_flock(&dir)? {
                if Instant::now() > deadline {
                    return Err(PodError::msg(format!(
                        "{} is still locked by a `podrun play` after {} s",
                        runtime_dir.display(),
                        timeout.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A failed start removes the directory before it lets go of the lock.
        Ok(same_directory(&dir, runtime_dir).then_some(PodLock { _dir: dir }))
    }
}

fn open_dir(path: &Path) -> Result<File, PodError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .map_err(PodError::io(format!("cannot open {}", path.display())))
}

/// `flock(LOCK_EX)`, blocking or not.
fn flock(dir: &File, block: bool) -> Result<(), PodError> {
    let operation = if block {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(dir.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(PodError::io("cannot lock the pod's runtime directory")(
                error,
            ));
        }
    }
}

/// `Ok(false)` when someone else holds the lock.
fn try_flock(dir: &File) -> Result<bool, PodError> {
    match flock(dir, false) {
        Ok(()) => Ok(true),
        Err(PodError::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The open directory is still the one at `path`.
fn same_directory(dir: &File, path: &Path) -> bool {
    match (dir.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(now)) => open.dev() == now.dev() && open.ino() == now.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_create_wins() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("default_web");
        let first = PodLock::create(&dir).unwrap();
        assert!(matches!(PodLock::create(&dir), Err(CreateError::Exists(_))));
        drop(first);
    }

    #[test]
    fn down_waits_for_the_play_that_holds_the_lock() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("default_web");
        let play = PodLock::create(&dir).unwrap();
        let dir2 = dir.clone();
        let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = waited.clone();
        let down = std::thread::spawn(move || {
            PodLock::existing(&dir2, Duration::from_secs(10), &|| {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap()
            .is_some()
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(play);
        assert!(down.join().unwrap(), "down gets the pod once play lets go");
        assert!(waited.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_failed_start_leaves_nothing_to_lock() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("default_web");
        assert!(PodLock::existing(&dir, Duration::from_secs(1), &|| {})
            .unwrap()
            .is_none());
        let play = PodLock::create(&dir).unwrap();
        let dir2 = dir.clone();
        let down = std::thread::spawn(move || {
            PodLock::existing(&dir2, Duration::from_secs(10), &|| {}).unwrap()
        });
        std::thread::sleep(Duration::from_millis(50));
        std::fs::remove_dir(&dir).unwrap();
        drop(play);
        assert!(down.join().unwrap().is_none());
    }

    #[test]
    fn a_locked_pod_times_out() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("default_web");
        let _play = PodLock::create(&dir).unwrap();
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        let err = PodLock::existing(&dir, Duration::from_millis(50), &|| {}).unwrap_err();
        assert!(err.to_string().contains("still locked"), "{err}");
    }
}
