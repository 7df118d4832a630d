//! podrun manifests: Kubernetes YAML turned into validated, typed pods.
//!
//! `podrun play pod.yaml` hands a file (or `-` for stdin) to [`load_path`]. The file may hold
//! one or many YAML documents (`---`). These kinds are read into the `k8s-openapi` types, so
//! field names and types are exactly Kubernetes':
//!
//! - `Pod` (v1): one pod;
//! - the workloads, whose pod template becomes pods named and labelled as Kubernetes'
//!   controllers name them ([`PodManifest::owner`]): `Deployment` (apps/v1; `replicas` pods
//!   `<name>-<pod-template-hash>-<5 random>`, label `pod-template-hash`), `ReplicaSet`
//!   (apps/v1; `replicas` pods `<name>-<5 random>`), `DaemonSet` (apps/v1; one pod
//!   `<name>-<5 random>`: one node), `StatefulSet` (apps/v1; `replicas` pods `<name>-0`, …
//!   with their hostname, subdomain and ordinal, started in order unless
//!   `podManagementPolicy: Parallel`) and `Job` (batch/v1; pods `<name>-<5 random>`,
//!   label `job-name`: the first `parallelism` of them here, the others made by the Job's
//!   controller; its own fields in [`Manifest::jobs`]);
//! - `Service` (v1): validated as the API server does, in [`Manifest::services`];
//! - `ConfigMap` and `Secret` (v1): what the pods' volumes and environment read;
//! - `PersistentVolumeClaim` (v1): a named volume of podrun's, in [`Manifest::claims`], with
//!   the claims a StatefulSet's `volumeClaimTemplates` make for its pods (`<template>-<pod>`).
//!
//! `CronJob` is refused (podrun runs no schedules); other kinds are ignored with a warning.
//!
//! Loading runs in this order and collects every problem it can before giving up:
//!
//! 1. YAML syntax ([`ManifestError::Parse`], the only error that stops at the first problem,
//!    since the rest of the stream cannot be read reliably after it);
//! 2. `apiVersion`/`kind` of every document, then the typed deserialization of the
//!    supported kinds (type errors carry line and column);
//! 3. unknown fields (silently dropped by `k8s-openapi`, reported here) and fields podrun
//!    does not support yet ([`supported`]), both warnings unless [`LoadOptions::strict`];
//! 4. validation of the pods against Kubernetes' rules and against the ConfigMaps and
//!    Secrets of the same file.
//!
//! Every message names the file, the document (1-based) and the field path, Kubernetes
//! style: `pod.yaml: document 2: spec.containers[1].image: Required value`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

pub use k8s_openapi;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};

pub mod hostname;
mod load;
#[cfg(test)]
mod schema;
mod security;
pub mod supported;
mod validate;

#[cfg(test)]
mod tests;

/// How a manifest is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Unknown fields and fields podrun does not support yet are errors instead of warnings.
    pub strict: bool,
    /// The namespace of the objects that name none (kubectl's `-n`; `default` when `None`).
    /// An object that names another is an error, as kubectl has it.
    pub namespace: Option<String>,
}

/// Where an object came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    /// The path as given; stdin (`-`) is shown as `<stdin>`.
    pub file: String,
    /// The 1-based number of the YAML document in the file (empty documents count).
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)
    }
}

/// The kinds of workload whose pod template podrun runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
    Job,
}

