//! Starting a container: the short-lived runner child.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use crate::exec_io::ConsoleSocket;
use crate::{ensure_single_threaded, error_chain, ContainerConfig, ContainerInput, RuntimeError};

/// Creates and starts the container described by `config`, returns its init's host pid.
///
/// Writes `bundle_dir/config.json`, creates the directories it needs, then forks a runner child
/// that
/// 1. unshares a mount namespace and makes `/` recursively private,
/// 2. on a hybrid (or legacy) cgroup host, puts a cgroup2 hierarchy at /sys/fs/cgroup, so that
///    libcgroups picks its rootless-tolerant v2 manager (`apply_cgroup_workaround`),
/// 3. mounts the overlay root filesystem at `bundle_dir/rootfs` (`userxattr`),
/// 4. drops the supplementary groups it inherited (the container gets exactly
///    `additional_gids`),
/// 5. has libcontainer build and start the container (detached), and exits.
///
/// The container's init, a child of the runner, is then reparented to the caller, which must
/// be a child subreaper ([`crate::become_pod_sandbox`]) to reap it with `waitpid` and learn its
/// exit status. The overlay mount exists only in the container's mount namespace: nothing stays
/// mounted when the container ends.
///
/// The caller must be single-threaded, inside the pod's user namespace. For a container
/// with a terminal ([`ContainerInput::Terminal`]) use [`spawn_container`]: this drops the
/// terminal's master, which hangs the terminal up.
pub fn start_container(config: ContainerConfig) -> Result<i32, RuntimeError> {
    spawn_container(config)?.wait().map(|started| started.pid)
}

/// A container that runs.
#[derive(Debug)]
pub struct StartedContainer {
    /// Its init's host pid.
    pub pid: i32,
    /// The master side of its terminal ([`ContainerInput::Terminal`]): what the container
    /// writes is read from it, what is written to it is the container's input. Closing it
    /// hangs the terminal up.
    pub terminal: Option<OwnedFd>,
}

/// A container whose runner is at work: [`spawn_container`] returns at once, so that the
/// runners of several containers (each mostly busy compiling its seccomp filter and setting
/// up mounts) run at the same time; [`StartingContainer::wait`] collects each.
#[must_use = "a runner must be waited for"]
pub struct StartingContainer {
    id: String,
    runner: Pid,
    answer: OwnedFd,
    /// Where the container's init sends its terminal's master (libcontainer's console socket).
    console: Option<ConsoleSocket>,
}

impl StartingContainer {
    /// Waits for the runner; returns the container init's host pid and its terminal.
    pub fn wait(self) -> Result<StartedContainer, RuntimeError> {
        let status = wait_for(self.runner);
        let message = read_available(self.answer);
        if let Some(pid) = message.strip_prefix("ok ") {
            if let Ok(pid) = pid.trim().parse() {
                return receive_terminal(self.id, self.console, pid);
            }
        }
        let message = match message.strip_prefix("err ") {
            Some(message) => message.to_string(),
            None => format!("the runner process ended with {status:?} and no message"),
        };
        Err(RuntimeError::Start {
            id: self.id,
            message,
        })
    }
}

/// The started container `pid` with its terminal, if it has one. The init sent the master
/// while libcontainer created it, before the runner reported success: it waits on the
/// console socket already.
fn receive_terminal(
    id: String,
    console: Option<ConsoleSocket>,
    pid: i32,
) -> Result<StartedContainer, RuntimeError> {
    let terminal = match console.map(ConsoleSocket::receive_master) {
        None => None,
        Some(Ok(master)) => Some(master),
        Some(Err(e)) => {
            // Nobody could read its terminal: it would block on its first lines. The caller
            // reaps it.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            return Err(RuntimeError::Start {
                id,
                message: format!("no terminal from the container: {e}"),
            });
        }
    };
    Ok(StartedContainer { pid, terminal })
}

