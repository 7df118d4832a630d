//! Running a container's lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`; planned
//! into [`podrun_pod_model::plan::hooks`]).
//!
//! [`spawn`] runs a hook in a forked child, so that the single-threaded supervisor keeps
//! serving signals, output and the other containers meanwhile; the child's exit status is
//! the hook's result (0: success), collected where the supervisor reaps its children. An
//! `exec` hook runs in the container as `podrun exec` does (a libcontainer tenant); an
//! `httpGet` hook is made by the child itself, from the pod's network namespace (so the image
//! needs no curl); `sleep` just sleeps. What the hook prints goes to a file whose tail
//! becomes the failure's message, as the kubelet reports it.
//!
//! What a hook's end means is [`outcome`]: a failure is a `FailedPostStartHook` or
//! `FailedPreStopHook` event; a failed postStart hook also kills the container (which the
//! restart policy may then restart), while a preStop hook, failed or not, is followed by the
//! container's stop signal.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use nix::unistd::{fork, ForkResult, Pid};
use podrun_pod_model::plan::hooks::Handler;
use podrun_runtime::ExecConfig;

use crate::PodError;

/// How long an httpGet hook waits for its connection and its answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which hook a hook process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    PostStart,
    PreStop,
}

impl HookKind {
    /// As the manifest names it.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::PostStart => "postStart",
            HookKind::PreStop => "preStop",
        }
    }

    /// The reason of its failure's event.
    fn failure_reason(self) -> &'static str {
        match self {
            HookKind::PostStart => "FailedPostStartHook",
            HookKind::PreStop => "FailedPreStopHook",
        }
    }
}

/// A hook that has ended, as [`outcome`] judges it.
#[derive(Debug, Clone)]
pub struct EndedHook<'a> {
    pub kind: HookKind,
    /// Its exit code (0: success).
    pub code: i32,
    /// The hook as planned (it names the hook's kind in the message).
    pub handler: Option<&'a Handler>,
    /// The tail of its output (or why it could not start).
    pub output: &'a str,
    pub container: &'a str,
    /// `ns/name`.
    pub pod: &'a str,
    /// Its container still runs.
    pub running: bool,
}

/// A hook's failure: its event's reason, and the message of the event and the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    pub reason: &'static str,
    pub message: String,
}

/// What the supervisor does next with the hook's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterHook {
    /// Nothing: the container does not run any more.
    Nothing,
    /// The postStart hook succeeded: the container is ready (no longer `ContainerCreating`).
    Ready,
    /// The postStart hook failed: the container is stopped (as the kubelet does; the restart
    /// policy then decides about its restart).
    Kill,
    /// The preStop hook is over (whatever its result): the container's stop signal.
    StopSignal,
}

/// What a hook's end means: its failure, if it failed, and what follows.
pub fn outcome(hook: &EndedHook) -> (Option<HookFailure>, AfterHook) {
    let failure = (hook.code != 0).then(|| HookFailure {
        reason: hook.kind.failure_reason(),
        message: format!(
            "{} lifecycle hook for Container \"{}\" in Pod \"{}\" failed (exit code {}): {}",
            hook.handler.map(Handler::kind).unwrap_or("exec"),
            hook.container,
            hook.pod,
            hook.code,
            hook.output
        ),
    });
    let then = match hook.kind {
        _ if !hook.running => AfterHook::Nothing,
        HookKind::PostStart if hook.code == 0 => AfterHook::Ready,
        HookKind::PostStart => AfterHook::Kill,
        HookKind::PreStop => AfterHook::StopSignal,
    };
    (failure, then)
}

/// Runs `handler` in a forked child whose output goes to `output`; returns its pid. `exec`
/// is where an exec hook runs (the container's process settings); other hooks ignore it.
/// Call it from the single-threaded supervisor only.
pub fn spawn(handler: &Handler, exec: ExecConfig, output: &Path) -> Result<Pid, PodError> {
    let out = std::fs::File::create(output)
        .map_err(PodError::io(format!("cannot create {}", output.display())))?;
    // SAFETY: the supervisor is single-threaded, so the child may do anything.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => Ok(child),
        Ok(ForkResult::Child) => {
            let code = run_in_child(handler, exec, out);
            // SAFETY: leave without running the supervisor's destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        Err(e) => Err(PodError::msg(format!("cannot fork for a hook: {e}"))),
    }
}

