//! Pods under stress: supervisors and podrun commands killed at any moment, plays and downs
//! racing each other, many pods at once, descriptor and zombie hygiene, capped logs, a full
//! disk and a subordinate id range too small. Everything runs as the ordinary test user.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{podrun_bin, TestEnv};

/// A pod whose containers carry `marker` in their command line, to find them in /proc.
fn marked_pod(name: &str, marker: u32) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: busybox
    command: ["sleep", "{marker}"]
  - name: b
    image: busybox
    command: ["sh", "-c", "exec sleep {marker}"]
"#
    )
}

/// Live processes (not zombies) whose command line is `sleep MARKER`.
fn marked_processes(marker: u32) -> Vec<i64> {
    let wanted = format!("sleep\0{marker}\0");
    let mut found = Vec::new();
    for (pid, dir) in processes() {
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        if cmdline == wanted.as_bytes() && is_live(pid) {
            found.push(pid);
        }
    }
    found
}

/// Waits until no `sleep MARKER` process is left.
fn assert_none_left(marker: u32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let left = marked_processes(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: processes left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nothing of pod `name` is left: no runtime or data directory, not in `ps`.
fn assert_pod_gone(env: &TestEnv, name: &str) {
    assert!(
        !runtime_dir(env, name).exists(),
        "runtime dir of {name} left"
    );
    assert!(!data_dir(env, name).exists(), "data dir of {name} left");
    let pods = pod_list(env);
    assert!(
        pods.iter().all(|p| p["metadata"]["name"] != name),
        "{pods:#?}"
    );
}

fn spawn_podrun(env: &TestEnv, args: &[&str]) -> Child {
    env.command(podrun_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start podrun")
}

fn kill9(pid: i64) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The supervisor's pid once its pid file is there, within `within`.
fn supervisor_pid(env: &TestEnv, pod: &str, within: Duration) -> Option<i64> {
    let file = runtime_dir(env, pod).join("supervisor.pid");
    let deadline = Instant::now() + within;
    loop {
        if let Some(pid) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Some(pid);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_supervisor_killed_at_any_moment_takes_its_pod_along_and_down_cleans_up() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let marker = 3701;
    let file = write_manifest(&env, "k.yaml", &marked_pod("k", marker));
    let _down = DownOnDrop(&env, file.clone());
    // From right after the supervisor starts to well after the pod runs.
    for delay_ms in [0u64, 5, 15, 30, 60, 120, 250, 600] {
        let mut play = spawn_podrun(&env, &["play", &file]);
        let supervisor = supervisor_pid(&env, "k", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("no supervisor.pid (delay {delay_ms} ms)"));
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill9(supervisor);
        let status = play.wait().unwrap();
        assert_none_left(
            marker,
            Duration::from_secs(5),
            &format!("supervisor killed after {delay_ms} ms (play: {status})"),
        );
        if status.success() {
            // The pod had started: it shows as lost.
            let json = pod_json(&env, "k");
            assert_eq!(json["status"], "Lost", "{json}");
        }
        let down = env.podrun(&["down", "k"]);
        assert!(down.status.success(), "down after {delay_ms} ms");
        assert_pod_gone(&env, "k");
    }
}

#[test]
fn a_play_killed_halfway_leaves_what_down_cleans_and_the_next_play_works() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let marker = 3702;
    let file = write_manifest(&env, "p.yaml", &marked_pod("p", marker));
    let _down = DownOnDrop(&env, file.clone());
    for delay_ms in [0u64, 10, 25, 50, 100, 200] {
        let mut play = spawn_podrun(&env, &["play", &file]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill9(play.id() as i64);
        let _ = play.wait();
        // What was started may go on (the supervisor is detached): down ends it all.
        env.podrun_ok(&["down", "p"]);
        assert_none_left(marker, Duration::from_secs(10), "after down");
        assert_pod_gone(&env, "p");
    }
    env.podrun_ok(&["play", &file]);
    assert_eq!(pod_json(&env, "p")["status"], "Running");
    down_and_check(&env, &file, &["p"]);
}

#[test]
fn a_down_killed_halfway_is_finished_by_the_next_down() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let marker = 3703;
    let file = write_manifest(&env, "d.yaml", &marked_pod("d", marker));
    let _down = DownOnDrop(&env, file.clone());
    for delay_ms in [0u64, 5, 20, 60] {
        env.podrun_ok(&["play", &file]);
        let mut down = spawn_podrun(&env, &["down", "d"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill9(down.id() as i64);
        let _ = down.wait();
        let again = env.podrun(&["down", "d"]);
        assert!(again.status.success(), "second down after {delay_ms} ms");
        assert_none_left(marker, Duration::from_secs(10), "after the second down");
        assert_pod_gone(&env, "d");
    }
}

#[test]
fn ten_pods_played_at_once_all_run() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let names: Vec<String> = (0..10).map(|i| format!("many{i}")).collect();
    let files: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            write_manifest(
                &env,
                &format!("{name}.yaml"),
                &marked_pod(name, 3710 + i as u32),
            )
        })
        .collect();
    let _downs: Vec<DownOnDrop> = files.iter().map(|f| DownOnDrop(&env, f.clone())).collect();
    let plays: Vec<Child> = files
        .iter()
        .map(|f| spawn_podrun(&env, &["play", f]))
        .collect();
    for (play, name) in plays.into_iter().zip(&names) {
        let output = play.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "play {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for name in &names {
        let json = pod_json(&env, name);
        assert_eq!(json["status"], "Running", "{json}");
        assert_eq!(json["ready"], "2/2", "{json}");
    }
    let mut args = vec!["down"];
    args.extend(names.iter().map(String::as_str));
    env.podrun_ok(&args);
    for (i, name) in names.iter().enumerate() {
        assert_none_left(3710 + i as u32, Duration::from_secs(10), name);
        assert_pod_gone(&env, name);
    }
}

#[test]
fn of_two_plays_of_one_pod_exactly_one_wins() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let file = write_manifest(&env, "twin.yaml", &marked_pod("twin", 3720));
    let _down = DownOnDrop(&env, file.clone());
    for _ in 0..3 {
        let first = spawn_podrun(&env, &["play", &file]);
        let second = spawn_podrun(&env, &["play", &file]);
        let outputs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        let won: Vec<_> = outputs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(won.len(), 1, "exactly one play wins");
        let lost = outputs.iter().find(|o| !o.status.success()).unwrap();
        let err = String::from_utf8_lossy(&lost.stderr);
        assert!(
            err.contains("pod `default/twin` already exists") && err.contains("podrun down twin"),
            "{err}"
        );
        assert_eq!(pod_json(&env, "twin")["status"], "Running");
        down_and_check(&env, &file, &["twin"]);
    }
}

#[test]
fn a_down_racing_a_play_leaves_nothing() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let marker = 3721;
    let file = write_manifest(&env, "race.yaml", &marked_pod("race", marker));
    let _down = DownOnDrop(&env, file.clone());
    for delay_ms in [20u64, 40, 80, 150] {
        let play = spawn_podrun(&env, &["play", &file]);
        // Once play has made the pod's directory (it holds the pod's lock from then on).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !runtime_dir(&env, "race").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let down = env.podrun(&["down", "race"]);
        assert!(down.status.success(), "down after {delay_ms} ms");
        let _ = play.wait_with_output().unwrap();
        assert_none_left(marker, Duration::from_secs(10), "after down");
        assert_pod_gone(&env, "race");
    }
}