impl WorkloadKind {
    /// The kind as Kubernetes spells it: `Deployment`, `ReplicaSet`, `DaemonSet`,
    /// `StatefulSet`, `Job`.
    pub fn name(&self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::Job => "Job",
        }
    }

    /// kubectl's short name of the kind: `deploy`, `rs`, `ds`, `sts`, `job`.
    pub fn short(&self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deploy",
            WorkloadKind::ReplicaSet => "rs",
            WorkloadKind::DaemonSet => "ds",
            WorkloadKind::StatefulSet => "sts",
            WorkloadKind::Job => "job",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The workload a pod belongs to (what Kubernetes records in `ownerReferences`; for a
/// Deployment, the Deployment rather than its ReplicaSet).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub kind: WorkloadKind,
    /// The workload's `metadata.name`.
    pub name: String,
}

/// One pod to run: a Pod document, or one of the pods of a workload's pod template.
#[derive(Debug, Clone, PartialEq)]
pub struct PodManifest {
    pub source: Source,
    /// The kind of the document the pod came from: `Pod`, `Deployment`, `DaemonSet`,
    /// `ReplicaSet`, `StatefulSet` or `Job`.
    pub kind: String,
    /// The workload the pod belongs to; `None` for a Pod document.
    pub owner: Option<Owner>,
    /// A StatefulSet pod's ordinal (the `N` of `<name>-N`); `None` for other pods.
    pub ordinal: Option<u32>,
    /// A StatefulSet pod of `podManagementPolicy: OrderedReady` (the default): the pods of
    /// its StatefulSet are started one by one, in ordinal order, each once the one before
    /// it is ready. False for every other pod.
    pub ordered: bool,
    /// The pod. `spec` is always `Some`, `metadata.name` is set and `metadata.namespace` is
    /// filled in (`default` unless the file says otherwise). For a workload, the name is
    /// the pod's as the workload's controller makes it, the namespace the workload's, and
    /// the labels and annotations the template's plus the controller's labels
    /// (`pod-template-hash`, `job-name`, `statefulset.kubernetes.io/pod-name`, …).
    pub pod: Pod,
}

impl PodManifest {
    /// The pod's name (`metadata.name`).
    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    /// The pod's namespace (`metadata.namespace`, `default` unless set).
    pub fn namespace(&self) -> &str {
        self.pod
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// The namespace of objects whose metadata names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A Service of the file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceManifest {
    pub source: Source,
    /// The Service, with `metadata.namespace` filled in as for pods, `status` dropped, and
    /// the API server's defaults applied: `spec` is `Some`, `spec.type` is set
    /// (`ClusterIP` unless given), `spec.clusterIP` is set (`""` when none was given: one
    /// is to be allocated; `None` for a headless Service; taken from `clusterIPs` when only
    /// that was given), and every port has its `protocol` (`TCP` unless given) and
    /// `targetPort` (the `port` unless given).
    pub service: Service,
}

impl ServiceManifest {
    /// The Service's name (`metadata.name`).
    pub fn name(&self) -> &str {
        self.service.metadata.name.as_deref().unwrap_or_default()
    }

    /// The Service's namespace (`metadata.namespace`, `default` unless set).
    pub fn namespace(&self) -> &str {
        self.service
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// A PersistentVolumeClaim of the file, or one that a StatefulSet's `volumeClaimTemplates`
/// make for one of its pods, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimManifest {
    pub source: Source,
    /// The claim, with `metadata.name` set, `metadata.namespace` filled in as for pods and
    /// `status` dropped.
    pub claim: PersistentVolumeClaim,
    /// The StatefulSet whose template made the claim; `None` for a PersistentVolumeClaim
    /// document.
    pub owner: Option<Owner>,
}

impl ClaimManifest {
    /// The claim's name (`metadata.name`).
    pub fn name(&self) -> &str {
        self.claim.metadata.name.as_deref().unwrap_or_default()
    }

    /// The claim's namespace (`metadata.namespace`, `default` unless set).
    pub fn namespace(&self) -> &str {
        self.claim
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE)
    }

    /// `spec.resources.requests.storage`, as written.
    pub fn storage(&self) -> Option<&str> {
        let spec = self.claim.spec.as_ref()?;
        let requests = spec.resources.as_ref()?.requests.as_ref()?;
        requests.get("storage").map(|q| q.0.as_str())
    }

    /// `spec.accessModes`.
    pub fn access_modes(&self) -> Vec<String> {
        let spec = self.claim.spec.as_ref();
        spec.and_then(|s| s.access_modes.clone())
            .unwrap_or_default()
    }

    /// `spec.storageClassName`.
    pub fn storage_class(&self) -> Option<&str> {
        let spec = self.claim.spec.as_ref()?;
        spec.storage_class_name.as_deref()
    }
}

/// `backoffLimit` when a Job gives none.
pub const DEFAULT_BACKOFF_LIMIT: u32 = 6;

/// A Job of the file, as its controller runs it: [`Manifest::pods`] holds the pods `play`
/// starts (as many as `parallelism` allows, at most `completions`); the Job's controller
/// starts the others from the same template ([`job_pod_name`] names them).
#[derive(Debug, Clone, PartialEq)]
pub struct JobManifest {
    pub source: Source,
    pub name: String,
    pub namespace: String,
    /// `completions`; `None` (with `parallelism`): a work queue, done when one pod succeeded.
    pub completions: Option<u32>,
    /// `parallelism` (1 unless given).
    pub parallelism: u32,
    /// `backoffLimit` ([`DEFAULT_BACKOFF_LIMIT`] unless given).
    pub backoff_limit: u32,
    pub active_deadline_seconds: Option<u64>,
}

/// A new name for a pod of Job `job`: `<job>-<5 random>`, as Kubernetes' Job controller
/// names them.
pub fn job_pod_name(job: &str) -> String {
    load::generated_name(&format!("{job}-"))
}

/// Everything podrun takes from one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    /// The pods, in file order (a workload's in the order of their creation: a
    /// StatefulSet's by ordinal).
    pub pods: Vec<PodManifest>,
    /// The Services, in file order.
    pub services: Vec<ServiceManifest>,
    /// The ConfigMaps of the file, by `metadata.name`.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// The Secrets of the file, by `metadata.name`.
    pub secrets: BTreeMap<String, Secret>,
    /// The PersistentVolumeClaims of the file, in file order, then those of the
    /// StatefulSets' `volumeClaimTemplates` (one per template and pod).
    pub claims: Vec<ClaimManifest>,
    /// The Jobs of the file, in file order.
    pub jobs: Vec<JobManifest>,
    /// Warnings ready to print, each naming file, document and (where there is one) path.
    pub warnings: Vec<String>,
}

impl Manifest {
    /// The claim `name` of `namespace`, if the file defines it (or a StatefulSet's template
    /// makes it).
    pub fn claim(&self, namespace: &str, name: &str) -> Option<&ClaimManifest> {
        self.claims
            .iter()
            .find(|c| c.namespace() == namespace && c.name() == name)
    }

    /// The value of `key` in ConfigMap `name`: from `data` (as UTF-8 bytes) or `binaryData`.
    pub fn config_map_value(&self, name: &str, key: &str) -> Option<Vec<u8>> {
        config_map_value(self.config_maps.get(name)?, key)
    }

    /// The value of `key` in Secret `name`: from `stringData` (which wins, as in Kubernetes)
    /// or `data` (base64-decoded).
    pub fn secret_value(&self, name: &str, key: &str) -> Option<Vec<u8>> {
        secret_value(self.secrets.get(name)?, key)
    }

    /// The registry logins of `pod`'s `imagePullSecrets`: the `auths` entries of its Secrets
    /// of type `kubernetes.io/dockerconfigjson` (a docker `config.json`), by registry; the
    /// first Secret that names a registry wins. Secrets missing from the file or of another
    /// type were reported as warnings by the loader, and give nothing here.
    pub fn pull_secret_auths(&self, pod: &PodManifest) -> BTreeMap<String, serde_json::Value> {
        let mut auths = BTreeMap::new();
        let names = pod
            .pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten());
        for reference in names {
            let Some(secret) = self.secrets.get(&reference.name) else {
                continue;
            };
            if secret.type_.as_deref() != Some(validate::DOCKER_CONFIG_JSON_TYPE) {
                continue;
            }
            let config = secret_value(secret, validate::DOCKER_CONFIG_JSON_KEY)
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
            let entries = config
                .as_ref()
                .and_then(|c| c.get("auths"))
                .and_then(|a| a.as_object());
            for (registry, entry) in entries.into_iter().flatten() {
                auths
                    .entry(registry.clone())
                    .or_insert_with(|| entry.clone());
            }
        }
        auths
    }

    /// The `data` of ConfigMap `name`, sorted: what env and envFrom read (the kubelet does not
    /// put `binaryData` in the environment).
    pub fn config_map_data(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.config_maps.get(name)?;
        Some(
            cm.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// All keys of ConfigMap `name` with their values (`data` and `binaryData`), sorted.
    pub fn config_map_entries(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.config_maps.get(name)?;
        let mut out = BTreeMap::new();
        for (k, v) in cm.binary_data.iter().flatten() {
            out.insert(k.clone(), v.0.clone());
        }
        for (k, v) in cm.data.iter().flatten() {
            out.insert(k.clone(), v.as_bytes().to_vec());
        }
        Some(out)
    }

    /// All keys of Secret `name` with their values (`data` and `stringData`), sorted.
    pub fn secret_entries(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let secret = self.secrets.get(name)?;
        let mut out = BTreeMap::new();
        for (k, v) in secret.data.iter().flatten() {
            out.insert(k.clone(), v.0.clone());
        }
        for (k, v) in secret.string_data.iter().flatten() {
            out.insert(k.clone(), v.as_bytes().to_vec());
        }
        Some(out)
    }
}

pub(crate) fn config_map_value(cm: &ConfigMap, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = cm.data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.as_bytes().to_vec());
    }
    cm.binary_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
}

