//! A container's environment: `envFrom`, then `env` in order (later wins), with `valueFrom`
//! and `$(VAR)` expansion against what was defined before, merged over the image's `Env`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, ResourceFieldSelector};

use crate::expand::expand;
use crate::quantity::Quantity;
use crate::ProcessError;

/// The ConfigMaps and Secrets a pod may read (those of the same YAML file).
pub trait Objects {
    /// A ConfigMap's `data`, by name (`binaryData` is for volumes only, as in the kubelet).
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
    /// A Secret's decoded `data` and `stringData`, by name.
    fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
}

/// Pod fields that exist only once the pod runs, for `fieldRef` and `resourceFieldRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFields {
    pub uid: String,
    /// `status.podIP`: the address the pod's network gives it.
    pub pod_ip: String,
    /// `status.hostIP`: the host's primary address.
    pub host_ip: String,
    /// `spec.nodeName`: the host's name.
    pub node_name: String,
    /// The node's allocatable resources, reported as the limit of a container that sets none.
    pub node: NodeResources,
    /// The kubelet's Service variables (`API_SERVICE_HOST`, ...): under the container's
    /// `envFrom` and `env`, which may refer to them with `$(VAR)`.
    pub service_env: Vec<(String, String)>,
}

/// What the node (this host) can give a pod, as the kubelet's node allocatable: the host's
/// CPUs and memory, and the size of the filesystem that holds the pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeResources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
}

/// Where a downward API field is read: an env variable and a downwardAPI volume file allow
/// different `fieldPath`s (Kubernetes' rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldUse {
    Env,
    Volume,
}

/// The `fieldPath`s of the downward API for env variables; labels and annotations also
/// take a key: `metadata.labels['app']`.
pub const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// The `fieldPath`s of the downward API for volume files (besides the keyed labels and
/// annotations).
pub const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
];

/// The resources `resourceFieldRef` reads.
pub const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
];

/// The pod-defined variables of `container`, in definition order (duplicates resolved: a later
/// definition replaces an earlier one in place).
pub fn container_env(
    name: &str,
    container: &Container,
    pod: &Pod,
    objects: &dyn Objects,
    fields: &PodFields,
) -> Result<Vec<(String, String)>, ProcessError> {
    let mut vars: Vec<(String, String)> = fields.service_env.clone();
    for (i, source) in container.env_from.iter().flatten().enumerate() {
        let prefix = source.prefix.clone().unwrap_or_default();
        let (kind, reference, data) = if let Some(cm) = &source.config_map_ref {
            ("ConfigMap", cm.name.as_str(), objects.config_map(&cm.name))
        } else if let Some(secret) = &source.secret_ref {
            ("Secret", secret.name.as_str(), objects.secret(&secret.name))
        } else {
            continue;
        };
        let optional = source
            .config_map_ref
            .as_ref()
            .and_then(|r| r.optional)
            .or(source.secret_ref.as_ref().and_then(|r| r.optional))
            .unwrap_or(false);
        let Some(data) = data else {
            if optional {
                continue;
            }
            return Err(field_error(
                name,
                format!("envFrom[{i}]"),
                format!("{kind} `{reference}` is not defined in the manifest"),
            ));
        };
        for (key, value) in data {
            let var = format!("{prefix}{key}");
            // The kubelet skips keys that are not valid variable names (with an event).
            if is_env_name(&var) {
                set(&mut vars, var, String::from_utf8_lossy(&value).into_owned());
            }
        }
    }
    for (i, var) in container.env.iter().flatten().enumerate() {
        if let Some(value) = env_value(name, container, i, var, pod, objects, fields, &vars)? {
            set(&mut vars, var.name.clone(), value);
        }
    }
    Ok(vars)
}

fn set(vars: &mut Vec<(String, String)>, name: String, value: String) {
    match vars.iter_mut().find(|(n, _)| *n == name) {
        Some(existing) => existing.1 = value,
        None => vars.push((name, value)),
    }
}

