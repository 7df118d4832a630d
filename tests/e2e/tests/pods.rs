//! `podrun play`, `ps`, `logs` and `down`: real rootless pods of the test images, run by the
//! ordinary test user.

use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{list, TestEnv};

const TWO_CONTAINERS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: server
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www"]
  - name: client
    image: busybox
    command: ["sh", "-c", "sleep 1; wget -q -O - http://127.0.0.1:8080/; hostname; sleep 3600"]
"#;

#[test]
fn two_containers_share_the_pod_network_and_hostname() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "web.yaml", TWO_CONTAINERS);
    let out = env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert!(out.starts_with("NAME"), "{out}");
    let row = out.lines().find(|l| l.starts_with("web ")).expect(&out);
    assert!(row.contains("2/2") && row.contains("Running"), "{out}");

    let log = wait_for_logs(
        &env,
        &["web", "-c", "client"],
        &["hello-from-server", "web"],
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "hello-from-server", "{log}");
    assert_eq!(lines[1], "web", "hostname is the pod's name: {log}");
    // The default container is the first one: the server logs nothing.
    assert_eq!(env.podrun_ok(&["logs", "web"]), "");

    let ps = env.podrun_ok(&["ps"]);
    let row = ps.lines().find(|l| l.starts_with("web ")).expect(&ps);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["2/2", "Running", "0"], "{ps}");
    let json = pod_json(&env, "web");
    assert_eq!(json["status"], "Running");
    assert_eq!(json["state"]["containers"][0]["name"], "server");
    assert_eq!(json["state"]["containers"][1]["state"], "running");

    // play refuses a pod that exists, and names it.
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains("pod `default/web` already exists") && err.contains("podrun down web"),
        "{err}"
    );
    down_and_check(&env, "web", &["web"]);
}

#[test]
fn an_empty_dir_volume_is_shared_by_the_containers() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "shared.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: shared
    emptyDir: {}
  containers:
  - name: writer
    image: busybox
    # The note last: the reader reads the subPath file once it sees the note.
    command: ["sh", "-c", "mkdir -p /data/sub; echo in-sub > /data/sub/f; echo written-by-writer > /data/note; sleep 3600"]
    volumeMounts:
    - name: shared
      mountPath: /data
  - name: reader
    image: busybox
    command: ["sh", "-c", "until [ -f /in/note ]; do sleep 0.1; done; cat /in/note; cat /sub/f; touch /in/x 2>/dev/null || echo read-only; sleep 3600"]
    volumeMounts:
    - name: shared
      mountPath: /in
      readOnly: true
    - name: shared
      mountPath: /sub
      subPath: sub
"#,
    );
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let log = wait_for_logs(
        &env,
        &["shared", "-c", "reader"],
        &["written-by-writer", "read-only"],
    );
    assert!(log.contains("in-sub"), "subPath mount: {log}");
    down_and_check(&env, &file, &["shared"]);
}

#[test]
fn down_removes_every_process_mount_and_directory() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "two.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: one
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleeper
    image: busybox
    command: ["sleep", "3600"]
  - name: trapper
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: two
spec:
  terminationGracePeriodSeconds: 1
  shareProcessNamespace: true
  containers:
  - name: sleeper
    image: busybox
    command: ["sleep", "3600"]
"#,
    );
    let out = env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert!(out.contains("one") && out.contains("two"), "{out}");
    assert!(runtime_dir(&env, "one").join("state.json").is_file());
    assert!(data_dir(&env, "two").join("containers/sleeper").is_dir());
    down_and_check(&env, &file, &["one", "two"]);
    // A pod that never existed: a message, but success.
    let out = env.podrun(&["down", "nosuchpod"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pod nosuchpod not found in any namespace")
    );
}

#[test]
fn a_missing_image_fails_the_play_and_leaves_nothing() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "missing.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: broken
spec:
  containers:
  - name: ok
    image: busybox
    command: ["sleep", "3600"]
  - name: missing
    image: test/no-such-image:1.0
