//! User namespaces for rootless podrun.
//!
//! A non-root user owns only one uid on the host, but an image contains files owned by many ids
//! (www-data is 33, nobody is 65534). podrun therefore works inside a user namespace whose map
//! gives the user's own uid to namespace root and the user's subordinate range (/etc/subuid,
//! /etc/subgid) to ids 1..N, the same layout podman uses:
//!
//! ```text
//! namespace id   host id
//! 0              the user's uid
//! 1..=count      subuid start ..
//! ```
//!
//! Unprivileged processes cannot write such a map themselves; the setuid helpers `newuidmap`
//! and `newgidmap` (Debian package `uidmap`) check the ranges and write it. When the user has no
//! range, podrun falls back to a single-id map (only namespace root exists) and says so.

mod enter;
mod mapping;
mod subid;

pub use enter::{enter_user_namespace, is_root_in_initial_namespace, write_id_maps};
pub use mapping::{user_name, IdMap, IdMapping, MappingPlan};
pub use subid::{subordinate_ranges, SubordinateRange};

/// Errors setting up a user namespace. Each says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("cannot read {path}: {source}")]
    ReadSubidFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create a user namespace: {0}\nhint: check that unprivileged user namespaces are enabled (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone); run `podrun system check` for a full diagnosis")]
    Unshare(nix::Error),
    #[error(
        "{tool} is not installed\nhint: install Debian's `uidmap` package (apt-get install uidmap); run `podrun system check` for a full diagnosis"
    )]
    ToolMissing { tool: &'static str },
    #[error("{tool} failed to write the id map for range(s) {ranges}: {message}\nhint: check the entries for this user in /etc/subuid and /etc/subgid, and that {tool} is setuid root; run `podrun system check` for a full diagnosis")]
    MapTool {
        tool: &'static str,
        ranges: String,
        message: String,
    },
    #[error("cannot write {file}: {source}")]
    WriteMap {
        file: &'static str,
        source: std::io::Error,
    },
    #[error("system call failed while entering the user namespace: {0}")]
    Sys(#[from] nix::Error),
}
