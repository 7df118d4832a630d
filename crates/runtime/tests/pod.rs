//! End-to-end test: real rootless containers in a pod.
//!
//! Run as root (the usual case here), the test makes sure the ordinary user `podrun-test`
//! exists with a subordinate id range, then re-executes itself as that user. That process plays
//! the pod supervisor: it enters a user namespace (podrun-userns), becomes the pod sandbox and
//! runs busybox containers with this crate. Back as root, the test checks that no mount and no
//! process of the test is left on the host.
//!
//! Run as an ordinary user with a subordinate id range, the supervisor part runs as that user.
//! Otherwise the test is skipped (with a message).
//!
//! `harness = false`: entering a user namespace needs a single-threaded process, which
//! libtest's harness is not. Timings (`start_container` of busybox `true`, median of 10) are
//! printed; run with `--release` for meaningful numbers.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use podrun_runtime::{
    become_pod_sandbox, create_pod_pid_namespace, delete_container, kill_container,
    remove_container_dirs, start_container, BindMount, ContainerConfig, ContainerInput, Mount,
    Privileges, RuntimeError, SeccompProfile, TmpfsMount,
};

const ROLE_ENV: &str = "PODRUN_RUNTIME_TEST_ROLE";
const DIR_ENV: &str = "PODRUN_RUNTIME_TEST_DIR";
const TEST_USER: &str = "podrun-test";
const TEST_SUBID_RANGE: &str = "200000:65536";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("pod: test");
        return;
    }
    if std::env::var(ROLE_ENV).as_deref() == Ok("supervisor") {
        let dir = PathBuf::from(std::env::var(DIR_ENV).expect("test directory"));
        supervisor(&dir);
        println!("supervisor: all checks passed");
        return;
    }
    host();
}

// ---------------------------------------------------------------------------------------------
// The host side (root, or the invoking user).