/// Descriptors open in process `pid` (as root, from the host).
fn open_fds(pid: i64) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn containers_hold_only_their_standard_descriptors_and_nothing_becomes_a_zombie() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "fds.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: fds
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: busybox
    command: ["sh", "-c", "ls /proc/self/fd > /shared/init-fds"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "cat /shared/init-fds; exec sleep 3730"]
    volumeMounts: [{name: shared, mountPath: /shared}]
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo started > /shared/hook"]}
  - name: crasher
    image: busybox
    command: ["sh", "-c", "sleep 0.3 & sleep 0.3 & exit 1"]
  volumes:
  - name: shared
    emptyDir: {}
"#,
    );
    let _down = DownOnDrop(&env, file.clone());
    env.podrun_ok(&["play", &file]);
    // The init container's shell saw 0, 1, 2 and the directory `ls` opened itself (3).
    let logs = wait_for_logs(&env, &["fds", "-c", "main"], &["0"]);
    let fds: Vec<&str> = logs.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{logs}");
    // Probes and restarts have a few seconds to leave zombies or descriptors behind.
    wait_for_logs(&env, &["fds", "-c", "main"], &["0"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while pod_json(&env, "fds")["restarts"].as_u64().unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "the crasher restarts");
        std::thread::sleep(Duration::from_millis(200));
    }
    let json = pod_json(&env, "fds");
    let state = &json["state"];
    let main = state["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap()["pid"]
        .as_i64()
        .unwrap();
    let fds = open_fds(main);
    let numbers: Vec<&str> = fds.iter().map(|f| f.split(' ').next().unwrap()).collect();
    assert_eq!(numbers, ["0", "1", "2"], "{fds:?}");
    // stdin is /dev/null, stdout and stderr the supervisor's pipes.
    assert!(fds[0].ends_with("/dev/null"), "{fds:?}");
    assert!(
        fds[1].contains("pipe:") && fds[2].contains("pipe:"),
        "{fds:?}"
    );
    // A process started by exec gets the same three (looked at from the host: a busybox
    // `ls` in the container would run in the shell's process and show its own directory fd).
    let mut exec = spawn_podrun(&env, &["exec", "fds", "-c", "main", "--", "sleep", "3731"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exec_pid = loop {
        if let Some(&pid) = marked_processes(3731).first() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the exec'd process never showed");
        std::thread::sleep(Duration::from_millis(20));
    };
    let exec_fds = open_fds(exec_pid);
    let numbers: Vec<&str> = exec_fds
        .iter()
        .map(|f| f.split(' ').next().unwrap())
        .collect();
    assert_eq!(numbers, ["0", "1", "2"], "{exec_fds:?}");
    kill9(exec_pid);
    let _ = exec.wait();

    // No zombie among the supervisor's children or the pod's processes.
    let supervisor = state["supervisor_pid"].as_i64().unwrap();
    let userns = state["user_namespace"].as_str().unwrap().to_string();
    let zombies = zombies_of(supervisor, &userns);
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    down_and_check(&env, &file, &["fds"]);
}

/// Zombie processes left to podrun to reap: children of the supervisor `parent`, or of a
/// podrun process of the pod's user namespace `userns` (the watchdog, a shared pid
/// namespace's `/pause`). Zombies under a container's own pid 1 are the container's business,
/// as on a cluster. A process that just ended is a zombie for a moment: each is looked at
/// twice, 500 ms apart.
fn zombies_of(parent: i64, userns: &str) -> Vec<String> {
    let stat_of = |pid: i64| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let comm_of = |pid: i64| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let scan = || -> Vec<(i64, String)> {
        let mut found = Vec::new();
        for (pid, _) in processes() {
            let Some(stat) = stat_of(pid) else { continue };
            let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            let (state, ppid) = (rest[0], rest[1].parse::<i64>().unwrap_or(0));
            if state != "Z" {
                continue;
            }
            let podrun_parent = ["podrun", "podrun-watchdog", "pause"]
                .contains(&comm_of(ppid).as_str())
                && std::fs::read_link(format!("/proc/{ppid}/ns/user"))
                    .is_ok_and(|ns| ns.to_str() == Some(userns));
            if ppid == parent || podrun_parent {
                found.push((pid, stat.clone()));
            }
        }
        found
    };
    let first = scan();
    if first.is_empty() {
        return Vec::new();
    }
    std::thread::sleep(Duration::from_millis(500));
    let second = scan();
    first
        .into_iter()
        .filter(|(pid, _)| second.iter().any(|(p, _)| p == pid))
        .map(|(_, stat)| stat)
        .collect()
}

#[test]
fn a_chatty_container_cannot_fill_the_disk() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[logs]\nmax_size = \"1MiB\"\n",
        podrun_e2e::registry()
    ));
    let file = write_manifest(
        &env,
        "chatty.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: chatty
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: talk
    image: busybox
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \"line $i $(printf '%0200d' 0)\"; done"]
"#,
    );
    let _down = DownOnDrop(&env, file.clone());
    env.podrun_ok(&["play", &file]);
    let logs = runtime_dir(&env, "chatty").join("logs");
    let size = |name: &str| {
        std::fs::metadata(logs.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    // The container writes megabytes a second; wait for a few rotations.
    let deadline = Instant::now() + Duration::from_secs(30);
    while size("talk.log.1") == 0 {
        assert!(Instant::now() < deadline, "the log was never rotated");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..20 {
        let total = size("talk.log") + size("talk.log.1");
        assert!(total <= (1 << 20) + (256 << 10), "{total} bytes of logs");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The newest lines are there, in order, with nothing but whole lines.
    let out = env.podrun_ok(&["logs", "chatty", "--tail", "3"]);
    let numbers: Vec<u64> = out
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3, "{out}");
    assert!(
        numbers[0] + 1 == numbers[1] && numbers[1] + 1 == numbers[2],
        "{numbers:?}"
    );
    assert!(numbers[0] > 3000, "the newest lines: {numbers:?}");
    // `logs -f` follows the file across rotations: every line once, in order.
    // (Into a file: a pipe nobody reads while the test sleeps would stop it at 64 KiB.)
    let out_path = env.home().join("follow.txt");
    let mut follow = env
        .command(podrun_bin())
        .args(["logs", "-f", "chatty"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    // At least 4 s of following (several rotations), and until it has printed something:
    // on a loaded machine the first lines can take a while.
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let printed = std::fs::read(&out_path).unwrap_or_default();
        let lines = printed.iter().filter(|&&b| b == b'\n').count();
        if (started.elapsed() >= Duration::from_secs(4) && lines > 1000)
            || started.elapsed() > Duration::from_secs(30)
        {
            break;
        }
    }
    kill9(follow.id() as i64);
    let _ = follow.wait();
    let text = std::fs::read_to_string(&out_path).unwrap();
    // Whole lines only: the kill may cut the last one.
    let whole = &text[..text.rfind('\n').unwrap_or(0)];
    let numbers: Vec<u64> = whole
        .lines()
        .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
        .collect();
    let rotated_while_following = size("talk.log.1") > 0;
    assert!(rotated_while_following);
    assert!(numbers.len() > 1000, "{} lines", numbers.len());
    let gaps: Vec<_> = numbers.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(gaps.is_empty(), "lines missing or repeated around {gaps:?}");
    down_and_check(&env, &file, &["chatty"]);
}

#[test]
fn a_too_small_subordinate_range_gives_a_clear_error_and_leaves_nothing() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    // The test user's range is 65536 ids; uid 70000 in the pod is beyond it.
    let file = write_manifest(
        &env,
        "far.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: far
spec:
  securityContext:
    runAsUser: 70000
  containers:
  - name: a
    image: busybox
    command: ["sleep", "3740"]
"#,
    );
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains("70000") && err.contains("/etc/subuid"),
        "{err}"
    );
    assert_none_left(3740, Duration::from_secs(5), "after the failed play");
    assert_pod_gone(&env, "far");
    // The store is sound: the image still runs.
    let ok = write_manifest(&env, "near.yaml", &marked_pod("near", 3741));
    env.podrun_ok(&["play", &ok]);
    down_and_check(&env, &ok, &["near"]);
}

/// A tmpfs of `size` mounted over the environment's data directory (XDG_DATA_HOME), owned
/// by the test user; unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(env: &TestEnv, size: &str) -> SmallDisk {
        let data = env
            .storage()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success());
        let owner = std::fs::metadata(env.home()).unwrap();
        std::os::unix::fs::chown(
            &data,
            Some(std::os::unix::fs::MetadataExt::uid(&owner)),
            Some(std::os::unix::fs::MetadataExt::gid(&owner)),
        )
        .unwrap();
        SmallDisk(data)
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_pulls_and_plays_clearly_and_leaves_the_store_sound() {
    let env = TestEnv::new();
    let disk = SmallDisk::mount(&env, "300M");
    // The reserve podrun keeps free (256 MiB by default) leaves no room for the nginx image.
    let image = "nginx:1.23";
    let err = env.podrun_err(&["pull", "-q", image]);
    assert!(
        err.contains("free") || err.contains("space"),
        "names the problem: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let images = env.podrun_ok(&["images", "-o", "json"]);
    assert!(!images.contains("nginx"), "nothing trusted: {images}");

    // A pod cannot be made on a disk with no room at all: a clear error, nothing left.
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let filler = env.storage().parent().unwrap().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=400"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let file = write_manifest(&env, "full.yaml", &marked_pod("full", 3750));
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains("No space left") || err.contains("space"),
        "{err}"
    );
    assert_none_left(3750, Duration::from_secs(5), "after the failed play");
    assert!(!data_dir(&env, "full").exists());
    assert!(!runtime_dir(&env, "full").exists());

    // With room again, the same store pulls and runs.
    std::fs::remove_file(&filler).unwrap();
    disk.resize("1G");
    env.podrun_ok(&["pull", "-q", image]);
    env.podrun_ok(&["play", &file]);
    assert_eq!(pod_json(&env, "full")["status"], "Running");
    // (down_and_check would count the test's own tmpfs as a mount left behind.)
    env.podrun_ok(&["down", "full"]);
    assert_none_left(3750, Duration::from_secs(10), "after down");
    assert_pod_gone(&env, "full");
}

