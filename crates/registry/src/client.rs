//! Resolving an image to its manifest and config, through mirrors, and streaming its blobs.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use podrun_config::{Config, Credentials};

use crate::error::ErrorContext;
use crate::{ImageName, RegistryError};

/// One layer as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// An image resolved on one endpoint: which manifest, config and layers it has.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub name: ImageName,
    /// The host that served it: a mirror or the image's own registry.
    pub served_by: String,
    /// The platform manifest's digest (what a `repo@digest` of this platform would pin).
    pub manifest_digest: String,
    /// The image index / manifest list digest when the name pointed at one.
    pub index_digest: Option<String>,
    pub config_digest: String,
    /// The config blob as served (its digest was verified).
    pub config: Vec<u8>,
    pub layers: Vec<LayerDescriptor>,
    endpoint: Reference,
    auth: RegistryAuth,
    credential: Option<(String, String)>,
}

/// A blob body on its way; yields errors as `std::io::Error`.
pub struct BlobStream {
    pub content_length: Option<u64>,
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
}

/// A registry session for one image: knows its endpoints (mirrors first) and credentials, and
/// keeps one token cache so parallel layer downloads reuse the token fetched for the manifest.
pub struct Registry {
    client: Client,
    endpoints: Vec<Endpoint>,
    credentials: Credentials,
}

#[derive(Debug, Clone)]
struct Endpoint {
    host: String,
    is_mirror: bool,
}

impl Registry {
    /// Prepares to pull `image` with the mirrors, transports and credentials the user configured.
    pub fn for_image(config: &Config, credentials: &Credentials, image: &ImageName) -> Self {
        let mut endpoints: Vec<Endpoint> = config
            .mirrors_for(image.registry())
            .into_iter()
            .map(|m| Endpoint {
                host: m.host,
                is_mirror: true,
            })
            .collect();
        endpoints.push(Endpoint {
            host: image.registry().to_string(),
            is_mirror: false,
        });
        let plain_http_hosts = config
            .mirrors_for(image.registry())
            .into_iter()
            .filter(|m| m.plain_http || config.allows_plain_http(&m.host))
            .map(|m| m.host)
            .chain(
                config
                    .allows_plain_http(image.registry())
                    .then(|| image.registry().to_string()),
            )
            .collect();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain_http_hosts),
            connect_timeout: Some(Duration::from_secs(10)),
            // A transfer that stalls this long is abandoned rather than hanging forever.
            read_timeout: Some(Duration::from_secs(30)),
            user_agent: concat!("podrun/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        });
        Registry {
            client,
            endpoints,
            credentials: credentials.clone(),
        }
    }

    /// Finds the image's manifest (for this host's platform when it is an index) and config,
    /// trying each mirror in order and then the registry itself.
    pub async fn resolve(&self, image: &ImageName) -> Result<ResolvedImage, RegistryError> {
        let mut mirror_failures = Vec::new();
        for endpoint in &self.endpoints {
            match self.resolve_on(image, endpoint).await {
                Ok(resolved) => {
                    for (mirror, error) in &mirror_failures {
                        tracing::warn!("mirror {mirror} failed for {image}: {error}");
                    }
                    return Ok(resolved);
                }
                Err(error) if endpoint.is_mirror => {
                    mirror_failures.push((endpoint.host.clone(), error.to_string()));
                }
                Err(error) if mirror_failures.is_empty() => return Err(error),
                Err(error) => {
                    return Err(RegistryError::AfterMirrors {
                        last: Box::new(error),
                        mirrors: mirror_failures,
                    })
                }
            }
        }
        unreachable!("the image's own registry is always the last endpoint")
    }

    async fn resolve_on(
        &self,
        image: &ImageName,
        endpoint: &Endpoint,
    ) -> Result<ResolvedImage, RegistryError> {
        let mut reference = image.reference().clone();
        if endpoint.is_mirror {
            reference.set_mirror_registry(endpoint.host.clone());
        }
        let credential = self.credentials.for_host(&endpoint.host).map(|c| {
            (
                (c.username.clone(), c.password.clone()),
                (c.username.clone(), c.source.0.display().to_string()),
            )
        });
        let auth = match &credential {
            Some(((user, password), _)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let credential = credential.map(|(_, shown)| shown);
        let image_text = image.to_string();
        let context = ErrorContext {
            image: &image_text,
            registry: &endpoint.host,
            credential: credential.as_ref().map(|(u, f)| (u.as_str(), f.as_str())),
        };
        let (manifest, manifest_digest, index_digest) = self
            .client
            .pull_image_manifest_and_list_digest(&reference, &auth)
            .await
            .map_err(|e| context.classify(e))?;
        let mut config = Vec::new();
        self.client
            .pull_blob(&reference, &manifest.config, &mut config)
            .await
            .map_err(|e| context.classify(e))?;
        let layers = manifest
            .layers
            .iter()
            .map(|layer| LayerDescriptor {
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                size: u64::try_from(layer.size).unwrap_or(0),
            })
            .collect();
        Ok(ResolvedImage {
            name: image.clone(),
            served_by: endpoint.host.clone(),
            manifest_digest,
            index_digest,
            config_digest: manifest.config.digest.clone(),
            config,
            layers,
            endpoint: reference,
            auth,
            credential,
        })
    }

    /// Starts streaming one layer blob from the endpoint that resolved the image. The caller
    /// verifies the digest of what it reads.
    pub async fn blob_stream(
        &self,
        image: &ResolvedImage,
        layer: &LayerDescriptor,
    ) -> Result<BlobStream, RegistryError> {
        let descriptor = OciDescriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: i64::try_from(layer.size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        let image_text = image.name.to_string();
        let context = ErrorContext {
            image: &image_text,
            registry: &image.served_by,
            credential: image
                .credential
                .as_ref()
                .map(|(u, f)| (u.as_str(), f.as_str())),
        };
        // The manifest pull stored the token; this makes sure of it without a new request.
        self.client
            .store_auth_if_needed(image.endpoint.resolve_registry(), &image.auth)
            .await;
        let sized = self
            .client
            .pull_blob_stream(&image.endpoint, &descriptor)
            .await
            .map_err(|e| context.classify(e))?;
        Ok(BlobStream {
            content_length: sized.content_length,
            stream: Box::pin(sized.stream.map_err(std::io::Error::other)),
        })
    }
}
