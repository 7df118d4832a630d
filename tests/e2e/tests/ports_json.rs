//! Where a pod listens: free host ports for `--publish CONTAINERPORT` (two plays at once get
//! different ones), `podrun port`, the IP and PORTS of `ps -o wide` and `describe`, and
//! `ps -o json` / `play --wait-ready -o json|yaml` as a Kubernetes `v1` `PodList` that the
//! jq paths of `kubectl get pods -o json` read. The real binary, as the ordinary test user;
//! traffic over the host's loopback only.

use std::process::Stdio;

use podrun_e2e::net::http_get;
use podrun_e2e::pods::{assert_nothing_left, pod_list, write_manifest, DownOnDrop};
use podrun_e2e::{podrun_bin, TestEnv};

/// A busybox pod serving its own name over HTTP on port 80; it declares port 81 with
/// `hostPort: 0`, which Kubernetes reads as "not published".
fn web(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports:
    - containerPort: 80
    - containerPort: 81
      hostPort: 0
"#
    )
}

/// The one item of a `PodList` printed by `play`, after checking the list's shape.
fn only_item(list: &serde_json::Value, name: &str) -> serde_json::Value {
    assert_eq!(list["apiVersion"], "v1", "{list:#}");
    assert_eq!(list["kind"], "PodList", "{list:#}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list:#}");
    assert_eq!(items[0]["kind"], "Pod");
    assert_eq!(items[0]["metadata"]["name"], name);
    items[0].clone()
}

/// What `kubectl get pods -o json` users check of a running, ready pod: `.status.phase`,
/// `.status.podIP`, `.status.conditions` (Ready True), `.status.containerStatuses[].ready`,
/// `.state.running.startedAt`.
fn assert_running_and_ready(pod: &serde_json::Value) {
    let status = &pod["status"];
    assert_eq!(status["phase"], "Running", "{pod:#}");
    assert_eq!(status["podIP"], "10.0.2.100", "{pod:#}");
    assert!(status["hostIP"].as_str().is_some_and(|ip| !ip.is_empty()));
    assert!(status["startTime"].is_string(), "{pod:#}");
    let conditions = status["conditions"].as_array().expect("conditions");
    for kind in ["Ready", "ContainersReady", "Initialized", "PodScheduled"] {
        let condition = conditions
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} condition: {pod:#}"));
        assert_eq!(condition["status"], "True", "{kind}: {pod:#}");
    }
    let containers = status["containerStatuses"].as_array().expect("statuses");
    assert!(!containers.is_empty());
    for c in containers {
        assert_eq!(c["ready"], true, "{pod:#}");
        assert_eq!(c["restartCount"], 0, "{pod:#}");
        assert!(c["state"]["running"]["startedAt"].is_string(), "{pod:#}");
        assert!(c["lastState"].is_object(), "{pod:#}");
    }
    // The spec as the manifest gave it.
    assert_eq!(pod["spec"]["containers"][0]["ports"][1]["hostPort"], 0);
}