"#,
    );
    let err = env.podrun_err(&["play", &file]);
    assert!(err.contains("test/no-such-image:1.0"), "{err}");
    assert!(err.contains("container `missing`"), "{err}");
    assert!(!runtime_dir(&env, "broken").exists());
    assert!(!data_dir(&env, "broken").exists());
    assert!(pod_list(&env).is_empty());
    let supervisors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("__supervise") && c.contains(env.root().to_str().unwrap()))
        .collect();
    assert!(supervisors.is_empty(), "{supervisors:?}");

    // Never: no pull, a clear error.
    let file = write_manifest(
        &env,
        "never.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: never
spec:
  containers:
  - name: c
    image: busybox:1.35
    imagePullPolicy: Never
"#,
    );
    let err = env.podrun_err(&["play", &file]);
    assert!(err.contains("imagePullPolicy is Never"), "{err}");
    assert!(!runtime_dir(&env, "never").exists());

    // A hostPath of type Directory that does not exist is refused, naming the field.
    let file = write_manifest(
        &env,
        "hostpath.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hostpath
spec:
  volumes:
  - name: h
    hostPath:
      path: /nonexistent/podrun
      type: Directory
  containers:
  - name: c
    image: busybox
    command: ["true"]
"#,
    );
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains("spec.volumes[0].hostPath: `/nonexistent/podrun` does not exist"),
        "{err}"
    );
    assert!(!runtime_dir(&env, "hostpath").exists());
    assert!(!data_dir(&env, "hostpath").exists());
}

#[test]
fn nginx_and_a_collector_share_the_pod_network() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "network.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: network
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: nginx
    image: nginx:1.23
  - name: collect
    image: busybox
    command: ["sh", "-c", "while true; do wget -q -O - http://127.0.0.1/nginx_status; sleep 1; done"]
"#,
    );
    let out = env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert!(out.contains("2/2"), "{out}");
    wait_for_logs(
        &env,
        &["network", "-c", "collect"],
        &["Active connections", "server accepts handled requests"],
    );
    down_and_check(&env, "network", &["network"]);
}

