//! A pod's plan (`plan.json`): everything the supervisor needs, worked out by podrun-planner
//! in `podrun play`, so that the supervisor reads no manifest, store index or image config.
//! One module per feature holds that feature's part of the plan.

pub mod cgroup;
pub mod dns;
pub mod hooks;
pub mod probes;
pub mod security;
pub mod stdio;
pub mod termination;
pub mod volumes;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::PodLayout;
use crate::PodError;
use volumes::{MountPlan, PodVolumes};

/// Default `terminationGracePeriodSeconds`, as in Kubernetes.
pub const DEFAULT_GRACE_SECONDS: u64 = 30;

/// A workload that owns pods: its kind (`Deployment`, `StatefulSet`, ...) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Controller {
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What the supervisor runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `metadata.labels` and `metadata.annotations`, for `describe` and `ps -o json`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The pod's `spec` as the manifest gave it (a Kubernetes PodSpec), for `ps -o json`;
    /// absent in plans written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec: Option<serde_json::Value>,
    /// The workload the pod is a replica of (a Deployment, StatefulSet, Job, ...), as
    /// Kubernetes' controller ownerReference: `ps` shows it, `down FILE`, `logs deploy/NAME`
    /// find the pod by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Controller>,
    pub hostname: String,
    pub share_process_namespace: bool,
    pub restart_policy: RestartPolicy,
    pub termination_grace_period_seconds: u64,
    /// `activeDeadlineSeconds`: how long the pod may run (see podrun-supervisor's `deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
    /// `hostAliases`, `dnsPolicy` and `dnsConfig` (see [`dns`]).
    #[serde(default, skip_serializing_if = "dns::PodDns::is_empty")]
    pub dns: dns::PodDns,
    pub runtime_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The pod's volumes (see [`volumes`]).
    pub volumes: PodVolumes,
    /// fsGroup and sysctls (see [`security`]).
    #[serde(default, skip_serializing_if = "security::PodSecurity::is_empty")]
    pub security: security::PodSecurity,
    pub containers: Vec<ContainerPlan>,
    /// `spec.initContainers`, run in order before `containers`; native sidecars among them
    /// have `sidecar` set.
    #[serde(default)]
    pub init_containers: Vec<ContainerPlan>,
    /// RFC 3339.
    pub created: String,
    /// The pod's network backend (see podrun-planner's `network`); absent in older plans: loopback
    /// only.
    #[serde(default)]
    pub network: podrun_network::NetworkPlan,
    /// The ports published on the host by the network helper.
    #[serde(default)]
    pub ports: Vec<podrun_network::PortMapping>,
    /// The most each container's log may take on disk (`[logs] max_size`, see
    /// [`crate::logs`]).
    #[serde(default = "default_log_max_size")]
    pub log_max_size: u64,
    /// The pod's cgroup, when the user has a delegated cgroup and the pod declares resources
    /// (see [`cgroup`]); set by `play`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<cgroup::PodCgroup>,
}

fn default_log_max_size() -> u64 {
    podrun_config::DEFAULT_LOG_MAX_SIZE
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub name: String,
    /// The image as the manifest names it.
    pub image: String,
    /// Image layers, top layer first.
    pub lower_dirs: Vec<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub mounts: Vec<MountPlan>,
    /// `lifecycle.stopSignal`, else the image's STOPSIGNAL (e.g. `SIGQUIT`), sent instead
    /// of SIGTERM to stop the container, as the kubelet and containerd do.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// An init container with `restartPolicy: Always`: a native sidecar.
    #[serde(default)]
    pub sidecar: bool,
    /// Its postStart and preStop hooks (see [`hooks`]).
    #[serde(default)]
    pub hooks: hooks::Hooks,
    /// Its startup, liveness and readiness probes (see [`probes`]).
    #[serde(default, skip_serializing_if = "probes::ContainerProbes::is_empty")]
    pub probes: probes::ContainerProbes,
    /// Its resources as cgroup values, applied when the pod has a cgroup.
    #[serde(default)]
    pub limits: cgroup::ContainerLimits,
    /// `terminationMessagePath` and `terminationMessagePolicy` (see [`termination`]).
    #[serde(default)]
    pub termination_message: termination::TerminationMessage,
    /// `stdin`, `stdinOnce` and `tty` (see [`stdio`]).
    #[serde(default)]
    pub stdio: stdio::Stdio,
    /// Its security context (see [`security`]).
    #[serde(default)]
    pub security: security::ContainerSecurity,
}

