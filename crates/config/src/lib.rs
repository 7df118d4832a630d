//! podrun's configuration: where things live (XDG directories), the TOML configuration file,
//! registry credentials found in the files docker and podman write, and where each effective
//! setting came from.

mod credentials;
mod file;
mod logs;
mod paths;
mod pull;
mod sources;

pub use credentials::{Credential, CredentialSource, Credentials};
pub use file::{is_loopback_host, Config, Mirror, NetworkConfig, RegistryConfig};
pub use logs::{LogsConfig, DEFAULT_LOG_MAX_SIZE};
pub use paths::Paths;
pub use pull::{parse_duration, parse_size, PullConfig, MAX_RETRY_DELAY, MIN_LAYER_LIMIT};
pub use sources::{effective_settings, format_duration, format_size, Origin, Setting};

/// Errors reading configuration. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: registries.\"{registry}\".mirrors: `{mirror}` is not a registry address (expected e.g. `mirror.example:5000` or `http://127.0.0.1:5000`)")]
    BadMirror {
        path: String,
        registry: String,
        mirror: String,
    },
    #[error("cannot find the home directory: HOME is not set")]
    NoHome,
}
