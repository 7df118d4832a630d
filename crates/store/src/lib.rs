//! The on-disk image store.
//!
//! ```text
//! <data dir>/storage/
//!   images.json               the image index: name -> manifest, config, layers
//!   blobs/sha256/<hex>        image configs, content-addressed and verified
//!   layers/sha256/<hex>/      one unpacked layer (an overlayfs lower dir), by compressed digest
//!   layers/sha256/<hex>.json  the layer's metadata; writing it last is what commits the layer
//!   locks/                    flock files: one per digest being written, one for the index
//!   tmp/                      work in progress, on the same filesystem so renames are atomic
//! ```
//!
//! Every write goes to `tmp/` first and is renamed into place when complete and verified, so
//! a process killed at any moment leaves nothing that a later reader would trust. Compressed
//! layer blobs are not kept: a layer is verified while it streams into its unpacked directory,
//! which is all a container needs (containers/storage does the same), halving disk use.

mod digest;
mod fsutil;
mod images;
mod layers;
mod lock;

pub use digest::Digest;
pub use images::{GcReport, ImageRecord, LayerRef};
pub use layers::{LayerDraft, LayerInfo};
pub use lock::DigestLock;

use std::path::{Path, PathBuf};

/// Store errors. Each names the path or digest involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{0}` is not a valid digest (expected sha256: followed by 64 hex digits)")]
    BadDigest(String),
    #[error(
        "{path} is damaged: {message}\nhint: remove the image with `podrun rmi` and pull it again"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("content does not match digest {expected} (it hashes to {actual})")]
    DigestMismatch { expected: String, actual: String },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A handle on the store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating when needed) the store under `data_dir/storage`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let root = data_dir.join("storage");
        for dir in ["blobs/sha256", "layers/sha256", "locks", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        // Layers are unpacked under tmp/ and renamed into layers/: placement happens here.
        fsutil::mark_top_directory(&root.join("tmp"));
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Stores a small blob (an image config) after checking it against its digest.
    pub fn write_blob(&self, digest: &Digest, content: &[u8]) -> Result<(), StoreError> {
        let actual = Digest::of_bytes(content);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        fsutil::write_atomic(&self.tmp_dir(), &self.blob_path(digest), content)
    }

    /// Reads a blob, checking that it still matches its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let content = std::fs::read(&path).map_err(io_error(&path))?;
        if &Digest::of_bytes(&content) != digest {
            return Err(StoreError::Corrupt {
                path,
                message: format!("content does not match {digest}"),
            });
        }
        Ok(content)
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }
}
