//! The HTTP side of one image on one endpoint: requests with the registry's token, failures
//! sorted into transient (retried with back-off) and permanent (reported at once), bodies
//! read with a size cap and a stall timeout.
//!
//! Why not oci-client for these requests: its calls return errors without the response's
//! headers (no `Retry-After`), read manifests whole whatever their size, and hand back blob
//! streams without a way to bound the wait for each chunk. oci-client still does what it is
//! good at: the token flow (`Client::auth`), whose token these requests carry, and the
//! manifest types and platform matching.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oci_client::errors::{OciDistributionError, OciEnvelope};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::header::{ACCEPT, RANGE, RETRY_AFTER};

use crate::error::{error_chain, ErrorContext};
use crate::oci::LazyOciClient;
use crate::retry::{parse_retry_after, seconds, Attempts, Failed, RetryPolicy};
use crate::RegistryError;

/// A failed attempt: worth another try, or not.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connection refused or reset, a timeout, a cut transfer, 408, 429, 5xx; or a stall.
    Transient { error: RegistryError, kind: Failed },
    /// 401, 403, 404, a wrong digest or size: the same request would fail the same way.
    Permanent(RegistryError),
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Self {
        Failure::Permanent(error)
    }
}

/// What the requests carry to prove who we are.
#[derive(Debug, Clone)]
enum Authorization {
    None,
    Bearer(String),
    Basic(String, String),
}

/// One image's endpoint: where its requests go and with which credentials.
pub(crate) struct Session {
    pub http: reqwest::Client,
    oci: Arc<LazyOciClient>,
    reference: Reference,
    auth: RegistryAuth,
    authorization: Mutex<Authorization>,
    /// `http(s)://HOST/v2/REPOSITORY`
    base: String,
    /// For blob transfers.
    pub policy: RetryPolicy,
    /// For the token, manifests and config. A mirror gets no retries here: the next endpoint
    /// is the better second try, as with containerd's mirrors.
    resolve_policy: RetryPolicy,
    pub image: String,
    pub registry: String,
    /// `(user, file)` when credentials are sent.
    pub credential: Option<(String, String)>,
}

