//! The slirp4netns helper of one pod.
//!
//! slirp4netns must run in two places at once: its main process in the network namespace
//! where published ports are bound and outgoing connections are made (the host's), and, for a
//! moment, in the pod's namespaces to open the TUN device there (it joins them by the pod's
//! PID). Rootless, nothing in the pod's user namespace can re-enter the host's network
//! namespace later (`setns` needs CAP_SYS_ADMIN over the user namespace that owns it, the
//! initial one), and started from the pod's namespace it would bind published ports inside
//! the pod. So the supervisor starts it in two steps:
//!
//! 1. [`PendingSlirp::prepare`], while the supervisor is still in the host's network namespace
//!    (already in the pod's user namespace): checks the binary and /dev/net/tun, then forks a
//!    launcher that waits on a pipe.
//! 2. [`PendingSlirp::start`], once the supervisor has created the pod's network namespace:
//!    releases the launcher, which execs slirp4netns with the supervisor's PID; waits for the
//!    `--ready-fd` byte, then publishes the ports over the API socket.
//!
//! The supervisor keeps the write end of slirp4netns' `--exit-fd` pipe (close-on-exec, so no
//! container inherits it). However the supervisor ends, even by SIGKILL, the kernel closes it
//! and slirp4netns exits; [`Slirp4netns`]'s `Drop` also closes it and reaps the helper.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::launch::Launch;
use crate::{NetworkError, PortMapping};

/// The helper's name, as errors show it.
const HELPER: &str = "slirp4netns";
/// The API socket, in the pod's runtime directory (slirp4netns runs there).
pub const API_SOCKET: &str = "slirp4netns.sock";
/// slirp4netns' stdout and stderr, in the pod's runtime directory.
pub const LOG_FILE: &str = "slirp4netns.log";
/// 4–7× the throughput of slirp4netns' default of 1500 (measured here).
const MTU: u32 = 65520;
/// Ready in about 7 ms here; this only bounds a helper that hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// glibc's malloc settings for slirp4netns: a fixed mmap threshold (the default one rises
/// to whatever large block was freed last) and a small trim threshold, so that the socket
/// and packet buffers libslirp grows while carrying bulk traffic go back to the system
/// afterwards. Measured here (`scripts/bench/network.sh`, 3 × 5 s of iperf3 each way): the
/// helper's PSS after the traffic fell from 6.1 MB to 3.6 MB, throughput unchanged.
const MALLOC_TUNABLES: &str =
    "glibc.malloc.trim_threshold=65536:glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=1";

/// What the helper is started with.
#[derive(Debug, Clone)]
pub struct SlirpConfig {
    /// The pod's runtime directory: the helper's working directory, socket and log.
    pub runtime_dir: PathBuf,
    /// Let the pod reach the host's 127.0.0.1 at 10.0.2.2 (no `--disable-host-loopback`).
    pub allow_host_loopback: bool,
    pub ports: Vec<PortMapping>,
}

/// A launcher forked by [`PendingSlirp::prepare`], waiting to exec slirp4netns.
pub struct PendingSlirp {
    launcher: Pid,
    /// Closing it unreleased makes the launcher exit without starting anything.
    go: Option<OwnedFd>,
    ready: OwnedFd,
    /// The write end of the helper's `--exit-fd` pipe, handed to [`Slirp4netns`].
    exit: Option<OwnedFd>,
    config: SlirpConfig,
}

/// A running slirp4netns, ended when dropped.
#[derive(Debug)]
pub struct Slirp4netns {
    pid: Pid,
    exit: Option<OwnedFd>,
}

/// The slirp4netns binary from PATH.
pub fn find_binary() -> Result<PathBuf, NetworkError> {
    find_binary_in(&std::env::var_os("PATH").unwrap_or_default())
}

/// The slirp4netns binary in the directories of `path` (a PATH value).
pub fn find_binary_in(path: &std::ffi::OsStr) -> Result<PathBuf, NetworkError> {
    crate::launch::find_in_path(HELPER, path).ok_or(NetworkError::HelperMissing {
        helper: HELPER,
        package: "slirp4netns",
    })
}

