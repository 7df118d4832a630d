//! Validation of pods, ConfigMaps and Secrets against Kubernetes' rules (the subset that
//! matters to podrun) and against each other. Messages follow kubectl's wording:
//! `<path>: Required value`, `<path>: Invalid value: "x": <why>`, `Duplicate value`,
//! `Unsupported value`, `Not found`, `Forbidden`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, ObjectFieldSelector, Pod, PodSpec,
    ResourceFieldSelector, Secret, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::load::{Candidate, Diag, Kind};

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const CONFIG_KEY_MAX: usize = 253;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Why `s` is not an RFC 1123 label (container, volume, namespace names), if it is not.
/// `dnsPolicy`: one of Kubernetes' values; `None` needs a `dnsConfig` with a nameserver.
fn dns_policy(diag: &mut Diag, doc: usize, prefix: &str, spec: &PodSpec) {
    match spec.dns_policy.as_deref() {
        None | Some("ClusterFirst" | "ClusterFirstWithHostNet" | "Default") => {}
        Some("None") => {
            let servers = spec
                .dns_config
                .as_ref()
                .and_then(|c| c.nameservers.as_ref());
            if servers.is_none_or(|s| s.is_empty()) {
                diag.error(
                    doc,
                    &format!("{prefix}.dnsConfig.nameservers"),
                    "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
                );
            }
        }
        Some(other) => diag.error(
            doc,
            &format!("{prefix}.dnsPolicy"),
            unsupported_value(
                other,
                &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
            ),
        ),
    }
}

