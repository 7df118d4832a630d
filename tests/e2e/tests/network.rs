//! Pod networking: slirp4netns and pasta, published ports, host loopback, DNS, `--network
//! none`, and the errors that stop a pod before it starts. The real binary, as the ordinary
//! test user; traffic only over loopback and network namespaces the test makes.
//!
//! Every test of a helper is a function taking the backend, run once per backend by the
//! `for_both_backends!` list at the end (`slirp4netns::NAME` and `pasta::NAME`). None of them
//! moves bulk data from the pod, which Debian 12's pasta stalls on (docs/benchmarks.md).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use podrun_e2e::host::{path_without_helpers, podrun_through, tun_0600};
use podrun_e2e::net::{free_port, http_get};
use podrun_e2e::pods::{assert_nothing_left, helper_pids, is_live, wait_for_logs, write_manifest};
use podrun_e2e::{setting, TestEnv};

/// `podrun play --network BACKEND ARGS…`, which must succeed.
fn play(env: &TestEnv, backend: &str, args: &[&str]) -> String {
    let mut full = vec!["play", "--network", backend];
    full.extend_from_slice(args);
    env.podrun_ok(&full)
}

/// What a server in the pod sees as the address of a client on the host's 127.0.0.1:
/// slirp4netns rewrites it to its gateway, pasta splices the connection from loopback.
fn loopback_client_seen_as(backend: &str) -> &'static str {
    if backend == "pasta" {
        "127.0.0.1"
    } else {
        "10.0.2.2"
    }
}

/// A pod of one busybox container serving `text` over HTTP on port 80, publishing `ports`
/// (YAML lines of its `ports:` list, or empty).
fn busybox_web(name: &str, text: &str, ports: &str) -> String {
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
    command: ["sh", "-c", "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -vv -p 80 -h /www"]
    ports:
    - containerPort: 80
{ports}"#
    )
}

fn a_published_tcp_port_reaches_nginx_and_down_ends_the_helper(backend: &str) {
    let env = TestEnv::new();
    let port = free_port();
    let file = write_manifest(
        &env,
        "nginx.yaml",
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: nginx
    image: nginx:1.23
    ports:
    - containerPort: 80
      hostPort: {port}
"#
        ),
    );
    play(&env, backend, &[&file]);
    let response = http_get(&format!("127.0.0.1:{port}"));
    assert!(
        response.starts_with("HTTP/1.1 200") && response.contains("podrun nginx test page"),
        "{response}"
    );
    // The pod's resolver is the helper's DNS forwarder; its interface is tap0 with
    // slirp4netns' addresses (pasta is given the same ones).
    let resolv = env.podrun_ok(&["exec", "nginx", "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.0.2.3"), "{resolv}");
    let addr = env.podrun_ok(&["exec", "nginx", "--", "cat", "/proc/net/fib_trie"]);
    assert!(addr.contains("10.0.2.100"), "{addr}");
    let routes = env.podrun_ok(&["exec", "nginx", "--", "cat", "/proc/net/route"]);
    assert!(
        routes.contains("tap0\t00000000\t0202000A"),
        "default route via 10.0.2.2 on tap0:\n{routes}"
    );
    assert_eq!(helper_pids(&env).len(), 1, "one {backend} for the pod");
    env.podrun_ok(&["down", "nginx"]);
    assert_nothing_left(&env);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} is still published after down"
    );
}

fn two_pods_with_different_host_ports(backend: &str) {
    let env = TestEnv::new();
    let (first, second) = (free_port(), free_port());
    let yaml = format!(
        "{}---{}",
        busybox_web("one", "from-pod-one", &format!("      hostPort: {first}\n")),
        busybox_web(
            "two",
            "from-pod-two",
            &format!("      hostPort: {second}\n")
        ),
    );
    let file = write_manifest(&env, "two.yaml", &yaml);
    play(&env, backend, &[&file]);
    assert!(http_get(&format!("127.0.0.1:{first}")).contains("from-pod-one"));
    assert!(http_get(&format!("127.0.0.1:{second}")).contains("from-pod-two"));
    assert_eq!(helper_pids(&env).len(), 2, "one {backend} per pod");
    env.podrun_ok(&["down", &file]);
    assert_nothing_left(&env);
}

