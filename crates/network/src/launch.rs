//! The forked launcher both helpers are started through: a child of the supervisor that waits
//! on a pipe until the pod's network namespace exists, then execs the helper.

use std::ffi::CString;
use std::os::fd::RawFd;

/// What the forked launcher does: everything allocated before the fork.
pub(crate) struct Launch {
    pub argv: Vec<CString>,
    pub cwd: CString,
    /// The read end of the release pipe: a byte releases, end-of-file gives up.
    pub go: RawFd,
    /// The helper's stdout and stderr.
    pub log: RawFd,
    /// Descriptors the helper inherits (their close-on-exec flag is cleared).
    pub keep: Vec<RawFd>,
    /// `Some(pid)`: the launcher (and the helper it becomes) gets SIGKILL when its parent,
    /// `pid`, dies (`PR_SET_PDEATHSIG`, kept across `execve`).
    pub die_with_parent: Option<libc::pid_t>,
    /// `Some(path)`: once released, the launcher opens this namespace file (e.g.
    /// `/proc/PID/ns/net`) and hands it to the helper as descriptor [`NAMESPACE_FD`].
    pub namespace: Option<CString>,
    /// `Some(vars)`: the helper's whole environment (`NAME=value`); `None`: the supervisor's.
    pub env: Option<Vec<CString>>,
}

/// The supervisor's environment with `name` set to `value` (appended, `:`-separated, to a
/// value already there), for [`Launch::env`].
pub(crate) fn environment_with(name: &str, value: &str) -> Vec<CString> {
    use std::os::unix::ffi::OsStrExt;
    let mut vars: Vec<CString> = Vec::new();
    let mut merged = value.to_string();
    for (key, current) in std::env::vars_os() {
        if key == name {
            merged = format!("{}:{value}", current.to_string_lossy());
            continue;
        }
        let mut entry = key.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(current.as_bytes());
        if let Ok(entry) = CString::new(entry) {
            vars.push(entry);
        }
    }
    vars.extend(CString::new(format!("{name}={merged}")).ok());
    vars
}

/// The descriptor a namespace opened by the launcher has in the helper.
pub(crate) const NAMESPACE_FD: RawFd = 3;

impl Launch {
    /// In the forked child: wait to be released, then exec the helper; never returns.
    /// Forks the launcher child, which runs [`Launch::run`]; returns its pid. The caller must
    /// be single-threaded (the child only makes system calls on memory prepared before the
    /// fork, then execs or `_exit`s).
    pub fn fork(self, helper: &str) -> Result<nix::unistd::Pid, crate::NetworkError> {
        // SAFETY: the caller is single-threaded; see above.
        match unsafe { nix::unistd::fork() }
            .map_err(|e| crate::NetworkError::io(format!("cannot fork {helper}"))(e.into()))?
        {
            nix::unistd::ForkResult::Child => self.run(),
            nix::unistd::ForkResult::Parent { child } => Ok(child),
        }
    }

    /// A directory path as the launcher's working directory.
    pub fn cwd_of(dir: &std::path::Path) -> Result<CString, crate::NetworkError> {
        use std::os::unix::ffi::OsStrExt;
        CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
            crate::NetworkError::io("the runtime directory")(
                std::io::ErrorKind::InvalidInput.into(),
            )
        })
    }

    pub fn run(mut self) -> ! {
        // SAFETY: plain system calls in a single-threaded child on memory prepared before the
        // fork; the process ends by execv or _exit.
        unsafe {
            if let Some(parent) = self.die_with_parent {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                // The parent may have died before the prctl.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            // The supervisor's handlers would write into its signal pipe: until the exec
            // resets them, a signal must act on the launcher itself. SIGPIPE in particular
            // must not be ignored: pasta refuses to start when it finds it ignored.
            for signal in [
                libc::SIGCHLD,
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGHUP,
                libc::SIGPIPE,
            ] {
                libc::signal(signal, libc::SIG_DFL);
            }
            // Hold none of the supervisor's descriptors while waiting (the ready pipe to
            // `podrun play` would never see end-of-file).
            let mut waiting = self.keep.clone();
            waiting.push(self.go);
            waiting.push(self.log);
            close_all_but(&mut waiting);
            let mut byte = 0u8;
            let released = loop {
                let n = libc::read(self.go, (&mut byte as *mut u8).cast(), 1);
                if n < 0 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                break n == 1;
            };
            if !released {
                libc::_exit(0);
            }
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            libc::dup2(null, 0);
            libc::dup2(self.log, 1);
            libc::dup2(self.log, 2);
            if let Some(path) = &self.namespace {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                if fd < 0 || libc::dup2(fd, NAMESPACE_FD) < 0 {
                    let message = b"podrun: cannot open the pod's network namespace\n";
                    libc::write(2, message.as_ptr().cast(), message.len());
                    libc::_exit(126);
                }
                self.keep.push(NAMESPACE_FD);
            }
            close_all_but(&mut self.keep);
            for &fd in &self.keep {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            if libc::chdir(self.cwd.as_ptr()) == 0 {
                let mut argv: Vec<*const libc::c_char> =
                    self.argv.iter().map(|a| a.as_ptr()).collect();
                argv.push(std::ptr::null());
                match &self.env {
                    Some(env) => {
                        let mut envp: Vec<*const libc::c_char> =
                            env.iter().map(|e| e.as_ptr()).collect();
                        envp.push(std::ptr::null());
                        libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
                    }
                    None => {
                        libc::execv(argv[0], argv.as_ptr());
                    }
                }
            }
            let message = b"podrun: cannot exec the network helper\n";
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::_exit(127);
        }
    }
}

/// Closes every descriptor from 3 up, except `keep` (sorted in place).
pub(crate) fn close_all_but(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut from: u32 = 3;
    for &fd in keep.iter() {
        if fd < 0 {
            continue;
        }
        let fd = fd as u32;
        if fd > from {
            // SAFETY: close_range only closes descriptors.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = from.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// The number of threads of this process (a fork is safe only with one).
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The first executable `name` in the directories of `path` (a PATH value).
pub(crate) fn find_in_path(name: &str, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The last `lines` lines of a helper's log, as an error shows them (`:\n…`), or nothing.
pub(crate) fn log_tail(log: &str, lines: usize) -> String {
    let tail: Vec<&str> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(lines)
        .collect();
    if tail.is_empty() {
        return String::new();
    }
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(":\n{}", tail.join("\n"))
}
