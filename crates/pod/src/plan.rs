//! Planning a pod: everything the supervisor needs, worked out in the CLI and written to
//! `plan.json`, so that the supervisor reads no manifest, store index or image config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podrun_manifest::k8s_openapi::api::core::v1::Container;
use podrun_manifest::{Manifest, PodManifest};
use podrun_process::{ImageFiles, Objects};
use podrun_store::{Digest, ImageRecord, Store};
use serde::{Deserialize, Serialize};

use crate::volumes::{MountPlan, PodVolumes, VolumeDirs};
use crate::{PodDirs, PodError};

pub const PLAN_FILE: &str = "plan.json";

/// Default `terminationGracePeriodSeconds`, as in Kubernetes.
pub const DEFAULT_GRACE_SECONDS: u64 = 30;

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
    pub hostname: String,
    pub share_process_namespace: bool,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    pub termination_grace_period_seconds: u64,
    /// `activeDeadlineSeconds`: how long the pod may run (see the supervisor's `deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
    /// `hostAliases`, `dnsPolicy` and `dnsConfig` (see [`crate::dns`]).
    #[serde(default, skip_serializing_if = "crate::dns::PodDns::is_empty")]
    pub dns: crate::dns::PodDns,
    pub runtime_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The pod's volumes (see [`crate::volumes`]).
    pub volumes: PodVolumes,
    /// fsGroup and sysctls (see [`crate::security`]).
    #[serde(
        default,
        skip_serializing_if = "crate::security::PodSecurity::is_empty"
    )]
    pub security: crate::security::PodSecurity,
    pub containers: Vec<ContainerPlan>,
    /// `spec.initContainers`, run in order before `containers` (see
    /// [`crate::supervisor`]); native sidecars among them have `sidecar` set.
    #[serde(default)]
    pub init_containers: Vec<ContainerPlan>,
    /// RFC 3339.
    pub created: String,
    /// The pod's network backend (see [`crate::network`]); absent in older plans: loopback
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
    /// (see [`crate::cgroup`]); set by `play`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroup::PodCgroup>,
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
    /// Its postStart and preStop hooks (see [`crate::lifecycle`]).
    #[serde(default)]
    pub hooks: crate::lifecycle::Hooks,
    /// Its startup, liveness and readiness probes (see [`crate::probe`]).
    #[serde(
        default,
        skip_serializing_if = "crate::probe::ContainerProbes::is_empty"
    )]
    pub probes: crate::probe::ContainerProbes,
    /// Its resources as cgroup values, applied when the pod has a cgroup.
    #[serde(default)]
    pub limits: crate::cgroup::ContainerLimits,
    /// `terminationMessagePath` and `terminationMessagePolicy` (see [`crate::termination`]).
    #[serde(default)]
    pub termination_message: crate::termination::TerminationMessage,
    /// `stdin`, `stdinOnce` and `tty` (see [`crate::attach`]).
    #[serde(default)]
    pub stdio: crate::attach::Stdio,
    /// Its security context (see [`crate::security`]).
    #[serde(default)]
    pub security: crate::security::ContainerSecurity,
}

impl Plan {
    pub fn read(runtime_dir: &Path) -> Result<Plan, PodError> {
        let path = runtime_dir.join(PLAN_FILE);
        let bytes = std::fs::read(&path)
            .map_err(PodError::io(format!("cannot read {}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| PodError::msg(format!("{} is damaged: {e}", path.display())))
    }

    pub fn write(&self) -> Result<(), PodError> {
        let json = serde_json::to_vec_pretty(self).expect("plan serializes");
        crate::write_atomic(&self.runtime_dir.join(PLAN_FILE), &json)
    }

    /// The container's directories: `containers/<name>/{bundle,upper,work}`.
    pub fn container_dir(&self, container: &str) -> PathBuf {
        self.data_dir.join("containers").join(container)
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

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// The container's pull policy: as written, else Kubernetes' default (`Always` for a
/// `:latest` or untagged image, `IfNotPresent` otherwise). `index` is the container's index,
/// for the message of an invalid value.
pub fn pull_policy(container: &Container, field: &str) -> Result<PullPolicy, PodError> {
    match container.image_pull_policy.as_deref() {
        Some("Always") => Ok(PullPolicy::Always),
        Some("IfNotPresent") => Ok(PullPolicy::IfNotPresent),
        Some("Never") => Ok(PullPolicy::Never),
        Some(other) => Err(PodError::msg(format!(
            "{field}.imagePullPolicy: unsupported value `{other}` (expected Always, IfNotPresent or Never)"
        ))),
        None => {
            let image = container.image.as_deref().unwrap_or_default();
            Ok(if image_is_latest(image) {
                PullPolicy::Always
            } else {
                PullPolicy::IfNotPresent
            })
        }
    }
}

/// Whether `image` has no digest and no tag, or the tag `latest`.
pub fn image_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

/// The ConfigMaps and Secrets of the manifest, for podrun-process.
struct ManifestObjects<'a>(&'a Manifest);

impl Objects for ManifestObjects<'_> {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.0.config_map_data(name)
    }
    fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.0.secret_entries(name)
    }
}

/// An image's files, looked up in its layer directories top-down. A whiteout (a 0:0
/// character device) hides the file of the layers below.
pub struct LayerFiles<'a>(pub &'a [PathBuf]);

