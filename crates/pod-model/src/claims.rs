//! Named volumes: what a PersistentVolumeClaim of a file becomes, as `podman kube play` makes
//! one per claim. A volume outlives the pods that mount it (`down` leaves it; `down
//! --volumes` and `podrun volume rm` remove it):
//!
//! ```text
//! $XDG_DATA_HOME/podrun/volumes/<namespace>/<claim>/   (/var/lib/podrun/volumes/... for root)
//!   volume.json   what the claim asked for, and which file and pod made the volume
//!   _data/        what the pods see (mode 0777, as an emptyDir)
//! ```
//!
//! The planner puts each claim a pod mounts in its plan ([`crate::plan::volumes::ClaimVolume`]);
//! the supervisor makes the volume on first use ([`ensure`]); podrun-pod's `volumes` lists
//! and removes them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::PodError;

/// The metadata file of a volume.
pub const META_FILE: &str = "volume.json";
/// The directory the pods mount.
pub const DATA_DIR: &str = "_data";
/// The mode of a new volume's `_data`: world-writable, as an emptyDir, so that the pod's
/// users (whatever their uid) can write.
pub const DATA_MODE: u32 = 0o777;

/// Where the named volumes are: `data_dir/volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRoot(pub PathBuf);

impl VolumeRoot {
    /// The volume of claim `name` in `namespace`.
    pub fn dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.0.join(namespace).join(name)
    }

    /// Whether the volume of claim `namespace/name` exists (its directory does).
    pub fn exists(&self, namespace: &str, name: &str) -> bool {
        self.dir(namespace, name).is_dir()
    }

    /// Every volume, sorted by namespace and name; a volume whose metadata is missing or
    /// unreadable (made by hand, or a crash between its two writes) is listed with what
    /// its path says.
    pub fn list(&self) -> Result<Vec<Volume>, PodError> {
        let mut out = Vec::new();
        for namespace in sorted_dirs(&self.0)? {
            for name in sorted_dirs(&self.0.join(&namespace))? {
                out.push(self.get(&namespace, &name));
            }
        }
        Ok(out)
    }

    /// The volume of claim `namespace/name` (which must exist).
    pub fn get(&self, namespace: &str, name: &str) -> Volume {
        let dir = self.dir(namespace, name);
        let meta = read_meta(&dir).unwrap_or_else(|| VolumeMeta {
            namespace: namespace.to_string(),
            name: name.to_string(),
            ..VolumeMeta::default()
        });
        Volume { dir, meta }
    }
}

/// The names of the directories in `dir`, sorted; none when it does not exist.
fn sorted_dirs(dir: &Path) -> Result<Vec<String>, PodError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PodError::io(format!("cannot read {}", dir.display()))(e)),
    };
    let mut names: Vec<String> = read
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// One volume on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// `volumes/<namespace>/<claim>`.
    pub dir: PathBuf,
    pub meta: VolumeMeta,
}

impl Volume {
    /// The directory the pods mount.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(DATA_DIR)
    }
}

/// Which pod of which file made a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    /// The manifest, as an absolute path when it was a file (`<stdin>` otherwise).
    pub file: String,
    /// `namespace/name` of the pod.
    pub pod: String,
}

/// `volume.json`: the claim as the file gave it, and where the volume came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub namespace: String,
    pub name: String,
    /// RFC 3339; empty when unknown.
    #[serde(default)]
    pub created: String,
    /// `spec.resources.requests.storage` (recorded, not enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The StatefulSet whose `volumeClaimTemplates` made the claim (`StatefulSet/web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
}

/// Reads the metadata of the volume in `dir`.
pub fn read_meta(dir: &Path) -> Option<VolumeMeta> {
    let text = std::fs::read(dir.join(META_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Makes the volume at `dir` if it is not there yet: its `_data` directory (mode
/// [`DATA_MODE`], owned by whoever runs this: the supervisor, root of the pod's user
/// namespace, as for an emptyDir) and, when the claim is known (`meta`), its metadata with
/// the creation time. An existing volume is left as it is.
pub fn ensure(dir: &Path, meta: Option<&VolumeMeta>) -> Result<PathBuf, PodError> {
    use std::os::unix::fs::PermissionsExt;
    let data = dir.join(DATA_DIR);
    if !data.is_dir() {
        std::fs::create_dir_all(&data)
            .map_err(PodError::io(format!("cannot create {}", data.display())))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(DATA_MODE))
            .map_err(PodError::io(format!("cannot chmod {}", data.display())))?;
    }
    if let Some(meta) = meta {
        if !dir.join(META_FILE).exists() {
            let mut meta = meta.clone();
            if meta.created.is_empty() {
                meta.created = crate::now_rfc3339();
            }
            let json = serde_json::to_vec_pretty(&meta)
                .map_err(|e| PodError::msg(format!("volume {}: {e}", meta.name)))?;
            crate::write_atomic(&dir.join(META_FILE), &json)?;
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_makes_a_volume_once_and_list_finds_it() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = VolumeRoot(tmp.path().join("volumes"));
        assert!(root.list().unwrap().is_empty(), "no directory yet");
        let meta = VolumeMeta {
            namespace: "default".into(),
            name: "data".into(),
            storage: Some("1Gi".into()),
            access_modes: vec!["ReadWriteOnce".into()],
            created_by: Some(CreatedBy {
                file: "/x/app.yaml".into(),
                pod: "default/web".into(),
            }),
            ..VolumeMeta::default()
        };
        let dir = root.dir("default", "data");
        let data = ensure(&dir, Some(&meta)).unwrap();
        assert_eq!(data, dir.join("_data"));
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o777);
        std::fs::write(data.join("kept"), "x").unwrap();
        let first = read_meta(&dir).unwrap();
        assert!(!first.created.is_empty());
        assert_eq!(first.storage.as_deref(), Some("1Gi"));

        // A second use changes nothing, whatever the claim says now.
        let other = VolumeMeta {
            storage: Some("5Gi".into()),
            ..meta.clone()
        };
        ensure(&dir, Some(&other)).unwrap();
        assert_eq!(read_meta(&dir).unwrap(), first);
        assert!(data.join("kept").exists());

        // A volume without metadata (no claim known) is listed from its path.
        ensure(&root.dir("team-a", "cache"), None).unwrap();
        let all = root.list().unwrap();
        let names: Vec<(String, String)> = all
            .iter()
            .map(|v| (v.meta.namespace.clone(), v.meta.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("default".to_string(), "data".to_string()),
                ("team-a".to_string(), "cache".to_string())
            ]
        );
        assert!(all[1].meta.created.is_empty());
        assert!(root.exists("team-a", "cache"));
        assert!(!root.exists("team-a", "data"));
    }

    #[test]
    fn metadata_is_snake_case_json() {
        let meta = VolumeMeta {
            namespace: "default".into(),
            name: "data-web-0".into(),
            created: "2026-01-01T00:00:00Z".into(),
            access_modes: vec!["ReadWriteOnce".into()],
            owner: Some("StatefulSet/web".into()),
            ..VolumeMeta::default()
        };
        let json = serde_json::to_value(&meta).unwrap();
        assert_eq!(json["access_modes"][0], "ReadWriteOnce");
        assert_eq!(json["owner"], "StatefulSet/web");
        assert!(json.get("storage").is_none());
        let back: VolumeMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back, meta);
    }
}
