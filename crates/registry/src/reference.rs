//! Image references, normalised as docker and Kubernetes do:
//! `nginx` → `docker.io/library/nginx:latest`, `user/app` → `docker.io/user/app:latest`,
//! `host:port/repo:tag`, `repo@sha256:…`, `repo:tag@sha256:…` (the digest pins; the tag is kept
//! for display).

use std::fmt;
use std::str::FromStr;

use oci_client::Reference;

/// An image reference that failed to parse; the message quotes it.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference `{input}`: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName(Reference);

impl ImageName {
    /// The registry host as written in names (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The repository path (`library/nginx`).
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// `registry/repository`, the REPOSITORY column of `podrun images`.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    pub(crate) fn reference(&self) -> &Reference {
        &self.0
    }
}

impl FromStr for ImageName {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let reason = if input.is_empty() {
            "it is empty".to_string()
        } else if input.chars().any(|c| c.is_ascii_uppercase())
            && !input.contains('@')
            && input
                .split(':')
                .next()
                .is_some_and(|n| n.chars().any(|c| c.is_ascii_uppercase()))
        {
            "repository names must be lowercase".to_string()
        } else {
            match Reference::try_from(input) {
                Ok(reference) => return Ok(ImageName(reference)),
                Err(e) => e.to_string(),
            }
        };
        Err(ReferenceError {
            input: input.to_string(),
            reason,
        })
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.whole())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789012345678901234567890123456789012345678901234567890123";

    fn norm(input: &str) -> String {
        input.parse::<ImageName>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("nginx:1.23"), "docker.io/library/nginx:1.23");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(norm("docker.io/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("127.0.0.1:5000/repo:tag"), "127.0.0.1:5000/repo:tag");
        assert_eq!(norm("localhost/a/b/c"), "localhost/a/b/c:latest");
        assert_eq!(
            norm(&format!("nginx@{DIGEST}")),
            format!("docker.io/library/nginx@{DIGEST}")
        );
        let pinned: ImageName = format!("nginx:1.23@{DIGEST}").parse().unwrap();
        assert_eq!(pinned.tag(), Some("1.23"));
        assert_eq!(pinned.digest(), Some(DIGEST));
        assert_eq!(pinned.repository_name(), "docker.io/library/nginx");
    }

    #[test]
    fn invalid_references_are_quoted() {
        for bad in ["", "Nginx", "nginx:", "a b", "nginx@sha256:short", "-x"] {
            let err = bad.parse::<ImageName>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        let err = "Nginx".parse::<ImageName>().unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
    }
}
