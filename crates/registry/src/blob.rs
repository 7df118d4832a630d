//! Layer blob downloads that survive a flaky registry: a transfer that breaks or stalls is
//! resumed with `Range: bytes=N-` where it stopped (or, from a registry that ignores Range,
//! started over with the first N bytes skipped), so the caller sees one unbroken stream and
//! its hash simply goes on. Exactly the descriptor's size is delivered: a registry announcing
//! or sending more is refused as soon as it does, never downloaded without end.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::retry::{seconds, Attempts};
use crate::session::{is_stall, Failure, Session};
use crate::RegistryError;

/// A blob body on its way; yields errors as `std::io::Error`. When it fails for good, the
/// reason is kept in `failure` (the reader's own error, from a decompressor or tar parser that
/// saw the stream end, would say less).
pub struct BlobStream {
    pub content_length: Option<u64>,
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
    pub failure: BlobFailure,
}

/// The registry error that ended a [`BlobStream`], if one did.
#[derive(Clone, Default)]
pub struct BlobFailure(Arc<Mutex<Option<RegistryError>>>);

impl BlobFailure {
    pub fn take(&self) -> Option<RegistryError> {
        self.0.lock().expect("blob failure lock").take()
    }

    fn set(&self, error: RegistryError) {
        *self.0.lock().expect("blob failure lock") = Some(error);
    }
}

/// Where a transfer stands, and what a new response means for it: the Range arithmetic,
/// kept apart from the network so it can be tested alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The descriptor's size.
    pub size: u64,
    /// Bytes delivered to the reader so far.
    pub offset: u64,
    /// Bytes still to drop from the current response (a 200 answer to a Range request).
    pub skip: u64,
    /// The current response's length is known, so its end needs no check for extra bytes.
    pub length_known: bool,
}

/// A response or chunk that contradicts the descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub String);

impl Resume {
    pub fn new(size: u64) -> Self {
        Resume {
            size,
            offset: 0,
            skip: 0,
            length_known: false,
        }
    }

    pub fn complete(&self) -> bool {
        self.offset == self.size
    }

    /// A new response arrived for a request from `self.offset`: `status` 200 or 206,
    /// `content_range_start` from its Content-Range, `content_length` from its header.
    pub fn on_response(
        &mut self,
        status: u16,
        content_range_start: Option<u64>,
        content_length: Option<u64>,
    ) -> Result<(), Refusal> {
        let (start, length) = match status {
            206 => {
                let start = content_range_start.ok_or_else(|| {
                    Refusal("a partial answer without a valid Content-Range".into())
                })?;
                if start != self.offset {
                    return Err(Refusal(format!(
                        "asked for bytes from {}, it sent bytes from {start}",
                        self.offset
                    )));
                }
                (start, content_length)
            }
            // The whole blob again: drop what was delivered already.
            _ => (0, content_length),
        };
        if let Some(length) = length {
            if start + length != self.size {
                return Err(Refusal(format!(
                    "it announced {} bytes, but the descriptor says {}",
                    start + length,
                    self.size
                )));
            }
        }
        self.skip = self.offset - start;
        self.length_known = length.is_some();
        Ok(())
    }

    /// The part of `chunk` that is new to the reader; refuses bytes past the descriptor's size.
    pub fn accept(&mut self, mut chunk: Bytes) -> Result<Bytes, Refusal> {
        let dropped = self.skip.min(chunk.len() as u64);
        self.skip -= dropped;
        let chunk = chunk.split_off(dropped as usize);
        if self.offset + chunk.len() as u64 > self.size {
            return Err(Refusal(format!(
                "it sent more than the {} bytes its descriptor says",
                self.size
            )));
        }
        self.offset += chunk.len() as u64;
        Ok(chunk)
    }
}

/// The state of one blob transfer across its attempts.
struct Download {
    session: Arc<Session>,
    digest: String,
    what: String,
    resume: Resume,
    response: Option<reqwest::Response>,
    /// Bytes the current response sent so far (skipped ones too): an attempt that stalls
    /// before its first byte counts toward giving up sooner.
    received: u64,
    attempts: Attempts,
    failure: BlobFailure,
    done: bool,
}

