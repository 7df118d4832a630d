//! Planning a pod's volumes from its spec (the plan's part is
//! [`podrun_pod_model::plan::volumes`], where each kind of volume lives; the supervisor
//! prepares and mounts them).
//!
//! | volume | where it lives | removed with the pod |
//! |---|---|---|
//! | emptyDir | `data_dir/volumes/<name>/` (a tmpfs there for `medium: Memory`) | yes |
//! | configMap, downwardAPI | `data_dir/volumes/<name>/`, files written by the supervisor | yes |
//! | secret, projected | `runtime_dir/volumes/<name>/` (XDG_RUNTIME_DIR is a tmpfs: secrets stay off disk, as the kubelet keeps them) | yes |
//! | hostPath | the host path itself | no |
//! | persistentVolumeClaim | `data_dir/volumes/<namespace>/<claim>/_data`, made on first use | no |
//!
//! configMap, secret, downwardAPI and projected volumes are mounted read-only, as the kubelet
//! does. Their files are plain files (the kubelet's `..data` symlink farm exists for atomic
//! updates, which a pod played from a file never gets). A projected volume joins configMap,
//! secret and downwardAPI sources in one directory; its serviceAccountToken,
//! clusterTrustBundle and podCertificate sources need an API server and are refused.
//!
//! A persistentVolumeClaim volume is the named volume of the claim in the pod's namespace
//! (podrun-pod-model's `claims`): the claim must be defined in the file (a
//! PersistentVolumeClaim, or a StatefulSet's `volumeClaimTemplates`) or its volume exist
//! already ([`check_claims`], before anything starts).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use podrun_manifest::k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource, Volume,
};
use podrun_manifest::{Manifest, PodManifest};
use podrun_pod_model::claims::{CreatedBy, VolumeMeta, VolumeRoot};
use podrun_process::env::{field_value, resource_value, FieldUse};
use podrun_process::PodFields;

use podrun_pod_model::plan::volumes::{
    check_host_path, ClaimVolume, FileVolume, HostPathVolume, MemoryVolume, MountPlan, PodVolumes,
    VolumeFile, DEFAULT_FILE_MODE,
};
use podrun_pod_model::{PodError, PodLayout};

/// The claims of `pod`'s persistentVolumeClaim volumes that neither the file defines nor
/// exist in `root`: one error each, naming the file, the pod, the field and the claim, as
/// `play` and `validate` report them before anything starts.
pub fn check_claims(pod: &PodManifest, manifest: &Manifest, root: &VolumeRoot) -> Vec<String> {
    let namespace = pod.namespace();
    let who = format!(
        "pod `{}`",
        podrun_pod_model::display_name(namespace, pod.name())
    );
    let spec_volumes = pod.pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    let mut errors = Vec::new();
    for (i, volume) in spec_volumes.enumerate() {
        let Some(claim) = &volume.persistent_volume_claim else {
            continue;
        };
        let name = &claim.claim_name;
        if manifest.claim(namespace, name).is_none() && !root.exists(namespace, name) {
            errors.push(format!(
                "{}: {who}: spec.volumes[{i}].persistentVolumeClaim.claimName: PersistentVolumeClaim `{name}` not found in namespace {namespace}: the file defines no such claim and no volume of that name exists (podrun volume ls lists them); add a PersistentVolumeClaim `{name}` to the file",
                pod.source
            ));
        }
    }
    errors
}

/// The volume of a persistentVolumeClaim volume of `pod`: the claim's metadata (to record
/// when the volume is made) if the file defines the claim.
fn claim_volume(
    pod: &PodManifest,
    manifest: &Manifest,
    root: &VolumeRoot,
    volume: &Volume,
    claim: &podrun_manifest::k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource,
) -> ClaimVolume {
    let namespace = pod.namespace();
    let meta = manifest.claim(namespace, &claim.claim_name).map(|c| {
        let file = std::fs::canonicalize(&pod.source.file)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| pod.source.file.clone());
        VolumeMeta {
            namespace: namespace.to_string(),
            name: c.name().to_string(),
            created: String::new(),
            storage: c.storage().map(str::to_string),
            access_modes: c.access_modes(),
            storage_class: c.storage_class().map(str::to_string),
            owner: c
                .owner
                .as_ref()
                .map(|o| format!("{}/{}", o.kind.name(), o.name)),
            created_by: Some(CreatedBy {
                file,
                pod: podrun_pod_model::display_name(namespace, pod.name()),
            }),
        }
    });
    ClaimVolume {
        name: volume.name.clone(),
        claim: claim.claim_name.clone(),
        dir: root.dir(namespace, &claim.claim_name),
        read_only: claim.read_only == Some(true),
        meta,
    }
}