pub(crate) fn dns_label_error(s: &str) -> Option<String> {
    if s.len() > DNS1123_LABEL_MAX {
        return Some(format!(
            "Invalid value: {s:?}: must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_label(s) {
        return Some(format!(
            "Invalid value: {s:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ));
    }
    None
}

/// Why `s` is not an RFC 1123 subdomain (object names), if it is not.
pub(crate) fn dns_subdomain_error(s: &str) -> Option<String> {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return Some(format!(
            "Invalid value: {s:?}: must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !s.split('.').all(is_label) {
        return Some(format!(
            "Invalid value: {s:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ));
    }
    None
}

/// Why `s` is not a valid ConfigMap/Secret key, if it is not. Keys become file names in
/// volumes, so this also keeps them from escaping the volume.
pub(crate) fn config_key_error(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("Required value".to_string());
    }
    if s.len() > CONFIG_KEY_MAX {
        return Some(format!(
            "Invalid value: {s:?}: must be no more than {CONFIG_KEY_MAX} characters"
        ));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Some(format!(
            "Invalid value: {s:?}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', or 'KEY_NAME', or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        ));
    }
    if s == "." || s == ".." {
        return Some(format!("Invalid value: {s:?}: must not be '{s}'"));
    }
    if s.starts_with("..") {
        return Some(format!("Invalid value: {s:?}: must not start with '..'"));
    }
    None
}

/// Why `s` is not a relative path staying below its base (`subPath`, `items[].path`).
pub(crate) fn relative_path_error(s: &str) -> Option<String> {
    if s.starts_with('/') {
        return Some(format!("Invalid value: {s:?}: must be a relative path"));
    }
    if s.split(['/', '\\']).any(|part| part == "..") {
        return Some(format!("Invalid value: {s:?}: must not contain '..'"));
    }
    None
}

pub(crate) fn unsupported_value(value: &str, supported: &[&str]) -> String {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "Unsupported value: {value:?}: supported values: {}",
        list.join(", ")
    )
}

// The downward API's `fieldPath`s and resources, and the env-name rule: the lists and rule
// `podrun_process` applies when it builds a container's environment.
use podrun_process::env::{is_env_name, ENV_FIELD_PATHS, RESOURCE_FIELDS, VOLUME_FIELD_PATHS};

const CPU_DIVISORS: &[&str] = &["1m", "1"];
const BYTE_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];
const MAX_FILE_MODE: i32 = 0o777;

const ENV_NAME_RULE: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// A downward API `fieldRef` at `path` (`env`: for an env variable, else a volume file).
fn field_ref(diag: &mut Diag, doc: usize, path: &str, selector: &ObjectFieldSelector, env: bool) {
    if let Some(version) = selector.api_version.as_deref() {
        if !version.is_empty() && version != "v1" {
            diag.error(
                doc,
                &format!("{path}.apiVersion"),
                unsupported_value(version, &["v1"]),
            );
        }
    }
    let field = selector.field_path.as_str();
    let keyed = ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .find_map(|p| field.strip_prefix(p)?.strip_suffix("']"));
    let list = if env {
        ENV_FIELD_PATHS
    } else {
        VOLUME_FIELD_PATHS
    };
    if field.is_empty() {
        diag.error(doc, &format!("{path}.fieldPath"), "Required value");
    } else if let Some(key) = keyed {
        if key.is_empty() || key.contains('\'') {
            diag.error(
                doc,
                &format!("{path}.fieldPath"),
                format_args!("Invalid value: {field:?}: not a label or annotation key"),
            );
        }
    } else if !list.contains(&field) {
        let mut supported = list.to_vec();
        supported.extend(["metadata.labels['KEY']", "metadata.annotations['KEY']"]);
        diag.error(
            doc,
            &format!("{path}.fieldPath"),
            unsupported_value(field, &supported),
        );
    }
}

/// A downward API `resourceFieldRef` at `path`; `containers` are the pod's container names
/// (`containerName` is required in volumes, optional in env).
fn resource_field_ref(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    selector: &ResourceFieldSelector,
    containers: &BTreeSet<&str>,
    env: bool,
) {
    match selector.container_name.as_deref().filter(|n| !n.is_empty()) {
        None if !env => diag.error(doc, &format!("{path}.containerName"), "Required value"),
        None => {}
        Some(name) if !containers.contains(name) => diag.error(
            doc,
            &format!("{path}.containerName"),
            format_args!("Not found: {name:?}: no container of that name in the pod"),
        ),
        Some(_) => {}
    }
    let resource = selector.resource.as_str();
    if resource.is_empty() {
        diag.error(doc, &format!("{path}.resource"), "Required value");
        return;
    }
    if !RESOURCE_FIELDS.contains(&resource) {
        diag.error(
            doc,
            &format!("{path}.resource"),
            unsupported_value(resource, RESOURCE_FIELDS),
        );
        return;
    }
    if let Some(divisor) = selector.divisor.as_ref().map(|d| d.0.as_str()) {
        let valid = if resource.ends_with(".cpu") {
            CPU_DIVISORS
        } else {
            BYTE_DIVISORS
        };
        if !valid.contains(&divisor) && divisor != "0" {
            diag.error(
                doc,
                &format!("{path}.divisor"),
                unsupported_value(divisor, valid),
            );
        }
    }
}

/// A file `mode` or `defaultMode` at `path`: 0 to 0777.
fn file_mode(diag: &mut Diag, doc: usize, path: &str, mode: Option<i32>) {
    if let Some(mode) = mode.filter(|m| !(0..=MAX_FILE_MODE).contains(m)) {
        diag.error(
            doc,
            path,
            format_args!(
                "Invalid value: {mode}: must be a number between 0 and 0777 (octal), both inclusive"
            ),
        );
    }
}

/// The items of a downwardAPI volume or projection.
fn downward_items(
    diag: &mut Diag,
    doc: usize,
    base: &str,
    items: &[DownwardAPIVolumeFile],
    containers: &BTreeSet<&str>,
) {
    for (j, item) in items.iter().enumerate() {
        let item_path = format!("{base}.items[{j}]");
        if item.path.is_empty() {
            diag.error(doc, &format!("{item_path}.path"), "Required value");
        } else if let Some(e) = relative_path_error(&item.path) {
            diag.error(doc, &format!("{item_path}.path"), e);
        }
        file_mode(diag, doc, &format!("{item_path}.mode"), item.mode);
        match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), None) => field_ref(diag, doc, &format!("{item_path}.fieldRef"), f, false),
            (None, Some(r)) => resource_field_ref(
                diag,
                doc,
                &format!("{item_path}.resourceFieldRef"),
                r,
                containers,
                false,
            ),
            (Some(_), Some(_)) => diag.error(
                doc,
                &item_path,
                "Invalid value: fieldRef and resourceFieldRef can not be specified simultaneously",
            ),
            (None, None) => diag.error(
                doc,
                &item_path,
                "Required value: one of fieldRef and resourceFieldRef is required",
            ),
        }
    }
}

/// `metadata.name` (required, an RFC 1123 subdomain; `generateName` is not supported) and
/// `metadata.namespace` (an RFC 1123 label when set).
pub(crate) fn object_name(diag: &mut Diag, doc: usize, kind: &str, meta: &ObjectMeta) {
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => {
            if meta.generate_name.as_deref().is_some_and(|g| !g.is_empty()) {
                diag.error(
                    doc,
                    "metadata.name",
                    format_args!(
                        "Required value: generateName is not supported by podrun; give the {kind} a name"
                    ),
                );
            } else {
                diag.error(doc, "metadata.name", "Required value: name is required");
            }
        }
        Some(name) => {
            if let Some(e) = dns_subdomain_error(name) {
                diag.error(doc, "metadata.name", e);
            }
        }
    }
    if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
        if let Some(e) = dns_label_error(ns) {
            diag.error(doc, "metadata.namespace", e);
        }
    }
}

pub(crate) fn config_map(diag: &mut Diag, doc: usize, cm: &ConfigMap) {
    object_name(diag, doc, "ConfigMap", &cm.metadata);
    for key in cm.data.iter().flat_map(|d| d.keys()) {
        if let Some(e) = config_key_error(key) {
            diag.error(doc, &format!("data[{key}]"), e);
        }
    }
    for key in cm.binary_data.iter().flat_map(|d| d.keys()) {
        if let Some(e) = config_key_error(key) {
            diag.error(doc, &format!("binaryData[{key}]"), e);
        } else if cm.data.as_ref().is_some_and(|d| d.contains_key(key)) {
            diag.error(
                doc,
                &format!("binaryData[{key}]"),
                format_args!("Invalid value: {key:?}: duplicate of key present in data"),
            );
        }
    }
}

/// The Secret type podrun reads for `imagePullSecrets`, and its one key.
pub(crate) const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub(crate) const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

pub(crate) fn secret(diag: &mut Diag, doc: usize, secret: &Secret) {
    object_name(diag, doc, "Secret", &secret.metadata);
    if secret.type_.as_deref() == Some(DOCKER_CONFIG_JSON_TYPE) {
        let path = format!("data[{DOCKER_CONFIG_JSON_KEY}]");
        match crate::secret_value(secret, DOCKER_CONFIG_JSON_KEY) {
            None => diag.error(doc, &path, "Required value"),
            Some(bytes) => {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    diag.error(
                        doc,
                        &path,
                        format_args!("Invalid value: \"<secret contents redacted>\": {e}"),
                    );
                }
            }
        }
    }
    for key in secret.data.iter().flat_map(|d| d.keys()) {
        if let Some(e) = config_key_error(key) {
            diag.error(doc, &format!("data[{key}]"), e);
        }
    }
    for key in secret.string_data.iter().flat_map(|d| d.keys()) {
        if let Some(e) = config_key_error(key) {
            diag.error(doc, &format!("stringData[{key}]"), e);
        }
    }
}

