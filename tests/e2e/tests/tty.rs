//! Containers' `stdin`, `stdinOnce` and `tty`: `podrun play --wait` attaches a terminal (a
//! pseudo-terminal the test holds, as a user's) to an interactive shell; a terminal nobody
//! is attached to is drained into the log; `stdin` without a terminal stays open. Real
//! rootless pods of busybox, run by the ordinary test user.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::pty::openpty;
use nix::sys::termios::{tcgetattr, LocalFlags};
use podrun_e2e::pods::{down_and_check, wait_for_logs, write_manifest, DownOnDrop};
use podrun_e2e::{podrun_bin, TestEnv};

/// A pod of busybox containers, each `(name, fields, script)`: `fields` are YAML lines
/// such as `stdin: true`, the script runs as `sh -c` (`None`: an interactive `sh`).
fn pod(name: &str, containers: &[(&str, &str, Option<&str>)]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n"
    );
    for (container, fields, script) in containers {
        yaml.push_str(&format!("  - name: {container}\n    image: busybox\n"));
        match script {
            Some(script) => yaml.push_str(&format!("    command: [\"sh\", \"-c\", {script:?}]\n")),
            None => yaml.push_str("    command: [\"sh\"]\n"),
        }
        for field in fields.split(',').filter(|f| !f.is_empty()) {
            yaml.push_str(&format!("    {}\n", field.trim()));
        }
    }
    yaml
}