fn publish_overrides_the_yaml_port(backend: &str) {
    let env = TestEnv::new();
    let (yaml_port, cli_port) = (free_port(), free_port());
    let file = write_manifest(
        &env,
        "web.yaml",
        &busybox_web(
            "web",
            "overridden",
            &format!("      hostPort: {yaml_port}\n"),
        ),
    );
    let publish = format!("127.0.0.1:{cli_port}:80");
    play(&env, backend, &["--publish", &publish, &file]);
    assert!(http_get(&format!("127.0.0.1:{cli_port}")).contains("overridden"));
    assert!(
        TcpStream::connect(("127.0.0.1", yaml_port)).is_err(),
        "the YAML's hostPort {yaml_port} must not be published"
    );
    let logs = wait_for_logs(&env, &["web"], &["url:/"]);
    assert!(logs.contains(loopback_client_seen_as(backend)), "{logs}");
    env.podrun_ok(&["down", "web"]);
    assert_nothing_left(&env);
}

const SLEEPER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: sleeper
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"#;

/// A pod whose container fetches `url` once, prints the body and `wget-exit=CODE`, then
/// sleeps. (busybox 1.35's `wget -T` crashes: `timeout` bounds it instead.)
fn fetcher(url: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: fetcher
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "timeout 10 wget -q -O - {url} 2>&1; code=$?; echo; echo wget-exit=$code; sleep 3600"]
"#
    )
}

/// An HTTP server on 127.0.0.1:PORT of the test's network namespace, answering its text.
const LOOPBACK_SERVER: &str = r#"
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = sys.argv[2].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
"#;

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `python3 -c SCRIPT ARGS…` as root inside `netns`.
fn python_in(netns: &TestNetns, script: &str, args: &[&str]) -> Child {
    Child(
        Command::new("ip")
            .args(["netns", "exec", &netns.0, "/usr/bin/python3", "-c", script])
            .args(args)
            .spawn()
            .unwrap(),
    )
}

/// The host loopback test runs in a network namespace of the test's: without host loopback,
/// pasta (`--no-map-gw`) connects to 10.0.2.2 for real, which must lead nowhere but to an
/// unreachable default route of that namespace.
fn host_loopback_only_when_allowed(backend: &str) {
    let netns = TestNetns::new(&format!("lo-{backend}"));
    let _server = python_in(&netns, LOOPBACK_SERVER, &["18555", "hello-from-host"]);
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "busybox:1.35"]);
    let file = write_manifest(
        &env,
        "fetcher.yaml",
        &fetcher("http://10.0.2.2:18555/").replace("image: busybox", "image: busybox:1.35"),
    );
    let exec = ["/usr/sbin/ip", "netns", "exec", netns.0.as_str()];

    let output = podrun_through(&env, &exec, &["play", "--network", backend, &file], None);
    assert!(output.status.success(), "play in the test netns failed");
    let logs = wait_for_logs(&env, &["fetcher"], &["wget-exit="]);
    assert!(
        !logs.contains("hello-from-host") && !logs.contains("wget-exit=0"),
        "host loopback reached without allow_host_loopback:\n{logs}"
    );
    env.podrun_ok(&["down", "fetcher"]);

    // The config file's default backend, with host loopback allowed.
    env.write_config(&format!(
        "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[network]\ndefault = \"{backend}\"\nallow_host_loopback = true\n",
        setting("PODRUN_TEST_REGISTRY")
    ));
    let output = podrun_through(&env, &exec, &["play", &file], None);
    assert!(output.status.success(), "play in the test netns failed");
    let logs = wait_for_logs(&env, &["fetcher"], &["wget-exit="]);
    assert!(logs.contains("hello-from-host"), "{logs}");
    assert_eq!(helper_pids(&env).len(), 1, "{backend} from the config file");
    env.podrun_ok(&["down", "fetcher"]);
    assert_nothing_left(&env);
}