/// The ConfigMaps and Secrets of the file, for references.
struct Refs<'a> {
    config_maps: &'a BTreeMap<String, ConfigMap>,
    secrets: &'a BTreeMap<String, Secret>,
}

#[derive(Clone, Copy)]
enum RefKind {
    ConfigMap,
    Secret,
}

impl RefKind {
    fn name(self) -> &'static str {
        match self {
            RefKind::ConfigMap => "ConfigMap",
            RefKind::Secret => "Secret",
        }
    }
}

impl Refs<'_> {
    /// `Some(has_key)` when the object exists.
    fn has_key(&self, kind: RefKind, name: &str, key: &str) -> Option<bool> {
        match kind {
            RefKind::ConfigMap => self.config_maps.get(name).map(|cm| {
                cm.data.as_ref().is_some_and(|d| d.contains_key(key))
                    || cm.binary_data.as_ref().is_some_and(|d| d.contains_key(key))
            }),
            RefKind::Secret => self.secrets.get(name).map(|s| {
                s.data.as_ref().is_some_and(|d| d.contains_key(key))
                    || s.string_data.as_ref().is_some_and(|d| d.contains_key(key))
            }),
        }
    }

    /// Whether ConfigMap `name` has `key` in `binaryData` but not in `data`.
    fn only_binary(&self, name: &str, key: &str) -> bool {
        self.config_maps.get(name).is_some_and(|cm| {
            cm.binary_data.as_ref().is_some_and(|d| d.contains_key(key))
                && !cm.data.as_ref().is_some_and(|d| d.contains_key(key))
        })
    }

    fn exists(&self, kind: RefKind, name: &str) -> bool {
        match kind {
            RefKind::ConfigMap => self.config_maps.contains_key(name),
            RefKind::Secret => self.secrets.contains_key(name),
        }
    }

    /// Checks a reference to object `name` at `name_path`; false when it is missing (or
    /// unnamed), so that keys are not checked.
    fn check_object(
        &self,
        diag: &mut Diag,
        doc: usize,
        kind: RefKind,
        name_path: &str,
        name: Option<&str>,
        optional: bool,
    ) -> bool {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            diag.error(doc, name_path, "Required value");
            return false;
        };
        if self.exists(kind, name) {
            return true;
        }
        if !optional {
            let file = diag.file;
            diag.error(
                doc,
                name_path,
                format_args!(
                    "Not found: {name:?}: no {} of that name in {file} (set optional: true if it may be missing)",
                    kind.name(),
                ),
            );
        }
        false
    }

    /// Checks `key` of an existing object.
    #[allow(clippy::too_many_arguments)]
    fn check_key(
        &self,
        diag: &mut Diag,
        doc: usize,
        kind: RefKind,
        name: &str,
        key_path: &str,
        key: &str,
        optional: bool,
    ) {
        if key.is_empty() {
            diag.error(doc, key_path, "Required value");
            return;
        }
        if self.has_key(kind, name, key) == Some(false) && !optional {
            diag.error(
                doc,
                key_path,
                format_args!(
                    "Not found: {key:?}: {} {name:?} has no such key",
                    kind.name()
                ),
            );
        }
    }
}

