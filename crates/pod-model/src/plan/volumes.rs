//! Pod volumes as the plan holds them: planned from the pod spec by podrun-planner
//! (`volumes`), prepared and mounted by podrun-supervisor (`volumes`).
//!
//! | volume | where it lives | removed with the pod |
//! |---|---|---|
//! | emptyDir | `data_dir/volumes/<name>/` (a tmpfs there for `medium: Memory`) | yes |
//! | configMap, downwardAPI | `data_dir/volumes/<name>/`, files written by the supervisor | yes |
//! | secret, projected | `runtime_dir/volumes/<name>/` (XDG_RUNTIME_DIR is a tmpfs: secrets stay off disk, as the kubelet keeps them) | yes |
//! | hostPath | the host path itself | no |
//! | persistentVolumeClaim | `data_dir/volumes/<namespace>/<claim>/_data` (see [`crate::claims`]) | no |
//!
//! configMap, secret, downwardAPI and projected volumes are mounted read-only, as the kubelet
//! does. Their files are plain files (the kubelet's `..data` symlink farm exists for atomic
//! updates, which a pod played from a file never gets). A projected volume joins configMap,
//! secret and downwardAPI sources in one directory; its serviceAccountToken,
//! clusterTrustBundle and podCertificate sources need an API server and are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default file mode of configMap and secret volumes (`defaultMode`), as in Kubernetes.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// A memory-backed emptyDir (`medium: Memory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryVolume {
    pub name: String,
    /// `sizeLimit` in bytes; None: tmpfs's default (half the host's memory).
    pub size_limit: Option<u64>,
}

/// A volume whose files podrun writes: a configMap or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileVolume {
    pub name: String,
    pub dir: PathBuf,
    pub files: Vec<VolumeFile>,
}

/// One file of a [`FileVolume`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFile {
    /// Relative to the volume (validated: no `..`, not absolute).
    pub path: String,
    pub mode: u32,
    #[serde(with = "crate::bytes")]
    pub data: Vec<u8>,
}

/// A hostPath volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPathVolume {
    pub name: String,
    pub path: PathBuf,
    /// `hostPath.type`: "" (no check), `Directory`, `DirectoryOrCreate`, `File`,
    /// `FileOrCreate`, `Socket`, `CharDevice`, `BlockDevice`.
    pub kind: String,
}

/// A `persistentVolumeClaim` volume: the named volume of the claim, in the pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimVolume {
    /// The pod's name for the volume (`spec.volumes[].name`).
    pub name: String,
    /// `claimName`.
    pub claim: String,
    /// The volume's directory (`volumes/<namespace>/<claim>`; the pod mounts its `_data`).
    pub dir: PathBuf,
    /// `persistentVolumeClaim.readOnly`: every mount of it is read-only.
    #[serde(default)]
    pub read_only: bool,
    /// The claim as the file defines it, recorded when the volume is made; `None` for a
    /// claim the file does not define (the volume exists already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::claims::VolumeMeta>,
}

impl ClaimVolume {
    /// The directory the containers mount.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(crate::claims::DATA_DIR)
    }
}

/// The mode of an emptyDir without `emptyDir.mode`: Kubernetes makes them world-writable.
pub const EMPTY_DIR_MODE: u32 = 0o777;

/// Every volume of a pod, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodVolumes {
    /// emptyDir volumes (directories under `data_dir/volumes`), also the memory ones.
    pub empty_dirs: Vec<String>,
    /// `emptyDir.mode` of the emptyDirs that set it (others get [`EMPTY_DIR_MODE`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub empty_dir_modes: BTreeMap<String, u32>,
    /// The emptyDir volumes with `medium: Memory`: each is one tmpfs, mounted by the supervisor
    /// on its directory, so it lives exactly as long as the pod.
    pub memory: Vec<MemoryVolume>,
    pub files: Vec<FileVolume>,
    pub host_paths: Vec<HostPathVolume>,
    /// persistentVolumeClaim volumes: named volumes that outlive the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimVolume>,
}

