//! A container's probes as the plan holds them: worked out by podrun-planner (`probes`) with
//! Kubernetes' defaults and validation rules, named ports resolved; run by podrun-supervisor.

use serde::{Deserialize, Serialize};

/// The three probes of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerProbes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<ProbePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<ProbePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ProbePlan>,
}

impl ContainerProbes {
    pub fn is_empty(&self) -> bool {
        self.startup.is_none() && self.liveness.is_none() && self.readiness.is_none()
    }
}

/// One probe, with Kubernetes' defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbePlan {
    pub action: ProbeAction,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The grace period of a container that this probe kills (liveness, startup), instead
    /// of the pod's `terminationGracePeriodSeconds`.
    #[serde(default)]
    pub termination_grace_period_seconds: Option<u64>,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ProbeAction {
    /// A command run in the container (no shell); exit code 0 is success.
    Exec { command: Vec<String> },
    /// An HTTP GET; a status from 200 to 399 is success. HTTPS certificates are not
    /// verified (as the kubelet does).
    HttpGet {
        https: bool,
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// A TCP connection that opens is success.
    TcpSocket { host: String, port: u16 },
}
