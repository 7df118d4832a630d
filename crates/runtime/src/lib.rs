//! Rootless containers for podrun pods, on youki's `libcontainer`.
//!
//! A pod is held by one long-lived, **single-threaded** supervisor process. This crate gives it
//! its building blocks:
//!
//! * [`become_pod_sandbox`]: after the supervisor has entered the pod's user namespace (crate
//!   `podrun-userns`), give it new network, IPC and UTS namespaces, the pod's hostname, a
//!   loopback interface that is up, and make it the subreaper of everything it starts.
//! * [`create_pod_pid_namespace`] (optional): a pid namespace shared by all containers of the
//!   pod (`shareProcessNamespace`), held by a tiny init process.
//! * [`start_container`]: forks a short-lived runner that gets its own mount namespace, applies
//!   the cgroup workaround this host needs, mounts the container's overlay root filesystem and
//!   has libcontainer create and start the container. The runner then exits, so the
//!   container's init is reparented to the supervisor, which reaps it with `waitpid` and gets its
//!   exit status.
//! * [`kill_container`], [`delete_container`], [`remove_container_dirs`].
//!
//! How the pieces fit, and why it has to be done this way on a hybrid-cgroup host, is written
//! up in /work/shared/research/libcontainer-rootless.md.
//!
//! # What the supervisor must do
//!
//! * Stay single-threaded (no async runtime): `fork`, `unshare` and `setns` need it; the
//!   functions here check and refuse otherwise.
//! * Call, in this order: `podrun_userns::enter_user_namespace`, [`become_pod_sandbox`],
//!   optionally [`create_pod_pid_namespace`], then [`start_container`] per container.
//! * Reap: every container init becomes its child. Use `waitpid` (e.g. `waitpid(-1)` on
//!   SIGCHLD) and match pids with those [`start_container`] returned; ignore unknown ones. Never
//!   set SIGCHLD to `SIG_IGN` or `SA_NOCLDWAIT`: the exit statuses would be lost and
//!   [`start_container`] could not wait for its runner.
//! * After reaping an init: [`delete_container`], then [`remove_container_dirs`]. Do not
//!   [`kill_container`] a container whose init it has reaped (the pid may be reused).
//! * Stopping: SIGTERM, then SIGKILL after the grace period. A container with its own pid
//!   namespace runs its command as pid 1, which ignores SIGTERM unless it handles it (like
//!   Docker without `--init`). Killing such an init kills its whole pid namespace. In a shared
//!   pid namespace only the init is signalled; its children are reparented to the namespace's
//!   init and live on until [`PodPidNamespace::shutdown`] (there is no cgroup to find them).
//! * Provide /etc/hosts, /etc/resolv.conf and /etc/hostname as files and pass them as
//!   [`BindMount`]s; create the pod's /dev/shm directory and pass it as `shm_dir`.
//! * Resource limits need a cgroup v2 directory delegated to the user, in which the caller
//!   creates the pod's cgroup; each container's goes below it ([`ContainerConfig::cgroup`]).
//!   Without one, `linux.resources` is left out: tell the user when a pod asks for limits.
//! * Keep one `state_root` per pod and remove it when the pod ends; a crashed supervisor
//!   leaves state directories behind (a later start with the same id gets `AlreadyExists`).
//! * If the supervisor dies, its containers are reparented to the host's init (or the next
//!   subreaper above it) and keep running: whoever started the supervisor must clean up.
//!
//! ```text
//! supervisor (userns root; pod net/ipc/uts; subreaper)
//!  ├─ runner (fork; own mount ns; overlay; libcontainer build+start; exits)
//!  │    └─ youki:[1:INTER] ── clones with CLONE_PARENT ──┐
//!  └─ container init  <── reparented to the supervisor ───┘
//! ```

mod cgroup;
mod exec;
mod exec_io;
mod in_container;
mod manage;
mod runner;
mod sandbox;
mod seccomp;
mod spec;

