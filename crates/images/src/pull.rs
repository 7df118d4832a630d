//! The pull of one image, start to finish.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use podrun_config::{Config, Credentials};
use podrun_registry::{ImageName, Registry, RegistryError, ResolvedImage};
use podrun_store::{Digest, DigestLock, ImageRecord, LayerRef, Store, StoreError};
use podrun_unpack::{UnpackError, UnpackOptions};

use crate::layer::LayerFetcher;
use crate::{PullEvent, PullObserver};

/// Why a pull failed. Every variant names the image, and the blob where one is involved.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("image store: {0}")]
    Store(#[from] StoreError),
    #[error("{image}: the registry sent an invalid image: {message}")]
    InvalidImage { image: String, message: String },
    #[error("{image}: layer {digest} has media type `{media_type}`, which podrun cannot unpack")]
    UnsupportedLayer {
        image: String,
        digest: String,
        media_type: String,
    },
    #[error("{image}: blob {digest} from {registry} is corrupt: its content hashes to {actual}; nothing was stored")]
    CorruptBlob {
        image: String,
        registry: String,
        digest: String,
        actual: String,
    },
    #[error("{image}: downloading layer {digest} from {registry} failed: {message}")]
    Transfer {
        image: String,
        registry: String,
        digest: String,
        message: String,
    },
    /// The registry error names the image, the registry and the blob already.
    #[error("{source}")]
    Blob {
        digest: String,
        source: Box<RegistryError>,
    },
    #[error("{image}: layer {digest}: {source}")]
    Unpack {
        image: String,
        digest: String,
        source: Box<UnpackError>,
    },
    #[error("{image}: layer {digest} unpacks to {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        image: String,
        digest: String,
        expected: String,
        actual: String,
    },
}

/// Pulls images into a store with the user's configuration and credentials.
pub struct Puller {
    pub config: Config,
    pub credentials: Credentials,
    pub store: Store,
    pub unpack_options: UnpackOptions,
}

