//! Registry errors, each naming the image and the registry, with a hint where one helps.

use oci_client::errors::{OciDistributionError, OciErrorCode};

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry} requires credentials to pull {image}\nhint: log in with `podman login {registry}` or `docker login {registry}`, or add the registry to ~/.docker/config.json")]
    AuthenticationRequired { image: String, registry: String },
    #[error("{registry} rejected the credentials of user `{user}` (from {file}) for {image}\nhint: log in again, or fix the entry for {registry} in that file")]
    CredentialsRejected {
        image: String,
        registry: String,
        user: String,
        file: String,
    },
    #[error("{image} was not found on {registry} ({detail})")]
    NotFound {
        image: String,
        registry: String,
        detail: String,
    },
    #[error("cannot reach registry {registry} for {image}: {message}")]
    Unreachable {
        image: String,
        registry: String,
        message: String,
    },
    #[error("{registry} failed while serving {image}: {message}")]
    Protocol {
        image: String,
        registry: String,
        message: String,
    },
    /// The registry served something that contradicts its descriptor or the protocol: a size
    /// or digest that does not match, content over the size limit, a media type that does
    /// not fit the content. Never retried: the same registry would serve it again.
    #[error("{registry} served an invalid {what} for {image}: {message}")]
    Invalid {
        image: String,
        registry: String,
        what: String,
        message: String,
    },
    /// Transient failures went on until the retries ran out, or attempts stalled in a row.
    #[error("{last}\nnote: {what}: {reason}\nhint: {}", give_up_hint(.reason))]
    GaveUp {
        what: String,
        reason: crate::retry::GiveUp,
        last: Box<RegistryError>,
    },
    #[error("{last}\n{}", mirror_notes(.mirrors))]
    AfterMirrors {
        last: Box<RegistryError>,
        mirrors: Vec<(String, String)>,
    },
}

fn give_up_hint(reason: &crate::retry::GiveUp) -> &'static str {
    match reason {
        crate::retry::GiveUp::Stalled { .. } => "the registry (or a proxy on the way) takes requests and sends nothing; check it, or raise `[pull] stall_timeout` in config.toml if the link is only slow",
        _ => "the registry may be overloaded or the network flaky; `[pull] retries`, `retry_delay` and `stall_timeout` in config.toml set how long podrun insists",
    }
}

fn mirror_notes(mirrors: &[(String, String)]) -> String {
    mirrors
        .iter()
        .map(|(mirror, error)| format!("note: mirror {mirror} failed first: {error}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Context for turning an `oci-client` error into a [`RegistryError`].
pub(crate) struct ErrorContext<'a> {
    pub image: &'a str,
    pub registry: &'a str,
    /// `(user, file)` when credentials were sent.
    pub credential: Option<(&'a str, &'a str)>,
}

impl ErrorContext<'_> {
    pub fn classify(&self, error: OciDistributionError) -> RegistryError {
        let image = self.image.to_string();
        let registry = self.registry.to_string();
        match error {
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => self.unauthorized(),
            OciDistributionError::ImageManifestNotFoundError(detail) => NotFound {
                image,
                registry,
                detail,
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let detail = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    self.unauthorized()
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    NotFound {
                        image,
                        registry,
                        detail,
                    }
                } else {
                    Protocol {
                        image,
                        registry,
                        message: detail,
                    }
                }
            }
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                Unreachable {
                    image,
                    registry,
                    message: error_chain(&e),
                }
            }
            OciDistributionError::ServerError {
                code: 404, message, ..
            } => NotFound {
                image,
                registry,
                detail: message,
            },
            OciDistributionError::ServerError { code, message, .. }
                if code == 401 || code == 403 =>
            {
                let _ = message;
                self.unauthorized()
            }
            other => Protocol {
                image,
                registry,
                message: error_chain(&other),
            },
        }
    }

    pub fn unauthorized(&self) -> RegistryError {
        match self.credential {
            Some((user, file)) => RegistryError::CredentialsRejected {
                image: self.image.to_string(),
                registry: self.registry.to_string(),
                user: user.to_string(),
                file: file.to_string(),
            },
            None => RegistryError::AuthenticationRequired {
                image: self.image.to_string(),
                registry: self.registry.to_string(),
            },
        }
    }
}

use RegistryError::{NotFound, Protocol, Unreachable};

/// An error and its causes on one line, the way a user wants to read a transport failure.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