/// Streams `digest` (of `size` bytes per its descriptor), resuming on transient failures.
pub(crate) fn download(session: Arc<Session>, digest: &str, size: u64) -> BlobStream {
    let failure = BlobFailure::default();
    let policy = session.policy;
    let download = Download {
        session,
        digest: digest.to_string(),
        what: format!("blob {digest}"),
        resume: Resume::new(size),
        response: None,
        received: 0,
        attempts: Attempts::new(policy),
        failure: failure.clone(),
        done: false,
    };
    let stream = futures_util::stream::unfold(download, |mut d| async move {
        match d.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), d)),
            Ok(None) => None,
            Err(error) => {
                d.done = true;
                let message = error.to_string();
                d.failure.set(error);
                Some((Err(std::io::Error::other(message)), d))
            }
        }
    });
    BlobStream {
        content_length: Some(size),
        stream: Box::pin(stream),
        failure,
    }
}

impl Download {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, RegistryError> {
        loop {
            if self.done {
                return Ok(None);
            }
            match self.step().await {
                Ok(Some(chunk)) if chunk.is_empty() => continue,
                Ok(Some(chunk)) => {
                    self.attempts.progressed();
                    return Ok(Some(chunk));
                }
                Ok(None) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(Failure::Permanent(error)) => return Err(error),
                Err(Failure::Transient { error, kind }) => {
                    self.response = None;
                    let what = self.what.clone();
                    self.session
                        .back_off(&mut self.attempts, &what, error, kind)
                        .await?;
                }
            }
        }
    }

    /// One step: open a response if none is open, then read one chunk (possibly empty, when
    /// it was all skipped). `None` once the blob is complete.
    async fn step(&mut self) -> Result<Option<Bytes>, Failure> {
        if self.resume.complete() && (self.response.is_none() || self.resume.length_known) {
            return Ok(None);
        }
        if self.response.is_none() {
            self.open().await?;
        }
        let stall = self.session.policy.stall_timeout;
        let response = self.response.as_mut().expect("a response is open");
        let next = tokio::time::timeout(stall, response.chunk()).await;
        let received = format!("after {} of {} bytes", self.resume.offset, self.resume.size);
        match next {
            // Every byte is here; only the check for extra ones failed.
            Err(_) | Ok(Err(_)) if self.resume.complete() => Ok(None),
            Ok(Err(e)) if !is_stall(&e) => Err(self.session.transient(
                &self.what,
                format!("{} {received}", crate::error::error_chain(&e)),
            )),
            // The stall timeout passed: ours, or the client's read timeout.
            Err(_) | Ok(Err(_)) => {
                let message = format!("no data for {} {received}", seconds(stall));
                // Nothing at all from this response is a stall; after some bytes it is a
                // transfer that broke (and made progress, so the retries started afresh).
                Err(if self.received == 0 {
                    self.session.stalled(&self.what, message)
                } else {
                    self.session.transient(&self.what, message)
                })
            }
            Ok(Ok(None)) if self.resume.complete() => Ok(None),
            Ok(Ok(None)) => Err(self
                .session
                .transient(&self.what, format!("the transfer ended {received}"))),
            Ok(Ok(Some(chunk))) => {
                self.received += chunk.len() as u64;
                self.resume
                    .accept(chunk)
                    .map(Some)
                    .map_err(|Refusal(message)| self.session.invalid(&self.what, message).into())
            }
        }
    }

    async fn open(&mut self) -> Result<(), Failure> {
        let path = format!("blobs/{}", self.digest);
        let from = self.resume.offset;
        self.received = 0;
        let response = self.session.get(&path, &[], from, &self.what).await?;
        if from > 0 {
            tracing::info!(
                "resuming {} at byte {from} of {} (HTTP {})",
                self.what,
                self.resume.size,
                response.status().as_u16()
            );
        }
        let range_start = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(content_range_start);
        self.resume
            .on_response(
                response.status().as_u16(),
                range_start,
                response.content_length(),
            )
            .map_err(|Refusal(message)| self.session.invalid(&self.what, message))?;
        self.response = Some(response);
        Ok(())
    }
}

