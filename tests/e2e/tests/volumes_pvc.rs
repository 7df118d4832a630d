//! PersistentVolumeClaims: a claim of the file is a named volume
//! (`data/podrun/volumes/<namespace>/<claim>/_data`) that outlives `down`, as `podman kube
//! play` keeps a claim's volume: the data written by one `play` is there at the next; `volume
//! ls`, `inspect` and `rm` show and remove volumes (not while a running pod mounts one);
//! `down --volumes` removes a file's volumes. A StatefulSet's volumeClaimTemplates give
//! each pod its own claim, `<template>-<pod>`. A claim's volume outliving `down` is also
//! run on the shared network (`play --network shared`), with slirp4netns and with pasta as
//! its way out (issue 17).

use podrun_e2e::pods::{
    assert_nothing_left, pod_item, pod_list, shared_way_out, wait_for_logs, write_manifest,
    DownOnDrop, Network,
};
use podrun_e2e::{stdout, TestEnv};

/// A claim, and a pod whose non-root container appends a line to the claim's volume and
/// prints what it holds.
const WRITER: &str = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    runAsGroup: 1000
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo run >> /data/log && cat /data/log && echo end && exec sleep 3600"]
    volumeMounts:
    - name: store
      mountPath: /data
  volumes:
  - name: store
    persistentVolumeClaim:
      claimName: data
"#;

