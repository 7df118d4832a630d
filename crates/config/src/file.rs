//! The TOML configuration file. Every field is optional; a missing file means the defaults.
//!
//! ```toml
//! [pull]
//! max_concurrent_downloads = 3      # layers fetched at once per image
//! retries = 5                       # and the other keys of `crate::pull`
//!
//! [registries."docker.io"]
//! mirrors = ["http://127.0.0.1:5000"]   # tried in order, then docker.io itself
//!
//! [registries."registry.internal:5000"]
//! insecure = true                       # plain HTTP (always allowed for loopback hosts)
//!
//! [network]
//! default = "slirp4netns"               # or "pasta", "none" (loopback only), "host"
//! allow_host_loopback = false           # pods reach the host's 127.0.0.1 at 10.0.2.2
//! shared_uplink = "slirp4netns"         # the shared network's way out: or "pasta"
//! cluster_dns_upstream = "10.0.2.3:53"  # where its DNS server sends names outside the cluster
//! shared_subnet = "10.89.0.0/24"        # its pods' addresses
//!
//! [logs]
//! max_size = "10MiB"                    # per container (crate::logs)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::{ConfigError, LogsConfig, PullConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub pull: PullConfig,
    /// Per registry host (as written in image names: `docker.io`, `quay.io`, `host:port`).
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryConfig>,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub logs: LogsConfig,
}

/// `[network]`: the pods' network, unless `podrun play --network` says otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// The backend of pods without `hostNetwork: true`; unset: slirp4netns.
    #[serde(default)]
    pub default: Option<podrun_network::Backend>,
    /// Let pods reach services on the host's 127.0.0.1 (at 10.0.2.2 with slirp4netns). Off by
    /// default, as on a cluster node, where a pod cannot reach the node's loopback.
    #[serde(default)]
    pub allow_host_loopback: bool,
    /// The shared pod network's way out (its holder's one helper): slirp4netns (unset) or
    /// pasta. With pasta the shared network publishes no ports (pasta cannot add a forward
    /// while it runs).
    #[serde(default)]
    pub shared_uplink: Option<podrun_network::Backend>,
    /// Where the shared network's DNS server forwards names outside `cluster.local`:
    /// `IP` or `IP:PORT`, as the host sees it (`127.0.0.1:5353`: a resolver on the host's
    /// loopback). Unset: the host's resolvers, through the way out's forwarder (10.0.2.3),
    /// as CoreDNS forwards to the node's.
    #[serde(default)]
    pub cluster_dns_upstream: Option<String>,
    /// The shared pod network's subnet (`10.89.0.0/24` unset): the bridge has its first
    /// address, pods lease the others. Checked by podrun-podnet (`Subnet::for_pods`) where
    /// the file is loaded for a command; a running holder keeps its subnet until it ends.
    #[serde(default)]
    pub shared_subnet: Option<String>,
}

impl NetworkConfig {
    /// [`NetworkConfig::cluster_dns_upstream`] as an address (port 53 unless given); an
    /// error says why it cannot be one.
    pub fn dns_upstream(&self) -> Result<Option<std::net::SocketAddrV4>, String> {
        let Some(text) = &self.cluster_dns_upstream else {
            return Ok(None);
        };
        let address = text
            .parse::<std::net::SocketAddrV4>()
            .or_else(|_| {
                text.parse::<std::net::Ipv4Addr>()
                    .map(|ip| std::net::SocketAddrV4::new(ip, 53))
            })
            .map_err(|_| {
                format!("network.cluster_dns_upstream: `{text}` is not an IPv4 address with an optional port (such as 192.0.2.53 or 127.0.0.1:5353)")
            })?;
        // The way out maps the host's loopback at one address only (10.0.2.2 = 127.0.0.1).
        if address.ip().is_loopback() && *address.ip() != std::net::Ipv4Addr::LOCALHOST {
            return Err(format!(
                "network.cluster_dns_upstream: `{text}`: of the host's loopback only 127.0.0.1 can be reached from the shared network"
            ));
        }
        Ok(Some(address))
    }
}

/// `[registries."HOST"]`: mirrors and transport for one registry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Mirrors tried in order before the registry itself: `host[:port]`, or a URL whose
    /// scheme says whether to use plain HTTP (`http://`) or TLS (`https://`).
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Talk plain HTTP to this registry.
    #[serde(default)]
    pub insecure: bool,
}

/// A mirror from the configuration, split into the host and its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub host: String,
    pub plain_http: bool,
}

impl Config {
    /// Reads `path`; a missing file gives the defaults unless `must_exist` (set when the user
    /// named the file through PODRUN_CONFIG, where a typo should not go unnoticed).
    pub fn load(path: &Path, must_exist: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok(Config::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        for (registry, settings) in &self.registries {
            for mirror in &settings.mirrors {
                if parse_mirror(mirror).is_none() {
                    return Err(ConfigError::BadMirror {
                        path: path.display().to_string(),
                        registry: registry.clone(),
                        mirror: mirror.clone(),
                    });
                }
            }
        }
        if let Some(uplink) = self.network.shared_uplink.filter(|b| !b.has_helper()) {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: format!(
                    "network.shared_uplink: `{uplink}` is no way out: use \"slirp4netns\" or \"pasta\""
                ),
            });
        }
        if let Err(message) = self.network.dns_upstream() {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message,
            });
        }
        if let Some(message) = self.pull.problem().or_else(|| self.logs.problem()) {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message,
            });
        }
        Ok(())
    }

    /// The mirrors configured for `registry`, in the order to try them.
    pub fn mirrors_for(&self, registry: &str) -> Vec<Mirror> {
        self.registries
            .get(registry)
            .map(|r| r.mirrors.iter().filter_map(|m| parse_mirror(m)).collect())
            .unwrap_or_default()
    }

    /// Whether `host` may be reached over plain HTTP: configured insecure, or loopback
    /// (as docker allows without configuration).
    pub fn allows_plain_http(&self, host: &str) -> bool {
        is_loopback_host(host) || self.registries.get(host).is_some_and(|r| r.insecure)
    }
}