#[test]
fn network_none_is_loopback_only() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "sleeper.yaml", SLEEPER);
    env.podrun_ok(&["play", "--network", "none", &file]);
    let devices = env.podrun_ok(&["exec", "sleeper", "--", "cat", "/proc/net/dev"]);
    let interfaces: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{devices}");
    assert!(
        helper_pids(&env).is_empty(),
        "no helper with --network none"
    );
    env.podrun_ok(&["down", "sleeper"]);
    let err = env.podrun_err(&["play", "--network", "none", "--publish", "18080:80", &file]);
    assert!(err.contains("--network none"), "{err}");
    assert_nothing_left(&env);
}

fn stderr_of_failure(output: &Output) -> String {
    assert!(!output.status.success(), "podrun should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn errors_before_start_name_the_cause_and_leave_nothing(backend: &str) {
    let env = TestEnv::new();
    let port = free_port();
    let file = write_manifest(
        &env,
        "web.yaml",
        &busybox_web("web", "never", &format!("      hostPort: {port}\n")),
    );

    // Port conflict.
    let taken = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let publish = format!("127.0.0.1:{port}:80");
    let err = env.podrun_err(&["play", "--network", backend, "--publish", &publish, &file]);
    assert!(
        err.contains(&format!(
            "host port {port}/tcp on 127.0.0.1 is already in use"
        )) && err.contains("hint:"),
        "{err}"
    );
    drop(taken);
    assert_nothing_left(&env);

    // Privileged port, for the ordinary user.
    let err = env.podrun_err(&["play", "--network", backend, "--publish", "80:80", &file]);
    assert!(
        err.contains("host port 80/tcp is privileged")
            && err.contains("net.ipv4.ip_unprivileged_port_start")
            && err.contains("hint:"),
        "{err}"
    );
    assert_nothing_left(&env);

    // No helper in PATH (newuidmap and newgidmap still are).
    let bin = path_without_helpers(&env);
    let output = podrun_through(
        &env,
        &["/usr/bin/env"],
        &["play", "--network", backend, &file],
        Some(bin.to_str().unwrap()),
    );
    let err = stderr_of_failure(&output);
    let package = if backend == "pasta" { "passt" } else { backend };
    assert!(
        err.contains(&format!("{backend} is not installed"))
            && err.contains(&format!("apt-get install {package}")),
        "{err}"
    );
    assert_nothing_left(&env);

    // A helper that dies before the network is ready: its exit and its last words.
    let fake = bin.join(backend);
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'fake helper: cannot go on' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = podrun_through(
        &env,
        &["/usr/bin/env"],
        &["play", "--network", backend, &file],
        Some(&format!("{}:/usr/bin:/bin", bin.display())),
    );
    let err = stderr_of_failure(&output);
    assert!(
        err.contains(&format!(
            "{backend} ended before the pod's network was ready (exit code 3)"
        )) && err.contains("fake helper: cannot go on"),
        "{err}"
    );
    assert_nothing_left(&env);

    // /dev/net/tun of mode 0600, as Debian ships it.
    let output = podrun_through(
        &env,
        &tun_0600(&env),
        &["play", "--network", backend, &file],
        None,
    );
    let err = stderr_of_failure(&output);
    assert!(
        err.contains("/dev/net/tun cannot be opened")
            && err.contains("mode 0600")
            && err.contains("sudo chmod 0666 /dev/net/tun"),
        "{err}"
    );
    assert_nothing_left(&env);

    // The same pod starts once nothing is in the way.
    play(&env, backend, &[&file]);
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("never"));
    env.podrun_ok(&["down", "web"]);
    assert_nothing_left(&env);
}

