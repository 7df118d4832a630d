//! `stop.json`: how the pod is to be stopped this time, when not as its plan says
//! (`podrun down --grace-period N` or `--now`, `play --replace` and `play --wait`'s Ctrl-C
//! with those options, and a second Ctrl-C). The stopping process writes it (atomically)
//! before it signals the supervisor, which reads it on every stop signal: the first one
//! begins the stop with that grace period, a later one with a shorter grace period cuts the
//! stop in progress short. A supervisor of an older release does not read it; `down` then
//! kills the pod itself once the grace period it asked for (and its margin) is over.

use serde::{Deserialize, Serialize};

use crate::layout::PodLayout;
use crate::{write_atomic, PodError};

/// A stop's own grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Seconds each container gets after its stop signal (its preStop hook included) before
    /// SIGKILL, instead of the pod's `terminationGracePeriodSeconds`; 0: SIGKILL at once,
    /// without preStop hooks.
    pub grace_period_seconds: u64,
}

impl StopRequest {
    /// Writes the request into the pod's runtime directory (atomically: the supervisor never
    /// reads half of it).
    pub fn write(&self, layout: &PodLayout) -> Result<(), PodError> {
        let json = serde_json::to_vec(self).expect("a stop request serializes");
        write_atomic(&layout.stop_request_file(), &json)
    }

    /// The request of the pod, if there is one (and it can be read: a damaged one counts as
    /// none, and the pod stops as its plan says).
    pub fn read(layout: &PodLayout) -> Option<StopRequest> {
        let bytes = std::fs::read(layout.stop_request_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Removes a request left by a stop that was interrupted before it signalled the
    /// supervisor: a stop without options goes as the plan says.
    pub fn clear(layout: &PodLayout) {
        let _ = std::fs::remove_file(layout.stop_request_file());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_a_damaged_one_counts_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let layout = PodLayout::new(dir.path(), dir.path().join("data"));
        assert_eq!(StopRequest::read(&layout), None);
        let request = StopRequest {
            grace_period_seconds: 0,
        };
        request.write(&layout).unwrap();
        assert_eq!(
            std::fs::read_to_string(layout.stop_request_file()).unwrap(),
            r#"{"grace_period_seconds":0}"#
        );
        assert_eq!(StopRequest::read(&layout), Some(request));
        std::fs::write(layout.stop_request_file(), "{").unwrap();
        assert_eq!(StopRequest::read(&layout), None);
        StopRequest::clear(&layout);
        assert!(!layout.stop_request_file().exists());
        StopRequest::clear(&layout);
    }
}