/// `hostname` and `subdomain` (DNS-1123 labels, as the API server checks them), and, as
/// the kubelet refuses it, a `setHostnameAsFQDN` FQDN longer than a kernel hostname.
fn hostname(diag: &mut Diag, doc: usize, prefix: &str, pod: &Pod, spec: &PodSpec) {
    let mut labels_valid = true;
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(e) = value
            .as_deref()
            .filter(|v| !v.is_empty())
            .and_then(dns_label_error)
        {
            diag.error(doc, &format!("{prefix}.{field}"), e);
            labels_valid = false;
        }
    }
    // Not for a pod on the host's network: it has the host's hostname.
    if labels_valid && spec.host_network != Some(true) {
        if let Err(e) = crate::hostname::pod_hostname(pod) {
            diag.error(doc, &format!("{prefix}.setHostnameAsFQDN"), e);
        }
    }
}

/// Validates one pod (a Pod document or a workload's pod template).
pub(crate) fn pod(
    diag: &mut Diag,
    candidate: &Candidate,
    config_maps: &BTreeMap<String, ConfigMap>,
    secrets: &BTreeMap<String, Secret>,
) {
    let Some(spec) = candidate.pod.spec.as_ref() else {
        return;
    };
    let refs = Refs {
        config_maps,
        secrets,
    };
    let doc = candidate.source.document;
    let prefix = if candidate.kind.is_workload() {
        "spec.template.spec"
    } else {
        "spec"
    };
    restart_policy(diag, doc, candidate.kind, prefix, spec);
    if let Some(grace) = spec.termination_grace_period_seconds {
        if grace < 0 {
            diag.error(
                doc,
                &format!("{prefix}.terminationGracePeriodSeconds"),
                format_args!("Invalid value: {grace}: must be greater than or equal to 0"),
            );
        }
    }
    if let Some(deadline) = spec.active_deadline_seconds.filter(|d| *d < 1) {
        diag.error(
            doc,
            &format!("{prefix}.activeDeadlineSeconds"),
            format_args!("Invalid value: {deadline}: must be greater than or equal to 1"),
        );
    }
    dns_policy(diag, doc, prefix, spec);
    crate::security::pod(diag, doc, prefix, spec);
    hostname(diag, doc, prefix, &candidate.pod, spec);
    os(diag, doc, prefix, spec);

    image_pull_secrets(diag, doc, prefix, spec, secrets);
    let all_containers: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let mut volume_names = BTreeSet::new();
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let path = format!("{prefix}.volumes[{i}]");
        self::volume(diag, doc, &path, volume, &refs, &all_containers);
        if !volume.name.is_empty() && !volume_names.insert(volume.name.as_str()) {
            diag.error(
                doc,
                &format!("{path}.name"),
                format_args!("Duplicate value: {:?}", volume.name),
            );
        }
    }

    if spec.containers.is_empty() {
        diag.error(doc, &format!("{prefix}.containers"), "Required value");
    }
    let mut container_names = BTreeSet::new();
    let mut host_ports: BTreeSet<(i32, String, String)> = BTreeSet::new();
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("{prefix}.initContainers[{i}]"), c, true))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{prefix}.containers[{i}]"), c, false)),
        );
    for (path, c, init) in all {
        container(
            diag,
            doc,
            &path,
            c,
            init,
            &volume_names,
            &refs,
            &all_containers,
        );
        unique_host_ports(diag, doc, &path, c, &mut host_ports);
        if !c.name.is_empty() && !container_names.insert(c.name.as_str()) {
            diag.error(
                doc,
                &format!("{path}.name"),
                format_args!("Duplicate value: {:?}", c.name),
            );
        }
    }
}

/// `os.name`: one of the API server's values. A pod for Windows is refused, as a Linux
/// node's kubelet refuses it (admission: `PodOSNotSupported`); `linux` changes nothing.
fn os(diag: &mut Diag, doc: usize, prefix: &str, spec: &PodSpec) {
    let Some(os) = &spec.os else {
        return;
    };
    let field = format!("{prefix}.os.name");
    match os.name.as_str() {
        "linux" => {}
        "" => diag.error(doc, &field, "Required value"),
        "windows" => diag.error(
            doc,
            &field,
            "Invalid value: \"windows\": the pod is for Windows nodes, and podrun runs Linux containers (a Linux node's kubelet rejects such a pod)",
        ),
        other => diag.error(doc, &field, unsupported_value(other, &["linux", "windows"])),
    }
}

