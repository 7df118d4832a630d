//! The pasta (passt) helper of one pod.
//!
//! Like slirp4netns, pasta's main process lives in the network namespace where ports are
//! published and connections leave (the host's), and attaches to the pod's namespaces by the
//! pod's PID. Unlike slirp4netns, it must be started from *outside* the pod's user namespace:
//! pasta drops every capability but a few before it opens `/proc/PID/ns/user`, and the kernel
//! then lets it read the namespaces of a process with more capabilities than it has only
//! when its user namespace is an ancestor owned by the same user. Started by the user who
//! owns the pod's user namespace (as podman starts it), it joins that namespace with full
//! capabilities there and configures the tap device.
//!
//! So the supervisor forks pasta's launcher first thing, before it enters the pod's user
//! namespace ([`PendingPasta::prepare`]), and releases it once the pod's network namespace
//! exists ([`PendingPasta::start`]). As host root (no pod user namespace) the same check stops
//! pasta from opening the supervisor's network namespace, so the launcher opens it and hands
//! it over as a descriptor.
//!
//! **Lifetime.** pasta normally daemonizes (its parent exits once the namespace is
//! configured) and then lives on after its starter dies, even SIGKILLed, holding the pod's
//! network namespace: it only quits by itself when a filesystem-bound `--netns` path is
//! deleted. podrun runs it in the foreground (`-f`) instead, as the supervisor's own child,
//! with `PR_SET_PDEATHSIG` = SIGKILL set by the launcher: the flag survives the `execve` and
//! pasta's own setup (its uid does not change; joining a user namespace owned by its own
//! user keeps it), so the kernel kills pasta the moment the supervisor dies, however it dies.
//! Readiness: in the foreground pasta writes its pid file (`-P`) right after it has
//! configured the namespace (where a daemon's parent would exit), so the supervisor waits for
//! the pid file. When the pod stops, the supervisor sends SIGTERM to the pid the file names
//! (its child), and SIGKILL after 2 s.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::launch::Launch;
use crate::{NetworkError, PortMapping, Protocol};

const HELPER: &str = "pasta";
/// pasta's log (`-l`) and its stdout/stderr, in the pod's runtime directory.
pub const LOG_FILE: &str = "pasta.log";
/// pasta's pid file (`-P`), in the pod's runtime directory.
pub const PID_FILE: &str = "pasta.pid";
/// The pod's address, gateway and DNS forwarder: slirp4netns' own, so that both backends
/// look the same from inside (and the host's addresses are never copied into the pod).
pub const POD_ADDRESS: &str = "10.0.2.100";
pub const POD_PREFIX: u8 = 24;
pub const GATEWAY: &str = "10.0.2.2";
pub const DNS_FORWARDER: &str = "10.0.2.3";
/// The pod's interface, as with slirp4netns.
pub const INTERFACE: &str = "tap0";
/// Ready in about 40 ms here; this only bounds a helper that hangs.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long pasta may take to end after SIGTERM before it is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the helper is started with.
#[derive(Debug, Clone)]
pub struct PastaConfig {
    /// The pod's runtime directory: the helper's working directory, log and pid file.
    pub runtime_dir: PathBuf,
    /// Let the pod reach the host's 127.0.0.1 at the gateway address (no `--no-map-gw`).
    pub allow_host_loopback: bool,
    pub ports: Vec<PortMapping>,
}

/// The pasta binary from PATH.
pub fn find_binary() -> Result<PathBuf, NetworkError> {
    find_binary_in(&std::env::var_os("PATH").unwrap_or_default())
}

/// The pasta binary in the directories of `path` (a PATH value).
pub fn find_binary_in(path: &std::ffi::OsStr) -> Result<PathBuf, NetworkError> {
    crate::launch::find_in_path(HELPER, path).ok_or(NetworkError::HelperMissing {
        helper: HELPER,
        package: "passt",
    })
}

