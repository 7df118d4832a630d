//! Helpers for tests that play pods: manifests, waiting for logs, the pod's JSON state, and
//! the checks that `podrun down` leaves nothing behind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{list, test_user, TestEnv};

/// Writes `yaml` as `name` in the environment's home (owned by the test user); returns its path.
pub fn write_manifest(env: &TestEnv, name: &str, yaml: &str) -> String {
    env.write_home_file(name, yaml);
    env.home().join(name).to_str().unwrap().to_string()
}

/// The text of tests/e2e/manifests/NAME: manifests in the style of the Kubernetes task pages,
/// which crates/manifest also checks against the Kubernetes API schema.
pub fn test_manifest(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `podrun exec POD -c CONTAINER -- sh -c SCRIPT` until it succeeds (30 s); returns stdout.
pub fn exec_until_ok(env: &TestEnv, pod: &str, container: &str, script: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.podrun(&["exec", pod, "-c", container, "--", "sh", "-c", script]);
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "`{script}` in {pod}/{container} never succeeded: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `podrun down TARGET` when dropped, so that a failing test leaves no pod running.
pub struct DownOnDrop<'a>(pub &'a TestEnv, pub String);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.podrun(&["down", &self.1]);
        }
    }
}

/// The pod's runtime directory (plan.json, state.json, logs/, the supervisor's pid file).
pub fn runtime_dir(env: &TestEnv, pod: &str) -> PathBuf {
    env.root()
        .join("run/podrun/pods")
        .join(format!("default_{pod}"))
}

/// Kills the pod's supervisor with SIGKILL (its pid file must be there); returns its pid.
pub fn kill_supervisor(env: &TestEnv, pod: &str) -> i32 {
    let file = runtime_dir(env, pod).join("supervisor.pid");
    let pid: i32 = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap();
    kill9(pid);
    pid
}

/// SIGKILL to `pid`, which must exist.
pub fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap_or_else(|e| panic!("kill -9 {pid}: {e}"));
}

/// The pod's data directory (its volumes).
pub fn data_dir(env: &TestEnv, pod: &str) -> PathBuf {
    env.storage()
        .parent()
        .unwrap()
        .join("pods")
        .join(format!("default_{pod}"))
}