/// `imagePullSecrets` name Secrets of the same file, of type kubernetes.io/dockerconfigjson.
/// As on a cluster, one that cannot be used is no error: the pull goes on without it, so
/// this warns.
fn image_pull_secrets(
    diag: &mut Diag,
    doc: usize,
    prefix: &str,
    spec: &PodSpec,
    secrets: &BTreeMap<String, Secret>,
) {
    for (i, reference) in spec.image_pull_secrets.iter().flatten().enumerate() {
        let path = format!("{prefix}.imagePullSecrets[{i}].name");
        let name = reference.name.as_str();
        if name.is_empty() {
            diag.error(doc, &path, "Required value");
            continue;
        }
        let file = diag.file;
        match secrets.get(name) {
            None => diag.warn(
                doc,
                &path,
                format_args!(
                    "Secret {name:?} is not in {file}; images are pulled with your registry logins only"
                ),
            ),
            Some(secret) if secret.type_.as_deref() != Some(DOCKER_CONFIG_JSON_TYPE) => diag
                .warn(
                    doc,
                    &path,
                    format_args!(
                        "Secret {name:?} is of type {:?}, not {DOCKER_CONFIG_JSON_TYPE:?}; it is not used for pulls",
                        secret.type_.as_deref().unwrap_or("Opaque")
                    ),
                ),
            Some(_) => {}
        }
    }
}

fn restart_policy(diag: &mut Diag, doc: usize, kind: Kind, prefix: &str, spec: &PodSpec) {
    let path = format!("{prefix}.restartPolicy");
    let policy = spec.restart_policy.as_deref().filter(|p| !p.is_empty());
    let supported: &[&str] = match kind {
        Kind::Job => &["OnFailure", "Never"],
        k if k.is_workload() => &["Always"],
        _ => RESTART_POLICIES,
    };
    match policy {
        None if kind == Kind::Job => diag.error(
            doc,
            &path,
            "Required value: a Job's pod template needs restartPolicy \"OnFailure\" or \"Never\"",
        ),
        None => {}
        Some(p) if !supported.contains(&p) => {
            diag.error(doc, &path, unsupported_value(p, supported))
        }
        Some(_) => {}
    }
}