fn volumes_json(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = env.podrun_ok(&["volume", "ls", "-o", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Checks that the writer pod runs on `network`: its address (`status.podIP`) is of
/// 10.89.0.0/16 on the shared network only, whose way out is the one asked for.
fn assert_writer_on(env: &TestEnv, network: Network) {
    let item = pod_item(env, "writer");
    let ip = item["status"]["podIP"]
        .as_str()
        .unwrap_or_else(|| panic!("writer has no podIP: {item:#}"));
    network.assert_address(ip);
    assert_eq!(
        shared_way_out(env),
        network.way_out(),
        "the shared network's way out"
    );
}

#[test]
fn a_claim_s_volume_outlives_down_until_down_volumes() {
    a_claim_s_volume_outlives_down_on(Network::Private);
}

#[test]
fn a_claim_s_volume_outlives_down_on_the_shared_network_with_slirp4netns() {
    a_claim_s_volume_outlives_down_on(Network::SharedSlirp4netns);
}

#[test]
fn a_claim_s_volume_outlives_down_on_the_shared_network_with_pasta() {
    a_claim_s_volume_outlives_down_on(Network::SharedPasta);
}

/// The writer's claim on `network`: its data stays through `down` and the next `play`
/// finds it, until `down --volumes`.
fn a_claim_s_volume_outlives_down_on(network: Network) {
    let env = network.env();
    let file = write_manifest(&env, "pvc.yaml", WRITER);
    let _down = DownOnDrop(&env, file.clone());
    let played = network.play(&env, &file);
    let err = String::from_utf8_lossy(&played.stderr);
    assert!(
        err.contains(
            "PersistentVolumeClaim `data`: resources.requests.storage is recorded but not enforced"
        ),
        "{err}"
    );
    wait_for_logs(&env, &["writer"], &["run\nend\n"]);
    assert_writer_on(&env, network);

    let listed = env.podrun_ok(&["volume", "ls"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("NAMESPACE"), "{listed}");
    assert!(lines[0].contains("IN USE BY"), "{listed}");
    assert!(lines[1].starts_with("default "), "{listed}");
    assert!(lines[1].contains(" data "), "{listed}");
    assert!(lines[1].ends_with("default/writer"), "{listed}");

    // Not while a running pod mounts it.
    let err = env.podrun_err(&["volume", "rm", "data"]);
    assert!(
        err.contains("volume default/data is in use by running pod default/writer"),
        "{err}"
    );

    // down leaves the volume, and says nothing of it.
    let out = env.podrun_ok(&["down", &file]);
    assert!(!out.contains("volume"), "{out}");
    let dir = env.root().join("data/podrun/volumes/default/data");
    assert!(dir.join("_data/log").is_file());
    let volumes = volumes_json(&env);
    assert_eq!(volumes.len(), 1, "{volumes:#?}");
    assert_eq!(volumes[0]["in_use_by"], serde_json::json!([]));

    // The next play finds the data of the first.
    network.play(&env, &file);
    wait_for_logs(&env, &["writer"], &["run\nrun\nend\n"]);
    assert_writer_on(&env, network);
    let inspected = env.podrun_ok(&["volume", "inspect", "data"]);
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    let volume = &inspected[0];
    assert_eq!(volume["namespace"], "default");
    assert_eq!(volume["name"], "data");
    assert_eq!(volume["storage"], "1Gi");
    assert_eq!(volume["access_modes"], serde_json::json!(["ReadWriteOnce"]));
    assert_eq!(volume["created_by"]["pod"], "default/writer");
    assert_eq!(volume["created_by"]["file"], file.as_str());
    assert_eq!(volume["in_use_by"], serde_json::json!(["default/writer"]));
    assert_eq!(volume["path"], dir.join("_data").to_str().unwrap());
    assert!(dir.join("volume.json").is_file());

    let out = env.podrun_ok(&["down", "--volumes", &file]);
    assert!(out.contains("pod default/writer removed"), "{out}");
    assert!(out.contains("volume default/data removed"), "{out}");
    assert!(!dir.exists());
    assert!(volumes_json(&env).is_empty());
    let err = String::from_utf8_lossy(&env.podrun(&["volume", "ls"]).stderr).into_owned();
    assert!(err.contains("No volumes found."), "{err}");
    assert_nothing_left(&env);
    network.assert_released(&env);
}

#[test]
fn a_claim_neither_in_the_file_nor_existing_is_refused_before_anything_starts() {
    let env = TestEnv::new();
    let yaml = WRITER
        .split("---")
        .nth(1)
        .unwrap()
        .replace("claimName: data", "claimName: missing");
    let file = write_manifest(&env, "missing.yaml", &yaml);
    for command in ["play", "validate"] {
        let err = env.podrun_err(&[command, &file]);
        assert!(
            err.contains("pod `default/writer`: spec.volumes[0].persistentVolumeClaim.claimName: PersistentVolumeClaim `missing` not found in namespace default"),
            "{command}: {err}"
        );
    }
    assert!(pod_list(&env).is_empty(), "nothing ran");

    // A volume made by an earlier file is found without its claim.
    let claim = write_manifest(
        &env,
        "claim.yaml",
        &WRITER
            .replace("name: data", "name: missing")
            .replace("claimName: data", "claimName: missing"),
    );
    env.podrun_ok(&["play", &claim]);
    env.podrun_ok(&["down", &claim]);
    env.podrun_ok(&["play", &file]);
    wait_for_logs(&env, &["writer"], &["run\nrun\nend\n"]);
    env.podrun_ok(&["down", &file]);
    let out = env.podrun_ok(&["volume", "rm", "missing"]);
    assert_eq!(out, "volume default/missing removed\n");
    let err = env.podrun_err(&["volume", "rm", "missing"]);
    assert!(err.contains("volume default/missing not found"), "{err}");
    assert_nothing_left(&env);
}

#[test]
fn stateful_set_pods_get_a_claim_each() {
    let env = TestEnv::new();
    let yaml = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 2
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox
        command: ["sh", "-c", "hostname >> /data/who && echo written && exec sleep 3600"]
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 100Mi
"#;
    let file = write_manifest(&env, "sts.yaml", yaml);
    let _down = DownOnDrop(&env, file.clone());
    env.podrun_ok(&["play", &file]);
    for pod in ["web-0", "web-1"] {
        wait_for_logs(&env, &[pod], &["written"]);
    }
    let volumes = volumes_json(&env);
    let names: Vec<(&str, &str, &serde_json::Value)> = volumes
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["owner"].as_str().unwrap_or_default(),
                &v["in_use_by"],
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (
                "data-web-0",
                "StatefulSet/web",
                &serde_json::json!(["default/web-0"])
            ),
            (
                "data-web-1",
                "StatefulSet/web",
                &serde_json::json!(["default/web-1"])
            ),
        ]
    );
    let root = env.root().join("data/podrun/volumes/default");
    for pod in ["web-0", "web-1"] {
        let who = std::fs::read_to_string(root.join(format!("data-{pod}/_data/who"))).unwrap();
        assert_eq!(who, format!("{pod}\n"));
    }
    let out = env.podrun_ok(&["down", "--volumes", &file]);
    assert!(out.contains("volume default/data-web-0 removed"), "{out}");
    assert!(out.contains("volume default/data-web-1 removed"), "{out}");
    assert!(volumes_json(&env).is_empty());
    let out = stdout(&env.podrun(&["volume", "ls", "-q"]));
    assert_eq!(out, "");
    assert_nothing_left(&env);
}