impl Puller {
    /// Pulls `name` and records it in the store; layers already present are reused.
    pub async fn pull(
        &self,
        name: &ImageName,
        observer: Arc<dyn PullObserver>,
    ) -> Result<ImageRecord, PullError> {
        self.store.remove_abandoned_tmp()?;
        let registry = Registry::for_image(&self.config, &self.credentials, name);
        let resolved = registry.resolve(name).await?;
        let image = name.to_string();
        observer.event(PullEvent::Resolved {
            image: image.clone(),
            digest: resolved.manifest_digest.clone(),
            served_by: resolved.served_by.clone(),
            layers: resolved.layers.len(),
        });
        let config = ImageConfig::parse(&image, &resolved)?;
        let config_digest: Digest = resolved.config_digest.parse()?;
        self.store.write_blob(&config_digest, &resolved.config)?;

        // Hold every layer's lock until the image is recorded, so garbage collection cannot
        // remove a layer between its commit and the index update. Locks are taken in digest
        // order, so two pulls sharing layers cannot deadlock; the second one waits and then
        // finds the layers present.
        let locks = self
            .lock_layers(&image, &resolved, observer.as_ref())
            .await?;
        let sizes = self
            .fetch_missing_layers(&registry, &resolved, &config, &locks, observer.clone())
            .await?;

        let record = ImageRecord {
            name: image.clone(),
            repository: name.repository_name(),
            tag: name.tag().map(str::to_string),
            digest: resolved.manifest_digest.clone(),
            index_digest: resolved.index_digest.clone(),
            config_digest: resolved.config_digest.clone(),
            layers: resolved
                .layers
                .iter()
                .map(|l| LayerRef {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                })
                .collect(),
            size: resolved.layers.iter().map(|l| sizes[&l.digest].size).sum(),
            created: config.created,
            pulled: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        self.store.put_image(record.clone())?;
        drop(locks);
        observer.event(PullEvent::Done {
            image,
            digest: record.digest.clone(),
        });
        Ok(record)
    }

    /// Whether `record`, the stored image of `name`, is what the registry serves now: the
    /// same manifest digest, with its config and every layer still in the store. Asks for
    /// the manifest only (no config, no layers), so `imagePullPolicy: Always` on an image
    /// that has not changed costs one round trip and needs no pull.
    pub async fn is_current(
        &self,
        name: &ImageName,
        record: &ImageRecord,
    ) -> Result<bool, PullError> {
        let registry = Registry::for_manifest_check(&self.config, &self.credentials, name);
        let digest = registry.current_digest(name).await?;
        Ok(digest == record.digest && self.has_all_blobs(record)?)
    }

    fn has_all_blobs(&self, record: &ImageRecord) -> Result<bool, PullError> {
        let config: Digest = record.config_digest.parse()?;
        if !self.store.has_blob(&config) {
            return Ok(false);
        }
        for layer in &record.layers {
            if self.store.layer(&layer.digest.parse()?)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn lock_layers(
        &self,
        image: &str,
        resolved: &ResolvedImage,
        observer: &dyn PullObserver,
    ) -> Result<BTreeMap<String, DigestLock>, PullError> {
        let mut digests: Vec<Digest> = resolved
            .layers
            .iter()
            .map(|l| l.digest.parse())
            .collect::<Result<_, _>>()?;
        digests.sort();
        digests.dedup();
        let mut locks = BTreeMap::new();
        for digest in digests {
            let store = self.store.clone();
            let lock = match store.try_lock_digest(&digest)? {
                Some(lock) => lock,
                None => {
                    observer.event(PullEvent::WaitingForOtherPull {
                        image: image.to_string(),
                    });
                    let digest = digest.clone();
                    tokio::task::spawn_blocking(move || store.lock_digest(&digest))
                        .await
                        .expect("lock thread panicked")?
                }
            };
            locks.insert(digest.to_string(), lock);
        }
        Ok(locks)
    }

    /// Fetches the layers not yet in the store, several at a time; returns every layer's info.
    async fn fetch_missing_layers(
        &self,
        registry: &Registry,
        resolved: &ResolvedImage,
        config: &ImageConfig,
        locks: &BTreeMap<String, DigestLock>,
        observer: Arc<dyn PullObserver>,
    ) -> Result<BTreeMap<String, podrun_store::LayerInfo>, PullError> {
        let image = resolved.name.to_string();
        // Each layer with the uncompressed digest the config promises for it.
        let mut unique: Vec<_> = resolved.layers.iter().zip(&config.diff_ids).collect();
        unique.sort_by(|a, b| a.0.digest.cmp(&b.0.digest));
        unique.dedup_by(|a, b| a.0.digest == b.0.digest);
        let fetcher = LayerFetcher {
            registry,
            image: resolved,
            store: &self.store,
            options: self.unpack_options.clone(),
            pull: &self.config.pull,
            observer: observer.clone(),
        };
        let fetcher = &fetcher;
        futures_util::stream::iter(unique)
            .map(|(layer, diff_id)| {
                let observer = observer.clone();
                let image = image.clone();
                async move {
                    let digest: Digest = layer.digest.parse()?;
                    if let Some(info) = self.store.layer(&digest)? {
                        if &info.diff_id != diff_id {
                            return Err(PullError::DiffIdMismatch {
                                image,
                                digest: layer.digest.clone(),
                                expected: diff_id.clone(),
                                actual: info.diff_id,
                            });
                        }
                        observer.event(PullEvent::LayerPresent {
                            digest: layer.digest.clone(),
                            size: layer.size,
                        });
                        return Ok((layer.digest.clone(), info));
                    }
                    let info = fetcher.fetch(layer, &locks[&layer.digest], diff_id).await?;
                    Ok((layer.digest.clone(), info))
                }
            })
            .buffer_unordered(self.config.pull.max_concurrent_downloads)
            .try_collect()
            .await
    }
}

/// The parts of an image config a pull needs.
struct ImageConfig {
    created: Option<String>,
    diff_ids: Vec<String>,
}

impl ImageConfig {
    fn parse(image: &str, resolved: &ResolvedImage) -> Result<Self, PullError> {
        let invalid = |message: String| PullError::InvalidImage {
            image: image.to_string(),
            message,
        };
        let value: serde_json::Value = serde_json::from_slice(&resolved.config).map_err(|e| {
            invalid(format!(
                "config {} is not JSON: {e}",
                resolved.config_digest
            ))
        })?;
        let diff_ids: Vec<String> = value["rootfs"]["diff_ids"]
            .as_array()
            .ok_or_else(|| {
                invalid(format!(
                    "config {} has no rootfs.diff_ids",
                    resolved.config_digest
                ))
            })?
            .iter()
            .map(|d| d.as_str().unwrap_or_default().to_string())
            .collect();
        if diff_ids.len() != resolved.layers.len() {
            return Err(invalid(format!(
                "the manifest lists {} layers but the config's rootfs.diff_ids has {}",
                resolved.layers.len(),
                diff_ids.len()
            )));
        }
        Ok(ImageConfig {
            created: value["created"].as_str().map(str::to_string),
            diff_ids,
        })
    }
}
