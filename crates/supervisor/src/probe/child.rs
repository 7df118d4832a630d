//! A probe's process: forked from the supervisor, it runs one probe (in the pod's namespaces)
//! and exits 0 (success) or 1 (failure), its message in a memfd (see [`super`]).
//!
//! The prober starts and kills runs through [`Runner`]: [`ForkRunner`] here, a fake in the
//! prober's tests, so that the probe rules are tested without processes.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podrun_pod_model::plan::probes::ProbeAction;

use super::check;

/// The most of a probe's output kept as its message (the kubelet keeps 10 KiB).
const MAX_MESSAGE: usize = 10 * 1024;

/// One probe run, as the child gets it.
pub(super) struct Job<'a> {
    pub action: &'a ProbeAction,
    pub timeout: Duration,
    pub exec: podrun_runtime::ExecConfig,
}

/// How probe runs are started and stopped.
pub(super) trait Runner {
    /// Starts a run of `job` in a process of its own; returns its pid. The run's end comes
    /// back through the supervisor's `waitpid` (the prober's `child_exited`).
    fn start(&mut self, job: &Job) -> Result<Pid, String>;
    /// The message run `pid`, which has ended, wrote; the run is forgotten.
    fn output(&mut self, pid: Pid) -> String;
    /// SIGKILLs run `pid`, past its time; its end is still judged.
    fn kill(&mut self, pid: Pid);
    /// SIGKILLs run `pid` and forgets it: its result does not count.
    fn abandon(&mut self, pid: Pid);
}

/// The real runner: each run is a child forked from the supervisor ([`spawn`]).
#[derive(Default)]
pub(super) struct ForkRunner {
    /// The memfd of each run not yet ended.
    outputs: Vec<(Pid, File)>,
}

impl ForkRunner {
    fn forget(&mut self, pid: Pid) -> Option<File> {
        let index = self.outputs.iter().position(|(p, _)| *p == pid)?;
        Some(self.outputs.swap_remove(index).1)
    }
}

impl Runner for ForkRunner {
    fn start(&mut self, job: &Job) -> Result<Pid, String> {
        let (pid, output) = spawn(job)?;
        self.outputs.push((pid, output));
        Ok(pid)
    }

    fn output(&mut self, pid: Pid) -> String {
        self.forget(pid)
            .map(|output| read_message(&output))
            .unwrap_or_default()
    }

    fn kill(&mut self, pid: Pid) {
        let _ = kill(pid, Signal::SIGKILL);
    }

    fn abandon(&mut self, pid: Pid) {
        let _ = kill(pid, Signal::SIGKILL);
        self.forget(pid);
    }
}

/// The message a probe's process wrote (at most [`MAX_MESSAGE`] bytes, trimmed).
fn read_message(output: &File) -> String {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let mut total = 0;
    while total < buffer.len() {
        match output.read_at(&mut buffer[total..], total as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    String::from_utf8_lossy(&buffer[..total]).trim().to_string()
}

/// Forks the probe's process; returns its pid and the memfd it writes its message into.
fn spawn(job: &Job) -> Result<(Pid, File), String> {
    // SAFETY: memfd_create with a static name; the descriptor is owned below.
    let fd = unsafe { libc::memfd_create(c"podrun-probe".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor of ours.
    let output = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the supervisor is single-threaded, so the child may do anything after fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => child_main(output.as_raw_fd(), job),
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok((child, File::from(output))),
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// The probe's process: default signal dispositions (the supervisor's handlers write into
/// its self-pipe), stdin from /dev/null, stdout and stderr into the memfd; killed with the
/// supervisor. Exits 0 on success, 1 on failure.
fn child_main(output: RawFd, job: &Job) -> ! {
    crate::signals::default_in_child();
    // SAFETY: plain system calls in a single-threaded child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        libc::dup2(null, 0);
        libc::dup2(output, 1);
        libc::dup2(output, 2);
    }
    // The supervisor's log subscriber would write libcontainer's logs to stderr, which is
    // the probe's message now: nothing is logged in this process.
    let result =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            run_job(job)
        });
    let code = match result {
        Ok(message) => {
            print_message(&message);
            0
        }
        Err(message) => {
            print_message(&message);
            1
        }
    };
    // SAFETY: ends the child without running the supervisor's exit code.
    unsafe { libc::_exit(code) }
}

fn print_message(message: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(message.as_bytes());
    let _ = out.flush();
}

/// Runs the probe; `Ok` and `Err` carry the message to add to what the probe wrote.
fn run_job(job: &Job) -> Result<String, String> {
    match job.action {
        ProbeAction::TcpSocket { host, port } => check::tcp_socket(host, *port, job.timeout),
        ProbeAction::HttpGet {
            https,
            host,
            port,
            path,
            headers,
        } => check::HttpGet {
            https: *https,
            host,
            port: *port,
            path,
            headers,
        }
        .run(job.timeout),
        ProbeAction::Exec { command } => run_exec(job, command),
    }
}

/// An exec probe: the command's output (already in the memfd) is the message; an empty
/// one is replaced by what happened.
fn run_exec(job: &Job, command: &[String]) -> Result<String, String> {
    let mut config = job.exec.clone();
    config.args = command.to_vec();
    let wrote_nothing = || {
        // SAFETY: fstat on our stdout.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        unsafe { libc::fstat(1, &mut stat) == 0 && stat.st_size == 0 }
    };
    match podrun_runtime::exec_in_container_with_timeout(config, job.timeout) {
        Ok(Some(0)) => Ok(String::new()),
        Ok(Some(code)) if wrote_nothing() => Err(format!(
            "command {:?} exited with code {code}",
            command.join(" ")
        )),
        Ok(Some(_)) => Err(String::new()),
        Ok(None) => Err(format!("command {:?} timed out", command.join(" "))),
        Err(e) => Err(format!("exec failed: {e}")),
    }
}
