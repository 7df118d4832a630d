//! Which pod fields podrun supports: a data-driven allow-list over the JSON form of a pod.
//!
//! Paths are written in Kubernetes' field-path style relative to the object they describe
//! (a `PodSpec`, a `Container`, an `ObjectMeta`), with `[*]` standing for every element of
//! a list. Each entry names one leaf field of the API: a value, a list of values
//! (`command`) or a map (`resources.limits`), never an object. So a field that a new API
//! version adds below a supported object (`livenessProbe.httpGet.protocol`) is not let
//! through unnoticed: any field that is set to something other than its default and is not
//! listed here is reported (see [`AllowList::unsupported`]), as a warning, or an error with
//! `--strict`. The fields podrun knows and does not implement are listed too
//! ([`UNSUPPORTED_POD_SPEC_FIELDS`], [`UNSUPPORTED_CONTAINER_FIELDS`],
//! [`UNSUPPORTED_METADATA_FIELDS`]); a unit test walks k8s-openapi's types and fails on a
//! field that is in neither list. A later milestone supports a field by moving it from
//! one list to the other.

use std::sync::LazyLock;

use serde_json::{json, Value};

/// `PodSpec` fields podrun supports, relative to the spec (containers are listed in
/// [`CONTAINER_FIELDS`]).
pub const POD_SPEC_FIELDS: &[&str] = &[
    "volumes[*].name",
    "volumes[*].emptyDir.medium",
    "volumes[*].emptyDir.mode",
    "volumes[*].emptyDir.sizeLimit",
    "volumes[*].hostPath.path",
    "volumes[*].hostPath.type",
    "volumes[*].configMap.name",
    "volumes[*].configMap.items[*].key",
    "volumes[*].configMap.items[*].path",
    "volumes[*].configMap.items[*].mode",
    "volumes[*].configMap.defaultMode",
    "volumes[*].configMap.optional",
    "volumes[*].secret.secretName",
    "volumes[*].secret.items[*].key",
    "volumes[*].secret.items[*].path",
    "volumes[*].secret.items[*].mode",
    "volumes[*].secret.defaultMode",
    "volumes[*].secret.optional",
    "volumes[*].downwardAPI.items[*].path",
    "volumes[*].downwardAPI.items[*].fieldRef.apiVersion",
    "volumes[*].downwardAPI.items[*].fieldRef.fieldPath",
    "volumes[*].downwardAPI.items[*].resourceFieldRef.containerName",
    "volumes[*].downwardAPI.items[*].resourceFieldRef.divisor",
    "volumes[*].downwardAPI.items[*].resourceFieldRef.resource",
    "volumes[*].downwardAPI.items[*].mode",
    "volumes[*].downwardAPI.defaultMode",
    "volumes[*].projected.defaultMode",
    "volumes[*].projected.sources[*].configMap.name",
    "volumes[*].projected.sources[*].configMap.items[*].key",
    "volumes[*].projected.sources[*].configMap.items[*].path",
    "volumes[*].projected.sources[*].configMap.items[*].mode",
    "volumes[*].projected.sources[*].configMap.optional",
    "volumes[*].projected.sources[*].secret.name",
    "volumes[*].projected.sources[*].secret.items[*].key",
    "volumes[*].projected.sources[*].secret.items[*].path",
    "volumes[*].projected.sources[*].secret.items[*].mode",
    "volumes[*].projected.sources[*].secret.optional",
    "volumes[*].projected.sources[*].downwardAPI.items[*].path",
    "volumes[*].projected.sources[*].downwardAPI.items[*].fieldRef.apiVersion",
    "volumes[*].projected.sources[*].downwardAPI.items[*].fieldRef.fieldPath",
    "volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef.containerName",
    "volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef.divisor",
    "volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef.resource",
    "volumes[*].projected.sources[*].downwardAPI.items[*].mode",
    // The named volume of the claim (crates/pod-model's claims), in the pod's namespace.
    "volumes[*].persistentVolumeClaim.claimName",
    "volumes[*].persistentVolumeClaim.readOnly",
    "imagePullSecrets[*].name",
    // The Service variables of the file's Services (podrun_planner::services).
    "enableServiceLinks",
    "serviceAccountName",
    "serviceAccount",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "hostAliases[*].ip",
    "hostAliases[*].hostnames",
    "dnsPolicy",
    "dnsConfig.nameservers",
    "dnsConfig.searches",
    "dnsConfig.options[*].name",
    "dnsConfig.options[*].value",
    "shareProcessNamespace",
    "hostname",
    "subdomain",
    "setHostnameAsFQDN",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.runAsNonRoot",
    "securityContext.supplementalGroups",
    "securityContext.supplementalGroupsPolicy",
    "securityContext.fsGroup",
    "securityContext.fsGroupChangePolicy",
    "securityContext.seccompProfile.type",
    "securityContext.seccompProfile.localhostProfile",
    "securityContext.sysctls[*].name",
    "securityContext.sysctls[*].value",
    "hostNetwork",
    // `linux` is what podrun runs; `windows` is refused, as a Linux node's kubelet does.
    "os.name",
];

