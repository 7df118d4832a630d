//! The image index (`images.json`) and garbage collection.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::fsutil::{remove_all, write_atomic};
use crate::{io_error, Digest, DigestLock, Store, StoreError};

/// One pulled image, under the name it was pulled as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The normalised reference, e.g. `docker.io/library/nginx:1.23`.
    pub name: String,
    /// `registry/repository`.
    pub repository: String,
    pub tag: Option<String>,
    /// The (platform) manifest digest.
    pub digest: String,
    /// The index / manifest list digest when the name pointed at one.
    #[serde(default)]
    pub index_digest: Option<String>,
    pub config_digest: String,
    /// Lowest layer first, as in the manifest.
    pub layers: Vec<LayerRef>,
    /// Bytes of file content in all layers.
    pub size: u64,
    /// The image's creation time from its config (RFC 3339), when it has one.
    pub created: Option<String>,
    /// When this name was last pulled (RFC 3339).
    pub pulled: String,
}

/// A layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: String,
    pub media_type: String,
    /// Compressed size, as in the manifest.
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ImageIndex {
    images: Vec<ImageRecord>,
}

/// What garbage collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub layers_removed: Vec<String>,
    pub blobs_removed: Vec<String>,
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.root.join("images.json")
    }

    fn lock_index(&self) -> Result<DigestLock, StoreError> {
        DigestLock::acquire(&self.lock_path("index"))
    }

    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ImageIndex::default()),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(index).expect("index serializes");
        write_atomic(&self.tmp_dir(), &self.index_path(), &json)
    }

    /// Every image in the store, in the order they were first pulled.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.read_index()?.images)
    }

    /// The image pulled under exactly this normalised name.
    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>, StoreError> {
        Ok(self.images()?.into_iter().find(|i| i.name == name))
    }

    /// Records `record`, replacing an earlier pull of the same name. Its layers and config must
    /// already be committed (and locked by the caller, so collection cannot race with this).
    pub fn put_image(&self, record: ImageRecord) -> Result<(), StoreError> {
        let _index = self.lock_index()?;
        let mut index = self.read_index()?;
        match index.images.iter_mut().find(|i| i.name == record.name) {
            Some(existing) => *existing = record,
            None => index.images.push(record),
        }
        self.write_index(&index)
    }

    /// Removes the records `select` picks and returns them; content is left to
    /// [`Store::garbage_collect`].
    pub fn remove_images(
        &self,
        select: impl Fn(&ImageRecord) -> bool,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let _index = self.lock_index()?;
        let mut index = self.read_index()?;
        let (removed, kept) = index.images.into_iter().partition(|i| select(i));
        index.images = kept;
        self.write_index(&index)?;
        Ok(removed)
    }

    /// Removes layers, blobs, locks and leftovers that no image refers to. Content whose lock
    /// is held (a pull in progress) is left alone.
    pub fn garbage_collect(&self) -> Result<GcReport, StoreError> {
        let _index = self.lock_index()?;
        let images = self.read_index()?.images;
        let referenced: BTreeSet<String> = images
            .iter()
            .flat_map(|i| {
                i.layers
                    .iter()
                    .map(|l| l.digest.clone())
                    .chain([i.config_digest.clone()])
            })
            .filter_map(|d| d.parse::<Digest>().ok().map(|d| d.hex().to_string()))
            .collect();
        let mut report = GcReport::default();
        for hex in self.unreferenced_entries("layers/sha256", &referenced)? {
            let digest: Digest = format!("sha256:{hex}").parse()?;
            if let Some(lock) = DigestLock::try_acquire(&self.lock_path(&hex))? {
                self.remove_layer_files(&digest)?;
                lock.remove_file();
                report.layers_removed.push(digest.to_string());
            }
        }
        for hex in self.unreferenced_entries("blobs/sha256", &referenced)? {
            remove_all(&self.root.join("blobs/sha256").join(&hex))?;
            report.blobs_removed.push(format!("sha256:{hex}"));
        }
        self.remove_abandoned_work(&referenced)?;
        Ok(report)
    }

    /// Hex digests named by entries of `dir` (a `<hex>` dir or file, or `<hex>.json`) that are
    /// not in `referenced`.
    fn unreferenced_entries(
        &self,
        dir: &str,
        referenced: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let path = self.root.join(dir);
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(&path).map_err(io_error(&path))? {
            let name = entry.map_err(io_error(&path))?.file_name();
            let name = name.to_string_lossy();
            let hex = name.trim_end_matches(".json");
            if !referenced.contains(hex) {
                found.insert(hex.to_string());
            }
        }
        Ok(found)
    }

    /// Lock files of digests no longer stored (with the abandoned work in `tmp/`).
    fn remove_abandoned_work(&self, referenced: &BTreeSet<String>) -> Result<(), StoreError> {
        self.remove_abandoned_tmp()?;
        let locks = self.root.join("locks");
        for entry in std::fs::read_dir(&locks).map_err(io_error(&locks))? {
            let name = entry.map_err(io_error(&locks))?.file_name();
            let name = name.to_string_lossy();
            let Some(hex) = name.strip_suffix(".lock") else {
                continue;
            };
            if hex == "index" || referenced.contains(hex) {
                continue;
            }
            if let Some(lock) = DigestLock::try_acquire(&self.lock_path(hex))? {
                lock.remove_file();
            }
        }
        Ok(())
    }
}

