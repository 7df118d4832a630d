//! Starting a planned pod (`podrun play`'s last step): its directories, created under the
//! pod lock; `plan.json`; its cgroup; then its supervisor, started detached as
//! `podrun supervisor <namespace>/<name>` (so `ps` shows whose it is), whose answer on the
//! ready pipe says when the pod runs or why it could not start. A start that fails leaves
//! nothing behind (see [`crate::remove`]).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podrun_pod_model::plan::Plan;
use podrun_pod_model::process::{
    title, OWNER_FD_ENV, OWNER_GRACE_ENV, READY_FD_ENV, SUPERVISOR_DIR_ENV, SUPERVISOR_ROLE,
};
use podrun_pod_model::ready::ReadyMessage;
use podrun_pod_model::{display_name, PodDirs, PodError, PodLayout};

use crate::lock::{CreateError, PodLock};
use crate::owner::OwnerLink;
use crate::remove::{stop_and_remove, Lock, Stop};

/// How long the supervisor may take to start the pod (its images are pulled already).
pub const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The fd on which the supervisor finds the ready pipe.
const READY_FD: i32 = 3;
/// The fd on which the supervisor finds its owner's pidfd (`play --owner-pid`).
const OWNER_FD: i32 = 4;

/// Why a pod did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A pod of that name exists, or another `play` is creating it.
    #[error("pod `{0}` already exists (or another `podrun play` is starting it)")]
    Exists(String),
    #[error("cannot start pod `{pod}`: {source}")]
    Failed { pod: String, source: PodError },
}

/// Creates the pod of `plan` and starts its supervisor; returns once the pod runs (its
/// containers settled). On failure everything the start made is removed again. `owner`: the
/// pidfd (see [`crate::owner`]) the supervisor inherits; it stops the pod when that process
/// ends.
pub fn start(dirs: &PodDirs, plan: &Plan, owner: Option<OwnerLink<'_>>) -> Result<(), StartError> {
    let pod = display_name(&plan.namespace, &plan.name);
    let failed = |source: PodError| StartError::Failed {
        pod: pod.clone(),
        source,
    };
    for root in [&dirs.runtime_root, &dirs.data_root] {
        std::fs::create_dir_all(root)
            .map_err(PodError::io(format!("cannot create {}", root.display())))
            .map_err(failed)?;
    }
    // Held until the pod runs, or its remains are removed: a racing `down` waits for it.
    let _lock = match PodLock::create(&plan.runtime_dir) {
        Ok(lock) => lock,
        Err(CreateError::Exists(_)) => return Err(StartError::Exists(pod)),
        Err(CreateError::Other(e)) => return Err(failed(e)),
    };
    if let Err(error) = create_and_run(plan, owner) {
        let undone = stop_and_remove(
            dirs,
            &plan.namespace,
            &plan.name,
            Lock::Held,
            &Stop::new(None, Duration::from_secs(5)),
        );
        if let Err(e) = undone {
            eprintln!("warning: {e}");
        }
        return Err(failed(error));
    }
    Ok(())
}

/// Everything of the start after the lock.
fn create_and_run(plan: &Plan, owner: Option<OwnerLink<'_>>) -> Result<(), PodError> {
    std::fs::create_dir(&plan.data_dir).map_err(PodError::io(format!(
        "cannot create {}",
        plan.data_dir.display()
    )))?;
    plan.write()?;
    if let Some(cgroup) = &plan.cgroup {
        cgroup.create()?;
    }
    tracing::debug!(pod = %display_name(&plan.namespace, &plan.name), "plan written, starting the supervisor");
    let (child, ready) = spawn_supervisor(plan, owner)?;
    wait_ready(child, ready, &plan.layout())
}