/// A bind mount of a volume (or a subPath of one) into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    pub volume: String,
    /// The volume's directory (or file, for a hostPath of a file).
    pub volume_path: PathBuf,
    /// `subPath`: relative, without `..`. The supervisor resolves it inside the volume,
    /// creating missing directories, and refuses one that leaves the volume (a symlink).
    pub sub_path: Option<String>,
    pub destination: String,
    pub readonly: bool,
}

impl PodVolumes {
    /// The mode of emptyDir `name`'s directory: its `emptyDir.mode`, else [`EMPTY_DIR_MODE`].
    pub fn empty_dir_mode(&self, name: &str) -> u32 {
        self.empty_dir_modes
            .get(name)
            .copied()
            .unwrap_or(EMPTY_DIR_MODE)
    }
}

impl MountPlan {
    /// The mode of subPath directories the supervisor creates: world-writable in an emptyDir
    /// or a claim's volume (like the volume itself), 0755 elsewhere (never a world-writable
    /// directory on the host).
    pub fn create_mode(&self) -> u32 {
        let in_claim = self.volume_path.ends_with(crate::claims::DATA_DIR)
            && self
                .volume_path
                .ancestors()
                .nth(3)
                .is_some_and(|root| root.ends_with("volumes"));
        if in_claim
            || self
                .volume_path
                .ends_with(Path::new("volumes").join(&self.volume))
        {
            0o777
        } else {
            0o755
        }
    }
}

/// Checks a hostPath against its `type` (`hostPath.type`): by the planner before anything
/// starts, and by the supervisor when it prepares the volume. The `...OrCreate` types are
/// created by the supervisor.
pub fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    if !path.is_absolute() {
        return Err(format!("path `{}` must be absolute", path.display()));
    }
    let meta = std::fs::metadata(path);
    let file_type = meta.as_ref().ok().map(|m| m.file_type());
    let is = |wanted: &str, ok: bool| -> Result<(), String> {
        match (&file_type, ok) {
            (None, _) => Err(format!(
                "`{}` does not exist (type {kind} requires an existing {wanted}; \
                 hint: use type {wanted}OrCreate or create it)",
                path.display()
            )),
            (Some(_), true) => Ok(()),
            (Some(_), false) => Err(format!(
                "`{}` is not a {wanted} (type {kind})",
                path.display()
            )),
        }
    };
    let parent_exists = || -> Result<(), String> {
        match path.parent() {
            Some(parent) if !parent.is_dir() => Err(format!(
                "the directory of `{}` does not exist (type {kind} creates only the file)",
                path.display()
            )),
            _ => Ok(()),
        }
    };
    match kind {
        "" => Ok(()),
        "Directory" => is("Directory", file_type.is_some_and(|t| t.is_dir())),
        "File" => is("File", file_type.is_some_and(|t| t.is_file())),
        "Socket" => is("Socket", file_type.is_some_and(|t| t.is_socket())),
        "CharDevice" => is("CharDevice", file_type.is_some_and(|t| t.is_char_device())),
        "BlockDevice" => is(
            "BlockDevice",
            file_type.is_some_and(|t| t.is_block_device()),
        ),
        "DirectoryOrCreate" => match file_type {
            Some(t) if !t.is_dir() => Err(format!("`{}` is not a directory", path.display())),
            _ => Ok(()),
        },
        "FileOrCreate" => match file_type {
            Some(t) if !t.is_file() => Err(format!("`{}` is not a file", path.display())),
            Some(_) => Ok(()),
            None => parent_exists(),
        },
        other => Err(format!("type `{other}` is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_types_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(check_host_path(dir.path(), "Directory").is_ok());
        assert!(check_host_path(&file, "File").is_ok());
        assert!(check_host_path(&file, "Directory")
            .unwrap_err()
            .contains("is not a Directory"));
        let missing = dir.path().join("missing");
        assert!(check_host_path(&missing, "Directory")
            .unwrap_err()
            .contains("does not exist"));
        assert!(check_host_path(&missing, "DirectoryOrCreate").is_ok());
        assert!(check_host_path(&missing.join("f"), "FileOrCreate")
            .unwrap_err()
            .contains("directory of"));
        assert!(check_host_path(Path::new("rel"), "")
            .unwrap_err()
            .contains("absolute"));
    }
}
