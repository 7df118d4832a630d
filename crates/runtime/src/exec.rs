//! Running a command in a running container (`podrun exec`): a libcontainer tenant.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::{Process, Spec, UserBuilder};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;

use crate::exec_io::{ConsoleSocket, SignalPipe};
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
    /// `Some`: the command gets a pseudo-terminal (see [`ExecTty`]); `None`: it inherits the
    /// caller's stdin, stdout and stderr.
    pub tty: Option<ExecTty>,
}

/// A pseudo-terminal for the exec'd command. It is created inside the container (from the
/// container's devpts, as runc does), so `tty` there names a `/dev/pts` of the container; the
/// command gets it as stdin, stdout, stderr and controlling terminal. Its output goes to the
/// caller's stdout.
#[derive(Debug, Clone)]
pub struct ExecTty {
    /// `TERM` in the command's environment.
    pub term: String,
    /// Copy the caller's stdin into the terminal (the caller puts its own terminal into raw
    /// mode first). Without it the command reads nothing.
    pub input: bool,
    /// The caller's terminal, whose window size the pseudo-terminal gets (initially and on
    /// every SIGWINCH).
    pub size_from: Option<i32>,
}

/// Runs `config.args` in the container, waits for it and returns its exit code (128+N when
/// killed by signal N). SIGTERM, SIGINT and SIGHUP that the caller receives meanwhile are
/// forwarded to the command.
///
/// The calling process must be single-threaded (no async runtime): it joins the pod's user
/// namespace, gets a mount namespace of its own (with the cgroup workaround, see
/// `start_container`) and stays there, and it handles signals until the command ends. Call
/// this last, in a process that exits afterwards.
pub fn exec_in_container(config: ExecConfig) -> Result<i32, RuntimeError> {
    exec_until(config, None).map(|code| code.unwrap_or(128 + libc::SIGKILL))
}

/// [`exec_in_container`] for an exec probe: the command gets `timeout` to end; then it is
/// SIGKILLed and `None` is returned (the kubelet's exec probe timeout). The caller may
/// already be in the pod's user namespace (a child of the supervisor).
pub fn exec_in_container_with_timeout(
    config: ExecConfig,
    timeout: std::time::Duration,
) -> Result<Option<i32>, RuntimeError> {
    exec_until(config, Some(std::time::Instant::now() + timeout))
}

fn exec_until(
    config: ExecConfig,
    deadline: Option<std::time::Instant>,
) -> Result<Option<i32>, RuntimeError> {
    ensure_single_threaded("exec_in_container")?;
    if config.args.is_empty() {
        return Err(RuntimeError::InvalidConfig("no command to run".into()));
    }
    enter_exec_namespaces(&config)?;
    // Installed before the command starts, so that no signal slips in between.
    let signals = SignalPipe::install()?;
    let container_dir = config.state_root.join(&config.id);
    let console = match &config.tty {
        Some(_) => Some(ConsoleSocket::bind(&container_dir)?),
        None => None,
    };
    let pid = start_tenant(&config, &container_dir, console.as_ref())?;
    let terminal = match (console, &config.tty) {
        (Some(console), Some(tty)) => match console.receive_terminal(tty) {
            Ok(terminal) => Some(terminal),
            Err(e) => {
                // Without its terminal nobody could talk to the command: do not leave it.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(e);
            }
        },
        _ => None,
    };
    crate::exec_io::wait_for_exec(pid, &signals, terminal, deadline)
}

/// Joins the pod's user namespace and gets a private mount namespace with the cgroup
/// workaround, as the runner does before it calls libcontainer.
fn enter_exec_namespaces(config: &ExecConfig) -> Result<(), RuntimeError> {
    let ns_path = format!("/proc/{}/ns/user", config.user_namespace_of);
    // setns(2) refuses (EINVAL) the user namespace one is in already: the supervisor's exec
    // probes run in it.
    let inside = std::fs::read_link(&ns_path).ok().is_some_and(|target| {
        std::fs::read_link("/proc/self/ns/user").ok().as_ref() == Some(&target)
    });
    if !inside {
        let ns = std::fs::File::open(&ns_path)
            .map_err(|e| RuntimeError::io(format!("cannot open {ns_path}"), e))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| {
            RuntimeError::sys(
                format!("cannot join the pod's user namespace ({ns_path})"),
                e,
            )
        })?;
    }
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
    drop_supplementary_groups()
}

/// libcontainer calls setgroups only for a non-empty additionalGids: drop the host user's
/// groups, as the runner does for the container's init. When setgroups is denied (a
/// single-id map) nothing can be done about it.
pub(crate) fn drop_supplementary_groups() -> Result<(), RuntimeError> {
    if let Err(e) = nix::unistd::setgroups(&[]) {
        let denied = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() == "deny")
            .unwrap_or(false);
        if !denied {
            return Err(RuntimeError::sys("cannot drop supplementary groups", e));
        }
    }
    Ok(())
}