/// `PodSpec` fields that are for a cluster's scheduler and mean nothing when the pod runs on
/// this one host: warned (an error with `--strict`) with words that say so.
pub const SCHEDULING_FIELDS: &[&str] = &[
    "nodeSelector",
    "nodeName",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "schedulerName",
    "schedulingGates",
];

/// `PodSpec` fields (relative to the spec; containers in [`UNSUPPORTED_CONTAINER_FIELDS`])
/// that podrun knows and does not implement: warned when set (an error with `--strict`),
/// and some of them refused when the pod is planned (the volume sources podrun has no
/// storage for, per-file owners, the projections only an API server issues). Whole objects
/// may be listed here: any field below them is reported too. Not read when loading (every
/// field not allowed is reported); the schema test holds each field of the API to one list
/// or the other.
pub const UNSUPPORTED_POD_SPEC_FIELDS: &[&str] = &[
    // Scheduling: one host.
    "nodeSelector",
    "nodeName",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "schedulerName",
    "schedulingGates",
    "schedulingGroup",
    // No API server: no service account token, no resource claims, no readiness gates.
    "automountServiceAccountToken",
    "readinessGates",
    "resourceClaims",
    "evictionResponders",
    // The host's namespaces (but the network), runtime classes, pod-level resources.
    "hostIPC",
    "hostPID",
    "hostUsers",
    "hostnameOverride",
    "runtimeClassName",
    "overhead",
    "resources",
    "ephemeralContainers",
    "securityContext.seLinuxOptions",
    "securityContext.seLinuxChangePolicy",
    "securityContext.appArmorProfile",
    "securityContext.windowsOptions",
    // Volumes: per-file owners, projections only an API server issues, and sources podrun
    // has no storage for.
    "volumes[*].configMap.defaultUser",
    "volumes[*].configMap.items[*].user",
    "volumes[*].secret.defaultUser",
    "volumes[*].secret.items[*].user",
    "volumes[*].downwardAPI.defaultUser",
    "volumes[*].downwardAPI.items[*].user",
    "volumes[*].projected.defaultUser",
    "volumes[*].projected.sources[*].configMap.items[*].user",
    "volumes[*].projected.sources[*].secret.items[*].user",
    "volumes[*].projected.sources[*].downwardAPI.items[*].user",
    "volumes[*].projected.sources[*].serviceAccountToken",
    "volumes[*].projected.sources[*].clusterTrustBundle",
    "volumes[*].projected.sources[*].podCertificate",
    "volumes[*].awsElasticBlockStore",
    "volumes[*].azureDisk",
    "volumes[*].azureFile",
    "volumes[*].cephfs",
    "volumes[*].cinder",
    "volumes[*].csi",
    "volumes[*].ephemeral",
    "volumes[*].fc",
    "volumes[*].flexVolume",
    "volumes[*].flocker",
    "volumes[*].gcePersistentDisk",
    "volumes[*].gitRepo",
    "volumes[*].glusterfs",
    "volumes[*].image",
    "volumes[*].iscsi",
    "volumes[*].nfs",
    "volumes[*].photonPersistentDisk",
    "volumes[*].portworxVolume",
    "volumes[*].quobyte",
    "volumes[*].rbd",
    "volumes[*].scaleIO",
    "volumes[*].storageos",
    "volumes[*].vsphereVolume",
];

/// Whether `path` (relative to a `PodSpec`, as [`AllowList::unsupported`] gives it) is a
/// scheduling field or below one.
pub fn is_scheduling_field(path: &str) -> bool {
    let top = path.split(['.', '[']).next().unwrap_or(path);
    SCHEDULING_FIELDS.contains(&top)
}