pub use cgroup::{ContainerCgroup, CpuMax};
pub use exec::{exec_in_container, exec_in_container_with_timeout, ExecConfig, ExecTty};
pub use exec_io::window_size;
pub use in_container::{ChildError, ContainerFs, InContainer};
pub use manage::{delete_container, kill_container, remove_container_dirs};
pub use runner::{spawn_container, start_container, StartedContainer, StartingContainer};
pub use sandbox::{
    become_pod_sandbox, become_pod_sandbox_in_host_network, create_pod_pid_namespace,
    PodPidNamespace,
};
pub use seccomp::{
    default_seccomp_profile, native_seccomp_profile, runtime_default_profile_for,
    seccomp_profile_from_json,
};
pub use spec::{build_spec, known_capabilities, DEFAULT_CAPABILITIES, LINUX_CAPABILITIES};

/// The OCI runtime spec types, as used by this crate's libcontainer.
pub use libcontainer::oci_spec;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Everything needed to start one container of a pod.
#[derive(Debug)]
pub struct ContainerConfig {
    /// Unique on the host; the libcontainer container id (state directory name).
    pub id: String,
    /// libcontainer's state root (`with_root_path`), one per pod. Created if missing.
    pub state_root: PathBuf,
    /// Where `config.json` is written; the root filesystem is mounted at `bundle_dir/rootfs`.
    /// Created if missing. Must be absolute.
    pub bundle_dir: PathBuf,
    /// Image layers, TOP layer FIRST (overlayfs `lowerdir` order). At least one.
    pub lower_dirs: Vec<PathBuf>,
    /// The container's writable layer; created if missing.
    pub upper_dir: PathBuf,
    /// overlayfs work directory, on the same filesystem as `upper_dir`; created if missing.
    pub work_dir: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Extra mounts, in order: emptyDir/hostPath/configMap volumes, /etc/hosts, ...
    pub mounts: Vec<Mount>,
    /// The supervisor's pid: the container joins `/proc/PID/ns/{net,ipc,uts}` (uts only when
    /// `hostname` is `None`).
    pub join_namespaces_of: i32,
    /// `Some(path)`: join that pid namespace (see [`create_pod_pid_namespace`]);
    /// `None`: the container gets its own, its command is pid 1 there.
    pub pid_namespace: Option<PathBuf>,
    /// When `Some`, this host directory is bind-mounted at /dev/shm instead of a fresh tmpfs, so
    /// that containers of a pod share POSIX shared memory.
    pub shm_dir: Option<PathBuf>,
    /// The container's stdout and stderr (log files), unless `stdin` is a terminal.
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The container's stdin, or its terminal.
    pub stdin: ContainerInput,
    /// `None`: join the pod's UTS namespace and keep its hostname (the usual case).
    /// `Some(name)`: a UTS namespace of the container's own with this hostname.
    pub hostname: Option<String>,
    pub readonly_rootfs: bool,
    /// Capabilities, no_new_privs, seccomp and /proc masking (the securityContext).
    pub privileges: Privileges,
    /// The pod has no network namespace of its own
    /// ([`become_pod_sandbox_in_host_network`]): the container stays in the runner's, which
    /// the pod's user namespace may not `setns` into (it belongs to the host's), and gets the
    /// host's /sys bind-mounted read-only, as sysfs may only be mounted by the owner of the
    /// network namespace.
    pub host_network: bool,
    /// The container's cgroup and limits (see [`ContainerCgroup`]); `None` when the pod has
    /// no cgroup (no delegated cgroup, or nothing to enforce).
    pub cgroup: Option<ContainerCgroup>,
}