/// Parameters of [`Session::new`].
pub(crate) struct Endpoint<'a> {
    pub http: reqwest::Client,
    pub oci: Arc<LazyOciClient>,
    pub reference: Reference,
    pub auth: RegistryAuth,
    pub plain_http: bool,
    pub is_mirror: bool,
    pub policy: RetryPolicy,
    pub image: &'a str,
    pub registry: &'a str,
    pub credential: Option<(String, String)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the authorization: a token must not end up in a log.
        f.debug_struct("Session")
            .field("base", &self.base)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(endpoint: Endpoint<'_>) -> Session {
        let scheme = if endpoint.plain_http { "http" } else { "https" };
        let base = format!(
            "{scheme}://{}/v2/{}",
            endpoint.reference.resolve_registry(),
            endpoint.reference.repository()
        );
        Session {
            http: endpoint.http,
            oci: endpoint.oci,
            reference: endpoint.reference,
            auth: endpoint.auth,
            authorization: Mutex::new(Authorization::None),
            base,
            policy: endpoint.policy,
            resolve_policy: RetryPolicy {
                retries: if endpoint.is_mirror {
                    0
                } else {
                    endpoint.policy.retries
                },
                ..endpoint.policy
            },
            image: endpoint.image.to_string(),
            registry: endpoint.registry.to_string(),
            credential: endpoint.credential,
        }
    }

    pub fn context(&self) -> ErrorContext<'_> {
        ErrorContext {
            image: &self.image,
            registry: &self.registry,
            credential: self
                .credential
                .as_ref()
                .map(|(u, f)| (u.as_str(), f.as_str())),
        }
    }

    /// Runs the registry's token flow (oci-client's), retrying transient failures.
    pub async fn authorize(&self) -> Result<(), RegistryError> {
        self.retrying(self.resolve_policy, "authentication", || {
            self.authorize_once()
        })
        .await
    }

    async fn authorize_once(&self) -> Result<(), Failure> {
        let token = self
            .oci
            .get()
            .auth(&self.reference, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.oci_failure(e))?;
        let authorization = match (token, &self.auth) {
            (Some(token), _) => Authorization::Bearer(token),
            // No token: an anonymous registry, or one that takes Basic credentials directly.
            (None, RegistryAuth::Basic(user, password)) => {
                Authorization::Basic(user.clone(), password.clone())
            }
            (None, _) => Authorization::None,
        };
        *self.authorization.lock().expect("authorization lock") = authorization;
        Ok(())
    }

    fn oci_failure(&self, error: OciDistributionError) -> Failure {
        let transient = match &error {
            OciDistributionError::RequestError(e) if is_stall(e) => {
                return self.stalled(
                    "authentication",
                    format!("no answer in {}", seconds(self.policy.stall_timeout)),
                );
            }
            OciDistributionError::RequestError(_) => Some(Failed::Error { retry_after: None }),
            OciDistributionError::ServerError { code, .. } if *code == 429 || *code >= 500 => {
                Some(Failed::Error { retry_after: None })
            }
            _ => None,
        };
        let error = self.context().classify(error);
        match transient {
            Some(kind) => Failure::Transient { error, kind },
            None => Failure::Permanent(error),
        }
    }

    /// `op` until it succeeds, fails permanently, or the retries run out.
    pub async fn retrying<T, F, Fut>(
        &self,
        policy: RetryPolicy,
        what: &str,
        mut op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempts = Attempts::new(policy);
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(Failure::Permanent(error)) => return Err(error),
                Err(Failure::Transient { error, kind }) => {
                    self.back_off(&mut attempts, what, error, kind).await?;
                }
            }
        }
    }

    /// Waits before the next attempt after a transient `error` (of `kind`), or turns it into
    /// the final error when no attempt is left.
    pub async fn back_off(
        &self,
        attempts: &mut Attempts,
        what: &str,
        error: RegistryError,
        kind: Failed,
    ) -> Result<(), RegistryError> {
        match attempts.next_delay(Instant::now(), kind, rand::random::<f64>()) {
            Ok(delay) => {
                tracing::warn!(
                    "{error}; retrying {what} in {} (retry {} of {})",
                    seconds(delay),
                    attempts.retries(),
                    attempts.policy().retries
                );
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Err(reason) => Err(RegistryError::GaveUp {
                what: what.to_string(),
                reason,
                last: Box::new(error),
            }),
        }
    }

    /// One GET of `path` (below `/v2/REPOSITORY/`), from byte `from` on when not 0. A 401
    /// renews the token once (it may have expired during a long pull). Any status other
    /// than 2xx is a [`Failure`].
    pub async fn get(
        &self,
        path: &str,
        accept: &[&str],
        from: u64,
        what: &str,
    ) -> Result<reqwest::Response, Failure> {
        let mut renewed = false;
        loop {
            let mut request = self.http.get(format!("{}/{path}", self.base));
            if !accept.is_empty() {
                request = request.header(ACCEPT, accept.join(", "));
            }
            if from > 0 {
                request = request.header(RANGE, format!("bytes={from}-"));
            }
            request = match self.authorization.lock().expect("lock").clone() {
                Authorization::None => request,
                Authorization::Bearer(token) => request.bearer_auth(token),
                Authorization::Basic(user, password) => request.basic_auth(user, Some(password)),
            };
            let no_answer = || {
                self.stalled(
                    what,
                    format!("no answer in {}", seconds(self.policy.stall_timeout)),
                )
            };
            let response =
                match tokio::time::timeout(self.policy.stall_timeout, request.send()).await {
                    Err(_) => return Err(no_answer()),
                    Ok(Err(e)) if is_stall(&e) => return Err(no_answer()),
                    Ok(Err(e)) => return Err(self.transient(what, error_chain(&e))),
                    Ok(Ok(response)) => response,
                };
            let status = response.status().as_u16();
            if response.status().is_success() {
                return Ok(response);
            }
            if status == 401 && !renewed {
                renewed = true;
                self.authorize_once().await?;
                continue;
            }
            return Err(self.status_failure(response, what).await);
        }
    }

    /// A transient failure of `what`: the registry could not be reached or the transfer broke.
    pub fn transient(&self, what: &str, message: String) -> Failure {
        Failure::Transient {
            error: self.unreachable(what, message),
            kind: Failed::Error { retry_after: None },
        }
    }

    /// An attempt at `what` that received nothing for the stall timeout: no answer, or not
    /// one byte of the body.
    pub fn stalled(&self, what: &str, message: String) -> Failure {
        Failure::Transient {
            error: self.unreachable(what, message),
            kind: Failed::Stalled,
        }
    }

    fn unreachable(&self, what: &str, message: String) -> RegistryError {
        RegistryError::Unreachable {
            image: self.image.clone(),
            registry: self.registry.clone(),
            message: format!("{what}: {message}"),
        }
    }

    /// The registry served something wrong for `what`.
    pub fn invalid(&self, what: &str, message: String) -> RegistryError {
        RegistryError::Invalid {
            image: self.image.clone(),
            registry: self.registry.clone(),
            what: what.to_string(),
            message,
        }
    }

    async fn status_failure(&self, response: reqwest::Response, what: &str) -> Failure {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        // The error body is small JSON; a hostile one is cut short.
        let body = read_capped(response, 64 << 10, self.policy.stall_timeout)
            .await
            .unwrap_or_default();
        let detail = match serde_json::from_slice::<OciEnvelope>(&body) {
            Ok(envelope) => envelope.to_string(),
            Err(_) => String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(200)
                .collect(),
        };
        let message = if detail.is_empty() {
            format!("{what}: HTTP {status}")
        } else {
            format!("{what}: HTTP {status}: {detail}")
        };
        let code = status.as_u16();
        let image = self.image.clone();
        let registry = self.registry.clone();
        match code {
            401 | 403 => Failure::Permanent(self.context().unauthorized()),
            404 => Failure::Permanent(RegistryError::NotFound {
                image,
                registry,
                detail: message,
            }),
            408 | 429 | 500..=599 => Failure::Transient {
                error: RegistryError::Protocol {
                    image,
                    registry,
                    message,
                },
                kind: Failed::Error { retry_after },
            },
            _ => Failure::Permanent(RegistryError::Protocol {
                image,
                registry,
                message,
            }),
        }
    }

    /// GETs `path` whole, at most `limit` bytes (a larger answer is refused as soon as its
    /// length is known, not downloaded), retrying transient failures. Returns the body and
    /// its Content-Type.
    pub async fn fetch_small(
        &self,
        path: &str,
        accept: &[&str],
        limit: u64,
        what: &str,
    ) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        self.retrying(self.resolve_policy, what, || async {
            let response = self.get(path, accept, 0, what).await?;
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
            match read_capped(response, limit, self.policy.stall_timeout).await {
                Ok(body) => Ok((body, content_type)),
                Err(ReadError::TooLarge(size)) => Err(Failure::Permanent(self.invalid(
                    what,
                    format!("it is {size} bytes or more, over the limit of {limit} bytes"),
                ))),
                Err(ReadError::Stalled { received }) => {
                    let message = format!(
                        "no data for {} after {received} bytes",
                        seconds(self.policy.stall_timeout)
                    );
                    // A body that had begun to come counts as an answer, not a stall.
                    Err(if received == 0 {
                        self.stalled(what, message)
                    } else {
                        self.transient(what, message)
                    })
                }
                Err(ReadError::Transfer(e)) => Err(self.transient(what, e)),
            }
        })
        .await
    }
}