/// `Container` fields podrun supports, for `containers[*]` and `initContainers[*]`.
pub const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env[*].name",
    "env[*].value",
    "env[*].valueFrom.configMapKeyRef.name",
    "env[*].valueFrom.configMapKeyRef.key",
    "env[*].valueFrom.configMapKeyRef.optional",
    "env[*].valueFrom.secretKeyRef.name",
    "env[*].valueFrom.secretKeyRef.key",
    "env[*].valueFrom.secretKeyRef.optional",
    "env[*].valueFrom.fieldRef.apiVersion",
    "env[*].valueFrom.fieldRef.fieldPath",
    "env[*].valueFrom.resourceFieldRef.containerName",
    "env[*].valueFrom.resourceFieldRef.divisor",
    "env[*].valueFrom.resourceFieldRef.resource",
    "envFrom[*].configMapRef.name",
    "envFrom[*].configMapRef.optional",
    "envFrom[*].secretRef.name",
    "envFrom[*].secretRef.optional",
    "envFrom[*].prefix",
    "volumeMounts[*].name",
    "volumeMounts[*].mountPath",
    "volumeMounts[*].subPath",
    "volumeMounts[*].readOnly",
    "ports[*].containerPort",
    "ports[*].name",
    "ports[*].protocol",
    "ports[*].hostIP",
    "ports[*].hostPort",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.runAsNonRoot",
    "securityContext.capabilities.add",
    "securityContext.capabilities.drop",
    "securityContext.privileged",
    "securityContext.allowPrivilegeEscalation",
    "securityContext.readOnlyRootFilesystem",
    "securityContext.seccompProfile.type",
    "securityContext.seccompProfile.localhostProfile",
    "securityContext.procMount",
    "livenessProbe.exec.command",
    "livenessProbe.httpGet.host",
    "livenessProbe.httpGet.port",
    "livenessProbe.httpGet.path",
    "livenessProbe.httpGet.scheme",
    "livenessProbe.httpGet.httpHeaders[*].name",
    "livenessProbe.httpGet.httpHeaders[*].value",
    "livenessProbe.tcpSocket.host",
    "livenessProbe.tcpSocket.port",
    "livenessProbe.initialDelaySeconds",
    "livenessProbe.periodSeconds",
    "livenessProbe.timeoutSeconds",
    "livenessProbe.successThreshold",
    "livenessProbe.failureThreshold",
    "livenessProbe.terminationGracePeriodSeconds",
    "readinessProbe.exec.command",
    "readinessProbe.httpGet.host",
    "readinessProbe.httpGet.port",
    "readinessProbe.httpGet.path",
    "readinessProbe.httpGet.scheme",
    "readinessProbe.httpGet.httpHeaders[*].name",
    "readinessProbe.httpGet.httpHeaders[*].value",
    "readinessProbe.tcpSocket.host",
    "readinessProbe.tcpSocket.port",
    "readinessProbe.initialDelaySeconds",
    "readinessProbe.periodSeconds",
    "readinessProbe.timeoutSeconds",
    "readinessProbe.successThreshold",
    "readinessProbe.failureThreshold",
    "readinessProbe.terminationGracePeriodSeconds",
    "startupProbe.exec.command",
    "startupProbe.httpGet.host",
    "startupProbe.httpGet.port",
    "startupProbe.httpGet.path",
    "startupProbe.httpGet.scheme",
    "startupProbe.httpGet.httpHeaders[*].name",
    "startupProbe.httpGet.httpHeaders[*].value",
    "startupProbe.tcpSocket.host",
    "startupProbe.tcpSocket.port",
    "startupProbe.initialDelaySeconds",
    "startupProbe.periodSeconds",
    "startupProbe.timeoutSeconds",
    "startupProbe.successThreshold",
    "startupProbe.failureThreshold",
    "startupProbe.terminationGracePeriodSeconds",
    "lifecycle.postStart.exec.command",
    "lifecycle.postStart.httpGet.host",
    "lifecycle.postStart.httpGet.port",
    "lifecycle.postStart.httpGet.path",
    "lifecycle.postStart.httpGet.scheme",
    "lifecycle.postStart.httpGet.httpHeaders[*].name",
    "lifecycle.postStart.httpGet.httpHeaders[*].value",
    "lifecycle.postStart.sleep.seconds",
    "lifecycle.preStop.exec.command",
    "lifecycle.preStop.httpGet.host",
    "lifecycle.preStop.httpGet.port",
    "lifecycle.preStop.httpGet.path",
    "lifecycle.preStop.httpGet.scheme",
    "lifecycle.preStop.httpGet.httpHeaders[*].name",
    "lifecycle.preStop.httpGet.httpHeaders[*].value",
    "lifecycle.preStop.sleep.seconds",
    "lifecycle.stopSignal",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "stdin",
    "stdinOnce",
    "tty",
    // Reported by the downward API; limits enforced in a delegated cgroup v2, else play
    // warns that they are not (podrun_pod::cgroup, docs/kubernetes-compatibility.md).
    "resources.limits",
    "resources.requests",
];

