//! Running a command in a running container (`podrun exec`): a libcontainer tenant.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};

use crate::{ensure_single_threaded, error_chain, RuntimeError};

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// The libcontainer id of the running container.
    pub id: String,
    /// The pod's libcontainer state root.
    pub state_root: PathBuf,
    /// A process in the pod's user namespace (the supervisor): its `/proc/PID/ns/user` is
    /// joined.
    pub user_namespace_of: i32,
    pub args: Vec<String>,
    /// `KEY=VALUE`, on top of the container's own environment.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Runs `config.args` in the container, with the caller's stdin, stdout and stderr, waits for
/// it and returns its exit code (128+N when killed by signal N).
///
/// The calling process must be single-threaded (no async runtime): it joins the pod's user
/// namespace, gets a mount namespace of its own (with the cgroup workaround, see
/// `start_container`) and stays there, so call this last, in a process that exits afterwards.
pub fn exec_in_container(config: ExecConfig) -> Result<i32, RuntimeError> {
    ensure_single_threaded("exec_in_container")?;
    if config.args.is_empty() {
        return Err(RuntimeError::InvalidConfig("no command to run".into()));
    }
    let ns_path = format!("/proc/{}/ns/user", config.user_namespace_of);
    let ns = std::fs::File::open(&ns_path)
        .map_err(|e| RuntimeError::io(format!("cannot open {ns_path}"), e))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| {
        RuntimeError::sys(
            format!("cannot join the pod's user namespace ({ns_path})"),
            e,
        )
    })?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| RuntimeError::sys("unshare(CLONE_NEWNS)", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| RuntimeError::sys("cannot make / private in the exec's mount namespace", e))?;
    crate::runner::apply_cgroup_workaround().map_err(|message| RuntimeError::Start {
        id: config.id.clone(),
        message,
    })?;

    // libcontainer calls setgroups only for a non-empty additionalGids: drop the host user's
    // groups, as the runner does for the container's init.
    if let Err(e) = nix::unistd::setgroups(&[]) {
        let denied = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() == "deny")
            .unwrap_or(false);
        if !denied {
            return Err(RuntimeError::sys("cannot drop supplementary groups", e));
        }
    }
    let env: HashMap<String, String> = config
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cwd = (!config.cwd.is_empty()).then(|| PathBuf::from(&config.cwd));
    // libcontainer leaves a `tenant-notify-*.sock` in the container's state directory per
    // exec. Remove ours after the build; the lock keeps concurrent execs from creating theirs
    // meanwhile (which we would remove before they connect to it).
    let container_dir = config.state_root.join(&config.id);
    let lock = lock_exec(&container_dir)?;
    let before = notify_sockets(&container_dir);
    let built = ContainerBuilder::new(config.id.clone(), SyscallType::default())
        .with_root_path(&config.state_root)
        .and_then(|builder| {
            builder
                .as_tenant()
                .with_container_args(config.args.clone())
                .with_env(env)
                .with_cwd(cwd)
                .with_user(Some(config.uid))
                .with_group(Some(config.gid))
                .with_additional_gids(config.additional_gids.clone())
                .with_detach(false)
                .build()
        });
    for name in notify_sockets(&container_dir) {
        if !before.contains(&name) {
            let _ = std::fs::remove_file(container_dir.join(name));
        }
    }
    drop(lock);
    let pid = built.map_err(|e| RuntimeError::Start {
        id: config.id.clone(),
        message: format!("libcontainer could not exec in it: {}", error_chain(&e)),
    })?;
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(128 + signal as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys("cannot wait for the exec'd process", e)),
        }
    }
}

/// An exclusive `flock` on `container_dir/podrun-exec.lock`, held while it lives.
fn lock_exec(container_dir: &Path) -> Result<std::fs::File, RuntimeError> {
    let path = container_dir.join("podrun-exec.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RuntimeError::io(format!("cannot open {}", path.display()), e))?;
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let error = nix::Error::last();
        if error != nix::Error::EINTR {
            return Err(RuntimeError::sys(
                format!("cannot lock {}", path.display()),
                error,
            ));
        }
    }
}

/// The names of libcontainer's exec notify sockets in `container_dir`.
fn notify_sockets(container_dir: &Path) -> HashSet<OsString> {
    std::fs::read_dir(container_dir)
        .map(|read| {
            read.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with("tenant-notify-"))
                .collect()
        })
        .unwrap_or_default()
}
