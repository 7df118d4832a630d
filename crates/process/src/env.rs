//! A container's environment: `envFrom`, then `env` in order (later wins), with `valueFrom`
//! and `$(VAR)` expansion against what was defined before, merged over the image's `Env`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, ObjectFieldSelector, Pod};

use crate::expand::expand;
use crate::ProcessError;

/// The ConfigMaps and Secrets a pod may read (those of the same YAML file).
pub trait Objects {
    /// A ConfigMap's `data` and `binaryData`, by name.
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
    /// A Secret's decoded `data` and `stringData`, by name.
    fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
}

/// Pod fields that exist only once the pod runs, for `fieldRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFields {
    pub uid: String,
    pub pod_ip: String,
    pub host_ip: String,
    pub node_name: String,
}

/// The pod-defined variables of `container`, in definition order (duplicates resolved: a later
/// definition replaces an earlier one in place).
pub fn container_env(
    name: &str,
    container: &Container,
    pod: &Pod,
    objects: &dyn Objects,
    fields: &PodFields,
) -> Result<Vec<(String, String)>, ProcessError> {
    let mut vars: Vec<(String, String)> = Vec::new();
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
        if let Some(value) = env_value(name, i, var, pod, objects, fields, &vars)? {
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
fn env_value(
    container: &str,
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
        return field_value(pod, fields, selector).map(Some).ok_or_else(|| {
            field_error(
                container,
                format!("{path}.valueFrom.fieldRef.fieldPath"),
                format!("`{}` is not a supported field", selector.field_path),
            )
        });
    }
    Err(field_error(
        container,
        format!("{path}.valueFrom"),
        "only configMapKeyRef, secretKeyRef and fieldRef are supported".into(),
    ))
}

/// The downward API's pod fields.
fn field_value(pod: &Pod, fields: &PodFields, selector: &ObjectFieldSelector) -> Option<String> {
    let meta = &pod.metadata;
    let path = selector.field_path.as_str();
    let bracketed = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    if let Some(key) = bracketed("metadata.labels['") {
        return Some(meta.labels.as_ref()?.get(&key).cloned().unwrap_or_default());
    }
    if let Some(key) = bracketed("metadata.annotations['") {
        return Some(
            meta.annotations
                .as_ref()?
                .get(&key)
                .cloned()
                .unwrap_or_default(),
        );
    }
    let spec = pod.spec.as_ref();
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        "metadata.uid" => fields.uid.clone(),
        "spec.nodeName" => fields.node_name.clone(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".to_string()),
        "status.podIP" | "status.podIPs" => fields.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => fields.host_ip.clone(),
        _ => return None,
    })
}

/// The variables as a lookup table for `$(VAR)`.
pub fn as_mapping(vars: &[(String, String)]) -> BTreeMap<String, String> {
    vars.iter().cloned().collect()
}

/// The image's `NAME=value` list with the pod's variables applied: an image variable the pod
/// redefines takes the pod's value in place; new ones follow.
pub fn merge(image_env: &[String], pod_env: &[(String, String)]) -> Vec<String> {
    let mut merged: Vec<(String, String)> = image_env
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (entry.clone(), String::new()),
        })
        .collect();
    for (name, value) in pod_env {
        set(&mut merged, name.clone(), value.clone());
    }
    if !merged.iter().any(|(n, _)| n == "PATH") {
        // What runc and podman give a process whose image sets no PATH.
        merged.insert(
            0,
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        );
    }
    merged
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// Kubernetes' rule for environment variable names (C_IDENTIFIER-ish, relaxed since 1.30:
/// any printable ASCII but `=`, not starting with a digit).
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_graphic() && c != '=')
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
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVarSource, SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    struct Fixture;
    impl Objects for Fixture {
        fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            (name == "cfg").then(|| {
                BTreeMap::from([
                    ("MODE".to_string(), b"fast".to_vec()),
                    ("1BAD".to_string(), b"skipped".to_vec()),
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
        assert_eq!(get("CFG_1BAD"), Some("skipped"), "valid once prefixed");
        assert_eq!(get("1BAD"), None, "invalid names are skipped");
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
        );
        assert_eq!(&merged[..3], ["PATH=/bin", "A=2", "KEEP=1"]);
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

    #[test]
    fn default_path_when_the_image_has_none() {
        let merged = merge(&[], &[]);
        assert!(merged[0].starts_with("PATH=/usr/local/sbin"));
    }
}