pub(crate) fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = secret.string_data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.as_bytes().to_vec());
    }
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file (or stdin) could not be read, or is not UTF-8.
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The YAML itself is malformed. Nothing after it in the file is read.
    #[error("{file}: document {document}: {}{message}", location_prefix(*.line, *.column))]
    Parse {
        file: String,
        /// 1-based document number.
        document: usize,
        /// 1-based line in the file, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        message: String,
    },
    /// The file is well-formed YAML but not a valid set of pods: type errors, unsupported
    /// `apiVersion`/`kind` pairs, failed validation, and (strict mode) unknown or unsupported
    /// fields. Every problem found is listed, one per line.
    #[error("{}", errors.join("\n"))]
    Invalid { errors: Vec<String> },
    /// The file holds no Pod and no workload with a pod template. (A workload of
    /// `replicas: 0` counts: the file loads, with no pod of it.)
    #[error("{file}: no Pod, Deployment, ReplicaSet, DaemonSet, StatefulSet or Job found")]
    NoPods { file: String },
}

fn location_prefix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l} column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// Loads the manifest at `path`; `-` reads stdin (and is shown as `<stdin>` in messages).
pub fn load_path(path: &str, options: &LoadOptions) -> Result<Manifest, ManifestError> {
    let (label, read) = if path == "-" {
        let mut text = String::new();
        let read = std::io::stdin().lock().read_to_string(&mut text);
        ("<stdin>", read.map(|_| text))
    } else {
        (path, std::fs::read_to_string(path))
    };
    let text = read.map_err(|source| ManifestError::Read {
        file: label.to_string(),
        source,
    })?;
    load_str(label, &text, options)
}

/// Loads a manifest from `text`; `file_label` names it in messages and in [`Source::file`].
pub fn load_str(
    file_label: &str,
    text: &str,
    options: &LoadOptions,
) -> Result<Manifest, ManifestError> {
    load::load(file_label, text, options)
}
