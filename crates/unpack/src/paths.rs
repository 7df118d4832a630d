//! Turning the path bytes of a tar entry into a safe path relative to the layer directory.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::PathProblem;

/// Longest entry path accepted, in bytes (Linux's PATH_MAX). Longer paths could not be used in
/// the container anyway, and the bound keeps the directory depth (and our recursion) small.
pub const MAX_PATH_LEN: usize = 4096;

/// A lexically safe path inside the layer: relative, no `..`, no `.` or empty components.
/// It is empty for the layer directory itself (`.` or `./`). Whether its parents are real
/// directories (and not symlinks) is checked against the file system when it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerPath {
    components: Vec<OsString>,
    rel: PathBuf,
}

impl LayerPath {
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, PathProblem> {
        if raw.len() > MAX_PATH_LEN {
            return Err(PathProblem::TooLong);
        }
        if raw.contains(&0) {
            return Err(PathProblem::NulByte);
        }
        if raw.starts_with(b"/") {
            return Err(PathProblem::Absolute);
        }
        let mut components = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(PathProblem::Escapes),
                _ => components.push(OsStr::from_bytes(part).to_owned()),
            }
        }
        Ok(Self::from_components(components))
    }

    fn from_components(components: Vec<OsString>) -> Self {
        let rel = components.iter().collect();
        Self { components, rel }
    }

    /// True for the layer directory itself.
    pub(crate) fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component. Empty for the root.
    pub(crate) fn name(&self) -> &OsStr {
        self.components
            .last()
            .map_or(OsStr::new(""), |c| c.as_os_str())
    }

    /// The components of the parent directory.
    pub(crate) fn parent(&self) -> &[OsString] {
        &self.components[..self.components.len().saturating_sub(1)]
    }

    pub(crate) fn components(&self) -> &[OsString] {
        &self.components
    }

    /// The parent directory as a path of its own.
    pub(crate) fn parent_path(&self) -> LayerPath {
        Self::from_components(self.parent().to_vec())
    }

    /// A sibling of this path: same parent, another name.
    pub(crate) fn with_name(&self, name: &OsStr) -> LayerPath {
        let mut components = self.parent().to_vec();
        components.push(name.to_owned());
        Self::from_components(components)
    }

    pub(crate) fn rel(&self) -> &Path {
        &self.rel
    }

    /// The path as shown to users and recorded in stats: `a/b/c`, or `.` for the root.
    pub(crate) fn display(&self) -> String {
        if self.is_root() {
            ".".to_string()
        } else {
            self.rel.to_string_lossy().into_owned()
        }
    }
}

/// Shows the first `len` components of a path, for naming the symlink an entry goes through.
pub(crate) fn display_prefix(components: &[OsString], len: usize) -> String {
    components[..len]
        .iter()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<String, PathProblem> {
        LayerPath::parse(s.as_bytes()).map(|p| p.display())
    }

    #[test]
    fn normalises_harmless_forms() {
        assert_eq!(parse("./a/b").unwrap(), "a/b");
        assert_eq!(parse("a//b/./c/").unwrap(), "a/b/c");
        assert_eq!(parse("./").unwrap(), ".");
        assert_eq!(parse(".").unwrap(), ".");
        assert_eq!(parse("...").unwrap(), "...");
        assert!(LayerPath::parse(b"./").unwrap().is_root());
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(parse("../etc/passwd"), Err(PathProblem::Escapes));
        assert_eq!(parse("a/../../b"), Err(PathProblem::Escapes));
        assert_eq!(parse("a/.."), Err(PathProblem::Escapes));
        assert_eq!(parse("/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(parse("//etc"), Err(PathProblem::Absolute));
        assert_eq!(LayerPath::parse(b"a\0b"), Err(PathProblem::NulByte));
        assert_eq!(parse(&"a/".repeat(3000)), Err(PathProblem::TooLong));
    }

    #[test]
    fn parent_and_name() {
        let p = LayerPath::parse(b"a/b/c").unwrap();
        assert_eq!(p.name(), "c");
        assert_eq!(p.parent_path().display(), "a/b");
        assert_eq!(p.with_name(OsStr::new("d")).display(), "a/b/d");
        assert_eq!(display_prefix(p.components(), 2), "a/b");
    }
}
