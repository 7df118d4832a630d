//! Signalling and deleting containers, removing their directories.

use std::path::Path;

use libcontainer::container::{Container, ContainerStatus};
use nix::sys::signal::Signal;

use crate::{error_chain, RuntimeError};

fn load(state_root: &Path, id: &str) -> Result<Container, RuntimeError> {
    let dir = state_root.join(id);
    if !dir.join("state.json").exists() {
        return Err(RuntimeError::NotFound {
            id: id.to_string(),
            state_root: state_root.display().to_string(),
        });
    }
    Container::load(dir).map_err(|e| RuntimeError::Libcontainer(error_chain(&e)))
}

/// Sends `signal` to the container's init (libcontainer's `kill(signal, all = false)`; the
/// `all` variant needs a cgroup to list the processes, which rootless containers here do not
/// have). A container whose init is gone already is left alone (`Ok`).
///
/// Notes for the supervisor:
/// * a container with a pid namespace of its own has its command as pid 1, which receives only
///   the signals it has a handler for: SIGTERM does nothing to `sleep`, so follow up with
///   SIGKILL after the grace period (or use a shared pid namespace, where it is not pid 1);
/// * the state stores the init's pid. Once the supervisor has reaped the init, that pid may be
///   reused: do not signal a reaped container, delete it.
pub fn kill_container(state_root: &Path, id: &str, signal: Signal) -> Result<(), RuntimeError> {
    let mut container = load(state_root, id)?;
    container
        .refresh_status()
        .map_err(|e| RuntimeError::Libcontainer(error_chain(&e)))?;
    if container.status() == ContainerStatus::Stopped {
        return Ok(());
    }
    container
        .kill(signal, false)
        .map_err(|e| RuntimeError::Libcontainer(error_chain(&e)))
}

/// Deletes the container's libcontainer state (`state_root/id`) after it stopped. Deleting a
/// container that does not exist is not an error. The container's directories (bundle, upper,
/// work) are left to [`remove_container_dirs`].
pub fn delete_container(state_root: &Path, id: &str) -> Result<(), RuntimeError> {
    let mut container = match load(state_root, id) {
        Ok(container) => container,
        Err(RuntimeError::NotFound { .. }) => {
            // A directory without a state file (a create that died half-way) is removed too.
            let dir = state_root.join(id);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| RuntimeError::io(format!("cannot remove {}", dir.display()), e))?;
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    container
        .refresh_status()
        .map_err(|e| RuntimeError::Libcontainer(error_chain(&e)))?;
    if container.status() != ContainerStatus::Stopped {
        return Err(RuntimeError::StillRunning { id: id.to_string() });
    }
    match container.delete(false) {
        Ok(()) => Ok(()),
        Err(e) => {
            // libcontainer also tries to remove the container's cgroup, which a rootless
            // container never got; whatever it reports, the state directory must go.
            let dir = state_root.join(id);
            tracing::debug!(id, error = %error_chain(&e), "libcontainer delete failed; removing the state directory");
            std::fs::remove_dir_all(&dir).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(RuntimeError::io(
                    format!("cannot remove {}", dir.display()),
                    e,
                )),
            })
        }
    }
}

/// Removes a stopped container's bundle directory (config.json and the empty rootfs mount
/// point), its overlay upper directory and its work directory.
///
/// Call it inside the pod's user namespace (the supervisor is): the upper directory holds files
/// of the container's users (subordinate ids) and overlayfs leaves `work/work` with mode 000,
/// which only namespace root can remove. Never call it while the container runs: removing the
/// rootfs mount point would detach the container's root filesystem.
pub fn remove_container_dirs(
    bundle_dir: &Path,
    upper_dir: &Path,
    work_dir: &Path,
) -> Result<(), RuntimeError> {
    for dir in [bundle_dir, upper_dir, work_dir] {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RuntimeError::io(
                    format!("cannot remove {}", dir.display()),
                    e,
                ))
            }
        }
    }
    Ok(())
}