/// `podrun ARGS` as the test user with a new pseudo-terminal as its controlling terminal,
/// stdin, stdout and stderr; returns it with the terminal's master and slave.
fn spawn_at_terminal(env: &TestEnv, args: &[&str]) -> (Child, OwnedFd, OwnedFd) {
    let pty = openpty(
        Some(&nix::pty::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )
    .unwrap();
    let slave = pty.slave;
    let mut command = env.command(podrun_bin());
    command
        .args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    (child, pty.master, slave)
}

/// Reads the terminal into `screen` until it holds `wanted` (60 s).
fn read_until(master: &OwnedFd, screen: &mut String, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buffer = [0u8; 4096];
    while !screen.contains(wanted) {
        assert!(
            Instant::now() < deadline,
            "the terminal never showed {wanted:?}; it showed:\n{screen}"
        );
        let mut fds = [nix::libc::pollfd {
            fd: master.as_raw_fd(),
            events: nix::libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on a descriptor we hold.
        unsafe { nix::libc::poll(fds.as_mut_ptr(), 1, 200) };
        if fds[0].revents != 0 {
            match nix::unistd::read(master.as_raw_fd(), &mut buffer) {
                Ok(n) => screen.push_str(&String::from_utf8_lossy(&buffer[..n])),
                Err(e) => panic!("the terminal ended ({e}) before {wanted:?}:\n{screen}"),
            }
        }
    }
}

/// Waits (60 s) for the child's exit, reading what it still writes to the terminal.
fn wait_reading(child: &mut Child, master: &OwnedFd, screen: &mut String) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("exited");
        }
        assert!(Instant::now() < deadline, "play did not end:\n{screen}");
        let mut fds = [nix::libc::pollfd {
            fd: master.as_raw_fd(),
            events: nix::libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on a descriptor we hold.
        unsafe { nix::libc::poll(fds.as_mut_ptr(), 1, 100) };
        if fds[0].revents != 0 {
            if let Ok(n) = nix::unistd::read(master.as_raw_fd(), &mut buffer) {
                screen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    }
}

#[test]
fn play_wait_attaches_the_terminal() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "tty-sh.yaml",
        &pod(
            "tty-sh",
            &[
                ("sh", "stdin: true, tty: true", None),
                (
                    "other",
                    "stdin: true, tty: true",
                    Some("echo other-ran; sleep 5"),
                ),
            ],
        ),
    );
    let _down = DownOnDrop(&env, file.clone());
    let (mut child, master, slave) = spawn_at_terminal(&env, &["play", "--wait", &file]);
    let before = tcgetattr(&slave).unwrap();
    let mut screen = String::new();
    read_until(
        &master,
        &mut screen,
        "attached this terminal to default/tty-sh/sh (stdin and tty); only it is attached, not default/tty-sh/other",
    );
    // The shell's prompt, written before play attached, comes too.
    read_until(&master, &mut screen, "/ # ");
    // Raw mode while attached: no echo, no line discipline on the user's side.
    let attached = tcgetattr(&slave).unwrap();
    assert!(!attached.local_flags.contains(LocalFlags::ECHO));
    assert!(!attached.local_flags.contains(LocalFlags::ICANON));

    // Enter is a carriage return in raw mode; the container's terminal makes it a newline.
    nix::unistd::write(
        &master,
        b"[ -t 0 ] && [ -t 1 ] && echo \"tty-$TERM\"; echo hi-$((6*7))\r",
    )
    .unwrap();
    read_until(&master, &mut screen, "hi-42");
    assert!(screen.contains("tty-xterm"), "{screen}");
    let logs = wait_for_logs(&env, &["tty-sh", "-c", "sh"], &["hi-42"]);
    assert!(
        logs.contains("echo hi-$((6*7))"),
        "the echoed input is logged too: {logs}"
    );

    nix::unistd::write(&master, b"exit 3\r").unwrap();
    let code = wait_reading(&mut child, &master, &mut screen);
    // The pod completes when `other` has ended too (exit 0).
    assert_eq!(
        code, 3,
        "play --wait's status is the failed container's code:\n{screen}"
    );
    let after = tcgetattr(&slave).unwrap();
    assert_eq!(
        after.local_flags, before.local_flags,
        "terminal mode restored"
    );
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
    // The attached shell's output came once, on the terminal, not again behind a prefix;
    // the other container's log is printed as usual.
    assert!(!screen.contains("tty-sh/sh |"), "{screen}");
    let other = screen
        .lines()
        .find(|l| l.contains("tty-sh/other |"))
        .unwrap_or_else(|| panic!("no line of `other`:\n{screen}"));
    assert!(other.contains("other-ran"), "{other}");
}

#[test]
fn a_terminal_nobody_attached_to_does_not_block() {
    let env = TestEnv::new();
    // About 250 KB through a terminal that holds a few KiB.
    let script = "[ -t 1 ] && echo is-a-tty; i=0; while [ $i -lt 20000 ]; do echo line-$i-of-the-terminal; i=$((i+1)); done; echo done-writing; exec sleep 3600";
    let file = write_manifest(
        &env,
        "tty-out.yaml",
        &pod("tty-out", &[("main", "tty: true", Some(script))]),
    );
    let _down = DownOnDrop(&env, file.clone());
    // Not at a terminal, and nothing to attach (no stdin): play says nothing about it.
    let out = env.podrun(&["play", &file]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("attach"));
    let logs = wait_for_logs(
        &env,
        &["tty-out"],
        &["is-a-tty", "line-19999-of-the-terminal", "done-writing"],
    );
    assert!(logs.contains("line-0-of-the-terminal"), "{logs}");
    down_and_check(&env, &file, &["tty-out"]);
}

#[test]
fn stdin_without_a_terminal_blocks_until_down() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "stdin-open.yaml",
        &pod(
            "stdin-open",
            &[
                (
                    "reader",
                    "stdin: true",
                    Some("echo reading; read x; echo got-eof"),
                ),
                (
                    "devnull",
                    "",
                    Some("read x; echo null-got-eof; exec sleep 3600"),
                ),
            ],
        ),
    );
    let _down = DownOnDrop(&env, file.clone());
    env.podrun_ok(&["play", &file]);
    // Without `stdin`, stdin is /dev/null: the read ends at once.
    wait_for_logs(&env, &["stdin-open", "-c", "devnull"], &["null-got-eof"]);
    wait_for_logs(&env, &["stdin-open", "-c", "reader"], &["reading"]);
    std::thread::sleep(Duration::from_secs(3));
    let logs = env.podrun_ok(&["logs", "stdin-open", "-c", "reader"]);
    assert!(!logs.contains("got-eof"), "stdin hit its end: {logs}");
    down_and_check(&env, &file, &["stdin-open"]);
}

#[test]
fn play_wait_not_at_a_terminal_says_it_does_not_attach() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "no-term.yaml",
        &pod(
            "no-term",
            &[(
                "shell",
                "stdin: true, stdinOnce: true, tty: true",
                Some("echo started; read y; echo shell-got-eof"),
            )],
        ),
    );
    let _down = DownOnDrop(&env, file.clone());
    // Command::output gives play no terminal: stdin is closed, stdout and stderr pipes.
    let out = env.podrun(&["play", "--wait", "--timeout", "6s", &file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stdout}\n{stderr}");
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("attach")).collect();
    assert_eq!(
        said,
        ["not attaching default/no-term/shell: it has stdin and tty, but play's stdin is not a terminal"]
    );
    assert!(stdout.contains("no-term/shell | started"), "{stdout}");
    // Its stdin stayed open (nobody attached, so stdinOnce did not close it either).
    assert!(!stdout.contains("shell-got-eof"), "{stdout}");
    // No terminal control sequences where there is no terminal.
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{stdout}\n{stderr}"
    );
}
