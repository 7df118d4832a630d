//! Applications (issue 17): a multi-document file of Deployments, a StatefulSet, Services
//! and a client Pod comes up with `play --wait-ready` on the shared network (the default for
//! a file with Services); from the client, a Service's short and full names reach every
//! replica, the headless Service names the StatefulSet's pod (`db-0.db`), the kubelet's
//! Service variables are set, and an unready replica gets no connections. `down FILE`
//! removes the workloads' pods and the Services and leaves nothing.

use std::collections::BTreeSet;

use podrun_e2e::pods::DEBIAN_CLIENT as CLIENT;
use podrun_e2e::pods::{
    assert_nothing_left, exec_until_ok, pasta_env, pasta_runs, pod_list, write_manifest,
    DownOnDrop, Network,
};
use podrun_e2e::TestEnv;

/// A busybox httpd on port 8080 (named `http`) answering `GET /` with the pod's hostname,
/// ready while /tmp/ready exists.
fn web_template(app: &str) -> String {
    format!(
        r#"    metadata:
      labels:
        app: {app}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
          failureThreshold: 1
"#
    )
}

fn app() -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  template:
{api}---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  selector:
    app: api
  ports:
  - port: 80
    targetPort: http
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels:
      app: db
  template:
{db}---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector:
    app: db
  ports:
  - port: 8080
---
{CLIENT}"#,
        api = web_template("api"),
        db = web_template("db"),
    )
}

/// `podrun play --wait-ready FILE`, with the network holder's linger shortened (500 ms), so
/// that after `down` its helper (slirp4netns or pasta) is gone well within
/// `assert_nothing_left`'s 10 s.
fn play_ready(env: &TestEnv, file: &str) {
    let args = ["play", "--wait-ready", "--timeout", "60s", file];
    let output = podrun_e2e::pods::podrun_short_linger(env, &args);
    assert!(output.status.success(), "podrun {} failed", args.join(" "));
}