/// Plans the volumes of `pod`. `fields` are the pod's runtime fields for downwardAPI files;
/// `claims` where the named volumes of its claims are; `context` starts error messages
/// (file and pod).
pub fn plan(
    pod: &PodManifest,
    manifest: &Manifest,
    fields: &PodFields,
    dirs: &PodLayout,
    claims: &VolumeRoot,
    context: &str,
) -> Result<PodVolumes, PodError> {
    if let Some(error) = check_claims(pod, manifest, claims).into_iter().next() {
        return Err(PodError::msg(error));
    }
    let manifest_pod = pod;
    let pod = &pod.pod;
    let mut volumes = PodVolumes::default();
    let spec_volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for (i, volume) in spec_volumes.enumerate() {
        let field = format!("spec.volumes[{i}]");
        let error = |text: String| PodError::msg(format!("{context}: {field}{text}"));
        if let Some(source) = default_user_of(volume) {
            return Err(error(format!(
                ".{source}.defaultUser: per-file owners are not supported (files belong to root)"
            )));
        }
        if let Some(empty_dir) = &volume.empty_dir {
            match empty_dir.medium.as_deref().unwrap_or_default() {
                "" => {}
                "Memory" => volumes.memory.push(memory_volume(volume, &error)?),
                other => {
                    return Err(error(format!(
                        ".emptyDir.medium: `{other}` is not supported (only \"\" and Memory are)"
                    )))
                }
            }
            if let Some(mode) = empty_dir.mode {
                let mode = u32::try_from(mode)
                    .ok()
                    .filter(|m| *m <= 0o1777)
                    .ok_or_else(|| {
                        error(format!(
                            ".emptyDir.mode: {mode} is not a mode between 0 and 01777 (octal)"
                        ))
                    })?;
                volumes.empty_dir_modes.insert(volume.name.clone(), mode);
            }
            volumes.empty_dirs.push(volume.name.clone());
        } else if let Some(host) = &volume.host_path {
            let kind = host.type_.clone().unwrap_or_default();
            let path = PathBuf::from(&host.path);
            check_host_path(&path, &kind).map_err(|e| error(format!(".hostPath: {e}")))?;
            volumes.host_paths.push(HostPathVolume {
                name: volume.name.clone(),
                path,
                kind,
            });
        } else if let Some(cm) = &volume.config_map {
            let entries = manifest.config_map_entries(&cm.name);
            let files = file_mode(cm.default_mode, "defaultMode")
                .and_then(|mode| {
                    volume_files(
                        entries.as_ref(),
                        cm.items.as_deref(),
                        mode,
                        cm.optional == Some(true),
                    )
                })
                .map_err(|e| error(format!(".configMap: ConfigMap `{}`: {e}", cm.name)))?;
            volumes.files.push(FileVolume {
                name: volume.name.clone(),
                dir: dirs.data_volume(&volume.name),
                files,
            });
        } else if let Some(secret) = &volume.secret {
            let name = secret.secret_name.clone().unwrap_or_default();
            let entries = manifest.secret_entries(&name);
            let files = file_mode(secret.default_mode, "defaultMode")
                .and_then(|mode| {
                    volume_files(
                        entries.as_ref(),
                        secret.items.as_deref(),
                        mode,
                        secret.optional == Some(true),
                    )
                })
                .map_err(|e| error(format!(".secret: Secret `{name}`: {e}")))?;
            volumes.files.push(FileVolume {
                name: volume.name.clone(),
                dir: dirs.runtime_volume(&volume.name),
                files,
            });
        } else if let Some(downward) = &volume.downward_api {
            let files = file_mode(downward.default_mode, "defaultMode")
                .and_then(|mode| {
                    downward_files(pod, fields, downward.items.as_deref().unwrap_or(&[]), mode)
                })
                .map_err(|e| error(format!(".downwardAPI.{e}")))?;
            volumes.files.push(FileVolume {
                name: volume.name.clone(),
                dir: dirs.data_volume(&volume.name),
                files,
            });
        } else if let Some(projected) = &volume.projected {
            let files = projected_files(pod, manifest, fields, projected)
                .map_err(|e| error(format!(".projected.{e}")))?;
            volumes.files.push(FileVolume {
                name: volume.name.clone(),
                dir: dirs.runtime_volume(&volume.name),
                files,
            });
        } else if let Some(claim) = &volume.persistent_volume_claim {
            let planned = claim_volume(manifest_pod, manifest, claims, volume, claim);
            volumes.claims.push(planned);
        } else {
            return Err(error(format!(
                ": volume `{}`: only emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes are supported",
                volume.name
            )));
        }
    }
    Ok(volumes)
}