fn host() {
    let root = nix::unistd::geteuid().is_root();
    let (user, uid, gid, home) = if root {
        ensure_test_user()
    } else {
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .expect("current user");
        match podrun_userns::MappingPlan::for_current_user() {
            Ok(podrun_userns::MappingPlan::Subordinate { .. }) => {}
            _ => {
                eprintln!(
                    "pod test SKIPPED: user {} has no /etc/subuid and /etc/subgid range (run as root to set up {TEST_USER})",
                    me.name
                );
                return;
            }
        }
        (me.name, me.uid.as_raw(), me.gid.as_raw(), me.dir)
    };
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: install Debian's busybox-static (scripts/install-deps.sh)"
    );

    let dir = tempfile::Builder::new()
        .prefix("podrun-runtime-test.")
        .tempdir_in("/tmp")
        .unwrap();
    nix::unistd::chown(
        dir.path(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();

    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(ROLE_ENV, "supervisor")
        .env(DIR_ENV, dir.path())
        .env("HOME", &home)
        .env("USER", &user)
        .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"))
        .current_dir(dir.path());
    if root {
        // Like a login (runuser, sshd): the child becomes the user, with the user's group as a
        // supplementary group too, before it execs. (Containers must not inherit it.)
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let groups = [gid];
                if libc::setgroups(1, groups.as_ptr()) != 0
                    || libc::setresgid(gid, gid, gid) != 0
                    || libc::setresuid(uid, uid, uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().expect("cannot start the supervisor");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the supervisor did not finish in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        // Leave no container of the failed run behind.
        if let Ok(userns) = fs::read_to_string(dir.path().join("userns")) {
            for process in processes_in_user_namespace(&userns) {
                let pid = process.split(' ').next().unwrap().parse().unwrap();
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        panic!("supervisor failed: {status}");
    }

    // Nothing of the test may be left mounted on the host...
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let test_dir = dir.path().to_str().unwrap();
    let leftovers: Vec<&str> = mountinfo.lines().filter(|l| l.contains(test_dir)).collect();
    assert!(
        leftovers.is_empty(),
        "mounts left on the host: {leftovers:#?}"
    );
    // ... and no process of the pod may be running. The user may have other processes (other
    // tests and benchmarks use it too): the pod's are those in the pod's user namespace.
    let userns = fs::read_to_string(dir.path().join("userns")).expect("supervisor's userns");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let processes = processes_in_user_namespace(&userns);
        if processes.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes of the pod left behind: {processes:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("pod test passed");
}

/// Makes sure `podrun-test` exists with a subordinate id range and a runtime directory.
fn ensure_test_user() -> (String, u32, u32, PathBuf) {
    if nix::unistd::User::from_name(TEST_USER).unwrap().is_none() {
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", TEST_USER])
            .status()
            .expect("useradd");
        // Another test may have created it at the same time.
        assert!(
            status.success() || nix::unistd::User::from_name(TEST_USER).unwrap().is_some(),
            "useradd {TEST_USER} failed"
        );
    }
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        let has_entry = text.lines().any(|l| {
            let owner = l.split(':').next().unwrap_or("");
            owner == TEST_USER || owner == user.uid.to_string()
        });
        if !has_entry {
            let mut text = text;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{TEST_USER}:{TEST_SUBID_RANGE}\n"));
            fs::write(file, text).unwrap();
        }
    }
    let runtime_dir = PathBuf::from(format!("/run/user/{}", user.uid));
    fs::create_dir_all(&runtime_dir).unwrap();
    nix::unistd::chown(&runtime_dir, Some(user.uid), Some(user.gid)).unwrap();
    fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).unwrap();
    (user.name, user.uid.as_raw(), user.gid.as_raw(), user.dir)
}

/// Processes in the user namespace `userns` (as /proc/PID/ns/user reads), as "pid comm".
fn processes_in_user_namespace(userns: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(ns) = fs::read_link(entry.path().join("ns/user")) else {
            continue;
        };
        if ns.to_str() == Some(userns) {
            let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push(format!("{pid} {}", comm.trim()));
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The supervisor side (ordinary user, single-threaded).

struct Pod {
    dir: PathBuf,
    state_root: PathBuf,
    layers: Vec<PathBuf>,
    supervisor: i32,
}

impl Pod {
    fn config(&self, name: &str, script: &str) -> ContainerConfig {
        let logs = self.dir.join("logs");
        fs::create_dir_all(&logs).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))
            .unwrap();
        ContainerConfig {
            id: format!("podrun-test-{}-{name}", std::process::id()),
            state_root: self.state_root.clone(),
            bundle_dir: self.dir.join("bundles").join(name),
            lower_dirs: self.layers.clone(),
            upper_dir: self.dir.join("containers").join(name).join("upper"),
            work_dir: self.dir.join("containers").join(name).join("work"),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![
                "PATH=/bin".into(),
                "HOME=/root".into(),
                format!("CONTAINER={name}"),
            ],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            mounts: vec![],
            join_namespaces_of: self.supervisor,
            pid_namespace: None,
            shm_dir: None,
            stdout: log.try_clone().unwrap().into(),
            stderr: log.into(),
            stdin: ContainerInput::Null,
            hostname: None,
            readonly_rootfs: false,
            privileges: Privileges::default(),
            host_network: false,
            cgroup: None,
        }
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join("logs").join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Deletes the stopped container and its directories, and checks they are gone.
    fn remove(&self, name: &str) {
        let id = format!("podrun-test-{}-{name}", std::process::id());
        delete_container(&self.state_root, &id).unwrap();
        assert!(!self.state_root.join(&id).exists(), "state of {name} left");
        let container_dir = self.dir.join("containers").join(name);
        remove_container_dirs(
            &self.dir.join("bundles").join(name),
            &container_dir.join("upper"),
            &container_dir.join("work"),
        )
        .unwrap();
        assert!(!container_dir.join("upper").exists());
        assert!(!container_dir.join("work").exists());
        let _ = fs::remove_dir(container_dir);
    }

    fn id(&self, name: &str) -> String {
        format!("podrun-test-{}-{name}", std::process::id())
    }
}

/// Waits (up to 30 s) for the container init `pid`, a child of this subreaper.
fn wait_exit(pid: i32, name: &str, pod: &Pod) -> WaitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).unwrap() {
            WaitStatus::StillAlive => {}
            status => return status,
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!(
                "container {name} (pid {pid}) did not end in 30 s; log:\n{}",
                pod.log(name)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_exit(status: WaitStatus, code: i32, name: &str, pod: &Pod) {
    assert!(
        matches!(status, WaitStatus::Exited(_, c) if c == code),
        "container {name}: expected exit {code}, got {status:?}; log:\n{}",
        pod.log(name)
    );
}

fn supervisor(dir: &Path) {
    let plan = podrun_userns::MappingPlan::for_current_user().unwrap();
    assert!(
        matches!(plan, podrun_userns::MappingPlan::Subordinate { .. }),
        "expected a subordinate id map, got {plan:?}"
    );
    podrun_userns::enter_user_namespace(&plan).unwrap();
    become_pod_sandbox("testpod").unwrap();
    let userns = fs::read_link("/proc/self/ns/user").unwrap();
    fs::write(dir.join("userns"), userns.to_str().unwrap()).unwrap();
    assert_eq!(nix::unistd::gethostname().unwrap(), "testpod");

    let pod = Pod {
        dir: dir.to_path_buf(),
        state_root: dir.join("state"),
        layers: make_layers(dir),
        supervisor: std::process::id() as i32,
    };
    let shared = dir.join("shared");
    fs::create_dir_all(&shared).unwrap();
    let hosts = dir.join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.9 testpod\n").unwrap();

    // 1 + 2: a server and a client sharing the pod's network and a directory.
    let mut server = pod.config(
        "server",
        "hostname; id -u; cat /proc/self/uid_map; cat /etc/motd; grep Seccomp: /proc/self/status; \
         echo hi > /shared/x; echo served | nc -l -p 8080; echo server-done",
    );
    server.mounts = vec![
        Mount::Bind(BindMount {
            source: shared.clone(),
            destination: "/shared".into(),
            readonly: false,
        }),
        Mount::Bind(BindMount {
            source: hosts.clone(),
            destination: "/etc/hosts".into(),
            readonly: true,
        }),
    ];
    let server_pid = start_container(server).unwrap();
    let mut client = pod.config(
        "client",
        "i=0; until echo ping | nc 127.0.0.1 8080 > /tmp/got; do \
           i=$((i+1)); [ $i -ge 200 ] && exit 9; sleep 0.05; done; \
         cat /tmp/got; cat /shared/x; grep testpod /etc/hosts",
    );
    client.mounts = vec![
        Mount::Bind(BindMount {
            source: shared.clone(),
            destination: "/shared".into(),
            readonly: true,
        }),
        Mount::Bind(BindMount {
            source: hosts.clone(),
            destination: "/etc/hosts".into(),
            readonly: true,
        }),
    ];
    let client_pid = start_container(client).unwrap();
    assert_ne!(server_pid, client_pid);
    assert_exit(wait_exit(client_pid, "client", &pod), 0, "client", &pod);
    assert_exit(wait_exit(server_pid, "server", &pod), 0, "server", &pod);
    let server_log = pod.log("server");
    let client_log = pod.log("client");
    println!("--- server log\n{server_log}--- client log\n{client_log}---");
    let server_lines: Vec<&str> = server_log.lines().collect();
    assert_eq!(server_lines[0], "testpod", "pod hostname");
    assert_eq!(server_lines[1], "0", "uid in the container");
    let uid_map: Vec<Vec<&str>> = server_lines[2..4]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let my_uid = nix::unistd::getuid(); // 0 in the namespace; the host uid is in the map
    assert_eq!(my_uid.as_raw(), 0);
    assert_eq!(uid_map[0][0], "0");
    assert_eq!(uid_map[0][2], "1");
    assert_eq!(uid_map[1][0], "1");
    assert_eq!(uid_map[1][2], "65536", "full subordinate map: {uid_map:?}");
    assert_eq!(server_lines[4], "top", "top layer wins");
    assert_eq!(server_lines[5], "Seccomp:\t2", "seccomp filter active");
    assert!(server_lines.contains(&"ping"), "server got the request");
    assert!(server_lines.contains(&"server-done"));
    assert_eq!(
        client_log.lines().collect::<Vec<_>>(),
        ["served", "hi", "10.0.0.9 testpod"]
    );
    assert_eq!(fs::read_to_string(shared.join("x")).unwrap(), "hi\n");
    // The client's writes went to its upper directory.
    assert_eq!(
        fs::read_to_string(dir.join("containers/client/upper/tmp/got")).unwrap(),
        "served\n"
    );
    // Nothing of the containers is mounted in the supervisor's mount namespace.
    assert_eq!(
        fs::read_dir(dir.join("bundles/server/rootfs"))
            .unwrap()
            .count(),
        0
    );
    pod.remove("server");
    pod.remove("client");

    // 3: exit codes.
    let pid = start_container(pod.config("exit3", "exit 3")).unwrap();
    assert_exit(wait_exit(pid, "exit3", &pod), 3, "exit3", &pod);
    pod.remove("exit3");

    // 4: signals. `sleep` is pid 1 of its own pid namespace: it has no SIGTERM handler, so the
    // kernel drops SIGTERM; SIGKILL works.
    let pid = start_container(pod.config("sleep", "exec sleep 100")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill_container(&pod.state_root, &pod.id("sleep"), Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).unwrap(),
        WaitStatus::StillAlive,
        "pid 1 without a handler ignores SIGTERM"
    );
    assert!(matches!(
        delete_container(&pod.state_root, &pod.id("sleep")),
        Err(RuntimeError::StillRunning { .. })
    ));
    kill_container(&pod.state_root, &pod.id("sleep"), Signal::SIGKILL).unwrap();
    assert_eq!(
        wait_exit(pid, "sleep", &pod),
        WaitStatus::Signaled(Pid::from_raw(pid), Signal::SIGKILL, false)
    );
    pod.remove("sleep");
    // A shell that traps SIGTERM ends on it.
    let pid = start_container(pod.config(
        "trap",
        "trap 'echo got-term; exit 143' TERM; echo ready; while :; do sleep 0.05; done",
    ))
    .unwrap();
    wait_for_log(&pod, "trap", "ready");
    kill_container(&pod.state_root, &pod.id("trap"), Signal::SIGTERM).unwrap();
    assert_exit(wait_exit(pid, "trap", &pod), 143, "trap", &pod);
    assert!(pod.log("trap").contains("got-term"));
    // Signalling a container that has ended is not an error.
    kill_container(&pod.state_root, &pod.id("trap"), Signal::SIGTERM).unwrap();
    pod.remove("trap");

    // 5: a pid namespace shared by the pod's containers.
    let pidns = create_pod_pid_namespace().unwrap();
    let mut sleeper = pod.config("shared-sleep", "exec sleep 100");
    sleeper.pid_namespace = Some(pidns.path());
    let sleeper_pid = start_container(sleeper).unwrap();
    let mut looker = pod.config(
        "shared-look",
        "i=0; until grep -q sleep /proc/[0-9]*/comm; do i=$((i+1)); [ $i -ge 100 ] && exit 9; sleep 0.05; done; \
         cat /proc/1/comm; cat /proc/[0-9]*/comm | sort -u",
    );
    looker.pid_namespace = Some(pidns.path());
    let looker_pid = start_container(looker).unwrap();
    assert_exit(
        wait_exit(looker_pid, "shared-look", &pod),
        0,
        "shared-look",
        &pod,
    );
    let look = pod.log("shared-look");
    assert!(look.starts_with("pause\n"), "pid 1: {look}");
    assert!(look.contains("sleep"), "{look}");
    // Not pid 1 there: SIGTERM ends it.
    kill_container(&pod.state_root, &pod.id("shared-sleep"), Signal::SIGTERM).unwrap();
    assert_eq!(
        wait_exit(sleeper_pid, "shared-sleep", &pod),
        WaitStatus::Signaled(Pid::from_raw(sleeper_pid), Signal::SIGTERM, false)
    );
    pod.remove("shared-look");
    pod.remove("shared-sleep");
    pidns.shutdown().unwrap();

    // 6: read-only root, read-only and tmpfs mounts, a shared /dev/shm, a hostname of its own,
    // no seccomp, another user.
    let shm = dir.join("shm");
    fs::create_dir_all(&shm).unwrap();
    fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777)).unwrap();
    let mut ro = pod.config(
        "readonly",
        "touch /x 2>/dev/null && exit 1; touch /ro/y 2>/dev/null && exit 2; \
         echo w > /scratch/z || exit 3; echo s > /dev/shm/z || exit 4; \
         hostname; id; grep Seccomp: /proc/self/status; echo ok",
    );
    ro.readonly_rootfs = true;
    ro.hostname = Some("own".into());
    ro.privileges.seccomp = SeccompProfile::Unconfined;
    ro.shm_dir = Some(shm.clone());
    ro.mounts = vec![
        Mount::Bind(BindMount {
            source: shared.clone(),
            destination: "/ro".into(),
            readonly: true,
        }),
        Mount::Tmpfs(TmpfsMount {
            destination: "/scratch".into(),
            size_bytes: Some(1 << 20),
            mode: None,
            readonly: false,
        }),
    ];
    let pid = start_container(ro).unwrap();
    assert_exit(wait_exit(pid, "readonly", &pod), 0, "readonly", &pod);
    assert_eq!(
        pod.log("readonly").lines().collect::<Vec<_>>(),
        ["own", "uid=0(root) gid=0(root)", "Seccomp:\t0", "ok"]
    );
    assert_eq!(fs::read_to_string(shm.join("z")).unwrap(), "s\n");
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        "testpod",
        "pod hostname kept"
    );
    pod.remove("readonly");
    let mut user = pod.config("user", "id; touch /home-less 2>/dev/null || echo denied");
    user.uid = 1000;
    user.gid = 1000;
    user.additional_gids = vec![10, 20];
    let pid = start_container(user).unwrap();
    assert_exit(wait_exit(pid, "user", &pod), 0, "user", &pod);
    assert_eq!(
        pod.log("user"),
        "uid=1000(user) gid=1000(user) groups=10,20\ndenied\n"
    );
    pod.remove("user");

    // 7: more layers than fit in mount(2)'s option page: the fsconfig `lowerdir+` path.
    let mut many = pod.config("many-layers", "cat /etc/motd; ls /layer-extra");
    let extra = dir.join("layers").join("extra");
    for i in 0..120 {
        let layer = extra.join(format!("{i:048}"));
        fs::create_dir_all(&layer).unwrap();
    }
    fs::create_dir_all(extra.join(format!("{:048}", 119)).join("layer-extra/here")).unwrap();
    many.lower_dirs = pod
        .layers
        .iter()
        .cloned()
        .chain((0..120).map(|i| extra.join(format!("{i:048}"))))
        .collect();
    let pid = start_container(many).unwrap();
    assert_exit(wait_exit(pid, "many-layers", &pod), 0, "many-layers", &pod);
    assert_eq!(pod.log("many-layers"), "top\nhere\n");
    pod.remove("many-layers");

    // 8: errors.
    let pid = start_container(pod.config("dup", "exec sleep 100")).unwrap();
    match start_container(pod.config("dup", "true")) {
        Err(RuntimeError::AlreadyExists { .. }) => {}
        other => panic!("second start of the same id: {other:?}"),
    }
    kill_container(&pod.state_root, &pod.id("dup"), Signal::SIGKILL).unwrap();
    wait_exit(pid, "dup", &pod);
    pod.remove("dup");
    let mut missing = pod.config("missing", "");
    missing.args = vec!["/no/such/program".into()];
    match start_container(missing) {
        Err(e) => println!("start of a missing program fails: {e}"),
        Ok(pid) => {
            let status = wait_exit(pid, "missing", &pod);
            println!("start of a missing program: started, then {status:?}");
            assert!(!matches!(status, WaitStatus::Exited(_, 0)));
        }
    }
    pod.remove("missing");
    assert!(
        fs::read_dir(&pod.state_root).unwrap().next().is_none(),
        "state root not empty"
    );

    // 9: timings.
    for profile in [
        SeccompProfile::RuntimeDefault,
        SeccompProfile::RuntimeDefaultNativeOnly,
        SeccompProfile::Unconfined,
    ] {
        let mut starts = Vec::new();
        let mut cycles = Vec::new();
        for _ in 0..10 {
            let mut config = pod.config("timing", "");
            config.args = vec!["/bin/true".into()];
            config.privileges.seccomp = profile.clone();
            let begin = Instant::now();
            let pid = start_container(config).unwrap();
            starts.push(begin.elapsed());
            let status = waitpid(Pid::from_raw(pid), None).unwrap();
            assert_exit(status, 0, "timing", &pod);
            pod.remove("timing");
            cycles.push(begin.elapsed());
        }
        println!(
            "timing ({profile:?}): start_container median {:?} (min {:?}, max {:?}); \
             start+wait+delete+remove dirs median {:?}",
            median(&mut starts),
            starts.iter().min().unwrap(),
            starts.iter().max().unwrap(),
            median(&mut cycles)
        );
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn wait_for_log(pod: &Pod, name: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pod.log(name).contains(text) {
        assert!(Instant::now() < deadline, "{name} never logged {text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two image layers: a busybox base (/bin/busybox and its applets, /etc/passwd, /etc/motd
/// "base") and a top layer that replaces /etc/motd with "top". Returned top first.
fn make_layers(dir: &Path) -> Vec<PathBuf> {
    let base = dir.join("layers").join("base");
    let top = dir.join("layers").join("top");
    for d in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        fs::create_dir_all(base.join(d)).unwrap();
    }
    fs::set_permissions(base.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy("/bin/busybox", base.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            symlink("busybox", base.join("bin").join(applet)).unwrap();
        }
    }
    fs::write(
        base.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    fs::write(base.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    fs::write(base.join("etc/motd"), "base\n").unwrap();
    fs::create_dir_all(top.join("etc")).unwrap();
    fs::write(top.join("etc/motd"), "top\n").unwrap();
    vec![top, base]
}