fn volume(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    volume: &Volume,
    refs: &Refs,
    containers: &BTreeSet<&str>,
) {
    if volume.name.is_empty() {
        diag.error(doc, &format!("{path}.name"), "Required value");
    } else if let Some(e) = dns_label_error(&volume.name) {
        diag.error(doc, &format!("{path}.name"), e);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(volume) {
        let sources: Vec<&String> = map.keys().filter(|k| *k != "name").collect();
        if sources.len() > 1 {
            let name = sources.last().map(|s| s.as_str()).unwrap_or_default();
            diag.error(
                doc,
                &format!("{path}.{name}"),
                "Forbidden: may not specify more than 1 volume type",
            );
        }
    }
    if let Some(host) = &volume.host_path {
        if host.path.is_empty() {
            diag.error(doc, &format!("{path}.hostPath.path"), "Required value");
        } else if host.path.split('/').any(|p| p == "..") {
            diag.error(
                doc,
                &format!("{path}.hostPath.path"),
                format_args!("Invalid value: {:?}: must not contain '..'", host.path),
            );
        }
        if let Some(t) = host.type_.as_deref() {
            if !HOST_PATH_TYPES.contains(&t) {
                diag.error(
                    doc,
                    &format!("{path}.hostPath.type"),
                    unsupported_value(t, &HOST_PATH_TYPES[1..]),
                );
            }
        }
    }
    if let Some(cm) = &volume.config_map {
        let base = format!("{path}.configMap");
        let optional = cm.optional.unwrap_or(false);
        let found = refs.check_object(
            diag,
            doc,
            RefKind::ConfigMap,
            &format!("{base}.name"),
            Some(&cm.name),
            optional,
        );
        items(
            diag,
            doc,
            &base,
            cm.items.as_deref(),
            refs,
            RefKind::ConfigMap,
            found.then_some(cm.name.as_str()),
            optional,
        );
    }
    if let Some(secret) = &volume.secret {
        let base = format!("{path}.secret");
        let optional = secret.optional.unwrap_or(false);
        let found = refs.check_object(
            diag,
            doc,
            RefKind::Secret,
            &format!("{base}.secretName"),
            secret.secret_name.as_deref(),
            optional,
        );
        let name = secret.secret_name.as_deref().filter(|_| found);
        items(
            diag,
            doc,
            &base,
            secret.items.as_deref(),
            refs,
            RefKind::Secret,
            name,
            optional,
        );
        file_mode(
            diag,
            doc,
            &format!("{base}.defaultMode"),
            secret.default_mode,
        );
    }
    if let Some(cm) = &volume.config_map {
        file_mode(
            diag,
            doc,
            &format!("{path}.configMap.defaultMode"),
            cm.default_mode,
        );
    }
    if let Some(downward) = &volume.downward_api {
        let base = format!("{path}.downwardAPI");
        file_mode(
            diag,
            doc,
            &format!("{base}.defaultMode"),
            downward.default_mode,
        );
        downward_items(
            diag,
            doc,
            &base,
            downward.items.as_deref().unwrap_or_default(),
            containers,
        );
    }
    if let Some(projected) = &volume.projected {
        projected_volume(
            diag,
            doc,
            &format!("{path}.projected"),
            projected,
            refs,
            containers,
        );
    }
}

/// A projected volume: configMap, secret and downwardAPI sources; the sources that need an
/// API server are refused by name.
fn projected_volume(
    diag: &mut Diag,
    doc: usize,
    base: &str,
    projected: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    refs: &Refs,
    containers: &BTreeSet<&str>,
) {
    file_mode(
        diag,
        doc,
        &format!("{base}.defaultMode"),
        projected.default_mode,
    );
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for (k, source) in projected.sources.iter().flatten().enumerate() {
        let source_path = format!("{base}.sources[{k}]");
        let refused = [
            (
                "serviceAccountToken",
                source.service_account_token.is_some(),
            ),
            ("clusterTrustBundle", source.cluster_trust_bundle.is_some()),
            ("podCertificate", source.pod_certificate.is_some()),
        ];
        for (name, _) in refused.iter().filter(|(_, set)| *set) {
            diag.error(
                doc,
                &format!("{source_path}.{name}"),
                "Forbidden: not supported by podrun: it is issued by a cluster's API server, which podrun does not have",
            );
        }
        let count = [
            source.config_map.is_some(),
            source.secret.is_some(),
            source.downward_api.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count()
            + refused.iter().filter(|(_, set)| *set).count();
        if count > 1 {
            diag.error(
                doc,
                &source_path,
                "Forbidden: may not specify more than 1 volume type per source",
            );
        }
        if count == 0 {
            diag.error(
                doc,
                &source_path,
                "Required value: must specify exactly 1 volume type",
            );
        }
        let mut item_paths: Vec<&str> = Vec::new();
        if let Some(cm) = &source.config_map {
            let sub = format!("{source_path}.configMap");
            let optional = cm.optional.unwrap_or(false);
            let found = refs.check_object(
                diag,
                doc,
                RefKind::ConfigMap,
                &format!("{sub}.name"),
                Some(&cm.name),
                optional,
            );
            items(
                diag,
                doc,
                &sub,
                cm.items.as_deref(),
                refs,
                RefKind::ConfigMap,
                found.then_some(cm.name.as_str()),
                optional,
            );
            item_paths.extend(cm.items.iter().flatten().map(|i| i.path.as_str()));
        }
        if let Some(secret) = &source.secret {
            let sub = format!("{source_path}.secret");
            let optional = secret.optional.unwrap_or(false);
            let found = refs.check_object(
                diag,
                doc,
                RefKind::Secret,
                &format!("{sub}.name"),
                Some(&secret.name),
                optional,
            );
            items(
                diag,
                doc,
                &sub,
                secret.items.as_deref(),
                refs,
                RefKind::Secret,
                found.then_some(secret.name.as_str()),
                optional,
            );
            item_paths.extend(secret.items.iter().flatten().map(|i| i.path.as_str()));
        }
        if let Some(downward) = &source.downward_api {
            let items = downward.items.as_deref().unwrap_or_default();
            downward_items(
                diag,
                doc,
                &format!("{source_path}.downwardAPI"),
                items,
                containers,
            );
            item_paths.extend(items.iter().map(|i| i.path.as_str()));
        }
        for item_path in item_paths.into_iter().filter(|p| !p.is_empty()) {
            if !paths.insert(item_path.to_string()) {
                diag.error(
                    doc,
                    &source_path,
                    format_args!("Invalid value: {item_path:?}: conflicting duplicate paths"),
                );
            }
        }
    }
}

/// `items` of a configMap/secret volume; `name` is the referred object when it exists.
#[allow(clippy::too_many_arguments)]
fn items(
    diag: &mut Diag,
    doc: usize,
    base: &str,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    refs: &Refs,
    kind: RefKind,
    name: Option<&str>,
    optional: bool,
) {
    for (j, item) in items.into_iter().flatten().enumerate() {
        let item_path = format!("{base}.items[{j}]");
        match name {
            Some(name) => refs.check_key(
                diag,
                doc,
                kind,
                name,
                &format!("{item_path}.key"),
                &item.key,
                optional,
            ),
            None if item.key.is_empty() => {
                diag.error(doc, &format!("{item_path}.key"), "Required value")
            }
            None => {}
        }
        if item.path.is_empty() {
            diag.error(doc, &format!("{item_path}.path"), "Required value");
        } else if let Some(e) = relative_path_error(&item.path) {
            diag.error(doc, &format!("{item_path}.path"), e);
        }
    }
}

/// A hostPort may be used once per protocol and host IP in the pod (Kubernetes' rule).
fn unique_host_ports(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    c: &Container,
    seen: &mut BTreeSet<(i32, String, String)>,
) {
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
            continue;
        };
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
        let host_ip = port.host_ip.clone().unwrap_or_default();
        if !seen.insert((host_port, protocol.clone(), host_ip)) {
            diag.error(
                doc,
                &format!("{path}.ports[{j}].hostPort"),
                format_args!("Duplicate value: \"{host_port}/{protocol}\""),
            );
        }
    }
}