/// The source of `volume` that sets `defaultUser`, which podrun cannot honour.
fn default_user_of(volume: &Volume) -> Option<&'static str> {
    let sources = [
        (
            "configMap",
            volume.config_map.as_ref().and_then(|v| v.default_user),
        ),
        (
            "secret",
            volume.secret.as_ref().and_then(|v| v.default_user),
        ),
        (
            "downwardAPI",
            volume.downward_api.as_ref().and_then(|v| v.default_user),
        ),
        (
            "projected",
            volume.projected.as_ref().and_then(|v| v.default_user),
        ),
    ];
    sources.iter().find(|(_, user)| user.is_some()).map(|s| s.0)
}

fn memory_volume(
    volume: &Volume,
    error: &impl Fn(String) -> PodError,
) -> Result<MemoryVolume, PodError> {
    let size_limit = match volume
        .empty_dir
        .as_ref()
        .and_then(|e| e.size_limit.as_ref())
    {
        Some(quantity) => Some(bytes(&quantity.0).ok_or_else(|| {
            error(format!(
                ".emptyDir.sizeLimit: `{}` is not a quantity (e.g. 64Mi)",
                quantity.0
            ))
        })?),
        None => None,
    };
    Ok(MemoryVolume {
        name: volume.name.clone(),
        size_limit,
    })
}

/// The files of a configMap or secret volume (or projection): every key, or just `items`.
fn volume_files(
    entries: Option<&BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Vec<VolumeFile>, String> {
    let Some(entries) = entries else {
        // A missing optional object gives an empty volume, as in Kubernetes.
        return if optional {
            Ok(Vec::new())
        } else {
            Err("not found in the manifest (add it to the file, or set optional: true)".into())
        };
    };
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(entries
            .iter()
            .map(|(key, data)| VolumeFile {
                path: key.clone(),
                mode: default_mode,
                data: data.clone(),
            })
            .collect());
    };
    let mut files = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let Some(data) = entries.get(&item.key) else {
            if optional {
                continue;
            }
            return Err(format!("items[{j}].key: no key `{}`", item.key));
        };
        check_relative(&item.path).map_err(|e| format!("items[{j}].path: {e}"))?;
        if item.user.is_some() {
            return Err(format!(
                "items[{j}].user: per-file owners are not supported (files belong to root)"
            ));
        }
        files.push(VolumeFile {
            path: item.path.clone(),
            mode: optional_file_mode(item.mode, &format!("items[{j}].mode"))?
                .unwrap_or(default_mode),
            data: data.clone(),
        });
    }
    Ok(files)
}

/// The files of a downwardAPI volume (or projection): one per item, from a pod field or a
/// container's resource.
fn downward_files(
    pod: &Pod,
    fields: &PodFields,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
) -> Result<Vec<VolumeFile>, String> {
    let mut files = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let field = format!("items[{j}]");
        check_relative(&item.path).map_err(|e| format!("{field}.path: {e}"))?;
        if item.user.is_some() {
            return Err(format!(
                "{field}.user: per-file owners are not supported (files belong to root)"
            ));
        }
        let data = match (&item.field_ref, &item.resource_field_ref) {
            (Some(selector), None) => {
                field_value(pod, fields, &selector.field_path, FieldUse::Volume)
                    .map_err(|e| format!("{field}.fieldRef.fieldPath: {e}"))?
            }
            (None, Some(selector)) => {
                // In a volume the container must be named (Kubernetes' rule).
                let name = selector.container_name.as_deref().unwrap_or_default();
                let container = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
                    .find(|c| c.name == name && !name.is_empty())
                    .ok_or_else(|| {
                        format!("{field}.resourceFieldRef.containerName: Required value: the name of a container of the pod")
                    })?;
                resource_value(pod, container, selector, &fields.node)
                    .map_err(|e| format!("{field}.resourceFieldRef.{e}"))?
            }
            _ => {
                return Err(format!(
                "{field}: Invalid value: exactly one of fieldRef and resourceFieldRef is required"
            ))
            }
        };
        files.push(VolumeFile {
            path: item.path.clone(),
            mode: optional_file_mode(item.mode, &format!("{field}.mode"))?.unwrap_or(default_mode),
            data: data.into_bytes(),
        });
    }
    Ok(files)
}