/// When the installed pasta is a build known to stall (Debian 12's passt 0.0~git20230309,
/// whose `pasta --version` says only "unknown version"): the line it printed.
///
/// Measured on Debian 12 (kernel 6.18): its tap path falls to 0.02–0.3 Gbit/s whenever the pod
/// is the TCP sender (uploads to the host, a server answering a client that came through a
/// published port on a non-loopback address).
pub fn known_to_stall(binary: &Path) -> Option<String> {
    let first = crate::helper_version(binary).unwrap_or_default();
    version_stalls(&first).then_some(first)
}

fn version_stalls(first_line: &str) -> bool {
    first_line.contains("unknown version")
}

/// One `-t`/`-u` value per published port: `[ADDR/]HOSTPORT:CONTAINERPORT`, or `none`.
fn port_specs(ports: &[PortMapping], protocol: Protocol) -> Vec<String> {
    let specs: Vec<String> = ports
        .iter()
        .filter(|p| p.protocol == protocol)
        .map(|p| {
            let address = if p.host_ip.is_unspecified() {
                String::new()
            } else {
                format!("{}/", p.host_ip)
            };
            format!("{address}{}:{}", p.host_port, p.container_port)
        })
        .collect();
    if specs.is_empty() {
        vec!["none".into()]
    } else {
        specs
    }
}

/// The command line (after the binary).
fn arguments(config: &PastaConfig, pod_pid: u32, host_root: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--config-net",
        // In the foreground: the supervisor's child, killed with it (see the module's doc).
        "--foreground",
        "--quiet",
        "--log-file",
        LOG_FILE,
        "--pid",
        PID_FILE,
        // IPv4 only, as with slirp4netns; and slirp4netns' addresses, not the host's.
        "--ipv4-only",
        "--address",
        POD_ADDRESS,
        "--netmask",
        &POD_PREFIX.to_string(),
        "--gateway",
        GATEWAY,
        "--ns-ifname",
        INTERFACE,
        // Queries to 10.0.2.3:53 go to the host's first resolver (even a loopback one).
        "--dns-forward",
        DNS_FORWARDER,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    if !config.allow_host_loopback {
        args.push("--no-map-gw".into());
    }
    // Every one of them, or pasta forwards all bound ports (its default, `auto`).
    for (option, specs) in [
        ("-t", port_specs(&config.ports, Protocol::Tcp)),
        ("-u", port_specs(&config.ports, Protocol::Udp)),
        ("-T", vec!["none".into()]),
        ("-U", vec!["none".into()]),
    ] {
        for spec in specs {
            args.push(option.into());
            args.push(spec);
        }
    }
    if host_root {
        // Host root has no pod user namespace to join. pasta drops CAP_SYS_PTRACE before it
        // opens a namespace, so it may not open /proc/PID/ns/net of a process with all
        // capabilities: the launcher opens it and hands it over as a descriptor. `--runas`:
        // as host root pasta would switch to nobody, who may not configure the namespace.
        args.extend(
            [
                "--runas",
                "0:0",
                "--netns-only",
                "--no-netns-quit",
                "--netns",
                &format!("/proc/self/fd/{}", crate::launch::NAMESPACE_FD),
            ]
            .map(String::from),
        );
    } else {
        // By PID: pasta joins the pod's user namespace, then its network namespace.
        args.push(pod_pid.to_string());
    }
    args
}

/// A launcher forked by [`PendingPasta::prepare`], waiting to exec pasta.
pub struct PendingPasta {
    launcher: Pid,
    /// Closing it unreleased makes the launcher exit without starting anything.
    go: Option<OwnedFd>,
    config: PastaConfig,
}

/// A running pasta, the supervisor's child; ended when dropped.
#[derive(Debug)]
pub struct Pasta {
    pid: Pid,
    pid_file: PathBuf,
}

