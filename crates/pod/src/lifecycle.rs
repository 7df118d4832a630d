//! Container lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`) and
//! `lifecycle.stopSignal`.
//!
//! * [`plan`] (the CLI): the manifest's hooks as the plan holds them, named ports resolved.
//! * [`spawn`] (the supervisor): runs a hook in a forked child, so that the single-threaded
//!   supervisor keeps serving signals, output and the other containers meanwhile; the child's
//!   exit status is the hook's result (0: success), collected where the supervisor reaps its
//!   children. An `exec` hook runs in the container as `podrun exec` does (a libcontainer
//!   tenant); an `httpGet` hook is made by the child itself, from the pod's network namespace
//!   (so the image needs no curl); `sleep` just sleeps. What the hook prints goes to a file
//!   whose tail becomes the failure's message, as the kubelet reports it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::{fork, ForkResult, Pid};
use podrun_manifest::k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use podrun_manifest::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use podrun_runtime::ExecConfig;
use serde::{Deserialize, Serialize};

use crate::PodError;

/// Where an httpGet hook connects without `host`: the kubelet uses the pod's IP; the
/// supervisor is inside the pod's network namespace, where 127.0.0.1 is the pod's loopback.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// How long an httpGet hook waits for its connection and its answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A container's hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_start: Option<Handler>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<Handler>,
    /// `lifecycle.stopSignal` as written (checked to be a signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Handler {
    /// A command run in the container (no shell); exit code 0 is success.
    Exec { command: Vec<String> },
    /// An HTTP GET; a status from 200 to 399 is success.
    HttpGet {
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// Waits (`sleep.seconds`).
    Sleep { seconds: u64 },
}

impl Handler {
    /// The hook's kind, for messages (`exec`, `httpGet`, `sleep`).
    pub fn kind(&self) -> &'static str {
        match self {
            Handler::Exec { .. } => "exec",
            Handler::HttpGet { .. } => "httpGet",
            Handler::Sleep { .. } => "sleep",
        }
    }
}

/// The hooks of `container` (`field`: e.g. `spec.containers[0]`).
pub fn plan(container: &Container, field: &str) -> Result<Hooks, PodError> {
    let Some(lifecycle) = &container.lifecycle else {
        return Ok(Hooks::default());
    };
    let handler = |h: &Option<LifecycleHandler>, name: &str| {
        h.as_ref()
            .map(|h| handler_plan(h, container, &format!("{field}.lifecycle.{name}")))
            .transpose()
    };
    let stop_signal = lifecycle.stop_signal.clone().filter(|s| !s.is_empty());
    if let Some(text) = &stop_signal {
        if parse_signal(text).is_none() {
            return Err(PodError::msg(format!(
                "{field}.lifecycle.stopSignal: `{text}` is not a signal\nhint: a name such as SIGTERM, SIGQUIT or SIGINT"
            )));
        }
    }
    Ok(Hooks {
        post_start: handler(&lifecycle.post_start, "postStart")?,
        pre_stop: handler(&lifecycle.pre_stop, "preStop")?,
        stop_signal,
    })
}

fn handler_plan(
    handler: &LifecycleHandler,
    container: &Container,
    field: &str,
) -> Result<Handler, PodError> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err(PodError::msg(format!(
                "{field}.exec.command: Required value"
            )));
        }
        return Ok(Handler::Exec { command });
    }
    if let Some(get) = &handler.http_get {
        if get
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("HTTP"))
        {
            return Err(PodError::msg(format!(
                "{field}.httpGet.scheme: only HTTP is supported for hooks yet\nhint: serve the hook over plain HTTP, or use an exec hook"
            )));
        }
        let port = resolve_port(&get.port, container, &format!("{field}.httpGet.port"))?;
        let path = get
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        return Ok(Handler::HttpGet {
            host: get
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| DEFAULT_HOST.into()),
            port,
            path: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
            headers: get
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        });
    }
    if let Some(sleep) = &handler.sleep {
        return Ok(Handler::Sleep {
            seconds: sleep.seconds.max(0) as u64,
        });
    }
    if handler.tcp_socket.is_some() {
        return Err(PodError::msg(format!(
            "{field}.tcpSocket: not supported for lifecycle hooks (Kubernetes deprecated it and never ran it)\nhint: use exec or httpGet"
        )));
    }
    Err(PodError::msg(format!(
        "{field}: one of exec, httpGet or sleep is required"
    )))
}

/// A port by number, or by the name of one of the container's ports.
fn resolve_port(port: &IntOrString, container: &Container, field: &str) -> Result<u16, PodError> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| {
                    PodError::msg(format!(
                        "{field}: the container has no port named `{name}`\nhint: name it in ports[].name, or give the number"
                    ))
                })?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| PodError::msg(format!("{field}: {number} is not a port (1-65535)")))
}

/// A signal by name (`SIGQUIT`, `QUIT`, any case) or number.
pub fn parse_signal(text: &str) -> Option<Signal> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
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
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: restoring default dispositions.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
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

    fn container(json: serde_json::Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hooks_from_the_manifest() {
        let c = container(serde_json::json!({
            "name": "web",
            "ports": [{"name": "http", "containerPort": 8080}],
            "lifecycle": {
                "stopSignal": "SIGQUIT",
                "postStart": {"exec": {"command": ["sh", "-c", "echo hi"]}},
                "preStop": {"httpGet": {"port": "http", "path": "stop", "httpHeaders": [{"name": "X", "value": "y"}]}}
            }
        }));
        let hooks = plan(&c, "spec.containers[0]").unwrap();
        assert_eq!(hooks.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(
            hooks.post_start,
            Some(Handler::Exec {
                command: vec!["sh".into(), "-c".into(), "echo hi".into()]
            })
        );
        assert_eq!(
            hooks.pre_stop,
            Some(Handler::HttpGet {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/stop".into(),
                headers: vec![("X".into(), "y".into())],
            })
        );
    }

    #[test]
    fn bad_hooks_name_their_field() {
        let err = plan(
            &container(serde_json::json!({"name": "a", "lifecycle": {"preStop": {"httpGet": {"port": "web"}}}})),
            "spec.containers[1]",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("spec.containers[1].lifecycle.preStop.httpGet.port")
                && err.contains("hint:"),
            "{err}"
        );
        let err = plan(
            &container(serde_json::json!({"name": "a", "lifecycle": {"stopSignal": "SIGNOPE"}})),
            "spec.containers[0]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lifecycle.stopSignal"), "{err}");
        assert_eq!(parse_signal("quit"), Some(Signal::SIGQUIT));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
    }
}
