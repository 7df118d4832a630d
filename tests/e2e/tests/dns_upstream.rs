//! The shared network's DNS server forwards names outside the cluster upstream (issue 17),
//! end to end: the upstream is a resolver this test runs on the host's 127.0.0.1
//! (`[network] cluster_dns_upstream`), which the holder reaches where its way out maps the
//! host's loopback, while the pods themselves are kept from the host's loopback. Run with
//! slirp4netns and with pasta as the way out.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podrun_e2e::pods::DEBIAN_CLIENT as CLIENT;
use podrun_e2e::pods::{
    assert_nothing_left, exec_until_ok, pasta_runs, write_manifest, DownOnDrop,
};
use podrun_e2e::TestEnv;

/// What the test resolver answers for every A query.
const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

/// A DNS resolver on 127.0.0.1 that answers every A query with [`ANSWER`] (other types:
/// no record) and remembers the names it was asked; it stops when dropped.
struct TestResolver {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TestResolver {
    fn start() -> TestResolver {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (names, stopped) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((length, client)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some((name, reply)) = answer(&buffer[..length]) {
                    names.lock().unwrap().push(name);
                    let _ = socket.send_to(&reply, client);
                }
            }
        });
        TestResolver { port, asked, stop }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for TestResolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The reply to `query` (one question): its header with QR, RD and RA set, the question,
/// and for type A one answer pointing back at the question's name. None for what is not a
/// query of one question.
fn answer(query: &[u8]) -> Option<(String, Vec<u8>)> {
    if query.len() < 12 || query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let length = *query.get(at)? as usize;
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).to_string());
        at += length;
    }
    let question_end = at + 4;
    let qtype = query.get(at..at + 2)?;
    let is_a = qtype == [0, 1];
    let mut reply = query[..question_end.min(query.len())].to_vec();
    reply[2] = 0x81 | (query[2] & 0x01);
    reply[3] = 0x80;
    reply[6..8].copy_from_slice(&[0, u8::from(is_a)]);
    reply[8..12].fill(0);
    if is_a {
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&ANSWER.octets());
    }
    Some((labels.join("."), reply))
}

fn with_upstream(env: TestEnv, pasta: bool, resolver: &TestResolver) -> TestEnv {
    let uplink = if pasta { "pasta" } else { "slirp4netns" };
    env.write_config(&format!(
        "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[network]\nshared_uplink = \"{uplink}\"\ncluster_dns_upstream = \"127.0.0.1:{}\"\n",
        podrun_e2e::registry(),
        resolver.port
    ));
    env
}

#[test]
fn names_outside_the_cluster_go_to_the_configured_upstream() {
    forwarding(false);
}

#[test]
fn names_outside_the_cluster_go_to_the_configured_upstream_with_pasta() {
    forwarding(true);
}

fn forwarding(pasta: bool) {
    let resolver = TestResolver::start();
    let env = with_upstream(TestEnv::new(), pasta, &resolver);
    // A TCP server on the host's loopback, which the pods must not reach.
    let host_only = TcpListener::bind("127.0.0.1:0").unwrap();
    let host_only_port = host_only.local_addr().unwrap().port();

    let file = write_manifest(&env, "client.yaml", CLIENT);
    let _down = DownOnDrop(&env, file.clone());
    let args = [
        "play",
        "--network",
        "shared",
        "--wait-ready",
        "--timeout",
        "60s",
        &file,
    ];
    let output = podrun_e2e::pods::podrun_short_linger(&env, &args);
    assert!(output.status.success(), "podrun {} failed", args.join(" "));
    assert_eq!(pasta_runs(&env), pasta, "the way out is pasta: {pasta}");

    // Two dots, fewer than ndots:5: the search list's cluster names are tried first (and
    // answered NXDOMAIN by the holder), then the name itself goes upstream.
    let resolved = exec_until_ok(&env, "client", "main", "getent ahostsv4 www.upstream.test");
    assert!(resolved.starts_with(&ANSWER.to_string()), "{resolved}");
    let asked = resolver.asked();
    assert!(
        asked.iter().any(|name| name == "www.upstream.test"),
        "the upstream was asked: {asked:?}"
    );
    assert!(
        !asked.iter().any(|name| name.ends_with("cluster.local")),
        "names of the cluster stay in the holder: {asked:?}"
    );

    // The holder may use the host's loopback; the pod may not.
    let probe = format!(
        "timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/{host_only_port}' && echo reached || echo refused"
    );
    let reached = exec_until_ok(&env, "client", "main", &probe);
    assert_eq!(
        reached.trim(),
        "refused",
        "the pod reached the host's loopback"
    );

    env.podrun_ok(&["down", "--grace-period", "1", &file]);
    assert_nothing_left(&env);
    drop(host_only);
}
