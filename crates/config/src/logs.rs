//! `[logs]`: how much of a container's output a pod keeps.
//!
//! ```toml
//! [logs]
//! max_size = "10MiB"   # per container; the older half is dropped when it is reached
//! ```

use serde::Deserialize;

/// The default cap of one container's log: the kubelet's `containerLogMaxSize`.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 << 20;
/// Below this a log could not hold even a few records.
pub const MIN_LOG_MAX_SIZE: u64 = 64 << 10;

/// `[logs]` of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// The most a container's log may take on disk (its file and the one rotated file).
    #[serde(default = "default_max_size", deserialize_with = "crate::pull::size")]
    pub max_size: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            max_size: DEFAULT_LOG_MAX_SIZE,
        }
    }
}

fn default_max_size() -> u64 {
    DEFAULT_LOG_MAX_SIZE
}

impl LogsConfig {
    /// What is wrong with the values, if anything.
    pub fn problem(&self) -> Option<String> {
        (self.max_size < MIN_LOG_MAX_SIZE)
            .then(|| format!("logs.max_size: at least {} KiB", MIN_LOG_MAX_SIZE >> 10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units_and_the_default() {
        let parse = |text: &str| toml::from_str::<LogsConfig>(text);
        assert_eq!(parse("").unwrap().max_size, 10 << 20);
        assert_eq!(parse("max_size = \"1MiB\"").unwrap().max_size, 1 << 20);
        assert_eq!(parse("max_size = 200000").unwrap().max_size, 200_000);
        assert!(parse("max_size = \"lots\"").is_err());
        assert!(LogsConfig { max_size: 1000 }.problem().is_some());
        assert!(LogsConfig::default().problem().is_none());
    }
}