/// `Container` fields supported for `initContainers[*]` only (sidecars).
pub const INIT_CONTAINER_FIELDS: &[&str] = &["restartPolicy"];

/// `Container` fields podrun knows and does not implement (see
/// [`UNSUPPORTED_POD_SPEC_FIELDS`]).
pub const UNSUPPORTED_CONTAINER_FIELDS: &[&str] = &[
    // Only for init containers (INIT_CONTAINER_FIELDS).
    "restartPolicy",
    "restartPolicyRules",
    "resizePolicy",
    "resources.claims",
    "volumeDevices",
    "volumeMounts[*].mountPropagation",
    "volumeMounts[*].recursiveReadOnly",
    "volumeMounts[*].subPathExpr",
    "volumeMounts[*].bindMountOptions",
    "env[*].valueFrom.fileKeyRef",
    "securityContext.seLinuxOptions",
    "securityContext.appArmorProfile",
    "securityContext.windowsOptions",
    // podrun's probes speak HTTP/1.1 (the default) and run no gRPC health checks.
    "livenessProbe.httpGet.protocol",
    "livenessProbe.grpc",
    "readinessProbe.httpGet.protocol",
    "readinessProbe.grpc",
    "startupProbe.httpGet.protocol",
    "startupProbe.grpc",
    // tcpSocket hooks are refused when the pod is planned: Kubernetes never ran them.
    "lifecycle.postStart.httpGet.protocol",
    "lifecycle.postStart.tcpSocket",
    "lifecycle.preStop.httpGet.protocol",
    "lifecycle.preStop.tcpSocket",
];

/// `ObjectMeta` fields podrun supports (pods, workloads and pod templates).
pub const METADATA_FIELDS: &[&str] = &["name", "namespace", "labels", "annotations", "uid"];

/// `ObjectMeta` fields podrun knows and does not implement: what an API server sets or
/// works with (`generateName` needs one to make the name).
pub const UNSUPPORTED_METADATA_FIELDS: &[&str] = &[
    "generateName",
    "finalizers",
    "ownerReferences",
    "managedFields",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "selfLink",
];

/// `ServiceSpec` fields podrun supports, relative to the spec.
pub const SERVICE_SPEC_FIELDS: &[&str] = &[
    "type",
    "selector",
    "clusterIP",
    "clusterIPs",
    "ports[*].name",
    "ports[*].protocol",
    "ports[*].appProtocol",
    "ports[*].port",
    "ports[*].targetPort",
    "ports[*].nodePort",
];

/// `ServiceSpec` fields podrun knows and does not implement: traffic policies, session
/// affinity, addresses and families beyond one IPv4 cluster IP, cloud load balancers, and
/// the name of an ExternalName Service (which is refused as a whole).
pub const UNSUPPORTED_SERVICE_SPEC_FIELDS: &[&str] = &[
    "allocateLoadBalancerNodePorts",
    "externalIPs",
    "externalName",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "internalTrafficPolicy",
    "ipFamilies",
    "ipFamilyPolicy",
    "loadBalancerClass",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "publishNotReadyAddresses",
    "sessionAffinity",
    "sessionAffinityConfig",
    "trafficDistribution",
];

/// `PersistentVolumeClaimSpec` fields podrun supports (PersistentVolumeClaims and a
/// StatefulSet's `volumeClaimTemplates`): the size is recorded, not enforced (a volume is a
/// directory); `volumeMode: Block` is refused when the claim is read.
pub const CLAIM_SPEC_FIELDS: &[&str] = &[
    "accessModes",
    "resources.requests",
    "storageClassName",
    "volumeMode",
];

/// `PersistentVolumeClaimSpec` fields podrun knows and does not implement: binding to a
/// given PersistentVolume, populating from a data source, limits and attribute classes.
pub const UNSUPPORTED_CLAIM_SPEC_FIELDS: &[&str] = &[
    "dataSource",
    "dataSourceRef",
    "resources.limits",
    "selector",
    "volumeAttributesClassName",
    "volumeName",
];

/// The values of unsupported `ServiceSpec` fields that are what podrun does anyway
/// (Kubernetes' defaults, as `kubectl get -o yaml` shows them): no warning for these.
pub fn service_spec_defaults() -> &'static [(&'static str, Value)] {
    static DEFAULTS: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
        vec![
            ("sessionAffinity", json!("None")),
            ("externalTrafficPolicy", json!("Cluster")),
            ("internalTrafficPolicy", json!("Cluster")),
            ("ipFamilies", json!(["IPv4"])),
            ("ipFamilyPolicy", json!("SingleStack")),
            ("allocateLoadBalancerNodePorts", json!(true)),
        ]
    });
    &DEFAULTS
}

