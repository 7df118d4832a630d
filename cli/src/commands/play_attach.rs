//! `podrun play --wait` at a terminal: the terminal is attached to the first app container
//! that has `stdin: true` and `tty: true` (like `kubectl run -it`), through the pod
//! supervisor's attach endpoint (`podrun_pod::attach`). The terminal is in raw mode while
//! attached, so every key (Ctrl-C too) goes to the container; its window size follows the
//! terminal's (SIGWINCH).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use podrun_pod::attach::AttachClient;
use podrun_pod::{display_name, PodDirs};

use super::exec::RawMode;

static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_resize(_: libc::c_int) {
    RESIZED.store(true, Ordering::Relaxed);
}

/// A container that may be attached to.
pub struct Candidate {
    pub runtime_dir: PathBuf,
    /// `pod/container`, as `play --wait` prefixes its lines.
    pub shown: String,
    pub container: String,
}

/// The app containers of the pods with `stdin` and `tty`, in order.
pub fn candidates(dirs: &PodDirs, pods: &[(String, String)]) -> Vec<Candidate> {
    let mut found = Vec::new();
    for (namespace, name) in pods {
        let runtime_dir = dirs.runtime_dir(namespace, name);
        let Ok(plan) = podrun_pod_model::plan::Plan::read(&runtime_dir) else {
            continue;
        };
        for container in plan.containers.iter().filter(|c| c.stdio.attachable()) {
            found.push(Candidate {
                runtime_dir: runtime_dir.clone(),
                shown: format!("{}/{}", display_name(namespace, name), container.name),
                container: container.name.clone(),
            });
        }
    }
    found
}

/// The terminal (stdin and stdout) attached to a container; raw mode ends when it drops
/// (the client's fields drop first).
pub struct AttachedTerminal {
    client: AttachClient,
    _raw: RawMode,
}

impl AttachedTerminal {
    /// Attaches the terminal to the first of `candidates`, saying so on stderr; `None` (and
    /// why, on stderr) when there is none to attach to, or stdin is not a terminal.
    pub fn attach_first(candidates: &[Candidate]) -> Option<(AttachedTerminal, &Candidate)> {
        let first = candidates.first()?;
        let names: Vec<&str> = candidates.iter().map(|c| c.shown.as_str()).collect();
        if !nix::unistd::isatty(libc::STDIN_FILENO).unwrap_or(false) {
            eprintln!(
                "not attaching {}: it has stdin and tty, but play's stdin is not a terminal",
                names.join(", ")
            );
            return None;
        }
        let client = match AttachClient::connect(&first.runtime_dir, &first.container) {
            Ok(client) => client,
            Err(e) => {
                eprintln!("warning: {e}");
                return None;
            }
        };
        let others = if names.len() > 1 {
            format!(
                "; only it is attached, not {} (stdin and tty too)",
                names[1..].join(", ")
            )
        } else {
            String::new()
        };
        eprintln!(
            "attached this terminal to {} (stdin and tty){others}",
            first.shown
        );
        let raw = match RawMode::enter() {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("warning: cannot put the terminal into raw mode: {e}");
                return None;
            }
        };
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_resize),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only stores into an atomic.
        let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGWINCH, &action) };
        // The terminal hung up: the pods are removed and the mode restored, as for SIGTERM.
        super::play_wait::catch_stop_signal(nix::sys::signal::Signal::SIGHUP);
        let mut attached = AttachedTerminal { client, _raw: raw };
        attached.send_window();
        Some((attached, first))
    }

    fn send_window(&mut self) {
        if let Some(size) = podrun_runtime::window_size(libc::STDIN_FILENO) {
            self.client.send_window(&size);
        }
    }

    /// Relays keys and output for up to `timeout` (less when a signal comes); false once
    /// the attach is over.
    pub fn relay(&mut self, timeout: Duration) -> bool {
        if RESIZED.swap(false, Ordering::Relaxed) {
            self.send_window();
        }
        self.client
            .relay(libc::STDIN_FILENO, libc::STDOUT_FILENO, timeout)
    }
}
