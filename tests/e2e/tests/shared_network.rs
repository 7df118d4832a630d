//! `play --network shared` (experimental, issue 17): pods on the user's shared network get
//! distinct addresses of 10.89.0.0/24, shown as `status.podIP`, and reach each other by
//! them; `down` leaves nothing, and the network holder (`podrun network-holder`) ends after
//! its linger (shortened to 500 ms through PODRUN_NETWORK_LINGER_MS) with no lease left.
//! What stays is the network's directory with its lock files, log and empty lease file,
//! as podrun's other runtime files do. Published ports (`--publish`, hostPort) are host
//! forwards of the holder's slirp4netns to the pod's address (with pasta as the way out:
//! relayed by the holder), removed at `down`.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use podrun_e2e::net::{free_port, http_get};
use podrun_e2e::pods::{
    assert_network_files_left_are_locks_and_log, assert_nothing_left, exec_until_ok,
    network_holders as holders, pasta_env, pasta_runs, pod_item,
    podrun_short_linger as podrun_shared, shared_way_out, write_manifest, DownOnDrop, Network,
};
use podrun_e2e::TestEnv;

fn pod(name: &str, command: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "{command}"]
"#
    )
}

/// The pod's `status.podIP` of `ps -o json`.
fn pod_ip(env: &TestEnv, pod: &str) -> Option<String> {
    pod_item(env, pod)["status"]["podIP"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn pods_on_the_shared_network_reach_each_other_by_address() {
    let env = TestEnv::new();
    let a = write_manifest(&env, "a.yaml", &pod("a", "exec httpd -f -p 8080 -h /etc"));
    let b = write_manifest(&env, "b.yaml", &pod("b", "exec sleep 3600"));
    let c = write_manifest(&env, "c.yaml", &pod("c", "exec sleep 3600"));
    let _down_a = DownOnDrop(&env, "a".into());
    let _down_b = DownOnDrop(&env, "b".into());
    let _down_c = DownOnDrop(&env, "c".into());
    for file in [&a, &b] {
        let output = podrun_shared(&env, &["play", "--network", "shared", file]);
        assert!(output.status.success(), "play --network shared {file}");
    }
    // A pod of the default network alongside.
    env.podrun_ok(&["play", &c]);

    let (ip_a, ip_b) = (pod_ip(&env, "a").unwrap(), pod_ip(&env, "b").unwrap());
    assert_ne!(ip_a, ip_b);
    for ip in [&ip_a, &ip_b] {
        let address: Ipv4Addr = ip.parse().unwrap();
        let [n0, n1, n2, n3] = address.octets();
        assert_eq!([n0, n1, n2], [10, 89, 0], "{ip} is not of 10.89.0.0/24");
        assert!(n3 > 1 && n3 < 255, "{ip}");
    }
    assert_eq!(pod_ip(&env, "c").as_deref(), Some("10.0.2.100"));
    let wide = env.podrun_ok(&["ps", "-o", "wide"]);
    assert!(wide.contains(&ip_a) && wide.contains(&ip_b), "{wide}");
    let describe = env.podrun_ok(&["describe", "a"]);
    assert!(describe.contains(&ip_a), "{describe}");
    assert_eq!(holders(&env).len(), 1, "one holder for both pods");

    // b reaches a's server by a's address; a's /etc/hosts names a by its own address.
    let url = format!("http://{ip_a}:8080/hosts");
    let hosts = exec_until_ok(&env, "b", "main", &format!("wget -qO- {url}"));
    assert!(hosts.contains(&format!("{ip_a}\ta")), "{hosts}");
    // The default-network pod still has its way out and its own loopback.
    exec_until_ok(&env, "c", "main", "ip addr show tap0 | grep -q 10.0.2.100");

    env.podrun_ok(&["down", "a"]);
    env.podrun_ok(&["down", "b"]);
    env.podrun_ok(&["down", "c"]);
    assert_nothing_left(&env);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holders(&env).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the holder did not end after its linger"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_network_files_left_are_locks_and_log(&env);
}

/// A pod whose busybox httpd answers `GET /` with `name` on port 8080.
fn web(name: &str) -> String {
    pod(
        name,
        &format!("mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 8080 -h /www"),
    )
}

#[test]
fn published_ports_reach_pods_on_the_shared_network() {
    published_ports(TestEnv::new());
}

/// The same with pasta as the way out: the holder relays the published ports itself.
#[test]
fn published_ports_reach_pods_on_the_shared_network_with_pasta() {
    let env = pasta_env();
    published_ports(env);
}

fn published_ports(env: TestEnv) {
    let (tcp, udp) = (free_port(), free_port());
    let p = write_manifest(&env, "p.yaml", &web("p"));
    let q = write_manifest(&env, "q.yaml", &web("q"));
    let _down_p = DownOnDrop(&env, "p".into());
    let _down_q = DownOnDrop(&env, "q".into());
    let (tcp_publish, udp_publish) = (format!("{tcp}:8080"), format!("127.0.0.1:{udp}:53/udp"));
    let output = podrun_shared(
        &env,
        &[
            "play",
            "--network",
            "shared",
            "-p",
            &tcp_publish,
            "-p",
            &udp_publish,
            &p,
        ],
    );
    assert!(
        output.status.success(),
        "play --network shared -p {tcp_publish} {p}"
    );
    // --publish without a host port: play reserves a free one until the holder has bound it.
    let output = podrun_shared(&env, &["play", "--network", "shared", "-p", "8080", &q]);
    assert!(output.status.success(), "play --network shared -p 8080 {q}");
    let pasta_wanted = std::fs::read_to_string(env.home().join(".config/podrun/config.toml"))
        .unwrap_or_default()
        .contains("pasta");
    assert_eq!(
        pasta_runs(&env),
        pasta_wanted,
        "the way out is pasta: {pasta_wanted}"
    );

    assert_eq!(
        env.podrun_ok(&["port", "p", "8080"]),
        format!("0.0.0.0:{tcp}\n")
    );
    let answer = http_get(&format!("127.0.0.1:{tcp}"));
    assert!(answer.ends_with("\np\n"), "{answer}");
    let free = env.podrun_ok(&["port", "q", "8080"]);
    let free: u16 = free
        .trim()
        .strip_prefix("0.0.0.0:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("podrun port q 8080: {free}"));
    assert_ne!(free, tcp);
    let answer = http_get(&format!("127.0.0.1:{free}"));
    assert!(answer.ends_with("\nq\n"), "{answer}");

    env.podrun_ok(&["down", "p"]);
    env.podrun_ok(&["down", "q"]);
    // The holder removed the forwards at once: the host ports are free again.
    for port in [tcp, free] {
        TcpListener::bind(("0.0.0.0", port))
            .unwrap_or_else(|e| panic!("port {port} is still taken after down: {e}"));
    }
    UdpSocket::bind(("127.0.0.1", udp))
        .unwrap_or_else(|e| panic!("udp port {udp} is still taken after down: {e}"));
    assert_nothing_left(&env);
}

/// A killed holder takes its way out and the host ports it published with it: the pods
/// keep running (without a network), `down` still removes them, nothing is left, and the
/// next pod gets a new holder.
#[test]
fn a_killed_holder_leaves_nothing_with_slirp4netns() {
    killed_holder(TestEnv::new());
}

#[test]
fn a_killed_holder_leaves_nothing_with_pasta() {
    killed_holder(pasta_env());
}

fn killed_holder(env: TestEnv) {
    let port = free_port();
    let p = write_manifest(&env, "p.yaml", &web("p"));
    let q = write_manifest(&env, "q.yaml", &web("q"));
    let _down_p = DownOnDrop(&env, "p".into());
    let _down_q = DownOnDrop(&env, "q".into());
    let publish = format!("{port}:8080");
    let output = podrun_shared(&env, &["play", "--network", "shared", "-p", &publish, &p]);
    assert!(
        output.status.success(),
        "play --network shared -p {publish}"
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).ends_with("\np\n"));
    let holder = holders(&env);
    assert_eq!(holder.len(), 1, "{holder:?}");
    assert_eq!(shared_way_out(&env).len(), 1, "one way out");

    podrun_e2e::pods::kill9(holder[0] as i32);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holders(&env).is_empty()
        || !shared_way_out(&env).is_empty()
        || TcpListener::bind(("0.0.0.0", port)).is_err()
    {
        assert!(
            Instant::now() < deadline,
            "after the holder's kill: holder {:?}, way out {:?}, port {port} free: {}",
            holders(&env),
            shared_way_out(&env),
            TcpListener::bind(("0.0.0.0", port)).is_ok()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A new pod gets a new holder, which takes no notice of the dead one's lease.
    let output = podrun_shared(&env, &["play", "--network", "shared", "-p", &publish, &q]);
    assert!(
        output.status.success(),
        "play --network shared -p {publish} (q)"
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).ends_with("\nq\n"));
    env.podrun_ok(&["down", "p"]);
    env.podrun_ok(&["down", "q"]);
    assert_nothing_left(&env);
}

/// The downward API's `status.podIP` (and `$(VAR)` of it in args) is the address the
/// holder leased, in the container's environment, its arguments and `exec`'s environment.
#[test]
fn the_downward_api_gives_the_leased_address() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "d.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: d
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo \"args $0 env $POD_IP $POD_IPS\" > /tmp/seen; exec sleep 3600", "$(POD_IP)"]
    env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: POD_IPS
      valueFrom:
        fieldRef:
          fieldPath: status.podIPs
"#,
    );
    let _down = DownOnDrop(&env, "d".into());
    let output = podrun_shared(&env, &["play", "--network", "shared", &file]);
    assert!(output.status.success(), "play --network shared {file}");
    let ip = pod_ip(&env, "d").expect("a leased address");
    assert!(ip.starts_with("10.89.0."), "{ip}");
    let seen = exec_until_ok(&env, "d", "main", "cat /tmp/seen");
    assert_eq!(seen.trim(), format!("args {ip} env {ip} {ip}"));
    let exec_env = exec_until_ok(&env, "d", "main", "echo $POD_IP");
    assert_eq!(exec_env.trim(), ip);
    env.podrun_ok(&["down", "d"]);
    assert_nothing_left(&env);
}

