//! Talking to OCI registries: image references, endpoints (mirrors, plain HTTP), credentials,
//! manifests and blob streams. Built on `oci-client`, which speaks the distribution protocol
//! (token auth, Docker schema2 and OCI manifests, image indexes).

mod client;
mod error;
mod grammar;
mod reference;

pub use client::{BlobStream, LayerDescriptor, Registry, ResolvedImage};
pub use error::RegistryError;
pub use reference::{ImageName, ReferenceError};
