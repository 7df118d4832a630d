//! oci-client's client, for the registries' token flow only, built on first use.

use std::sync::OnceLock;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::Client;

pub(crate) const USER_AGENT: &str = concat!("podrun/", env!("CARGO_PKG_VERSION"));

/// oci-client's client, made only when a registry asks for a token (a 401): building it
/// loads the system's CA roots twice (some 5 ms), which an anonymous registry never needs.
pub(crate) struct LazyOciClient {
    pub(crate) plain_http_hosts: Vec<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) stall_timeout: Duration,
    pub(crate) client: OnceLock<Client>,
}

impl LazyOciClient {
    pub(crate) fn get(&self) -> &Client {
        self.client.get_or_init(|| {
            Client::new(ClientConfig {
                protocol: ClientProtocol::HttpsExcept(self.plain_http_hosts.clone()),
                connect_timeout: Some(self.connect_timeout),
                // A transfer that stalls this long is abandoned rather than hanging forever.
                read_timeout: Some(self.stall_timeout),
                user_agent: USER_AGENT,
                ..ClientConfig::default()
            })
        })
    }

    /// A client for tests: oci-client's defaults.
    #[cfg(test)]
    pub(crate) fn with_defaults() -> std::sync::Arc<LazyOciClient> {
        std::sync::Arc::new(LazyOciClient {
            plain_http_hosts: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            client: OnceLock::new(),
        })
    }
}
