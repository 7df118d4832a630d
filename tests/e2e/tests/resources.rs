//! Resource limits (issue 8): `resources` of containers, as play enforces or warns about them.
//!
//! The test hosts give the test user no delegated cgroup v2 (a hybrid cgroup layout, no
//! systemd): play must say, once, which containers' limits are not enforced, and run the pod.
//! The second test hands the user a directory of the host's cgroup2 mount (as root, the way
//! systemd's `Delegate=` would), so that play takes the enforcement path for real: the pod's
//! cgroup is created there, the containers run in cgroups below it, and `down` removes it.
//! That mount has no memory or cpu controller here, so the limits themselves cannot be
//! checked on these hosts: play names the missing controllers instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{podrun_bin, setting, test_user, TestEnv};

const LIMITS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: NAME
spec:
  containers:
  - name: a
    image: busybox
    command: ["sh", "-c", "echo MEM_LIMIT=$MEM_LIMIT CPU_LIMIT=$CPU_LIMIT; echo --; sleep 300"]
    resources:
      limits: {memory: 64Mi, cpu: 500m}
    env:
    - name: MEM_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.memory}}
    - name: CPU_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
  - name: b
    image: busybox
    command: ["sleep", "300"]
    resources:
      limits: {memory: 32Mi}
  - name: c
    image: busybox
    command: ["sleep", "300"]
    resources:
      requests: {cpu: 100m, memory: 16Mi}
"#;

fn manifest(env: &TestEnv, name: &str) -> String {
    write_manifest(env, &format!("{name}.yaml"), &LIMITS.replace("NAME", name))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The warning lines about limits in play's output.
fn limit_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("limits of"))
        .collect()
}

#[test]
fn unenforced_limits_are_named_once_and_the_pod_runs() {
    let env = TestEnv::new();
    let file = manifest(&env, "limits");
    let _down = DownOnDrop(&env, file.clone());
    let output = env.podrun(&["play", &file]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let warnings = limit_warnings(&err);
    assert_eq!(warnings.len(), 1, "one warning for the pod: {err}");
    let user = setting("PODRUN_TEST_USER");
    assert!(
        warnings[0].starts_with(&format!(
            "warning: pod `default/limits`: resource limits of containers `a`, `b` are not enforced: this host gives user {user} no cgroup v2 of their own ("
        )),
        "{err}"
    );
    assert!(
        warnings[0].ends_with("; the downward API still reports them"),
        "{err}"
    );
    assert!(!warnings[0].contains("`c`"), "requests alone: {err}");
    let hints: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("hint:") && l.contains("podrun system check"))
        .collect();
    assert_eq!(hints.len(), 1, "{err}");

    // The pod runs, and the downward API reports the declared limits.
    let log = wait_for_logs(&env, &["limits", "-c", "a"], &["--"]);
    assert!(
        log.contains(&format!("MEM_LIMIT={} CPU_LIMIT=500", 64 << 20)),
        "{log}"
    );
    let json = pod_json(&env, "limits");
    let states: Vec<&str> = json["state"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["running"; 3], "{json}");

    // `validate` (play --strict's checks) does not object: a host property is not a
    // manifest problem.
    let validate = env.podrun(&["validate", &file]);
    assert!(validate.status.success(), "{}", stderr(&validate));
    down_and_check(&env, &file, &["limits"]);
}

/// A cgroup2 directory handed to the test user (`<unified>/podrun-e2e-PID/user`, owned by
/// them as systemd's `Delegate=` leaves it), with a `session` cgroup below for the podrun
/// processes, as a login shell's scope. Removed when dropped.
struct DelegatedCgroup {
    top: PathBuf,
}

