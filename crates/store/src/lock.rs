//! Advisory locks (flock) on files under `locks/`, so that two podrun processes never write
//! the same layer or the index at once. A lock is released when its holder exits, however it
//! exits, so a killed pull never leaves a stale lock behind.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::{io_error, StoreError};

/// An exclusive lock, held until dropped.
pub struct DigestLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl std::fmt::Debug for DigestLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigestLock({})", self.path.display())
    }
}

impl DigestLock {
    /// Waits for the lock on `path`.
    pub fn acquire(path: &Path) -> Result<DigestLock, StoreError> {
        Self::take(path, FlockArg::LockExclusive).map(|lock| lock.expect("blocking lock"))
    }

    /// Takes the lock on `path` if nobody holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<DigestLock>, StoreError> {
        Self::take(path, FlockArg::LockExclusiveNonblock)
    }

    fn take(path: &Path, how: FlockArg) -> Result<Option<DigestLock>, StoreError> {
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(io_error(path))?;
            let lock = match Flock::lock(file, how) {
                Ok(lock) => lock,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, errno)) => {
                    return Err(StoreError::Io {
                        path: path.to_path_buf(),
                        source: errno.into(),
                    })
                }
            };
            // Lock files are removed by garbage collection; if ours was unlinked between open
            // and lock, we hold a lock nobody else can see: try again on the new file.
            let same_file = match (lock.metadata(), std::fs::metadata(path)) {
                (Ok(held), Ok(current)) => {
                    held.ino() == current.ino() && held.dev() == current.dev()
                }
                _ => false,
            };
            if same_file {
                return Ok(Some(DigestLock {
                    _lock: lock,
                    path: path.to_path_buf(),
                }));
            }
        }
    }

    /// Removes the lock file while holding it (the holder's last act on a deleted entry).
    pub fn remove_file(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