/// The names of the pods whose WORKLOAD is `workload` (`ps -o json`).
fn pods_of(env: &TestEnv, kind: &str, name: &str) -> Vec<String> {
    pod_list(env)
        .iter()
        .filter(|item| {
            let controller = &item["x-podrun"]["state"]["controller"];
            controller["kind"] == kind && controller["name"] == name
        })
        .map(|item| item["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// The answers of `count` requests from the client to `host:port`. The client is the
/// Debian image: its bash resolves names with glibc's resolver (busybox-static's wget, a
/// static glibc program, cannot load the resolver and crashes on any DNS name).
fn answers(env: &TestEnv, host: &str, port: u16, count: usize) -> BTreeSet<String> {
    let script = format!(
        "bash -c 'for i in $(seq {count}); do exec 3<>/dev/tcp/{host}/{port} || exit 1; \
         printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&3; tail -n 1 <&3; exec 3<&-; done'"
    );
    exec_until_ok(env, "client", "main", &script)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn an_application_of_deployments_a_statefulset_and_services() {
    run_application(TestEnv::new());
}

/// The same with pasta as the shared network's way out (`[network] shared_uplink`).
#[test]
fn an_application_on_a_shared_network_whose_way_out_is_pasta() {
    let env = pasta_env();
    run_application(env);
}

fn run_application(env: TestEnv) {
    let pasta_wanted = std::fs::read_to_string(env.home().join(".config/podrun/config.toml"))
        .unwrap()
        .contains("pasta");
    let file = write_manifest(&env, "app.yaml", &app());
    let _down = DownOnDrop(&env, file.clone());
    play_ready(&env, &file);

    assert_eq!(
        pasta_runs(&env),
        pasta_wanted,
        "the way out is pasta: {pasta_wanted}"
    );
    let api = pods_of(&env, "Deployment", "api");
    assert_eq!(api.len(), 2, "two replicas: {api:?}");
    for pod in &api {
        let parts: Vec<&str> = pod.split('-').collect();
        assert_eq!(parts.len(), 3, "api-<hash>-<suffix>: {pod}");
        assert_eq!(parts[2].len(), 5, "{pod}");
    }
    assert_eq!(pods_of(&env, "StatefulSet", "db"), ["db-0"]);
    let owner = pod_list(&env)
        .into_iter()
        .find(|item| item["metadata"]["name"] == "db-0")
        .map(|item| item["metadata"]["ownerReferences"][0].clone())
        .unwrap();
    assert_eq!(owner["kind"], "StatefulSet", "{owner}");
    assert_eq!(owner["name"], "db", "{owner}");
    // Played again, the workloads would get more replicas: refused, nothing started.
    let again = env.podrun(&["play", &file]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "{stderr}");
    assert!(
        stderr.contains("run already") && stderr.contains("--replace"),
        "{stderr}"
    );
    assert_eq!(pods_of(&env, "Deployment", "api"), api);
    let table = env.podrun_ok(&["ps"]);
    assert!(
        table.contains("WORKLOAD") && table.contains("Deployment/api"),
        "{table}"
    );

    // Every name form of the Service reaches every replica.
    let replicas: BTreeSet<String> = api.iter().cloned().collect();
    for name in ["api", "api.default", "api.default.svc.cluster.local"] {
        let got = answers(&env, name, 80, 30);
        assert_eq!(got, replicas, "{name}:80 reached {got:?}");
    }
    // The StatefulSet's pod by its stable name under the headless Service.
    let db = answers(&env, "db-0.db", 8080, 1);
    assert_eq!(db, BTreeSet::from(["db-0".to_string()]));
    let lookup = exec_until_ok(
        &env,
        "client",
        "main",
        "getent ahostsv4 db.default.svc.cluster.local",
    );
    let db_ip = pod_list(&env)
        .iter()
        .find(|item| item["metadata"]["name"] == "db-0")
        .and_then(|item| item["status"]["podIP"].as_str().map(str::to_string))
        .unwrap();
    assert!(
        lookup.contains(&db_ip),
        "headless db answers db-0's {db_ip}: {lookup}"
    );
    // The kubelet's Service variables (the Services exist before the pods).
    let vars = exec_until_ok(&env, "client", "main", "env");
    assert!(vars.contains("API_SERVICE_HOST=10.96."), "{vars}");
    assert!(vars.contains("API_SERVICE_PORT=80"), "{vars}");
    assert!(
        !vars.contains("DB_SERVICE_HOST"),
        "headless: no variables: {vars}"
    );
    let resolv = exec_until_ok(&env, "client", "main", "cat /etc/resolv.conf");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local")
            && resolv.contains("options ndots:5"),
        "{resolv}"
    );

    // Readiness gates traffic: an unready replica gets none, and gets it back when ready.
    let (first, second) = (&api[0], &api[1]);
    env.podrun_ok(&["exec", first, "--", "rm", "/tmp/ready"]);
    let only_second = BTreeSet::from([second.clone()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while answers(&env, "api", 80, 20) != only_second {
        assert!(
            std::time::Instant::now() < deadline,
            "{first} still gets connections"
        );
    }
    env.podrun_ok(&["exec", first, "--", "touch", "/tmp/ready"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while answers(&env, "api", 80, 30) != replicas {
        assert!(
            std::time::Instant::now() < deadline,
            "{first} never came back"
        );
    }
    // `logs deploy/api` and `exec deploy/api` pick one of the Deployment's pods.
    let picked = env.podrun_ok(&["exec", "deploy/api", "--", "hostname"]);
    assert!(replicas.contains(picked.trim()), "{picked}");
    env.podrun_ok(&["logs", "deploy/api"]);
    let described = env.podrun_ok(&["describe", "sts/db"]);
    assert!(described.contains("db-0"), "{described}");
    let missing = env.podrun(&["logs", "deploy/nosuch"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no pod of Deployment `nosuch`"), "{stderr}");

    let down = env.podrun_ok(&["down", "--grace-period", "1", &file]);
    assert!(down.contains("service default/api removed"), "{down}");
    assert!(down.contains("pod default/db-0 removed"), "{down}");
    assert_nothing_left(&env);
    // No Service and, once the holder has seen the supervisors end and ended after its
    // linger, no address leased: no file but the network's locks and log.
    let network = if pasta_wanted {
        Network::SharedPasta
    } else {
        Network::SharedSlirp4netns
    };
    network.assert_released(&env);
}

/// A Service's `type` and the `nodePort` line of its one port (indented for `ports:`), for a
/// NodePort Service at `node_port` or a ClusterIP one.
fn service_type(node_port: Option<u16>) -> (&'static str, String) {
    match node_port {
        Some(port) => ("NodePort", format!("\n    nodePort: {port}")),
        None => ("ClusterIP", String::new()),
    }
}

/// A node port free on the host and not handed to another test of this run (tests run in
/// parallel, each with its own user's services.json).
fn free_node_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(30000);
    loop {
        let port = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(port <= 32767, "no free port left in 30000-32767");
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn service_names_across_namespaces_srv_records_and_node_ports() {
    service_names(TestEnv::new());
}

/// The same with pasta as the way out: names as with slirp4netns, and the node port
/// relayed by the holder itself (pasta adds no forward while it runs).
#[test]
fn service_names_with_pasta_as_the_way_out() {
    let env = pasta_env();
    service_names(env);
}

/// The echo application: a Deployment of namespace prod behind a Service (NodePort at
/// `node_port`, else ClusterIP), and the client in default.
fn echo_app(node_port: Option<u16>) -> String {
    let (kind, node_port) = service_type(node_port);
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: prod
spec:
  selector:
    matchLabels:
      app: echo
  template:
{echo}---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: prod
spec:
  type: {kind}
  selector:
    app: echo
  ports:
  - name: http
    port: 80
    targetPort: http{node_port}
---
{CLIENT}"#,
        echo = web_template("echo"),
    )
}

fn service_names(env: TestEnv) {
    let node_port = free_node_port();
    let file = write_manifest(&env, "echo.yaml", &echo_app(Some(node_port)));
    let _down = DownOnDrop(&env, file.clone());
    play_ready(&env, &file);
    let echo = pods_of(&env, "Deployment", "echo");
    assert_eq!(echo.len(), 1, "{echo:?}");
    let lookup = |name: &str| env.podrun(&["exec", "client", "--", "getent", "ahostsv4", name]);
    // The Service of another namespace by `svc.ns`, `svc.ns.svc` and its full name.
    let full = lookup("echo.prod.svc.cluster.local");
    assert!(full.status.success(), "echo.prod.svc.cluster.local");
    let cluster_ip = String::from_utf8_lossy(&full.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(cluster_ip.starts_with("10.96."), "{cluster_ip}");
    for name in ["echo.prod", "echo.prod.svc"] {
        let out = lookup(name);
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(&cluster_ip),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // A name of the cluster domain that does not exist is an error, at once.
    let started = std::time::Instant::now();
    assert!(!lookup("nosuch.prod.svc.cluster.local").status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // SRV for the named port (busybox's own resolver, in the echo pod).
    let srv = exec_until_ok(
        &env,
        &format!("prod/{}", echo[0]),
        "web",
        "nslookup -type=SRV _http._tcp.echo.prod.svc.cluster.local",
    );
    assert!(
        srv.contains("80") && srv.contains("echo.prod.svc.cluster.local"),
        "{srv}"
    );
    // Services of other namespaces give no variables.
    let vars = exec_until_ok(&env, "client", "main", "env");
    assert!(!vars.contains("ECHO_SERVICE_HOST"), "{vars}");
    // The node port on the host's loopback reaches the Service's pod.
    let answer = podrun_e2e::net::http_get(&format!("127.0.0.1:{node_port}"));
    assert!(answer.ends_with(&format!("\n{}\n", echo[0])), "{answer}");

    env.podrun_ok(&["down", "--grace-period", "1", &file]);
    assert_nothing_left(&env);
    std::net::TcpListener::bind(("0.0.0.0", node_port))
        .unwrap_or_else(|e| panic!("node port {node_port} still taken after down: {e}"));
}

#[test]
fn replica_sets_and_daemon_sets_make_their_pods() {
    let env = TestEnv::new();
    let template = r#"    metadata:
      labels:
        app: worker
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sleep", "3600"]
"#;
    let file = write_manifest(
        &env,
        "workers.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: workers
spec:
  replicas: 3
  selector:
    matchLabels:
      app: worker
  template:
{template}---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: worker
  template:
{template}"#
        ),
    );
    let _down = DownOnDrop(&env, file.clone());
    play_ready(&env, &file);
    let workers = pods_of(&env, "ReplicaSet", "workers");
    assert_eq!(workers.len(), 3, "{workers:?}");
    let agents = pods_of(&env, "DaemonSet", "agent");
    assert_eq!(agents.len(), 1, "one node, one pod: {agents:?}");
    for pod in workers.iter().chain(&agents) {
        let (prefix, suffix) = pod.rsplit_once('-').unwrap();
        assert!(["workers", "agent"].contains(&prefix), "{pod}");
        assert_eq!(suffix.len(), 5, "{pod}");
    }
    env.podrun_ok(&["exec", "rs/workers", "--", "true"]);
    env.podrun_ok(&["exec", "ds/agent", "--", "true"]);
    env.podrun_ok(&["down", "--grace-period", "0", &file]);
    assert_nothing_left(&env);
}

#[test]
fn a_udp_service_reaches_its_pod() {
    udp_service(TestEnv::new(), None);
}

/// With pasta as the way out, also from the host through a node port: the holder relays
/// the datagrams (with slirp4netns, libslirp 4.7 drops UDP from the host's 127.0.0.1: see
/// docs/ARCHITECTURE.md, "Known limit").
#[test]
fn a_udp_node_port_reaches_its_pod_with_pasta_as_the_way_out() {
    udp_service(pasta_env(), Some(free_node_port()));
}

fn udp_service(env: TestEnv, node_port: Option<u16>) {
    let (kind, node_port_field) = service_type(node_port);
    let echo = std::path::Path::new(env!("CARGO_BIN_EXE_udp-echo"));
    let file = write_manifest(
        &env,
        "udp.yaml",
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
spec:
  selector:
    matchLabels:
      app: echo
  template:
    metadata:
      labels:
        app: echo
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: echo
        image: nginx:1.23
        command: ["/probe/udp-echo", "5353"]
        ports:
        - name: echo
          containerPort: 5353
          protocol: UDP
        volumeMounts:
        - name: probe
          mountPath: /probe
          readOnly: true
      volumes:
      - name: probe
        hostPath:
          path: {dir}
          type: Directory
---
apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  type: {kind}
  selector:
    app: echo
  ports:
  - port: 53
    protocol: UDP
    targetPort: echo{node_port_field}
---
{CLIENT}"#,
            dir = echo.parent().unwrap().display(),
        ),
    );
    let _down = DownOnDrop(&env, file.clone());
    play_ready(&env, &file);
    // bash's /dev/udp: a datagram to the Service's name and port, the echo back.
    let script = "bash -c 'exec 3<>/dev/udp/echo/53; echo ping-udp >&3; timeout 3 head -n 1 <&3'";
    let answer = exec_until_ok(&env, "client", "main", script);
    assert_eq!(answer.trim(), "ping-udp");
    if let Some(port) = node_port {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(3)))
            .unwrap();
        socket
            .send_to(b"ping-node-port\n", ("127.0.0.1", port))
            .unwrap();
        let mut buffer = [0u8; 64];
        let length = socket
            .recv(&mut buffer)
            .expect("the echo through the node port");
        assert_eq!(&buffer[..length], b"ping-node-port\n");
    }
    env.podrun_ok(&["down", "--grace-period", "0", &file]);
    assert_nothing_left(&env);
    if let Some(port) = node_port {
        std::net::UdpSocket::bind(("0.0.0.0", port))
            .unwrap_or_else(|e| panic!("node port {port}/udp still taken after down: {e}"));
    }
}

/// A nodePort another program has on the host is refused before anything starts, naming
/// the Service and the port; nothing is stored or left.
#[test]
fn a_node_port_in_use_on_the_host_is_refused() {
    let env = TestEnv::new();
    let port = free_node_port();
    let _taken = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    let file = write_manifest(&env, "echo.yaml", &echo_app(Some(port)));
    let _down = DownOnDrop(&env, file.clone());
    let refused = env.podrun(&["play", &file]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "play with a node port in use");
    assert!(
        stderr.contains("prod/echo") && stderr.contains(&format!("nodePort {port}/tcp is in use")),
        "{stderr}"
    );
    assert_nothing_left(&env);
    Network::SharedSlirp4netns.assert_released(&env);
}