impl ImageFiles for LayerFiles<'_> {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileTypeExt;
        let relative = path.trim_start_matches('/');
        for layer in self.0 {
            let candidate = layer.join(relative);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.is_file() => return std::fs::read(&candidate).ok(),
                Ok(meta) if meta.file_type().is_char_device() => return None,
                Ok(_) => return None,
                Err(_) => continue,
            }
        }
        None
    }
}

/// A new pod uid (random, UUID-shaped like Kubernetes').
pub fn new_uid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Works out the plan of `pod`. `images` gives the store record of every image the pod's
/// containers name (as written in the manifest); they must all be in the store.
/// `network` is the pod's network (see [`crate::network::plan`]), for the pod IP the
/// downward API reports. `seccomp_dir` holds the `Localhost` seccomp profiles.
pub fn build(
    pod: &PodManifest,
    manifest: &Manifest,
    store: &Store,
    images: &BTreeMap<String, ImageRecord>,
    dirs: &PodDirs,
    network: &podrun_network::NetworkPlan,
    seccomp_dir: &Path,
) -> Result<Plan, PodError> {
    let name = pod.name().to_string();
    let namespace = pod.namespace().to_string();
    let who = format!("pod `{}`", crate::display_name(&namespace, &name));
    let spec = pod
        .pod
        .spec
        .as_ref()
        .ok_or_else(|| PodError::msg(format!("{who}: spec: Required value")))?;
    let uid = pod
        .pod
        .metadata
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(new_uid);
    let runtime_dir = dirs.runtime_dir(&namespace, &name);
    let data_dir = dirs.data_dir(&namespace, &name);
    let volume_dirs = VolumeDirs {
        data_dir: &data_dir,
        runtime_dir: &runtime_dir,
    };
    let fields = crate::node::pod_fields(&uid, network.backend, &dirs.data_root);
    let volumes = crate::volumes::plan(
        &pod.pod,
        manifest,
        &fields,
        &volume_dirs,
        &format!("{}: {who}", pod.source),
    )?;
    let objects = ManifestObjects(manifest);
    let mut containers = Vec::new();
    let mut init_containers = Vec::new();
    let init = spec.init_containers.iter().flatten().enumerate();
    let all = init
        .map(|(i, c)| (true, format!("spec.initContainers[{i}]"), c))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (false, format!("spec.containers[{i}]"), c)),
        );
    for (is_init, field, container) in all {
        let image = container.image.clone().unwrap_or_default();
        let record = images.get(&image).ok_or_else(|| {
            PodError::msg(format!(
                "{who}: container `{}`: image `{image}` is not in the store",
                container.name
            ))
        })?;
        let mut lower_dirs = Vec::new();
        for layer in record.layers.iter().rev() {
            let digest: Digest = layer.digest.parse().map_err(|e| {
                PodError::msg(format!("image `{image}`: layer {}: {e}", layer.digest))
            })?;
            lower_dirs.push(store.layer_dir(&digest));
        }
        let config_digest: Digest = record
            .config_digest
            .parse()
            .map_err(|e| PodError::msg(format!("image `{image}`: config: {e}")))?;
        let config_bytes = store
            .read_blob(&config_digest)
            .map_err(|e| PodError::msg(format!("image `{image}`: cannot read its config: {e}")))?;
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| PodError::msg(format!("image `{image}`: invalid config: {e}")))?;
        let process = podrun_process::resolve(
            &pod.pod,
            container,
            config.config().as_ref(),
            &objects,
            &fields,
            &LayerFiles(&lower_dirs),
        )
        .map_err(|e| PodError::msg(format!("{who}: {e}")))?;
        let mounts = crate::volumes::container_mounts(
            &volumes,
            spec.volumes.as_deref().unwrap_or_default(),
            container.volume_mounts.as_deref().unwrap_or_default(),
            &volume_dirs,
            &field,
        )
        .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?;
        let hooks = crate::lifecycle::plan(container, &field)
            .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?;
        let image_stop_signal = config
            .config()
            .as_ref()
            .and_then(|c| c.stop_signal().clone())
            .filter(|s| !s.is_empty());
        let target = if is_init {
            &mut init_containers
        } else {
            &mut containers
        };
        target.push(ContainerPlan {
            name: container.name.clone(),
            stdio: crate::attach::Stdio::plan(container),
            image,
            lower_dirs,
            args: process.args,
            env: crate::attach::Stdio::plan(container).environment(process.env),
            cwd: process.cwd,
            uid: process.user.uid,
            gid: process.user.gid,
            additional_gids: process.user.additional_gids,
            mounts,
            stop_signal: hooks.stop_signal.clone().or(image_stop_signal),
            sidecar: is_init && container.restart_policy.as_deref() == Some("Always"),
            hooks,
            probes: crate::probe::spec::container_probes(container, &field)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
            limits: crate::cgroup::ContainerLimits::of(container)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
            termination_message: crate::termination::plan(container, &field)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
            security: crate::security::plan_container(spec, container, &field, seccomp_dir)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
        });
    }
    let (security, warnings) =
        crate::security::plan_pod(spec, network.backend == podrun_network::Backend::Host)
            .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?;
    for warning in warnings {
        tracing::warn!("{}: {who}: {warning}", pod.source);
    }
    for container in containers.iter().chain(&init_containers) {
        if container.security.privileged {
            tracing::warn!(
                "{}: {who}: container `{}`: {}",
                pod.source,
                container.name,
                crate::security::PRIVILEGED_NOTICE
            );
        }
    }
    let grace = spec
        .termination_grace_period_seconds
        .map(|s| s.max(0) as u64)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    let names = crate::dns::hostname(&pod.pod, "spec")
        .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?;
    Ok(Plan {
        hostname: names.kernel.clone(),
        namespace,
        name,
        uid,
        labels: pod.pod.metadata.labels.clone().unwrap_or_default(),
        annotations: pod.pod.metadata.annotations.clone().unwrap_or_default(),
        share_process_namespace: spec.share_process_namespace == Some(true),
        restart_policy: spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into()),
        termination_grace_period_seconds: grace,
        active_deadline_seconds: spec.active_deadline_seconds.map(|s| s.max(1) as u64),
        dns: crate::dns::plan(spec, &names, "spec")
            .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
        runtime_dir,
        data_dir,
        volumes,
        security,
        containers,
        init_containers,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        // Set by crate::network::apply from the manifest and play's options.
        network: Default::default(),
        ports: Vec::new(),
        log_max_size: default_log_max_size(),
        cgroup: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn latest_images_default_to_always() {
        assert!(image_is_latest("busybox"));
        assert!(image_is_latest("busybox:latest"));
        assert!(image_is_latest("127.0.0.1:5000/x/busybox"));
        assert!(!image_is_latest("127.0.0.1:5000/x/busybox:1.35"));
        assert!(!image_is_latest("nginx:1.23"));
        assert!(!image_is_latest("nginx@sha256:abcd"));
    }

    #[test]
    fn layer_files_top_down_with_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        let base = dir.path().join("base");
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(base.join("etc/passwd"), "base").unwrap();
        std::fs::write(base.join("etc/group"), "g").unwrap();
        std::fs::write(top.join("etc/passwd"), "top").unwrap();
        let layers = [top, base];
        let files = LayerFiles(&layers);
        assert_eq!(files.read("/etc/passwd").unwrap(), b"top");
        assert_eq!(files.read("/etc/group").unwrap(), b"g");
        assert!(files.read("/etc/shadow").is_none());
        assert_eq!(new_uid().len(), 36);
    }
}