/// A network namespace made by the test (as root): a veth pair carrying the TEST-NET
/// addresses 192.0.2.1 and 192.0.2.7. Deleted when dropped.
struct TestNetns(String);

impl TestNetns {
    /// `tag` makes the name unique among the tests of this process.
    fn new(tag: &str) -> TestNetns {
        let name = format!("podrun-e2e-{}-{tag}", std::process::id());
        let netns = TestNetns(name.clone());
        let ip = |args: &str| {
            let status = Command::new("ip")
                .args(args.split_whitespace())
                .status()
                .unwrap();
            assert!(status.success(), "ip {args}");
        };
        ip(&format!("netns add {name}"));
        ip(&format!("-n {name} link set lo up"));
        ip(&format!("-n {name} link add hs0 type veth peer name hs0p"));
        ip(&format!("-n {name} addr add 192.0.2.1/24 dev hs0"));
        ip(&format!("-n {name} addr add 192.0.2.7/24 dev hs0p"));
        ip(&format!("-n {name} link set hs0 up"));
        ip(&format!("-n {name} link set hs0p up"));
        // pasta needs an interface with a default route; this one leads nowhere (nothing
        // answers for 192.0.2.254), so nothing the pod sends leaves the namespace.
        ip(&format!(
            "-n {name} route add default via 192.0.2.254 dev hs0"
        ));
        netns
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// From 192.0.2.7 (bound), `GET /` on 192.0.2.1:PORT inside `netns`, retried for 30 s.
const CLIENT: &str = r#"
import socket, sys, time
deadline = time.time() + 30
while True:
    try:
        s = socket.socket()
        s.bind(("192.0.2.7", 0))
        s.connect(("192.0.2.1", int(sys.argv[1])))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        if data:
            print(data.decode())
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("no answer")
    time.sleep(0.2)
"#;

fn the_server_in_the_pod_sees_the_real_client_address(backend: &str) {
    let netns = TestNetns::new(&format!("src-{backend}"));
    let env = TestEnv::new();
    // The test registry is not reachable from the test's namespace: pull first, and use a
    // tag whose pull policy is IfNotPresent.
    env.podrun_ok(&["pull", "busybox:1.35"]);
    let file = write_manifest(
        &env,
        "web.yaml",
        &busybox_web("web", "source-test", "      hostPort: 18080\n")
            .replace("image: busybox", "image: busybox:1.35"),
    );
    let exec = ["/usr/sbin/ip", "netns", "exec", netns.0.as_str()];
    let output = podrun_through(&env, &exec, &["play", "--network", backend, &file], None);
    assert!(output.status.success(), "play in the test netns failed");
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns.0,
            "/usr/bin/python3",
            "-c",
            CLIENT,
            "18080",
        ])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&client.stdout);
    assert!(
        answer.contains("source-test"),
        "{answer}{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let logs = wait_for_logs(&env, &["web"], &["url:/"]);
    assert!(
        logs.contains("192.0.2.7"),
        "the server saw another address:\n{logs}"
    );
    env.podrun_ok(&["down", "web"]);
    assert_nothing_left(&env);
}

/// A UDP echo server (python3 is in the nginx test image; busybox's nc has no UDP).
const UDP_ECHO: &str = "import socket\\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\\ns.bind(('0.0.0.0', 5353))\\nwhile True:\\n    data, peer = s.recvfrom(2048)\\n    s.sendto(b'echo:' + data, peer)\\n";

/// From 192.0.2.7, a datagram to 192.0.2.1:PORT, resent until the echo comes (30 s).
const UDP_CLIENT: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.7", 0))
s.settimeout(0.3)
deadline = time.time() + 30
while time.time() < deadline:
    s.sendto(b"ping", ("192.0.2.1", int(sys.argv[1])))
    try:
        print(s.recv(2048).decode())
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit("no answer")
"#;

