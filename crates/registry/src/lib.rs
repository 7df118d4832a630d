//! Talking to OCI registries: image references, endpoints (mirrors, plain HTTP), credentials,
//! manifests and blob streams. `oci-client` does the token flow and provides the manifest
//! types; the requests themselves are made here (`session`), so that transient failures are
//! retried with back-off, bodies are capped in size and blob transfers resume with Range.

mod blob;
mod client;
mod error;
mod grammar;
mod manifest;
mod oci;
mod reference;
mod retry;
mod session;

pub use blob::{BlobFailure, BlobStream};
pub use client::{LayerDescriptor, Registry, ResolvedImage};
pub use error::RegistryError;
pub use manifest::{MAX_INDEX_DEPTH, MAX_METADATA_SIZE};
pub use reference::{ImageName, ReferenceError};
pub use retry::{Attempts, Failed, GiveUp, RetryPolicy, STALLED_ATTEMPTS_LIMIT};
