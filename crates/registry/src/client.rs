//! Resolving an image to its manifest and config, through mirrors, and streaming its blobs.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oci_client::secrets::RegistryAuth;
use podrun_config::{Config, Credentials};

use crate::blob::{download, BlobStream};
use crate::manifest::{fetch_config, resolve_manifest};
use crate::oci::{LazyOciClient, USER_AGENT};
use crate::retry::RetryPolicy;
use crate::session::Session;
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
    session: Arc<Session>,
}

/// A registry session for one image: knows its endpoints (mirrors first) and credentials, and
/// keeps one token cache so parallel layer downloads reuse the token fetched for the manifest.
pub struct Registry {
    /// Used for the token flow only (see `session`), built on first use.
    client: Arc<LazyOciClient>,
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    credentials: Credentials,
    policy: RetryPolicy,
}

#[derive(Debug, Clone)]
struct Endpoint {
    host: String,
    is_mirror: bool,
    plain_http: bool,
}

impl Registry {
    /// Prepares to pull `image` with the mirrors, transports and credentials the user configured.
    pub fn for_image(config: &Config, credentials: &Credentials, image: &ImageName) -> Self {
        Self::new(config, credentials, image, Purpose::Pull)
    }

    /// [`Registry::for_image`] for [`Registry::current_digest`] alone: when every endpoint is
    /// plain HTTP it loads no TLS roots (some 2.5 ms on every play of a `:latest` image). A
    /// pull keeps them, as a plain-HTTP registry may redirect blobs to HTTPS storage.
    pub fn for_manifest_check(
        config: &Config,
        credentials: &Credentials,
        image: &ImageName,
    ) -> Self {
        Self::new(config, credentials, image, Purpose::ManifestCheck)
    }

    fn new(
        config: &Config,
        credentials: &Credentials,
        image: &ImageName,
        purpose: Purpose,
    ) -> Self {
        let mut endpoints: Vec<Endpoint> = config
            .mirrors_for(image.registry())
            .into_iter()
            .map(|m| Endpoint {
                plain_http: m.plain_http || config.allows_plain_http(&m.host),
                host: m.host,
                is_mirror: true,
            })
            .collect();
        endpoints.push(Endpoint {
            host: image.registry().to_string(),
            is_mirror: false,
            plain_http: config.allows_plain_http(image.registry()),
        });
        let policy = RetryPolicy::from_config(&config.pull);
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
        let connect_timeout = Duration::from_secs(10).min(policy.stall_timeout);
        let client = Arc::new(LazyOciClient {
            plain_http_hosts,
            connect_timeout,
            stall_timeout: policy.stall_timeout,
            client: OnceLock::new(),
        });
        let mut http = reqwest::Client::builder();
        if purpose == Purpose::ManifestCheck && endpoints.iter().all(|e| e.plain_http) {
            http = http.tls_certs_only(Vec::new());
        }
        let http = http
            .connect_timeout(connect_timeout)
            .read_timeout(policy.stall_timeout)
            .user_agent(USER_AGENT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!("cannot configure the HTTP client ({e}); using its defaults");
                reqwest::Client::new()
            });
        Registry {
            client,
            http,
            endpoints,
            credentials: credentials.clone(),
            policy,
        }
    }

    /// Finds the image's manifest (for this host's platform when it is an index) and config,
    /// trying each mirror in order and then the registry itself.
    pub async fn resolve(&self, image: &ImageName) -> Result<ResolvedImage, RegistryError> {
        self.on_first_endpoint(image, |endpoint| self.resolve_on(image, endpoint))
            .await
    }

    /// The digest of the image's platform manifest as its registry (or first working mirror)
    /// serves it now, without fetching the config: enough to tell whether a stored image is
    /// still current (`imagePullPolicy: Always` on an image already pulled).
    pub async fn current_digest(&self, image: &ImageName) -> Result<String, RegistryError> {
        self.on_first_endpoint(image, |endpoint| async move {
            let (session, reference) = self.session(image, endpoint);
            // No token flow up front: an anonymous registry answers at once, and one that
            // wants a token says so with a 401, which runs the flow once (`Session::get`).
            let (_, manifest_digest, _) = resolve_manifest(&session, &reference).await?;
            Ok(manifest_digest)
        })
        .await
    }

    /// Runs `attempt` on each mirror in order and then the registry itself, until one
    /// succeeds; a mirror's failure is logged once another endpoint succeeds.
    async fn on_first_endpoint<'a, T, F, Fut>(
        &'a self,
        image: &ImageName,
        attempt: F,
    ) -> Result<T, RegistryError>
    where
        F: Fn(&'a Endpoint) -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let mut mirror_failures = Vec::new();
        for endpoint in &self.endpoints {
            match attempt(endpoint).await {
                Ok(found) => {
                    for (mirror, error) in &mirror_failures {
                        tracing::warn!("mirror {mirror} failed for {image}: {error}");
                    }
                    return Ok(found);
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

    /// A session for `image` on `endpoint`, with the user's credential for that host, and
    /// the reference to ask it for.
    fn session(
        &self,
        image: &ImageName,
        endpoint: &Endpoint,
    ) -> (Arc<Session>, oci_client::Reference) {
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
        let session = Arc::new(Session::new(crate::session::Endpoint {
            http: self.http.clone(),
            oci: self.client.clone(),
            reference: reference.clone(),
            auth,
            plain_http: endpoint.plain_http,
            is_mirror: endpoint.is_mirror,
            policy: self.policy,
            image: &image_text,
            registry: &endpoint.host,
            credential,
        }));
        (session, reference)
    }

    async fn resolve_on(
        &self,
        image: &ImageName,
        endpoint: &Endpoint,
    ) -> Result<ResolvedImage, RegistryError> {
        let (session, reference) = self.session(image, endpoint);
        session.authorize().await?;
        let (manifest, manifest_digest, index_digest) =
            resolve_manifest(&session, &reference).await?;
        let config = fetch_config(&session, &manifest).await?;
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
            session,
        })
    }

    /// Starts streaming one layer blob from the endpoint that resolved the image. The stream
    /// delivers exactly the descriptor's size, resuming broken transfers; the caller verifies
    /// the digest of what it reads.
    pub fn blob_stream(&self, image: &ResolvedImage, layer: &LayerDescriptor) -> BlobStream {
        download(image.session.clone(), &layer.digest, layer.size)
    }
}

/// What a [`Registry`] is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Pull,
    ManifestCheck,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_without_roots_builds_for_plain_http() {
        let client = reqwest::Client::builder()
            .tls_certs_only(Vec::new())
            .build();
        assert!(client.is_ok(), "{:?}", client.err());
    }
}