/// UDP through a published port. The client is on a non-loopback address of a namespace the
/// test makes: libslirp 4.7 passes a datagram from 127.0.0.1 into the pod unchanged, where
/// the kernel drops it as a martian (TCP from loopback is rewritten to 10.0.2.2 and works).
/// The TestNetns names carry the backend: both variants may run at once.
fn udp_through_a_published_udp_port(backend: &str) {
    let netns = TestNetns::new(&format!("udp-{backend}"));
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "nginx:1.23"]);
    let file = write_manifest(
        &env,
        "udp.yaml",
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: udp
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: nginx:1.23
    command: ["python3", "-c", "{UDP_ECHO}"]
    ports:
    - containerPort: 5353
      protocol: UDP
      hostPort: 15353
"#
        ),
    );
    let exec = ["/usr/sbin/ip", "netns", "exec", netns.0.as_str()];
    let output = podrun_through(&env, &exec, &["play", "--network", backend, &file], None);
    assert!(output.status.success(), "play in the test netns failed");
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns.0,
            "/usr/bin/python3",
            "-c",
            UDP_CLIENT,
            "15353",
        ])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&client.stdout);
    assert_eq!(
        answer.trim(),
        "echo:ping",
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    env.podrun_ok(&["down", "udp"]);
    assert_nothing_left(&env);
}

/// A pod whose busybox httpd serves its hostname on `port` (so it must share the host's
/// network to be reached there), with `extra` spec lines.
fn hostname_server(port: u16, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
{extra}  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p {port} -h /www"]
"#
    )
}

#[test]
fn host_network_shares_the_hosts_namespace_and_hostname() {
    let env = TestEnv::new();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for (extra, args) in [
        ("  hostNetwork: true\n", vec![]),
        ("", vec!["--network", "host"]),
    ] {
        let port = free_port();
        let file = write_manifest(&env, "host.yaml", &hostname_server(port, extra));
        let mut play = vec!["play"];
        play.extend(args.iter().copied());
        play.push(&file);
        env.podrun_ok(&play);
        let response = http_get(&format!("127.0.0.1:{port}"));
        assert!(response.ends_with(&format!("\n{host}\n")), "{response}");
        assert!(
            helper_pids(&env).is_empty(),
            "no helper on the host's network"
        );
        env.podrun_ok(&["down", "hostnet"]);
        assert_nothing_left(&env);
    }
}

/// A DNS server on 127.0.0.1:53 of the test's namespace: every A query is answered with
/// 192.0.2.99, every other query with no record.
const DNS_SERVER: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    query, peer = s.recvfrom(512)
    end = 12
    while query[end]:
        end += query[end] + 1
    question = query[12:end + 5]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
    answers = 1 if qtype == 1 else 0
    reply = query[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, answers, 0, 0) + question
    if answers:
        reply += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.99")
    s.sendto(reply, peer)
"#;

/// Names resolve through the helper's forwarder at 10.0.2.3, which relays to the host's
/// resolver, here a loopback one: `ip netns exec` binds /etc/netns/NAME/resolv.conf over
/// /etc/resolv.conf for podrun (and so for the helper), and a DNS server of the test answers
/// on that namespace's 127.0.0.1.
fn dns_through_the_helpers_forwarder(backend: &str) {
    let netns = TestNetns::new(&format!("dns-{backend}"));
    let etc = PathBuf::from("/etc/netns").join(&netns.0);
    std::fs::create_dir_all(&etc).unwrap();
    let _etc = RemoveOnDrop(etc.clone());
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\nsearch podrun.test\n",
    )
    .unwrap();
    let _server = python_in(&netns, DNS_SERVER, &[]);
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "busybox:1.35"]);
    let file = write_manifest(
        &env,
        "sleeper.yaml",
        &SLEEPER.replace("image: busybox", "image: busybox:1.35"),
    );
    let exec = ["/usr/sbin/ip", "netns", "exec", netns.0.as_str()];
    let output = podrun_through(&env, &exec, &["play", "--network", backend, &file], None);
    assert!(output.status.success(), "play in the test netns failed");
    let resolv = env.podrun_ok(&["exec", "sleeper", "--", "cat", "/etc/resolv.conf"]);
    assert_eq!(resolv, "nameserver 10.0.2.3\nsearch podrun.test\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.podrun(&["exec", "sleeper", "--", "nslookup", "web.podrun.test"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("192.0.2.99") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer through 10.0.2.3:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    env.podrun_ok(&["down", "sleeper"]);
    assert_nothing_left(&env);
}