fn parse_mirror(text: &str) -> Option<Mirror> {
    let (rest, plain_http) = if let Some(rest) = text.strip_prefix("http://") {
        (rest, true)
    } else if let Some(rest) = text.strip_prefix("https://") {
        (rest, false)
    } else {
        (text, false)
    };
    let host = rest.trim_end_matches('/');
    let valid = !host.is_empty()
        && !host.contains('/')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    valid.then(|| Mirror {
        host: host.to_string(),
        plain_http,
    })
}

/// `localhost`, an address in 127.0.0.0/8 or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mirrors_and_insecure() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:5000\", \"mirror.example\"]\n\
             [registries.\"reg.internal:5000\"]\ninsecure = true\n",
        )
        .unwrap();
        let config = Config::load(&file, true).unwrap();
        assert_eq!(
            config.mirrors_for("docker.io"),
            vec![
                Mirror {
                    host: "127.0.0.1:5000".into(),
                    plain_http: true
                },
                Mirror {
                    host: "mirror.example".into(),
                    plain_http: false
                }
            ]
        );
        assert!(config.allows_plain_http("reg.internal:5000"));
        assert!(!config.allows_plain_http("quay.io"));
        assert_eq!(config.pull.max_concurrent_downloads, 3);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[registries.\"docker.io\"]\nmirors = []\n").unwrap();
        let err = Config::load(&file, true).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("mirors"), "{err}");
        std::fs::write(
            &file,
            "[registries.\"docker.io\"]\nmirrors = [\"http://a/b\"]\n",
        )
        .unwrap();
        let err = Config::load(&file, true).unwrap_err().to_string();
        assert!(err.contains("http://a/b"), "{err}");
        assert!(Config::load(&dir.path().join("missing.toml"), true).is_err());
        assert!(Config::load(&dir.path().join("missing.toml"), false).is_ok());
    }

    #[test]
    fn cluster_dns_upstream_is_an_address_with_port_53_by_default() {
        let network = |text: &str| NetworkConfig {
            cluster_dns_upstream: Some(text.into()),
            ..NetworkConfig::default()
        };
        assert_eq!(NetworkConfig::default().dns_upstream(), Ok(None));
        assert_eq!(
            network("192.0.2.53").dns_upstream(),
            Ok(Some("192.0.2.53:53".parse().unwrap()))
        );
        assert_eq!(
            network("127.0.0.1:5353").dns_upstream(),
            Ok(Some("127.0.0.1:5353".parse().unwrap()))
        );
        let bad = network("dns.example").dns_upstream().unwrap_err();
        assert!(
            bad.contains("cluster_dns_upstream") && bad.contains("dns.example"),
            "{bad}"
        );
        let unreachable = network("127.0.0.53").dns_upstream().unwrap_err();
        assert!(unreachable.contains("only 127.0.0.1"), "{unreachable}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[network]\ncluster_dns_upstream = \"x\"\n").unwrap();
        let err = Config::load(&file, true).unwrap_err().to_string();
        assert!(err.contains("c.toml") && err.contains("`x`"), "{err}");
    }

    #[test]
    fn network_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        assert_eq!(Config::default().network.default, None);
        std::fs::write(
            &file,
            "[network]\ndefault = \"none\"\nallow_host_loopback = true\nshared_uplink = \"pasta\"\n",
        )
        .unwrap();
        let config = Config::load(&file, true).unwrap();
        assert_eq!(config.network.default, Some(podrun_network::Backend::None));
        assert!(config.network.allow_host_loopback);
        assert_eq!(
            config.network.shared_uplink,
            Some(podrun_network::Backend::Pasta)
        );
        std::fs::write(&file, "[network]\ndefault = \"bridge\"\n").unwrap();
        let err = Config::load(&file, true).unwrap_err().to_string();
        assert!(
            err.contains("c.toml") && err.contains("slirp4netns"),
            "{err}"
        );
    }

    #[test]
    fn pull_section() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[pull]\nretries = 2\nretry_delay = \"10ms\"\nstall_timeout = \"2s\"\n\
             max_layer_expansion = 1000\nmax_layer_size = \"1GiB\"\n",
        )
        .unwrap();
        let pull = Config::load(&file, true).unwrap().pull;
        assert_eq!(pull.retries, 2);
        assert_eq!(pull.retry_delay, std::time::Duration::from_millis(10));
        assert_eq!(pull.stall_timeout, std::time::Duration::from_secs(2));
        assert_eq!(pull.retry_time_limit, std::time::Duration::from_secs(300));
        assert_eq!(
            (pull.max_layer_expansion, pull.max_layer_size),
            (1000, 1 << 30)
        );
        std::fs::write(&file, "[pull]\nstall_timeout = \"soon\"\n").unwrap();
        let err = Config::load(&file, true).unwrap_err().to_string();
        assert!(
            err.contains("stall_timeout") && err.contains("`soon`"),
            "{err}"
        );
        std::fs::write(&file, "[pull]\nstall_timeout = \"0s\"\n").unwrap();
        let err = Config::load(&file, true).unwrap_err().to_string();
        assert!(err.contains("pull.stall_timeout"), "{err}");
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["docker.io", "10.0.0.1:5000", "127.example.com"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