#[test]
fn ps_logs_and_down_need_a_runtime_dir() {
    let env = TestEnv::new();
    let out = env
        .command(podrun_e2e::podrun_bin())
        .env_remove("XDG_RUNTIME_DIR")
        .args(["ps"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(
        err.contains("export XDG_RUNTIME_DIR=/run/user/$(id -u)"),
        "{err}"
    );
}

#[test]
fn exits_are_recorded_and_restarted_as_the_restart_policy_says() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "exits.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: once
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: good
    image: busybox
    command: ["sh", "-c", "echo done"]
  - name: bad
    image: busybox
    command: ["sh", "-c", "exit 2"]
---
apiVersion: v1
kind: Pod
metadata:
  name: again
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  containers:
  - name: flaky
    image: busybox
    command: ["sh", "-c", "echo run; echo x >> /kept; wc -l < /kept; exit 3"]
"#,
    );
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let once = pod_json(&env, "once");
        let again = pod_json(&env, "again");
        let restarted = again["state"]["containers"][0]["restart_count"]
            .as_u64()
            .unwrap();
        if once["status"] == "Error" && restarted >= 1 {
            assert_eq!(once["ready"], "0/2");
            let containers = &once["state"]["containers"];
            assert_eq!(containers[0]["exit_code"], 0);
            assert_eq!(containers[0]["state"], "exited");
            assert_eq!(containers[1]["exit_code"], 2);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no restart after 30 s: {once} {again}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(env.podrun_ok(&["logs", "once", "-c", "good"]), "done\n");
    // The second run did not find the first one's file: as in Kubernetes, a restarted
    // container starts from its image again (only volumes keep data).
    let log = wait_for_logs(&env, &["again"], &["run\n1\nrun\n1\n"]);
    assert!(!log.contains("2\n"), "{log}");
    let ps = env.podrun_ok(&["ps"]);
    let row = ps.lines().find(|l| l.starts_with("again ")).expect(&ps);
    assert!(
        row.contains("CrashLoopBackOff") || row.contains("Running"),
        "{ps}"
    );
    down_and_check(&env, &file, &["once", "again"]);
}

#[test]
fn down_cleans_up_after_a_killed_supervisor() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "web.yaml", TWO_CONTAINERS);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let state = pod_json(&env, "web")["state"].clone();
    let supervisor = state["supervisor_pid"].as_i64().unwrap();
    let userns = state["user_namespace"].as_str().unwrap().to_string();
    let containers: Vec<i64> = state["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pid"].as_i64().unwrap())
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_live(supervisor) {
        assert!(Instant::now() < deadline, "the supervisor survived SIGKILL");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The pod's watchdog ends its containers (and everything else in its user namespace)
    // soon after, and the pod shows as lost.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_in_user_namespace(&userns);
        if left.is_empty() && containers.iter().all(|p| !is_live(*p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "outlived the supervisor: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = pod_json(&env, "web");
    assert_eq!(json["status"], "Lost", "{json}");
    let ps = env.podrun_ok(&["ps"]);
    assert!(ps.contains("Lost"), "{ps}");

    env.podrun_ok(&["down", "web"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_in_user_namespace(&userns);
        if left.is_empty() && containers.iter().all(|p| !is_live(*p)) {
            break;
        }
        assert!(Instant::now() < deadline, "left after down: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!runtime_dir(&env, "web").exists());
    assert!(!data_dir(&env, "web").exists());
}

/// Two containers, the writer's `sleep 3601` started before it leaves a message in /dev/shm;
/// the reader waits for the message, then shows it, its IPC namespace and the processes it
/// can see.
fn ipc_pod(name: &str, share_pids: bool) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  shareProcessNamespace: {share_pids}
  terminationGracePeriodSeconds: 1
  containers:
  - name: writer
    image: busybox
    command: ["sh", "-c", "sleep 3601 & echo from-writer > /dev/shm/msg; echo ipc=$(readlink /proc/self/ns/ipc); wait"]
  - name: reader
    image: busybox
    command: ["sh", "-c", "until [ -f /dev/shm/msg ]; do sleep 1; done; cat /dev/shm/msg; echo ipc=$(readlink /proc/self/ns/ipc); ps; echo listed; exec sleep 3602"]
"#
    )
}

fn ipc_line(log: &str) -> String {
    log.lines()
        .find(|l| l.starts_with("ipc=ipc:["))
        .unwrap_or_else(|| panic!("no IPC namespace in:\n{log}"))
        .to_string()
}

#[test]
fn containers_share_ipc_and_dev_shm_but_not_pids_unless_asked() {
    let env = TestEnv::new();
    let yaml = format!(
        "{}---{}",
        ipc_pod("ipc-private", false),
        ipc_pod("ipc-shared", true)
    );
    let file = write_manifest(&env, "ipc.yaml", &yaml);
    env.podrun_ok(&["play", &file]);

    for (pod, sees_writer) in [("ipc-private", false), ("ipc-shared", true)] {
        let writer = wait_for_logs(&env, &[pod, "-c", "writer"], &["ipc="]);
        let reader = wait_for_logs(&env, &[pod, "-c", "reader"], &["from-writer", "listed"]);
        assert_eq!(ipc_line(&writer), ipc_line(&reader), "one IPC namespace");
        assert_eq!(
            reader.contains("sleep 3601"),
            sees_writer,
            "{pod}: the reader sees the writer's processes only with shareProcessNamespace:\n{reader}"
        );
        // The shared namespace's pid 1 shows as Kubernetes' pause, not as a host command line.
        assert_eq!(reader.contains("/pause"), sees_writer, "{reader}");
        assert!(!reader.contains("__supervise"), "{reader}");
    }
    // Each pod has an IPC namespace of its own.
    let private = ipc_line(&wait_for_logs(
        &env,
        &["ipc-private", "-c", "writer"],
        &["ipc="],
    ));
    let shared = ipc_line(&wait_for_logs(
        &env,
        &["ipc-shared", "-c", "writer"],
        &["ipc="],
    ));
    assert_ne!(private, shared);
    down_and_check(&env, &file, &["ipc-private", "ipc-shared"]);
}

/// Pod `a` with the given container list (YAML lines under `containers:`).
fn pod_a(containers: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: a}}\nspec:\n  containers:\n{containers}")
}

#[test]
fn invalid_manifests_fail_naming_file_and_field_and_leave_nothing() {
    let env = TestEnv::new();
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "no-image.yaml",
            &pod_a("  - name: c\n"),
            &["no-image.yaml", "spec.containers[0].image", "Required"],
        ),
        (
            "no-name.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec:\n  containers:\n  - {name: c, image: busybox}\n",
            &["no-name.yaml", "metadata.name", "Required"],
        ),
        (
            "dup.yaml",
            &pod_a("  - {name: c, image: busybox}\n  - {name: c, image: busybox}\n"),
            &["dup.yaml", "spec.containers[1].name", "Duplicate"],
        ),
        (
            "mount.yaml",
            &pod_a("  - name: c\n    image: busybox\n    volumeMounts: [{name: nope, mountPath: /x}]\n"),
            &["mount.yaml", "spec.containers[0].volumeMounts[0].name", "nope"],
        ),
        (
            "key.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    env:\n    - name: X\n      valueFrom: {configMapKeyRef: {name: cfg, key: missing}}\n",
            &["key.yaml", "configMapKeyRef", "missing"],
        ),
    ];
    for (file, yaml, wanted) in cases {
        let path = write_manifest(&env, file, yaml);
        let out = env.podrun(&["play", &path]);
        assert!(!out.status.success(), "{file} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        for w in wanted {
            assert!(err.contains(w), "{file}: `{w}` missing from:\n{err}");
        }
    }
    // An unknown field is a warning by default and an error with --strict.
    let path = write_manifest(
        &env,
        "typo.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec:\n  containers:\n  - {name: c, image: busybox, imagePullPolcy: Never}\n",
    );
    let err = env.podrun_err(&["play", "--strict", &path]);
    assert!(err.contains("imagePullPolcy"), "{err}");
    // Nothing was created by any of them.
    let pods = pod_list(&env);
    assert!(pods.is_empty(), "no pod left: {pods:#?}");
    assert!(list(&env.root().join("run/podrun/pods")).is_empty());
}

