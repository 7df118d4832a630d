//! The pod supervisor: `podrun supervisor <namespace>/<name>`, one per pod, single-threaded.
//!
//! It reads the pod's `plan.json`, becomes the pod sandbox (podrun-runtime), runs the init
//! containers one at a time, then starts the app containers ([`start`]), writes
//! `state.json` and reports on its ready pipe once the pod has settled (see [`lifecycle`] for
//! the containers' lifecycle). Then it waits for signals: SIGCHLD (a container ended:
//! record it, delete it, restart it as `restartPolicy` says, after the kubelet's back-off,
//! [`crate::backoff`]; or a hook or probe process ended) and SIGTERM/SIGINT/SIGHUP (stop the
//! pod: preStop hooks, each container's stop signal, SIGKILL after
//! `terminationGracePeriodSeconds` or the grace period of the stop request in the runtime
//! directory, sidecars last; then remove the pod's data and runtime directories and exit 0).
//!
//! Signals come through a self-pipe ([`crate::signals`]), which the main loop `poll`s with
//! the timeout of the next timer, together with the containers' stdout and stderr pipes,
//! whose output it appends to their logs ([`crate::logs`]), and the attach endpoint
//! ([`crate::attach`]). Probes are [`probes`], `activeDeadlineSeconds` is [`deadline`].

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use podrun_pod_model::plan::Plan;
use podrun_pod_model::ready::ReadyMessage;
use podrun_pod_model::state::{ContainerState, PodState};
use podrun_pod_model::{remove_tree, PodLayout};
use podrun_runtime::PodPidNamespace;

mod deadline;
mod lifecycle;
mod probes;
mod start;

use crate::logs::{ContainerLog, Stream};

/// The signal that stops a container: its planned stop signal (`lifecycle.stopSignal` or
/// the image's STOPSIGNAL: `SIGQUIT`, `QUIT` or a number), else SIGTERM.
pub fn stop_signal(image_stop_signal: Option<&str>) -> Signal {
    image_stop_signal
        .and_then(podrun_pod_model::plan::hooks::parse_signal)
        .unwrap_or(Signal::SIGTERM)
}

/// The supervisor's answer to `podrun play` (ready pipe), sent once.
struct Ready(Option<File>);

impl Ready {
    fn send(&mut self, message: ReadyMessage) {
        if let Some(mut file) = self.0.take() {
            let _ = file.write_all(&message.encode());
        }
    }

    /// Whether `play` still waits for the answer.
    fn pending(&self) -> bool {
        self.0.is_some()
    }
}

