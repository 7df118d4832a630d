//! The effective configuration and where each value came from (`podrun system config`).
//!
//! [`Config`] keeps only the values; this module reads the file a second time as plain TOML to
//! tell, key by key, whether the file set it or the default applies, and reports the
//! environment variable (if any) behind each directory podrun uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Config, ConfigError, Paths, PullConfig};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// podrun's built-in default.
    Default,
    /// The configuration file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "${name}"),
        }
    }
}

/// One configuration key (`pull.retries`, `registries."docker.io".mirrors`) or directory
/// (`paths.data_dir`), its effective value and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The TOML table the key is in (`pull`, `registries."docker.io"`, `paths`).
    pub section: String,
    pub name: String,
    pub value: toml::Value,
    pub origin: Origin,
}

impl Setting {
    /// `section.name`, as the documentation names keys.
    pub fn key(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }
}

/// Every key of the configuration file with its effective value, file keys first, then the
/// directories of `paths` (section `paths`, which the file cannot set). Fails as
/// [`Config::load`] does when the file is invalid.
pub fn effective_settings(
    paths: &Paths,
    env: impl Fn(&str) -> Option<PathBuf>,
    root: bool,
) -> Result<Vec<Setting>, ConfigError> {
    let file = &paths.config_file;
    Config::load(file, paths.config_file_explicit)?;
    let written = read_table(file)?;
    let mut settings = Vec::new();
    for (section, name, default) in file_defaults() {
        let set = written.get(section).and_then(|t| t.get(name)).cloned();
        settings.push(Setting {
            section: section.to_string(),
            name: name.to_string(),
            origin: set
                .as_ref()
                .map_or(Origin::Default, |_| Origin::File(file.clone())),
            value: set.unwrap_or(default),
        });
    }
    if let Some(toml::Value::Table(registries)) = written.get("registries") {
        for (host, table) in registries {
            let toml::Value::Table(table) = table else {
                continue;
            };
            for (name, value) in table {
                settings.push(Setting {
                    section: format!("registries.{}", quoted_key(host)),
                    name: name.clone(),
                    value: value.clone(),
                    origin: Origin::File(file.clone()),
                });
            }
        }
    }
    settings.extend(path_settings(paths, env, root));
    Ok(settings)
}

/// The file as a TOML table (empty when it does not exist; it was validated already).
fn read_table(file: &Path) -> Result<toml::Table, ConfigError> {
    match std::fs::read_to_string(file) {
        Ok(text) => text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
            path: file.display().to_string(),
            message: e.to_string().trim_end().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(source) => Err(ConfigError::Read {
            path: file.display().to_string(),
            source,
        }),
    }
}

/// The keys of `[pull]`, `[network]` and `[logs]` with their defaults, written as the file would.
fn file_defaults() -> Vec<(&'static str, &'static str, toml::Value)> {
    let pull = PullConfig::default();
    let int = |n: u64| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let text = |s: String| toml::Value::String(s);
    vec![
        (
            "pull",
            "max_concurrent_downloads",
            int(pull.max_concurrent_downloads as u64),
        ),
        ("pull", "retries", int(u64::from(pull.retries))),
        (
            "pull",
            "retry_delay",
            text(format_duration(pull.retry_delay)),
        ),
        (
            "pull",
            "retry_time_limit",
            text(format_duration(pull.retry_time_limit)),
        ),
        (
            "pull",
            "stall_timeout",
            text(format_duration(pull.stall_timeout)),
        ),
        ("pull", "max_layer_expansion", int(pull.max_layer_expansion)),
        (
            "pull",
            "max_layer_size",
            text(format_size(pull.max_layer_size)),
        ),
        (
            "network",
            "default",
            text(podrun_network::Backend::DEFAULT.name().to_string()),
        ),
        (
            "network",
            "allow_host_loopback",
            toml::Value::Boolean(false),
        ),
        (
            "network",
            "shared_uplink",
            text(podrun_network::Backend::Slirp4netns.name().to_string()),
        ),
        (
            "network",
            "cluster_dns_upstream",
            text("10.0.2.3:53".to_string()),
        ),
        ("network", "shared_subnet", text("10.89.0.0/24".to_string())),
        (
            "logs",
            "max_size",
            text(format_size(crate::DEFAULT_LOG_MAX_SIZE)),
        ),
    ]
}

