//! The pod supervisor: `podrun __supervise DIR`, one per pod, single-threaded.
//!
//! It reads `DIR/plan.json`, becomes the pod sandbox (podrun-runtime), runs the init
//! containers one at a time, then starts the app containers, writes `state.json` and reports
//! `ok` on its ready pipe (see [`lifecycle`] for the containers' lifecycle). Then it waits for
//! signals: SIGCHLD (a container ended: record it, delete it, restart it as `restartPolicy`
//! says, after the kubelet's back-off, [`crate::backoff`]; or a hook process ended) and
//! SIGTERM/SIGINT/SIGHUP (stop the pod: preStop hooks, each container's stop signal, SIGKILL
//! after `terminationGracePeriodSeconds`, sidecars last; then remove the pod's data and
//! runtime directories and exit 0).
//!
//! Signals are caught by handlers that write the signal number into a self-pipe, which the
//! main loop `poll`s with the timeout of the next timer, together with the containers'
//! stdout and stderr pipes, whose output it appends to `logs/<container>.log`
//! ([`crate::logs`]). Handlers (unlike blocked or ignored
//! signals) are reset by `execve`, so containers start with default signal dispositions and an
//! empty signal mask.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use podrun_runtime::{BindMount, ContainerConfig, Mount, PodPidNamespace};

mod deadline;
mod lifecycle;
mod probes;

use crate::logs::ContainerLog;
use crate::plan::Plan;
use crate::state::{ContainerState, PodState};
use crate::{remove_tree, PodError};

/// The hidden subcommand that runs a supervisor.
pub const SUPERVISE_COMMAND: &str = "__supervise";
/// The supervisor's pid, written first thing (before `state.json` exists).
pub const PID_FILE: &str = "supervisor.pid";
/// The supervisor's own stdout and stderr.
pub const LOG_FILE: &str = "supervisor.log";