/// Removes a directory tree when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// However the supervisor ends, even by SIGKILL, its helper ends with it (slirp4netns: the
/// kernel closes its exit fd; pasta: the parent-death signal), and the published port is
/// free again; `down` then removes the rest.
fn the_helper_ends_with_a_killed_supervisor(backend: &str) {
    let env = TestEnv::new();
    let port = free_port();
    let file = write_manifest(
        &env,
        "web.yaml",
        &busybox_web("web", "killed", &format!("      hostPort: {port}\n")),
    );
    play(&env, backend, &[&file]);
    assert!(http_get(&format!("127.0.0.1:{port}")).contains("killed"));
    let helpers = helper_pids(&env);
    assert_eq!(helpers.len(), 1, "{helpers:?}");
    podrun_e2e::pods::kill_supervisor(&env, "web");
    // By pid: an exiting process has no environment to recognise it by any more, but
    // holds its sockets until it is a zombie.
    let deadline = Instant::now() + Duration::from_secs(10);
    while helpers.iter().any(|pid| is_live(*pid as i64)) {
        assert!(
            Instant::now() < deadline,
            "{backend} outlived its supervisor: {helpers:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} is still published"
    );
    env.podrun_ok(&["down", "web"]);
    assert_nothing_left(&env);
}

/// With `--network pasta`, play says once that Debian 12's pasta stalls, and starts the pods.
#[test]
fn a_pasta_known_to_stall_is_named_once() {
    let version = Command::new("pasta")
        .arg("--version")
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    let stalls = String::from_utf8_lossy(&version.stdout).contains("unknown version");
    let env = TestEnv::new();
    let yaml = format!(
        "{}---{}",
        busybox_web("one", "one", ""),
        busybox_web("two", "two", "")
    );
    let file = write_manifest(&env, "two.yaml", &yaml);
    let output = env.podrun(&["play", "--network", "pasta", &file]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings = stderr.matches("is known to stall").count();
    assert_eq!(warnings, usize::from(stalls), "{stderr}");
    if stalls {
        assert!(stderr.contains("--network slirp4netns"), "{stderr}");
    }
    env.podrun_ok(&["down", &file]);
    assert_nothing_left(&env);
}

/// Each test above, once per backend: `slirp4netns::NAME` and `pasta::NAME`.
macro_rules! for_both_backends {
    ($($test:ident),* $(,)?) => {
        mod slirp4netns {
            $(#[test] fn $test() { super::$test("slirp4netns") })*
        }
        mod pasta {
            $(#[test] fn $test() { super::$test("pasta") })*
        }
    };
}

for_both_backends!(
    a_published_tcp_port_reaches_nginx_and_down_ends_the_helper,
    two_pods_with_different_host_ports,
    publish_overrides_the_yaml_port,
    host_loopback_only_when_allowed,
    errors_before_start_name_the_cause_and_leave_nothing,
    the_server_in_the_pod_sees_the_real_client_address,
    udp_through_a_published_udp_port,
    dns_through_the_helpers_forwarder,
    the_helper_ends_with_a_killed_supervisor,
);