/// One `env` entry's value; None for an optional reference that is missing.
#[allow(clippy::too_many_arguments)]
fn env_value(
    container: &str,
    current: &Container,
    index: usize,
    var: &EnvVar,
    pod: &Pod,
    objects: &dyn Objects,
    fields: &PodFields,
    defined: &[(String, String)],
) -> Result<Option<String>, ProcessError> {
    let path = format!("env[{index}]");
    let Some(source) = &var.value_from else {
        let mapping = as_mapping(defined);
        return Ok(Some(expand(var.value.as_deref().unwrap_or(""), &|n| {
            mapping.get(n).cloned()
        })));
    };
    let key_ref = |kind: &str,
                   name: &str,
                   key: &str,
                   optional: Option<bool>,
                   data: Option<BTreeMap<String, Vec<u8>>>| {
        match data.as_ref().and_then(|d| d.get(key)) {
            Some(value) => Ok(Some(String::from_utf8_lossy(value).into_owned())),
            None if optional.unwrap_or(false) => Ok(None),
            None if data.is_none() => Err(field_error(
                container,
                format!("{path}.valueFrom"),
                format!("{kind} `{name}` is not defined in the manifest"),
            )),
            None => Err(field_error(
                container,
                format!("{path}.valueFrom"),
                format!("{kind} `{name}` has no key `{key}`"),
            )),
        }
    };
    if let Some(r) = &source.config_map_key_ref {
        return key_ref(
            "ConfigMap",
            &r.name,
            &r.key,
            r.optional,
            objects.config_map(&r.name),
        );
    }
    if let Some(r) = &source.secret_key_ref {
        return key_ref(
            "Secret",
            &r.name,
            &r.key,
            r.optional,
            objects.secret(&r.name),
        );
    }
    if let Some(selector) = &source.field_ref {
        return field_value(pod, fields, &selector.field_path, FieldUse::Env)
            .map(Some)
            .map_err(|message| {
                field_error(
                    container,
                    format!("{path}.valueFrom.fieldRef.fieldPath"),
                    message,
                )
            });
    }
    if let Some(selector) = &source.resource_field_ref {
        return resource_value(pod, current, selector, &fields.node)
            .map(Some)
            .map_err(|message| {
                field_error(
                    container,
                    format!("{path}.valueFrom.resourceFieldRef"),
                    message,
                )
            });
    }
    Err(field_error(
        container,
        format!("{path}.valueFrom"),
        "names no source (configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef)".into(),
    ))
}

/// The downward API's pod field `path`, as an env variable or a volume file (`usage`) shows
/// it. Labels and annotations missing from the pod read as "", as in Kubernetes.
pub fn field_value(
    pod: &Pod,
    fields: &PodFields,
    path: &str,
    usage: FieldUse,
) -> Result<String, String> {
    let meta = &pod.metadata;
    let keyed = |prefix: &str| path.strip_prefix(prefix)?.strip_suffix("']");
    let lookup = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    if let Some(key) = keyed("metadata.labels['") {
        return Ok(lookup(&meta.labels, key));
    }
    if let Some(key) = keyed("metadata.annotations['") {
        return Ok(lookup(&meta.annotations, key));
    }
    let allowed = match usage {
        FieldUse::Env => ENV_FIELD_PATHS,
        FieldUse::Volume => VOLUME_FIELD_PATHS,
    };
    if !allowed.contains(&path) {
        let list: Vec<String> = allowed.iter().map(|p| format!("{p:?}")).collect();
        return Err(format!(
            "Unsupported value: {path:?}: supported values: {}, \"metadata.labels['KEY']\", \"metadata.annotations['KEY']\"",
            list.join(", ")
        ));
    }
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string()),
        "metadata.uid" => fields.uid.clone(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => fields.node_name.clone(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_string()),
        "status.podIP" | "status.podIPs" => fields.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => fields.host_ip.clone(),
        _ => unreachable!("checked against the list above"),
    })
}

/// A whole label or annotation map as a downwardAPI volume file shows it: `key="value"`
/// lines sorted by key, values quoted as Go's `%q` quotes them (the kubelet's format).
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    let lines: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    lines.join("\n")
}

fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A container's resource as the downward API reports it (`resourceFieldRef`): CPU in whole
/// `divisor`s (millicores or cores) and memory and ephemeral storage in whole `divisor`s of
/// bytes, rounded up. A container without a limit reports the node's allocatable as its
/// limit; one without a request reports its limit when it has one (the API server's
/// defaulting), else 0. `current` is the container whose env or volume asks; the selector's
/// `containerName` may name another container of the pod.
pub fn resource_value(
    pod: &Pod,
    current: &Container,
    selector: &ResourceFieldSelector,
    node: &NodeResources,
) -> Result<String, String> {
    let container = match selector.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => current,
        Some(name) => pod
            .spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .ok_or_else(|| {
                format!("containerName: Not found: {name:?}: no container of that name in the pod")
            })?,
    };
    let resource = selector.resource.as_str();
    let Some((kind, name)) = resource
        .split_once('.')
        .filter(|_| RESOURCE_FIELDS.contains(&resource))
    else {
        let list: Vec<String> = RESOURCE_FIELDS.iter().map(|r| format!("{r:?}")).collect();
        return Err(format!(
            "resource: Unsupported value: {resource:?}: supported values: {}",
            list.join(", ")
        ));
    };
    let declared = |which: &str| crate::quantity::declared(container, which, name);
    let allocatable = match name {
        "cpu" => Quantity::from_millis(node.cpu_millis),
        "memory" => Quantity::from_units(node.memory_bytes),
        _ => Quantity::from_units(node.ephemeral_storage_bytes),
    };
    let value = match kind {
        "limits" => declared("limits")?.unwrap_or(allocatable),
        _ => match declared("requests")? {
            Some(q) => q,
            None => declared("limits")?.unwrap_or(Quantity::from_units(0)),
        },
    };
    let divisor = match selector.divisor.as_ref() {
        None => Quantity::from_units(1),
        Some(d) => Quantity::parse(&d.0)
            .filter(|q| !q.is_zero())
            .ok_or_else(|| format!("divisor: Invalid value: {:?}: not a quantity", d.0))?,
    };
    let shown = if name == "cpu" {
        value.milli_value().div_ceil(divisor.milli_value().max(1))
    } else {
        value.value().div_ceil(divisor.value().max(1))
    };
    Ok(shown.to_string())
}

/// The variables as a lookup table for `$(VAR)`.
pub fn as_mapping(vars: &[(String, String)]) -> BTreeMap<String, String> {
    vars.iter().cloned().collect()
}

/// What a runtime gives a process whose image sets no PATH (runc's, containerd's and
/// podman's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process's `NAME=value` list, built as containerd's CRI plugin builds it: the default
/// `PATH`, then `HOSTNAME=<hostname>` (the pod's kernel hostname, see
/// [`crate::hostname::kernel_hostname`]), then the image's variables, then the pod's
/// (`pod_env`); a variable defined again takes the new value in its first place.
///
/// So the image and the container override `HOSTNAME`, as they override `PATH`. containerd
/// and podman (which sets it only when the image and the user have not) agree on that;
/// CRI-O sets `HOSTNAME` last, over the container's own value. `HOSTNAME` is not one of the
/// pod's variables, so `$(HOSTNAME)` in the pod's values stays as written, as with the
/// kubelet, which expands against the container's `env` only.
pub fn merge(image_env: &[String], pod_env: &[(String, String)], hostname: &str) -> Vec<String> {
    let mut merged: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    for entry in image_env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        set(&mut merged, name.to_string(), value.to_string());
    }
    for (name, value) in pod_env {
        set(&mut merged, name.clone(), value.clone());
    }
    merged
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// Kubernetes' rule for environment variable names since the relaxed validation (GA and
/// always on in the Kubernetes this follows): printable ASCII but `=`. The kubelet skips
/// `envFrom` keys that break it; every valid ConfigMap or Secret key passes.
pub fn is_env_name(name: &str) -> bool {
    // Go's unicode.IsPrint, as Kubernetes uses it, counts the ASCII space as printable.
    !name.is_empty()
        && name
            .chars()
            .all(|c| (c.is_ascii_graphic() || c == ' ') && c != '=')
}