/// The files of a projected volume: its configMap, secret and downwardAPI sources, in order,
/// with the volume's `defaultMode`; two sources may not write the same path.
fn projected_files(
    pod: &Pod,
    manifest: &Manifest,
    fields: &PodFields,
    projected: &ProjectedVolumeSource,
) -> Result<Vec<VolumeFile>, String> {
    let default_mode = file_mode(projected.default_mode, "defaultMode")?;
    let mut files: Vec<VolumeFile> = Vec::new();
    for (k, source) in projected.sources.iter().flatten().enumerate() {
        let field = format!("sources[{k}]");
        let refused = [
            (
                "serviceAccountToken",
                source.service_account_token.is_some(),
            ),
            ("clusterTrustBundle", source.cluster_trust_bundle.is_some()),
            ("podCertificate", source.pod_certificate.is_some()),
        ];
        if let Some((name, _)) = refused.iter().find(|(_, set)| *set) {
            return Err(format!(
                "{field}.{name}: not supported: podrun has no API server to issue it"
            ));
        }
        let found = if let Some(cm) = &source.config_map {
            let entries = manifest.config_map_entries(&cm.name);
            volume_files(
                entries.as_ref(),
                cm.items.as_deref(),
                default_mode,
                cm.optional == Some(true),
            )
            .map_err(|e| format!("{field}.configMap: ConfigMap `{}`: {e}", cm.name))?
        } else if let Some(secret) = &source.secret {
            let entries = manifest.secret_entries(&secret.name);
            volume_files(
                entries.as_ref(),
                secret.items.as_deref(),
                default_mode,
                secret.optional == Some(true),
            )
            .map_err(|e| format!("{field}.secret: Secret `{}`: {e}", secret.name))?
        } else if let Some(downward) = &source.downward_api {
            downward_files(
                pod,
                fields,
                downward.items.as_deref().unwrap_or(&[]),
                default_mode,
            )
            .map_err(|e| format!("{field}.downwardAPI.{e}"))?
        } else {
            return Err(format!(
                "{field}: Required value: a configMap, secret or downwardAPI source"
            ));
        };
        for file in found {
            if files.iter().any(|f| f.path == file.path) {
                return Err(format!(
                    "{field}: Invalid value: {:?}: conflicting duplicate paths",
                    file.path
                ));
            }
            files.push(file);
        }
    }
    Ok(files)
}

/// A `defaultMode` from the manifest, or Kubernetes' default 0644.
fn file_mode(mode: Option<i32>, field: &str) -> Result<u32, String> {
    Ok(optional_file_mode(mode, field)?.unwrap_or(DEFAULT_FILE_MODE))
}

/// A file mode from the manifest: 0 to 0777 (Kubernetes' rule).
fn optional_file_mode(mode: Option<i32>, field: &str) -> Result<Option<u32>, String> {
    match mode {
        None => Ok(None),
        Some(m) if (0..=0o777).contains(&m) => Ok(Some(m as u32)),
        Some(m) => Err(format!(
            "{field}: {m} is not a file mode between 0 and 0777 (decimal 511); \
             hint: write it in octal with a leading 0o or 0, e.g. 0644, or in decimal, e.g. 420"
        )),
    }
}

/// A relative path without `..` (subPath, items[].path).
pub fn check_relative(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || Path::new(path)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        Err(format!("`{path}` must be a relative path without `..`"))
    } else {
        Ok(())
    }
}