/// Runs the supervisor of the pod whose runtime directory is `dir`; `ready_fd` is the write
/// end of `podrun play`'s pipe, `owner` the pidfd of `play --owner-pid`'s process (the pod
/// stops when it ends). Returns the process exit code.
pub fn run(dir: &Path, ready_fd: Option<RawFd>, owner: Option<crate::OwnerFd>) -> i32 {
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
    // Before the user namespace is entered: the owner's command name is read from /proc.
    let owner = owner.and_then(crate::owner::OwnerWatch::adopt);
    let _ = std::env::set_current_dir("/");
    let _ = std::fs::write(
        dir.join(podrun_pod_model::layout::PID_FILE),
        format!("{}\n", std::process::id()),
    );
    let mut supervisor = match Supervisor::start(dir, ready) {
        Ok(supervisor) => supervisor,
        Err((e, mut ready)) => {
            eprintln!("error: {e}");
            ready.send(ReadyMessage::Failed(e.to_string()));
            return 1;
        }
    };
    if let Some(owner) = owner {
        supervisor.state.owner = owner.owner.clone();
        supervisor.owner = Some(owner);
        supervisor.write_state();
    }
    supervisor.main_loop();
    if let Some(error) = supervisor.start_error.take() {
        // A container that play waits for could not be started.
        supervisor.ready.send(ReadyMessage::Failed(error));
        supervisor.abort();
        let _ = remove_tree(&supervisor.layout.runtime_dir);
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
    stopping: Option<crate::stop::Stopping>,
}

impl Run {
    fn running(&self) -> bool {
        self.state.running()
    }
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
    /// The pod's directories: the runtime directory the supervisor was started for, the
    /// plan's data directory.
    layout: PodLayout,
    runs: Vec<Run>,
    pid_namespace: Option<PodPidNamespace>,
    /// The network helper (slirp4netns or pasta); dropping it ends the helper.
    network: Option<crate::network::Helper>,
    /// Ends the pod's processes if this process dies without stopping them.
    watchdog: Option<crate::watchdog::Watchdog>,
    /// The self-pipe's read end (see [`crate::signals`]).
    signals: OwnedFd,
    state: PodState,
    stopping: bool,
    /// The end of the pod's grace period once it stops (the sidecars get what is left).
    pod_deadline: Option<Instant>,
    /// The grace period stop requests asked for (the shortest), once the pod stops; `None`:
    /// the pod's own (see [`crate::stop`]).
    stop_grace: Option<Duration>,
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
    /// `play --owner-pid`'s process, until it ends (then the pod stops).
    owner: Option<crate::owner::OwnerWatch>,
    /// Drops the binary's pages the main loop mapped, before it sleeps (see
    /// [`podrun_footprint`]).
    shrinker: podrun_footprint::Shrinker,
    /// On the shared network: the pod's link to the holder (readiness for Services).
    shared_network: Option<crate::shared_network::SharedNetwork>,
    /// On the shared network: its DNS server, for the pod's resolv.conf.
    cluster_dns: Option<crate::dns::ClusterDns>,
}

impl Supervisor {
    /// The pod's libcontainer root.
    fn state_root(&self) -> std::path::PathBuf {
        self.layout.libcontainer_root()
    }

    fn write_state(&mut self) {
        let apps = self.plan.containers.len();
        self.state.containers = self.runs[..apps].iter().map(|r| r.state.clone()).collect();
        self.state.init_containers = self.runs[apps..].iter().map(|r| r.state.clone()).collect();
        self.apply_probe_status();
        self.state.phase = self.state.compute_phase();
        if self.written.as_ref() == Some(&self.state) {
            return;
        }
        self.written = Some(self.state.clone());
        if let Err(e) = self.state.write(&self.layout.runtime_dir) {
            eprintln!("warning: {e}");
        }
        if let Some(network) = &mut self.shared_network {
            let (ready, total) = self.state.ready();
            let pod_ready = ready == total && !self.state.terminating && !self.stopping;
            network.report_ready(pod_ready);
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
                .position(|r| r.running() && r.state.pid == Some(pid))
            else {
                self.reap_other(pid, code);
                continue;
            };
            changed = true;
            // Its output is in its pipes now: record it before the exit, so that `podrun logs`
            // has it once `ps` shows the container ended.
            self.runs[index].log.pump(EXIT_BUDGET);
            let runs = &mut self.runs;
            self.attach.ended(index, &mut |i, output: &[u8]| {
                runs[i].log.record(Stream::Stdout, output)
            });
            let id = self.runs[index].state.id.clone();
            if let Err(e) = podrun_runtime::delete_container(&self.state_root(), &id) {
                eprintln!("warning: cannot delete container {id}: {e}");
            }
            self.probes.container_ended(index);
            self.container_ended(index, code);
        }
        if changed {
            self.write_state();
        }
    }

    /// A child that is neither a container, a hook nor a probe ended: the watchdog or the
    /// network helper.
    fn reap_other(&mut self, pid: i32, code: i32) {
        if self
            .watchdog
            .as_ref()
            .is_some_and(|w| w.pid().as_raw() == pid)
        {
            self.watchdog = None;
            eprintln!("warning: the pod's watchdog (pid {pid}) ended with status {code}");
        }
        if let Some(helper) = self.network.take_if(|n| n.pid() == pid) {
            // Reaped: its pid may be reused, so it is never signalled again. A stop of grace
            // period 0 ends it with the containers (see `end_network_now`).
            if self.stop_grace != Some(Duration::ZERO) {
                eprintln!(
                    "warning: {} (pid {pid}) ended with status {code}: the pod has lost its network to the outside",
                    helper.name()
                );
            }
        }
    }

    fn signal_running(&self, signal: Signal) {
        for index in 0..self.runs.len() {
            self.signal_container(index, signal);
        }
    }

    fn signal_container(&self, index: usize, signal: Signal) {
        let run = &self.runs[index];
        if !run.running() {
            return;
        }
        if let Err(e) = podrun_runtime::kill_container(&self.state_root(), &run.state.id, signal) {
            // libcontainer's state may be gone (its directory removed under us). The
            // init is our unreaped child, so its pid is still its own: signal it.
            let direct = run
                .state
                .pid
                .map(|pid| nix::sys::signal::kill(Pid::from_raw(pid), signal));
            if !matches!(direct, Some(Ok(()))) {
                eprintln!("warning: cannot signal {}: {e}", run.state.name);
            }
        }
    }

    fn any_running(&self) -> bool {
        self.runs.iter().any(Run::running)
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
            // Once started: what start-up and the last rounds mapped of the binary can go,
            // once the loop is quiet (podrun_footprint).
            let shrink = !self.ready.pending() && self.shrinker.round_ends();
            self.wait(self.timeout_ms(), shrink);
            self.handle_signals();
            self.check_owner();
            for run in &mut self.runs {
                run.log.pump(ROUND_BUDGET);
            }
            let runs = &mut self.runs;
            self.attach
                .pump(&mut |i, output: &[u8]| runs[i].log.record(Stream::Stdout, output));
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
        if self.ready.pending() && (self.settled() || self.stopping) {
            self.ready.send(ReadyMessage::Started);
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
            .chain(self.shrinker.due())
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
    /// `timeout_ms` passed. `shrink`: drop the binary's pages first, right before the poll,
    /// so that little runs (and maps its pages again) between the two.
    fn wait(&self, timeout_ms: libc::c_int, shrink: bool) {
        let output = self.runs.iter().flat_map(|r| r.log.fds());
        let mut fds: Vec<libc::pollfd> = std::iter::once(self.signals.as_raw_fd())
            .chain(output)
            .chain(self.owner.as_ref().map(crate::owner::OwnerWatch::fd))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .chain(self.attach.poll_fds())
            .collect();
        if shrink {
            podrun_footprint::Droppable::find().drop_now();
        }
        // SAFETY: poll on valid descriptors that outlive the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    }

    /// Reads the self-pipe; a SIGTERM, SIGINT or SIGHUP begins the pod's stop.
    fn handle_signals(&mut self) {
        for signal in crate::signals::read_pending(&self.signals) {
            if crate::signals::is_stop(signal) {
                // `podrun down --grace-period N` wrote its grace period before it signalled.
                let request = podrun_pod_model::stop::StopRequest::read(&self.layout);
                tracing::info!(signal, ?request, "stopping the pod");
                self.stop_as_asked(request);
            }
        }
    }

    /// The pod's owner ended (`play --owner-pid`): stop the pod as on `podrun down`. Its
    /// pidfd is dropped, or it would wake every poll.
    fn check_owner(&mut self) {
        if !self.owner.as_ref().is_some_and(|o| o.ended()) {
            return;
        }
        let Some(watch) = self.owner.take() else {
            return;
        };
        let owner = watch.owner;
        let who = owner.map_or("the pod's owner".to_string(), |o| {
            format!("the pod's owner {o}")
        });
        tracing::info!("{who} ended: stopping the pod");
        self.state.event(
            podrun_pod_model::state::EventKind::Normal,
            "OwnerEnded",
            None,
            format!("{who} ended: stopping the pod"),
        );
        // `play --owner-pid --grace-period N`: as `podrun down --grace-period N`.
        let request = watch.grace_period_seconds.map(|grace_period_seconds| {
            podrun_pod_model::stop::StopRequest {
                grace_period_seconds,
            }
        });
        self.stop_as_asked(request);
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
        if let Some(pidns) = self.pid_namespace.take() {
            let _ = pidns.shutdown();
        }
        let state_root = self.state_root();
        for run in &self.runs {
            if !run.state.id.is_empty() {
                let _ = podrun_runtime::delete_container(&state_root, &run.state.id);
            }
        }
        if let Some(cgroup) = &self.plan.cgroup {
            if let Err(e) = cgroup.remove() {
                eprintln!("warning: {e}");
            }
        }
        for volume in &self.plan.volumes.memory {
            crate::volumes::unmount_memory_volume(&self.layout.data_volume(&volume.name));
        }
        if let Err(e) = remove_tree(&self.layout.data_dir) {
            eprintln!("warning: {e}");
        }
        // Ends the helper (slirp4netns: SIGKILL; pasta: SIGTERM) and reaps it; after the
        // rest, which may overlap its end (the kernel's teardown of the pod's tap device,
        // ~15 ms) when a stop of grace period 0 killed it already.
        self.network.take();
        if let Some(shared) = self.shared_network.take() {
            shared.leave();
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.disarm();
        }
    }

    /// The pod has stopped: remove everything, return the exit code.
    fn finish(mut self) -> i32 {
        self.cleanup();
        match remove_tree(&self.layout.runtime_dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    }
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
