//! The pod sandbox: the supervisor's own namespaces, and the optional shared pid namespace.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use crate::{ensure_single_threaded, RuntimeError};

/// In the current (single-threaded, already user-namespaced) process: new network, IPC and UTS
/// namespaces, `hostname`, the loopback interface up, and `PR_SET_CHILD_SUBREAPER`, so that
/// container inits (whose parent, the runner, exits) are reparented to this process.
///
/// The process must already be root in the pod's user namespace
/// (`podrun_userns::enter_user_namespace`), which then owns the new namespaces; this is what
/// lets containers join them later.
pub fn become_pod_sandbox(hostname: &str) -> Result<(), RuntimeError> {
    enter_sandbox(hostname, true)
}

/// Like [`become_pod_sandbox`], but the pod keeps the network namespace the process is in
/// (Kubernetes' `hostNetwork: true`): only the IPC and UTS namespaces are new, and `lo` is
/// left as it is. Its containers must then set [`crate::ContainerConfig::host_network`].
pub fn become_pod_sandbox_in_host_network(hostname: &str) -> Result<(), RuntimeError> {
    enter_sandbox(hostname, false)
}

fn enter_sandbox(hostname: &str, own_network: bool) -> Result<(), RuntimeError> {
    ensure_single_threaded("become_pod_sandbox")?;
    let mut flags = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if own_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags)
        .map_err(|e| RuntimeError::sys("cannot create the pod's net/ipc/uts namespaces", e))?;
    nix::unistd::sethostname(hostname)
        .map_err(|e| RuntimeError::sys(format!("cannot set the hostname to {hostname:?}"), e))?;
    if own_network {
        loopback_up()?;
    }
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| RuntimeError::sys("cannot become a child subreaper", e))?;
    Ok(())
}

/// Brings `lo` up in the current network namespace.
///
/// Done with the classic `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls on a datagram socket rather than
/// netlink: one flag on one interface needs no netlink crate. A new network namespace's `lo`
/// already carries 127.0.0.1/8 and ::1; it only has to be up.
fn loopback_up() -> Result<(), RuntimeError> {
    /// `struct ifreq` with the `ifr_flags` member of its union (40 bytes on 64-bit Linux).
    #[repr(C)]
    struct IfreqFlags {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 24],
    }

    // SAFETY: plain syscalls on a socket we own and a properly sized, initialised ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(RuntimeError::sys(
                "cannot open a socket to configure lo",
                nix::Error::last(),
            ));
        }
        let socket = <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let mut request = IfreqFlags {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 24],
        };
        request.name[..2].copy_from_slice(b"lo");
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(RuntimeError::sys(
                "cannot read the flags of lo",
                nix::Error::last(),
            ));
        }
        request.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(RuntimeError::sys("cannot bring lo up", nix::Error::last()));
        }
    }
    Ok(())
}

/// A pid namespace shared by the containers of a pod (`shareProcessNamespace: true`). Its pid 1
/// is a tiny init that reaps orphans and otherwise waits; it is a child of the supervisor.
///
/// Give [`PodPidNamespace::path`] as `ContainerConfig::pid_namespace`. Container processes in
/// it are not pid 1, so they receive SIGTERM even without a handler (unlike a container with a
/// pid namespace of its own). When the pod ends, call [`PodPidNamespace::shutdown`]: killing
/// the namespace's init kills every process left in it.
#[derive(Debug)]
pub struct PodPidNamespace {
    pid: i32,
}

impl PodPidNamespace {
    /// The host pid of the namespace's init (a child of the supervisor).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/PID/ns/pid` of the namespace's init.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/pid", self.pid))
    }

    /// SIGKILLs the init (and with it every process in the namespace) and reaps it.
    pub fn shutdown(self) -> Result<(), RuntimeError> {
        let pid = Pid::from_raw(self.pid);
        match kill(pid, Signal::SIGKILL) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => return Err(RuntimeError::sys("cannot kill the pod's pid namespace", e)),
        }
        match waitpid(pid, None) {
            Ok(_) | Err(nix::Error::ECHILD) => Ok(()),
            Err(e) => Err(RuntimeError::sys(
                "cannot reap the pod's pid namespace init",
                e,
            )),
        }
    }
}