/// The mounts of one container. `field` is the container's field path, for messages.
pub fn container_mounts(
    volumes: &PodVolumes,
    spec_volumes: &[Volume],
    mounts: &[podrun_manifest::k8s_openapi::api::core::v1::VolumeMount],
    dirs: &PodLayout,
    field: &str,
) -> Result<Vec<MountPlan>, String> {
    let mut plans = Vec::new();
    for (j, mount) in mounts.iter().enumerate() {
        let path = format!("{field}.volumeMounts[{j}]");
        let Some(volume) = spec_volumes.iter().find(|v| v.name == mount.name) else {
            return Err(format!(
                "{path}.name: volume `{}` is not defined in spec.volumes",
                mount.name
            ));
        };
        let (volume_path, always_readonly) = if volumes.empty_dirs.contains(&volume.name) {
            (dirs.data_volume(&volume.name), false)
        } else if let Some(host) = volumes.host_paths.iter().find(|h| h.name == volume.name) {
            (host.path.clone(), false)
        } else if let Some(files) = volumes.files.iter().find(|f| f.name == volume.name) {
            (files.dir.clone(), true)
        } else if let Some(claim) = volumes.claims.iter().find(|c| c.name == volume.name) {
            (claim.data_dir(), claim.read_only)
        } else {
            return Err(format!(
                "{path}.name: volume `{}` has no source",
                mount.name
            ));
        };
        let sub_path = mount.sub_path.clone().filter(|s| !s.is_empty());
        if let Some(sub) = &sub_path {
            check_relative(sub).map_err(|e| format!("{path}.subPath: {e}"))?;
        }
        plans.push(MountPlan {
            volume: volume.name.clone(),
            volume_path,
            sub_path,
            destination: mount.mount_path.clone(),
            readonly: always_readonly || mount.read_only == Some(true),
        });
    }
    Ok(plans)
}

/// A quantity of bytes (`64Mi`, `1.5Gi`, `129e6`), rounded up.
fn bytes(text: &str) -> Option<u64> {
    podrun_process::Quantity::parse(text).map(|q| u64::try_from(q.value()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_pick_keys_paths_and_modes() {
        let entries: BTreeMap<String, Vec<u8>> = [
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]
        .into();
        let all = volume_files(Some(&entries), None, 0o644, false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].mode, 0o644);
        let items = [KeyToPath {
            key: "b".into(),
            path: "conf/b.txt".into(),
            mode: Some(0o400),
            ..Default::default()
        }];
        let some = volume_files(Some(&entries), Some(&items), 0o600, false).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!((some[0].path.as_str(), some[0].mode), ("conf/b.txt", 0o400));
        assert!(volume_files(None, None, 0o644, false)
            .unwrap_err()
            .contains("not found"));
        assert!(volume_files(None, None, 0o644, true).unwrap().is_empty());
        assert!(file_mode(Some(644), "defaultMode")
            .unwrap_err()
            .contains("not a file mode"));
    }

    fn loaded(text: &str) -> Manifest {
        podrun_manifest::load_str("t.yaml", text, &Default::default()).unwrap()
    }

    const DOWNWARD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: "1", b: "2"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {token: t0ken}
---
apiVersion: v1
kind: Pod
metadata:
  name: info
  labels: {app: web, tier: front}
spec:
  containers:
  - name: app
    image: busybox
    resources: {limits: {memory: 64Mi}}
  volumes:
  - name: podinfo
    downwardAPI:
      defaultMode: 0440
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: mem, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}, mode: 0400}
  - name: all
    projected:
      defaultMode: 0444
      sources:
      - configMap: {name: cm, items: [{key: b, path: conf/b, mode: 0600}]}
      - secret: {name: sec}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