/// A pod serving its own name on port 80 from its own emptyDir.
fn port80_pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "echo {name} > /www/index.html; exec httpd -f -p 80 -h /www"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  - name: probe
    image: busybox
    command: ["sh", "-c", "until wget -q -O - http://127.0.0.1:80/; do sleep 1; done; ls /www; exec sleep 3600"]
    volumeMounts: [{{name: www, mountPath: /www}}]
  volumes:
  - name: www
    emptyDir: {{}}
"#
    )
}

#[test]
fn two_pods_bind_port_80_at_once_with_separate_empty_dirs() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "two.yaml",
        &format!("{}---{}", port80_pod("left"), port80_pod("right")),
    );
    env.podrun_ok(&["play", &file]);
    for (pod, other) in [("left", "right"), ("right", "left")] {
        let out = wait_for_logs(&env, &[pod, "-c", "probe"], &["index.html"]);
        assert!(out.contains(pod), "{pod} serves its own page: {out}");
        assert!(
            !out.contains(other),
            "{pod} does not see {other}'s volume: {out}"
        );
    }
    down_and_check(&env, &file, &["left", "right"]);
}

#[test]
fn a_memory_empty_dir_is_one_tmpfs_with_its_size_limit() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "memory.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: mem
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: writer
    image: busybox
    command: ["sh", "-c", "grep ' /cache ' /proc/mounts; echo shared > /cache/note; dd if=/dev/zero of=/cache/big bs=1024 count=2048 2>&1; echo wrote; exec sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  - name: reader
    image: busybox
    command: ["sh", "-c", "until [ -f /cache/note ]; do sleep 1; done; cat /cache/note; exec sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes:
  - name: cache
    emptyDir: {medium: Memory, sizeLimit: 1Mi}
"#,
    );
    env.podrun_ok(&["play", &file]);
    let writer = wait_for_logs(&env, &["mem", "-c", "writer"], &["wrote"]);
    assert!(writer.contains("tmpfs /cache tmpfs"), "{writer}");
    assert!(
        writer.contains("No space left on device"),
        "1Mi limit: {writer}"
    );
    wait_for_logs(&env, &["mem", "-c", "reader"], &["shared"]);
    // The tmpfs lives in the pod's mount namespace only: the host sees an empty directory.
    let volume = data_dir(&env, "mem").join("volumes/cache");
    assert!(
        list(&volume).is_empty(),
        "no tmpfs content on the host: {volume:?}"
    );
    down_and_check(&env, &file, &["mem"]);
}

const EXEC_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: ex
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: a
    image: busybox
    command: ["sh", "-c", "echo hi > /tmp/only-in-a; exec sleep 3600"]
  - name: b
    image: busybox
    command: ["sleep", "3600"]
  - name: done
    image: busybox
    command: ["true"]
