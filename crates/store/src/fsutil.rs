//! Small filesystem helpers for atomic writes.

use std::io::Write;
use std::path::Path;

use crate::{io_error, StoreError};

/// Writes `content` to `target` atomically: a temp file in `tmp_dir` (same filesystem),
/// fsync, rename. A reader sees the old file or the whole new one, never a part.
pub fn write_atomic(tmp_dir: &Path, target: &Path, content: &[u8]) -> Result<(), StoreError> {
    let mut file = tempfile_in(tmp_dir)?;
    file.as_file_mut()
        .write_all(content)
        .and_then(|()| file.as_file().sync_all())
        .map_err(io_error(file.path()))?;
    file.persist(target).map_err(|e| StoreError::Io {
        path: target.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn tempfile_in(dir: &Path) -> Result<TempFile, StoreError> {
    TempFile::new_in(dir)
}

/// A uniquely named file that is removed unless persisted.
pub struct TempFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    persisted: bool,
}

pub struct PersistError {
    pub error: std::io::Error,
}

impl TempFile {
    pub fn new_in(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(unique_name("file"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(&path))?;
        Ok(TempFile {
            path,
            file,
            persisted: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_file(&self) -> &std::fs::File {
        &self.file
    }

    pub fn as_file_mut(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    pub fn persist(mut self, target: &Path) -> Result<(), PersistError> {
        std::fs::rename(&self.path, target).map_err(|error| PersistError { error })?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A name that no other process or thread will pick: pid plus random bits.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )
}

/// Removes a file or a whole tree; a missing path is not an error.
pub fn remove_all(path: &Path) -> Result<(), StoreError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(io_error(path)),
    }
}

/// Marks `dir` as the top of a directory hierarchy for ext4 (`chattr +T`), so that its new
/// subdirectories are spread over block groups instead of packed next to it.
///
/// Why: on ext4 without a journal, the kernel will not reuse an inode freed moments ago (up
/// to 305 s) and scans past each such inode on every file creation. A pull that follows an
/// `rmi` would otherwise create its thousands of files exactly where thousands were just
/// freed, and spend seconds in the kernel (measured: 2.3–6.8 s instead of 0.8 s for the nginx
/// test image; docs/benchmarks.md). Best effort: other filesystems ignore or refuse the flag.
pub fn mark_top_directory(dir: &Path) {
    use std::os::fd::AsRawFd;
    const FS_TOPDIR_FL: libc::c_long = 0x0002_0000;
    let Ok(file) = std::fs::File::open(dir) else {
        return;
    };
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one integer through the pointer given.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0
            || flags & FS_TOPDIR_FL != 0
        {
            return;
        }
        flags |= FS_TOPDIR_FL;
        libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
    }
}
