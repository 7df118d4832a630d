//! `podrun exec -t` (a terminal, driven here through a pty of the test's own), signal
//! forwarding by `podrun exec`, and `podrun cp` in both directions: the real binary as the
//! test user, on busybox pods.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::TestEnv;

/// Two busybox containers sharing an emptyDir at /shared; `main` has a few files to copy.
const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: box
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  volumes:
  - name: shared
    emptyDir: {}
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "mkdir -p /data/tree/sub && echo one > /data/tree/one.txt && echo two > /data/tree/sub/two.txt && chmod 0750 /data/tree/sub && chmod 0604 /data/tree/one.txt && ln -s one.txt /data/tree/link && ln -s /etc /data/etc-link && touch /ready && exec sleep 3600"]
    volumeMounts:
    - name: shared
      mountPath: /shared
  - name: side
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - name: shared
      mountPath: /shared
  - name: done
    image: busybox
    command: ["true"]
"#;

/// Plays [`POD`] and waits until `main` has written its files; takes it down when dropped.
struct Pod<'a> {
    env: &'a TestEnv,
}

impl<'a> Pod<'a> {
    fn start(env: &'a TestEnv) -> Pod<'a> {
        env.write_home_file("box.yaml", POD);
        let file = env.home().join("box.yaml");
        env.podrun_ok(&["play", file.to_str().unwrap()]);
        let pod = Pod { env };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pod.exec(&["test", "-f", "/ready"]).status.success() {
            assert!(Instant::now() < deadline, "the pod never got ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        // `done` has ended (the error cases rely on it).
        while !String::from_utf8_lossy(&pod.exec_in("done", &["true"]).stderr)
            .contains("is not running")
        {
            assert!(Instant::now() < deadline, "container `done` never ended");
            std::thread::sleep(Duration::from_millis(200));
        }
        pod
    }

    /// `podrun exec box -c main -- ARGS`.
    fn exec(&self, args: &[&str]) -> Output {
        self.exec_in("main", args)
    }

    fn exec_in(&self, container: &str, args: &[&str]) -> Output {
        let mut full = vec!["exec", "box", "-c", container, "--"];
        full.extend_from_slice(args);
        self.env.podrun(&full)
    }

    fn stdout(&self, container: &str, args: &[&str]) -> String {
        let out = self.exec_in(container, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        let _ = self.env.podrun(&["down", "box"]);
    }
}

/// podrun running with a pty of the test's as its controlling terminal (stdin, stdout and
/// stderr), as in an interactive shell; the test holds the master side.
struct OnTerminal {
    child: Child,
    master: OwnedFd,
}

impl OnTerminal {
    fn spawn(env: &TestEnv, args: &[&str], rows: u16, cols: u16) -> OnTerminal {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let mut command = env.command(podrun_e2e::podrun_bin());
        command
            .args(args)
            .env("TERM", "vt100")
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if nix::libc::setsid() < 0 || nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        // `command` (dropped here) held the last slave descriptors of this process: reads
        // from the master end with EIO once podrun has exited.
        drop(command);
        OnTerminal {
            child,
            master: pty.master,
        }
    }

    fn write(&self, bytes: &[u8]) {
        nix::unistd::write(&self.master, bytes).unwrap();
    }

    fn resize(&self, rows: u16, cols: u16) {
        let size = nix::libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize we own. The kernel sends SIGWINCH to podrun,
        // the terminal's foreground process.
        assert_eq!(
            unsafe { nix::libc::ioctl(self.master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) },
            0
        );
    }

    /// Output until it contains `wanted` (20 s).
    fn read_until(&self, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(wanted) {
            assert!(
                Instant::now() < deadline,
                "never saw {wanted:?} on the terminal: {:?}",
                String::from_utf8_lossy(&seen)
            );
            let mut fds = [nix::libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: nix::libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: poll on one descriptor we own.
            if unsafe { nix::libc::poll(fds.as_mut_ptr(), 1, 200) } > 0 {
                let mut buffer = [0u8; 4096];
                match nix::unistd::read(self.master.as_raw_fd(), &mut buffer) {
                    Ok(n) if n > 0 => seen.extend_from_slice(&buffer[..n]),
                    _ => break,
                }
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Waits for podrun (20 s) and returns its exit code and the rest of the output.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "podrun did not end");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut rest = Vec::new();
        let _ = std::fs::File::from(self.master.try_clone().unwrap()).read_to_end(&mut rest);
        (status.code(), String::from_utf8_lossy(&rest).into_owned())
    }

    /// The local flags of the test's terminal (TCGETS on the master reads the slave's).
    fn local_flags(&self) -> nix::sys::termios::LocalFlags {
        nix::sys::termios::tcgetattr(&self.master)
            .unwrap()
            .local_flags
    }
}

#[test]
fn exec_tty_gives_the_command_a_terminal_of_the_container() {
    let env = TestEnv::new();
    let pod = Pod::start(&env);

    // -it: the command's stdin is a /dev/pts of the container with our size and TERM; the
    // exit code passes through; our terminal is back in cooked mode afterwards.
    let term = OnTerminal::spawn(
        &env,
        &[
            "exec",
            "-it",
            "box",
            "--",
            "sh",
            "-c",
            "tty; stty size; echo term=$TERM; read line; echo got:$line; stty size; exit 3",
        ],
        33,
        101,
    );
    let out = term.read_until("term=");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("33 101"), "{out:?}");
    // Raw while the command runs: no echo, no line editing by our terminal.
    assert!(!term
        .local_flags()
        .contains(nix::sys::termios::LocalFlags::ECHO));
    term.resize(40, 120);
    term.write(b"hello\r");
    let out = term.read_until("40 120");
    assert!(out.contains("got:hello"), "{out:?}");
    let (code, rest) = term.finish();
    assert_eq!(code, Some(3), "{rest}");

    // Keys go to the command: Ctrl-C in raw mode interrupts the command, not podrun.
    let term = OnTerminal::spawn(
        &env,
        &[
            "exec",
            "-it",
            "box",
            "--",
            "sh",
            "-c",
            "echo ready; sleep 100",
        ],
        24,
        80,
    );
    term.read_until("ready");
    term.write(&[3]);
    let (code, rest) = term.finish();
    assert_eq!(code, Some(130), "{rest}");

    // -t without a terminal on stdin: kubectl's warning, and the command runs without one.
    let out = pod.exec_with(&["-t"], &["tty"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unable to use a TTY - input is not a terminal"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "not a tty\n");
    assert_eq!(out.status.code(), Some(1));

    // No console socket or process file is left in the container's state directory.
    let run = env
        .home()
        .parent()
        .unwrap()
        .join("run/podrun/pods/default_box/libcontainer");
    for dir in std::fs::read_dir(run).unwrap() {
        let files = podrun_e2e::list(&dir.unwrap().path());
        assert!(
            !files.iter().any(|f| f.starts_with("tenant-")
                || f.starts_with("podrun-console")
                || f.starts_with("podrun-exec-")),
            "{files:?}"
        );
    }
}

impl Pod<'_> {
    /// `podrun exec FLAGS box -- ARGS` with stdin from /dev/null.
    fn exec_with(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut full = vec!["exec"];
        full.extend_from_slice(flags);
        full.extend_from_slice(&["box", "--"]);
        full.extend_from_slice(args);
        self.env.podrun(&full)
    }
}

#[test]
fn exec_tty_restores_the_terminal_when_podrun_ends() {
    let env = TestEnv::new();
    let _pod = Pod::start(&env);
    let term = OnTerminal::spawn(
        &env,
        &["exec", "-it", "box", "--", "sh", "-c", "echo in; exit 0"],
        24,
        80,
    );
    let before = term.local_flags();
    term.read_until("in");
    let flags_master = term.master.try_clone().unwrap();
    let (code, rest) = term.finish();
    assert_eq!(code, Some(0), "{rest}");
    let after = nix::sys::termios::tcgetattr(&flags_master)
        .unwrap()
        .local_flags;
    assert!(
        after.contains(nix::sys::termios::LocalFlags::ECHO | nix::sys::termios::LocalFlags::ICANON),
        "{after:?} (before: {before:?})"
    );

    // Also when exec fails after raw mode could have been entered: a container that is not
    // running.
    let term = OnTerminal::spawn(
        &env,
        &["exec", "-it", "box", "-c", "done", "--", "true"],
        24,
        80,
    );
    let master = term.master.try_clone().unwrap();
    let (code, rest) = term.finish();
    assert_eq!(code, Some(1), "{rest}");
    assert!(
        rest.contains("container `done` of pod `default/box` is not running"),
        "{rest}"
    );
    let after = nix::sys::termios::tcgetattr(&master).unwrap().local_flags;
    assert!(after.contains(nix::sys::termios::LocalFlags::ECHO));

    // And when the command cannot be started, after raw mode was entered.
    let term = OnTerminal::spawn(
        &env,
        &["exec", "-it", "box", "--", "/no/such/command"],
        24,
        80,
    );
    let master = term.master.try_clone().unwrap();
    let (code, rest) = term.finish();
    assert_ne!(code, Some(0), "{rest}");
    assert!(rest.contains("/no/such/command"), "{rest}");
    let after = nix::sys::termios::tcgetattr(&master).unwrap().local_flags;
    assert!(
        after.contains(nix::sys::termios::LocalFlags::ECHO | nix::sys::termios::LocalFlags::ICANON),
        "{after:?}"
    );
}

/// Starts `podrun exec box -- ARGS` in the background.
fn spawn_exec(env: &TestEnv, args: &[&str]) -> Child {
    let mut full = vec!["exec", "box", "--"];
    full.extend_from_slice(args);
    env.command(podrun_e2e::podrun_bin())
        .args(full)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Waits until `ps` in the container lists a process whose arguments are `args`.
fn wait_for_process(pod: &Pod, args: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pod
        .stdout("main", &["ps", "-o", "args"])
        .lines()
        .any(|l| l.trim() == args)
    {
        assert!(Instant::now() < deadline, "`{args}` never ran");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn exec_forwards_termination_signals_to_the_command() {
    let env = TestEnv::new();
    let pod = Pod::start(&env);
    for (signal, code, marker) in [
        (nix::sys::signal::Signal::SIGTERM, 143, "sleep 101"),
        (nix::sys::signal::Signal::SIGINT, 130, "sleep 102"),
        (nix::sys::signal::Signal::SIGHUP, 129, "sleep 103"),
    ] {
        let seconds = marker.split(' ').nth(1).unwrap();
        let child = spawn_exec(&env, &["sleep", seconds]);
        wait_for_process(&pod, marker);
        let started = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{signal}: {out:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // The command itself ended, not just podrun.
        let ps = pod.stdout("main", &["ps", "-o", "args"]);
        assert!(!ps.lines().any(|l| l.trim() == marker), "{signal}: {ps}");
    }
    // A command that handles the signal decides its own exit code.
    let child = spawn_exec(
        &env,
        &[
            "sh",
            "-c",
            "trap 'echo caught; exit 5' TERM; echo armed; while :; do sleep 1; done",
        ],
    );
    wait_for_process(
        &pod,
        "sh -c trap 'echo caught; exit 5' TERM; echo armed; while :; do sleep 1; done",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "armed\ncaught\n");
}

/// The test user's uid (owner of what `podrun cp` writes on the host).
fn test_uid() -> u32 {
    podrun_e2e::test_user().uid.as_raw()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn cp_out_of_a_container_copies_files_trees_and_links_as_the_user() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    let _pod = Pod::start(&env);
    env.write_home_file("out/.keep", "");
    let out = env.home().join("out");
    let host = |relative: &str| out.join(relative).to_str().unwrap().to_string();

    // A file, to a new name; its mode is kept and it belongs to the user.
    env.podrun_ok(&["cp", "box:/data/tree/one.txt", &host("one.txt")]);
    assert_eq!(
        std::fs::read_to_string(out.join("one.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(mode(&out.join("one.txt")), 0o604);
    assert_eq!(
        std::fs::metadata(out.join("one.txt")).unwrap().uid(),
        test_uid()
    );

    // A tree, to a new name: subdirectory modes and a relative link as a link.
    env.podrun_ok(&["cp", "box:/data/tree", &host("tree")]);
    let tree = out.join("tree");
    assert_eq!(
        std::fs::read_to_string(tree.join("sub/two.txt")).unwrap(),
        "two\n"
    );
    assert_eq!(mode(&tree.join("sub")), 0o750);
    assert_eq!(
        std::fs::read_link(tree.join("link")).unwrap().to_str(),
        Some("one.txt")
    );
    for path in ["tree", "tree/sub", "tree/sub/two.txt", "tree/link"] {
        let meta = std::fs::symlink_metadata(out.join(path)).unwrap();
        assert_eq!(meta.uid(), test_uid(), "{path}");
    }

    // A directory to an existing directory goes inside it; DIR/. merges its contents; a
    // relative path starts at the container's working directory (/).
    env.write_home_file("into/.keep", "");
    let into = env.home().join("into");
    env.podrun_ok(&["cp", "box:data/tree", into.to_str().unwrap()]);
    assert!(into.join("tree/sub/two.txt").is_file());
    env.podrun_ok(&["cp", "box:/data/tree/.", into.to_str().unwrap()]);
    assert!(into.join("one.txt").is_file() && into.join("sub/two.txt").is_file());

    // A link is copied as a link; a path through it resolves in the container (its /etc),
    // never on the host.
    env.podrun_ok(&["cp", "box:/data/etc-link", &host("etc-link")]);
    assert_eq!(
        std::fs::read_link(out.join("etc-link")).unwrap().to_str(),
        Some("/etc")
    );
    env.podrun_ok(&["cp", "box:/data/etc-link/hostname", &host("hostname")]);
    assert_eq!(
        std::fs::read_to_string(out.join("hostname")).unwrap(),
        "box\n"
    );

    // `-`: a tar stream on stdout.
    let output = env.podrun(&["cp", "box:/data/tree/one.txt", "-"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout.len() % 512, 0);
    assert_eq!(&output.stdout[..7], b"one.txt");
    assert!(output.stdout.windows(4).any(|w| w == b"one\n"));
}

#[test]
fn cp_into_a_container_writes_as_its_root_also_into_shared_volumes() {
    let env = TestEnv::new();
    let pod = Pod::start(&env);
    let home = env.home();
    std::fs::create_dir_all(home.join("src/tree/sub")).unwrap();
    std::fs::write(home.join("src/tree/sub/deep.txt"), "deep\n").unwrap();
    std::os::unix::fs::symlink("sub/deep.txt", home.join("src/tree/link")).unwrap();
    // Last: gives everything so far to the test user.
    env.write_home_file("src/file.txt", "from the host\n");
    std::fs::set_permissions(
        home.join("src/tree/sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    std::fs::set_permissions(
        home.join("src/file.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let src = |relative: &str| {
        home.join("src")
            .join(relative)
            .to_str()
            .unwrap()
            .to_string()
    };

    // A file: content, mode, owner 0:0 inside.
    env.podrun_ok(&["cp", &src("file.txt"), "box:/tmp/in.txt"]);
    assert_eq!(
        pod.stdout("main", &["cat", "/tmp/in.txt"]),
        "from the host\n"
    );
    assert_eq!(
        pod.stdout("main", &["stat", "-c", "%u:%g %a", "/tmp/in.txt"]),
        "0:0 640\n"
    );
    // A tree into an existing directory: inside it, with its link and modes, all 0:0.
    env.podrun_ok(&["cp", &src("tree"), "box:/tmp"]);
    let listing = pod.stdout(
        "main",
        &[
            "stat",
            "-c",
            "%n %u:%g %a",
            "/tmp/tree",
            "/tmp/tree/sub",
            "/tmp/tree/sub/deep.txt",
        ],
    );
    assert_eq!(
        listing, "/tmp/tree 0:0 755\n/tmp/tree/sub 0:0 751\n/tmp/tree/sub/deep.txt 0:0 644\n",
        "{listing}"
    );
    assert_eq!(
        pod.stdout("main", &["readlink", "/tmp/tree/link"]),
        "sub/deep.txt\n"
    );
    assert_eq!(pod.stdout("main", &["cat", "/tmp/tree/link"]), "deep\n");
    let ls = pod.stdout("main", &["ls", "-ln", "/tmp/tree/link"]);
    assert!(ls.contains(" 0 ") && ls.contains(" 0 "), "{ls}");

    // Into an emptyDir through one container; the other sees it. -c picks the container.
    env.podrun_ok(&["cp", &src("file.txt"), "box:/shared/note"]);
    assert_eq!(
        pod.stdout("side", &["cat", "/shared/note"]),
        "from the host\n"
    );
    env.podrun_ok(&[
        "cp",
        "-c",
        "side",
        &src("tree/sub/deep.txt"),
        "box:/shared/",
    ]);
    assert_eq!(pod.stdout("main", &["cat", "/shared/deep.txt"]), "deep\n");
    // Only in side's own filesystem:
    env.podrun_ok(&["cp", "-c", "side", &src("file.txt"), "box:/only-side"]);
    assert!(!pod.exec(&["test", "-e", "/only-side"]).status.success());

    // A link in the container resolves inside it: this lands in the container's /etc.
    env.podrun_ok(&["cp", &src("file.txt"), "box:/data/etc-link/planted-by-cp"]);
    assert_eq!(
        pod.stdout("main", &["cat", "/etc/planted-by-cp"]),
        "from the host\n"
    );
    assert!(!std::path::Path::new("/etc/planted-by-cp").exists());
    // Overwriting a file replaces it.
    env.podrun_ok(&["cp", &src("tree/sub/deep.txt"), "box:/tmp/in.txt"]);
    assert_eq!(pod.stdout("main", &["cat", "/tmp/in.txt"]), "deep\n");
    assert_eq!(mode(&home.join("src/tree/sub")), 0o751);
}

#[test]
fn cp_errors_name_the_path_and_the_side() {
    let env = TestEnv::new();
    let _pod = Pod::start(&env);
    env.write_home_file("file.txt", "x");
    let file = env.home().join("file.txt").to_str().unwrap().to_string();
    let out_dir = env.home().to_str().unwrap().to_string();
    // Root's, unreadable for the user: the host's side fails while the container waits.
    let secret = env.home().join("secret");
    std::fs::write(&secret, "s").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let secret = secret.to_str().unwrap().to_string();
    let cases: &[(&[&str], &str)] = &[
        (
            &["box:/nope", &out_dir],
            "`/nope`: no such file or directory in container `main` of pod `default/box`",
        ),
        (
            &["/no/such/host/file", "box:/tmp/"],
            "`/no/such/host/file`: no such file or directory on the host",
        ),
        (
            &[&file, "box:/no/such/dir/x"],
            "destination directory `/no/such/dir` does not exist in container `main` of pod `default/box`",
        ),
        (
            &["box:/data/tree/one.txt", "/no/such/dir/x"],
            "destination directory `/no/such/dir` does not exist on the host",
        ),
        (
            &["box:/data/tree", &file],
            "cannot copy a directory over the file",
        ),
        (&[&secret, "box:/tmp/"], "Permission denied (os error 13) on the host"),
        (&[&file, "nope:/tmp"], "pod nope not found in any namespace"),
        (&[&file, "default/nope:/tmp"], "pod `default/nope` not found"),
        (&["-c", "x", &file, "box:/tmp"], "container `x` is not in pod `default/box`"),
        (
            &["-c", "done", &file, "box:/tmp"],
            "container `done` of pod `default/box` is not running",
        ),
        (&[&file, "./elsewhere"], "is a container path"),
    ];
    for (args, wanted) in cases {
        let mut full = vec!["cp"];
        full.extend_from_slice(args);
        let err = env.podrun_err(&full);
        assert!(err.contains(wanted), "{args:?}: {err}");
    }
}
