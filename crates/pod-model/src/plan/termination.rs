//! Termination messages as the plan holds them (podrun-planner's `termination` plans them,
//! podrun-supervisor's reads them), as the kubelet keeps them: each container gets a file it can write
//! at `terminationMessagePath` (default `/dev/termination-log`), bind-mounted from
//! `containers/<name>/termination-log` in the pod's data directory and emptied before each
//! start. When the container ends, the last 4096 bytes of that file become its terminated
//! state's message. With `terminationMessagePolicy: FallbackToLogsOnError`, a container that
//! failed (non-zero exit) and left the file empty gets the tail of its log instead: its last
//! 80 lines, at most their last 2 KiB (the kubelet's `MaxContainerTerminationMessageLog*`).
//!
//! Over all that, the kubelet keeps at most 12 KiB of messages per pod
//! (`MaxPodTerminationMessageLogLength`): its status manager (`normalizeStatus`) divides
//! them evenly among the pod's containers and init containers and keeps the first
//! `12288 / containers` bytes of each message. That only cuts with four containers or more
//! (three share 4 KiB each, the most a file gives anyway).

use serde::{Deserialize, Serialize};

/// Kubernetes' default `terminationMessagePath`.
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// A container's termination message settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminationMessage {
    /// Where the container sees the file.
    pub path: String,
    /// `FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
}

impl Default for TerminationMessage {
    fn default() -> Self {
        TerminationMessage {
            path: DEFAULT_PATH.into(),
            fallback_to_logs: false,
        }
    }
}