/// Starts the supervisor detached (own session, output to `supervisor.log`) with a pipe on
/// fd 3 for its answer, and the owner's pidfd (if any) on fd 4.
fn spawn_supervisor(
    plan: &Plan,
    owner: Option<OwnerLink<'_>>,
) -> Result<(Child, std::fs::File), PodError> {
    let layout = plan.layout();
    let pipe_error = |e: nix::Error| PodError::msg(format!("cannot create a pipe: {e}"));
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(pipe_error)?;
    let log_path = layout.supervisor_log();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(PodError::io(format!("cannot open {}", log_path.display())))?;
    let log_error = PodError::io(format!("cannot open {}", log_path.display()));
    let log_copy = log.try_clone().map_err(log_error)?;
    let write_fd = write_end.as_raw_fd();
    let [program, role, pod] = title(SUPERVISOR_ROLE, &plan.namespace, &plan.name);
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(program)
        .args([role, pod])
        .env(SUPERVISOR_DIR_ENV, &layout.runtime_dir)
        .env(READY_FD_ENV, READY_FD.to_string())
        .stdin(Stdio::null())
        .stdout(log_copy)
        .stderr(log);
    if std::env::var_os("PODRUN_LOG").is_none() {
        command.env("PODRUN_LOG", "info");
    }
    let owner_fd = owner.map(|owner| owner.pidfd.as_raw_fd());
    if owner_fd.is_some() {
        command.env(OWNER_FD_ENV, OWNER_FD.to_string());
    }
    if let Some(grace) = owner.and_then(|owner| owner.grace_period_seconds) {
        command.env(OWNER_GRACE_ENV, grace.to_string());
    }
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Out of the way first: the pidfd may be fd 3 itself.
            let owner_copy = match owner_fd {
                Some(fd) => match libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) {
                    -1 => return Err(std::io::Error::last_os_error()),
                    copy => Some(copy),
                },
                None => None,
            };
            if write_fd == READY_FD {
                if libc::fcntl(READY_FD, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(write_fd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(copy) = owner_copy {
                // dup2 leaves the new descriptor open across exec; the copy is closed by it.
                if libc::dup2(copy, OWNER_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(PodError::io("cannot start the pod supervisor"))?;
    drop(write_end);
    Ok((child, std::fs::File::from(read_end)))
}

/// Waits for the supervisor's answer: `Ok` once the pod runs; its error (after it has
/// cleaned up and ended), or the tail of its log when it died without one.
fn wait_ready(mut child: Child, ready: std::fs::File, layout: &PodLayout) -> Result<(), PodError> {
    match read_answer(&mut child, ready)? {
        Some(ReadyMessage::Started) => return Ok(()),
        answer => {
            wait_for_exit(&mut child, Duration::from_secs(30));
            if let Some(ReadyMessage::Failed(message)) = answer {
                return Err(PodError::msg(message));
            }
        }
    }
    let log = std::fs::read_to_string(layout.supervisor_log()).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(10).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(PodError::msg(format!(
        "the pod supervisor ended without starting the pod; its log:\n{}",
        tail.join("\n")
    )))
}

/// Reads the ready pipe until an answer is whole or the pipe ends (`None`: no answer).
fn read_answer(
    child: &mut Child,
    mut ready: std::fs::File,
) -> Result<Option<ReadyMessage>, PodError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let read_error = PodError::io("cannot read the supervisor's answer");
    nix::fcntl::fcntl(
        ready.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| read_error(e.into()))?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let mut fds = [libc::pollfd {
            fd: ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on one valid descriptor.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, 200) };
        match ready.read(&mut buffer) {
            Ok(0) => return Ok(ReadyMessage::decode(&answer, true)),
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if let Some(message) = ReadyMessage::decode(&answer, false) {
                    return Ok(Some(message));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(PodError::io("cannot read the supervisor's answer")(e)),
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(PodError::msg(format!(
                "the pod supervisor did not start the pod in {} s",
                START_TIMEOUT.as_secs()
            )));
        }
    }
}

/// Waits up to `timeout` for the supervisor to end (it cleans up first), then kills it.
fn wait_for_exit(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while let Ok(None) = child.try_wait() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
