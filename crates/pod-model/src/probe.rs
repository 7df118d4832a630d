//! Probe verdicts as `state.json` records them (podrun-supervisor's `probe` runs the probes,
//! `podrun describe` and `play --wait-ready` read the verdicts).

use serde::{Deserialize, Serialize};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As the kubelet's events name it: `Liveness probe failed: ...`.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// A probe's verdict (after its thresholds) or the result of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

/// A probe as `state.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub probe: ProbeKind,
    /// The verdict after the thresholds (initially: liveness success, readiness failure,
    /// startup unknown, as the kubelet has them).
    pub result: ProbeResult,
    /// The last run's result, its message (the command's output, the HTTP status or the
    /// connection's error) and time (RFC 3339); none before the first run.
    pub last_result: Option<ProbeResult>,
    pub last_message: String,
    pub last_time: Option<String>,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
}
