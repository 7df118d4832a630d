//! The byte stream under the tar parser: decompression, buffering and the diff_id hash.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::{Compression, UnpackError};

/// Size of the buffer between the decompressor and the tar parser. Large reads keep the
/// decompressor and the hash working on big blocks.
const BUFFER_SIZE: usize = 256 * 1024;

/// The uncompressed tar stream, hashed as it is read.
pub(crate) type TarStream<'a> = HashingReader<BufReader<Box<dyn Read + 'a>>>;

/// Builds the reader the tar parser consumes, and the handle telling which layer failed.
pub(crate) fn tar_stream<'a, R: Read + 'a>(
    reader: R,
    compression: Compression,
    limit: Option<u64>,
) -> Result<(TarStream<'a>, ErrorSource), UnpackError> {
    let source = ErrorSource::default();
    let decoder: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(reader),
        // Multi-member: some tools write a gzip stream as several concatenated members.
        Compression::Gzip => Box::new(Watched::new(
            flate2::read::MultiGzDecoder::new(reader),
            &source,
        )),
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(reader).map_err(UnpackError::Decompress)?;
            Box::new(Watched::new(decoder, &source))
        }
    };
    let mut stream = HashingReader::new(BufReader::with_capacity(BUFFER_SIZE, decoder));
    stream.limit = limit.map(|limit| (limit, source.clone()));
    Ok((stream, source))
}

/// Remembers whether the decompressor failed, so that an I/O error surfacing from the tar
/// parser can be reported as a decompression error rather than a malformed archive.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorSource {
    decompressor_failed: Rc<Cell<bool>>,
    /// The limit the stream went past, if it did.
    over_limit: Rc<Cell<Option<u64>>>,
}

impl ErrorSource {
    /// Classifies an error met while reading the tar stream.
    pub(crate) fn stream_error(&self, error: io::Error) -> UnpackError {
        if let Some(limit) = self.over_limit.get() {
            UnpackError::TooLarge { limit }
        } else if self.decompressor_failed.get() {
            UnpackError::Decompress(error)
        } else {
            UnpackError::Archive(error)
        }
    }
}

/// A decompressor whose errors are noted in an [`ErrorSource`].
struct Watched<R> {
    inner: R,
    source: ErrorSource,
}

impl<R> Watched<R> {
    fn new(inner: R, source: &ErrorSource) -> Self {
        Self {
            inner,
            source: source.clone(),
        }
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.source.decompressor_failed.set(true);
            }
        })
    }
}

/// Hashes every byte read through it: the diff_id is the sha256 of the uncompressed tar.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    /// Bytes read so far.
    count: u64,
    /// The most bytes allowed, and where to note that they were exceeded.
    limit: Option<(u64, ErrorSource)>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit: None,
        }
    }

    /// Reads what is left of the stream (the tar end blocks and any padding after them, which
    /// are part of the diff_id) and returns `sha256:<hex>` of the whole stream.
    pub(crate) fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some((limit, source)) = &self.limit {
            if self.count > *limit {
                source.over_limit.set(Some(*limit));
                return Err(io::Error::other(format!(
                    "the uncompressed layer exceeds {limit} bytes"
                )));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_everything_read() {
        let (mut stream, _) = tar_stream(&b"hello world"[..], Compression::None, None).unwrap();
        let mut first = [0u8; 5];
        stream.read_exact(&mut first).unwrap();
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(stream.finish().unwrap(), expected);
    }

    #[test]
    fn classifies_decompression_errors() {
        let (mut stream, source) =
            tar_stream(&b"not gzip at all"[..], Compression::Gzip, None).unwrap();
        let err = stream.read(&mut [0u8; 16]).unwrap_err();
        assert!(matches!(
            source.stream_error(err),
            UnpackError::Decompress(_)
        ));

        let (mut stream, source) = tar_stream(&b"plain"[..], Compression::None, None).unwrap();
        assert_eq!(stream.read(&mut [0u8; 16]).unwrap(), 5);
        let err = io::Error::other("bad header");
        assert!(matches!(source.stream_error(err), UnpackError::Archive(_)));
    }
}
