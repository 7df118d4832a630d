//! Registry credentials from the files `docker login` and `podman login` write:
//! `$XDG_RUNTIME_DIR/containers/auth.json` (podman, looked at first) and
//! `~/.docker/config.json` (docker). Both hold `{"auths": {"HOST": {"auth": base64("user:pass")}}}`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::{ConfigError, Paths};

/// A username and password for one registry, and the file they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
    pub source: CredentialSource,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, even in debug output.
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("source", &self.source)
            .finish()
    }
}

/// The file a credential was read from, to tell the user which one to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSource(pub PathBuf);

/// All credentials found, by registry host.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, Credential>,
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

impl Credentials {
    /// Reads the credential files for the user described by `paths`; the first file that
    /// names a host wins, as in podman.
    pub fn load(paths: &Paths) -> Result<Self, ConfigError> {
        let mut credentials = Credentials::default();
        for file in Self::files(paths) {
            credentials.add_file(&file)?;
        }
        Ok(credentials)
    }

    /// The files credentials are read from, in the order they are looked at (each may be
    /// missing).
    pub fn files(paths: &Paths) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(runtime) = &paths.xdg_runtime_dir {
            files.push(runtime.join("containers/auth.json"));
        }
        files.push(paths.home.join(".docker/config.json"));
        files
    }

    /// The registry hosts that have a credential, sorted.
    pub fn hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = self.by_host.keys().map(String::as_str).collect();
        hosts.sort_unstable();
        hosts
    }

    /// Reads `file` (the same format) as credentials that win over those loaded before: the
    /// logins of a pod's `imagePullSecrets` for one pull (`podrun pull --authfile`).
    pub fn override_with_file(&mut self, file: &Path) -> Result<(), ConfigError> {
        let mut first = Credentials::default();
        first.add_file(file)?;
        self.by_host.extend(first.by_host);
        Ok(())
    }

    fn add_file(&mut self, file: &Path) -> Result<(), ConfigError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: file.display().to_string(),
                    source,
                })
            }
        };
        let parsed: AuthFile = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        for (key, entry) in parsed.auths {
            let Some(encoded) = entry.auth else { continue };
            let (username, password) = decode_auth(&encoded).ok_or_else(|| ConfigError::Parse {
                path: file.display().to_string(),
                message: format!("auths.\"{key}\".auth is not base64 of `user:password`"),
            })?;
            self.by_host
                .entry(normalize_host(&key))
                .or_insert(Credential {
                    username,
                    password,
                    source: CredentialSource(file.to_path_buf()),
                });
        }
        Ok(())
    }

    /// The credential for `host` (as in an image name: `docker.io`, `host:port`), if any.
    pub fn for_host(&self, host: &str) -> Option<&Credential> {
        self.by_host.get(&normalize_host(host))
    }
}

fn decode_auth(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// docker writes Docker Hub as `https://index.docker.io/v1/`; others as `host` or a URL.
fn normalize_host(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_podman_files() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::create_dir_all(runtime.join("containers")).unwrap();
        // "u:p" and "podman:first"
        std::fs::write(
            home.join(".docker/config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5859":{"auth":"ZG9ja2VyOnNlY29uZA=="}}}"#,
        )
        .unwrap();
        std::fs::write(
            runtime.join("containers/auth.json"),
            r#"{"auths":{"127.0.0.1:5859":{"auth":"cG9kbWFuOmZpcnN0"}}}"#,
        )
        .unwrap();
        let paths = Paths {
            data_dir: dir.path().into(),
            config_file: dir.path().join("c"),
            config_file_explicit: false,
            runtime_dir: None,
            home,
            xdg_runtime_dir: Some(runtime),
            seccomp_dir: dir.path().join("seccomp"),
        };
        let mut creds = Credentials::load(&paths).unwrap();
        let hub = creds.for_host("docker.io").unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let local = creds.for_host("127.0.0.1:5859").unwrap();
        assert_eq!(local.username, "podman");
        assert!(creds.for_host("quay.io").is_none());
        assert_eq!(creds.hosts(), ["127.0.0.1:5859", "docker.io"]);
        assert_eq!(Credentials::files(&paths).len(), 2);
        assert!(!format!("{local:?}").contains("first"));
        // "pull:secret" for one registry, from a pod's imagePullSecrets.
        let pull = dir.path().join("pull.json");
        std::fs::write(
            &pull,
            r#"{"auths":{"127.0.0.1:5859":{"auth":"cHVsbDpzZWNyZXQ="}}}"#,
        )
        .unwrap();
        creds.override_with_file(&pull).unwrap();
        let local = creds.for_host("127.0.0.1:5859").unwrap();
        assert_eq!(local.username, "pull");
        assert_eq!(local.source.0, pull);
        assert_eq!(creds.for_host("docker.io").unwrap().username, "u");
    }
}