impl DelegatedCgroup {
    fn new(uid: u32, gid: u32) -> DelegatedCgroup {
        let top = PathBuf::from(format!(
            "/sys/fs/cgroup/unified/podrun-e2e-{}",
            std::process::id()
        ));
        std::fs::create_dir(&top).unwrap();
        let delegated = DelegatedCgroup { top };
        for dir in [delegated.user(), delegated.session()] {
            std::fs::create_dir(&dir).unwrap();
            for path in [
                dir.clone(),
                dir.join("cgroup.procs"),
                dir.join("cgroup.subtree_control"),
                dir.join("cgroup.threads"),
            ] {
                nix::unistd::chown(
                    &path,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .unwrap();
            }
        }
        delegated
    }

    fn user(&self) -> PathBuf {
        self.top.join("user")
    }

    fn session(&self) -> PathBuf {
        self.user().join("session")
    }
}

impl Drop for DelegatedCgroup {
    fn drop(&mut self) {
        // Deepest first; a cgroup whose last process is exiting is busy for a moment.
        let mut dirs: Vec<PathBuf> = walk_dirs(&self.top);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(&dir).is_err() && dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk_dirs(&entry.path()));
        }
    }
    found
}

/// Runs podrun as the test user from inside `cgroup`: the child moves itself there while
/// still root (only root may move it out of the host's root cgroup), then drops to the user.
fn podrun_in_cgroup(env: &TestEnv, cgroup: &Path, args: &[&str]) -> Output {
    let user = test_user();
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    let mut command = env.root_command(podrun_bin());
    command.args(args);
    let procs = cgroup.join("cgroup.procs");
    // SAFETY: between fork and exec the closure only writes a file and changes ids.
    unsafe {
        command.pre_exec(move || {
            std::fs::write(&procs, std::process::id().to_string())?;
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
            Ok(())
        });
    }
    let output = command.output().expect("run podrun");
    eprintln!(
        "podrun {} (in {}):\n{}{}",
        args.join(" "),
        cgroup.display(),
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    output
}

fn pid_list(file: &Path) -> Vec<i64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn a_delegated_cgroup_holds_the_pods_cgroup_until_down() {
    let env = TestEnv::new();
    let user = test_user();
    let delegated = DelegatedCgroup::new(user.uid.as_raw(), user.gid.as_raw());
    let file = manifest(&env, "limited");
    let _down = DownOnDrop(&env, file.clone());
    let output = podrun_in_cgroup(&env, &delegated.session(), &["play", &file]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let warnings = limit_warnings(&err);
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains(&format!(
            "memory and cpu limits of containers `a`, `b` are not enforced: the cgroup delegated to user {} ({}) lacks the memory and cpu controllers (it has: ",
            user.name,
            delegated.user().display()
        )),
        "{err}"
    );

    // The pod's cgroup is in the delegated one, each container's below it, with the
    // container's init in it.
    let pods: Vec<PathBuf> = walk_dirs(&delegated.user())
        .into_iter()
        .filter(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("podrun-default_limited-"))
        })
        .collect();
    assert_eq!(pods.len(), 1, "{:?}", walk_dirs(&delegated.top));
    let pod_cgroup = &pods[0];
    assert_eq!(pod_cgroup.parent(), Some(delegated.user().as_path()));
    let json = pod_json(&env, "limited");
    for container in json["state"]["containers"].as_array().unwrap() {
        let name = container["name"].as_str().unwrap();
        let pid = container["pid"].as_i64().unwrap();
        let procs = pid_list(&pod_cgroup.join(name).join("cgroup.procs"));
        assert!(
            procs.contains(&pid),
            "container {name} (pid {pid}) not in its cgroup: {procs:?}"
        );
    }
    assert!(
        pid_list(&pod_cgroup.join("cgroup.procs")).is_empty(),
        "the pod's cgroup holds no process of its own"
    );
    let log = wait_for_logs(&env, &["limited", "-c", "a"], &["--"]);
    assert!(log.contains(&format!("MEM_LIMIT={}", 64 << 20)), "{log}");

    // `down` (from another cgroup, as a user would from another shell) removes it.
    down_and_check(&env, &file, &["limited"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pod_cgroup.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pod_cgroup.exists(), "{} is left", pod_cgroup.display());
}
