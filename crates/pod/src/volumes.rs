//! The named volumes of PersistentVolumeClaims (podrun-pod-model's `claims`), as `podrun
//! volume ls`, `inspect` and `rm` and `down --volumes` see them: each with the pods whose
//! plan mounts it.

use podrun_pod_model::claims::Volume;
use podrun_pod_model::plan::Plan;
use podrun_pod_model::{display_name, PodDirs, PodError};

use crate::listing::PodEntry;

/// A volume and the pods that mount it.
#[derive(Debug, Clone)]
pub struct VolumeEntry {
    pub volume: Volume,
    /// `namespace/name` of the pods whose plan mounts the volume, sorted.
    pub used_by: Vec<String>,
    /// Those of them whose supervisor runs.
    pub running: Vec<String>,
}

impl VolumeEntry {
    pub fn namespace(&self) -> &str {
        &self.volume.meta.namespace
    }

    pub fn name(&self) -> &str {
        &self.volume.meta.name
    }
}

/// The claims (`namespace`, `claim`) each pod's plan mounts.
fn mounts(pods: &[PodEntry]) -> Vec<(&PodEntry, Vec<(String, String)>)> {
    pods.iter()
        .map(|pod| {
            let claims = Plan::read(&pod.runtime_dir)
                .map(|plan| {
                    plan.volumes
                        .claims
                        .iter()
                        .map(|c| (plan.namespace.clone(), c.claim.clone()))
                        .collect()
                })
                .unwrap_or_default();
            (pod, claims)
        })
        .collect()
}

/// The pods of `pods` that mount each of `volumes`.
fn with_users(volumes: Vec<Volume>, pods: &[PodEntry]) -> Vec<VolumeEntry> {
    let mounted = mounts(pods);
    volumes
        .into_iter()
        .map(|volume| {
            let key = (volume.meta.namespace.clone(), volume.meta.name.clone());
            let users: Vec<&PodEntry> = mounted
                .iter()
                .filter(|(_, claims)| claims.contains(&key))
                .map(|(pod, _)| *pod)
                .collect();
            VolumeEntry {
                used_by: users
                    .iter()
                    .map(|p| display_name(&p.namespace, &p.name))
                    .collect(),
                running: users
                    .iter()
                    .filter(|p| p.supervisor_alive)
                    .map(|p| display_name(&p.namespace, &p.name))
                    .collect(),
                volume,
            }
        })
        .collect()
}

/// Every volume (of `namespace` only, when given), sorted by namespace and name.
pub fn list(dirs: &PodDirs, namespace: Option<&str>) -> Result<Vec<VolumeEntry>, PodError> {
    let mut volumes = dirs.volumes().list()?;
    volumes.retain(|v| namespace.is_none_or(|ns| v.meta.namespace == ns));
    let pods = crate::listing::list(dirs)?;
    Ok(with_users(volumes, &pods))
}

/// Volume `namespace/name`, if it exists.
pub fn get(dirs: &PodDirs, namespace: &str, name: &str) -> Result<Option<VolumeEntry>, PodError> {
    let root = dirs.volumes();
    if !valid_name(namespace) || !valid_name(name) || !root.exists(namespace, name) {
        return Ok(None);
    }
    let pods = crate::listing::list(dirs)?;
    Ok(with_users(vec![root.get(namespace, name)], &pods).pop())
}

/// A name that is one path component of the volumes' directory (claim names are RFC 1123
/// subdomains; this keeps `..` and `/` of a command line out).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// What [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeRemoved {
    Removed,
    NotFound,
    /// Running pods mount it (`namespace/name`): left as it is.
    InUse(Vec<String>),
}

/// Removes volume `namespace/name` and its data, unless a running pod mounts it. The data
/// may hold files of the containers' users (subordinate ids): removed as a pod's directories
/// are ([`crate::remove::remove_dirs`]).
pub fn remove(dirs: &PodDirs, namespace: &str, name: &str) -> Result<VolumeRemoved, PodError> {
    let Some(entry) = get(dirs, namespace, name)? else {
        return Ok(VolumeRemoved::NotFound);
    };
    if !entry.running.is_empty() {
        return Ok(VolumeRemoved::InUse(entry.running));
    }
    crate::remove::remove_dirs(std::slice::from_ref(&entry.volume.dir))?;
    // The namespace's directory goes with its last volume.
    let _ = std::fs::remove_dir(dirs.volumes().0.join(namespace));
    Ok(VolumeRemoved::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_pod_model::claims::{ensure, VolumeMeta};

    #[test]
    fn volumes_are_listed_with_the_pods_that_mount_them_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let dirs = PodDirs::new(Some(&run), None, &tmp.path().join("data")).unwrap();
        let root = dirs.volumes();
        let meta = |ns: &str, name: &str| VolumeMeta {
            namespace: ns.into(),
            name: name.into(),
            ..VolumeMeta::default()
        };
        ensure(&root.dir("default", "data"), Some(&meta("default", "data"))).unwrap();
        ensure(&root.dir("team", "logs"), Some(&meta("team", "logs"))).unwrap();
        std::fs::write(root.dir("default", "data").join("_data/f"), "x").unwrap();

        // A pod (no supervisor: not running) whose plan mounts default/data.
        let pod_dir = dirs.runtime_dir("default", "web");
        std::fs::create_dir_all(&pod_dir).unwrap();
        let plan = serde_json::json!({
            "namespace": "default", "name": "web", "uid": "u", "hostname": "web",
            "share_process_namespace": false, "restart_policy": "Always",
            "termination_grace_period_seconds": 30, "runtime_dir": pod_dir, "data_dir": "/x",
            "volumes": {"empty_dirs": [], "memory": [], "files": [], "host_paths": [],
                "claims": [{"name": "v", "claim": "data", "dir": root.dir("default", "data")}]},
            "containers": [], "created": "2026-01-01T00:00:00Z"
        });
        std::fs::write(pod_dir.join("plan.json"), plan.to_string()).unwrap();

        let all = list(&dirs, None).unwrap();
        let shown: Vec<(&str, &str, Vec<String>)> = all
            .iter()
            .map(|v| (v.namespace(), v.name(), v.used_by.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                ("default", "data", vec!["default/web".to_string()]),
                ("team", "logs", vec![])
            ]
        );
        assert!(all[0].running.is_empty());
        assert_eq!(list(&dirs, Some("team")).unwrap().len(), 1);

        assert!(get(&dirs, "default", "..").unwrap().is_none());
        assert_eq!(
            remove(&dirs, "default", "nope").unwrap(),
            VolumeRemoved::NotFound
        );
        assert_eq!(
            remove(&dirs, "default", "data").unwrap(),
            VolumeRemoved::Removed
        );
        assert!(!root.exists("default", "data"));
        assert!(!root.0.join("default").exists(), "empty namespace removed");
        assert_eq!(
            remove(&dirs, "team", "logs").unwrap(),
            VolumeRemoved::Removed
        );
        assert!(list(&dirs, None).unwrap().is_empty());
    }
}
