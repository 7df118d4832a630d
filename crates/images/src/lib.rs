//! Pulling images: resolve the name on a registry, then download, verify and unpack each
//! missing layer into the store, and record the image.
//!
//! A layer streams from the network through a SHA-256 hasher straight into the unpacker, so
//! download, decompression and unpacking overlap, and nothing is committed until the whole
//! blob has matched its digest.

mod layer;
mod progress;
mod pull;

pub use podrun_unpack::UnpackOptions;
pub use progress::{PullEvent, PullObserver};
pub use pull::{PullError, Puller};