/// What a container's process may do: Kubernetes' `securityContext` as the caller worked it
/// out. The default is what Docker, podman and containerd give a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Privileges {
    /// Capability names without the `CAP_` prefix, for the bounding, effective and permitted
    /// sets (inheritable and ambient stay empty, as in the container runtimes since
    /// CVE-2022-24769).
    pub capabilities: Vec<String>,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`: set-user-ID programs and file capabilities grant nothing
    /// (`allowPrivilegeEscalation: false`).
    pub no_new_privileges: bool,
    pub seccomp: SeccompProfile,
    /// `false` leaves /proc's masked and read-only paths open (`procMount: Unmasked`,
    /// `privileged`).
    pub mask_proc: bool,
    /// `/sys` read-write (`privileged`); read-only otherwise.
    pub writable_sys: bool,
}

impl Default for Privileges {
    fn default() -> Self {
        Privileges {
            capabilities: DEFAULT_CAPABILITIES.map(String::from).to_vec(),
            no_new_privileges: false,
            seccomp: SeccompProfile::RuntimeDefault,
            mask_proc: true,
            writable_sys: false,
        }
    }
}

/// What a container reads on stdin (Kubernetes' `stdin` and `tty`).
#[derive(Debug, Default)]
pub enum ContainerInput {
    /// `/dev/null`: reads end at once (the default).
    #[default]
    Null,
    /// The read end of a pipe whose write end the caller keeps (`stdin: true`): reads block
    /// until the caller writes, or closes it.
    Pipe(OwnedFd),
    /// A pseudo-terminal of the container's devpts as stdin, stdout, stderr and controlling
    /// terminal (`tty: true`); `stdout` and `stderr` go unused. Its master side is sent to
    /// the caller: [`StartedContainer::terminal`].
    Terminal,
}

impl ContainerInput {
    pub fn is_terminal(&self) -> bool {
        matches!(self, ContainerInput::Terminal)
    }
}

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SeccompProfile {
    /// podman's/Docker's default profile ([`default_seccomp_profile`]), with the rules that
    /// the container's capabilities enable. Compiling it costs 12-17 ms per container start
    /// (measured here), in the container's init.
    #[default]
    RuntimeDefault,
    /// The same rules for the native architecture only ([`native_seccomp_profile`]): a
    /// 32-bit x86 binary is killed, but the filter compiles in 2-4 ms instead of 12-17 ms.
    RuntimeDefaultNativeOnly,
    /// No filter (Kubernetes `Unconfined`).
    Unconfined,
    /// A profile of the user's (Kubernetes `Localhost`), already in OCI form (see
    /// [`seccomp_profile_from_json`]).
    Custom(Box<oci_spec::runtime::LinuxSeccomp>),
}

/// A mount added to the container's default ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Bind(BindMount),
    Tmpfs(TmpfsMount),
}

/// A host file or directory bind-mounted (recursively) into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container; created if missing.
    pub destination: String,
    pub readonly: bool,
}

/// A fresh tmpfs (e.g. an emptyDir with `medium: Memory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    pub destination: String,
    /// `size=` in bytes; `None` for the kernel's default (half of RAM).
    pub size_bytes: Option<u64>,
    /// `mode=`; `None` for 1777.
    pub mode: Option<u32>,
    pub readonly: bool,
}

impl From<BindMount> for Mount {
    fn from(bind: BindMount) -> Self {
        Mount::Bind(bind)
    }
}

impl From<TmpfsMount> for Mount {
    fn from(tmpfs: TmpfsMount) -> Self {
        Mount::Tmpfs(tmpfs)
    }
}

/// Errors of this crate. Messages from the runner child and from libcontainer are passed on
/// as text, with their whole cause chain.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{operation} needs a single-threaded process, but this one has {threads} threads")]
    MultiThreaded {
        operation: &'static str,
        threads: usize,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("invalid container configuration: {0}")]
    InvalidConfig(String),
    #[error("container {id} already exists in {state_root}")]
    AlreadyExists { id: String, state_root: String },
    #[error("container {id} not found in {state_root}")]
    NotFound { id: String, state_root: String },
    #[error("container {id} is still running; stop it (and reap it) before deleting it")]
    StillRunning { id: String },
    #[error("seccomp profile: {0}")]
    Seccomp(String),
    #[error("cannot start container {id}: {message}")]
    Start { id: String, message: String },
    #[error("libcontainer: {0}")]
    Libcontainer(String),
}

impl RuntimeError {
    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        RuntimeError::Sys {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            what: what.into(),
            source,
        }
    }
}

/// An error with all its sources, `a: b: c`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // libcontainer's errors often repeat their source's text in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Fails unless the calling process has exactly one thread: `fork` (and `unshare` of most
/// namespaces) is only sound then.
pub(crate) fn ensure_single_threaded(operation: &'static str) -> Result<(), RuntimeError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| RuntimeError::io("cannot read /proc/self/task", e))?
        .count();
    if threads == 1 {
        Ok(())
    } else {
        Err(RuntimeError::MultiThreaded { operation, threads })
    }
}