/// Polls `podrun logs ARGS` until its output contains every one of `wanted` (30 s).
pub fn wait_for_logs(env: &TestEnv, args: &[&str], wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut full = vec!["logs"];
    full.extend_from_slice(args);
    loop {
        let out = env.podrun_ok(&full);
        if wanted.iter().all(|w| out.contains(w)) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "`podrun {}` never showed {wanted:?}; last output:\n{out}",
            full.join(" ")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `NAME=value` lines of an `env` dump (up to the line `--`), as a map.
pub fn env_of(log: &str) -> BTreeMap<String, String> {
    log.lines()
        .take_while(|l| *l != "--")
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The pods `podrun ps -o json` lists: the items (`v1` Pods) of its `v1` `PodList`.
pub fn pod_list(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = env.podrun_ok(&["ps", "-o", "json"]);
    let list: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps -o json: {e}: {out}"));
    assert_eq!(list["apiVersion"], "v1", "{out}");
    assert_eq!(list["kind"], "PodList", "{out}");
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a PodList without items: {out}"))
}

/// The pod named `pod` (in any namespace) as `podrun ps -o json` shows it: a `v1` Pod.
pub fn pod_item(env: &TestEnv, pod: &str) -> serde_json::Value {
    let pods = pod_list(env);
    pods.iter()
        .find(|p| p["metadata"]["name"] == pod)
        .cloned()
        .unwrap_or_else(|| panic!("pod {pod} not in ps: {pods:#?}"))
}

/// podrun's own view of the pod: the `x-podrun` object of its item in `podrun ps -o json`
/// (`status` and `ready` as kubectl's columns show them, `restarts`, `supervisor_alive`,
/// `ports`, and `state`, the pod's state file).
pub fn pod_json(env: &TestEnv, pod: &str) -> serde_json::Value {
    pod_item(env, pod)["x-podrun"].clone()
}

/// Polls the pod's entry of `ps -o json` until `check` holds; returns it. Fails the test
/// after `secs` seconds, naming `what` was waited for.
pub fn wait_for_pod(
    env: &TestEnv,
    pod: &str,
    secs: u64,
    what: &str,
    mut check: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let json = pod_json(env, pod);
        if check(&json) {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "waited {secs} s for `{what}`; last: {json:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every process: its pid and its /proc directory.
pub fn processes() -> impl Iterator<Item = (i64, PathBuf)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i64>().ok()?;
            Some((pid, entry.path()))
        })
}

pub fn is_live(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..].trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

pub fn processes_in_user_namespace(userns: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (pid, dir) in processes() {
        if let Ok(ns) = std::fs::read_link(dir.join("ns/user")) {
            if ns.to_str() == Some(userns) && is_live(pid) {
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                found.push(format!("{pid} {}", comm.trim()));
            }
        }
    }
    found
}

/// `podrun down` leaves nothing: no process recorded for the pod or in its user namespace,
/// no mount under the environment, no directory. A second `down` is fine too.
pub fn down_and_check(env: &TestEnv, target: &str, pods: &[&str]) {
    let mut pids = Vec::new();
    let mut namespaces = Vec::new();
    for pod in pods {
        let json = pod_json(env, pod);
        let state = &json["state"];
        pids.push(state["supervisor_pid"].as_i64().unwrap());
        for container in state["containers"].as_array().unwrap() {
            if let Some(pid) = container["pid"].as_i64() {
                pids.push(pid);
            }
        }
        namespaces.push(state["user_namespace"].as_str().unwrap().to_string());
    }
    assert!(pids.iter().all(|p| is_live(*p)), "pods run: {pids:?}");
    env.podrun_ok(&["down", target]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live: Vec<i64> = pids.iter().copied().filter(|p| is_live(*p)).collect();
        let in_ns: Vec<String> = namespaces
            .iter()
            .flat_map(|ns| processes_in_user_namespace(ns))
            .collect();
        if live.is_empty() && in_ns.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left after down: pids {live:?}, in the pods' user namespaces {in_ns:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // No process with the test user's uid is one of the pod's (pids are not reused this fast;
    // other processes of the user may belong to other tests).
    let uid = test_user().uid.as_raw().to_string();
    for (pid, dir) in processes() {
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        let of_user = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().skip(1).any(|u| u == uid));
        assert!(
            !(of_user && pids.contains(&pid) && is_live(pid)),
            "process {pid} of the pod is still there"
        );
    }
    assert_no_mounts(env);
    for pod in pods {
        assert!(!runtime_dir(env, pod).exists(), "runtime dir of {pod} left");
        assert!(!data_dir(env, pod).exists(), "data dir of {pod} left");
    }
    let again = env.podrun(&["down", target]);
    assert!(again.status.success(), "a second down must succeed");
    let ps = pod_list(env);
    assert!(ps.is_empty(), "no pods left: {ps:#?}");
}

/// No mount of the host's mount namespace is under the environment.
fn assert_no_mounts(env: &TestEnv) {
    let root = env.root().to_str().unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts: Vec<&str> = mountinfo.lines().filter(|l| l.contains(root)).collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:#?}");
}

/// The network helpers (slirp4netns, pasta) of this environment: they inherit its
/// XDG_RUNTIME_DIR from the supervisor (their working directory is no help: the sandbox
/// pivots their root).
pub fn helper_pids(env: &TestEnv) -> Vec<i32> {
    let marker = format!("XDG_RUNTIME_DIR={}", env.root().join("run").display());
    processes()
        .filter_map(|(pid, dir)| {
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            let environ = std::fs::read(dir.join("environ")).ok()?;
            let ours = environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_bytes());
            // pasta runs as passt.avx2 (or passt) where the CPU allows.
            let helper = matches!(
                comm.trim(),
                "slirp4netns" | "pasta" | "passt" | "passt.avx2"
            );
            (helper && ours && is_live(pid)).then_some(pid as i32)
        })
        .collect()
}

/// The supervisors of this environment's pods: `podrun supervisor NS/NAME` with the
/// environment's XDG_RUNTIME_DIR (as [`helper_pids`] finds them), or an older release's
/// `podrun __supervise RUNTIME_DIR`.
fn supervisors(env: &TestEnv) -> Vec<String> {
    let pods_dir = env.root().join("run/podrun/pods");
    let pods_dir = pods_dir.to_str().unwrap();
    let marker = format!("XDG_RUNTIME_DIR={}", env.root().join("run").display());
    processes()
        .filter_map(|(pid, dir)| {
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let legacy = cmdline.contains("__supervise") && cmdline.contains(pods_dir);
            let ours = || {
                let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
                environ
                    .split(|b| *b == 0)
                    .any(|var| var == marker.as_bytes())
            };
            let titled = cmdline.starts_with("podrun supervisor ") && ours();
            ((legacy || titled) && is_live(pid)).then(|| format!("{pid} {cmdline}"))
        })
        .collect()
}

/// Nothing of any pod of the environment is left: no network helper or supervisor (given
/// 10 s to end), no pod directory, no mount under the environment, no pod in `ps`.
pub fn assert_nothing_left(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (helpers, supervisors) = (helper_pids(env), supervisors(env));
        if helpers.is_empty() && supervisors.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left running: network helpers {helpers:?}, supervisors {supervisors:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let root = env.root();
    assert_eq!(
        list(&root.join("run/podrun/pods")),
        Vec::<String>::new(),
        "pod runtime dirs left"
    );
    assert_eq!(
        list(&root.join("data/podrun/pods")),
        Vec::<String>::new(),
        "pod data dirs left"
    );
    assert_no_mounts(env);
    let ps = pod_list(env);
    assert!(ps.is_empty(), "no pods: {ps:#?}");
}

/// A test environment whose config makes pasta the shared network's way out
/// (`[network] shared_uplink`).
pub fn pasta_env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[network]\nshared_uplink = \"pasta\"\n",
        crate::registry()
    ));
    env
}