/// Values that are Kubernetes' defaults for a field podrun does not support, so that
/// output of `kubectl get -o yaml` does not warn about them. Paths are relative to the
/// `PodSpec`; null, `false`, `0`, `""`, `[]` and `{}` count as defaults everywhere.
pub fn pod_spec_defaults() -> &'static [(&'static str, Value)] {
    static DEFAULTS: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
        vec![
            ("dnsPolicy", json!("ClusterFirst")),
            ("schedulerName", json!("default-scheduler")),
            ("enableServiceLinks", json!(true)),
            ("preemptionPolicy", json!("PreemptLowerPriority")),
            ("serviceAccountName", json!("default")),
            ("serviceAccount", json!("default")),
            (
                "containers[*].volumeMounts[*].mountPropagation",
                json!("None"),
            ),
            (
                "initContainers[*].volumeMounts[*].mountPropagation",
                json!("None"),
            ),
            // What podrun's read-only mounts are: read-only at the mount point only.
            (
                "containers[*].volumeMounts[*].recursiveReadOnly",
                json!("Disabled"),
            ),
            (
                "initContainers[*].volumeMounts[*].recursiveReadOnly",
                json!("Disabled"),
            ),
        ]
    });
    &DEFAULTS
}

/// One allowed path, split into segments: field names and `[*]`.
type Segments = Vec<String>;

fn split(path: &str) -> Segments {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        while let Some(pos) = rest.find("[*]") {
            if pos > 0 {
                out.push(rest[..pos].to_string());
            }
            out.push("[*]".to_string());
            rest = &rest[pos + 3..];
        }
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

/// A set of supported field paths and known default values.
#[derive(Debug, Clone)]
pub struct AllowList {
    allowed: Vec<Segments>,
    defaults: Vec<(Segments, Value)>,
}

enum Verdict {
    /// The path, or an ancestor of it, is allowed.
    Allowed,
    /// Some fields below the path are allowed.
    Partial,
    /// Nothing at or below the path is allowed.
    Unsupported,
}

impl AllowList {
    /// An allow-list from paths (see the module docs) and default values.
    pub fn new<'a>(
        paths: impl IntoIterator<Item = &'a str>,
        defaults: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> AllowList {
        AllowList {
            allowed: paths.into_iter().map(split).collect(),
            defaults: defaults.into_iter().map(|(p, v)| (split(p), v)).collect(),
        }
    }

    /// The allow-list for a `PodSpec`.
    pub fn pod_spec() -> &'static AllowList {
        static LIST: LazyLock<AllowList> = LazyLock::new(|| {
            let mut paths: Vec<String> = POD_SPEC_FIELDS.iter().map(|s| s.to_string()).collect();
            for field in CONTAINER_FIELDS {
                paths.push(format!("containers[*].{field}"));
                paths.push(format!("initContainers[*].{field}"));
            }
            for field in INIT_CONTAINER_FIELDS {
                paths.push(format!("initContainers[*].{field}"));
            }
            AllowList::new(
                paths.iter().map(String::as_str),
                pod_spec_defaults().iter().cloned(),
            )
        });
        &LIST
    }

    /// The allow-list for an `ObjectMeta`.
    pub fn metadata() -> &'static AllowList {
        static LIST: LazyLock<AllowList> =
            LazyLock::new(|| AllowList::new(METADATA_FIELDS.iter().copied(), []));
        &LIST
    }

    /// The allow-list for a `ServiceSpec`.
    pub fn service_spec() -> &'static AllowList {
        static LIST: LazyLock<AllowList> = LazyLock::new(|| {
            AllowList::new(
                SERVICE_SPEC_FIELDS.iter().copied(),
                service_spec_defaults().iter().cloned(),
            )
        });
        &LIST
    }

    /// The allow-list for a `PersistentVolumeClaimSpec`.
    pub fn claim_spec() -> &'static AllowList {
        static LIST: LazyLock<AllowList> =
            LazyLock::new(|| AllowList::new(CLAIM_SPEC_FIELDS.iter().copied(), []));
        &LIST
    }

    /// Whether the field at `path` (generic: `containers[*].ports[*].name`) is allowed.
    pub fn allows(&self, path: &str) -> bool {
        matches!(self.verdict(&split(path)), Verdict::Allowed)
    }

    fn verdict(&self, path: &[String]) -> Verdict {
        let mut partial = false;
        for entry in &self.allowed {
            if entry.len() <= path.len() {
                if path[..entry.len()] == entry[..] {
                    return Verdict::Allowed;
                }
            } else if entry[..path.len()] == path[..] {
                partial = true;
            }
        }
        if partial {
            Verdict::Partial
        } else {
            Verdict::Unsupported
        }
    }

    fn is_default(&self, path: &[String], value: &Value) -> bool {
        if self
            .defaults
            .iter()
            .any(|(p, v)| p[..] == path[..] && v == value)
        {
            return true;
        }
        is_empty(value)
    }

    /// The paths (relative, Kubernetes style: `containers[0].securityContext.privileged`)
    /// of the fields in `value` that are set but not allowed, shallowest first: an
    /// unsupported object is reported once, not field by field.
    pub fn unsupported(&self, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let mut generic = Vec::new();
        self.walk(value, &mut generic, String::new(), &mut out);
        out
    }

    fn walk(&self, value: &Value, generic: &mut Vec<String>, shown: String, out: &mut Vec<String>) {
        let verdict = if generic.is_empty() {
            Verdict::Partial
        } else {
            self.verdict(generic)
        };
        match verdict {
            Verdict::Allowed => {}
            Verdict::Partial => match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        generic.push(key.clone());
                        let child_shown = if shown.is_empty() {
                            key.clone()
                        } else {
                            format!("{shown}.{key}")
                        };
                        self.walk(child, generic, child_shown, out);
                        generic.pop();
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        generic.push("[*]".to_string());
                        self.walk(child, generic, format!("{shown}[{i}]"), out);
                        generic.pop();
                    }
                }
                _ => {
                    if !self.is_default(generic, value) {
                        out.push(shown);
                    }
                }
            },
            Verdict::Unsupported => {
                if !self.is_default(generic, value) {
                    out.push(shown);
                }
            }
        }
    }
}

