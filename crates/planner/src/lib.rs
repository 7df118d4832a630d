//! The planner: a pod of a manifest, with its images in the store and `podrun play`'s
//! options, becomes a [`Plan`] (`plan.json`): everything the supervisor needs, so that it
//! reads no manifest, store index or image config. Pure but for reading the store and the
//! host's facts; one module per feature, each with the checks of its fields.
//!
//! * [`build`]: the whole plan; [`pull_policy`]: which images `play` must pull first;
//!   [`check::check`]: the plan-time checks that need no image (`podrun validate`).
//! * [`volumes`], [`dns`], [`security`], [`cgroup`], [`network`], [`hooks`], [`probes`],
//!   [`termination`]: each feature's part of the plan, from its fields; [`services`]: the
//!   file's Services for the shared network, and their variables in the pods.
//! * [`node`]: the host's facts for the downward API; [`ids`]: the plan's ids against the
//!   user's subordinate ranges.

pub mod cgroup;
pub mod check;
pub mod dns;
pub mod hooks;
pub mod ids;
pub mod network;
pub mod node;
pub mod probes;
pub mod security;
pub mod services;
pub mod termination;
pub mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podrun_manifest::k8s_openapi::api::core::v1::Container;
use podrun_manifest::{Manifest, PodManifest};
use podrun_pod_model::plan::stdio::Stdio;
use podrun_pod_model::plan::{
    ContainerPlan, Controller, Plan, RestartPolicy, DEFAULT_GRACE_SECONDS,
};
use podrun_pod_model::{PodDirs, PodError};
use podrun_process::{ImageFiles, Objects};
use podrun_store::{Digest, ImageRecord, Store};

pub const PLAN_FILE: &str = "plan.json";

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

/// A container's `stdin`, `stdinOnce` and `tty`.
pub fn stdio(container: &Container) -> Stdio {
    Stdio {
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
    }
}

/// `restartPolicy` (Kubernetes' default: Always).
fn restart_policy(
    text: Option<&str>,
    who: &str,
    source: &impl std::fmt::Display,
) -> Result<RestartPolicy, PodError> {
    match text {
        None | Some("") => Ok(RestartPolicy::Always),
        Some(text) => RestartPolicy::parse(text).ok_or_else(|| {
            PodError::msg(format!(
                "{source}: {who}: spec.restartPolicy: unsupported value `{text}` (expected Always, OnFailure or Never)"
            ))
        }),
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
/// downward API reports. `seccomp_dir` holds the `Localhost` seccomp profiles. `services`
/// are the Services that exist as the pod starts (their variables go into its containers).
#[allow(clippy::too_many_arguments)]
pub fn build(
    pod: &PodManifest,
    manifest: &Manifest,
    store: &Store,
    images: &BTreeMap<String, ImageRecord>,
    dirs: &PodDirs,
    network: &podrun_network::NetworkPlan,
    seccomp_dir: &Path,
    services: &[podrun_podnet::cluster::ServiceRecord],
) -> Result<Plan, PodError> {
    let name = pod.name().to_string();
    let namespace = pod.namespace().to_string();
    let who = format!(
        "pod `{}`",
        podrun_pod_model::display_name(&namespace, &name)
    );
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
    let layout = dirs.pod(&namespace, &name);
    let mut fields = node::pod_fields(&uid, network.backend, &dirs.data_root);
    if spec.enable_service_links != Some(false) {
        fields.service_env = services::environment(services, &namespace);
    }
    let volumes = volumes::plan(
        pod,
        manifest,
        &fields,
        &layout,
        &dirs.volumes(),
        &format!("{}: {who}", pod.source),
    )?;
    let objects = ManifestObjects(manifest);
    // On the host's network (`hostNetwork`, or `play --network host` without it) the pod
    // shares the host's UTS namespace, so its containers see the host's hostname.
    let kernel_hostname = if network.backend == podrun_network::Backend::Host {
        fields.node_name.clone()
    } else {
        podrun_process::hostname::kernel_hostname(&pod.pod, &fields.node_name)
    };
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
        let process = podrun_process::resolve_with_hostname(
            &pod.pod,
            container,
            config.config().as_ref(),
            &objects,
            &fields,
            &LayerFiles(&lower_dirs),
            &kernel_hostname,
        )
        .map_err(|e| PodError::msg(format!("{who}: {e}")))?;
        let mounts = volumes::container_mounts(
            &volumes,
            spec.volumes.as_deref().unwrap_or_default(),
            container.volume_mounts.as_deref().unwrap_or_default(),
            &layout,
            &field,
        )
        .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?;
        let hooks = hooks::plan(container, &field)
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
            stdio: stdio(container),
            image,
            lower_dirs,
            args: process.args,
            env: stdio(container).environment(process.env),
            cwd: process.cwd,
            uid: process.user.uid,
            gid: process.user.gid,
            additional_gids: process.user.additional_gids,
            mounts,
            stop_signal: hooks.stop_signal.clone().or(image_stop_signal),
            sidecar: is_init && container.restart_policy.as_deref() == Some("Always"),
            hooks,
            probes: probes::container_probes(container, &field)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
            limits: cgroup::container_limits(container)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
            termination_message: termination::plan(container, &field)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
            security: security::plan_container(spec, container, &field, seccomp_dir)
                .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
        });
    }
    let (security, warnings) =
        security::plan_pod(spec, network.backend == podrun_network::Backend::Host)
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
                security::PRIVILEGED_NOTICE
            );
        }
    }
    let grace = spec
        .termination_grace_period_seconds
        .map(|s| s.max(0) as u64)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    let names = dns::hostname(&pod.pod, "spec")
        .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?;
    Ok(Plan {
        hostname: names.kernel.clone(),
        namespace,
        name,
        uid,
        labels: pod.pod.metadata.labels.clone().unwrap_or_default(),
        annotations: pod.pod.metadata.annotations.clone().unwrap_or_default(),
        pod_spec: serde_json::to_value(spec).ok(),
        controller: pod.owner.as_ref().map(|owner| Controller {
            kind: owner.kind.name().to_string(),
            name: owner.name.clone(),
        }),
        share_process_namespace: spec.share_process_namespace == Some(true),
        restart_policy: restart_policy(spec.restart_policy.as_deref(), &who, &pod.source)?,
        termination_grace_period_seconds: grace,
        active_deadline_seconds: spec.active_deadline_seconds.map(|s| s.max(1) as u64),
        dns: dns::plan(spec, &names, "spec")
            .map_err(|e| PodError::msg(format!("{}: {who}: {e}", pod.source)))?,
        runtime_dir: layout.runtime_dir,
        data_dir: layout.data_dir,
        volumes,
        security,
        containers,
        init_containers,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        // Set by network::apply from the manifest and play's options.
        network: Default::default(),
        ports: Vec::new(),
        log_max_size: podrun_config::DEFAULT_LOG_MAX_SIZE,
        cgroup: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
