//! Taking a pod down, the one way every command does it: `podrun down`, `play --replace`,
//! `play --wait` when its pods complete or it is interrupted, and a `play` whose start
//! failed. The supervisor is asked to stop the pod ([`crate::stop`]); whatever it could not
//! remove (it was killed, or never ran) is removed here.

use std::path::PathBuf;
use std::time::Duration;

use podrun_pod_model::{PodDirs, PodError};

use crate::lock::PodLock;
use crate::stop::{stop_processes, Stopped};
pub use crate::stop::{Stop, Waiting, SLOW_STOP};

/// How long past a pod's grace period its supervisor gets before the pod is killed here.
pub const EXTRA_WAIT: Duration = Duration::from_secs(10);

/// How long a removal waits for a `play` that is starting the pod: a little longer than
/// play itself waits for the pod to start (its pulls are done by then).
pub const PLAY_WAIT: Duration = Duration::from_secs(310);

/// The pod lock, as the caller has it.
pub enum Lock<'a> {
    /// Take it first, waiting for a `play` that is starting the pod (up to [`PLAY_WAIT`]);
    /// the callback is called once if it has to wait (to say so).
    Take(&'a dyn Fn()),
    /// The caller holds it (a `play` undoing its own failed start).
    Held,
}

/// What [`stop_and_remove`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// There was no such pod.
    NotFound,
    /// The pod was stopped and everything of it removed.
    Removed,
}

/// Stops pod `namespace/name` as `stop` says (its supervisor gets the grace period plus
/// `stop.extra`) and removes its directories.
pub fn stop_and_remove(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
    lock: Lock,
    stop: &Stop,
) -> Result<Removed, PodError> {
    // A `down --grace-period 0` while another `down` waits out the pod's grace period: the
    // supervisor gets the shorter one now, and this side waits for the pod's lock.
    let hurried = matches!(lock, Lock::Take(_))
        && stop
            .grace
            .is_some_and(|grace| crate::stop::hurry(&dirs.pod(namespace, name), grace));
    let _lock = match lock {
        Lock::Take(_) if hurried => {
            PodLock::existing(&dirs.runtime_dir(namespace, name), PLAY_WAIT, &|| {})?
        }
        Lock::Take(on_wait) => {
            PodLock::existing(&dirs.runtime_dir(namespace, name), PLAY_WAIT, on_wait)?
        }
        Lock::Held => None,
    };
    match stop_processes(dirs, namespace, name, stop)? {
        // Removed by the stop this one cut short.
        Stopped::NotFound if hurried => Ok(Removed::Removed),
        Stopped::NotFound => Ok(Removed::NotFound),
        Stopped::Clean => Ok(Removed::Removed),
        Stopped::Forced => {
            let layout = dirs.pod(namespace, name);
            remove_dirs(&[layout.data_dir, layout.runtime_dir])?;
            Ok(Removed::Removed)
        }
    }
}

/// Removes directories that may hold files of subordinate ids (container layers, overlayfs
/// work directories): directly when possible, else with `rm -rf` run in podrun's user
/// namespace (`podrun unshare`, this binary), as the caller may not enter it any more.
pub fn remove_dirs(dirs: &[PathBuf]) -> Result<(), PodError> {
    let left: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| podrun_pod_model::remove_tree(d).is_err() || d.exists())
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    let status = std::process::Command::new("/proc/self/exe")
        .args(["unshare", "rm", "-rf", "--"])
        .args(&left)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(PodError::io("cannot run `podrun unshare rm -rf`"))?;
    match left.iter().find(|d| d.exists()) {
        Some(dir) => Err(PodError::msg(format!(
            "cannot remove {} (`podrun unshare rm -rf` ended with {status})",
            dir.display()
        ))),
        None => Ok(()),
    }
}