impl PendingPasta {
    /// Checks that pasta is installed, then forks its launcher. Call it from the supervisor:
    /// single-threaded, still in the host's user and network namespaces (before it creates the
    /// pod's user namespace). `pod_pid` is the process that will hold the pod's namespaces
    /// (the supervisor itself). The TUN device is checked later, from the pod's user
    /// namespace ([`crate::tun::check_tun_device`]).
    pub fn prepare(config: PastaConfig, pod_pid: u32) -> Result<PendingPasta, NetworkError> {
        let binary = find_binary()?;
        let threads = crate::launch::thread_count();
        if threads != 1 {
            return Err(NetworkError::Io {
                what: format!("cannot start {HELPER}: the process has {threads} threads"),
                source: std::io::Error::from_raw_os_error(libc::EINVAL),
            });
        }
        let log_path = config.runtime_dir.join(LOG_FILE);
        // Appending: pasta opens the same file for `-l` and truncates it then; its stderr
        // (this descriptor) must not write at a stale offset after that.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .and_then(|file| file.set_len(0).map(|()| file))
            .map_err(NetworkError::io(format!(
                "cannot create {}",
                log_path.display()
            )))?;
        let _ = std::fs::remove_file(config.runtime_dir.join(PID_FILE));
        let (go_read, go_write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| NetworkError::io(format!("cannot start {HELPER}"))(e.into()))?;
        let host_root = nix::unistd::geteuid().is_root();
        let mut argv = vec![CString::new(binary.as_os_str().as_bytes()).expect("no NUL in a path")];
        argv.extend(
            arguments(&config, pod_pid, host_root)
                .into_iter()
                .map(|a| CString::new(a).expect("no NUL in arguments")),
        );
        let launch = Launch {
            argv,
            cwd: Launch::cwd_of(&config.runtime_dir)?,
            go: go_read.as_raw_fd(),
            log: log.as_raw_fd(),
            keep: Vec::new(),
            die_with_parent: Some(std::process::id() as libc::pid_t),
            namespace: host_root.then(|| {
                CString::new(format!("/proc/{pod_pid}/ns/net")).expect("no NUL in a path")
            }),
            env: None,
        };
        // The process is single-threaded (checked above).
        let launcher = launch.fork(HELPER)?;
        Ok(PendingPasta {
            launcher,
            go: Some(go_write),
            config,
        })
    }

