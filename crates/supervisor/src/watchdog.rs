//! The pod's watchdog: ends the pod's processes when the supervisor dies without stopping
//! them (SIGKILL, the OOM killer, a crash).
//!
//! Container inits are children of the supervisor (a child subreaper), each pid 1 of its own
//! pid namespace or in the pod's shared one; when the supervisor dies they are reparented to
//! the host's init and would run on, unsupervised, with nobody reading their logs. The
//! kernel offers nothing that ties them to the supervisor: `PR_SET_PDEATHSIG` follows the
//! *current* parent, which for a container init is first libcontainer's short-lived
//! intermediate process, and a pod-wide pid namespace would make its init, not the
//! supervisor, the containers' reaper. So the supervisor forks this small child before any
//! container starts. It sleeps until `PR_SET_PDEATHSIG` tells it that the supervisor is gone,
//! then SIGKILLs every process of the pod's user namespace (containers, `exec` sessions,
//! probes, the shared pid namespace's `/pause`; killing a pid namespace's init ends all of
//! that namespace) until none is left, and exits. The network helper needs no help: it
//! already ends with the supervisor (slirp4netns' exit fd closes, pasta has its own
//! `PR_SET_PDEATHSIG`), and the pod's mounts live in mount namespaces that vanish with their
//! last process. When the supervisor ends normally it stops the watchdog first
//! ([`Watchdog::disarm`]).
//!
//! Every pod has a user namespace of its own, so "in the pod's user namespace" is exactly
//! "of this pod". A process is signalled through a pidfd opened *before* its namespace is
//! checked: a pid reused by an unrelated process in between fails the check, and one reused
//! after it makes the signal fail (the pidfd still names the old process).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use crate::PodError;

/// The signal the kernel sends the watchdog when the supervisor dies.
const PARENT_DIED: Signal = Signal::SIGUSR2;
/// Sweeps before the watchdog gives up (processes still forking while being killed).
const MAX_SWEEPS: usize = 100;

/// The running watchdog, a child of the supervisor.
#[derive(Debug)]
pub(crate) struct Watchdog {
    pid: Pid,
}

impl Watchdog {
    /// Forks the watchdog, which shows in `ps` as `title` (`podrun watchdog <ns>/<name>`,
    /// see [`podrun_pod_model::process::title`]). The caller must be single-threaded and
    /// already in the pod's user namespace. `None` when the pod has no user namespace of its
    /// own (podrun run by root): "every process of this user namespace" would then be every
    /// process of the host.
    pub fn start(title: &[String]) -> Result<Option<Watchdog>, PodError> {
        if in_initial_user_namespace() {
            return Ok(None);
        }
        let supervisor = nix::unistd::getpid();
        // SAFETY: the supervisor is single-threaded; the child only makes system calls and
        // reads /proc before it exits.
        match unsafe { fork() }.map_err(|e| PodError::msg(format!("cannot fork: {e}")))? {
            ForkResult::Child => {
                podrun_pod_model::process::set_title(title);
                watch(supervisor)
            }
            ForkResult::Parent { child } => Ok(Some(Watchdog { pid: child })),
        }
    }

    /// Its pid (a child of the supervisor: its exit is reaped with the containers').
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Ends the watchdog (the supervisor is about to exit on its own terms) and reaps it.
    pub fn disarm(self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

/// The initial user namespace maps all 2^32 ids.
fn in_initial_user_namespace() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace()
        .nth(2)
        .is_none_or(|count| count == "4294967295")
}

/// The watchdog's life: wait for the supervisor's death, then end the pod.
fn watch(supervisor: Pid) -> ! {
    // Block first: a death between the prctl and the wait must stay pending, not kill us.
    let mut waited = SigSet::empty();
    waited.add(PARENT_DIED);
    let _ = waited.thread_block();
    // SAFETY: plain system calls in the freshly forked, single-threaded child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DIED as libc::c_int, 0, 0, 0);
        let _ = libc::prctl(libc::PR_SET_NAME, c"podrun-watchdog".as_ptr());
        // Hold none of the supervisor's descriptors (pipes whose end-of-file others wait
        // for, container output) except stderr, the supervisor's log.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
        }
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    // The supervisor's handlers write into its self-pipe, closed here; and a Ctrl-C or a
    // SIGTERM meant for the supervisor's process group must not end the watchdog.
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: ignoring a signal.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn) };
    }
    // SAFETY: the default action for SIGCHLD is to ignore it.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl) };
    let droppable = podrun_footprint::Droppable::find();
    // The supervisor may have died before the prctl.
    let supervisor_alive = nix::unistd::getppid() == supervisor;
    // The watchdog's pages of the binary go; then it sleeps in sigwait, nothing of the
    // binary in between but this function (podrun_footprint).
    droppable.drop_now();
    if supervisor_alive {
        let mut signal: libc::c_int = 0;
        // SAFETY: a valid signal set and out-pointer.
        while unsafe { libc::sigwait(waited.as_ref(), &mut signal) } != 0
            || signal != PARENT_DIED as libc::c_int
        {}
    }
    let killed = end_user_namespace(Path::new("/proc"));
    if killed > 0 {
        eprintln!(
            "podrun-watchdog: the supervisor (pid {supervisor}) died; killed {killed} process(es) of its pod"
        );
    }
    // SAFETY: leave without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(0) }
}

/// SIGKILLs every other process in this process's user namespace until none is left;
/// returns how many were killed.
fn end_user_namespace(proc: &Path) -> usize {
    let Ok(own) = std::fs::read_link(proc.join("self/ns/user")) else {
        return 0;
    };
    let me = std::process::id();
    let mut killed = 0;
    for _ in 0..MAX_SWEEPS {
        let found = sweep(proc, &own, me);
        if found == 0 {
            break;
        }
        killed += found;
        std::thread::sleep(Duration::from_millis(10));
    }
    killed
}

/// One pass over `proc`: SIGKILL each process (but `me`) whose user namespace is `own`.
fn sweep(proc: &Path, own: &Path, me: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return 0;
    };
    let mut found = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(pidfd) = pidfd_open(pid) else {
            continue;
        };
        let same = std::fs::read_link(entry.path().join("ns/user")).is_ok_and(|ns| ns == own);
        if same && pidfd_kill(&pidfd) {
            found += 1;
        }
    }
    found
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a descriptor just returned to us and owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// SIGKILL through a pidfd; false when the process is gone already.
fn pidfd_kill(pidfd: &OwnedFd) -> bool {
    // SAFETY: a valid pidfd, no siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    ret == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc with one process in our user namespace and one in another.
    #[test]
    fn sweep_kills_only_processes_of_the_namespace() {
        let proc = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let make = |pid: u32, ns: &str| {
            let dir = proc.path().join(pid.to_string()).join("ns");
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(ns, dir.join("user")).unwrap();
        };
        make(child.id(), "user:[1]");
        make(other.id(), "user:[2]");
        std::fs::create_dir_all(proc.path().join("self/ns")).unwrap();
        std::os::unix::fs::symlink("user:[1]", proc.path().join("self/ns/user")).unwrap();

        let own = std::fs::read_link(proc.path().join("self/ns/user")).unwrap();
        assert_eq!(sweep(proc.path(), &own, std::process::id()), 1);
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        assert!(
            other.try_wait().unwrap().is_none(),
            "the other process runs on"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