/// The directories podrun uses and the variable each came from.
fn path_settings(paths: &Paths, env: impl Fn(&str) -> Option<PathBuf>, root: bool) -> Vec<Setting> {
    let set = |name: &'static str| env(name).is_some_and(|v| !v.as_os_str().is_empty());
    let origin = |name: &'static str, applies: bool| {
        if applies && set(name) {
            Origin::Env(name)
        } else {
            Origin::Default
        }
    };
    let path = |p: &Path| toml::Value::String(p.display().to_string());
    let config_origin = if set("PODRUN_CONFIG") {
        Origin::Env("PODRUN_CONFIG")
    } else {
        origin("XDG_CONFIG_HOME", true)
    };
    let mut settings = vec![
        ("config_file", path(&paths.config_file), config_origin),
        (
            "data_dir",
            path(&paths.data_dir),
            origin("XDG_DATA_HOME", !root),
        ),
    ];
    match &paths.runtime_dir {
        Some(dir) => settings.push(("runtime_dir", path(dir), origin("XDG_RUNTIME_DIR", !root))),
        None => settings.push((
            "runtime_dir",
            toml::Value::String("(none: XDG_RUNTIME_DIR is not set)".into()),
            Origin::Default,
        )),
    }
    settings
        .into_iter()
        .map(|(name, value, origin)| Setting {
            section: "paths".into(),
            name: name.into(),
            value,
            origin,
        })
        .collect()
}

/// A table key as TOML writes it: bare when it can be, else quoted (`"docker.io"`).
fn quoted_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// A duration in the largest unit that divides it (`1s`, `5m`, `150ms`), as
/// [`crate::parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if millis > 0 && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

/// A size in the largest binary unit that divides it (`64GiB`), as [`crate::parse_size`]
/// reads it back.
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes > 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_duration, parse_size};
    use std::collections::HashMap;

    fn env(vars: &[(&str, PathBuf)]) -> impl Fn(&str) -> Option<PathBuf> + Clone {
        let map: HashMap<String, PathBuf> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn find<'a>(settings: &'a [Setting], key: &str) -> &'a Setting {
        settings
            .iter()
            .find(|s| s.key() == key)
            .unwrap_or_else(|| panic!("{key}"))
    }

    #[test]
    fn file_values_name_the_file_and_others_are_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[pull]\nretries = 2\n[registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n",
        )
        .unwrap();
        let vars = env(&[("HOME", dir.path().into()), ("PODRUN_CONFIG", file.clone())]);
        let paths = Paths::resolve(vars.clone(), false).unwrap();
        let settings = effective_settings(&paths, vars, false).unwrap();

        let retries = find(&settings, "pull.retries");
        assert_eq!(
            (retries.value.as_integer(), &retries.origin),
            (Some(2), &Origin::File(file.clone()))
        );
        let delay = find(&settings, "pull.retry_delay");
        assert_eq!(
            (delay.value.as_str(), &delay.origin),
            (Some("1s"), &Origin::Default)
        );
        assert_eq!(
            find(&settings, "pull.max_layer_size").value.as_str(),
            Some("64GiB")
        );
        assert_eq!(
            find(&settings, "network.default").value.as_str(),
            Some("slirp4netns")
        );
        let mirrors = find(&settings, "registries.\"docker.io\".mirrors");
        assert_eq!(mirrors.origin, Origin::File(file.clone()));
        assert_eq!(
            find(&settings, "paths.config_file").origin,
            Origin::Env("PODRUN_CONFIG")
        );
        assert_eq!(find(&settings, "paths.data_dir").origin, Origin::Default);
        assert_eq!(find(&settings, "paths.runtime_dir").origin, Origin::Default);
        assert_eq!(
            find(&settings, "paths.config_file").origin.to_string(),
            "$PODRUN_CONFIG"
        );
    }

    #[test]
    fn xdg_variables_are_named_and_invalid_files_fail() {
        let dir = tempfile::tempdir().unwrap();
        let vars = env(&[
            ("HOME", dir.path().into()),
            ("XDG_CONFIG_HOME", dir.path().join("cfg")),
            ("XDG_DATA_HOME", dir.path().join("data")),
            ("XDG_RUNTIME_DIR", dir.path().join("run")),
        ]);
        let paths = Paths::resolve(vars.clone(), false).unwrap();
        let settings = effective_settings(&paths, vars.clone(), false).unwrap();
        assert_eq!(
            find(&settings, "paths.config_file").origin,
            Origin::Env("XDG_CONFIG_HOME")
        );
        assert_eq!(
            find(&settings, "paths.data_dir").origin,
            Origin::Env("XDG_DATA_HOME")
        );
        assert_eq!(
            find(&settings, "paths.runtime_dir").origin,
            Origin::Env("XDG_RUNTIME_DIR")
        );
        assert!(settings
            .iter()
            .filter(|s| s.section != "paths")
            .all(|s| s.origin == Origin::Default));

        std::fs::create_dir_all(dir.path().join("cfg/podrun")).unwrap();
        std::fs::write(
            dir.path().join("cfg/podrun/config.toml"),
            "[pull]\nretry = 1\n",
        )
        .unwrap();
        let err = effective_settings(&paths, vars, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("retry"),
            "{err}"
        );
    }

    #[test]
    fn formats_read_back() {
        for d in [
            Duration::from_secs(1),
            Duration::from_secs(300),
            Duration::from_millis(150),
            Duration::from_secs(5400),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        for n in [64u64 << 30, 1000, 3 << 20] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
        assert_eq!(quoted_key("docker.io"), "\"docker.io\"");
        assert_eq!(quoted_key("local"), "local");
    }
}