/// The first half of [`start_container`]: checks and writes the bundle, forks the runner
/// and returns without waiting for it. The caller must not reap other children with
/// `waitpid(-1)` until it has waited for every runner it spawned.
pub fn spawn_container(config: ContainerConfig) -> Result<StartingContainer, RuntimeError> {
    ensure_single_threaded("spawn_container")?;
    if !nix::sys::prctl::get_child_subreaper().unwrap_or(false) {
        // Otherwise the init would be reparented to the host's init, and its exit status lost.
        return Err(RuntimeError::InvalidConfig(
            "start_container: the caller must be a child subreaper (call become_pod_sandbox first)"
                .into(),
        ));
    }
    check_config(&config)?;
    for dir in [
        &config.state_root,
        &config.bundle_dir,
        &config.bundle_dir.join("rootfs"),
        &config.upper_dir,
        &config.work_dir,
    ] {
        std::fs::create_dir_all(dir)
            .map_err(|e| RuntimeError::io(format!("cannot create {}", dir.display()), e))?;
    }
    if config.state_root.join(&config.id).exists() {
        return Err(RuntimeError::AlreadyExists {
            id: config.id.clone(),
            state_root: config.state_root.display().to_string(),
        });
    }
    let spec = crate::build_spec(&config, nofile_hard_limit())?;
    let config_path = config.bundle_dir.join("config.json");
    // Serialised here rather than with `Spec::save`, whose error on a full disk says only
    // "serde failed": the write's own error names the cause (No space left on device).
    let json = serde_json::to_vec(&spec).map_err(|e| {
        RuntimeError::InvalidConfig(format!("cannot serialise {}: {e}", config_path.display()))
    })?;
    std::fs::write(&config_path, json)
        .map_err(|e| RuntimeError::io(format!("cannot write {}", config_path.display()), e))?;
    let overlay = OverlayMount::new(&config);
    let console = match config.stdin {
        ContainerInput::Terminal => Some(ConsoleSocket::bind(&config.bundle_dir)?),
        _ => None,
    };
    let console_path = console.as_ref().map(ConsoleSocket::path);

    let (read_end, write_end) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("cannot create a pipe", e))?;
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    match unsafe { fork() }.map_err(|e| RuntimeError::sys("cannot fork the runner", e))? {
        ForkResult::Child => {
            drop(read_end);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_runner(config, &overlay, console_path)
            }));
            let (code, message) = match outcome {
                Ok(Ok(pid)) => (0, format!("ok {pid}")),
                Ok(Err(message)) => (1, format!("err {message}")),
                Err(_) => (2, "err the runner panicked".to_string()),
            };
            let _ = std::fs::File::from(write_end).write_all(message.as_bytes());
            // SAFETY: leave without running the caller's destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            Ok(StartingContainer {
                id: config.id.clone(),
                runner: child,
                answer: read_end,
                console,
            })
        }
    }
}

fn check_config(config: &ContainerConfig) -> Result<(), RuntimeError> {
    let invalid = |text: String| Err(RuntimeError::InvalidConfig(text));
    if config.id.is_empty()
        || !config
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || config.id.starts_with('.')
    {
        return invalid(format!(
            "container id {:?} must be non-empty and use only letters, digits, '-', '_' and '.'",
            config.id
        ));
    }
    if config.lower_dirs.is_empty() {
        return invalid("no image layer (lower_dirs is empty)".into());
    }
    for path in
        config
            .lower_dirs
            .iter()
            .chain([&config.upper_dir, &config.work_dir, &config.state_root])
    {
        if !path.is_absolute() {
            return invalid(format!("{} is not an absolute path", path.display()));
        }
    }
    Ok(())
}

fn nofile_hard_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_max
    } else {
        1024
    }
}

fn wait_for(child: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(nix::Error::EINTR) => continue,
            Ok(status) => return Some(status),
            Err(_) => return None,
        }
    }
}

