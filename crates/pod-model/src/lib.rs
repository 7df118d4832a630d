//! What podrun's processes agree on about a pod.
//!
//! A pod is handled by three roles, each in a crate of its own: the planner (podrun-planner,
//! in `podrun play`) turns a manifest into a [`plan::Plan`]; the supervisor
//! (podrun-supervisor, one process per pod) runs that plan and records [`state::PodState`];
//! the pod operations (podrun-pod: `ps`, `logs`, `exec`, `down`, ...) read both. This crate
//! holds only what passes between them, so that none of them depends on another:
//!
//! * [`layout`]: where a pod's files are ([`layout::PodDirs`], [`layout::PodLayout`]);
//!   [`claims`]: the named volumes of PersistentVolumeClaims, which outlive pods.
//! * [`plan`]: `plan.json`, what the supervisor runs, with one module per feature.
//! * [`state`]: `state.json`, what the supervisor last recorded (states and phases as enums).
//! * [`stop`]: `stop.json`, a stop's own grace period (`down --grace-period`).
//! * [`probe`]: probe verdicts as the state records them.
//! * [`logfile`]: the CRI log format the supervisor writes and `podrun logs` reads.
//! * [`attach`]: the frames of the attach socket; [`ready`]: the supervisor's answer to
//!   `play`.
//! * [`process`]: podrun's processes as `ps` shows them, and how to recognise a pod's
//!   supervisor.
//! * [`node`]: the host as a pod sees it (its address on each network backend).
//!
//! Files written by an older podrun must stay readable: fields are added with serde
//! defaults, and the golden files under `tests/golden` check it.

pub mod attach;
pub mod claims;
pub mod layout;
pub mod logfile;
pub mod node;
pub mod plan;
pub mod probe;
pub mod process;
pub mod ready;
pub mod state;
pub mod stop;

mod bytes;

use std::path::Path;

pub use layout::{PodDirs, PodLayout};

/// Errors of podrun's pod crates; each names the pod, container, field or file it is about.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("{0}")]
    Message(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl PodError {
    /// An I/O error's mapper: `.map_err(PodError::io("cannot read x"))`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PodError {
        let what = what.into();
        move |source| PodError::Io { what, source }
    }

    pub fn msg(text: impl Into<String>) -> PodError {
        PodError::Message(text.into())
    }
}

/// The namespace of a pod that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// `ns/name`, as messages show a pod.
pub fn display_name(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Removes a directory tree; a missing one is fine.
pub fn remove_tree(path: &Path) -> Result<(), PodError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PodError::io(format!("cannot remove {}", path.display()))(e)),
    }
}

/// Writes `content` to `path` atomically (temporary file in the same directory + rename).
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), PodError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let what = || format!("cannot write {}", path.display());
    let mut file = std::fs::File::create(&tmp).map_err(PodError::io(what()))?;
    file.write_all(content).map_err(PodError::io(what()))?;
    file.sync_all().map_err(PodError::io(what()))?;
    std::fs::rename(&tmp, path).map_err(PodError::io(what()))
}

/// The time now as the state and plan record times (RFC 3339, seconds, UTC).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
