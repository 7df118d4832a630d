//! Unpacks one OCI image layer (a tar stream, optionally gzip or zstd compressed) into a
//! directory that will serve as an overlayfs lower directory, mounted with `userxattr` inside
//! a user namespace.
//!
//! # The whiteout model
//!
//! An image is a stack of layers; each layer is a tar of the files it adds or changes. A
//! layer deletes a file of a lower layer with a *whiteout* entry, following the OCI image
//! spec:
//!
//! - `D/.wh.NAME` means "D/NAME is deleted". The entry is not extracted as a file: overlayfs
//!   expresses a deletion as a 0:0 character device at D/NAME, so that is what we create.
//!   (`mknod` of a 0:0 character device is allowed to root in a user namespace.)
//! - `D/.wh..wh..opq` means "D is *opaque*": the lower layers' contents of D are hidden, only
//!   what this layer puts in D shows. Overlayfs reads that from the xattr
//!   `user.overlay.opaque` = `y` on D (the `user.` namespace because of `userxattr`).
//! - Other names starting with `.wh..wh.` are whiteout metadata of other tools (AUFS's
//!   `.wh..wh.plnk`); they and anything inside them are ignored.
//!
//! Since those xattrs steer what the overlay mount shows, a layer may not set
//! `user.overlay.*` or `trusted.overlay.*` xattrs through PAX records: they are skipped and
//! reported in [`UnpackStats::skipped_xattrs`].
//!
//! # Safety against hostile layers
//!
//! Entry paths are relative to the layer directory: absolute paths and `..` are refused, and
//! so is any entry whose parent directories go through a symlink unpacked earlier (the
//! symlink itself is stored as it is: it may point anywhere). Lookups use `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (or, where openat2 is missing, one
//! `openat(O_NOFOLLOW)` per component), then `*at` calls relative to the directory found, so
//! nothing outside the layer directory is ever touched. Hard link targets are checked the
//! same way and linked with `linkat` without following. A refused entry fails the whole
//! unpack; the caller deletes the half-written directory.
//!
//! # Ownership, modes and times
//!
//! Owners are set from the numeric uid/gid (user and group names are ignored). Inside a user
//! namespace an id outside its map makes chown fail with EINVAL: see
//! [`UnpackOptions::tolerate_unmapped_ids`]. Device nodes other than 0:0 character devices
//! are only created by real root; elsewhere they are skipped and listed in
//! [`UnpackStats::skipped_devices`]. Modes are set after owners (chown clears setuid), and
//! directories get their modes and mtimes last, children first.
//!
//! # Decompression bombs
//!
//! A small blob may decompress to terabytes. The uncompressed stream is counted and refused
//! past [`UnpackOptions::max_uncompressed_bytes`]; file contents are written sparsely (whole
//! 4 KiB blocks of zeros become holes, which take no disk space); and the file system's free
//! space is checked as data is written, keeping [`UnpackOptions::min_free_bytes`] free.

mod error;
mod fsx;
mod paths;
mod space;
mod stream;
mod unpacker;
mod whiteout;

#[cfg(test)]
mod tests;

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::stat::Mode;

pub use error::{PathProblem, UnpackError};
pub use paths::MAX_PATH_LEN;
pub use space::DEFAULT_MIN_FREE;
use unpacker::{Privileges, Unpacker};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression named by an OCI or Docker layer media type, `None` if the media type
    /// is not a layer type we know.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Self::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Self::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// Options for [`unpack_layer`].
#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// When chown to an id fails with EINVAL (id not mapped in this user namespace), keep the file
    /// owned by 0:0 and count it in stats.unmapped_ids instead of failing.
    pub tolerate_unmapped_ids: bool,
    /// The most bytes the uncompressed tar stream may have (a defence against decompression
    /// bombs); `None`: no limit.
    pub max_uncompressed_bytes: Option<u64>,
    /// Free space to leave on the file system; `None`: [`DEFAULT_MIN_FREE`].
    pub min_free_bytes: Option<u64>,
}

/// What [`unpack_layer`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries processed (after merging GNU long-name and PAX headers into their entry).
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// `sha256:<hex>` of the whole uncompressed tar stream, end blocks and padding included.
    pub diff_id: String,
    /// Device nodes not created because this process may not (paths relative to the layer).
    pub skipped_devices: Vec<String>,
    /// Entries left owned by root because their owner is not mapped in this user namespace.
    pub unmapped_ids: u64,
    /// Xattrs not set, as `path: name`: overlayfs' own, or refused by the kernel.
    pub skipped_xattrs: Vec<String>,
}

/// Unpacks the layer tar read from `reader` into `dest`, which must be an existing, empty
/// directory. On error `dest` is left half-written: the caller deletes it.
pub fn unpack_layer<R: Read>(
    reader: R,
    compression: Compression,
    dest: &Path,
    options: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    unpack_layer_with(reader, compression, dest, options, Privileges::detect())
}

/// [`unpack_layer`] with the privileges given rather than detected, so tests can play a
/// less privileged process.
fn unpack_layer_with<R: Read>(
    reader: R,
    compression: Compression,
    dest: &Path,
    options: &UnpackOptions,
    privileges: Privileges,
) -> Result<UnpackStats, UnpackError> {
    let root = open_empty_dir(dest)?;
    let (stream, errors) = stream::tar_stream(reader, compression, options.max_uncompressed_bytes)?;
    let mut archive = tar::Archive::new(stream);
    let mut unpacker = Unpacker::new(root, dest, options, privileges, errors.clone());
    for entry in archive.entries().map_err(|e| errors.stream_error(e))? {
        let mut entry = entry.map_err(|e| errors.stream_error(e))?;
        unpacker.unpack_entry(&mut entry)?;
    }
    let diff_id = archive
        .into_inner()
        .finish()
        .map_err(|e| errors.stream_error(e))?;
    let mut stats = unpacker.finish()?;
    stats.diff_id = diff_id;
    Ok(stats)
}

/// Opens the destination after checking that it is an empty directory.
fn open_empty_dir(dest: &Path) -> Result<OwnedFd, UnpackError> {
    let destination_error = |source| UnpackError::Destination {
        path: dest.to_owned(),
        source,
    };
    let mut listing = fs::read_dir(dest).map_err(destination_error)?;
    if listing.next().is_some() {
        return Err(UnpackError::DestinationNotEmpty {
            path: dest.to_owned(),
        });
    }
    let fd = nix::fcntl::open(
        dest,
        fsx::DIR_ANCHOR | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| destination_error(e.into()))?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}