/// Creates the pod's shared pid namespace. The caller must be single-threaded and already a
/// child subreaper ([`become_pod_sandbox`]): the init is started by a short-lived intermediate
/// process and is reparented to the caller.
pub fn create_pod_pid_namespace() -> Result<PodPidNamespace, RuntimeError> {
    ensure_single_threaded("create_pod_pid_namespace")?;
    if !nix::sys::prctl::get_child_subreaper().unwrap_or(false) {
        return Err(RuntimeError::InvalidConfig(
            "create_pod_pid_namespace: the caller must be a child subreaper (call become_pod_sandbox first)"
                .into(),
        ));
    }
    let (read_end, write_end) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("cannot create a pipe", e))?;
    // SAFETY: the process is single-threaded (checked above).
    match unsafe { fork() }.map_err(|e| RuntimeError::sys("cannot fork", e))? {
        ForkResult::Child => {
            drop(read_end);
            let code = pid_namespace_intermediate(write_end);
            // SAFETY: leave without running the parent's destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut answer = String::new();
            let read = std::fs::File::from(read_end).read_to_string(&mut answer);
            let _ = waitpid(child, None);
            read.map_err(|e| RuntimeError::io("cannot read from the pid namespace helper", e))?;
            match answer.strip_prefix("ok ") {
                Some(pid) => Ok(PodPidNamespace {
                    pid: pid.trim().parse().map_err(|_| {
                        RuntimeError::InvalidConfig(format!("bad answer from helper: {answer}"))
                    })?,
                }),
                None => Err(RuntimeError::sys(
                    format!("cannot create the pod's pid namespace ({})", answer.trim()),
                    nix::Error::EIO,
                )),
            }
        }
    }
}

/// In the intermediate child: unshare the pid namespace, fork its init, report its pid.
fn pid_namespace_intermediate(answer: OwnedFd) -> i32 {
    let mut answer = std::fs::File::from(answer);
    let report = |answer: &mut std::fs::File, text: String| {
        use std::io::Write;
        let _ = answer.write_all(text.as_bytes());
    };
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        report(&mut answer, format!("unshare(CLONE_NEWPID): {e}"));
        return 1;
    }
    // SAFETY: this child is single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(answer);
            pid_namespace_init()
        }
        Ok(ForkResult::Parent { child }) => {
            report(&mut answer, format!("ok {child}"));
            0
        }
        Err(e) => {
            report(&mut answer, format!("fork: {e}"));
            1
        }
    }
}

/// pid 1 of the shared pid namespace: reap whatever is reparented to it, forever. Ends only by
/// SIGKILL (from the supervisor) or by SIGTERM/SIGINT/SIGHUP, for which it installs handlers
/// (a pid namespace's init receives only the signals it handles).
/// Makes `ps` in the containers show the pod's pid 1 as `/pause`, like Kubernetes' pause
/// container, instead of the supervisor's command line (which names host paths): the
/// setproctitle trick. The argument strings are overwritten in place with "/pause" and a NUL,
/// and the last byte of the argument area is made non-NUL, which tells the kernel to read
/// the command line up to the first NUL.
fn show_as_pause() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) start at field 3; arg_start and
    // arg_end are fields 48 and 49.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (Some(Ok(start)), Some(Ok(end))) = (
        fields.get(45).map(|f| f.parse::<usize>()),
        fields.get(46).map(|f| f.parse::<usize>()),
    ) else {
        return;
    };
    let title = b"/pause\0";
    if end <= start || end - start < title.len() + 1 {
        return;
    }
    // SAFETY: [arg_start, arg_end) is this process's own argument area on its stack, which
    // nothing reads any more (the arguments were parsed long ago, before the fork).
    unsafe {
        let area = std::slice::from_raw_parts_mut(start as *mut u8, end - start);
        area.fill(0);
        area[..title.len()].copy_from_slice(title);
        area[area.len() - 1] = b' ';
    }
}

fn pid_namespace_init() -> ! {
    // SAFETY: raw libc calls in a freshly forked single-threaded child.
    unsafe {
        let _ = libc::prctl(libc::PR_SET_NAME, c"pause".as_ptr());
        // Hold no descriptor of the supervisor's: stdio to /dev/null, everything else closed.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let _ = libc::chdir(c"/".as_ptr());
    }
    show_as_pause();
    extern "C" fn noop(_: libc::c_int) {}
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(signal);
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(noop),
            nix::sys::signal::SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: installing a handler that does nothing.
        let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
    }
    let _ = set.thread_block();
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(status) = waitpid(
                    Pid::from_raw(-1),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                ) {
                    if status == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => unsafe { libc::_exit(0) },
            Err(_) => {}
        }
    }
}