"#;

    #[test]
    fn downward_api_and_projected_files() {
        let manifest = loaded(DOWNWARD);
        let dir = tempfile::tempdir().unwrap();
        let dirs = PodLayout::new(dir.path().join("run"), dir.path().join("data"));
        let fields = PodFields::default();
        let claims = VolumeRoot(dir.path().join("volumes"));
        let volumes = plan(&manifest.pods[0], &manifest, &fields, &dirs, &claims, "t").unwrap();
        let files = |name: &str| -> Vec<(String, u32, String)> {
            let volume = volumes.files.iter().find(|v| v.name == name).unwrap();
            volume
                .files
                .iter()
                .map(|f| {
                    (
                        f.path.clone(),
                        f.mode,
                        String::from_utf8(f.data.clone()).unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(
            files("podinfo"),
            [
                (
                    "labels".to_string(),
                    0o440,
                    "app=\"web\"\ntier=\"front\"".to_string()
                ),
                ("mem".to_string(), 0o400, "64".to_string()),
            ]
        );
        assert_eq!(
            files("all"),
            [
                ("conf/b".to_string(), 0o600, "2".to_string()),
                ("token".to_string(), 0o444, "t0ken".to_string()),
                ("name".to_string(), 0o444, "info".to_string()),
            ]
        );
        let all = volumes.files.iter().find(|v| v.name == "all").unwrap();
        assert!(
            all.dir.starts_with(dir.path().join("run")),
            "projected volumes may hold secrets: tmpfs"
        );

        let owned = DOWNWARD.replace(
            "defaultMode: 0440",
            "defaultMode: 0440\n      defaultUser: 1000",
        );
        let manifest = loaded(&owned);
        let err = plan(&manifest.pods[0], &manifest, &fields, &dirs, &claims, "t").unwrap_err();
        assert!(
            err.to_string()
                .contains("spec.volumes[0].downwardAPI.defaultUser: per-file owners"),
            "{err}"
        );

        let refused = DOWNWARD.replace(
            "- secret: {name: sec}",
            "- serviceAccountToken: {path: token}",
        );
        let manifest = podrun_manifest::load_str("t.yaml", &refused, &Default::default());
        assert!(manifest
            .unwrap_err()
            .to_string()
            .contains("serviceAccountToken: Forbidden"));
    }

    const CLAIMED: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, storageClassName: local}
---
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: v, mountPath: /data}, {name: cache, mountPath: /cache, subPath: x}]
  volumes:
  - {name: v, persistentVolumeClaim: {claimName: data}}
  - {name: cache, persistentVolumeClaim: {claimName: cache, readOnly: true}}
"#;

    #[test]
    fn claims_are_the_named_volumes_of_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = PodLayout::new(dir.path().join("run"), dir.path().join("data"));
        let root = VolumeRoot(dir.path().join("volumes"));
        let fields = PodFields::default();
        let manifest = loaded(CLAIMED);
        let pod = &manifest.pods[0];
        // `cache` is neither in the file nor a volume yet.
        let errors = check_claims(pod, &manifest, &root);
        assert_eq!(
            errors,
            ["t.yaml: document 2: pod `default/app`: spec.volumes[1].persistentVolumeClaim.claimName: PersistentVolumeClaim `cache` not found in namespace default: the file defines no such claim and no volume of that name exists (podrun volume ls lists them); add a PersistentVolumeClaim `cache` to the file"]
        );
        let err = plan(pod, &manifest, &fields, &dirs, &root, "t").unwrap_err();
        assert!(err
            .to_string()
            .contains("spec.volumes[1].persistentVolumeClaim.claimName"));

        // Once its volume exists, it is used as it is.
        podrun_pod_model::claims::ensure(&root.dir("default", "cache"), None).unwrap();
        assert!(check_claims(pod, &manifest, &root).is_empty());
        let volumes = plan(pod, &manifest, &fields, &dirs, &root, "t").unwrap();
        assert_eq!(volumes.claims.len(), 2);
        let data = &volumes.claims[0];
        assert_eq!((data.name.as_str(), data.claim.as_str()), ("v", "data"));
        assert_eq!(data.dir, root.dir("default", "data"));
        assert!(!data.read_only);
        let meta = data.meta.as_ref().unwrap();
        assert_eq!(meta.storage.as_deref(), Some("1Gi"));
        assert_eq!(meta.storage_class.as_deref(), Some("local"));
        assert_eq!(meta.access_modes, ["ReadWriteOnce"]);
        assert_eq!(meta.created_by.as_ref().unwrap().pod, "default/app");
        assert!(volumes.claims[1].read_only);
        assert!(volumes.claims[1].meta.is_none(), "not the file's claim");

        let spec = pod.pod.spec.as_ref().unwrap();
        let mounts = container_mounts(
            &volumes,
            spec.volumes.as_deref().unwrap(),
            spec.containers[0].volume_mounts.as_deref().unwrap(),
            &dirs,
            "spec.containers[0]",
        )
        .unwrap();
        assert_eq!(
            mounts[0].volume_path,
            root.dir("default", "data").join("_data")
        );
        assert!(!mounts[0].readonly);
        assert!(mounts[1].readonly, "readOnly claim");
        assert_eq!(
            mounts[1].create_mode(),
            0o777,
            "subPath in a claim's volume"
        );
    }

    #[test]
    fn stateful_set_pods_mount_their_own_claims() {
        let manifest = loaded(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: a, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
        );
        let dir = tempfile::tempdir().unwrap();
        let dirs = PodLayout::new(dir.path().join("run"), dir.path().join("data"));
        let root = VolumeRoot(dir.path().join("volumes"));
        for (i, pod) in manifest.pods.iter().enumerate() {
            let volumes = plan(pod, &manifest, &PodFields::default(), &dirs, &root, "t").unwrap();
            let claim = &volumes.claims[0];
            assert_eq!(claim.claim, format!("data-web-{i}"));
            let meta = claim.meta.as_ref().unwrap();
            assert_eq!(meta.owner.as_deref(), Some("StatefulSet/web"));
        }
    }
}
