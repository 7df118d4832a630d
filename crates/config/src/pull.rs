//! `[pull]`: how images are fetched — concurrency, retries of transient registry failures,
//! the stall timeout of transfers, and the limits that keep a hostile layer from filling the
//! disk.
//!
//! ```toml
//! [pull]
//! max_concurrent_downloads = 3
//! retries = 5                 # further attempts after a transient failure (0: none)
//! retry_delay = "1s"          # first back-off; doubles per attempt, jittered, at most 30 s
//! retry_time_limit = "5m"     # no new attempt starts once this long has passed
//! stall_timeout = "30s"       # a transfer without a byte for this long is aborted and resumed
//! max_layer_expansion = 100   # a layer may unpack to 100 × its compressed size (at least 64 MiB)
//! max_layer_size = "64GiB"    # and never to more than this
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// `[pull]`: how images are fetched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    #[serde(default = "default_concurrency")]
    pub max_concurrent_downloads: usize,
    /// Further attempts after a transient failure (connection refused or reset, 5xx, 429, a
    /// stalled or cut transfer). Permanent failures (401, 403, 404, wrong digest) never retry.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first back-off; each further one doubles, up to [`MAX_RETRY_DELAY`], with jitter.
    #[serde(default = "default_retry_delay", deserialize_with = "duration")]
    pub retry_delay: Duration,
    /// No attempt starts once this long has passed since the first one failed.
    #[serde(default = "default_retry_time_limit", deserialize_with = "duration")]
    pub retry_time_limit: Duration,
    /// A response or transfer that delivers no byte for this long is aborted (and resumed).
    #[serde(default = "default_stall_timeout", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// A layer may unpack to at most this many times its compressed size (or
    /// [`MIN_LAYER_LIMIT`], whichever is larger): a defence against decompression bombs.
    #[serde(default = "default_expansion")]
    pub max_layer_expansion: u64,
    /// No layer may unpack to more than this, whatever its compressed size.
    #[serde(default = "default_max_layer_size", deserialize_with = "size")]
    pub max_layer_size: u64,
}

/// The longest back-off between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The expansion limit of a tiny layer: tar pads every file to 512 bytes and ends with 10 KiB
/// of zeros, so a 200-byte gzip of a few small files legitimately expands 50 times and more.
pub const MIN_LAYER_LIMIT: u64 = 64 << 20;

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            max_concurrent_downloads: default_concurrency(),
            retries: default_retries(),
            retry_delay: default_retry_delay(),
            retry_time_limit: default_retry_time_limit(),
            stall_timeout: default_stall_timeout(),
            max_layer_expansion: default_expansion(),
            max_layer_size: default_max_layer_size(),
        }
    }
}

impl PullConfig {
    /// How many bytes a layer whose blob has `compressed` bytes may unpack to (the
    /// uncompressed tar stream).
    pub fn layer_limit(&self, compressed: u64) -> u64 {
        compressed
            .saturating_mul(self.max_layer_expansion)
            .max(MIN_LAYER_LIMIT)
            .min(self.max_layer_size)
    }

    /// What is wrong with these values, naming the key.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.max_concurrent_downloads == 0 {
            return Some("pull.max_concurrent_downloads must be at least 1".into());
        }
        if self.stall_timeout.is_zero() {
            return Some("pull.stall_timeout must be longer than 0".into());
        }
        if self.max_layer_expansion == 0 {
            return Some("pull.max_layer_expansion must be at least 1".into());
        }
        None
    }
}

fn default_concurrency() -> usize {
    3
}

fn default_retries() -> u32 {
    5
}

fn default_retry_delay() -> Duration {
    Duration::from_secs(1)
}

fn default_retry_time_limit() -> Duration {
    Duration::from_secs(300)
}

fn default_stall_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_expansion() -> u64 {
    100
}

fn default_max_layer_size() -> u64 {
    64 << 30
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(deserializer)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
    }
}

/// `500ms`, `30s`, `5m`, `1h`, or several of them (`1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (e.g. `500ms`, `30s`, `5m`, `1h30m`)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let one = match &rest[..unit] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        total += one * u32::try_from(number).map_err(|_| bad())?;
        rest = &rest[unit..];
    }
    Ok(total)
}

/// `1048576`, `512KiB`, `64MiB`, `64GiB`, `1TiB` (also `KB`, `MB`... as powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a size (e.g. `512MiB`, `64GiB`)");
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().map_err(|_| bad())?;
    let shift = match text[digits..].trim() {
        "" | "B" => 0,
        "K" | "KB" | "KiB" => 10,
        "M" | "MB" | "MiB" => 20,
        "G" | "GB" | "GiB" => 30,
        "T" | "TB" | "TiB" => 40,
        _ => return Err(bad()),
    };
    number.checked_mul(1 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 d").is_err());
        assert_eq!(parse_size("64GiB"), Ok(64 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn layer_limit_has_a_floor_and_a_cap() {
        let config = PullConfig::default();
        assert_eq!(config.layer_limit(1000), MIN_LAYER_LIMIT);
        assert_eq!(config.layer_limit(10 << 20), 1000 << 20);
        assert_eq!(config.layer_limit(10 << 30), 64 << 30);
    }
}