/// The command line: podman's flags, plus readiness, exit and API plumbing.
fn arguments(config: &SlirpConfig, ready_fd: RawFd, exit_fd: RawFd, pod_pid: u32) -> Vec<String> {
    let mut args = vec![
        "--configure".to_string(),
        format!("--mtu={MTU}"),
        "--enable-sandbox".into(),
        "--enable-seccomp".into(),
        format!("--ready-fd={ready_fd}"),
        format!("--exit-fd={exit_fd}"),
        // Relative: the helper runs in the runtime directory, and a socket address holds at
        // most 107 bytes, less than a runtime directory's path may take.
        format!("--api-socket={API_SOCKET}"),
    ];
    if !config.allow_host_loopback {
        args.insert(2, "--disable-host-loopback".into());
    }
    // By PID, so that it joins the pod's user namespace before its network namespace.
    args.push(pod_pid.to_string());
    args.push("tap0".into());
    args
}

impl PendingSlirp {
    /// Checks that slirp4netns can run, then forks its launcher. Call it from the supervisor:
    /// single-threaded, in the pod's user namespace, still in the network namespace whose
    /// ports are to be published (the host's), and before the pod's network namespace exists.
    /// `pod_pid` is the process that will hold that namespace (the supervisor itself).
    pub fn prepare(config: SlirpConfig, pod_pid: u32) -> Result<PendingSlirp, NetworkError> {
        let binary = find_binary()?;
        crate::tun::check_tun_device()?;
        let threads = crate::launch::thread_count();
        if threads != 1 {
            return Err(NetworkError::Io {
                what: format!("cannot start {HELPER}: the process has {threads} threads"),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let log_path = config.runtime_dir.join(LOG_FILE);
        let log = std::fs::File::create(&log_path).map_err(NetworkError::io(format!(
            "cannot create {}",
            log_path.display()
        )))?;
        let pipe = || {
            pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| NetworkError::io(format!("cannot start {HELPER}"))(e.into()))
        };
        let (go_read, go_write) = pipe()?;
        let (ready_read, ready_write) = pipe()?;
        let (exit_read, exit_write) = pipe()?;
        let mut argv = vec![binary.as_os_str().as_bytes().to_vec()];
        argv.extend(
            arguments(
                &config,
                ready_write.as_raw_fd(),
                exit_read.as_raw_fd(),
                pod_pid,
            )
            .into_iter()
            .map(String::into_bytes),
        );
        // Everything the child needs is allocated before the fork.
        let launch = Launch {
            argv: argv
                .into_iter()
                .map(|a| CString::new(a).expect("no NUL in arguments"))
                .collect(),
            cwd: Launch::cwd_of(&config.runtime_dir)?,
            go: go_read.as_raw_fd(),
            log: log.as_raw_fd(),
            keep: vec![ready_write.as_raw_fd(), exit_read.as_raw_fd()],
            die_with_parent: None,
            namespace: None,
            env: Some(crate::launch::environment_with(
                "GLIBC_TUNABLES",
                MALLOC_TUNABLES,
            )),
        };
        // The process is single-threaded (checked above).
        let launcher = launch.fork(HELPER)?;
        Ok(PendingSlirp {
            launcher,
            go: Some(go_write),
            ready: ready_read,
            exit: Some(exit_write),
            config,
        })
    }

    /// Releases the launcher (slirp4netns joins the pod's namespaces now), waits until the
    /// helper has configured the pod's interface, and publishes the ports. On any failure the
    /// helper is killed and reaped, and the error says why it failed.
    pub fn start(mut self) -> Result<Slirp4netns, NetworkError> {
        let go = self.go.take().expect("started once");
        let released = nix::unistd::write(&go, b"g");
        drop(go);
        let running = Slirp4netns {
            pid: self.launcher,
            exit: self.exit.take(),
        };
        if let Err(e) = released {
            return Err(self.died(running, Some(e.to_string())));
        }
        match wait_ready(&self.ready, READY_TIMEOUT) {
            Ok(true) => {}
            Ok(false) => return Err(self.died(running, None)),
            Err(Timeout) => {
                drop(running);
                return Err(NetworkError::HelperTimeout {
                    helper: HELPER,
                    seconds: READY_TIMEOUT.as_secs(),
                    log_path: self.log_path(),
                });
            }
        }
        for mapping in &self.config.ports {
            crate::slirp_api::add_hostfwd(&self.config.runtime_dir, API_SOCKET, mapping)?;
            tracing::info!(%mapping, "published");
        }
        Ok(running)
    }

    fn log_path(&self) -> String {
        self.config.runtime_dir.join(LOG_FILE).display().to_string()
    }

    /// The error for a helper that ended (or could not be released) before it was ready.
    fn died(&self, helper: Slirp4netns, why: Option<String>) -> NetworkError {
        let status = helper.reap_now();
        let log =
            std::fs::read_to_string(self.config.runtime_dir.join(LOG_FILE)).unwrap_or_default();
        if crate::tun::log_says_tun_denied(&log) {
            return NetworkError::TunUnusable {
                path: crate::tun::TUN_DEVICE.into(),
                source: std::io::Error::from_raw_os_error(libc::EACCES),
                detail: " (slirp4netns could not open it)".into(),
            };
        }
        NetworkError::HelperDied {
            helper: HELPER,
            status: why.unwrap_or(status),
            log: crate::launch::log_tail(&log, 8),
            log_path: self.log_path(),
        }
    }
}

impl Drop for PendingSlirp {
    /// Never released: the launcher sees end-of-file on its pipe and exits; reap it.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            let _ = waitpid(self.launcher, None);
        }
    }
}

