//! What a pull reports while it works, for the CLI to draw as it likes.

/// One step of a pull.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The manifest was found; `layers` layers make up the image.
    Resolved {
        image: String,
        digest: String,
        served_by: String,
        layers: usize,
    },
    /// Another podrun process is pulling some of these layers; waiting for it.
    WaitingForOtherPull { image: String },
    /// The layer is already in the store: nothing to download or unpack.
    LayerPresent { digest: String, size: u64 },
    /// Download and unpack of a layer began; `size` is the compressed size.
    LayerStarted { digest: String, size: u64 },
    /// `bytes` of the layer's compressed blob have arrived so far.
    LayerProgress { digest: String, bytes: u64 },
    /// The layer is verified, unpacked and committed.
    LayerDone { digest: String },
    /// The image is recorded in the store.
    Done { image: String, digest: String },
}

/// Receives [`PullEvent`]s; called from several threads.
pub trait PullObserver: Send + Sync {
    fn event(&self, event: PullEvent);
}

/// An observer that ignores everything.
impl PullObserver for () {
    fn event(&self, _event: PullEvent) {}
}
