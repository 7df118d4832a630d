//! The pod's network at run time: the pod sandbox's network namespace (its own, or the
//! host's for `hostNetwork`) and the helper (podrun-network's slirp4netns or pasta) that
//! gives it 10.0.2.100/24 on `tap0`, a default route via 10.0.2.2, DNS at 10.0.2.3 and the
//! published ports. The backend and ports are planned by podrun-planner.
//!
//! The helper is prepared in steps, because each must happen in the right namespaces:
//! [`prepare_helper_outside_userns`] (pasta's launcher, before the pod's user namespace),
//! [`prepare_helper`] (slirp4netns' launcher, before the pod's network namespace),
//! [`become_sandbox`], then [`start_helper`] once the pod's network namespace exists.

use std::path::Path;

use podrun_network::{
    Backend, NetworkPlan, Pasta, PastaConfig, PendingPasta, PendingSlirp, PortMapping, Slirp4netns,
};

use crate::PodError;

/// What the network setup needs of the pod's plan.
pub(crate) struct PodNetwork<'a> {
    /// `pod `ns/name``, for messages.
    pub who: String,
    pub runtime_dir: &'a Path,
    pub hostname: &'a str,
    pub network: &'a NetworkPlan,
    pub ports: &'a [PortMapping],
}

/// A helper forked by the supervisor, not yet released.
pub(crate) enum PendingHelper {
    Slirp(PendingSlirp),
    Pasta(PendingPasta),
}

/// A pod's running network helper; dropping it ends the helper.
#[derive(Debug)]
pub(crate) enum Helper {
    Slirp(Slirp4netns),
    Pasta(Pasta),
}

impl Helper {
    pub(crate) fn pid(&self) -> i32 {
        match self {
            Helper::Slirp(helper) => helper.pid(),
            Helper::Pasta(helper) => helper.pid(),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Helper::Slirp(_) => "slirp4netns",
            Helper::Pasta(_) => "pasta",
        }
    }
}

/// First thing (still in the host's user and network namespaces): forks pasta's launcher,
/// which must exec pasta from outside the pod's user namespace (see podrun_network::pasta).
/// `None` for other backends.
pub(crate) fn prepare_helper_outside_userns(
    pod: &PodNetwork,
) -> Result<Option<PendingHelper>, PodError> {
    if pod.network.backend != Backend::Pasta {
        return Ok(None);
    }
    let config = PastaConfig {
        runtime_dir: pod.runtime_dir.to_path_buf(),
        allow_host_loopback: pod.network.allow_host_loopback,
        ports: pod.ports.to_vec(),
    };
    PendingPasta::prepare(config, std::process::id())
        .map(|p| Some(PendingHelper::Pasta(p)))
        .map_err(|e| PodError::msg(format!("{}: {e}", pod.who)))
}

/// In the pod's user namespace but before the pod's network namespace exists: forks
/// slirp4netns' launcher (see podrun_network::slirp); for pasta (`early`, forked already),
/// checks the TUN device from here. `None` for a pod without a helper.
pub(crate) fn prepare_helper(
    pod: &PodNetwork,
    early: Option<PendingHelper>,
) -> Result<Option<PendingHelper>, PodError> {
    let who = &pod.who;
    match pod.network.backend {
        Backend::Slirp4netns => {
            let config = podrun_network::SlirpConfig {
                runtime_dir: pod.runtime_dir.to_path_buf(),
                allow_host_loopback: pod.network.allow_host_loopback,
                ports: pod.ports.to_vec(),
            };
            PendingSlirp::prepare(config, std::process::id())
                .map(|p| Some(PendingHelper::Slirp(p)))
                .map_err(|e| PodError::msg(format!("{who}: {e}")))
        }
        Backend::Pasta => {
            podrun_network::tun::check_tun_device()
                .map_err(|e| PodError::msg(format!("{who}: {e}")))?;
            Ok(early)
        }
        // The shared network's way out is its holder's (see crate::shared_network).
        Backend::None | Backend::Host | Backend::Shared => Ok(None),
    }
}

/// Becomes the pod sandbox, with a network namespace of the pod's own unless it shares the
/// host's. On the shared network the pod's namespace exists already (made when it joined,
/// see crate::shared_network) and is kept.
pub(crate) fn become_sandbox(pod: &PodNetwork) -> Result<(), podrun_runtime::RuntimeError> {
    if matches!(pod.network.backend, Backend::Host | Backend::Shared) {
        podrun_runtime::become_pod_sandbox_in_host_network(pod.hostname)
    } else {
        podrun_runtime::become_pod_sandbox(pod.hostname)
    }
}

/// Once the pod's network namespace exists: starts the helper and publishes the ports. The
/// helper ends when the returned value is dropped.
pub(crate) fn start_helper(
    pod: &PodNetwork,
    pending: Option<PendingHelper>,
) -> Result<Option<Helper>, PodError> {
    let Some(pending) = pending else {
        return Ok(None);
    };
    let helper = match pending {
        PendingHelper::Slirp(pending) => pending.start().map(Helper::Slirp),
        PendingHelper::Pasta(pending) => pending.start().map(Helper::Pasta),
    }
    .map_err(|e| PodError::msg(format!("{}: {e}", pod.who)))?;
    tracing::info!(
        pid = helper.pid(),
        helper = helper.name(),
        "network helper ready"
    );
    Ok(Some(helper))
}