struct Timeout;

/// Waits for slirp4netns' ready byte: `Ok(true)` when it came, `Ok(false)` when the pipe
/// closed first (the helper ended).
fn wait_ready(ready: &OwnedFd, timeout: Duration) -> Result<bool, Timeout> {
    let deadline = Instant::now() + timeout;
    let mut file = std::fs::File::from(ready.try_clone().map_err(|_| Timeout)?);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Timeout);
        }
        let mut fds = [libc::pollfd {
            fd: ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on one valid descriptor.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, left.as_millis().min(1000) as i32) };
        if n <= 0 {
            continue; // timeout slice, or EINTR (the supervisor's SIGCHLD handler)
        }
        let mut byte = [0u8; 1];
        match file.read(&mut byte) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(byte[0] == b'1'),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(false),
        }
    }
}

impl Slirp4netns {
    /// The helper's pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Kills and reaps the helper now; returns how it ended, in words.
    fn reap_now(mut self) -> String {
        self.exit = None;
        let status = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let _ = kill(self.pid, Signal::SIGKILL);
                waitpid(self.pid, None)
            }
            other => other,
        };
        std::mem::forget(self);
        match status {
            Ok(WaitStatus::Exited(_, code)) => format!("exit code {code}"),
            Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
            _ => "it is gone".into(),
        }
    }
}

impl Drop for Slirp4netns {
    /// Closes the exit fd and ends slirp4netns at once with SIGKILL (it keeps no state worth
    /// a graceful exit, and noticing the closed exit fd takes it ~25 ms, a third of `podrun
    /// down`), then reaps it. A helper the supervisor reaped already (its pid is then no
    /// longer our child, and might be reused) is left alone: `waitpid` reports ECHILD, and
    /// its pid is never signalled. An unreaped child's pid cannot be reused, so the kill is
    /// safe.
    fn drop(&mut self) {
        self.exit = None;
        if let Ok(WaitStatus::StillAlive) = waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_host_loopback: bool) -> SlirpConfig {
        SlirpConfig {
            runtime_dir: "/run/podrun/pods/default_web".into(),
            allow_host_loopback,
            ports: Vec::new(),
        }
    }

    #[test]
    fn podmans_flags_with_readiness_and_exit_fds() {
        let args = arguments(&config(false), 7, 9, 4242);
        assert_eq!(
            args,
            [
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                "--ready-fd=7",
                "--exit-fd=9",
                "--api-socket=slirp4netns.sock",
                "4242",
                "tap0"
            ]
        );
        let args = arguments(&config(true), 7, 9, 4242);
        assert!(!args.iter().any(|a| a == "--disable-host-loopback"));
    }

    #[test]
    fn a_missing_binary_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        // Not executable: skipped like a missing file.
        std::fs::write(dir.path().join("slirp4netns"), "").unwrap();
        let err = find_binary_in(dir.path().as_os_str())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("slirp4netns is not installed")
                && err.contains("apt-get install slirp4netns"),
            "{err}"
        );
    }
}