/// Reads what the (already exited) runner wrote, without waiting for EOF: the container's
/// init may still hold the write end until it execs.
fn read_available(read_end: OwnedFd) -> String {
    let _ = nix::fcntl::fcntl(
        read_end.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut file = std::fs::File::from(read_end);
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match file.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// In the runner child. Returns the init's pid or an error message.
fn run_runner(
    config: ContainerConfig,
    overlay: &OverlayMount,
    console_socket: Option<PathBuf>,
) -> Result<i32, String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make / private in the runner's mount namespace: {e}"))?;
    apply_cgroup_workaround()?;
    overlay.mount()?;
    // libcontainer calls setgroups only for a non-empty additionalGids: without this, a
    // container would inherit the supervisor's supplementary groups (the host user's groups,
    // which appear as root's group 0 or as nogroup inside). When setgroups is denied (a
    // single-id map) nothing can be done about it; the groups are then unmapped (nogroup).
    if let Err(e) = nix::unistd::setgroups(&[]) {
        let denied = std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() == "deny")
            .unwrap_or(false);
        if !denied {
            return Err(format!("cannot drop supplementary groups: {e}"));
        }
    }

    let stdin = match config.stdin {
        ContainerInput::Pipe(read_end) => read_end,
        // A terminal replaces it (and stdout and stderr) in the init.
        ContainerInput::Null | ContainerInput::Terminal => std::fs::File::open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?
            .into(),
    };
    let container_dir = config.state_root.join(&config.id);
    let built = ContainerBuilder::new(config.id.clone(), SyscallType::default())
        .with_root_path(&config.state_root)
        .map(|builder| {
            builder
                .with_stdin(stdin)
                .with_stdout(config.stdout)
                .with_stderr(config.stderr)
                .with_console_socket(console_socket)
                .as_init(&config.bundle_dir)
                .with_systemd(false)
                .with_detach(true)
                .build()
        });
    let mut container = match built {
        Ok(Ok(container)) => container,
        Ok(Err(e)) | Err(e) => {
            clean_up_failed(&container_dir);
            return Err(format!(
                "libcontainer could not create it: {}",
                error_chain(&e)
            ));
        }
    };
    if let Err(e) = container.start() {
        clean_up_failed(&container_dir);
        return Err(format!(
            "libcontainer could not start it: {}",
            error_chain(&e)
        ));
    }
    container
        .pid()
        .map(Pid::as_raw)
        .ok_or_else(|| "libcontainer reported no pid for the started container".to_string())
}

/// After a failed create or start: kill and reap the container's init if there is one (it is
/// this runner's child) and remove the state directory, so that the id can be used again.
fn clean_up_failed(container_dir: &Path) {
    if let Ok(container) = Container::load(container_dir.to_path_buf()) {
        if let Some(pid) = container.pid() {
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                let _ = waitpid(pid, None);
            }
        }
    }
    let _ = std::fs::remove_dir_all(container_dir);
}

/// Makes libcgroups choose its cgroup-v2 manager in this (private) mount namespace.
///
/// libcontainer always adds the container to a cgroup, and its v1 manager fails with EACCES
/// for an unprivileged user; the v2 manager, told it is rootless, tolerates that. libcgroups
/// picks v2 only when /sys/fs/cgroup itself is a cgroup2 mount.
/// * unified host: nothing to do;
/// * hybrid host (cgroup2 at /sys/fs/cgroup/unified): bind-mount it over /sys/fs/cgroup;
/// * legacy host (no cgroup2 anywhere): a new cgroup namespace of the runner's and a fresh
///   cgroup2 mount at /sys/fs/cgroup (allowed: the pod's user namespace owns the new cgroup
///   namespace).
///
/// The container gets its own cgroup namespace (see the spec), so inside it /sys/fs/cgroup is a
/// read-only cgroup2 mount; no limits are enforced.
pub(crate) fn apply_cgroup_workaround() -> Result<(), String> {
    let is_cgroup2 = |path: &str| {
        statfs(path)
            .map(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC)
            .unwrap_or(false)
    };
    if is_cgroup2("/sys/fs/cgroup") {
        return Ok(());
    }
    if is_cgroup2("/sys/fs/cgroup/unified") {
        return mount(
            Some("/sys/fs/cgroup/unified"),
            "/sys/fs/cgroup",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            format!("cannot bind-mount /sys/fs/cgroup/unified over /sys/fs/cgroup (hybrid cgroup workaround): {e}")
        });
    }
    unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| format!("unshare(CLONE_NEWCGROUP) for the legacy cgroup workaround: {e}"))?;
    mount(
        Some("cgroup2"),
        "/sys/fs/cgroup",
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("cannot mount cgroup2 at /sys/fs/cgroup (legacy cgroup workaround): {e}"))
}

/// The overlay root filesystem of a container.
struct OverlayMount {
    target: PathBuf,
    lower: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
}

/// The kernel copies at most one page of mount options.
const MAX_MOUNT_DATA: usize = 4095;

impl OverlayMount {
    fn new(config: &ContainerConfig) -> Self {
        OverlayMount {
            target: config.bundle_dir.join("rootfs"),
            lower: config.lower_dirs.clone(),
            upper: config.upper_dir.clone(),
            work: config.work_dir.clone(),
        }
    }

