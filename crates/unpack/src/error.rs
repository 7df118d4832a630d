//! Errors returned by [`unpack_layer`](crate::unpack_layer).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a path named by a layer entry (or by a hard link's target) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// The path starts with `/`.
    Absolute,
    /// The path has a `..` component.
    Escapes,
    /// The path is longer than [`MAX_PATH_LEN`](crate::MAX_PATH_LEN) bytes.
    TooLong,
    /// The path contains a NUL byte, which no file name can hold.
    NulByte,
    /// A parent directory of the path is a symlink already unpacked into the layer.
    ThroughSymlink { symlink: String },
    /// A parent directory of the path is something other than a directory.
    ThroughNonDirectory { file: String },
    /// A whiteout (`.wh.NAME`) whose NAME is empty, `.` or `..`.
    InvalidWhiteout,
    /// Hard links only: the target does not exist in the layer (yet).
    NotFound,
    /// Hard links only: the target is a directory, which cannot be hard linked.
    IsDirectory,
    /// Hard links only: the target is the layer directory itself.
    LayerRoot,
}

impl fmt::Display for PathProblem {
    /// The phrase that follows "layer entry `PATH`".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absolute => write!(f, "is an absolute path"),
            Self::Escapes => write!(f, "escapes the layer directory"),
            Self::TooLong => write!(f, "is longer than {} bytes", crate::MAX_PATH_LEN),
            Self::NulByte => write!(f, "contains a NUL byte"),
            Self::ThroughSymlink { symlink } => write!(f, "goes through symlink `{symlink}`"),
            Self::ThroughNonDirectory { file } => {
                write!(f, "goes through `{file}`, which is not a directory")
            }
            Self::InvalidWhiteout => write!(f, "is a whiteout without a valid name to hide"),
            Self::NotFound => write!(f, "does not exist in the layer"),
            Self::IsDirectory => write!(f, "is a directory"),
            Self::LayerRoot => write!(f, "is the layer directory itself"),
        }
    }
}

impl PathProblem {
    /// The phrase that follows "hard link `PATH`", naming the link's target.
    fn as_link_phrase(&self, target: &str) -> String {
        match self {
            Self::Absolute | Self::Escapes => format!("points outside the layer: `{target}`"),
            Self::ThroughSymlink { symlink } => {
                format!("points to `{target}` through symlink `{symlink}`")
            }
            Self::ThroughNonDirectory { file } => {
                format!("points to `{target}` through `{file}`, which is not a directory")
            }
            Self::NotFound => format!("points to `{target}`, which does not exist in the layer"),
            Self::IsDirectory => format!("points to `{target}`, which is a directory"),
            Self::LayerRoot => "points to the layer directory itself".to_string(),
            Self::TooLong | Self::NulByte | Self::InvalidWhiteout => {
                format!("points to an invalid path `{target}`: it {self}")
            }
        }
    }
}

/// Why a layer could not be unpacked. The destination is left half-written: delete it.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("cannot unpack into `{}`: {source}", path.display())]
    Destination { path: PathBuf, source: io::Error },

    #[error("cannot unpack into `{}`: the directory is not empty", path.display())]
    DestinationNotEmpty { path: PathBuf },

    #[error("layer entry `{path}` {reason}")]
    UnsafePath { path: String, reason: PathProblem },

    #[error("hard link `{path}` {}", reason.as_link_phrase(target))]
    HardLink {
        path: String,
        target: String,
        reason: PathProblem,
    },

    #[error("layer entry `{path}` is invalid: {reason}")]
    InvalidEntry { path: String, reason: String },

    /// chown failed with EINVAL and `tolerate_unmapped_ids` is off.
    #[error(
        "layer entry `{path}` is owned by {uid}:{gid}, which this user namespace does not map"
    )]
    UnmappedId { path: String, uid: u32, gid: u32 },

    /// A file-system operation failed; `action` says what was attempted ("create file", ...).
    #[error("cannot {action} `{path}` in the layer: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: io::Error,
    },

    /// The (uncompressed) stream is not a valid tar archive, or it ended early.
    #[error("the layer is not a valid tar archive: {0}")]
    Archive(#[source] io::Error),

    /// Writing `path` would leave less free space than the reserve.
    #[error("the disk is full: unpacking `{path}` would leave {} MiB free, less than the {} MiB podrun keeps free\nhint: free some space (`podrun rmi` unused images) and pull again", available >> 20, reserve >> 20)]
    DiskFull {
        path: String,
        available: u64,
        reserve: u64,
    },

    /// The uncompressed stream grew past its limit: a decompression bomb, or a layer larger
    /// than the configured limits allow.
    #[error("the layer unpacks to more than {limit} bytes, its limit (`[pull] max_layer_expansion` × its compressed size, at most `max_layer_size`)\nhint: if the image is trusted, raise those limits in config.toml")]
    TooLarge { limit: u64 },

    /// The gzip or zstd stream could not be decompressed.
    #[error("cannot decompress the layer: {0}")]
    Decompress(#[source] io::Error),
}

impl UnpackError {
    pub(crate) fn io(action: &'static str, path: &str, source: impl Into<io::Error>) -> Self {
        Self::Io {
            action,
            path: path.to_string(),
            source: source.into(),
        }
    }
}
