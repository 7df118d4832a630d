//! The supervisor's signals: handlers that write the signal's number into a self-pipe, which
//! the main loop `poll`s with everything else (see the `supervisor` module).
//!
//! Handlers (unlike blocked or ignored signals) are reset by `execve`, so containers start
//! with default signal dispositions and an empty signal mask; before installing its own, the
//! supervisor resets every disposition it inherited ([`reset_signal_dispositions`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::Signal;

use crate::PodError;

/// The signals the supervisor handles.
const HANDLED: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGPIPE,
];

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) and errno access are async-signal-safe.
        unsafe {
            let saved = *libc::__errno_location();
            let byte = signal as u8;
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// Every signal back to its default action and none blocked. Ignored signals and the signal
/// mask survive `fork` and `execve`: a `podrun play` started where SIGQUIT or SIGINT is
/// ignored (a background job of a non-interactive shell, `nohup`, some CI runners) would
/// pass that on to every container, whose shell then cannot even trap the signal (POSIX:
/// signals ignored on entry cannot be trapped). Containers start as a kubelet's do.
fn reset_signal_dispositions() {
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: the default action, no handler.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    }
    // The real-time signals too: glibc refuses to touch 32 and 33 (its own), which the
    // kernel still lets a process inherit as ignored (cargo's test runs do).
    // SAFETY: SIGRTMAX reads a constant of the C library.
    for signal in 32..=unsafe { libc::__libc_current_sigrtmax() } {
        default_action(signal);
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// `rt_sigaction(signal, SIG_DFL)` straight to the kernel.
fn default_action(signal: libc::c_int) {
    /// The kernel's `struct sigaction` on x86_64 and aarch64.
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid action for a valid signal number, no old action asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// Resets the inherited dispositions and installs the self-pipe handlers; returns the
/// pipe's read end (non-blocking), for the main loop's poll and [`read_pending`].
pub(crate) fn install() -> Result<OwnedFd, PodError> {
    reset_signal_dispositions();
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| PodError::msg(format!("cannot create the signal pipe: {e}")))?;
    SIGNAL_PIPE.store(write_end.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(write_end);
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_signal),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    for signal in HANDLED {
        // SAFETY: the handler only writes to a pipe.
        unsafe { nix::sys::signal::sigaction(signal, &action) }
            .map_err(|e| PodError::msg(format!("cannot handle {signal}: {e}")))?;
    }
    Ok(read_end)
}

/// The handlers' dispositions back to the default, in a child forked from the supervisor
/// (a hook or probe process): the handlers would write into the supervisor's self-pipe.
pub(crate) fn default_in_child() {
    for signal in HANDLED {
        // SAFETY: restoring default dispositions.
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    }
}

/// The signals received since the last call, as numbers, read off the self-pipe `pipe`.
pub(crate) fn read_pending(pipe: &OwnedFd) -> Vec<libc::c_int> {
    let mut signals = Vec::new();
    let mut buffer = [0u8; 64];
    loop {
        // SAFETY: reading into a local buffer from our non-blocking pipe.
        let n = unsafe { libc::read(pipe.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if n <= 0 {
            break;
        }
        signals.extend(buffer[..n as usize].iter().map(|&s| s as libc::c_int));
    }
    signals
}

/// Whether `signal` asks the supervisor to stop the pod.
pub(crate) fn is_stop(signal: libc::c_int) -> bool {
    signal == libc::SIGTERM || signal == libc::SIGINT || signal == libc::SIGHUP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals() {
        assert!(is_stop(libc::SIGTERM) && is_stop(libc::SIGINT) && is_stop(libc::SIGHUP));
        assert!(!is_stop(libc::SIGCHLD) && !is_stop(libc::SIGPIPE));
    }
}
