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

mod containers;
mod fields;
mod labels;
mod volumes;

pub(crate) use containers::port_name_error;
use containers::{container, unique_host_ports};
use fields::*;
pub(crate) use labels::{label_key_errors, label_value_errors};
use volumes::volume;

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

#[cfg(test)]
mod tests {
    use super::*;
    use containers::normalize_mount_path;

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
