//! Where podrun keeps its files, following the XDG base directory rules for ordinary users
//! and FHS locations for root.

use std::path::{Path, PathBuf};

use crate::ConfigError;

/// The directories podrun uses, resolved once from the environment.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The image store: `$XDG_DATA_HOME/podrun`, `~/.local/share/podrun`, or `/var/lib/podrun`.
    pub data_dir: PathBuf,
    /// The configuration file: `$PODRUN_CONFIG`, else `$XDG_CONFIG_HOME/podrun/config.toml`.
    pub config_file: PathBuf,
    /// Whether `config_file` was named by PODRUN_CONFIG (then it must exist).
    pub config_file_explicit: bool,
    /// Runtime state: `$XDG_RUNTIME_DIR/podrun` for users, `/run/podrun` for root.
    pub runtime_dir: Option<PathBuf>,
    /// The home directory, for ~/.docker/config.json.
    pub home: PathBuf,
    /// `$XDG_RUNTIME_DIR` itself, for containers' auth.json.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// Seccomp profiles for `seccompProfile: {type: Localhost}`:
    /// `$XDG_CONFIG_HOME/podrun/seccomp` (the kubelet's /var/lib/kubelet/seccomp).
    pub seccomp_dir: PathBuf,
}

impl Paths {
    /// Resolves the paths for the current user from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::resolve(
            |name| std::env::var_os(name).map(PathBuf::from),
            podrun_userns::is_root_in_initial_namespace(),
        )
    }

    /// Resolves the paths with an explicit environment lookup (for tests).
    pub fn resolve(env: impl Fn(&str) -> Option<PathBuf>, root: bool) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| env(name).filter(|p| !p.as_os_str().is_empty());
        let home = non_empty("HOME").ok_or(ConfigError::NoHome)?;
        let xdg_runtime_dir = non_empty("XDG_RUNTIME_DIR");
        let data_dir = if root {
            PathBuf::from("/var/lib/podrun")
        } else {
            non_empty("XDG_DATA_HOME")
                .unwrap_or_else(|| home.join(".local/share"))
                .join("podrun")
        };
        let runtime_dir = if root {
            Some(PathBuf::from("/run/podrun"))
        } else {
            xdg_runtime_dir.as_ref().map(|d| d.join("podrun"))
        };
        let config_dir = non_empty("XDG_CONFIG_HOME")
            .unwrap_or_else(|| home.join(".config"))
            .join("podrun");
        let (config_file, config_file_explicit) = match non_empty("PODRUN_CONFIG") {
            Some(file) => (file, true),
            None => (config_dir.join("config.toml"), false),
        };
        Ok(Paths {
            data_dir,
            config_file,
            config_file_explicit,
            runtime_dir,
            home,
            xdg_runtime_dir,
            seccomp_dir: config_dir.join("seccomp"),
        })
    }

    /// The image store's root directory.
    pub fn store_dir(&self) -> &Path {
        &self.data_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<PathBuf> {
        let map: HashMap<String, PathBuf> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn user_paths_follow_xdg() {
        let p = Paths::resolve(
            env(&[("HOME", "/home/a"), ("XDG_RUNTIME_DIR", "/run/user/7")]),
            false,
        )
        .unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/home/a/.local/share/podrun"));
        assert_eq!(
            p.config_file,
            PathBuf::from("/home/a/.config/podrun/config.toml")
        );
        assert_eq!(p.runtime_dir, Some(PathBuf::from("/run/user/7/podrun")));
        let p = Paths::resolve(
            env(&[
                ("HOME", "/home/a"),
                ("XDG_DATA_HOME", "/d"),
                ("PODRUN_CONFIG", "/c.toml"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/d/podrun"));
        assert_eq!(p.config_file, PathBuf::from("/c.toml"));
        assert!(p.config_file_explicit);
        assert_eq!(p.runtime_dir, None);
    }

    #[test]
    fn root_uses_system_dirs() {
        let p = Paths::resolve(env(&[("HOME", "/root")]), true).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/var/lib/podrun"));
        assert_eq!(p.runtime_dir, Some(PathBuf::from("/run/podrun")));
    }
}
