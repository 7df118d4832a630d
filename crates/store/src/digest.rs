//! Content digests. A digest comes from a manifest a registry sent, so it is validated before
//! it ever becomes part of a path (`sha256:../../x` must not name a file).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::StoreError;

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The digest of `content`.
    pub fn of_bytes(content: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(content).as_slice())
    }

    /// Wraps a finished SHA-256 hash.
    pub fn from_sha256(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The first 12 hex digits, as tools show digests in tables.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(Digest(text.to_string()))
        } else {
            Err(StoreError::BadDigest(text.to_string()))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_before_use_in_paths() {
        let good = Digest::of_bytes(b"hello");
        assert_eq!(
            good.as_str(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(good.to_string().parse::<Digest>().unwrap(), good);
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
            "sha512:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "sha256:",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