/// The host port `podrun` published for container port 80, from the pod's `x-podrun`.
fn host_port(pod: &serde_json::Value) -> u16 {
    let ports = pod["x-podrun"]["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1, "only port 80 is published: {pod:#}");
    assert_eq!(ports[0]["container_port"], 80);
    let port = ports[0]["host_port"].as_u64().unwrap() as u16;
    assert_ne!(port, 0);
    port
}

#[test]
fn publish_without_a_host_port_picks_free_ports_that_parallel_plays_do_not_share() {
    let env = TestEnv::new();
    let names = ["web-a", "web-b"];
    let files: Vec<String> = names
        .iter()
        .map(|name| write_manifest(&env, &format!("{name}.yaml"), &web(name)))
        .collect();
    let _down: Vec<DownOnDrop> = files
        .iter()
        .map(|file| DownOnDrop(&env, file.clone()))
        .collect();
    // Both at once, each picking a free host port for its container port 80.
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            env.command(podrun_bin())
                .args(["play", "--publish", "80", "--wait-ready", "-o", "json"])
                .args(["--timeout", "60s", file])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run podrun play")
        })
        .collect();
    let mut ports = Vec::new();
    for (child, name) in children.into_iter().zip(names) {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "play {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
        let pod = only_item(&list, name);
        assert_running_and_ready(&pod);
        ports.push(host_port(&pod));
    }
    assert_ne!(ports[0], ports[1], "two plays got the same free port");

    for (name, port) in names.iter().zip(&ports) {
        // `podrun port` as `docker port` prints it; port 81 (hostPort 0) is not published.
        assert_eq!(
            env.podrun_ok(&["port", name]),
            format!("80/tcp -> 0.0.0.0:{port}\n")
        );
        assert_eq!(
            env.podrun_ok(&["port", name, "80/tcp"]),
            format!("0.0.0.0:{port}\n")
        );
        let err = env.podrun_err(&["port", name, "81"]);
        assert!(
            err.contains(&format!(
                "pod `default/{name}`: no host port is published for 81/tcp"
            )),
            "{err}"
        );
        // Each port reaches its own pod.
        let answer = http_get(&format!("127.0.0.1:{port}"));
        assert!(answer.ends_with(&format!("\n{name}\n")), "{answer}");
    }
    let err = env.podrun_err(&["port", "nope"]);
    assert!(err.contains("pod nope not found in any namespace"), "{err}");
    let err = env.podrun_err(&["port", "default/nope"]);
    assert!(err.contains("pod `default/nope` not found"), "{err}");
    let err = env.podrun_err(&["port", "web-a", "80/sctp"]);
    assert!(err.contains("tcp or udp"), "{err}");

    // ps -o json: a PodList whose items read as kubectl's do.
    let items = pod_list(&env);
    assert_eq!(items.len(), 2);
    for pod in &items {
        assert_running_and_ready(pod);
        assert_eq!(pod["metadata"]["namespace"], "default");
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert_eq!(pod["metadata"]["labels"]["app"], name);
        assert_eq!(pod["metadata"]["uid"], pod["x-podrun"]["state"]["uid"]);
    }
    let published: Vec<u16> = items.iter().map(host_port).collect();
    assert_eq!(published, ports);

    // ps -o wide: IP and PORTS; describe: IP and Ports.
    let wide = env.podrun_ok(&["ps", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    for (line, port) in wide.lines().skip(1).zip(&ports) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[column("IP")], "10.0.2.100", "{wide}");
        assert_eq!(
            cells[column("PORTS")],
            format!("0.0.0.0:{port}->80/tcp"),
            "{wide}"
        );
    }
    let describe = env.podrun_ok(&["describe", "web-b"]);
    let line = |key: &str| -> Vec<&str> {
        let line = describe.lines().find(|l| l.starts_with(key));
        line.expect(&describe).split_whitespace().collect()
    };
    assert_eq!(line("IP:"), ["IP:", "10.0.2.100"], "{describe}");
    let ports_line = format!("0.0.0.0:{}->80/tcp", ports[1]);
    assert_eq!(
        line("Ports:"),
        ["Ports:", ports_line.as_str()],
        "{describe}"
    );
    let described: serde_json::Value =
        serde_json::from_str(&env.podrun_ok(&["describe", "web-b", "-o", "json"])).unwrap();
    assert_eq!(described["kind"], "Pod");
    assert_running_and_ready(&described);

    for file in &files {
        env.podrun_ok(&["down", file]);
    }
    assert_nothing_left(&env);
    // The ports are free again.
    for port in ports {
        std::net::TcpListener::bind(("0.0.0.0", port)).expect("the host port is freed");
    }
}

/// pasta takes the free port on the host address given, and `play -o yaml` prints the
/// PodList as YAML.
#[test]
fn pasta_publishes_a_free_port_on_the_address_given() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "web-p.yaml", &web("web-p"));
    let _down = DownOnDrop(&env, file.clone());
    let yaml = env.podrun_ok(&[
        "play",
        "--network",
        "pasta",
        "-p",
        "127.0.0.1::80",
        "--wait-ready",
        "--timeout",
        "60s",
        "-o",
        "yaml",
        &file,
    ]);
    let list: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
    let pod = only_item(&list, "web-p");
    assert_running_and_ready(&pod);
    let port = host_port(&pod);
    assert_eq!(pod["x-podrun"]["ports"][0]["host_ip"], "127.0.0.1");
    assert_eq!(pod["x-podrun"]["network"], "pasta");
    assert_eq!(
        env.podrun_ok(&["port", "web-p", "80"]),
        format!("127.0.0.1:{port}\n")
    );
    let answer = http_get(&format!("127.0.0.1:{port}"));
    assert!(answer.ends_with("\nweb-p\n"), "{answer}");
    env.podrun_ok(&["down", &file]);
    assert_nothing_left(&env);
}