    /// The `mount(2)` option string, or `None` when it does not fit in a page or a path holds a
    /// character the option syntax cannot carry (`,` `:` `\`).
    fn legacy_options(&self) -> Option<String> {
        let mut paths = self.lower.iter().chain([&self.upper, &self.work]);
        if paths.any(|p| p.as_os_str().as_bytes().iter().any(|b| b",:\\".contains(b))) {
            return None;
        }
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        let data = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        );
        (data.len() <= MAX_MOUNT_DATA).then_some(data)
    }

    fn mount(&self) -> Result<(), String> {
        match self.legacy_options() {
            Some(data) => mount(
                Some("overlay"),
                &self.target,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|e| format!("cannot mount the overlay root filesystem ({data}): {e}")),
            None => self
                .mount_with_fsconfig()
                .map_err(|e| format!("cannot mount the overlay root filesystem ({} layers, with fsconfig lowerdir+; needs Linux 6.8): {e}", self.lower.len())),
        }
    }

    /// The new mount API passes each layer separately (`lowerdir+`, Linux ≥ 6.8): no length
    /// limit and no escaping.
    fn mount_with_fsconfig(&self) -> Result<(), nix::Error> {
        const FSOPEN_CLOEXEC: libc::c_uint = 1;
        const FSCONFIG_SET_FLAG: libc::c_uint = 0;
        const FSCONFIG_SET_STRING: libc::c_uint = 1;
        const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
        const FSMOUNT_CLOEXEC: libc::c_uint = 1;
        const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

        fn check(ret: libc::c_long) -> Result<libc::c_long, nix::Error> {
            if ret < 0 {
                Err(nix::Error::last())
            } else {
                Ok(ret)
            }
        }
        fn cstring(bytes: &[u8]) -> Result<CString, nix::Error> {
            CString::new(bytes).map_err(|_| nix::Error::EINVAL)
        }
        // SAFETY: the new mount API's system calls with valid NUL-terminated strings and fds
        // we own.
        unsafe {
            let fs = OwnedFd::from_raw_fd(check(libc::syscall(
                libc::SYS_fsopen,
                c"overlay".as_ptr(),
                FSOPEN_CLOEXEC,
            ))? as i32);
            let set = |key: &str, value: Option<&Path>| -> Result<(), nix::Error> {
                let key = cstring(key.as_bytes())?;
                match value {
                    Some(value) => {
                        let value = cstring(value.as_os_str().as_bytes())?;
                        check(libc::syscall(
                            libc::SYS_fsconfig,
                            fs.as_raw_fd(),
                            FSCONFIG_SET_STRING,
                            key.as_ptr(),
                            value.as_ptr(),
                            0,
                        ))?;
                    }
                    None => {
                        check(libc::syscall(
                            libc::SYS_fsconfig,
                            fs.as_raw_fd(),
                            FSCONFIG_SET_FLAG,
                            key.as_ptr(),
                            std::ptr::null::<libc::c_char>(),
                            0,
                        ))?;
                    }
                }
                Ok(())
            };
            for layer in &self.lower {
                set("lowerdir+", Some(layer))?;
            }
            set("upperdir", Some(&self.upper))?;
            set("workdir", Some(&self.work))?;
            set("userxattr", None)?;
            check(libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_char>(),
                0,
            ))?;
            let mnt = OwnedFd::from_raw_fd(check(libc::syscall(
                libc::SYS_fsmount,
                fs.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                0,
            ))? as i32);
            let target = cstring(self.target.as_os_str().as_bytes())?;
            check(libc::syscall(
                libc::SYS_move_mount,
                mnt.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(lower: Vec<PathBuf>) -> OverlayMount {
        OverlayMount {
            target: "/b/rootfs".into(),
            lower,
            upper: "/u".into(),
            work: "/w".into(),
        }
    }

    #[test]
    fn overlay_options_top_layer_first() {
        let options = overlay(vec!["/l/top".into(), "/l/base".into()])
            .legacy_options()
            .unwrap();
        assert_eq!(
            options,
            "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w,userxattr"
        );
    }

    #[test]
    fn long_or_odd_layer_lists_need_fsconfig() {
        let many = (0..200)
            .map(|i| PathBuf::from(format!("/var/lib/podrun/layers/{i:064}")))
            .collect();
        assert!(overlay(many).legacy_options().is_none());
        assert!(overlay(vec!["/l/a:b".into()]).legacy_options().is_none());
        assert!(overlay(vec!["/l/a,b".into()]).legacy_options().is_none());
    }
}
