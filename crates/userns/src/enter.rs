//! Entering a user namespace with a full id map.
//!
//! `newuidmap` is setuid root, and setuid does not take effect for a binary executed inside a
//! user namespace that does not map host root. So the tool must run from the *parent*
//! namespace, on the PID of the process that has unshared. [`enter_user_namespace`] does it
//! the way util-linux's `unshare --map-auto` does: fork a helper that stays behind, unshare in
//! the caller, let the helper write both maps, wait for its verdict.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Command;

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe, ForkResult, Pid};

use crate::{IdMap, MappingPlan, UsernsError};

/// True when this process is in the host's (initial) user namespace, whose map spans every id.
pub fn is_root_in_initial_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| map.split_whitespace().nth(2) == Some("4294967295"))
        .unwrap_or(false)
        && nix::unistd::geteuid().is_root()
}

/// Moves the calling process into a new user namespace mapped as `plan` says, and makes it
/// root there (full capabilities over namespace-owned resources).
///
/// Must be called while the process is single-threaded (before any async runtime starts):
/// the kernel refuses `unshare(CLONE_NEWUSER)` in a multi-threaded process.
pub fn enter_user_namespace(plan: &MappingPlan) -> Result<(), UsernsError> {
    match plan {
        MappingPlan::HostRoot => Ok(()),
        MappingPlan::SingleId { uid, gid } => {
            unshare(CloneFlags::CLONE_NEWUSER).map_err(UsernsError::Unshare)?;
            write_single_id_maps("self", *uid, *gid)
        }
        MappingPlan::Subordinate { uid_map, gid_map } => {
            enter_with_helper(uid_map, gid_map)?;
            become_namespace_root()
        }
    }
}

/// Writes the maps of another process `pid` that has created (but not yet used) a user
/// namespace. Used by the pod sandbox, whose holder process unshares and waits.
pub fn write_id_maps(pid: i32, plan: &MappingPlan) -> Result<(), UsernsError> {
    match plan {
        MappingPlan::HostRoot => Ok(()),
        MappingPlan::SingleId { uid, gid } => write_single_id_maps(&pid.to_string(), *uid, *gid),
        MappingPlan::Subordinate { uid_map, gid_map } => run_map_tools(pid, uid_map, gid_map),
    }
}

fn write_single_id_maps(pid: &str, uid: u32, gid: u32) -> Result<(), UsernsError> {
    // An unprivileged process may map only its own ids, and must give up setgroups first.
    write_proc(pid, "setgroups", "deny")?;
    write_proc(pid, "uid_map", &format!("0 {uid} 1\n"))?;
    write_proc(pid, "gid_map", &format!("0 {gid} 1\n"))
}

fn write_proc(pid: &str, file: &'static str, content: &str) -> Result<(), UsernsError> {
    std::fs::write(format!("/proc/{pid}/{file}"), content)
        .map_err(|source| UsernsError::WriteMap { file, source })
}

fn enter_with_helper(uid_map: &IdMap, gid_map: &IdMap) -> Result<(), UsernsError> {
    let (go_read, go_write) = pipe()?;
    let (verdict_read, verdict_write) = pipe()?;
    let target = nix::unistd::getpid();

    // SAFETY: the caller guarantees a single-threaded process, so the child may run any code.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(go_write);
            drop(verdict_read);
            let code = map_helper(go_read, verdict_write, target, uid_map, gid_map);
            // Leave without running the parent's atexit handlers or flushing its buffers twice.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(go_read);
            drop(verdict_write);
            let unshared = unshare(CloneFlags::CLONE_NEWUSER);
            // Tell the helper to go on (a byte) or to give up (closing the pipe without one).
            let mut go = std::fs::File::from(go_write);
            if unshared.is_ok() {
                let _ = go.write_all(b"1");
            }
            drop(go);
            let verdict = read_verdict(verdict_read);
            let _ = waitpid(child, None);
            unshared.map_err(UsernsError::Unshare)?;
            verdict
        }
    }
}

/// Runs in the forked helper: waits until the parent has unshared, maps it, reports back.
fn map_helper(
    go_read: OwnedFd,
    verdict_write: OwnedFd,
    target: Pid,
    uid_map: &IdMap,
    gid_map: &IdMap,
) -> i32 {
    let mut go = [0u8; 1];
    let mut go_pipe = std::fs::File::from(go_read);
    if go_pipe.read(&mut go).unwrap_or(0) != 1 {
        return 1;
    }
    let result = run_map_tools(target.as_raw(), uid_map, gid_map);
    let message = match result {
        Ok(()) => String::new(),
        Err(e) => encode_error(&e),
    };
    let mut out = std::fs::File::from(verdict_write);
    let _ = out.write_all(message.as_bytes());
    0
}

/// The helper reports an empty string for success, or `tool\0ranges\0message` for a failure.
fn encode_error(error: &UsernsError) -> String {
    match error {
        UsernsError::ToolMissing { tool } => format!("{tool}\0missing"),
        UsernsError::MapTool {
            tool,
            ranges,
            message,
        } => format!("{tool}\0{ranges}\0{message}"),
        other => format!("helper\0\0{other}"),
    }
}

fn read_verdict(verdict_read: OwnedFd) -> Result<(), UsernsError> {
    let mut text = String::new();
    let _ = std::fs::File::from(verdict_read).read_to_string(&mut text);
    if text.is_empty() {
        return Ok(());
    }
    let mut parts = text.splitn(3, '\0');
    let tool = match parts.next() {
        Some("newgidmap") => "newgidmap",
        Some("newuidmap") => "newuidmap",
        _ => "user namespace helper",
    };
    match (parts.next(), parts.next()) {
        (Some("missing"), None) => Err(UsernsError::ToolMissing { tool }),
        (ranges, message) => Err(UsernsError::MapTool {
            tool,
            ranges: ranges.unwrap_or_default().to_string(),
            message: message.unwrap_or_default().to_string(),
        }),
    }
}

/// Runs newuidmap and newgidmap at the same time (each is a setuid program that takes a few
/// milliseconds to start); the uid map's error wins.
fn run_map_tools(pid: i32, uid_map: &IdMap, gid_map: &IdMap) -> Result<(), UsernsError> {
    let uid_tool = spawn_map_tool("newuidmap", pid, uid_map);
    let gid_tool = spawn_map_tool("newgidmap", pid, gid_map);
    let uid_result = uid_tool.and_then(|child| finish_map_tool("newuidmap", uid_map, child));
    let gid_result = gid_tool.and_then(|child| finish_map_tool("newgidmap", gid_map, child));
    uid_result.and(gid_result)
}

fn spawn_map_tool(
    tool: &'static str,
    pid: i32,
    map: &IdMap,
) -> Result<std::process::Child, UsernsError> {
    Command::new(tool)
        .arg(pid.to_string())
        .args(map.tool_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => UsernsError::ToolMissing { tool },
            _ => UsernsError::MapTool {
                tool,
                ranges: map.to_string(),
                message: e.to_string(),
            },
        })
}

fn finish_map_tool(
    tool: &'static str,
    map: &IdMap,
    child: std::process::Child,
) -> Result<(), UsernsError> {
    let output = child.wait_with_output().map_err(|e| UsernsError::MapTool {
        tool,
        ranges: map.to_string(),
        message: e.to_string(),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(UsernsError::MapTool {
        tool,
        ranges: map.to_string(),
        message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// After the maps are written the process still has its old (host) ids, which are now
/// namespace root: switch the real and saved ids too, so files it creates are root's inside.
fn become_namespace_root() -> Result<(), UsernsError> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)?;
    Ok(())
}
