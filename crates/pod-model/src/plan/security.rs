//! The security context as the plan holds it: the pod's `securityContext` and each
//! container's (which wins field by field) worked out by podrun-planner (`security`) into
//! what the runtime enforces, as containerd's CRI plugin does it for a kubelet; applied by
//! podrun-supervisor.
//!
//! - Capabilities start from the container runtimes' 14 defaults
//!   ([`podrun_runtime::DEFAULT_CAPABILITIES`]); `add: [ALL]` gives every capability the
//!   kernel knows, `drop: [ALL]` none, then the other names are added and dropped in that
//!   order, so `add: [ALL], drop: [CHOWN]` is everything but CHOWN. Names may carry `CAP_`.
//! - `privileged: true`: every capability, no seccomp filter, /proc unmasked, /sys writable;
//!   add/drop are ignored, as on a cluster. The capabilities are those of the pod's user
//!   namespace: nothing gives power over the host.
//! - `allowPrivilegeEscalation: false` sets no_new_privs; unset, it is not set (Kubernetes'
//!   default, so set-user-ID programs such as `su` work as on a cluster).
//! - `seccompProfile`: `RuntimeDefault` (also podrun's default when unset, as podman's),
//!   `Unconfined`, or `Localhost` with a profile file under podrun's seccomp directory
//!   (`$XDG_CONFIG_HOME/podrun/seccomp`, the kubelet's is /var/lib/kubelet/seccomp), read and
//!   checked at play.
//! - `procMount: Unmasked` leaves /proc's masked and read-only paths open.
//! - Pod `sysctls` must be namespaced (the pod's network or IPC namespace); they are written
//!   by the supervisor in the pod's namespaces before any container starts.
//! - Pod `fsGroup` owns the pod's volumes (applied by the supervisor); the process gets the
//!   group through podrun-process.

use podrun_runtime::{Privileges, SeccompProfile};
use serde::{Deserialize, Serialize};

/// What one container may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSecurity {
    /// Capability names without `CAP_`, sorted.
    pub capabilities: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub read_only_root_filesystem: bool,
    pub seccomp: Seccomp,
    /// `procMount: Unmasked` (or privileged).
    pub unmasked_proc: bool,
}

impl Default for ContainerSecurity {
    fn default() -> Self {
        let mut capabilities: Vec<String> = podrun_runtime::DEFAULT_CAPABILITIES
            .map(String::from)
            .to_vec();
        capabilities.sort();
        ContainerSecurity {
            capabilities,
            privileged: false,
            no_new_privileges: false,
            read_only_root_filesystem: false,
            seccomp: Seccomp::RuntimeDefault,
            unmasked_proc: false,
        }
    }
}

/// The container's seccomp filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Seccomp {
    RuntimeDefault,
    Unconfined,
    /// A profile of the user's: `localhostProfile` and the file it named, converted for the
    /// container's capabilities into the OCI `linux.seccomp` form.
    Localhost {
        profile: String,
        oci: serde_json::Value,
    },
}

impl ContainerSecurity {
    /// What the runtime gives the container's process.
    pub fn privileges(&self) -> Result<Privileges, String> {
        let seccomp = match &self.seccomp {
            Seccomp::RuntimeDefault => SeccompProfile::RuntimeDefault,
            Seccomp::Unconfined => SeccompProfile::Unconfined,
            Seccomp::Localhost { profile, oci } => SeccompProfile::Custom(Box::new(
                serde_json::from_value(oci.clone())
                    .map_err(|e| format!("seccomp profile `{profile}`: {e}"))?,
            )),
        };
        Ok(Privileges {
            capabilities: self.capabilities.clone(),
            no_new_privileges: self.no_new_privileges,
            seccomp,
            mask_proc: !self.unmasked_proc,
            writable_sys: self.privileged,
        })
    }
}

/// The pod-wide part: what the supervisor applies before any container starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSecurity {
    /// `fsGroup`: the group that owns the pod's volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<u32>,
    /// `sysctls`, checked to be namespaced: (name with dots, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<(String, String)>,
}

impl PodSecurity {
    pub fn is_empty(&self) -> bool {
        self == &PodSecurity::default()
    }
}