    /// Releases the launcher (pasta joins the pod's namespaces now) and waits until pasta has
    /// configured the pod's interface and bound the published ports (its pid file is written
    /// then). On any failure pasta is killed and reaped, and the error says why it failed.
    pub fn start(mut self) -> Result<Pasta, NetworkError> {
        let go = self.go.take().expect("started once");
        let released = nix::unistd::write(&go, b"g");
        drop(go);
        let running = Pasta {
            pid: self.launcher,
            pid_file: self.config.runtime_dir.join(PID_FILE),
        };
        if let Err(e) = released {
            return Err(self.died(running, Some(e.to_string())));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pause = Duration::from_micros(500);
        loop {
            match waitpid(running.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                status => {
                    let status = describe(status);
                    std::mem::forget(running);
                    return Err(self.died_with(status));
                }
            }
            if let Some(pid) = running.pid_from_file() {
                if pid != running.pid.as_raw() {
                    tracing::warn!(
                        pid,
                        child = running.pid.as_raw(),
                        "pasta's pid file names another process"
                    );
                }
                return Ok(running);
            }
            if Instant::now() >= deadline {
                drop(running);
                return Err(NetworkError::HelperTimeout {
                    helper: HELPER,
                    seconds: READY_TIMEOUT.as_secs(),
                    log_path: self.log_path(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn log_path(&self) -> String {
        self.config.runtime_dir.join(LOG_FILE).display().to_string()
    }

    /// The error for a helper that could not be released: kill and reap it first.
    fn died(&self, helper: Pasta, why: Option<String>) -> NetworkError {
        let status = helper.reap_now();
        self.died_with(why.unwrap_or(status))
    }

    /// The error for a helper that ended before it was ready, from its log.
    fn died_with(&self, status: String) -> NetworkError {
        let log =
            std::fs::read_to_string(self.config.runtime_dir.join(LOG_FILE)).unwrap_or_default();
        if log_says_tun_failed(&log) {
            return NetworkError::TunUnusable {
                path: crate::tun::TUN_DEVICE.into(),
                source: std::io::Error::from_raw_os_error(libc::EACCES),
                detail: " (pasta could not open it in the pod's namespace)".into(),
            };
        }
        NetworkError::HelperDied {
            helper: HELPER,
            status,
            log: crate::launch::log_tail(&log, 8),
            log_path: self.log_path(),
        }
    }
}

impl Drop for PendingPasta {
    /// Never released: the launcher sees end-of-file on its pipe and exits; reap it.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            let _ = waitpid(self.launcher, None);
        }
    }
}

/// pasta says only this when it cannot open the TUN device in the pod's namespace.
fn log_says_tun_failed(log: &str) -> bool {
    log.contains("Failed to open tun socket in namespace") || crate::tun::log_says_tun_denied(log)
}

fn describe(status: nix::Result<WaitStatus>) -> String {
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exit code {code}"),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
        _ => "it is gone".into(),
    }
}

impl Pasta {
    /// The helper's pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The pid written in the pid file, once pasta has written it.
    fn pid_from_file(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.pid_file).ok()?;
        if !text.ends_with('\n') {
            return None; // not completely written yet
        }
        text.trim().parse().ok()
    }

    /// Kills and reaps the helper now; returns how it ended, in words.
    fn reap_now(self) -> String {
        let status = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let _ = kill(self.pid, Signal::SIGKILL);
                waitpid(self.pid, None)
            }
            other => other,
        };
        std::mem::forget(self);
        describe(status)
    }
}

impl Drop for Pasta {
    /// SIGTERM to the pid of the pid file (the supervisor's child), SIGKILL after a grace
    /// time, and reaps it. A helper the supervisor has reaped already (`waitpid` reports
    /// ECHILD) is never signalled: its pid may belong to another process by now.
    fn drop(&mut self) {
        let pid = match self.pid_from_file() {
            Some(pid) if pid == self.pid.as_raw() => Pid::from_raw(pid),
            _ => self.pid,
        };
        if !matches!(
            waitpid(pid, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        ) {
            return;
        }
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(WaitStatus::StillAlive) => {
                    tracing::warn!(pid = pid.as_raw(), "{HELPER} did not exit; killing it");
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return;
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_host_loopback: bool, ports: &[&str]) -> PastaConfig {
        PastaConfig {
            runtime_dir: "/run/podrun/pods/default_web".into(),
            allow_host_loopback,
            ports: ports
                .iter()
                .map(|p| crate::parse_publish(p).unwrap())
                .collect(),
        }
    }

    #[test]
    fn every_forwarding_option_is_explicit() {
        let args = arguments(&config(false, &[]), 4242, false);
        assert_eq!(
            args.join(" "),
            "--config-net --foreground --quiet --log-file pasta.log --pid pasta.pid \
             --ipv4-only --address 10.0.2.100 --netmask 24 --gateway 10.0.2.2 \
             --ns-ifname tap0 --dns-forward 10.0.2.3 --no-map-gw \
             -t none -u none -T none -U none 4242"
        );
    }

    #[test]
    fn published_ports_and_host_loopback() {
        let args = arguments(
            &config(true, &["8080:80", "127.0.0.1:5353:53/udp", "9000:9000"]),
            7,
            true,
        )
        .join(" ");
        assert!(!args.contains("--no-map-gw"), "{args}");
        assert!(
            args.ends_with(
                "-t 8080:80 -t 9000:9000 -u 127.0.0.1/5353:53 -T none -U none --runas 0:0 \
                 --netns-only --no-netns-quit --netns /proc/self/fd/3"
            ),
            "{args}"
        );
    }

    #[test]
    fn debian_12_build_is_recognised() {
        assert!(version_stalls("pasta unknown version"));
        assert!(!version_stalls("pasta 2024_08_21.1d6142f"));
    }

    #[test]
    fn a_missing_binary_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_binary_in(dir.path().as_os_str())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pasta is not installed") && err.contains("apt-get install passt"),
            "{err}"
        );
    }

    #[test]
    fn tun_failures_are_recognised() {
        assert!(log_says_tun_failed(
            "0.0123: ERROR:   Failed to open tun socket in namespace\n"
        ));
        assert!(!log_says_tun_failed(
            "pasta unknown version: /usr/bin/passt.avx2 (1)\n"
        ));
    }
}
