//! Kubernetes fidelity (issue 8): manifests written the way the Kubernetes task documentation
//! writes them — a pod that prints what it sees — played by the ordinary test user and
//! checked through `podrun logs` and `podrun exec`. The same manifests are checked against
//! the Kubernetes API types in crates/manifest (`tests::fidelity_manifests_are_valid_kubernetes`),
//! which reads this file's `*.yaml` constants from tests/e2e/manifests/.

use std::time::{Duration, Instant};

use podrun_e2e::pods::*;
use podrun_e2e::{base64, TestEnv};

/// Plays `name` from tests/e2e/manifests/ and returns the path written for the test user.
fn play(env: &TestEnv, name: &str) -> String {
    let file = write_manifest(env, name, &test_manifest(name));
    env.podrun_ok(&["play", &file]);
    file
}

fn host_cpus() -> u64 {
    let out = std::process::Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn host_memory_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// "Define dependent environment variables" and "Define a command and arguments": `$(VAR)`
/// in env values, command and args, as the kubelet expands it.
#[test]
fn dependent_variables_and_command_arguments_expand_as_on_a_cluster() {
    let env = TestEnv::new();
    let file = play(&env, "dependent-envars.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let log = wait_for_logs(&env, &["dependent-envars-demo"], &["--", "END"]);
    let vars = env_of(&log);
    // Defined before: expanded. Defined later or never: left as written. `$$` escapes.
    assert_eq!(vars["SERVICE_ADDRESS"], "https://172.17.0.1:80", "{log}");
    assert_eq!(
        vars["UNCHANGED_REFERENCE"], "$(PROTOCOL)://172.17.0.1:80",
        "{log}"
    );
    assert_eq!(
        vars["ESCAPED_REFERENCE"], "$(PROTOCOL)://172.17.0.1:80",
        "{log}"
    );
    assert_eq!(vars["FROM_CONFIG_MAP"], "cm-value/$(NOT_DEFINED)", "{log}");
    // The image's variables (PATH) are not the kubelet's to expand.
    assert_eq!(vars["IMAGE_PATH"], "$(PATH)", "{log}");
    // An alias of an anchored value; a double-quoted string folded over two lines.
    assert_eq!(vars["PROTOCOL_ALIAS"], "https", "{log}");
    assert_eq!(vars["FOLDED"], "first line continued", "{log}");
    // command and args see every variable of the container, also later ones.
    let words: Vec<&str> = log.lines().skip_while(|l| *l != "--").skip(1).collect();
    assert_eq!(
        words,
        [
            "Warm greetings to The Most Honorable Kubernetes",
            "https literal $(PROTOCOL) $(MISSING)",
            "END"
        ],
        "{log}"
    );
    // The container has ended: a plain down.
    env.podrun_ok(&["down", &file]);
}

/// "Expose Pod information to containers through environment variables": fieldRef and
/// resourceFieldRef, with divisors, and the node's allocatable for a container without
/// limits.
#[test]
fn downward_api_environment_variables() {
    let env = TestEnv::new();
    let file = play(&env, "dapi-envars.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let log = wait_for_logs(
        &env,
        &["dapi-envars-fieldref", "-c", "test-container"],
        &["--"],
    );
    let vars = env_of(&log);
    let json = pod_json(&env, "dapi-envars-fieldref");
    let hostname = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(vars["MY_POD_NAME"], "dapi-envars-fieldref", "{log}");
    assert_eq!(vars["MY_POD_NAMESPACE"], "default", "{log}");
    assert_eq!(
        vars["MY_POD_UID"],
        json["state"]["uid"].as_str().unwrap(),
        "{log}"
    );
    assert_eq!(vars["MY_NODE_NAME"], hostname, "{log}");
    assert_eq!(vars["MY_POD_SERVICE_ACCOUNT"], "default", "{log}");
    assert_eq!(
        vars["MY_POD_IP"], "10.0.2.100",
        "slirp4netns's address: {log}"
    );
    assert_eq!(vars["MY_POD_IPS"], "10.0.2.100", "{log}");
    let host_ip: std::net::Ipv4Addr = vars["MY_HOST_IP"].parse().expect(&log);
    assert_eq!(vars["MY_HOST_IPS"], host_ip.to_string(), "{log}");
    assert_eq!(vars["MY_APP_LABEL"], "dapi", "{log}");
    assert_eq!(vars["MY_BUILD_ANNOTATION"], "1234", "{log}");
    assert_eq!(vars["MY_CPU_REQUEST"], "125", "{log}");
    assert_eq!(
        vars["MY_CPU_LIMIT"], "1",
        "250m in whole cores, rounded up: {log}"
    );
    assert_eq!(vars["MY_MEM_REQUEST"], "32", "{log}");
    assert_eq!(vars["MY_MEM_LIMIT"], "67108864", "{log}");
    // Another container's resources, by containerName; it has no limits: the node's.
    assert_eq!(
        vars["SIDECAR_CPU_LIMIT"],
        (host_cpus() * 1000).to_string(),
        "{log}"
    );
    assert_eq!(
        vars["SIDECAR_MEM_LIMIT"],
        host_memory_bytes().div_ceil(1 << 20).to_string(),
        "{log}"
    );
    assert_eq!(vars["SIDECAR_MEM_REQUEST"], "0", "{log}");
    // The pod's metadata, as `ps -o json` and `describe` show it.
    let item = pod_item(&env, "dapi-envars-fieldref");
    let metadata = &item["metadata"];
    assert_eq!(metadata["namespace"], "default");
    assert_eq!(metadata["labels"]["app"], "dapi", "{item}");
    assert_eq!(metadata["annotations"]["build"], "1234", "{item}");
    assert_eq!(metadata["uid"], json["state"]["uid"], "{item}");
    // The status of the API: podIP and hostIP as the downward API gave them.
    assert_eq!(
        item["status"]["podIP"],
        vars["MY_POD_IP"].as_str(),
        "{item}"
    );
    assert_eq!(
        item["status"]["hostIP"],
        vars["MY_HOST_IP"].as_str(),
        "{item}"
    );
    assert_eq!(item["spec"]["nodeName"], hostname.as_str(), "{item}");
    let describe = env.podrun_ok(&["describe", "dapi-envars-fieldref"]);
    let line = |key: &str| -> Vec<String> {
        let line = describe
            .lines()
            .find(|l| l.starts_with(key))
            .expect(&describe);
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(line("Labels:"), ["Labels:", "app=dapi"], "{describe}");
    assert_eq!(
        line("Annotations:"),
        ["Annotations:", "build=1234"],
        "{describe}"
    );
    down_and_check(&env, &file, &["dapi-envars-fieldref"]);
}

/// "Expose Pod information to containers through files": a downwardAPI volume and a
/// projected volume (configMap, secret and downwardAPI sources), with their file modes.
#[test]
fn downward_api_and_projected_volumes() {
    let env = TestEnv::new();
    let file = play(&env, "dapi-volume.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let out = exec_until_ok(
        &env,
        "kubernetes-downwardapi-volume-example",
        "client-container",
        "cd /etc/podinfo && for f in labels annotations cpu_limit mem_request; do echo \"$f:$(cat $f)\"; done; stat -c '%a %n' cpu_limit mem_request labels",
    );
    let expected = "labels:cluster=\"test-cluster1\"\nrack=\"rack-22\"\nzone=\"us-est-coast\"\n\
                    annotations:build=\"two\"\nbuilder=\"john-doe\"\n\
                    cpu_limit:500\n\
                    mem_request:32\n\
                    400 cpu_limit\n444 mem_request\n444 labels\n";
    assert_eq!(out, expected);

    let projected = exec_until_ok(
        &env,
        "kubernetes-downwardapi-volume-example",
        "client-container",
        "cd /projected-volume && for f in username password config/mode podname; do echo \"$f:$(cat $f)\"; done; stat -c '%a %n' username password config/mode podname",
    );
    assert_eq!(
        projected,
        "username:admin\npassword:1f2d1e2e67df\nconfig/mode:projected\npodname:kubernetes-downwardapi-volume-example\n\
         440 username\n400 password\n440 config/mode\n440 podname\n"
    );
    // Mounted read-only, as the kubelet mounts them.
    let write = env.podrun(&[
        "exec",
        "kubernetes-downwardapi-volume-example",
        "-c",
        "client-container",
        "--",
        "sh",
        "-c",
        "echo x > /etc/podinfo/new || echo x > /projected-volume/new",
    ]);
    assert!(!write.status.success());
    down_and_check(&env, &file, &["kubernetes-downwardapi-volume-example"]);
}

/// A flow-style file (`{apiVersion: "v1", ...}`) whose Pod comes first and refers to a
/// ConfigMap (data and binaryData) and a Secret (data and stringData) of later documents,
/// through env, envFrom with a prefix, optional references and volume items.
#[test]
fn flow_style_multi_document_file_with_later_config_map_and_secret() {
    let env = TestEnv::new();
    let file = play(&env, "flow-multidoc.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let log = wait_for_logs(&env, &["flow-demo"], &["--", "END"]);
    let vars = env_of(&log);
    assert_eq!(vars["SPECIAL_LEVEL"], "very", "{log}");
    assert_eq!(vars["DB_PASSWORD"], "s3cr3t", "data, base64-decoded: {log}");
    assert_eq!(vars["DB_USER"], "admin", "stringData: {log}");
    assert_eq!(vars["CFG_SPECIAL_TYPE"], "charm", "envFrom prefix: {log}");
    assert_eq!(vars["CFG_SPECIAL_LEVEL"], "very", "{log}");
    assert!(
        !vars.contains_key("CFG_1INVALID"),
        "invalid names are skipped: {log}"
    );
    assert!(
        !vars.contains_key("MAYBE"),
        "a missing optional key sets nothing: {log}"
    );
    let files: Vec<&str> = log.lines().skip_while(|l| *l != "--").skip(1).collect();
    assert_eq!(
        files,
        ["type=charm", "blob=hello", "user=admin", "END"],
        "{log}"
    );
    // The container has ended: a plain down.
    env.podrun_ok(&["down", &file]);
}

/// Sources that need a cluster's API server are refused by name before anything starts.
#[test]
fn service_account_token_projection_is_refused_by_name() {
    let env = TestEnv::new();
    let text = test_manifest("dapi-volume.yaml").replace(
        "- downwardAPI:\n          items:\n          - path: podname",
        "- serviceAccountToken:\n          path: token\n      - downwardAPI:\n          items:\n          - path: podname",
    );
    assert!(text.contains("serviceAccountToken"));
    let file = write_manifest(&env, "token.yaml", &text);
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains(
            "projected.sources[2].serviceAccountToken: Forbidden: not supported by podrun"
        ),
        "{err}"
    );
    assert!(pod_list(&env).is_empty());
}

#[test]
fn image_pull_secrets_authenticate_the_pull() {
    use podrun_e2e::setting;
    let env = TestEnv::new();
    let registry = setting("PODRUN_TEST_AUTH_REGISTRY");
    let login = base64(&format!(
        "{}:{}",
        setting("PODRUN_TEST_AUTH_USER"),
        setting("PODRUN_TEST_AUTH_PASSWORD")
    ));
    let docker_config = base64(&format!(
        r#"{{"auths":{{"{registry}":{{"auth":"{login}"}}}}}}"#
    ));
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: private-reg\nspec:\n  restartPolicy: Never\n  containers:\n  - name: private-reg-container\n    image: {registry}/library/busybox:latest\n    command: [\"echo\", \"pulled-with-secret\"]\n  imagePullSecrets:\n  - name: regcred\n"
    );

    // Without the Secret, the pull has no login: a warning names it, the registry refuses.
    let file = write_manifest(&env, "no-secret.yaml", &pod);
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains("imagePullSecrets[0].name: Secret \"regcred\" is not in"),
        "{err}"
    );
    assert!(err.contains("requires credentials"), "{err}");

    let with_secret = format!(
        "{pod}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {docker_config}\n"
    );
    let file = write_manifest(&env, "private-reg.yaml", &with_secret);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    wait_for_logs(&env, &["private-reg"], &["pulled-with-secret"]);
    // The login was written for the pull and removed; the user's logins are untouched.
    let run = env.root().join("run");
    let left: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pull-logins"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!env.home().join(".docker/config.json").exists());
    assert!(!run.join("containers/auth.json").exists());
    // The container has ended: a plain down.
    env.podrun_ok(&["down", &file]);
    // Another pull of the image, without the pod's Secret, still needs a login.
    let err = env.podrun_err(&["pull", &format!("{registry}/library/busybox:latest")]);
    assert!(err.contains("requires credentials"), "{err}");
}

/// `podrun validate FILE`: what `play --strict` checks, without running anything.
#[test]
fn validate_checks_a_manifest_without_running_it() {
    let env = TestEnv::new();
    let good = write_manifest(&env, "dapi-volume.yaml", &test_manifest("dapi-volume.yaml"));
    let out = env.podrun_ok(&["validate", &good]);
    assert_eq!(
        out,
        format!("{good}: valid: 1 pod (default/kubernetes-downwardapi-volume-example), 1 ConfigMap, 1 Secret\n")
    );

    // A field podrun would ignore is an error, as with play --strict; exit 1.
    let unsupported = write_manifest(
        &env,
        "unsupported.yaml",
        "{ apiVersion: \"v1\", kind: \"Pod\", metadata: { name: \"p\" },\n  spec: { hostIPC: true, containers: [ { name: \"a\", image: \"busybox\" } ] } }\n",
    );
    let out = env.podrun(&["validate", &unsupported]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported.yaml: document 1: spec.hostIPC: not supported by podrun yet"),
        "{err}"
    );

    // A syntax error names the file, line and column.
    let broken = write_manifest(
        &env,
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: [p}\n",
    );
    let err = env.podrun_err(&["validate", &broken]);
    assert!(
        err.contains("broken.yaml: document 1: line 3 column"),
        "{err}"
    );

    // What play would refuse while planning is refused too: a probe on a port name the
    // container does not declare (the API server takes it; the kubelet would fail it).
    let probe = write_manifest(
        &env,
        "probe.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: probed}\nspec:\n  containers:\n  - name: web\n    image: busybox\n    readinessProbe: {tcpSocket: {port: http}}\n",
    );
    let out = env.podrun(&["validate", &probe]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pod `default/probed`: spec.containers[0].readinessProbe.tcpSocket.port: the container has no port named `http`"),
        "{err}"
    );
    let play = env.podrun_err(&["play", &probe]);
    assert!(
        play.contains("the container has no port named `http`"),
        "{play}"
    );
    assert!(pod_list(&env).is_empty(), "nothing ran");
}

/// A pod's identity is namespace/name: the same name in two namespaces makes two pods, and
/// the downward API reports each one's namespace.
#[test]
fn the_namespace_is_part_of_the_pod_identity() {
    let env = TestEnv::new();
    let pod = |namespace: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: same\n{namespace}spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo ns=$(NS); exec sleep 3600']\n    env:\n    - name: NS\n      valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}\n"
        )
    };
    let default = write_manifest(&env, "default.yaml", &pod(""));
    let team = write_manifest(&env, "team.yaml", &pod("  namespace: team-a\n"));
    env.podrun_ok(&["play", &default]);
    let _down = DownOnDrop(&env, default.clone());
    env.podrun_ok(&["play", &team]);
    let _down_team = DownOnDrop(&env, team.clone());
    wait_for_logs(&env, &["same"], &["ns=default"]);
    wait_for_logs(&env, &["team-a/same"], &["ns=team-a"]);
    let ids: Vec<String> = pod_list(&env)
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["metadata"]["namespace"].as_str().unwrap(),
                p["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ids, ["default/same", "team-a/same"]);
    env.podrun_ok(&["down", &team]);
    env.podrun_ok(&["down", &default]);
}

/// "Determine the Reason for Pod Failure": what a container writes to its
/// terminationMessagePath (the default one as a non-root user, or its own) becomes its
/// terminated state's message; with FallbackToLogsOnError a failed container's last 80 log
/// lines do; the pod's 12 KiB of messages are shared evenly by its containers.
#[test]
fn termination_message_from_the_file_and_from_the_logs() {
    let env = TestEnv::new();
    let file = play(&env, "termination.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let json = loop {
        let json = pod_json(&env, "termination-demo");
        if json["state"]["phase"] == "Failed" {
            break json;
        }
        assert!(Instant::now() < deadline, "never failed: {json:#}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let containers = json["state"]["containers"].as_array().unwrap();
    let message = |i: usize| containers[i]["message"].as_str().unwrap_or_default();
    assert_eq!(message(0), "Sleep expired\n", "{json:#}");
    assert_eq!(containers[0]["exit_code"], 0);
    assert_eq!(message(1), "quota exceeded\n", "{json:#}");
    let expected: String = (22..=100)
        .map(|i| format!("line {i}\n"))
        .chain(["fatal: disk full\n".to_string()])
        .collect();
    assert_eq!(message(2), expected, "{json:#}");
    assert_eq!(containers[2]["termination_message"], message(2));
    // Four containers share the pod's 12 KiB: 3072 bytes each, the first ones kept.
    let long: String = "message\n".repeat(512);
    assert_eq!(message(3), &long[..3072], "{json:#}");

    let describe = env.podrun_ok(&["describe", "termination-demo"]);
    assert!(
        describe
            .lines()
            .any(|l| l.trim_start().starts_with("Message:") && l.ends_with(" Sleep expired")),
        "{describe}"
    );
    env.podrun_ok(&["down", &file]);
}

/// activeDeadlineSeconds: once the pod has run that long it is Failed with the reason
/// DeadlineExceeded, its container stopped and not restarted; `play --wait` fails.
#[test]
fn active_deadline_fails_the_pod() {
    let env = TestEnv::new();
    let start = Instant::now();
    let file = play(&env, "active-deadline.yaml");
    let _down = DownOnDrop(&env, file.clone());
    wait_for_logs(&env, &["deadline-demo"], &["started"]);
    let json = pod_json(&env, "deadline-demo");
    assert_eq!(json["state"]["phase"], "Running", "{json:#}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let json = loop {
        let json = pod_json(&env, "deadline-demo");
        if json["state"]["containers"][0]["state"] == "exited" {
            break json;
        }
        assert!(Instant::now() < deadline, "never stopped: {json:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(json["state"]["phase"], "Failed", "{json:#}");
    assert_eq!(json["state"]["reason"], "DeadlineExceeded", "{json:#}");
    // Not restarted (the pod's restartPolicy is Always).
    std::thread::sleep(Duration::from_secs(2));
    let json = pod_json(&env, "deadline-demo");
    assert_eq!(
        json["state"]["containers"][0]["state"], "exited",
        "{json:#}"
    );
    assert_eq!(json["restarts"], 0, "{json:#}");
    let describe = env.podrun_ok(&["describe", "deadline-demo"]);
    assert!(
        describe
            .lines()
            .any(|l| l.starts_with("Reason:") && l.ends_with(" DeadlineExceeded")),
        "{describe}"
    );
    env.podrun_ok(&["down", &file]);

    let output = env.podrun(&["play", "--wait", &file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("failed (DeadlineExceeded)"), "{stderr}");
}

/// A workingDir missing from the image is created (as containerd and CRI-O do) and the
/// container starts in it, whatever user it runs as.
#[test]
fn working_dir_is_created_when_missing() {
    let env = TestEnv::new();
    let file = play(&env, "working-dir.yaml");
    let _down = DownOnDrop(&env, file.clone());
    wait_for_logs(
        &env,
        &["working-dir", "-c", "missing"],
        &["cwd=/srv/app/data", "drwxr-xr-x"],
    );
    wait_for_logs(&env, &["working-dir", "-c", "existing"], &["cwd=/etc"]);
    env.podrun_ok(&["down", &file]);
}

/// hostAliases in /etc/hosts in the kubelet's format; dnsPolicy None with dnsConfig, and
/// dnsConfig merged into the host-derived resolv.conf of the default policy.
#[test]
fn host_aliases_and_dns_config() {
    let env = TestEnv::new();
    let file = play(&env, "hostaliases-dns.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let log = wait_for_logs(&env, &["hostaliases-pod"], &["--", "options"]);
    let (hosts, resolv) = log.split_once("--\n").unwrap();
    assert!(
        hosts.ends_with(
            "\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\tbar.remote\n"
        ),
        "{hosts}"
    );
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{hosts}"
    );
    assert!(hosts.contains("\n10.0.2.100\thostaliases-pod\n"), "{hosts}");
    assert_eq!(
        resolv,
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 192.0.2.1\noptions ndots:2 edns0\n"
    );

    // The default policy (ClusterFirst: the host's resolver here) with dnsConfig merged in.
    let merged = write_manifest(
        &env,
        "merged.yaml",
        "{ apiVersion: v1, kind: Pod, metadata: { name: merged },\n  spec: { restartPolicy: Never,\n    dnsConfig: { nameservers: [ 192.0.2.7 ], searches: [ my.dns.search.suffix ], options: [ { name: ndots, value: \"3\" } ] },\n    containers: [ { name: c, image: busybox, command: [ cat, /etc/resolv.conf ] } ] } }\n",
    );
    env.podrun_ok(&["play", &merged]);
    let _down_merged = DownOnDrop(&env, merged.clone());
    let resolv = wait_for_logs(&env, &["merged"], &["options"]);
    let lines: Vec<&str> = resolv.lines().collect();
    let servers: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .collect();
    assert!(servers.len() >= 2, "{resolv}");
    assert_eq!(servers.last(), Some(&"192.0.2.7"), "{resolv}");
    assert!(
        lines[0].starts_with("search ") && lines[0].ends_with(" my.dns.search.suffix")
            || lines[0] == "search my.dns.search.suffix",
        "{resolv}"
    );
    let options = lines.iter().find(|l| l.starts_with("options ")).unwrap();
    assert!(options.split(' ').any(|o| o == "ndots:3"), "{resolv}");
    env.podrun_ok(&["down", &merged]);
    env.podrun_ok(&["down", &file]);
}

/// Fields for a cluster's scheduler are named in a warning at play (the pod runs) and are
/// errors with --strict; a PersistentVolumeClaim volume is refused by name.
#[test]
fn scheduling_fields_are_named_not_dropped() {
    let env = TestEnv::new();
    let spec = "  nodeSelector: {disktype: ssd}\n  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions: [{key: zone, operator: In, values: [a]}]\n  tolerations:\n  - {key: example-key, operator: Exists, effect: NoSchedule}\n  topologySpreadConstraints:\n  - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: sched}}}\n  priorityClassName: high-priority\n  schedulerName: my-scheduler\n";
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sched\nspec:\n  terminationGracePeriodSeconds: 1\n{spec}  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'echo up; exec sleep 3600']\n"
    );
    let file = write_manifest(&env, "sched.yaml", &yaml);
    let fields = [
        "spec.nodeSelector",
        "spec.affinity",
        "spec.tolerations",
        "spec.topologySpreadConstraints",
        "spec.priorityClassName",
        "spec.schedulerName",
    ];
    let strict = env.podrun(&["play", "--strict", &file]);
    assert_eq!(strict.status.code(), Some(1));
    let err = String::from_utf8_lossy(&strict.stderr);
    for field in fields {
        assert!(
            err.contains(&format!(
                "{field}: a scheduling field: podrun runs the pod on this host"
            )),
            "{field}: {err}"
        );
    }
    let played = env.podrun(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    let err = String::from_utf8_lossy(&played.stderr);
    assert!(played.status.success(), "{err}");
    for field in fields {
        assert!(
            err.contains(&format!(
                "{field}: a scheduling field: podrun runs the pod on this host; ignored"
            )),
            "{field}: {err}"
        );
    }
    wait_for_logs(&env, &["sched"], &["up"]);
    env.podrun_ok(&["down", &file]);

    let pvc = write_manifest(
        &env,
        "pvc.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: pvc}\nspec:\n  containers:\n  - {name: c, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}\n  volumes:\n  - name: data\n    persistentVolumeClaim: {claimName: my-claim}\n",
    );
    let err = env.podrun_err(&["play", &pvc]);
    assert!(
        err.contains("spec.volumes[0].persistentVolumeClaim"),
        "{err}"
    );
    assert!(pod_list(&env).is_empty(), "nothing runs");
}

/// "DNS for Services and Pods": with `hostname` and `subdomain` the pod's FQDN is
/// `<hostname>.<subdomain>.<namespace>.svc.cluster.local`, in /etc/hosts as the kubelet
/// writes it, so `hostname -f` prints it; with `setHostnameAsFQDN` the kernel's hostname
/// (and /etc/hostname) is the FQDN.
#[test]
fn hostname_subdomain_and_fqdn_as_on_a_cluster() {
    let env = TestEnv::new();
    let file = play(&env, "pod-hostname.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let fqdn = "busybox-1.busybox-subdomain.default.svc.cluster.local";
    let log = wait_for_logs(&env, &["busybox1"], &["--", "busybox-1\n"]);
    let (names, hosts) = log.split_once("--\n").unwrap();
    assert_eq!(names, format!("busybox-1\n{fqdn}\nbusybox-1\n"), "{log}");
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{hosts}"
    );
    assert!(
        hosts.ends_with(&format!("\n10.0.2.100\t{fqdn}\tbusybox-1\n")),
        "{hosts}"
    );

    let fqdn = "busybox-2.busybox-subdomain.team-a.svc.cluster.local";
    let log = wait_for_logs(&env, &["team-a/busybox2"], &["--", "busybox-2\n"]);
    let (names, hosts) = log.split_once("--\n").unwrap();
    assert_eq!(names, format!("{fqdn}\n{fqdn}\n{fqdn}\n"), "{log}");
    assert!(
        hosts.ends_with(&format!("\n10.0.2.100\t{fqdn}\tbusybox-2\n")),
        "{hosts}"
    );
    env.podrun_ok(&["down", &file]);
}

/// setHostnameAsFQDN with a FQDN longer than the kernel's 64 characters: the kubelet
/// refuses the pod; play and validate refuse it before anything is pulled or created,
/// naming the field and the length.
#[test]
fn a_fqdn_too_long_for_the_kernel_is_refused() {
    let env = TestEnv::new();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: long\nspec:\n  hostname: a-rather-long-hostname-for-a-pod\n  subdomain: with-a-subdomain\n  setHostnameAsFQDN: true\n  containers:\n  - name: c\n    image: busybox\n";
    let file = write_manifest(&env, "long.yaml", yaml);
    let fqdn = "a-rather-long-hostname-for-a-pod.with-a-subdomain.default.svc.cluster.local";
    for command in ["play", "validate"] {
        let err = env.podrun_err(&[command, &file]);
        assert!(
            err.contains(&format!(
                "long.yaml: document 1: spec.setHostnameAsFQDN: Invalid value: true: the pod's FQDN \"{fqdn}\" is {} characters long, and a hostname may have at most 64",
                fqdn.len()
            )),
            "{command}: {err}"
        );
        assert!(err.contains("hint:"), "{command}: {err}");
    }
    assert!(pod_list(&env).is_empty(), "nothing ran");
}

/// "Use a named port" (Configure Liveness, Readiness and Startup Probes): httpGet and
/// tcpSocket probes name the container's port; a name the container's `ports` lack is an
/// error at play, naming the probe's field, before anything is created.
#[test]
fn probes_use_the_container_s_named_port() {
    let env = TestEnv::new();
    let file = play(&env, "probe-named-port.yaml");
    let _down = DownOnDrop(&env, file.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let json = pod_json(&env, "named-port");
        let container = &json["state"]["containers"][0];
        assert_eq!(container["restart_count"], 0, "liveness failed: {json:#}");
        if container["ready"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {json:#}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Two more liveness periods: still no restart.
    std::thread::sleep(Duration::from_secs(2));
    let json = pod_json(&env, "named-port");
    assert_eq!(
        json["state"]["containers"][0]["restart_count"], 0,
        "{json:#}"
    );
    env.podrun_ok(&["down", &file]);

    let typo = test_manifest("probe-named-port.yaml").replace(
        "        path: /healthz\n        port: liveness-port",
        "        path: /healthz\n        port: liveness",
    );
    let typo = write_manifest(&env, "typo.yaml", &typo);
    let err = env.podrun_err(&["play", &typo]);
    assert!(
        err.contains("spec.containers[0].livenessProbe.httpGet.port: the container has no port named `liveness` (its named ports: liveness-port)"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(pod_list(&env).is_empty(), "nothing ran");
}
