//! The shared pod network's foundation (crates/podnet, issue 17; not wired into `play` yet),
//! driven through src/bin/podnet-probe.rs as the test user: the holder in its own user and
//! network namespaces, and "pods" that are plain processes entering its user namespace and
//! unsharing their own user and network namespaces. Traffic goes only between namespaces the
//! test made and to a server on the host's loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::TestEnv;
use serde_json::Value;

fn probe(env: &TestEnv, vars: &[(&str, &str)]) -> Command {
    let mut command = env.command(env!("CARGO_BIN_EXE_podnet-probe"));
    command.envs(vars.iter().copied());
    command
}

fn run(env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let output = probe(env, vars).args(args).output().unwrap();
    podrun_e2e::log_output(&format!("podnet-probe {}", args.join(" ")), &output);
    output
}

/// Runs the probe and parses its first stdout line as JSON.
fn run_json(env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> Value {
    let output = run(env, vars, args);
    assert!(output.status.success(), "podnet-probe {args:?} failed");
    let text = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// A pod's process, killed when dropped (also when the test fails).
struct Pod(Child);

impl Pod {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pod serving `hello from NAME` on port 8080; returns it and its address.
fn serving_pod(env: &TestEnv, vars: &[(&str, &str)], name: &str) -> (Pod, Ipv4Addr) {
    let mut child = probe(env, vars)
        .args(["serve", name, "8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let output = child.wait_with_output().unwrap();
        panic!(
            "pod {name} did not attach: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let attachment: Value = serde_json::from_str(&line).unwrap();
    (Pod(child), address_of(&attachment))
}

fn address_of(attachment: &Value) -> Ipv4Addr {
    attachment["address"].as_str().unwrap().parse().unwrap()
}

fn assert_pod_address(address: Ipv4Addr) {
    let octets = address.octets();
    assert!(
        octets[..3] == [10, 89, 0] && !matches!(octets[3], 0 | 1 | 255),
        "{address} is not a pod address of 10.89.0.0/24"
    );
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Processes whose working directory or command line is in the test's directory.
fn processes_in(env: &TestEnv) -> Vec<String> {
    let root = env.root().to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cwd.starts_with(&root) || cmdline.contains(&root))
                .then(|| format!("{}: {cmdline}", e.file_name().to_string_lossy()))
        })
        .collect()
}

#[test]
fn two_pods_share_one_holder_reach_each_other_and_the_host_and_nothing_stays() {
    let env = TestEnv::new();
    let vars = [("PODNET_LINGER_MS", "60000"), ("PODNET_HOST_LOOPBACK", "1")];

    // Two starts at once make one holder; a third start finds it.
    let starts: Vec<Child> = (0..2)
        .map(|_| {
            probe(&env, &vars)
                .arg("ensure")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let holders: Vec<Value> = starts
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect();
    let holder_pid = holders[0]["holder"]["pid"].as_u64().unwrap();
    let slirp_pid = holders[0]["slirp4netns_pid"].as_u64().unwrap();
    assert_eq!(holders[1]["holder"], holders[0]["holder"]);
    let again = run_json(&env, &vars, &["ensure"]);
    assert_eq!(again["holder"], holders[0]["holder"]);
    assert!(alive(holder_pid) && alive(slirp_pid));

    // Pod A serves; pod B reaches it by its address.
    let (mut pod_a, address_a) = serving_pod(&env, &vars, "a");
    let output = run(&env, &vars, &["fetch", "b", &format!("{address_a}:8080")]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let address_b = address_of(&serde_json::from_str(lines.next().unwrap()).unwrap());
    assert_eq!(lines.next(), Some("answer: hello from a"), "{text}");
    assert_pod_address(address_a);
    assert_pod_address(address_b);
    assert_ne!(address_a, address_b);

    // A pod reaches the host's loopback through the bridge, the masquerade and slirp4netns.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in host.incoming().flatten() {
            let _ = writeln!(stream, "hello from the host");
        }
    });
    let output = run(
        &env,
        &vars,
        &["fetch", "c", &format!("10.0.2.2:{host_port}")],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("answer: hello from the host"), "{text}");

    // B and C have ended: only A is attached and leased.
    wait_until("the ended pods are detached", || {
        run_json(&env, &vars, &["status"])["pods"]
            .as_array()
            .unwrap()
            .len()
            == 1
    });
    let leases = run_json(&env, &vars, &["leases"]);
    let leased: Vec<&str> = leases
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["address"].as_str().unwrap())
        .collect();
    assert_eq!(leased, [address_a.to_string()]);

    // The holder killed: it and slirp4netns are gone, and A's lease with it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the holder and slirp4netns end", || {
        !alive(holder_pid) && !alive(slirp_pid)
    });
    assert_eq!(run_json(&env, &vars, &["leases"]), serde_json::json!([]));
    let status = run(&env, &vars, &["status"]);
    assert_eq!(String::from_utf8_lossy(&status.stdout).trim(), "none");
    pod_a.kill();
    assert_eq!(processes_in(&env), Vec::<String>::new());
}

#[test]
fn the_holder_ends_after_its_last_pod_and_leaves_nothing() {
    let env = TestEnv::new();
    let vars = [("PODNET_LINGER_MS", "1500")];
    let (mut pod, address) = serving_pod(&env, &vars, "only");
    assert_pod_address(address);
    let status = run_json(&env, &vars, &["status"]);
    let holder_pid = status["holder"]["pid"].as_u64().unwrap();
    let slirp_pid = status["slirp4netns_pid"].as_u64().unwrap();
    assert_eq!(status["pods"][0]["address"], address.to_string());

    pod.kill();
    // Released when the pod's process ends, while the holder lingers.
    wait_until("the pod is detached", || {
        run_json(&env, &vars, &["status"])["pods"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    assert_eq!(run_json(&env, &vars, &["leases"]), serde_json::json!([]));
    wait_until("the holder ends", || {
        !alive(holder_pid) && !alive(slirp_pid)
    });
    let dir = env.root().join("run/podrun/network");
    assert!(!dir.join("holder.sock").exists());
    assert!(!dir.join("holder.json").exists());
    assert_eq!(processes_in(&env), Vec::<String>::new());
}

#[test]
fn a_pod_that_did_not_make_its_namespaces_the_right_way_is_refused_and_leases_nothing() {
    let env = TestEnv::new();
    let vars = [("PODNET_LINGER_MS", "1000")];
    for (how, expected) in [
        ("sibling", "is not a child of the holder's"),
        (
            "unshared-nothing",
            "is still in the holder's user namespace",
        ),
    ] {
        let output = run(&env, &vars, &["misattach", how]);
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.starts_with("refused: ") && text.contains(expected),
            "{how}: {text}"
        );
    }
    assert_eq!(run_json(&env, &vars, &["leases"]), serde_json::json!([]));
}