/// `[network] shared_subnet` gives the pods their addresses (and the DNS server the
/// bridge's); a subnet that would overlap the Services' is refused, naming the file and key.
#[test]
fn the_shared_subnet_is_configurable() {
    let env = TestEnv::new();
    let config = |subnet: &str| {
        env.write_config(&format!(
            "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[network]\nshared_subnet = \"{subnet}\"\n",
            podrun_e2e::registry()
        ))
    };
    let file = write_manifest(&env, "s.yaml", &pod("s", "exec sleep 3600"));
    let _down = DownOnDrop(&env, "s".into());
    config("10.96.128.0/24");
    let refused = podrun_shared(&env, &["play", "--network", "shared", &file]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "an overlapping subnet is refused"
    );
    assert!(
        stderr.contains("config.toml: network.shared_subnet") && stderr.contains("10.96.0.0/16"),
        "{stderr}"
    );
    assert_nothing_left(&env);

    config("10.90.7.0/24");
    let output = podrun_shared(&env, &["play", "--network", "shared", &file]);
    assert!(output.status.success(), "play --network shared {file}");
    let ip = pod_ip(&env, "s").expect("a leased address");
    assert!(ip.starts_with("10.90.7."), "{ip}");
    let resolv = exec_until_ok(&env, "s", "main", "cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver 10.90.7.1"), "{resolv}");
    env.podrun_ok(&["down", "s"]);
    assert_nothing_left(&env);
}

