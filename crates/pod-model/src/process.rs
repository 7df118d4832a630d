//! podrun's processes as the host's `ps` shows them, and how to recognise a pod's supervisor.
//!
//! Every long-lived podrun process of a pod names its role and its pod in its command line:
//! `podrun supervisor default/web`, `podrun watchdog default/web` (the pid-1 reaper of a
//! shared pid namespace shows `/pause`, as the CRI runtimes' does). The supervisor is
//! started with exactly that command line; the processes it forks rewrite theirs (see
//! [`set_title`]).

use std::path::Path;

/// `argv[0]` of podrun's pod processes.
pub const PROGRAM: &str = "podrun";
/// The supervisor's role word: `podrun supervisor <namespace>/<name>`.
pub const SUPERVISOR_ROLE: &str = "supervisor";
/// The watchdog's role word.
pub const WATCHDOG_ROLE: &str = "watchdog";
/// The shared pod network's holder (`play --network shared`, podrun-podnet): one per user,
/// started by the first supervisor that needs it as `podrun network-holder`.
pub const NETWORK_HOLDER_ROLE: &str = "network-holder";
/// The environment variable that tells a `podrun network-holder` process the shared
/// network's directory (`$XDG_RUNTIME_DIR/podrun/network`).
pub const NETWORK_DIR_ENV: &str = "PODRUN_NETWORK_DIR";
/// How long an idle holder stays (milliseconds), for tests; 10 s without it.
pub const NETWORK_LINGER_ENV: &str = "PODRUN_NETWORK_LINGER_MS";
/// How podrun 0.1 (before the process titles) started a supervisor:
/// `/proc/self/exe __supervise <runtime dir>`. Such supervisors are still recognised, so
/// that pods started by it can be listed and taken down.
pub const LEGACY_SUPERVISE_COMMAND: &str = "__supervise";
/// The environment variable that tells a `podrun supervisor` process which pod directory
/// it runs (the command line shows the pod's name only).
pub const SUPERVISOR_DIR_ENV: &str = "PODRUN_SUPERVISOR_DIR";
/// The environment variable naming the fd of `play`'s ready pipe (see [`crate::ready`]).
pub const READY_FD_ENV: &str = "PODRUN_READY_FD";
/// The environment variable naming the fd of the pod owner's pidfd (`play --owner-pid`):
/// the supervisor stops the pod when it becomes readable (the owner ended).
pub const OWNER_FD_ENV: &str = "PODRUN_OWNER_FD";
/// The environment variable with the grace period (seconds) of the stop the owner's end
/// begins (`play --owner-pid --grace-period N`); without it, the pod's own.
pub const OWNER_GRACE_ENV: &str = "PODRUN_OWNER_GRACE";

/// The command line of a pod's process in role `role`: `podrun <role> <namespace>/<name>`.
pub fn title(role: &str, namespace: &str, name: &str) -> [String; 3] {
    [
        PROGRAM.to_string(),
        role.to_string(),
        crate::display_name(namespace, name),
    ]
}

/// Whether `pid` is a live (not zombie) process.
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses (which may itself hold spaces).
        Ok(stat) => match stat.rfind(')') {
            Some(end) => !matches!(stat[end + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// Whether `pid` is alive and is the supervisor of the pod whose runtime directory is
/// `runtime_dir` (named `<namespace>_<name>`), started by this podrun or an earlier one.
pub fn is_supervisor_of(pid: i32, runtime_dir: &Path) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    is_supervisor_cmdline(&cmdline, runtime_dir)
}

/// [`is_supervisor_of`]'s test of a command line (NUL-separated arguments).
fn is_supervisor_cmdline(cmdline: &[u8], runtime_dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<&[u8]> = cmdline
        .strip_suffix(&[0])
        .unwrap_or(cmdline)
        .split(|b| *b == 0)
        .collect();
    let legacy = args
        .iter()
        .any(|a| *a == LEGACY_SUPERVISE_COMMAND.as_bytes())
        && args
            .iter()
            .any(|a| *a == runtime_dir.as_os_str().as_bytes());
    if legacy {
        return true;
    }
    let Some((namespace, name)) = runtime_dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::PodDirs::split_key)
    else {
        return false;
    };
    let wanted = title(SUPERVISOR_ROLE, namespace, name);
    args.len() == wanted.len() && args.iter().zip(&wanted).all(|(a, w)| *a == w.as_bytes())
}

/// Rewrites this process's command line as `ps` shows it, for a process forked from the
/// supervisor (the watchdog): its arguments are overwritten in place, padded with NULs, so
/// the new title must not be longer than the command line it replaces (it is cut if it
/// is). The kernel reads `/proc/PID/cmdline` from the memory the arguments were passed in,
/// which a forked child has a copy of.
pub fn set_title(args: &[String]) {
    let Some((start, end)) = argument_area() else {
        return;
    };
    let capacity = end - start;
    let mut text: Vec<u8> = Vec::with_capacity(capacity);
    for arg in args {
        text.extend_from_slice(arg.as_bytes());
        text.push(0);
    }
    // The last byte stays NUL: a command line that does not end in one makes the kernel
    // read on into the environment.
    text.truncate(capacity.saturating_sub(1));
    text.resize(capacity, 0);
    // SAFETY: [start, end) is this process's argument area (the kernel's arg_start and
    // arg_end), mapped writable on the stack; nothing in this process reads argv after
    // start-up (Rust copied the arguments at start).
    unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, capacity) };
}

/// `arg_start` and `arg_end` of `/proc/self/stat` (fields 48 and 49).
fn argument_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<usize>().ok();
    let (start, end) = (field(48)?, field(49)?);
    (start != 0 && end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisors_are_recognised_by_title_or_by_the_old_command_line() {
        let dir = Path::new("/run/user/1000/podrun/pods/default_web");
        assert!(is_supervisor_cmdline(
            b"podrun\0supervisor\0default/web\0",
            dir
        ));
        assert!(!is_supervisor_cmdline(
            b"podrun\0supervisor\0default/db\0",
            dir
        ));
        assert!(!is_supervisor_cmdline(
            b"podrun\0watchdog\0default/web\0",
            dir
        ));
        let legacy = format!("/proc/self/exe\0__supervise\0{}\0", dir.display());
        assert!(is_supervisor_cmdline(legacy.as_bytes(), dir));
        assert!(!is_supervisor_cmdline(b"sleep\x00100\x00", dir));
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
    }

    #[test]
    fn the_argument_area_is_found() {
        let (start, end) = argument_area().unwrap();
        assert!(end > start);
    }
}