/// Has libcontainer start the command as a tenant of the container; returns its pid (a
/// child of this process).
fn start_tenant(
    config: &ExecConfig,
    container_dir: &Path,
    console: Option<&ConsoleSocket>,
) -> Result<Pid, RuntimeError> {
    let start_error = |message: String| RuntimeError::Start {
        id: config.id.clone(),
        message,
    };
    // The process is given as a file (libcontainer's `--process`): only that way can it ask
    // for a terminal.
    let process = tenant_process(config, container_dir).map_err(start_error)?;
    let process_path = container_dir.join(format!("podrun-exec-{}.json", std::process::id()));
    let json = serde_json::to_vec(&process)
        .map_err(|e| start_error(format!("cannot serialise the process: {e}")))?;
    std::fs::write(&process_path, json)
        .map_err(|e| RuntimeError::io(format!("cannot write {}", process_path.display()), e))?;
    // libcontainer leaves a `tenant-notify-*.sock` (and with a terminal a `tenant-tty-*`
    // link) in the container's state directory per exec. Remove ours after the build; the
    // lock keeps concurrent execs from creating theirs meanwhile (which we would remove
    // before they connect to them).
    let lock = lock_exec(container_dir)?;
    let before = tenant_files(container_dir);
    let window = config
        .tty
        .as_ref()
        .and_then(|tty| tty.size_from)
        .and_then(crate::exec_io::window_size);
    let built = ContainerBuilder::new(config.id.clone(), SyscallType::default())
        .with_root_path(&config.state_root)
        .map(|builder| {
            builder
                .with_console_socket(console.map(ConsoleSocket::path))
                .with_executor(SizedTerminal {
                    window,
                    inner: libcontainer::workload::default::get_executor(),
                })
        })
        .and_then(|builder| {
            builder
                .as_tenant()
                .with_process(Some(&process_path))
                // libcontainer wants a console socket exactly for "detached" terminals; it
                // does not wait for the process either way (we do).
                .with_detach(config.tty.is_some())
                .build()
        });
    for name in tenant_files(container_dir) {
        if !before.contains(&name) {
            let _ = std::fs::remove_file(container_dir.join(name));
        }
    }
    drop(lock);
    let _ = std::fs::remove_file(&process_path);
    built.map_err(|e| {
        start_error(format!(
            "libcontainer could not exec in it: {}",
            error_chain(&e)
        ))
    })
}

/// libcontainer's default executor, which first gives the terminal on stdin the caller's
/// window size. It runs in the exec'd process just before `execve`: podrun receives the
/// terminal only after that, too late for a command that asks for its size right away.
#[derive(Clone)]
struct SizedTerminal {
    window: Option<libc::winsize>,
    inner: Box<dyn Executor>,
}

impl Executor for SizedTerminal {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(window) = &self.window {
            // SAFETY: TIOCSWINSZ reads a winsize we own; failing leaves the size at 0x0.
            unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSWINSZ, window) };
        }
        self.inner.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        self.inner.validate(spec)
    }
}

/// The exec'd process: the container's own process (capabilities, rlimits, no_new_privs, as
/// runc's exec keeps them) with the exec's command, environment, working directory, user and
/// terminal.
fn tenant_process(config: &ExecConfig, container_dir: &Path) -> Result<Process, String> {
    let container = Container::load(container_dir.to_path_buf())
        .map_err(|e| format!("cannot load its state: {}", error_chain(&e)))?;
    let spec_path = container.bundle().join("config.json");
    let spec =
        Spec::load(&spec_path).map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env = merge_env(process.env().as_deref().unwrap_or_default(), &config.env);
    if let Some(tty) = &config.tty {
        env = merge_env(&env, &[format!("TERM={}", tty.term)]);
    }
    process.set_args(Some(config.args.clone()));
    process.set_env(Some(env));
    process.set_terminal(Some(config.tty.is_some()));
    if !config.cwd.is_empty() {
        process.set_cwd(PathBuf::from(&config.cwd));
    }
    let mut user = UserBuilder::default().uid(config.uid).gid(config.gid);
    if !config.additional_gids.is_empty() {
        user = user.additional_gids(config.additional_gids.clone());
    }
    process.set_user(user.build().map_err(|e| format!("invalid user: {e}"))?);
    Ok(process)
}

/// `base` with the `KEY=VALUE` entries of `overrides` replacing those of the same key
/// (runc's and libcontainer's rule for exec).
fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let key = |entry: &str| entry.split('=').next().unwrap_or_default().to_string();
    let replaced: HashSet<String> = overrides.iter().map(|e| key(e)).collect();
    base.iter()
        .filter(|e| !replaced.contains(&key(e)))
        .chain(overrides)
        .cloned()
        .collect()
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

/// The names of the files libcontainer leaves per exec in `container_dir`.
fn tenant_files(container_dir: &Path) -> HashSet<OsString> {
    std::fs::read_dir(container_dir)
        .map(|read| {
            read.flatten()
                .map(|e| e.file_name())
                .filter(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("tenant-notify-") || n.starts_with("tenant-tty-")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn exec_environment_overrides_the_containers_by_key() {
        let base = vec!["PATH=/bin".to_string(), "HOME=/root".into(), "A=1".into()];
        let merged = merge_env(&base, &["A=2".to_string(), "TERM=xterm".into()]);
        assert_eq!(merged, ["PATH=/bin", "HOME=/root", "A=2", "TERM=xterm"]);
    }
}