/// A supervisor killed on the shared network: the watchdog takes the pod's processes, the
/// holder sees the pod's end and frees its address and its published host port, `down`
/// removes the rest, and the holder ends after its linger.
#[test]
fn a_killed_supervisor_frees_its_address_and_port_with_slirp4netns() {
    killed_supervisor(TestEnv::new(), Network::SharedSlirp4netns);
}

#[test]
fn a_killed_supervisor_frees_its_address_and_port_with_pasta() {
    killed_supervisor(pasta_env(), Network::SharedPasta);
}

fn killed_supervisor(env: TestEnv, network: Network) {
    let port = free_port();
    let k = write_manifest(&env, "k.yaml", &web("k"));
    let _down = DownOnDrop(&env, "k".into());
    let publish = format!("{port}:8080");
    let output = podrun_shared(&env, &["play", "--network", "shared", "-p", &publish, &k]);
    assert!(
        output.status.success(),
        "play --network shared -p {publish}"
    );
    assert!(http_get(&format!("127.0.0.1:{port}")).ends_with("\nk\n"));
    podrun_e2e::pods::kill_supervisor(&env, "k");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpListener::bind(("0.0.0.0", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "port {port} still published after the supervisor's kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    env.podrun_ok(&["down", "k"]);
    assert_nothing_left(&env);
    network.assert_released(&env);
}

/// `[network] allow_host_loopback` holds per pod on the shared network: a pod played with
/// it reaches the host's 127.0.0.1 at 10.0.2.2, one played without it (the same holder)
/// is refused there at once.
#[test]
fn the_host_s_loopback_is_reached_only_by_pods_played_with_allow_host_loopback() {
    let env = TestEnv::new();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in host.incoming().flatten() {
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nthe host\n",
            );
        }
    });
    let config = |allow: bool| {
        env.write_config(&format!(
            "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[network]\nallow_host_loopback = {allow}\n",
            podrun_e2e::registry()
        ))
    };
    let allowed = write_manifest(&env, "a.yaml", &pod("allowed", "exec sleep 3600"));
    let refused = write_manifest(&env, "r.yaml", &pod("refused", "exec sleep 3600"));
    let _down_a = DownOnDrop(&env, "allowed".into());
    let _down_r = DownOnDrop(&env, "refused".into());
    for (allow, file) in [(true, &allowed), (false, &refused)] {
        config(allow);
        let output = podrun_shared(&env, &["play", "--network", "shared", file]);
        assert!(output.status.success(), "play --network shared {file}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("allow_host_loopback"),
            "no warning: {stderr}"
        );
    }
    assert_eq!(holders(&env).len(), 1, "one holder for both");
    let url = format!("http://10.0.2.2:{port}/");
    let answer = exec_until_ok(&env, "allowed", "main", &format!("wget -qO- {url}"));
    assert_eq!(answer, "the host\n");
    let started = Instant::now();
    let denied = env.podrun(&["exec", "refused", "--", "wget", "-qO-", "-T", "5", &url]);
    assert!(
        !denied.status.success(),
        "the pod without it reached the host"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "refused at once, not timed out"
    );
    env.podrun_ok(&["down", "allowed"]);
    env.podrun_ok(&["down", "refused"]);
    assert_nothing_left(&env);
}
