//! Unpacked layers: a directory per compressed layer digest, committed by its metadata file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{remove_all, unique_name, write_atomic};
use crate::{io_error, Digest, DigestLock, Store, StoreError};

/// What podrun knows about an unpacked layer; stored as `layers/sha256/<hex>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The compressed blob's digest, as in the manifest.
    pub digest: String,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    pub media_type: String,
    /// Bytes of file content unpacked.
    pub size: u64,
    pub entries: u64,
}

/// A layer being unpacked into a private directory under `tmp/`. Dropping it without
/// [`LayerDraft::commit`] removes the directory, so a failed unpack leaves nothing behind.
pub struct LayerDraft {
    dir: PathBuf,
    target: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl Store {
    /// The directory of a committed layer, an overlayfs lower dir.
    pub fn layer_dir(&self, digest: &Digest) -> PathBuf {
        self.root.join("layers/sha256").join(digest.hex())
    }

    fn layer_meta_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("layers/sha256")
            .join(format!("{}.json", digest.hex()))
    }

    pub(crate) fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// Waits until no other podrun process is writing this digest, and keeps it that way
    /// until the lock is dropped.
    pub fn lock_digest(&self, digest: &Digest) -> Result<DigestLock, StoreError> {
        DigestLock::acquire(&self.lock_path(digest.hex()))
    }

    /// Takes the digest's lock if no other process holds it.
    pub fn try_lock_digest(&self, digest: &Digest) -> Result<Option<DigestLock>, StoreError> {
        DigestLock::try_acquire(&self.lock_path(digest.hex()))
    }

    /// The committed layer, or None when it is absent or was left half-written.
    pub fn layer(&self, digest: &Digest) -> Result<Option<LayerInfo>, StoreError> {
        let meta = self.layer_meta_path(digest);
        let text = match std::fs::read(&meta) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&meta)(e)),
        };
        let info: LayerInfo = serde_json::from_slice(&text).map_err(|e| StoreError::Corrupt {
            path: meta.clone(),
            message: e.to_string(),
        })?;
        Ok(self.layer_dir(digest).is_dir().then_some(info))
    }

    /// Starts unpacking `digest`. The caller holds its lock, so any partial state found is
    /// from a process that died: it is removed first.
    pub fn begin_layer(
        &self,
        digest: &Digest,
        _held: &DigestLock,
    ) -> Result<LayerDraft, StoreError> {
        self.remove_layer_files(digest)?;
        self.remove_stale_tmp(digest.hex())?;
        let dir = self
            .tmp_dir()
            .join(format!("{}.{}", digest.hex(), unique_name("layer")));
        std::fs::create_dir(&dir).map_err(io_error(&dir))?;
        Ok(LayerDraft {
            dir,
            target: self.layer_dir(digest),
            meta: self.layer_meta_path(digest),
            tmp: self.tmp_dir(),
            committed: false,
        })
    }

    /// Removes a layer's metadata (uncommitting it first) and then its directory.
    pub(crate) fn remove_layer_files(&self, digest: &Digest) -> Result<(), StoreError> {
        remove_all(&self.layer_meta_path(digest))?;
        remove_all(&self.layer_dir(digest))
    }

    fn remove_stale_tmp(&self, prefix: &str) -> Result<(), StoreError> {
        let tmp = self.tmp_dir();
        for entry in std::fs::read_dir(&tmp).map_err(io_error(&tmp))? {
            let entry = entry.map_err(io_error(&tmp))?;
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                remove_all(&entry.path())?;
            }
        }
        Ok(())
    }
}

impl LayerDraft {
    /// The empty directory to unpack into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the finished directory into place, then writes the metadata that commits it.
    pub fn commit(mut self, info: &LayerInfo) -> Result<(), StoreError> {
        std::fs::rename(&self.dir, &self.target).map_err(io_error(&self.target))?;
        self.committed = true;
        let json = serde_json::to_vec_pretty(info).expect("layer info serializes");
        write_atomic(&self.tmp, &self.meta, &json)
    }
}

impl Drop for LayerDraft {
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = remove_all(&self.dir) {
                tracing::warn!("could not remove unfinished layer: {e}");
            }
        }
    }
}