/// `SigIgn:` and `SigBlk:` of process `pid`, as /proc shows them (hex masks).
fn ignored_and_blocked(pid: i64) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    (field("SigIgn:"), field("SigBlk:"))
}

#[test]
fn containers_start_with_default_signal_dispositions_whatever_play_inherited() {
    use std::os::unix::process::CommandExt;
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "-q", "busybox"]);
    let file = write_manifest(&env, "sig.yaml", &marked_pod("sig", 3760));
    let _down = DownOnDrop(&env, file.clone());
    // As a background job of a non-interactive shell (or under nohup) podrun would start:
    // SIGINT, SIGQUIT and SIGHUP ignored, and here SIGUSR1 blocked too.
    let mut play = env.command(podrun_bin());
    play.args(["play", &file]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        play.pre_exec(|| {
            for signal in [nix::libc::SIGINT, nix::libc::SIGQUIT, nix::libc::SIGHUP] {
                nix::libc::signal(signal, nix::libc::SIG_IGN);
            }
            let mut set: nix::libc::sigset_t = std::mem::zeroed();
            nix::libc::sigemptyset(&mut set);
            nix::libc::sigaddset(&mut set, nix::libc::SIGUSR1);
            nix::libc::sigprocmask(nix::libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let output = play.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pids = marked_processes(3760);
    assert_eq!(pids.len(), 2, "{pids:?}");
    for pid in pids {
        assert_eq!(
            ignored_and_blocked(pid),
            (
                "0000000000000000".to_string(),
                "0000000000000000".to_string()
            ),
            "container process {pid}"
        );
    }
    down_and_check(&env, &file, &["sig"]);
}
