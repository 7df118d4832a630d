//! Which pod fields podrun supports: a data-driven allow-list over the JSON form of a pod.
//!
//! Paths are written in Kubernetes' field-path style relative to the object they describe
//! (a `PodSpec`, a `Container`, an `ObjectMeta`), with `[*]` standing for every element of
//! a list. An entry allows the field it names and everything below it, so `ports` allows
//! every field of every port, while `securityContext.runAsUser` allows just that field of
//! the security context. Any other field that is set to something other than its default
//! is reported (see [`AllowList::unsupported`]). A later milestone supports a field by
//! adding its path here.

use std::sync::LazyLock;

use serde_json::{json, Value};

/// `PodSpec` fields podrun supports, relative to the spec (containers are listed in
/// [`CONTAINER_FIELDS`]).
pub const POD_SPEC_FIELDS: &[&str] = &[
    "volumes[*].name",
    "volumes[*].emptyDir",
    "volumes[*].hostPath",
    "volumes[*].configMap",
    "volumes[*].secret",
    "volumes[*].downwardAPI.items[*].path",
    "volumes[*].downwardAPI.items[*].fieldRef",
    "volumes[*].downwardAPI.items[*].resourceFieldRef",
    "volumes[*].downwardAPI.items[*].mode",
    "volumes[*].downwardAPI.defaultMode",
    "volumes[*].projected.defaultMode",
    "volumes[*].projected.sources[*].configMap",
    "volumes[*].projected.sources[*].secret",
    "volumes[*].projected.sources[*].downwardAPI.items[*].path",
    "volumes[*].projected.sources[*].downwardAPI.items[*].fieldRef",
    "volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef",
    "volumes[*].projected.sources[*].downwardAPI.items[*].mode",
    "imagePullSecrets",
    "serviceAccountName",
    "serviceAccount",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "hostAliases",
    "dnsPolicy",
    "dnsConfig",
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
    "securityContext.seccompProfile",
    "securityContext.sysctls",
    "hostNetwork",
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
    "env[*].valueFrom.configMapKeyRef",
    "env[*].valueFrom.secretKeyRef",
    "env[*].valueFrom.fieldRef",
    "env[*].valueFrom.resourceFieldRef",
    "envFrom",
    "volumeMounts[*].name",
    "volumeMounts[*].mountPath",
    "volumeMounts[*].subPath",
    "volumeMounts[*].readOnly",
    "ports",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.runAsNonRoot",
    "securityContext.capabilities",
    "securityContext.privileged",
    "securityContext.allowPrivilegeEscalation",
    "securityContext.readOnlyRootFilesystem",
    "securityContext.seccompProfile",
    "securityContext.procMount",
    "livenessProbe.exec",
    "livenessProbe.httpGet",
    "livenessProbe.tcpSocket",
    "livenessProbe.initialDelaySeconds",
    "livenessProbe.periodSeconds",
    "livenessProbe.timeoutSeconds",
    "livenessProbe.successThreshold",
    "livenessProbe.failureThreshold",
    "livenessProbe.terminationGracePeriodSeconds",
    "readinessProbe.exec",
    "readinessProbe.httpGet",
    "readinessProbe.tcpSocket",
    "readinessProbe.initialDelaySeconds",
    "readinessProbe.periodSeconds",
    "readinessProbe.timeoutSeconds",
    "readinessProbe.successThreshold",
    "readinessProbe.failureThreshold",
    "readinessProbe.terminationGracePeriodSeconds",
    "startupProbe.exec",
    "startupProbe.httpGet",
    "startupProbe.tcpSocket",
    "startupProbe.initialDelaySeconds",
    "startupProbe.periodSeconds",
    "startupProbe.timeoutSeconds",
    "startupProbe.successThreshold",
    "startupProbe.failureThreshold",
    "startupProbe.terminationGracePeriodSeconds",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "stdin",
    "stdinOnce",
    "tty",
    // Reported by the downward API; limits enforced in a delegated cgroup v2, else play
    // warns that they are not (podrun_pod::cgroup, docs/kubernetes-compatibility.md).
    "resources",
];

/// `Container` fields supported for `initContainers[*]` only (sidecars).
pub const INIT_CONTAINER_FIELDS: &[&str] = &["restartPolicy"];

/// `ObjectMeta` fields podrun supports (pods, workloads and pod templates).
pub const METADATA_FIELDS: &[&str] = &["name", "namespace", "labels", "annotations", "uid"];

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
}