fn field_error(container: &str, field: String, message: String) -> ProcessError {
    ProcessError::Field {
        container: container.to_string(),
        field,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVarSource, ObjectFieldSelector,
        PodSpec, ResourceRequirements, SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    struct Fixture;
    impl Objects for Fixture {
        fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            (name == "cfg").then(|| {
                BTreeMap::from([
                    ("MODE".to_string(), b"fast".to_vec()),
                    ("1BAD".to_string(), b"kept".to_vec()),
                ])
            })
        }
        fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            (name == "creds")
                .then(|| BTreeMap::from([("password".to_string(), b"s3cret".to_vec())]))
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(source),
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn order_references_and_expansion() {
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "cfg".into(),
                        optional: None,
                    }),
                    prefix: Some("CFG_".into()),
                    secret_ref: None,
                },
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "cfg".into(),
                        optional: None,
                    }),
                    prefix: None,
                    secret_ref: None,
                },
            ]),
            env: Some(vec![
                var("A", "1"),
                var("B", "$(A)-$(CFG_MODE)-$(LATER)-$$(A)"),
                var("LATER", "x"),
                from(
                    "PASS",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "creds".into(),
                            key: "password".into(),
                            optional: None,
                        }),
                        ..EnvVarSource::default()
                    },
                ),
                from(
                    "POD",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..EnvVarSource::default()
                    },
                ),
                from(
                    "APP",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.labels['app']".into(),
                            api_version: None,
                        }),
                        ..EnvVarSource::default()
                    },
                ),
                from(
                    "OPT",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "missing".into(),
                            key: "k".into(),
                            optional: Some(true),
                        }),
                        ..EnvVarSource::default()
                    },
                ),
                var("A", "2"),
            ]),
            ..Container::default()
        };
        let fields = PodFields {
            pod_ip: "10.0.2.100".into(),
            ..PodFields::default()
        };
        let vars = container_env("c", &container, &pod(), &Fixture, &fields).unwrap();
        let get = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("CFG_MODE"), Some("fast"));
        assert_eq!(get("CFG_1BAD"), Some("kept"));
        assert_eq!(
            get("1BAD"),
            Some("kept"),
            "relaxed names: a digit may start one"
        );
        assert!(!is_env_name("A=B") && !is_env_name("") && !is_env_name("A\tB"));
        assert!(is_env_name("A B"), "the space is printable");
        assert!(is_env_name("my.env-name") && is_env_name("1st"));
        assert_eq!(get("MODE"), Some("fast"));
        assert_eq!(get("B"), Some("1-fast-$(LATER)-$(A)"));
        assert_eq!(get("A"), Some("2"), "a later definition wins");
        assert_eq!(get("PASS"), Some("s3cret"));
        assert_eq!(get("POD"), Some("web-1"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("OPT"), None);

        let merged = merge(
            &["PATH=/bin".into(), "A=image".into(), "KEEP=1".into()],
            &vars,
            "web-1",
        );
        assert_eq!(
            &merged[..4],
            ["PATH=/bin", "HOSTNAME=web-1", "A=2", "KEEP=1"]
        );
    }

    #[test]
    fn missing_references_name_the_field() {
        let container = Container {
            name: "app".into(),
            env: Some(vec![from(
                "X",
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cfg".into(),
                        key: "nope".into(),
                        optional: None,
                    }),
                    ..EnvVarSource::default()
                },
            )]),
            ..Container::default()
        };
        let err = container_env("app", &container, &pod(), &Fixture, &PodFields::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "container `app`: env[0].valueFrom: ConfigMap `cfg` has no key `nope`"
        );
    }

    fn resources(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> ResourceRequirements {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), K8sQuantity(v.to_string())))
                    .collect()
            })
        };
        ResourceRequirements {
            limits: map(limits),
            requests: map(requests),
            ..ResourceRequirements::default()
        }
    }

    fn selector(
        resource: &str,
        divisor: Option<&str>,
        container: Option<&str>,
    ) -> ResourceFieldSelector {
        ResourceFieldSelector {
            resource: resource.into(),
            divisor: divisor.map(|d| K8sQuantity(d.into())),
            container_name: container.map(str::to_string),
        }
    }

    #[test]
    fn resource_fields_with_divisors_and_node_defaults() {
        let limited = Container {
            name: "limited".into(),
            resources: Some(resources(
                &[("cpu", "500m"), ("memory", "128Mi")],
                &[("cpu", "250m"), ("memory", "64Mi")],
            )),
            ..Container::default()
        };
        let bare = Container {
            name: "bare".into(),
            resources: Some(resources(&[("memory", "1Gi")], &[])),
            ..Container::default()
        };
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![limited.clone(), bare.clone()],
                ..PodSpec::default()
            }),
            ..pod()
        };
        let node = NodeResources {
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            ephemeral_storage_bytes: 100_000_000_000,
        };
        let get = |c: &Container, r: &str, d: Option<&str>| {
            resource_value(&pod, c, &selector(r, d, None), &node).unwrap()
        };
        assert_eq!(
            get(&limited, "limits.cpu", None),
            "1",
            "500m rounds up to 1 core"
        );
        assert_eq!(get(&limited, "limits.cpu", Some("1m")), "500");
        assert_eq!(get(&limited, "requests.cpu", Some("1m")), "250");
        assert_eq!(get(&limited, "limits.memory", None), "134217728");
        assert_eq!(get(&limited, "limits.memory", Some("1Mi")), "128");
        assert_eq!(get(&limited, "requests.memory", Some("1Mi")), "64");
        // No limit: the node's allocatable; no request: the limit, else 0.
        assert_eq!(get(&bare, "limits.cpu", Some("1m")), "4000");
        assert_eq!(get(&bare, "limits.cpu", None), "4");
        assert_eq!(get(&bare, "requests.cpu", None), "0");
        assert_eq!(get(&bare, "requests.memory", Some("1Mi")), "1024");
        assert_eq!(get(&bare, "limits.ephemeral-storage", Some("1G")), "100");
        assert_eq!(get(&bare, "requests.ephemeral-storage", None), "0");
        // Another container's, by name.
        let other = resource_value(
            &pod,
            &bare,
            &selector("limits.memory", Some("1Mi"), Some("limited")),
            &node,
        );
        assert_eq!(other.unwrap(), "128");
        let err =
            resource_value(&pod, &bare, &selector("limits.gpu", None, None), &node).unwrap_err();
        assert!(err.contains("Unsupported value: \"limits.gpu\""), "{err}");
        let err = resource_value(
            &pod,
            &bare,
            &selector("limits.cpu", None, Some("nope")),
            &node,
        )
        .unwrap_err();
        assert!(err.contains("Not found: \"nope\""), "{err}");
    }

    #[test]
    fn field_paths_for_env_and_volumes() {
        let mut pod = pod();
        pod.metadata.namespace = Some("team".into());
        pod.metadata.annotations = Some(BTreeMap::from([
            ("build".to_string(), "two\nlines \"q\"".to_string()),
            ("a".to_string(), "1".to_string()),
        ]));
        let fields = PodFields {
            uid: "u-1".into(),
            pod_ip: "10.0.2.100".into(),
            host_ip: "192.0.2.7".into(),
            node_name: "host".into(),
            node: NodeResources::default(),
            service_env: Vec::new(),
        };
        let env = |p: &str| field_value(&pod, &fields, p, FieldUse::Env);
        assert_eq!(env("metadata.namespace").unwrap(), "team");
        assert_eq!(env("metadata.uid").unwrap(), "u-1");
        assert_eq!(env("status.podIP").unwrap(), "10.0.2.100");
        assert_eq!(env("status.podIPs").unwrap(), "10.0.2.100");
        assert_eq!(env("status.hostIP").unwrap(), "192.0.2.7");
        assert_eq!(env("spec.nodeName").unwrap(), "host");
        assert_eq!(env("spec.serviceAccountName").unwrap(), "default");
        assert_eq!(env("metadata.labels['missing']").unwrap(), "");
        assert!(env("metadata.labels")
            .unwrap_err()
            .contains("Unsupported value"));
        let volume = |p: &str| field_value(&pod, &fields, p, FieldUse::Volume);
        assert_eq!(volume("metadata.labels").unwrap(), "app=\"web\"");
        assert_eq!(
            volume("metadata.annotations").unwrap(),
            "a=\"1\"\nbuild=\"two\\nlines \\\"q\\\"\""
        );
        assert_eq!(volume("metadata.annotations['a']").unwrap(), "1");
        assert!(
            volume("status.podIP").is_err(),
            "not a volume field in Kubernetes"
        );
    }

    #[test]
    fn default_path_and_hostname_when_the_image_has_none() {
        let merged = merge(&[], &[], "web-1");
        assert_eq!(
            merged,
            [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=web-1".into()]
        );
    }

    #[test]
    fn the_image_and_the_container_override_hostname() {
        let pod_env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        // The image's value replaces the runtime's in place; its PATH replaces the default.
        let merged = merge(
            &[
                "HOSTNAME=from-image".into(),
                "PATH=/bin".into(),
                "A=1".into(),
            ],
            &[],
            "web-1",
        );
        assert_eq!(merged, ["PATH=/bin", "HOSTNAME=from-image", "A=1"]);
        // The container's value wins over both, even an empty one.
        let merged = merge(
            &["HOSTNAME=from-image".into()],
            &pod_env(&[("HOSTNAME", "")]),
            "web-1",
        );
        assert_eq!(merged[1], "HOSTNAME=");
        // An image variable without `=` is defined empty.
        let merged = merge(&["EMPTY".into()], &[], "web-1");
        assert_eq!(merged[2], "EMPTY=");
    }
}