impl Store {
    /// Removes unfinished work of processes that died in `tmp/`: a `<hex>.layer.…` draft whose
    /// digest lock is free, a `file.<pid>.…` temp file whose process is gone. Cheap (one
    /// directory read), so every pull starts with it.
    pub fn remove_abandoned_tmp(&self) -> Result<(), StoreError> {
        let tmp = self.tmp_dir();
        for entry in std::fs::read_dir(&tmp).map_err(io_error(&tmp))? {
            let entry = entry.map_err(io_error(&tmp))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let owner_alive = match name.split('.').collect::<Vec<_>>().as_slice() {
                [hex, "layer", ..] => DigestLock::try_acquire(&self.lock_path(hex))?.is_none(),
                ["file", pid, ..] => pid
                    .parse::<i32>()
                    .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists()),
                _ => false,
            };
            if !owner_alive {
                remove_all(&entry.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayerInfo;

    fn record(name: &str, layer: &Digest, config: &Digest) -> ImageRecord {
        ImageRecord {
            name: name.into(),
            repository: name.split(':').next().unwrap().into(),
            tag: Some("latest".into()),
            digest: Digest::of_bytes(name.as_bytes()).to_string(),
            index_digest: None,
            config_digest: config.to_string(),
            layers: vec![LayerRef {
                digest: layer.to_string(),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 1,
            }],
            size: 5,
            created: None,
            pulled: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn add_layer(store: &Store, digest: &Digest) {
        let lock = store.lock_digest(digest).unwrap();
        let draft = store.begin_layer(digest, &lock).unwrap();
        std::fs::write(draft.dir().join("file"), "hello").unwrap();
        let info = LayerInfo {
            digest: digest.to_string(),
            diff_id: digest.to_string(),
            media_type: "x".into(),
            size: 5,
            entries: 1,
        };
        draft.commit(&info).unwrap();
        assert_eq!(store.layer(digest).unwrap(), Some(info));
    }

    #[test]
    fn collects_only_unreferenced_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let shared = Digest::of_bytes(b"shared");
        let config_a = Digest::of_bytes(b"config a");
        let config_b = Digest::of_bytes(b"config b");
        add_layer(&store, &shared);
        store.write_blob(&config_a, b"config a").unwrap();
        store.write_blob(&config_b, b"config b").unwrap();
        store
            .put_image(record("a:latest", &shared, &config_a))
            .unwrap();
        store
            .put_image(record("b:latest", &shared, &config_b))
            .unwrap();

        store.remove_images(|i| i.name == "a:latest").unwrap();
        let report = store.garbage_collect().unwrap();
        assert!(report.layers_removed.is_empty(), "{report:?}");
        assert_eq!(report.blobs_removed, vec![config_a.to_string()]);

        store.remove_images(|_| true).unwrap();
        let report = store.garbage_collect().unwrap();
        assert_eq!(report.layers_removed, vec![shared.to_string()]);
        assert!(!store.layer_dir(&shared).exists());
        assert_eq!(
            std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
            0
        );
        let locks: Vec<_> = std::fs::read_dir(store.root().join("locks"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(locks, vec!["index.lock"]);
    }

    #[test]
    fn a_locked_layer_is_not_collected_and_drafts_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of_bytes(b"busy");
        add_layer(&store, &digest);
        let held = store.lock_digest(&digest).unwrap();
        assert!(store.garbage_collect().unwrap().layers_removed.is_empty());
        {
            let draft = store
                .begin_layer(&Digest::of_bytes(b"other"), &held)
                .unwrap();
            std::fs::write(draft.dir().join("x"), "partial").unwrap();
        }
        drop(held);
        assert_eq!(store.garbage_collect().unwrap().layers_removed.len(), 1);
        assert_eq!(
            std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_layer_without_metadata_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of_bytes(b"half");
        std::fs::create_dir_all(store.layer_dir(&digest)).unwrap();
        assert_eq!(store.layer(&digest).unwrap(), None);
        let lock = store.lock_digest(&digest).unwrap();
        let _draft = store.begin_layer(&digest, &lock).unwrap();
        assert!(!store.layer_dir(&digest).exists());
    }

    #[test]
    fn blobs_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of_bytes(b"right");
        assert!(store.write_blob(&digest, b"wrong").is_err());
        assert!(!store.has_blob(&digest));
        store.write_blob(&digest, b"right").unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"right");
    }
}
