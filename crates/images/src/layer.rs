//! Fetching one layer: network stream → digest check → unpacker, in one pass.

use std::io::Read;
use std::sync::Arc;

use futures_util::TryStreamExt;
use podrun_registry::{LayerDescriptor, Registry, ResolvedImage};
use podrun_store::{Digest, DigestLock, LayerInfo, Store};
use podrun_unpack::{unpack_layer, Compression, UnpackOptions};
use sha2::{Digest as _, Sha256};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::{PullError, PullEvent, PullObserver};

/// What every layer fetch of one image shares.
pub(crate) struct LayerFetcher<'a> {
    pub registry: &'a Registry,
    pub image: &'a ResolvedImage,
    pub store: &'a Store,
    pub options: UnpackOptions,
    pub pull: &'a podrun_config::PullConfig,
    pub observer: Arc<dyn PullObserver>,
}

impl LayerFetcher<'_> {
    /// Downloads, verifies, unpacks and commits `layer`, whose lock the caller holds; it must
    /// unpack to `expected_diff_id`.
    pub async fn fetch(
        &self,
        layer: &LayerDescriptor,
        lock: &DigestLock,
        expected_diff_id: &str,
    ) -> Result<LayerInfo, PullError> {
        fetch_layer(self, layer, lock, expected_diff_id).await
    }
}

async fn fetch_layer(
    fetcher: &LayerFetcher<'_>,
    layer: &LayerDescriptor,
    lock: &DigestLock,
    expected_diff_id: &str,
) -> Result<LayerInfo, PullError> {
    let LayerFetcher {
        registry,
        image,
        store,
        options,
        pull,
        observer,
    } = fetcher;
    // A decompression bomb stops at this limit instead of filling the disk.
    let options = UnpackOptions {
        max_uncompressed_bytes: Some(pull.layer_limit(layer.size)),
        ..options.clone()
    };
    let digest: Digest = layer.digest.parse()?;
    let image_name = image.name.to_string();
    let compression = Compression::from_media_type(&layer.media_type).ok_or_else(|| {
        PullError::UnsupportedLayer {
            image: image_name.clone(),
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        }
    })?;
    let draft = store.begin_layer(&digest, lock)?;
    observer.event(PullEvent::LayerStarted {
        digest: layer.digest.clone(),
        size: layer.size,
    });
    // Resumed transfers continue the same stream, so the hash below covers the whole blob.
    let blob = registry.blob_stream(image, layer);
    let failure = blob.failure.clone();
    let reader = StreamReader::new(blob.stream.map_err(std::io::Error::other));
    let progress = Progress {
        digest: layer.digest.clone(),
        observer: observer.clone(),
    };
    // The unpacking thread owns the draft: should this fetch be dropped (another layer of
    // the image failed), the thread stops at its next read and removes the draft's
    // directory itself, after its last write (removed from here, it raced the unpacker's
    // writes: "Directory not empty", and a half layer left in the store's tmp).
    let cancel = CancelOnDrop::default();
    let cancelled = cancel.0.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let reader = Cancellable {
            inner: SyncIoBridge::new(reader),
            cancelled,
        };
        let mut source = HashingReader::new(reader, progress);
        let unpacked = unpack_layer(&mut source, compression, draft.dir(), &options);
        // Read what the unpacker left (gzip trailer, padding) so the hash covers the whole blob.
        let drained = std::io::copy(&mut source, &mut std::io::sink());
        (draft, unpacked, drained, source.finish())
    })
    .await
    .expect("layer unpacking thread panicked");
    let (draft, unpacked, drained, (hash, received)) = outcome;

    // A transfer that failed for good (retries spent, a size the descriptor contradicts)
    // explains whatever the unpacker made of the cut stream.
    if let Some(error) = failure.take() {
        return Err(PullError::Blob {
            digest: layer.digest.clone(),
            source: Box::new(error),
        });
    }
    // A wrong digest explains any other failure (a corrupt gzip stream, say), so it comes first.
    let actual = Digest::from_sha256(&hash);
    if received == layer.size && actual != digest {
        return Err(PullError::CorruptBlob {
            image: image_name,
            registry: image.served_by.clone(),
            digest: layer.digest.clone(),
            actual: actual.to_string(),
        });
    }
    let stats = unpacked.map_err(|source| PullError::Unpack {
        image: image_name.clone(),
        digest: layer.digest.clone(),
        source: Box::new(source),
    })?;
    if let Err(e) = drained {
        return Err(transfer_error(&image_name, image, layer, &e));
    }
    if actual != digest {
        return Err(PullError::Transfer {
            image: image_name,
            registry: image.served_by.clone(),
            digest: layer.digest.clone(),
            message: format!("received {received} of {} bytes", layer.size),
        });
    }
    if stats.diff_id != expected_diff_id {
        return Err(PullError::DiffIdMismatch {
            image: image_name,
            digest: layer.digest.clone(),
            expected: expected_diff_id.to_string(),
            actual: stats.diff_id,
        });
    }
    let info = LayerInfo {
        digest: layer.digest.clone(),
        diff_id: stats.diff_id,
        media_type: layer.media_type.clone(),
        size: stats.bytes,
        entries: stats.entries,
    };
    draft.commit(&info)?;
    observer.event(PullEvent::LayerDone {
        digest: layer.digest.clone(),
    });
    Ok(info)
}

fn transfer_error(
    image_name: &str,
    image: &ResolvedImage,
    layer: &LayerDescriptor,
    error: &std::io::Error,
) -> PullError {
    PullError::Transfer {
        image: image_name.to_string(),
        registry: image.served_by.clone(),
        digest: layer.digest.clone(),
        message: error.to_string(),
    }
}

struct Progress {
    digest: String,
    observer: Arc<dyn PullObserver>,
}

/// Hashes and counts every byte read through it, reporting progress now and then.
/// Sets its flag when dropped: the fetch of a layer was dropped before its end.
#[derive(Default)]
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A reader that fails once its fetch was dropped ([`CancelOnDrop`]).
struct Cancellable<R> {
    inner: R,
    cancelled: Arc<std::sync::atomic::AtomicBool>,
}

impl<R: Read> Read for Cancellable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancelled.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other("the pull was abandoned"));
        }
        self.inner.read(buf)
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    received: u64,
    reported: u64,
    progress: Progress,
}

/// Report progress after this many new bytes (often enough for a smooth bar, rarely enough
/// to cost nothing).
const REPORT_EVERY: u64 = 512 * 1024;

impl<R: Read> HashingReader<R> {
    fn new(inner: R, progress: Progress) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            received: 0,
            reported: 0,
            progress,
        }
    }

    fn finish(self) -> (Vec<u8>, u64) {
        self.progress.observer.event(PullEvent::LayerProgress {
            digest: self.progress.digest.clone(),
            bytes: self.received,
        });
        (self.hasher.finalize().to_vec(), self.received)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.received += n as u64;
        if self.received - self.reported >= REPORT_EVERY {
            self.reported = self.received;
            self.progress.observer.event(PullEvent::LayerProgress {
                digest: self.progress.digest.clone(),
                bytes: self.received,
            });
        }
        Ok(n)
    }
}