/// Null, `false`, `0`, `""`, and lists and objects holding only such values.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.iter().all(is_empty),
        Value::Object(map) => map.values().all(is_empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_paths() {
        assert_eq!(
            split("containers[*].env[*].valueFrom.fieldRef"),
            ["containers", "[*]", "env", "[*]", "valueFrom", "fieldRef"]
        );
        assert_eq!(split("hostNetwork"), ["hostNetwork"]);
    }

    #[test]
    fn reports_shallowest_unsupported_field() {
        let list = AllowList::pod_spec();
        let spec = json!({
            "containers": [{
                "name": "a",
                "image": "x",
                "securityContext": {"runAsUser": 1, "privileged": true, "seLinuxOptions": {"level": "s0"}, "appArmorProfile": {"type": "Unconfined"}},
                "env": [{"name": "A", "valueFrom": {"fileKeyRef": {"path": "a", "key": "A", "volumeName": "v"}}}],
                "volumeMounts": [{"name": "v", "mountPath": "/v", "mountPropagation": "None"}]
            }],
            "volumes": [{"name": "v", "nfs": {"server": "s", "path": "/"}}, {"name": "w", "emptyDir": {"medium": "Memory"}}],
            "nodeSelector": {"disk": "ssd"},
            "dnsPolicy": "ClusterFirst",
            "hostIPC": false,
            "tolerations": []
        });
        let mut got = list.unsupported(&spec);
        got.sort();
        assert_eq!(
            got,
            [
                "containers[0].env[0].valueFrom.fileKeyRef",
                "containers[0].securityContext.appArmorProfile",
                "containers[0].securityContext.seLinuxOptions",
                "nodeSelector",
                "volumes[0].nfs",
            ]
        );
    }

    #[test]
    fn restart_policy_only_for_init_containers() {
        let list = AllowList::pod_spec();
        let spec = json!({
            "initContainers": [{"name": "s", "restartPolicy": "Always"}],
            "containers": [{"name": "c", "restartPolicy": "Always"}]
        });
        assert_eq!(list.unsupported(&spec), ["containers[0].restartPolicy"]);
    }

    #[test]
    fn probes_but_grpc() {
        let list = AllowList::pod_spec();
        let spec = json!({
            "containers": [{
                "name": "a",
                "livenessProbe": {"httpGet": {"port": 80, "scheme": "HTTPS", "httpHeaders": [{"name": "X", "value": "y"}]}, "periodSeconds": 1},
                "readinessProbe": {"grpc": {"port": 9090}, "failureThreshold": 2},
                "startupProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 3}
            }]
        });
        assert_eq!(
            list.unsupported(&spec),
            ["containers[0].readinessProbe.grpc"]
        );
    }

    #[test]
    fn scheduling_fields_by_their_top_field() {
        assert!(is_scheduling_field("nodeSelector"));
        assert!(is_scheduling_field("affinity.nodeAffinity"));
        assert!(is_scheduling_field("tolerations[0]"));
        assert!(!is_scheduling_field(
            "containers[0].securityContext.privileged"
        ));
        assert!(!is_scheduling_field("priorityClass"));
    }

    #[test]
    fn metadata_list() {
        let meta =
            json!({"name": "a", "labels": {"x": "y"}, "finalizers": ["f"], "generateName": "a-"});
        let mut got = AllowList::metadata().unsupported(&meta);
        got.sort();
        assert_eq!(got, ["finalizers", "generateName"]);
    }

    /// Whether `entry` is `path` or one of its ancestors.
    fn covers(entry: &str, path: &str) -> bool {
        path.strip_prefix(entry)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    }

    /// What is wrong with the lists of one object (`kind`) against its schema's `leaves`:
    /// a leaf in neither list, an allowed entry that is an object or no field, an
    /// unsupported entry that is no field, a field in both lists (but `exceptions`).
    fn list_problems(
        kind: &str,
        leaves: &[String],
        allowed: &[&str],
        unsupported: &[&str],
        exceptions: &[&str],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for leaf in leaves {
            let is_allowed = allowed.contains(&leaf.as_str());
            let is_unsupported = unsupported.iter().any(|e| covers(e, leaf));
            if !is_allowed && !is_unsupported {
                problems.push(format!(
                    "{kind}: `{leaf}` is a field of the Kubernetes API that neither the allow-list nor the unsupported list of crates/manifest/src/supported.rs names: support it, or list it as unsupported (and in docs/kubernetes-compatibility.md)"
                ));
            }
            if is_allowed && is_unsupported && !exceptions.contains(&leaf.as_str()) {
                problems.push(format!("{kind}: `{leaf}` is both allowed and unsupported"));
            }
        }
        for entry in allowed {
            if leaves.iter().any(|l| l != entry && covers(entry, l)) {
                problems.push(format!(
                    "{kind}: the allow-list entry `{entry}` is an object, which would let any field a new API version adds below it through: list its leaf fields"
                ));
            } else if !leaves.iter().any(|l| l == entry) {
                problems.push(format!(
                    "{kind}: the allow-list entry `{entry}` is no field of the API"
                ));
            }
        }
        for entry in unsupported {
            if !leaves.iter().any(|l| covers(entry, l)) {
                problems.push(format!(
                    "{kind}: the unsupported entry `{entry}` is no field of the API"
                ));
            }
        }
        problems
    }

    fn container_problems(leaves: &[String], allowed: &[&str]) -> Vec<String> {
        list_problems(
            "Container",
            leaves,
            allowed,
            UNSUPPORTED_CONTAINER_FIELDS,
            INIT_CONTAINER_FIELDS,
        )
    }

    fn container_allow_list() -> Vec<&'static str> {
        CONTAINER_FIELDS
            .iter()
            .chain(INIT_CONTAINER_FIELDS)
            .copied()
            .collect()
    }

    /// Every leaf field of k8s-openapi's `PodSpec`, `Container` and `ObjectMeta` is either
    /// allowed or known to be unsupported, and the allow-list names leaves only: a field a
    /// new API version adds fails here until someone decides about it.
    #[test]
    fn every_field_of_the_api_is_allowed_or_known_unsupported() {
        use crate::schema::leaves;
        use k8s_openapi::api::core::v1::{Container, PodSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let container_leaves = leaves::<Container>();
        let mut problems = container_problems(&container_leaves, &container_allow_list());
        let spec_leaves: Vec<String> = leaves::<PodSpec>()
            .into_iter()
            .filter(|l| !covers("containers", l) && !covers("initContainers", l))
            .collect();
        problems.extend(list_problems(
            "PodSpec",
            &spec_leaves,
            POD_SPEC_FIELDS,
            UNSUPPORTED_POD_SPEC_FIELDS,
            &[],
        ));
        problems.extend(list_problems(
            "ObjectMeta",
            &leaves::<ObjectMeta>(),
            METADATA_FIELDS,
            UNSUPPORTED_METADATA_FIELDS,
            &[],
        ));
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
        // The containers of a pod are the Container type's.
        let in_spec: Vec<String> = leaves::<PodSpec>()
            .into_iter()
            .filter_map(|l| l.strip_prefix("containers[*].").map(str::to_string))
            .collect();
        assert_eq!(in_spec, container_leaves);
        // And the allow-list the loader uses agrees with the lists.
        let list = AllowList::pod_spec();
        for leaf in &container_leaves {
            let listed = CONTAINER_FIELDS.contains(&leaf.as_str());
            assert_eq!(
                list.allows(&format!("containers[*].{leaf}")),
                listed,
                "{leaf}"
            );
        }
        for leaf in &spec_leaves {
            assert_eq!(
                list.allows(leaf),
                POD_SPEC_FIELDS.contains(&leaf.as_str()),
                "{leaf}"
            );
        }
    }

    /// The same for a `ServiceSpec`, and the defaults of `kubectl get -o yaml` pass.
    #[test]
    fn every_service_field_is_allowed_or_known_unsupported() {
        use crate::schema::leaves;
        use k8s_openapi::api::core::v1::ServiceSpec;
        let problems = list_problems(
            "ServiceSpec",
            &leaves::<ServiceSpec>(),
            SERVICE_SPEC_FIELDS,
            UNSUPPORTED_SERVICE_SPEC_FIELDS,
            &[],
        );
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
        let list = AllowList::service_spec();
        let spec = json!({
            "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            "selector": {"app": "web"}
        });
        assert!(list.unsupported(&spec).is_empty());
        let spec = json!({"sessionAffinity": "ClientIP", "ipFamilies": ["IPv4", "IPv6"], "externalIPs": ["192.0.2.1"]});
        let mut got = list.unsupported(&spec);
        got.sort();
        assert_eq!(got, ["externalIPs", "ipFamilies", "sessionAffinity"]);
    }

    /// The same for a `PersistentVolumeClaimSpec`.
    #[test]
    fn every_claim_field_is_allowed_or_known_unsupported() {
        use crate::schema::leaves;
        use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;
        let mut claim_leaves = leaves::<PersistentVolumeClaimSpec>();
        // A map of quantities: its keys are checked when the claim is read.
        claim_leaves.retain(|l| !l.starts_with("resources.requests"));
        claim_leaves.push("resources.requests".into());
        let problems = list_problems(
            "PersistentVolumeClaimSpec",
            &claim_leaves,
            CLAIM_SPEC_FIELDS,
            UNSUPPORTED_CLAIM_SPEC_FIELDS,
            &[],
        );
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
        let list = AllowList::claim_spec();
        let spec = json!({
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}},
            "storageClassName": "standard", "volumeMode": "Filesystem", "volumeName": "pv-1"
        });
        let mut got = list.unsupported(&spec);
        got.sort();
        assert_eq!(got, ["resources.limits", "volumeName"]);
    }

    #[test]
    fn a_new_field_or_a_whole_object_is_caught() {
        use crate::schema::leaves;
        use k8s_openapi::api::core::v1::Container;
        let mut container_leaves = leaves::<Container>();
        // A field a new API version adds below a supported object.
        container_leaves.push("livenessProbe.httpGet.newField".into());
        let problems = container_problems(&container_leaves, &container_allow_list());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("Container: `livenessProbe.httpGet.newField` is a field of the Kubernetes API that neither"),
            "{problems:?}"
        );
        // A whole object in the allow-list.
        let mut allowed = container_allow_list();
        allowed.push("ports");
        let problems = container_problems(&leaves::<Container>(), &allowed);
        assert_eq!(
            problems,
            ["Container: the allow-list entry `ports` is an object, which would let any field a new API version adds below it through: list its leaf fields"]
        );
    }

    #[test]
    fn new_fields_below_supported_objects_are_reported() {
        let list = AllowList::pod_spec();
        let spec = json!({
            "containers": [{
                "name": "a",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "1"}, "claims": [{"name": "gpu"}]},
                "livenessProbe": {"httpGet": {"port": 80, "protocol": "HTTP/2"}},
                "lifecycle": {"preStop": {"tcpSocket": {"port": 80}}},
                "volumeMounts": [{"name": "v", "mountPath": "/v", "recursiveReadOnly": "Disabled", "subPathExpr": "$(X)"}]
            }],
            "volumes": [{"name": "v", "emptyDir": {"mode": 493, "sizeLimit": "1Mi"}}],
            "os": {"name": "linux"}
        });
        let mut got = list.unsupported(&spec);
        got.sort();
        assert_eq!(
            got,
            [
                "containers[0].lifecycle.preStop.tcpSocket",
                "containers[0].livenessProbe.httpGet.protocol",
                "containers[0].resources.claims",
                "containers[0].volumeMounts[0].subPathExpr",
            ]
        );
    }
}