/// The first byte of `bytes START-END/TOTAL`.
fn content_range_start(value: &str) -> Option<u64> {
    value
        .trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(resume: &mut Resume, data: &[u8]) -> Result<Vec<u8>, Refusal> {
        resume
            .accept(Bytes::copy_from_slice(data))
            .map(|b| b.to_vec())
    }

    #[test]
    fn a_partial_answer_continues_where_the_transfer_broke() {
        let blob: Vec<u8> = (0..100u8).collect();
        let mut resume = Resume::new(100);
        resume.on_response(200, None, Some(100)).unwrap();
        let mut got = feed(&mut resume, &blob[..40]).unwrap();
        // The connection breaks; the resumed request asks for bytes=40-.
        resume.on_response(206, Some(40), Some(60)).unwrap();
        got.extend(feed(&mut resume, &blob[40..]).unwrap());
        assert_eq!(got, blob);
        assert!(resume.complete());
    }

    #[test]
    fn a_registry_without_range_support_sends_it_all_and_the_start_is_skipped() {
        let blob: Vec<u8> = (0..100u8).collect();
        let mut resume = Resume::new(100);
        resume.on_response(200, None, None).unwrap();
        let mut got = feed(&mut resume, &blob[..30]).unwrap();
        resume.on_response(200, None, Some(100)).unwrap();
        assert_eq!(resume.skip, 30);
        // The skipped part may straddle chunks.
        got.extend(feed(&mut resume, &blob[..10]).unwrap());
        got.extend(feed(&mut resume, &blob[10..50]).unwrap());
        got.extend(feed(&mut resume, &blob[50..]).unwrap());
        assert_eq!(got, blob);
    }

    #[test]
    fn answers_that_contradict_the_descriptor_are_refused() {
        let mut resume = Resume::new(100);
        let err = resume.on_response(200, None, Some(101)).unwrap_err();
        assert!(err.0.contains("101") && err.0.contains("100"), "{err:?}");
        assert!(resume.on_response(200, None, Some(99)).is_err());
        resume.offset = 40;
        assert!(resume.on_response(206, Some(0), Some(100)).is_err());
        assert!(resume.on_response(206, None, Some(60)).is_err());
        assert!(resume.on_response(206, Some(40), Some(70)).is_err());
        resume.on_response(206, Some(40), None).unwrap();
        // Without a length, extra bytes are refused as they come.
        assert!(feed(&mut resume, &[0; 60]).is_ok());
        let err = feed(&mut resume, &[0; 1]).unwrap_err();
        assert!(err.0.contains("more than the 100 bytes"), "{err:?}");
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(content_range_start("bytes 100-1036358/1036359"), Some(100));
        assert_eq!(content_range_start("bytes 0-9/*"), Some(0));
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    /// Reads `download` to its end; the bytes it delivered, and its failure.
    async fn read_all(blob: BlobStream) -> (Vec<u8>, Option<RegistryError>) {
        use futures_util::StreamExt;
        let mut stream = blob.stream;
        let mut got = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => got.extend_from_slice(&chunk),
                Err(_) => break,
            }
        }
        (got, blob.failure.take())
    }

    #[tokio::test]
    async fn a_blob_whose_every_attempt_stalls_is_given_up_after_two() {
        use crate::session::fake::{FakeRegistry, Reply};
        let stall = std::time::Duration::from_millis(500);
        let registry = FakeRegistry::start(vec![Reply::ok_then_silent(100, b"")]);
        let session = Arc::new(registry.session(stall));
        let (got, failure) = read_all(download(session, DIGEST, 100)).await;
        assert!(got.is_empty());
        assert_eq!(registry.requests().len(), 2, "not the five retries");
        let error = failure.expect("the failure is kept");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot reach registry {0} for {0}/test/image:latest: blob {DIGEST}: no data for 500 ms after 0 of 100 bytes",
                registry.address
            )),
            "{text}"
        );
        assert!(
            text.contains("gave up after 2 attempts in a row that received nothing for the stall timeout (500 ms)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_stall_after_some_bytes_is_resumed_and_is_not_counted() {
        use crate::session::fake::{FakeRegistry, Reply};
        let stall = std::time::Duration::from_millis(500);
        // Ten bytes, then silence; the resumptions get no answer at all.
        let registry =
            FakeRegistry::start(vec![Reply::ok_then_silent(100, &[7; 10]), Reply::Silent]);
        let session = Arc::new(registry.session(stall));
        let (got, failure) = read_all(download(session, DIGEST, 100)).await;
        assert_eq!(got, [7; 10]);
        let requests = registry.requests();
        assert_eq!(requests.len(), 3, "{requests:?}");
        assert_eq!(requests[1].1.as_deref(), Some("bytes=10-"));
        assert!(matches!(
            failure,
            Some(RegistryError::GaveUp {
                reason: crate::retry::GiveUp::Stalled { attempts: 2, .. },
                ..
            })
        ));
    }
}