fn run_in_child(handler: &Handler, exec: ExecConfig, out: std::fs::File) -> i32 {
    use std::os::fd::AsRawFd;
    // The supervisor's handlers would write into its self-pipe.
    crate::signals::default_in_child();
    // SAFETY: dup2 onto the standard descriptors of this child.
    unsafe {
        libc::dup2(out.as_raw_fd(), 1);
        libc::dup2(out.as_raw_fd(), 2);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null >= 0 {
            libc::dup2(null, 0);
        }
    }
    match handler {
        Handler::Exec { command } => {
            let config = ExecConfig {
                args: command.clone(),
                ..exec
            };
            match podrun_runtime::exec_in_container(config) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("{e}");
                    126
                }
            }
        }
        Handler::HttpGet {
            host,
            port,
            path,
            headers,
        } => match http_get(host, *port, path, headers) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Handler::Sleep { seconds } => {
            std::thread::sleep(Duration::from_secs(*seconds));
            0
        }
    }
}

/// An HTTP/1.1 GET; success for a status from 200 to 399 (the kubelet's rule).
fn http_get(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> Result<(), String> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("Get \"http://{target}{path}\": {e}"))?
        .next()
        .ok_or_else(|| format!("Get \"http://{target}{path}\": no address"))?;
    let failed = |e: std::io::Error| format!("Get \"http://{target}{path}\": {e}");
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).map_err(failed)?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .map_err(failed)?;
    stream
        .set_write_timeout(Some(HTTP_TIMEOUT))
        .map_err(failed)?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: kube-lifecycle/1.33\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut head = [0u8; 256];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        match stream.read(&mut head[len..]).map_err(failed)? {
            0 => break,
            n => len += n,
        }
    }
    let line = String::from_utf8_lossy(&head[..len]);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("Get \"http://{target}{path}\": malformed HTTP response"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "HTTP lifecycle hook ({path}) for Container in Pod failed with status {status}"
        ))
    }
}

/// The last lines of a hook's output, for its failure message.
pub fn output_tail(output: &Path) -> String {
    let text = std::fs::read_to_string(output).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended<'a>(kind: HookKind, code: i32, handler: &'a Handler, running: bool) -> EndedHook<'a> {
        EndedHook {
            kind,
            code,
            handler: Some(handler),
            output: "boom",
            container: "app",
            pod: "default/web",
            running,
        }
    }

    #[test]
    fn a_post_start_hook_that_succeeds_makes_the_container_ready() {
        let exec = Handler::Exec {
            command: vec!["true".into()],
        };
        assert_eq!(
            outcome(&ended(HookKind::PostStart, 0, &exec, true)),
            (None, AfterHook::Ready)
        );
    }

    #[test]
    fn a_post_start_hook_that_fails_kills_the_container_with_an_event() {
        let http = Handler::HttpGet {
            host: "127.0.0.1".into(),
            port: 80,
            path: "/".into(),
            headers: Vec::new(),
        };
        let (failure, then) = outcome(&ended(HookKind::PostStart, 1, &http, true));
        assert_eq!(then, AfterHook::Kill);
        assert_eq!(
            failure,
            Some(HookFailure {
                reason: "FailedPostStartHook",
                message: "httpGet lifecycle hook for Container \"app\" in Pod \"default/web\" failed (exit code 1): boom".into()
            })
        );
        // Its container ended meanwhile: the event only.
        let (failure, then) = outcome(&ended(HookKind::PostStart, 1, &http, false));
        assert!(failure.is_some());
        assert_eq!(then, AfterHook::Nothing);
    }

    #[test]
    fn a_pre_stop_hook_is_followed_by_the_stop_signal_whatever_its_result() {
        let sleep = Handler::Sleep { seconds: 5 };
        assert_eq!(
            outcome(&ended(HookKind::PreStop, 0, &sleep, true)),
            (None, AfterHook::StopSignal)
        );
        let (failure, then) = outcome(&ended(HookKind::PreStop, 137, &sleep, true));
        assert_eq!(then, AfterHook::StopSignal);
        let failure = failure.unwrap();
        assert_eq!(failure.reason, "FailedPreStopHook");
        assert!(
            failure
                .message
                .starts_with("sleep lifecycle hook for Container \"app\""),
            "{}",
            failure.message
        );
    }

    #[test]
    fn the_last_five_lines_of_a_hook_s_output() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("app.postStart");
        assert_eq!(output_tail(&output), "");
        let text: String = (1..=7).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&output, text).unwrap();
        assert_eq!(
            output_tail(&output),
            "line 3\nline 4\nline 5\nline 6\nline 7"
        );
    }
}
