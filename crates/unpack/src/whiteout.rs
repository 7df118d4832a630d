//! Recognising OCI whiteout entries (see the crate documentation for the model).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::error::PathProblem;
use crate::paths::LayerPath;

/// Prefix of every whiteout file name.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of the names reserved for whiteout metadata (`.wh..wh..opq`, AUFS' `.wh..wh.plnk`).
const META_PREFIX: &[u8] = b".wh..wh.";
/// The opaque-directory marker.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// What a layer entry means in the whiteout model.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// `D/.wh..wh..opq`: directory D hides everything below it in lower layers.
    Opaque,
    /// `D/.wh.NAME`: D/NAME is deleted; holds the hidden NAME.
    Hide(&'a OsStr),
    /// Other reserved whiteout metadata, and anything inside it: not part of the file system.
    Ignore,
}

pub(crate) fn classify(path: &LayerPath) -> Result<Whiteout<'_>, PathProblem> {
    if path
        .parent()
        .iter()
        .any(|dir| dir.as_bytes().starts_with(META_PREFIX))
    {
        return Ok(Whiteout::Ignore);
    }
    let name = path.name().as_bytes();
    if name == OPAQUE_MARKER {
        return Ok(Whiteout::Opaque);
    }
    if name.starts_with(META_PREFIX) {
        return Ok(Whiteout::Ignore);
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        None => Ok(Whiteout::None),
        // `.wh..` and `.wh...` would hide `.` and `..`: hostile, refuse them.
        Some(b"" | b"." | b"..") => Err(PathProblem::InvalidWhiteout),
        Some(hidden) => Ok(Whiteout::Hide(OsStr::from_bytes(hidden))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_str(s: &str) -> Result<String, PathProblem> {
        let path = LayerPath::parse(s.as_bytes()).unwrap();
        classify(&path).map(|w| format!("{w:?}"))
    }

    #[test]
    fn recognises_whiteouts() {
        assert_eq!(classify_str("a/b").unwrap(), "None");
        assert_eq!(classify_str("a/.wh..wh..opq").unwrap(), "Opaque");
        assert_eq!(classify_str(".wh..wh..opq").unwrap(), "Opaque");
        assert_eq!(classify_str("a/.wh.b").unwrap(), "Hide(\"b\")");
        assert_eq!(classify_str("a/.wh..b").unwrap(), "Hide(\".b\")");
        assert_eq!(classify_str(".wh..wh.plnk").unwrap(), "Ignore");
        assert_eq!(classify_str(".wh..wh.plnk/123.456").unwrap(), "Ignore");
        assert_eq!(classify_str("a/.whb").unwrap(), "None");
        assert_eq!(classify_str("a/.wh."), Err(PathProblem::InvalidWhiteout));
        assert_eq!(classify_str("a/.wh.."), Err(PathProblem::InvalidWhiteout));
        assert_eq!(classify_str("a/.wh..."), Err(PathProblem::InvalidWhiteout));
    }
}