"#;

#[test]
fn exec_runs_in_the_container() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "ex.yaml", EXEC_POD);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());

    // Container a writes the file right after it starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.podrun(&["exec", "ex", "-c", "a", "--", "cat", "/tmp/only-in-a"]);
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "exec never printed the file: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // b has a root filesystem of its own.
    let out = env.podrun(&["exec", "ex", "-c", "b", "--", "cat", "/tmp/only-in-a"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file"),
        "{out:?}"
    );
    // The default container is the first one; the pod's hostname.
    assert_eq!(env.podrun_ok(&["exec", "ex", "--", "hostname"]), "ex\n");
    assert_eq!(
        env.podrun_ok(&["exec", "ex", "--", "cat", "/tmp/only-in-a"]),
        "hi\n"
    );
    // The container's user and working directory.
    assert_eq!(
        env.podrun_ok(&["exec", "ex", "-c", "b", "--", "id", "-u"]),
        "0\n"
    );
    assert_eq!(
        env.podrun_ok(&["exec", "ex", "-c", "b", "--", "pwd"]),
        "/\n"
    );
    // Exit codes pass through, 128+N for a signal.
    let out = env.podrun(&["exec", "ex", "-c", "a", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let out = env.podrun(&["exec", "ex", "-c", "a", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    // -i passes stdin; without it the command reads /dev/null.
    let mut child = env
        .command(podrun_e2e::podrun_bin())
        .args(["exec", "-i", "ex", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"abc").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abc");
    let out = env
        .command(podrun_e2e::podrun_bin())
        .args(["exec", "ex", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");

    // Concurrent execs; none leaves libcontainer's notify socket behind.
    std::thread::scope(|scope| {
        for i in 0..6 {
            let env = &env;
            scope.spawn(move || {
                let word = format!("w{i}");
                let out = env.podrun_ok(&["exec", "ex", "-c", "b", "--", "echo", &word]);
                assert_eq!(out, format!("{word}\n"));
            });
        }
    });
    for dir in std::fs::read_dir(runtime_dir(&env, "ex").join("libcontainer")).unwrap() {
        let files = list(&dir.unwrap().path());
        assert!(
            !files.iter().any(|f| f.starts_with("tenant-notify-")),
            "{files:?}"
        );
    }

    // Errors name the container or pod.
    let err = env.podrun_err(&["exec", "ex", "-c", "nope", "--", "true"]);
    assert!(
        err.contains("container `nope`") && err.contains("default/ex"),
        "{err}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let err = env.podrun_err(&["exec", "ex", "-c", "done", "--", "true"]);
        if err.contains("container `done` of pod `default/ex` is not running") {
            break;
        }
        assert!(Instant::now() < deadline, "{err}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let err = env.podrun_err(&["exec", "missing", "--", "true"]);
    assert!(
        err.contains("pod missing not found in any namespace"),
        "{err}"
    );
    // -t without a terminal on stdin: kubectl's warning, then the command runs without one
    // (tests/exec_cp.rs drives -t through a real terminal).
    let out = env.podrun(&["exec", "-t", "ex", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unable to use a TTY"),
        "{out:?}"
    );

    down_and_check(&env, "ex", &["ex"]);
}

/// Seed scenarios "network" and "volume" on the shipped example (examples/pod-network.yaml):
/// nginx and a busybox collector share the network and an emptyDir at /var/log/nginx.
#[test]
fn seed_pod_network_and_volume_scenarios_through_exec() {
    let env = TestEnv::new();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pod-network.yaml"),
    )
    .unwrap();
    let file = write_manifest(&env, "pod-network.yaml", &example);
    env.podrun_ok(&["play", &file]);
    let exec = |container: &str, cmd: &[&str]| {
        let mut args = vec!["exec", "pod-network", "-c", container, "--"];
        args.extend_from_slice(cmd);
        env.podrun(&args)
    };
    let stdout = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).to_string();

    // Network: the collector reads nginx's status page, allowed only from 127.0.0.1.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = exec(
            "collect",
            &["wget", "-q", "-O", "-", "http://127.0.0.1/nginx_status"],
        );
        if stdout(&out).contains("Active connections") {
            break;
        }
        assert!(Instant::now() < deadline, "nginx never answered: {out:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // nginx's workers run as www-data inside.
    let ps = stdout(&exec("web", &["ps", "-eo", "user,args"]));
    assert!(
        ps.lines()
            .any(|l| l.starts_with("www-data") && l.contains("nginx: worker")),
        "{ps}"
    );
    // Only the network is shared: the collector has no nginx.
    assert!(!exec("collect", &["nginx", "-t"]).status.success());

    // Volume: a file touched in web is listed in collect; a request shows in access.log there.
    assert!(exec("web", &["touch", "/var/log/nginx/touched-in-web"])
        .status
        .success());
    let listing = stdout(&exec("collect", &["ls", "/var/log/nginx"]));
    assert!(listing.contains("touched-in-web"), "{listing}");
    exec(
        "collect",
        &[
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1/?from=collect",
        ],
    );
    let log = stdout(&exec("collect", &["cat", "/var/log/nginx/access.log"]));
    assert!(log.contains("GET /?from=collect"), "{log}");

    down_and_check(&env, &file, &["pod-network"]);
}

#[test]
fn the_supervisor_stops_its_containers_even_without_libcontainer_state() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "stateless.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: stateless
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: busybox
    command: ["sleep", "3600"]
"#,
    );
    env.podrun_ok(&["play", &file]);
    // libcontainer's state is gone (say, a cleaner removed it): the supervisor still holds the
    // container's init as its child and must stop it by pid, within the grace period.
    std::fs::remove_dir_all(runtime_dir(&env, "stateless").join("libcontainer")).unwrap();
    let started = Instant::now();
    down_and_check(&env, &file, &["stateless"]);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "down took {:?}: the supervisor did not stop the container itself",
        started.elapsed()
    );
}

/// Seed scenario "IPC": a producer writes messages to a SysV message queue, a consumer in the
/// other container reads them all up to an end marker; restartPolicy Never. (The nginx test
/// image has perl, whose msgget/msgsnd/msgrcv are built in; 0x504f44 is the queue's key,
/// 01000 IPC_CREAT.)
const MESSAGE_QUEUE_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: mc2
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: producer
    image: nginx:1.23
    command: ["perl", "-e", "my $q = msgget(0x504f44, 01000 | 0600) // die qq(msgget: $!); for my $i (1..20) { msgsnd($q, pack(q(l! a*), 1, qq(message-$i)), 0) or die qq(msgsnd: $!) } msgsnd($q, pack(q(l! a*), 1, q(END)), 0); print qq(sent 20\n)"]
  - name: consumer
    image: nginx:1.23
    command: ["perl", "-e", "my $q; until (defined($q = msgget(0x504f44, 0600))) { select(undef, undef, undef, 0.1) } my $n = 0; while (1) { msgrcv($q, my $m, 256, 0, 0) or die qq(msgrcv: $!); my $text = substr($m, length(pack(q(l!), 0))); last if $text eq q(END); $n++; print qq(got $text\n) } print qq(received $n\n); msgctl($q, 0, 0)"]
"#;

#[test]
fn containers_exchange_messages_through_a_sysv_queue() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "mc2.yaml", MESSAGE_QUEUE_POD);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let producer = wait_for_logs(&env, &["mc2", "-c", "producer"], &["sent 20"]);
    let consumer = wait_for_logs(&env, &["mc2", "-c", "consumer"], &["received 20"]);
    assert!(!producer.contains("msgsnd"), "{producer}");
    let got: Vec<&str> = consumer.lines().filter(|l| l.starts_with("got ")).collect();
    let wanted: Vec<String> = (1..=20).map(|i| format!("got message-{i}")).collect();
    assert_eq!(got, wanted, "every message, in order:\n{consumer}");
    // Both ended with exit code 0 and, with restartPolicy Never, stay ended.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = pod_json(&env, "mc2")["state"].clone();
        let codes: Vec<Option<i64>> = state["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["exit_code"].as_i64())
            .collect();
        if codes == [Some(0), Some(0)] {
            break;
        }
        assert!(Instant::now() < deadline, "exit codes: {state}");
        std::thread::sleep(Duration::from_millis(200));
    }
    env.podrun_ok(&["down", &file]);
}