/// The signal that stops a container: its planned stop signal (`lifecycle.stopSignal` or
/// the image's STOPSIGNAL: `SIGQUIT`, `QUIT` or a number), else SIGTERM.
pub fn stop_signal(image_stop_signal: Option<&str>) -> Signal {
    image_stop_signal
        .and_then(crate::lifecycle::parse_signal)
        .unwrap_or(Signal::SIGTERM)
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) and errno access are async-signal-safe.
        unsafe {
            let saved = *libc::__errno_location();
            let byte = signal as u8;
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Every signal back to its default action and none blocked. Ignored signals and the signal
/// mask survive `fork` and `execve`: a `podrun play` started where SIGQUIT or SIGINT is
/// ignored (a background job of a non-interactive shell, `nohup`, some CI runners) would
/// pass that on to every container, whose shell then cannot even trap the signal (POSIX:
/// signals ignored on entry cannot be trapped). Containers start as a kubelet's do.
fn reset_signal_dispositions() {
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: the default action, no handler.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    }
    // The real-time signals too: glibc refuses to touch 32 and 33 (its own), which the
    // kernel still lets a process inherit as ignored (cargo's test runs do).
    // SAFETY: SIGRTMAX reads a constant of the C library.
    for signal in 32..=unsafe { libc::__libc_current_sigrtmax() } {
        default_action(signal);
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// `rt_sigaction(signal, SIG_DFL)` straight to the kernel.
fn default_action(signal: libc::c_int) {
    /// The kernel's `struct sigaction` on x86_64 and aarch64.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid action for a valid signal number, no old action asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// Installs the self-pipe handlers; returns the pipe's read end.
fn install_signal_handlers() -> Result<OwnedFd, PodError> {
    reset_signal_dispositions();
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| PodError::msg(format!("cannot create the signal pipe: {e}")))?;
    SIGNAL_PIPE.store(write_end.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(write_end);
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_signal),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: the handler only writes to a pipe.
        unsafe { nix::sys::signal::sigaction(signal, &action) }
            .map_err(|e| PodError::msg(format!("cannot handle {signal}: {e}")))?;
    }
    Ok(read_end)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The supervisor's answer to `podrun play` (ready pipe): `ok\n` or an error message.
struct Ready(Option<File>);

impl Ready {
    fn send(&mut self, text: &str) {
        if let Some(mut file) = self.0.take() {
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// Runs the supervisor of the pod whose runtime directory is `dir`; `ready_fd` is the write
/// end of `podrun play`'s pipe. Returns the process exit code.
pub fn run(dir: &Path, ready_fd: Option<RawFd>) -> i32 {
    // SAFETY: the fd was handed to us by our parent and is used only here.
    let ready_file = ready_fd.map(|fd| unsafe { File::from_raw_fd(fd) });
    if let Some(file) = &ready_file {
        // Containers must not inherit it: play waits for its end-of-file.
        let _ = nix::fcntl::fcntl(
            file.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    let ready = Ready(ready_file);
    let _ = std::env::set_current_dir("/");
    let _ = std::fs::write(dir.join(PID_FILE), format!("{}\n", std::process::id()));
    let mut supervisor = match Supervisor::start(dir, ready) {
        Ok(supervisor) => supervisor,
        Err((e, mut ready)) => {
            eprintln!("error: {e}");
            ready.send(&e.to_string());
            return 1;
        }
    };
    supervisor.main_loop();
    if let Some(error) = supervisor.start_error.take() {
        // A container that play waits for could not be started.
        supervisor.ready.send(&error);
        supervisor.abort();
        let _ = remove_tree(&supervisor.dir);
        return 1;
    }
    supervisor.finish()
}

/// One container's run-time bookkeeping.
struct Run {
    state: ContainerState,
    /// When a waiting container is restarted.
    restart_at: Option<Instant>,
    /// Its log file and output pipes.
    log: ContainerLog,
    /// Its crash-loop back-off.
    backoff: crate::backoff::Backoff,
    /// When its last run ended (for the back-off).
    finished: Option<Instant>,
    /// Set while it is being stopped (preStop, stop signal, SIGKILL).
    stopping: Option<lifecycle::Stopping>,
}

/// The bytes read from one output pipe per round of the main loop: a container that writes
/// without pause cannot hold up signals, exits and the other containers' output.
const ROUND_BUDGET: usize = 256 * 1024;
/// The bytes read from an exited container's pipes before it is recorded: all it wrote (a
/// pipe holds 64 KiB by default), unless processes it left behind (a shared pid namespace)
/// go on writing, whose output the main loop keeps reading.
const EXIT_BUDGET: usize = 16 * 1024 * 1024;

struct Supervisor {
    plan: Plan,
    dir: PathBuf,
    state_root: PathBuf,
    runs: Vec<Run>,
    pid_namespace: Option<PodPidNamespace>,
    /// The network helper (slirp4netns or pasta); dropping it ends the helper.
    network: Option<crate::network::Helper>,
    /// Ends the pod's processes if this process dies without stopping them.
    watchdog: Option<crate::watchdog::Watchdog>,
    signals: OwnedFd,
    state: PodState,
    stopping: bool,
    /// The end of the pod's grace period once it stops (the sidecars get what is left).
    pod_deadline: Option<Instant>,
    /// `play`'s answer, until it is sent (once the pod has settled, see
    /// [`Supervisor::settled`]).
    ready: Ready,
    /// A container that `play` waits for could not be started: the pod's start fails.
    start_error: Option<String>,
    /// Every init container is done and the app containers were started.
    apps_started: bool,
    /// An init container failed under restartPolicy Never: the pod failed.
    pod_failed: bool,
    /// postStart and preStop hooks being run.
    hooks: Vec<lifecycle::HookChild>,
    /// The state last written to `state.json`.
    written: Option<PodState>,
    /// The containers' probes.
    probes: crate::probe::Prober,
    /// When `activeDeadlineSeconds` runs out (see [`deadline`]); `None` once it has.
    active_deadline: Option<Instant>,
    /// The containers' stdin and terminals, and the clients attached to them.
    attach: crate::attach::Attachments,
}

/// Enters podrun's user namespace unless this process is in one already (it inherits the one
/// `podrun play` entered) or is host root.
fn ensure_user_namespace() -> Result<(), PodError> {
    if podrun_userns::is_root_in_initial_namespace() {
        return Ok(());
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let initial = map.split_whitespace().nth(2) == Some("4294967295");
    if !initial {
        return Ok(());
    }
    let plan =
        podrun_userns::MappingPlan::for_current_user().map_err(|e| PodError::msg(e.to_string()))?;
    podrun_userns::enter_user_namespace(&plan).map_err(|e| PodError::msg(e.to_string()))
}

impl Supervisor {
    fn start(dir: &Path, ready: Ready) -> Result<Supervisor, (PodError, Ready)> {
        let mut ready = Some(ready);
        Self::start_inner(dir, &mut ready).map_err(|e| (e, ready.take().unwrap_or(Ready(None))))
    }

    fn start_inner(dir: &Path, ready: &mut Option<Ready>) -> Result<Supervisor, PodError> {
        let plan = Plan::read(dir)?;
        let pod = crate::display_name(&plan.namespace, &plan.name);
        let signals = install_signal_handlers()?;
        // pasta's launcher is forked before the pod's user namespace exists (pasta must join
        // it from outside); dropped unreleased (the launcher exits) if anything fails.
        let early = crate::network::prepare_helper_outside_userns(&plan)?;
        ensure_user_namespace()?;
        tracing::debug!("in the pod's user namespace");
        private_mount_namespace()?;
        // Forked while still in the host's network namespace, released once the pod's exists.
        let network = crate::network::prepare_helper(&plan, early)?;
        crate::network::become_sandbox(&plan)
            .map_err(|e| PodError::msg(format!("pod `{pod}`: {e}")))?;
        crate::security::apply_sysctls(&plan.security.sysctls)
            .map_err(|e| PodError::msg(format!("pod `{pod}`: {e}")))?;
        tracing::debug!("pod sandbox made");
        let network = crate::network::start_helper(&plan, network)?;
        // Before any process of the pod that could outlive this one.
        let watchdog = crate::watchdog::Watchdog::start()?;
        let pid_namespace = if plan.share_process_namespace {
            Some(
                podrun_runtime::create_pod_pid_namespace()
                    .map_err(|e| PodError::msg(format!("pod `{pod}`: {e}")))?,
            )
        } else {
            None
        };
        let user_namespace = std::fs::read_link("/proc/self/ns/user")
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let scale = crate::backoff::scale_from_env();
        let first_wait = if plan.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let runs = plan
            .containers
            .iter()
            .map(|c| (c, first_wait))
            .chain(plan.init_containers.iter().map(|c| (c, "PodInitializing")))
            .map(|(c, reason)| Run {
                log: ContainerLog::new(
                    dir.join("logs").join(format!("{}.log", c.name)),
                    plan.log_max_size,
                ),
                state: ContainerState {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    state: "waiting".into(),
                    reason: Some(reason.into()),
                    message: None,
                    ready: false,
                    sidecar: c.sidecar,
                    started: false,
                    probes: Vec::new(),
                    pid: None,
                    id: String::new(),
                    exit_code: None,
                    started_at: None,
                    finished_at: None,
                    restart_count: 0,
                    termination_message: None,
                },
                restart_at: None,
                backoff: crate::backoff::Backoff::new(scale),
                finished: None,
                stopping: None,
            })
            .collect();
        let state = PodState {
            pod: plan.name.clone(),
            namespace: plan.namespace.clone(),
            uid: plan.uid.clone(),
            supervisor_pid: std::process::id() as i32,
            user_namespace,
            created: plan.created.clone(),
            restart_policy: plan.restart_policy.clone(),
            termination_grace_period_seconds: plan.termination_grace_period_seconds,
            phase: "Pending".into(),
            terminating: false,
            reason: None,
            message: None,
            containers: Vec::new(),
            init_containers: Vec::new(),
            events: Vec::new(),
        };
        let probes = crate::probe::Prober::new(&plan, dir.join("libcontainer"));
        // In the supervisor's container order: the app containers, then the init containers.
        let attach = crate::attach::Attachments::new(
            dir,
            plan.containers
                .iter()
                .chain(&plan.init_containers)
                .map(|c| (c.name.clone(), c.stdio)),
        )?;
        let mut supervisor = Supervisor {
            active_deadline: deadline::start(&plan),
            probes,
            state_root: dir.join("libcontainer"),
            dir: dir.to_path_buf(),
            plan,
            runs,
            pid_namespace,
            network,
            watchdog,
            signals,
            state,
            stopping: false,
            pod_deadline: None,
            ready: ready.take().unwrap_or(Ready(None)),
            start_error: None,
            apps_started: false,
            pod_failed: false,
            hooks: Vec::new(),
            written: None,
            attach,
        };
        if let Err(e) = supervisor.prepare().and_then(|()| supervisor.advance()) {
            supervisor.abort();
            *ready = Some(std::mem::replace(&mut supervisor.ready, Ready(None)));
            return Err(e);
        }
        supervisor.write_state();
        Ok(supervisor)
    }

    /// The pod's files: /etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/shm, volumes, logs.
    fn prepare(&mut self) -> Result<(), PodError> {
        use std::os::unix::fs::PermissionsExt;
        let mkdir = |path: &Path, mode: u32| -> Result<(), PodError> {
            std::fs::create_dir_all(path)
                .map_err(PodError::io(format!("cannot create {}", path.display())))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(PodError::io(format!("cannot chmod {}", path.display())))
        };
        let etc = self.dir.join("etc");
        mkdir(&etc, 0o755)?;
        let hostname = &self.plan.hostname;
        let write = |name: &str, text: String| -> Result<(), PodError> {
            let path = etc.join(name);
            std::fs::write(&path, text)
                .map_err(PodError::io(format!("cannot write {}", path.display())))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(PodError::io(format!("cannot chmod {}", path.display())))
        };
        write("hosts", crate::dns::hosts_file(&self.plan)?)?;
        write("hostname", format!("{hostname}\n"))?;
        let resolv = crate::network::resolv_conf(&self.plan);
        write(
            "resolv.conf",
            crate::dns::resolv_conf(&resolv, &self.plan.dns),
        )?;
        mkdir(&self.dir.join("shm"), 0o1777)?;
        mkdir(&self.dir.join("logs"), 0o755)?;
        mkdir(&self.state_root, 0o700)?;
        for volume in &self.plan.volumes.empty_dirs {
            // Kubernetes makes emptyDir volumes world-writable.
            mkdir(&self.plan.data_dir.join("volumes").join(volume), 0o777)?;
        }
        for volume in &self.plan.volumes.memory {
            mount_memory_volume(
                &self.plan.data_dir.join("volumes").join(&volume.name),
                volume,
            )?;
        }
        crate::volumes::prepare(&self.plan.volumes)?;
        if let Some(fs_group) = self.plan.security.fs_group {
            for volume in &self.plan.volumes.empty_dirs {
                let dir = self.plan.data_dir.join("volumes").join(volume);
                crate::security::apply_fs_group(&dir, fs_group, false)?;
            }
            for volume in &self.plan.volumes.files {
                crate::security::apply_fs_group(&volume.dir, fs_group, true)?;
            }
        }
        Ok(())
    }

    fn container_id(&self, index: usize) -> String {
        let uid: String = self
            .plan
            .uid
            .chars()
            .filter(|c| *c != '-')
            .take(8)
            .collect();
        format!(
            "{}_{}_{}_{}_{}",
            self.plan.namespace,
            self.plan.name,
            self.plan_of(index).name,
            uid,
            self.runs[index].state.restart_count
        )
    }

    fn start_container(&mut self, index: usize) -> Result<(), PodError> {
        let (starting, id) = self.spawn_container(index)?;
        self.finish_start(index, starting, id)
    }

    /// Starts several containers at once: their runners work in parallel (each spends most
    /// of its time compiling the seccomp filter and mounting the root filesystem), then each
    /// is recorded, in order.
    pub(super) fn start_containers(
        &mut self,
        indices: &[usize],
    ) -> Vec<(usize, Result<(), PodError>)> {
        let spawned: Vec<_> = indices
            .iter()
            .map(|&index| (index, self.spawn_container(index)))
            .collect();
        spawned
            .into_iter()
            .map(|(index, spawned)| {
                let result =
                    spawned.and_then(|(starting, id)| self.finish_start(index, starting, id));
                (index, result)
            })
            .collect()
    }

    /// What names a container in messages: the pod and the container.
    fn container_what(&self, index: usize) -> String {
        let pod = crate::display_name(&self.plan.namespace, &self.plan.name);
        format!("pod `{pod}`: container `{}`", self.plan_of(index).name)
    }

    /// Prepares the container's mounts, log pipes and directories and forks its runner.
    fn spawn_container(
        &mut self,
        index: usize,
    ) -> Result<(podrun_runtime::StartingContainer, String), PodError> {
        let container = self.plan_of(index).clone();
        let pod = crate::display_name(&self.plan.namespace, &self.plan.name);
        let what = format!("pod `{pod}`: container `{}`", container.name);
        // The pipes' write ends go into `config` and are closed here when the runner has
        // started the container (or failed to).
        let (stdout, stderr) = self.runs[index]
            .log
            .new_run()
            .map_err(|e| PodError::msg(format!("{what}: {e}")))?;
        let mut mounts = Vec::new();
        for mount in &container.mounts {
            mounts.push(Mount::Bind(BindMount {
                source: crate::volumes::mount_source(mount)
                    .map_err(|e| PodError::msg(format!("{what}: {e}")))?,
                destination: mount.destination.clone(),
                readonly: mount.readonly,
            }));
        }
        for file in ["hosts", "hostname", "resolv.conf"] {
            mounts.push(Mount::Bind(BindMount {
                source: self.dir.join("etc").join(file),
                destination: format!("/etc/{file}"),
                readonly: false,
            }));
        }
        let container_dir = self.plan.container_dir(&container.name);
        let termination_log = crate::termination::file_path(&container_dir);
        crate::termination::prepare_file(&termination_log)
            .map_err(|e| PodError::msg(format!("{what}: {e}")))?;
        mounts.push(Mount::Bind(BindMount {
            source: termination_log,
            destination: container.termination_message.path.clone(),
            readonly: false,
        }));
        if self.runs[index].state.restart_count > 0 {
            // The kubelet restarts a container as a new container of the same image: its
            // writable layer starts empty again (only volumes keep data).
            for dir in ["upper", "work"] {
                remove_tree(&container_dir.join(dir))
                    .map_err(|e| PodError::msg(format!("{what}: {e}")))?;
            }
        }
        crate::workdir::ensure(
            &container.lower_dirs,
            &container_dir.join("upper"),
            &container.cwd,
        )
        .map_err(|e| PodError::msg(format!("{what}: {e}")))?;
        let id = self.container_id(index);
        let config = ContainerConfig {
            id: id.clone(),
            state_root: self.state_root.clone(),
            bundle_dir: container_dir.join("bundle"),
            lower_dirs: container.lower_dirs.clone(),
            upper_dir: container_dir.join("upper"),
            work_dir: container_dir.join("work"),
            args: container.args.clone(),
            env: container.env.clone(),
            cwd: container.cwd.clone(),
            uid: container.uid,
            gid: container.gid,
            additional_gids: container.additional_gids.clone(),
            mounts,
            join_namespaces_of: std::process::id() as i32,
            pid_namespace: self.pid_namespace.as_ref().map(PodPidNamespace::path),
            shm_dir: Some(self.dir.join("shm")),
            stdout,
            stderr,
            stdin: self.attach.new_run(index)?,
            hostname: None,
            readonly_rootfs: container.security.read_only_root_filesystem,
            privileges: container
                .security
                .privileges()
                .map_err(|e| PodError::msg(format!("{what}: {e}")))?,
            host_network: self.plan.network.backend == podrun_network::Backend::Host,
            cgroup: crate::cgroup::container_cgroup(self.plan.cgroup.as_ref(), &container),
        };
        let starting = podrun_runtime::spawn_container(config)
            .map_err(|e| PodError::msg(format!("{what} (image `{}`): {e}", container.image)))?;
        Ok((starting, id))
    }

    /// Waits for the container's runner and records the running container.
    fn finish_start(
        &mut self,
        index: usize,
        starting: podrun_runtime::StartingContainer,
        id: String,
    ) -> Result<(), PodError> {
        let started = starting.wait().map_err(|e| {
            let image = &self.plan_of(index).image;
            PodError::msg(format!(
                "{} (image `{image}`): {e}",
                self.container_what(index)
            ))
        })?;
        let pid = started.pid;
        self.attach.started(index, started.terminal);
        tracing::info!(container = %self.plan_of(index).name, pid, "started");
        let run = &mut self.runs[index];
        run.state.state = "running".into();
        run.state.pid = Some(pid);
        run.state.id = id;
        run.state.started_at = Some(now());
        run.state.finished_at = None;
        run.restart_at = None;
        let id = run.state.id.clone();
        self.probes.container_started(index, &id, Instant::now());
        self.container_started(index);
        Ok(())
    }

    fn write_state(&mut self) {
        let apps = self.plan.containers.len();
        self.state.containers = self.runs[..apps].iter().map(|r| r.state.clone()).collect();
        self.state.init_containers = self.runs[apps..].iter().map(|r| r.state.clone()).collect();
        self.apply_probe_status();
        self.state.phase = self.state.compute_phase().into();
        if self.written.as_ref() == Some(&self.state) {
            return;
        }
        self.written = Some(self.state.clone());
        if let Err(e) = self.state.write(&self.dir) {
            eprintln!("warning: {e}");
        }
    }

    /// Collects every exited child; records the containers among them.
    fn reap(&mut self) {
        let mut changed = false;
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => status,
            };
            let (pid, code) = match status {
                WaitStatus::Exited(pid, code) => (pid.as_raw(), code),
                WaitStatus::Signaled(pid, signal, _) => (pid.as_raw(), 128 + signal as i32),
                _ => continue,
            };
            if self.reap_hook(pid, code) || self.probes.child_exited(pid, code) {
                changed = true;
                continue;
            }
            let Some(index) = self
                .runs
                .iter()
                .position(|r| r.state.state == "running" && r.state.pid == Some(pid))
            else {
                if self
                    .watchdog
                    .as_ref()
                    .is_some_and(|w| w.pid().as_raw() == pid)
                {
                    self.watchdog = None;
                    eprintln!("warning: the pod's watchdog (pid {pid}) ended with status {code}");
                }
                if let Some(helper) = self.network.as_ref().filter(|n| n.pid() == pid) {
                    eprintln!(
                        "warning: {} (pid {pid}) ended with status {code}: the pod has lost its network to the outside",
                        helper.name()
                    );
                }
                continue;
            };
            changed = true;
            // Its output is in its pipes now: record it before the exit, so that `podrun logs`
            // has it once `ps` shows the container ended.
            self.runs[index].log.pump(EXIT_BUDGET);
            let runs = &mut self.runs;
            self.attach.ended(index, &mut |i, output: &[u8]| {
                runs[i].log.record(crate::logs::Stream::Stdout, output)
            });
            let id = self.runs[index].state.id.clone();
            if let Err(e) = podrun_runtime::delete_container(&self.state_root, &id) {
                eprintln!("warning: cannot delete container {id}: {e}");
            }
            self.probes.container_ended(index);
            self.container_ended(index, code);
        }
        if changed {
            self.write_state();
        }
    }

    fn signal_running(&self, signal: Signal) {
        for index in 0..self.runs.len() {
            self.signal_container(index, signal);
        }
    }

    fn signal_container(&self, index: usize, signal: Signal) {
        let run = &self.runs[index];
        if run.state.state != "running" {
            return;
        }
        if let Err(e) = podrun_runtime::kill_container(&self.state_root, &run.state.id, signal) {
            // libcontainer's state may be gone (its directory removed under us). The
            // init is our unreaped child, so its pid is still its own: signal it.
            let direct = run
                .state
                .pid
                .map(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal));
            if !matches!(direct, Some(Ok(()))) {
                eprintln!("warning: cannot signal {}: {e}", run.state.name);
            }
        }
    }

    fn any_running(&self) -> bool {
        self.runs.iter().any(|r| r.state.state == "running")
    }

    /// Waits for signals, output and timers until the pod is stopped.
    fn main_loop(&mut self) {
        // A container may have ended (or a SIGTERM arrived) while the pod was starting.
        self.reap();
        self.end_round();
        loop {
            if (self.stopping && !self.anything_running()) || self.start_error.is_some() {
                return;
            }
            self.wait(self.timeout_ms());
            self.handle_signals();
            for run in &mut self.runs {
                run.log.pump(ROUND_BUDGET);
            }
            let runs = &mut self.runs;
            self.attach.pump(&mut |i, output: &[u8]| {
                runs[i].log.record(crate::logs::Stream::Stdout, output)
            });
            self.reap();
            self.restart_due();
            self.stop_timers();
            self.check_active_deadline();
            self.run_probes();
            if self.stopping {
                self.stop_sidecars();
            }
            self.end_round();
        }
    }

    /// Records what changed, and answers `play` once the pod has settled.
    fn end_round(&mut self) {
        self.write_state();
        if self.ready.0.is_some() && (self.settled() || self.stopping) {
            self.ready.send("ok\n");
            // Started: what start-up touched of the binary can go (crate::footprint).
            crate::footprint::page_out_file_mappings();
        }
    }

    /// Milliseconds until the next timer (a restart, the SIGKILL), at most a minute.
    fn timeout_ms(&self) -> libc::c_int {
        let next = self
            .runs
            .iter()
            .filter_map(|r| r.restart_at)
            .chain(self.next_stop_timer())
            .chain(self.probes.next_due())
            .chain(self.active_deadline)
            .min();
        match next {
            Some(at) => at
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(60_000)
                .try_into()
                .unwrap_or(60_000)
                .max(1),
            None => 60_000,
        }
    }

    /// Sleeps until a signal arrives, a container's pipe has output (or is closed), or
    /// `timeout_ms` passed.
    fn wait(&self, timeout_ms: libc::c_int) {
        let output = self.runs.iter().flat_map(|r| r.log.fds());
        let mut fds: Vec<libc::pollfd> = std::iter::once(self.signals.as_raw_fd())
            .chain(output)
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .chain(self.attach.poll_fds())
            .collect();
        // SAFETY: poll on valid descriptors that outlive the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    }

    /// Reads the self-pipe; a SIGTERM, SIGINT or SIGHUP begins the pod's stop.
    fn handle_signals(&mut self) {
        let mut buffer = [0u8; 64];
        loop {
            // SAFETY: reading into a local buffer from our non-blocking pipe.
            let n = unsafe {
                libc::read(
                    self.signals.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n <= 0 {
                break;
            }
            for &signal in &buffer[..n as usize] {
                let signal = signal as libc::c_int;
                if signal == libc::SIGTERM || signal == libc::SIGINT || signal == libc::SIGHUP {
                    tracing::info!(signal, "stopping the pod");
                    self.begin_stop();
                }
            }
        }
    }

    /// After a failed start: kill what runs, reap it, remove the pod's data directory.
    fn abort(&mut self) {
        self.stopping = true;
        self.signal_running(Signal::SIGKILL);
        for hook in &self.hooks {
            let _ = nix::sys::signal::kill(hook.pid, Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.any_running() && Instant::now() < deadline {
            self.reap();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.cleanup();
    }

    fn cleanup(&mut self) {
        // Ends the helper (slirp4netns: its exit fd closes; pasta: SIGTERM) and reaps it.
        self.network.take();
        if let Some(pidns) = self.pid_namespace.take() {
            let _ = pidns.shutdown();
        }
        for run in &self.runs {
            if !run.state.id.is_empty() {
                let _ = podrun_runtime::delete_container(&self.state_root, &run.state.id);
            }
        }
        if let Some(cgroup) = &self.plan.cgroup {
            if let Err(e) = cgroup.remove() {
                eprintln!("warning: {e}");
            }
        }
        for volume in &self.plan.volumes.memory {
            let path = self.plan.data_dir.join("volumes").join(&volume.name);
            let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Err(e) = remove_tree(&self.plan.data_dir) {
            eprintln!("warning: {e}");
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.disarm();
        }
    }

    /// The pod has stopped: remove everything, return the exit code.
    fn finish(mut self) -> i32 {
        self.cleanup();
        match remove_tree(&self.dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }
}

/// Gives the supervisor a mount namespace of its own, so that the pod's memory volumes are
/// mounted only here (and in the containers, whose runners fork from here) and vanish with
/// the supervisor, however it ends.
fn private_mount_namespace() -> Result<(), PodError> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| PodError::msg(format!("cannot create the pod's mount namespace: {e}")))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| PodError::msg(format!("cannot make the pod's mounts private: {e}")))
}

/// An emptyDir with `medium: Memory`: one tmpfs for the whole pod, `sizeLimit` its size.
fn mount_memory_volume(path: &Path, volume: &crate::volumes::MemoryVolume) -> Result<(), PodError> {
    use nix::mount::{mount, MsFlags};
    let mut options = String::from("mode=1777");
    if let Some(size) = volume.size_limit {
        options.push_str(&format!(",size={size}"));
    }
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| {
        PodError::msg(format!(
            "volume `{}`: cannot mount a tmpfs (medium: Memory): {e}",
            volume.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_from_the_image() {
        assert_eq!(stop_signal(None), Signal::SIGTERM);
        assert_eq!(stop_signal(Some("SIGQUIT")), Signal::SIGQUIT);
        assert_eq!(stop_signal(Some("quit")), Signal::SIGQUIT);
        assert_eq!(stop_signal(Some("9")), Signal::SIGKILL);
        assert_eq!(stop_signal(Some("SIGNOPE")), Signal::SIGTERM);
    }
}