/// The programs (`slirp4netns`, `pasta`) that run now as the way out of the shared network
/// of `env`: children of the network holder, which works in the network's directory (its
/// other children, such as `nft` setting up Services, are not counted).
pub fn shared_way_out(env: &TestEnv) -> Vec<String> {
    let network = env.root().join("run/podrun/network");
    let mut found: Vec<String> = processes()
        .filter_map(|(pid, dir)| {
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .unwrap_or("0");
            let parent_cwd = std::fs::read_link(format!("/proc/{parent}/cwd")).ok()?;
            let name = String::from_utf8_lossy(program);
            let name = name.rsplit('/').next().unwrap_or_default();
            let way_out = matches!(name, "slirp4netns" | "pasta");
            (parent_cwd == network && way_out && is_live(pid)).then(|| name.to_string())
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// `podrun ARGS` with the network holder's linger shortened (500 ms), so that after `down`
/// the holder and its way out are gone well within [`assert_nothing_left`]'s 10 s.
pub fn podrun_short_linger(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let output = env
        .command(crate::podrun_bin())
        .env("PODRUN_NETWORK_LINGER_MS", "500")
        .args(args)
        .output()
        .expect("run podrun");
    crate::log_output(&format!("podrun {}", args.join(" ")), &output);
    output
}

/// The live `podrun network-holder` processes of `env` (its runtime directory in their
/// environment).
pub fn network_holders(env: &TestEnv) -> Vec<i64> {
    let marker = format!("XDG_RUNTIME_DIR={}", env.root().join("run").display());
    processes()
        .filter_map(|(pid, dir)| {
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            let environ = std::fs::read(dir.join("environ")).ok()?;
            let ours = environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_bytes());
            (cmdline == b"podrun\0network-holder\0" && ours && is_live(pid)).then_some(pid)
        })
        .collect()
}

/// A Pod `client` of the Debian+nginx test image that sleeps: a client with a dynamically
/// linked libc (busybox-static cannot resolve names), bash's /dev/tcp and getent.
pub const DEBIAN_CLIENT: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: nginx:1.23
    command: ["sleep", "3600"]
"#;

/// Whether a pasta runs as the way out of the shared network of `env` ([`shared_way_out`]).
pub fn pasta_runs(env: &TestEnv) -> bool {
    shared_way_out(env).iter().any(|program| program == "pasta")
}

/// The network a test plays its pods on (issue 17 wants each part run with slirp4netns and
/// with pasta): each pod's own (podrun's default for a file without Services), or the user's
/// shared network (`play --network shared`) with slirp4netns or pasta as its way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Private,
    SharedSlirp4netns,
    SharedPasta,
}

impl Network {
    /// A fresh environment for it: with pasta, one whose config makes pasta the shared
    /// network's way out ([`pasta_env`]).
    pub fn env(self) -> TestEnv {
        match self {
            Network::SharedPasta => pasta_env(),
            Network::Private | Network::SharedSlirp4netns => TestEnv::new(),
        }
    }

    /// The `play` options that select it: `--network shared`, none for the default.
    pub fn play_args(self) -> &'static [&'static str] {
        match self {
            Network::Private => &[],
            Network::SharedSlirp4netns | Network::SharedPasta => &["--network", "shared"],
        }
    }

    /// What the shared network's holder runs as its way out ([`shared_way_out`]): nothing on
    /// a private network.
    pub fn way_out(self) -> Vec<String> {
        match self {
            Network::Private => vec![],
            Network::SharedSlirp4netns => vec!["slirp4netns".to_string()],
            Network::SharedPasta => vec!["pasta".to_string()],
        }
    }

    /// Checks that `ip`, a pod's address, is of this network: of 10.89.0.0/16 on the shared
    /// network only.
    pub fn assert_address(self, ip: &str) {
        let parsed: std::net::Ipv4Addr = ip
            .parse()
            .unwrap_or_else(|e| panic!("pod address `{ip}`: {e}"));
        let shared = parsed.octets()[..2] == [10, 89];
        let wanted = match self {
            Network::Private => "outside 10.89.0.0/16 (a network of the pod's own)",
            Network::SharedSlirp4netns | Network::SharedPasta => "of the shared 10.89.0.0/16",
        };
        assert_eq!(
            shared,
            self != Network::Private,
            "{self:?}: the pod's address {ip} is not {wanted}"
        );
    }

    /// `podrun ARGS` with the network holder's linger shortened ([`podrun_short_linger`]).
    pub fn podrun(self, env: &TestEnv, args: &[&str]) -> std::process::Output {
        podrun_short_linger(env, args)
    }

    /// `podrun play [--network shared] FILE` ([`Network::podrun`]); fails the test unless it
    /// succeeds. Returns its output.
    pub fn play(self, env: &TestEnv, file: &str) -> std::process::Output {
        let mut args = vec!["play"];
        args.extend_from_slice(self.play_args());
        args.push(file);
        let output = self.podrun(env, &args);
        assert!(
            output.status.success(),
            "podrun {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Beside [`assert_nothing_left`], on the shared network: its holder ends (given 10 s)
    /// and leaves no address leased, and no file but its locks and log
    /// ([`assert_network_files_left_are_locks_and_log`]).
    pub fn assert_released(self, env: &TestEnv) {
        if self == Network::Private {
            return;
        }
        let holders = || network_holders(env);
        let leases = || -> serde_json::Value {
            let file = env.root().join("run/podrun/network/ipam.json");
            let text = std::fs::read_to_string(&file).unwrap_or_else(|_| "{}".into());
            let json: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}: {text}", file.display()));
            json["leases"].clone()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (holders, leases) = (holders(), leases());
            let leased = leases.as_array().map(Vec::len).unwrap_or(0);
            if holders.is_empty() && leased == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left on the shared network: holders {holders:?}, leases {leases}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_network_files_left_are_locks_and_log(env);
    }
}

/// Once the shared network's holder has ended with no pod and no Service left, its directory
/// keeps only its lock files (removing a lock file in use would break its lock) and the
/// logs of the holder and its way out: no socket, no pid file, no holder.json, no lease or
/// Service file.
pub fn assert_network_files_left_are_locks_and_log(env: &TestEnv) {
    let network = env.root().join("run/podrun/network");
    let left: Vec<String> = list(&network)
        .into_iter()
        .filter(|name| !name.ends_with(".lock") && !name.ends_with(".log"))
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "files left in {}",
        network.display()
    );
}