enum ReadError {
    TooLarge(u64),
    /// Nothing for the stall timeout, after `received` bytes of the body.
    Stalled {
        received: usize,
    },
    Transfer(String),
}

/// Whether reqwest's `error` is its read timeout (the stall timeout): the registry took the
/// connection and sent nothing. A connect timeout is not one: nobody answered the connection
/// at all, which a flaky network explains as well as a dead registry.
pub(crate) fn is_stall(error: &reqwest::Error) -> bool {
    error.is_timeout() && !error.is_connect()
}

/// A response body of at most `limit` bytes, each chunk within `stall`.
async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
    stall: Duration,
) -> Result<Vec<u8>, ReadError> {
    if let Some(length) = response.content_length().filter(|&l| l > limit) {
        return Err(ReadError::TooLarge(length));
    }
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(stall, response.chunk()).await {
            Err(_) => {
                return Err(ReadError::Stalled {
                    received: body.len(),
                })
            }
            Ok(Err(e)) if is_stall(&e) => {
                return Err(ReadError::Stalled {
                    received: body.len(),
                })
            }
            Ok(Err(e)) => return Err(ReadError::Transfer(error_chain(&e))),
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(chunk))) => {
                let total = body.len() as u64 + chunk.len() as u64;
                if total > limit {
                    return Err(ReadError::TooLarge(total));
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// A registry that misbehaves on purpose, for the tests of stalls: an HTTP server on
/// 127.0.0.1 (std's, in a thread of its own) that answers its requests from a script.
#[cfg(test)]
pub(crate) mod fake {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{Endpoint, Session};
    use crate::retry::RetryPolicy;

    /// How the fake registry answers one request.
    #[derive(Debug, Clone)]
    pub enum Reply {
        /// Nothing at all: the connection stays open and silent.
        Silent,
        /// A status line and headers (`head`), then `body`, then silence (the connection
        /// stays open) or, with `close`, the end of the connection.
        Send {
            head: String,
            body: Vec<u8>,
            close: bool,
        },
    }

    impl Reply {
        /// `200 OK` announcing `length` bytes, of which `sent` come; then silence.
        pub fn ok_then_silent(length: usize, sent: &[u8]) -> Reply {
            Reply::Send {
                head: format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n"),
                body: sent.to_vec(),
                close: false,
            }
        }

        /// A complete answer of `status` without a body; the connection closes.
        pub fn status(status: &str) -> Reply {
            Reply::Send {
                head: format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n"),
                body: Vec::new(),
                close: true,
            }
        }
    }

    /// A request the fake registry received: its request line and its Range header.
    pub type Request = (String, Option<String>);

    /// The server: its address, and the requests it received.
    pub struct FakeRegistry {
        pub address: String,
        requests: Arc<Mutex<Vec<Request>>>,
    }

    impl FakeRegistry {
        /// Serves `script[n]` to the n-th request, and the last entry to any after it.
        pub fn start(script: Vec<Reply>) -> FakeRegistry {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap().to_string();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            std::thread::spawn(move || {
                // Silent connections are kept here, open, until the test process ends.
                let mut open: Vec<TcpStream> = Vec::new();
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let Some((line, range)) = read_head(&stream) else {
                        continue;
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((line, range));
                        seen.len() - 1
                    };
                    match script[n.min(script.len() - 1)].clone() {
                        Reply::Silent => open.push(stream),
                        Reply::Send { head, body, close } => {
                            let _ = stream.write_all(format!("{head}\r\n").as_bytes());
                            let _ = stream.write_all(&body);
                            let _ = stream.flush();
                            if !close {
                                open.push(stream);
                            }
                        }
                    }
                }
            });
            FakeRegistry { address, requests }
        }

        pub fn requests(&self) -> Vec<Request> {
            self.requests.lock().unwrap().clone()
        }

        /// A session for `test/image` on this server, with `stall` as its stall timeout, five
        /// retries and back-offs of a millisecond, as the pull's client would make it.
        pub fn session(&self, stall: Duration) -> Session {
            let policy = RetryPolicy {
                retries: 5,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
                time_limit: Duration::from_secs(60),
                stall_timeout: stall,
            };
            let image = format!("{}/test/image:latest", self.address);
            Session::new(Endpoint {
                http: reqwest::Client::builder()
                    .read_timeout(stall)
                    .build()
                    .unwrap(),
                oci: crate::oci::LazyOciClient::with_defaults(),
                reference: image.parse().unwrap(),
                auth: oci_client::secrets::RegistryAuth::Anonymous,
                plain_http: true,
                is_mirror: false,
                policy,
                image: &image,
                registry: &self.address,
                credential: None,
            })
        }
    }

    /// The request line and the Range header of the request on `stream`.
    fn read_head(stream: &TcpStream) -> Option<Request> {
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut range = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("range") {
                    range = Some(value.trim().to_string());
                }
            }
        }
        Some((line.trim().to_string(), range))
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeRegistry, Reply};
    use super::*;
    use crate::retry::GiveUp;

    const STALL: Duration = Duration::from_millis(500);

    /// The final error of fetching the manifest from `registry`.
    async fn fetch_error(registry: &FakeRegistry) -> RegistryError {
        let session = registry.session(STALL);
        session
            .fetch_small("manifests/latest", &[], 4096, "manifest")
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_registry_that_never_answers_is_given_up_after_two_attempts() {
        let registry = FakeRegistry::start(vec![Reply::Silent]);
        let error = fetch_error(&registry).await;
        assert_eq!(registry.requests().len(), 2, "not the five retries");
        let RegistryError::GaveUp { reason, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(
            *reason,
            GiveUp::Stalled {
                attempts: 2,
                stall_timeout: STALL
            }
        );
        let text = error.to_string();
        // The image, the registry and the stall timeout.
        assert!(
            text.starts_with(&format!(
                "cannot reach registry {0} for {0}/test/image:latest: manifest: no answer in 500 ms",
                registry.address
            )),
            "{text}"
        );
        assert!(
            text.contains("note: manifest: gave up after 2 attempts in a row that received nothing for the stall timeout (500 ms)"),
            "{text}"
        );
        assert!(
            text.contains(
                "hint: the registry (or a proxy on the way) takes requests and sends nothing"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_body_that_never_comes_is_a_stall_too() {
        let registry = FakeRegistry::start(vec![Reply::ok_then_silent(100, b"")]);
        let error = fetch_error(&registry).await;
        assert_eq!(registry.requests().len(), 2);
        assert!(
            matches!(
                &error,
                RegistryError::GaveUp {
                    reason: GiveUp::Stalled { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("no data for 500 ms after 0 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn other_failures_between_stalls_keep_the_retries_going() {
        // A stall, a 503 (the registry answers), a body begun then stalled (an answer
        // too), then stalls: the retries end at the second stall in a row.
        let registry = FakeRegistry::start(vec![
            Reply::Silent,
            Reply::status("503 Service Unavailable"),
            Reply::ok_then_silent(100, b"{"),
            Reply::Silent,
        ]);
        let error = fetch_error(&registry).await;
        assert_eq!(registry.requests().len(), 5, "{error}");
        assert!(
            matches!(
                &error,
                RegistryError::GaveUp {
                    reason: GiveUp::Stalled { attempts: 2, .. },
                    ..
                }
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn without_stalls_the_retries_run_out_as_before() {
        let registry = FakeRegistry::start(vec![Reply::status("503 Service Unavailable")]);
        let error = fetch_error(&registry).await;
        assert_eq!(
            registry.requests().len(),
            6,
            "the first attempt and five retries"
        );
        assert!(
            matches!(
                &error,
                RegistryError::GaveUp {
                    reason: GiveUp::Count(5),
                    ..
                }
            ),
            "{error}"
        );
    }
}