/// `restartPolicy`: what the supervisor does when a container ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The policy as a manifest writes it; `None` for anything else.
    pub fn parse(text: &str) -> Option<RestartPolicy> {
        match text {
            "Always" => Some(RestartPolicy::Always),
            "OnFailure" => Some(RestartPolicy::OnFailure),
            "Never" => Some(RestartPolicy::Never),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }

    /// Whether a container that ended with `exit_code` is started again (the kubelet's
    /// `ShouldContainerBeRestarted`, for an app container).
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Plan {
    pub fn read(runtime_dir: &Path) -> Result<Plan, PodError> {
        let path = runtime_dir.join(crate::layout::PLAN_FILE);
        let bytes = std::fs::read(&path)
            .map_err(PodError::io(format!("cannot read {}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PodError::msg(format!("{} is damaged: {e}", path.display())))
    }

    pub fn write(&self) -> Result<(), PodError> {
        let json = serde_json::to_vec_pretty(self).expect("plan serializes");
        crate::write_atomic(&self.layout().plan_file(), &json)
    }

    /// Where the pod's files are.
    pub fn layout(&self) -> PodLayout {
        PodLayout::new(&self.runtime_dir, &self.data_dir)
    }

    /// Puts the address the shared network leased in place of [`node::LEASED_POD_IP`] in
    /// the containers' arguments and environment (the downward API's `status.podIP`, also
    /// through `$(VAR)`); returns whether there was any.
    ///
    /// [`node::LEASED_POD_IP`]: crate::node::LEASED_POD_IP
    pub fn fill_in_pod_ip(&mut self, address: &str) -> bool {
        let marker = crate::node::LEASED_POD_IP;
        let mut filled = false;
        let containers = self.containers.iter_mut().chain(&mut self.init_containers);
        for text in containers.flat_map(|c| c.args.iter_mut().chain(&mut c.env)) {
            if text.contains(marker) {
                *text = text.replace(marker, address);
                filled = true;
            }
        }
        filled
    }

    /// The pod's containers and init containers, app containers first.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.containers.iter().chain(&self.init_containers)
    }
}

impl ContainerPlan {
    /// `args` run in this container (libcontainer id `id`, state under `state_root`) as the
    /// container's own process runs: its environment, working directory and user;
    /// `supervisor` is the pod supervisor's pid, whose user namespace the process joins. For
    /// `podrun exec`, exec probes and exec hooks alike.
    pub fn exec_config(
        &self,
        id: String,
        state_root: PathBuf,
        supervisor: i32,
        args: Vec<String>,
    ) -> podrun_runtime::ExecConfig {
        podrun_runtime::ExecConfig {
            id,
            state_root,
            user_namespace_of: supervisor,
            args,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            uid: self.uid,
            gid: self.gid,
            additional_gids: self.additional_gids.clone(),
            tty: None,
        }
    }
}

/// A pod's labels and annotations, as its plan records them (for `describe` and `ps`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PodMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl PodMetadata {
    /// The metadata of the pod whose runtime directory is `runtime_dir`; empty when its plan
    /// cannot be read.
    pub fn read(runtime_dir: &Path) -> PodMetadata {
        Plan::read(runtime_dir)
            .map(|plan| PodMetadata {
                labels: plan.labels,
                annotations: plan.annotations,
            })
            .unwrap_or_default()
    }

    /// The labels as `kubectl describe` shows them: `key=value`, one a line, the lines after
    /// the first indented by `indent`; `<none>` when there are none.
    pub fn labels_text(&self, indent: usize) -> String {
        map_text(&self.labels, indent)
    }

    /// The annotations, as [`PodMetadata::labels_text`] shows labels.
    pub fn annotations_text(&self, indent: usize) -> String {
        map_text(&self.annotations, indent)
    }
}

fn map_text(map: &BTreeMap<String, String>, indent: usize) -> String {
    if map.is_empty() {
        return "<none>".into();
    }
    let lines: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.join(&format!("\n{:indent$}", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leased_pod_ip_is_filled_in_wherever_the_plan_has_it() {
        let golden =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/previous-release");
        let mut plan = Plan::read(&golden).unwrap();
        let marker = crate::node::LEASED_POD_IP;
        assert!(
            !plan.fill_in_pod_ip("10.89.0.7"),
            "no marker, nothing to fill in"
        );
        let web = &mut plan.containers[0];
        web.env.push(format!("POD_IP={marker}"));
        web.args.push(format!("--listen={marker}:80"));
        let before = plan.containers[1].clone();
        assert!(plan.fill_in_pod_ip("10.89.0.7"));
        let web = &plan.containers[0];
        assert_eq!(web.env.last().unwrap(), "POD_IP=10.89.0.7");
        assert_eq!(web.args.last().unwrap(), "--listen=10.89.0.7:80");
        assert_eq!(plan.containers[1], before);
        let text = serde_json::to_string(&plan).unwrap();
        assert!(!text.contains("status.podIP"), "{text}");
    }

    #[test]
    fn metadata_as_describe_shows_it() {
        let mut metadata = PodMetadata::default();
        assert_eq!(metadata.labels_text(4), "<none>");
        metadata.labels = BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "front".to_string()),
        ]);
        assert_eq!(metadata.labels_text(4), "app=web\n    tier=front");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PodMetadata::read(dir.path()), PodMetadata::default());
    }
}