/// Why `s` is not an IANA service name (a port's `name`), if it is not.
fn port_name_error(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let why = if s.len() > 15 {
        "must be no more than 15 characters"
    } else if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    } else if !b.iter().any(|c| c.is_ascii_lowercase()) {
        "must contain at least one letter (a-z)"
    } else if s.contains("--") {
        "must not contain consecutive hyphens"
    } else if s.starts_with('-') || s.ends_with('-') {
        "must not begin or end with a hyphen"
    } else {
        return None;
    };
    Some(format!("Invalid value: {s:?}: {why}"))
}

#[allow(clippy::too_many_arguments)]
fn container(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    c: &Container,
    init: bool,
    volumes: &BTreeSet<&str>,
    refs: &Refs,
    containers: &BTreeSet<&str>,
) {
    if c.name.is_empty() {
        diag.error(doc, &format!("{path}.name"), "Required value");
    } else if let Some(e) = dns_label_error(&c.name) {
        diag.error(doc, &format!("{path}.name"), e);
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        diag.error(doc, &format!("{path}.image"), "Required value");
    }
    if let Some(p) = c.image_pull_policy.as_deref() {
        if !PULL_POLICIES.contains(&p) {
            diag.error(
                doc,
                &format!("{path}.imagePullPolicy"),
                unsupported_value(p, PULL_POLICIES),
            );
        }
    }
    if init {
        if let Some(p) = c.restart_policy.as_deref() {
            if p != "Always" {
                diag.error(
                    doc,
                    &format!("{path}.restartPolicy"),
                    unsupported_value(p, &["Always"]),
                );
            }
        }
    }

    let mut port_names = BTreeSet::new();
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let port_path = format!("{path}.ports[{j}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            if let Some(e) = port_name_error(name) {
                diag.error(doc, &format!("{port_path}.name"), e);
            } else if !port_names.insert(name) {
                diag.error(
                    doc,
                    &format!("{port_path}.name"),
                    format_args!("Duplicate value: {name:?}"),
                );
            }
        }
        if !(1..=65535).contains(&port.container_port) {
            diag.error(
                doc,
                &format!("{port_path}.containerPort"),
                format_args!(
                    "Invalid value: {}: must be between 1 and 65535, inclusive",
                    port.container_port
                ),
            );
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            if !(1..=65535).contains(&host_port) {
                diag.error(
                    doc,
                    &format!("{port_path}.hostPort"),
                    format_args!(
                        "Invalid value: {host_port}: must be between 1 and 65535, inclusive"
                    ),
                );
            }
        }
        if let Some(proto) = port.protocol.as_deref() {
            if !PROTOCOLS.contains(&proto) {
                diag.error(
                    doc,
                    &format!("{port_path}.protocol"),
                    unsupported_value(proto, PROTOCOLS),
                );
            }
        }
    }

    for (j, env) in c.env.iter().flatten().enumerate() {
        let env_path = format!("{path}.env[{j}]");
        if env.name.is_empty() {
            diag.error(doc, &format!("{env_path}.name"), "Required value");
        } else if !is_env_name(&env.name) {
            diag.error(
                doc,
                &format!("{env_path}.name"),
                format_args!("Invalid value: {:?}: {ENV_NAME_RULE}", env.name),
            );
        }
        let Some(from) = &env.value_from else {
            continue;
        };
        if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
            diag.error(
                doc,
                &format!("{env_path}.valueFrom"),
                "Invalid value: \"\": may not be specified when `value` is not empty",
            );
        }
        if let Some(f) = &from.field_ref {
            field_ref(
                diag,
                doc,
                &format!("{env_path}.valueFrom.fieldRef"),
                f,
                true,
            );
        }
        if let Some(r) = &from.resource_field_ref {
            resource_field_ref(
                diag,
                doc,
                &format!("{env_path}.valueFrom.resourceFieldRef"),
                r,
                containers,
                true,
            );
        }
        if let Some(sel) = &from.config_map_key_ref {
            let base = format!("{env_path}.valueFrom.configMapKeyRef");
            let optional = sel.optional.unwrap_or(false);
            if refs.check_object(
                diag,
                doc,
                RefKind::ConfigMap,
                &format!("{base}.name"),
                Some(&sel.name),
                optional,
            ) {
                refs.check_key(
                    diag,
                    doc,
                    RefKind::ConfigMap,
                    &sel.name,
                    &format!("{base}.key"),
                    &sel.key,
                    optional,
                );
                if refs.only_binary(&sel.name, &sel.key) && !optional {
                    diag.error(
                        doc,
                        &format!("{base}.key"),
                        format_args!(
                            "Invalid value: {:?}: the key is in binaryData, which the environment cannot hold (only data is read, as by the kubelet)",
                            sel.key
                        ),
                    );
                }
            }
        }
        if let Some(sel) = &from.secret_key_ref {
            let base = format!("{env_path}.valueFrom.secretKeyRef");
            let optional = sel.optional.unwrap_or(false);
            if refs.check_object(
                diag,
                doc,
                RefKind::Secret,
                &format!("{base}.name"),
                Some(&sel.name),
                optional,
            ) {
                refs.check_key(
                    diag,
                    doc,
                    RefKind::Secret,
                    &sel.name,
                    &format!("{base}.key"),
                    &sel.key,
                    optional,
                );
            }
        }
    }

    for (j, from) in c.env_from.iter().flatten().enumerate() {
        let from_path = format!("{path}.envFrom[{j}]");
        if let Some(prefix) = from.prefix.as_deref().filter(|p| !is_env_name(p)) {
            if !prefix.is_empty() {
                diag.error(
                    doc,
                    &format!("{from_path}.prefix"),
                    format_args!("Invalid value: {prefix:?}: {ENV_NAME_RULE}"),
                );
            }
        }
        if let Some(r) = &from.config_map_ref {
            refs.check_object(
                diag,
                doc,
                RefKind::ConfigMap,
                &format!("{from_path}.configMapRef.name"),
                Some(&r.name),
                r.optional.unwrap_or(false),
            );
        }
        if let Some(r) = &from.secret_ref {
            refs.check_object(
                diag,
                doc,
                RefKind::Secret,
                &format!("{from_path}.secretRef.name"),
                Some(&r.name),
                r.optional.unwrap_or(false),
            );
        }
    }

    let mut mount_paths = BTreeSet::new();
    for (j, mount) in c.volume_mounts.iter().flatten().enumerate() {
        let mount_path = format!("{path}.volumeMounts[{j}]");
        if mount.name.is_empty() {
            diag.error(doc, &format!("{mount_path}.name"), "Required value");
        } else if !volumes.contains(mount.name.as_str()) {
            diag.error(
                doc,
                &format!("{mount_path}.name"),
                format_args!(
                    "Not found: {:?}: no volume of that name in the pod",
                    mount.name
                ),
            );
        }
        if mount.mount_path.is_empty() {
            diag.error(doc, &format!("{mount_path}.mountPath"), "Required value");
        } else {
            let normalized = normalize_mount_path(&mount.mount_path);
            if !mount_paths.insert(normalized) {
                diag.error(
                    doc,
                    &format!("{mount_path}.mountPath"),
                    format_args!("Invalid value: {:?}: must be unique", mount.mount_path),
                );
            }
        }
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if let Some(e) = relative_path_error(sub) {
                diag.error(doc, &format!("{mount_path}.subPath"), e);
            }
        }
    }
}

