//! Keeping a layer from filling the disk: file contents are written sparsely (runs of zero
//! blocks become holes, which take no space), and free space is checked as data is written.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;

/// Free space a layer must leave on the store's file system, unless
/// [`UnpackOptions::min_free_bytes`](crate::UnpackOptions::min_free_bytes) says otherwise:
/// enough for podrun's own metadata and for the rest of the system to go on.
pub const DEFAULT_MIN_FREE: u64 = 256 << 20;

/// Free space is checked again after this many bytes were really written.
const CHECK_EVERY: u64 = 16 << 20;

/// Zero runs are looked for in blocks of this size (a file system block).
const BLOCK: usize = 4096;

/// Tracks what was written and checks the file system's free space now and then.
pub(crate) struct SpaceGuard {
    min_free: u64,
    /// Bytes written since the last check; starts "due" so the first write checks.
    since_check: u64,
}

/// Why a copy stopped.
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
    /// `available` bytes are free, fewer than the reserve.
    DiskFull {
        available: u64,
    },
}

impl SpaceGuard {
    pub(crate) fn new(min_free: u64) -> Self {
        SpaceGuard {
            min_free,
            since_check: CHECK_EVERY,
        }
    }

    /// Before writing `len` more bytes to `file`'s file system.
    fn reserve(&mut self, file: &File, len: u64) -> Result<(), CopyError> {
        self.since_check += len;
        if self.since_check < CHECK_EVERY {
            return Ok(());
        }
        self.since_check = 0;
        let stat =
            nix::sys::statvfs::fstatvfs(file.as_fd()).map_err(|e| CopyError::Write(e.into()))?;
        let available = stat.blocks_available().saturating_mul(stat.fragment_size());
        if available < self.min_free.saturating_add(len) {
            return Err(CopyError::DiskFull { available });
        }
        Ok(())
    }
}

/// Copies an entry's content into `dst` through `buffer`, leaving holes where whole blocks
/// are zero. Returns the bytes copied (the file's length).
pub(crate) fn copy_sparse(
    src: &mut impl Read,
    dst: &mut File,
    buffer: &mut [u8],
    guard: &mut SpaceGuard,
) -> Result<u64, CopyError> {
    let mut total = 0u64;
    let mut hole_at_end = false;
    loop {
        let n = fill(src, buffer).map_err(CopyError::Read)?;
        if n == 0 {
            break;
        }
        for block in buffer[..n].chunks(BLOCK) {
            if block.iter().all(|&b| b == 0) {
                dst.seek(SeekFrom::Current(block.len() as i64))
                    .map_err(CopyError::Write)?;
                hole_at_end = true;
            } else {
                guard.reserve(dst, block.len() as u64)?;
                dst.write_all(block).map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) => CopyError::DiskFull { available: 0 },
                    _ => CopyError::Write(e),
                })?;
                hole_at_end = false;
            }
        }
        total += n as u64;
    }
    // A trailing hole is not there until the length says so.
    if hole_at_end {
        dst.set_len(total).map_err(CopyError::Write)?;
    }
    Ok(total)
}

/// Reads until `buffer` is full or the source ends.
fn fill(src: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match src.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn copy(content: &[u8], min_free: u64) -> (Result<u64, CopyError>, File) {
        let mut file = tempfile::tempfile().unwrap();
        let mut buffer = vec![0; 64 * 1024];
        let mut guard = SpaceGuard::new(min_free);
        let result = copy_sparse(&mut &content[..], &mut file, &mut buffer, &mut guard);
        (result, file)
    }

    #[test]
    fn zero_runs_become_holes_and_content_is_kept() {
        let mut content = vec![0u8; 8 << 20];
        content[5000] = 7; // one data block early on
        content.extend_from_slice(b"tail");
        let (result, mut file) = copy(&content, 0);
        assert_eq!(result.ok(), Some(content.len() as u64));
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), content.len() as u64);
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "8 MiB of zeros take {} blocks",
            meta.blocks()
        );
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back, content);
    }

    #[test]
    fn a_file_of_zeros_ends_in_a_hole_of_the_right_length() {
        let (result, file) = copy(&vec![0u8; 1 << 20], 0);
        assert_eq!(result.ok(), Some(1 << 20));
        assert_eq!(file.metadata().unwrap().len(), 1 << 20);
        assert_eq!(file.metadata().unwrap().blocks(), 0);
    }

    #[test]
    fn too_little_free_space_stops_the_copy() {
        let (result, _) = copy(b"data", u64::MAX / 2);
        assert!(matches!(result, Err(CopyError::DiskFull { .. })));
        // Zeros need no space, so they pass even then.
        let (result, _) = copy(&[0u8; 10000], u64::MAX / 2);
        assert!(result.is_ok());
    }
}
