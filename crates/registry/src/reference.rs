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
            match reference(input) {
                Ok(reference) => return Ok(ImageName(reference)),
                Err(reason) => reason.to_string(),
            }
        };
        Err(ReferenceError {
            input: input.to_string(),
            reason,
        })
    }
}

/// Parses `input` (crate::grammar) and normalises it the way distribution's
/// `ParseNormalizedNamed` does, with the checks of oci-spec's parser.
fn reference(input: &str) -> Result<Reference, &'static str> {
    let parts = crate::grammar::parse(input).ok_or("invalid reference format")?;
    let (registry, repository) = split_domain(parts.name);
    if repository.len() > 255 {
        return Err("repository name must not be more than 255 characters");
    }
    if let Some(digest) = parts.digest {
        let wanted = match digest.split_once(':') {
            Some(("sha256", _)) => 64,
            Some(("sha384", _)) => 96,
            Some(("sha512", _)) => 128,
            _ => return Err("unsupported digest algorithm"),
        };
        if digest.len() - digest.find(':').unwrap_or(0) - 1 != wanted {
            return Err("invalid checksum digest length");
        }
    }
    let tag = parts
        .tag
        .or(parts.digest.is_none().then_some("latest"))
        .map(String::from);
    Ok(match (tag, parts.digest) {
        (Some(tag), None) => Reference::with_tag(registry, repository, tag),
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag, digest.into())
        }
        (None, None) => unreachable!("a reference without digest gets the tag latest"),
    })
}

/// `docker.io` unless the first component looks like a host (has a `.` or `:`, or is
/// `localhost`); `index.docker.io` is `docker.io`; `library/` for docker.io's single names.
fn split_domain(name: &str) -> (String, String) {
    let (domain, remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let remainder = if domain == "docker.io" && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder.to_string()
    };
    (domain.to_string(), remainder)
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

    /// The same references as oci-spec's parser gives, on the names of the grammar's test.
    #[test]
    fn normalises_like_oci_spec() {
        let digest = DIGEST;
        for input in [
            "nginx".to_string(),
            "index.docker.io/nginx:1".into(),
            "docker.io/user/app".into(),
            "127.0.0.1:5858/library/busybox".into(),
            "localhost/x".into(),
            "example.com/a/b:c".into(),
            format!("nginx:1.23@{digest}"),
            format!("quay.io/x/y@{digest}"),
            format!("x@sha512:{}", "a".repeat(128)),
        ] {
            let ours = reference(&input).unwrap();
            let theirs = Reference::try_from(input.as_str()).unwrap();
            assert_eq!(ours, theirs, "{input}");
        }
        for bad in [
            format!("x@sha256:{}", "a".repeat(63)),
            format!("x@md5:{}", "a".repeat(32)),
            format!("x/{}", "a".repeat(260)),
        ] {
            assert!(reference(&bad).is_err(), "{bad}");
            assert!(Reference::try_from(bad.as_str()).is_err(), "{bad}");
        }
    }
}
