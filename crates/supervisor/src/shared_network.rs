//! `play --network shared` (experimental, issue 17): the pod joins the user's shared pod
//! network (podrun-podnet) instead of getting a user namespace of its own from newuidmap
//! and a slirp4netns of its own.
//!
//! First thing, still in the host's namespaces and single-threaded, the supervisor connects
//! to the network holder (starting it as `podrun network-holder` if none runs), enters the
//! holder's user namespace, unshares its own user and network namespaces (a child of the
//! holder's, so the holder can write its id maps) and asks to be attached. It comes back
//! root of the pod's user namespace, with the same ids as newuidmap would have given it,
//! and `eth0` with a leased address in a network namespace of its own, which the pod's
//! sandbox then keeps ([`crate::network::become_sandbox`]). The holder releases the address
//! and deletes the veth when the supervisor ends.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use podrun_pod_model::process::{NETWORK_DIR_ENV, NETWORK_HOLDER_ROLE, PROGRAM};
use podrun_pod_model::PodError;

/// The shared network's directory: `network` beside `pods` in podrun's runtime directory
/// (`pod_runtime_dir` is `$XDG_RUNTIME_DIR/podrun/pods/<ns>_<name>`).
pub(crate) fn paths(pod_runtime_dir: &Path) -> Option<podrun_podnet::Paths> {
    let podrun_runtime_dir = pod_runtime_dir.parent()?.parent()?;
    Some(podrun_podnet::Paths::in_runtime_dir(podrun_runtime_dir))
}

/// Puts this process (the supervisor, single-threaded, in the host's user namespace) on the
/// shared network and has the holder publish `ports` to it; returns the pod's address.
pub(crate) fn join(
    pod_runtime_dir: &Path,
    pod: &str,
    ports: &[podrun_network::PortMapping],
) -> Result<String, PodError> {
    let fail = |e: podrun_podnet::PodnetError| {
        PodError::msg(format!("pod `{pod}`: the shared network: {e}"))
    };
    let paths = paths(pod_runtime_dir)
        .ok_or_else(|| PodError::msg(format!("pod `{pod}`: no runtime directory")))?;
    let holder = podrun_podnet::start::connect(&paths, || holder_command(&paths)).map_err(fail)?;
    let attachment = podrun_podnet::client::attach_self(holder, pod, ports).map_err(fail)?;
    tracing::info!(
        address = %attachment.address,
        interface = %attachment.interface,
        "attached to the shared network"
    );
    Ok(attachment.address.to_string())
}

/// `podrun network-holder`: this binary in the holder's role (see the CLI). It inherits
/// none of the supervisor's descriptors (play's ready pipe, the owner's pidfd, the pod's
/// files): it outlives the pod.
fn holder_command(paths: &podrun_podnet::Paths) -> Command {
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(PROGRAM)
        .arg(NETWORK_HOLDER_ROLE)
        .env(NETWORK_DIR_ENV, &paths.dir);
    // SAFETY: only fcntl, async-signal-safe, between fork and exec. podrun-podnet's start
    // clears close-on-exec of its ready pipe after this (its pre_exec runs later).
    unsafe {
        command.pre_exec(|| {
            for fd in 3..1024 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            Ok(())
        });
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_is_beside_the_pods() {
        let paths = paths(Path::new("/run/user/7/podrun/pods/default_web")).unwrap();
        assert_eq!(paths.dir, Path::new("/run/user/7/podrun/network"));
    }
}