/// `/var//log/` and `/var/log` are the same mount point.
fn normalize_mount_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(dns_label_error("web").is_none());
        assert!(dns_label_error("a-1").is_none());
        assert!(dns_label_error("1a").is_none());
        for bad in ["", "Web", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(dns_label_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn subdomains() {
        assert!(dns_subdomain_error("pod-network").is_none());
        assert!(dns_subdomain_error("a.b-c.d").is_none());
        for bad in ["", "A", "a..b", ".a", "a.", "a_b", &"a".repeat(254)] {
            assert!(dns_subdomain_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn config_keys() {
        for good in ["a", "KEY_NAME", "key.name", "key-name", ".hidden", "a..b"] {
            assert!(config_key_error(good).is_none(), "{good:?}");
        }
        for bad in ["", ".", "..", "..a", "a/b", "a b", "ä"] {
            assert!(config_key_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths() {
        for good in ["a", "a/b", "a..b", "./a", "a/.b"] {
            assert!(relative_path_error(good).is_none(), "{good:?}");
        }
        for bad in ["/a", "..", "../a", "a/../b", "a/..", "a\\..\\b"] {
            assert!(relative_path_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn mount_paths_normalize() {
        assert_eq!(normalize_mount_path("/var//log/"), "/var/log");
        assert_eq!(normalize_mount_path("/var/./log"), "/var/log");
        assert_eq!(normalize_mount_path("/"), "/");
    }
}
