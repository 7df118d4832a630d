//! PersistentVolumeClaims and StatefulSet volumeClaimTemplates.

use super::*;

const CLAIM: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n";

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers: [{name: a, image: busybox, volumeMounts: [{name: v, mountPath: /data}]}]\n  volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]\n";

const STORAGE_WARNING: &str = "resources.requests.storage is recorded but not enforced";

#[test]
fn a_claim_is_read_with_its_namespace_and_warns_once_about_sizes() {
    let text = format!(
        "{CLAIM}---\n{}---\n{POD}",
        CLAIM.replace("name: data", "name: logs")
    );
    let m = ok(&text);
    let names: Vec<(&str, &str)> = m.claims.iter().map(|c| (c.namespace(), c.name())).collect();
    assert_eq!(names, [("default", "data"), ("default", "logs")]);
    let data = m.claim("default", "data").unwrap();
    assert_eq!(data.storage(), Some("1Gi"));
    assert_eq!(data.access_modes(), ["ReadWriteOnce"]);
    assert_eq!(data.source.document, 1);
    assert!(data.owner.is_none());
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(
        m.warnings[0].starts_with("pod.yaml: document 1: PersistentVolumeClaim `data`: ")
            && m.warnings[0].contains(STORAGE_WARNING),
        "{:?}",
        m.warnings
    );
    // The pod's volume is supported: no warning about it.
    let m = load_str(
        "pod.yaml",
        &text,
        &LoadOptions {
            namespace: Some("dev".into()),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(m.claims[0].namespace(), "dev");
    // storageClassName and volumeMode: Filesystem are accepted.
    let text = CLAIM.replace(
        "spec:\n",
        "spec:\n  storageClassName: standard\n  volumeMode: Filesystem\n",
    );
    let m = ok(&format!("{text}---\n{POD}"));
    assert_eq!(m.claims[0].storage_class(), Some("standard"));
}

#[test]
fn claim_errors_name_their_field() {
    let claim = |spec: &str| {
        format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data}}\nspec:\n{spec}---\n{POD}")
    };
    assert_error(
        &claim("  accessModes: [ReadWriteOnce]\n  volumeMode: Block\n  resources: {requests: {storage: 1Gi}}\n"),
        "pod.yaml: document 1: spec.volumeMode: Unsupported value: \"Block\": podrun's volumes are directories on this host; only Filesystem is supported",
    );
    assert_error(
        &claim("  resources: {requests: {storage: 1Gi}}\n"),
        "pod.yaml: document 1: spec.accessModes: Required value: at least 1 access mode is required",
    );
    assert_error(
        &claim("  accessModes: [ReadWriteSometimes]\n  resources: {requests: {storage: 1Gi}}\n"),
        "pod.yaml: document 1: spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadWriteOnce\", \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOncePod\"",
    );
    assert_error(
        &claim("  accessModes: [ReadWriteOnce]\n"),
        "pod.yaml: document 1: spec.resources.requests[storage]: Required value",
    );
    assert_error(
        &claim("  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: lots}}\n"),
        "pod.yaml: document 1: spec.resources.requests[storage]: Invalid value: \"lots\": must be a quantity (e.g. 1Gi, 500Mi)",
    );
    assert_error(
        &format!("{CLAIM}---\n{CLAIM}---\n{POD}"),
        "pod.yaml: document 2: metadata.name: Duplicate value: \"data\": a PersistentVolumeClaim of that name is already defined in document 1",
    );
    assert_error(
        &format!("{}---\n{POD}", CLAIM.replace("name: data", "name: Data")),
        "pod.yaml: document 1: metadata.name: Invalid value: \"Data\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    // Unsupported fields go through the allow-list: warned, errors with --strict.
    let text = claim("  accessModes: [ReadWriteOnce]\n  volumeName: pv-1\n  selector: {matchLabels: {a: b}}\n  resources: {requests: {storage: 1Gi}}\n");
    let m = ok(&text);
    assert!(m.warnings.contains(
        &"pod.yaml: document 1: spec.selector: not supported by podrun yet; ignored".to_string()
    ));
    assert!(m.warnings.contains(
        &"pod.yaml: document 1: spec.volumeName: not supported by podrun yet; ignored".to_string()
    ));
    let strict = load_strict(&text).unwrap_err().to_string();
    assert!(
        strict.contains("pod.yaml: document 1: spec.volumeName: not supported by podrun yet"),
        "{strict}"
    );
}

#[test]
fn a_volume_claim_needs_a_claim_name() {
    assert_error(
        &POD.replace("claimName: data", "claimName: \"\""),
        "pod.yaml: document 1: spec.volumes[0].persistentVolumeClaim.claimName: Required value",
    );
}

const SET: &str = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  replicas: 2\n  serviceName: web\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: a, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n";

#[test]
fn stateful_set_templates_give_each_pod_its_claim() {
    let m = ok(SET);
    let names: Vec<&str> = m.claims.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["data-web-0", "data-web-1"]);
    let owner = m.claims[0].owner.as_ref().unwrap();
    assert_eq!(
        (owner.kind, owner.name.as_str()),
        (WorkloadKind::StatefulSet, "web")
    );
    assert_eq!(m.claims[1].storage(), Some("1Gi"));
    for (i, pod) in m.pods.iter().enumerate() {
        let volumes = pod.pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(volumes[0].name, "data");
        let source = volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(source.claim_name, format!("data-web-{i}"));
    }
    assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    assert!(m.warnings[0].contains(STORAGE_WARNING));

    // A template volume of the same name is replaced, with a warning.
    let text = SET.replace(
        "      containers:",
        "      volumes: [{name: data, emptyDir: {}}]\n      containers:",
    );
    let m = ok(&text);
    let volumes = m.pods[0]
        .pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap();
    assert_eq!(volumes.len(), 1);
    assert!(volumes[0].persistent_volume_claim.is_some());
    assert!(m.warnings.contains(&"pod.yaml: document 1: spec.template.spec.volumes[0]: replaced by spec.volumeClaimTemplates[0] of the same name, as the StatefulSet controller does".to_string()), "{:?}", m.warnings);

    // A claim the file defines is the one the pod gets (not a second).
    let m = ok(&format!(
        "{}---\n{SET}",
        CLAIM.replace("name: data", "name: data-web-1")
    ));
    let names: Vec<&str> = m.claims.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["data-web-1", "data-web-0"]);
    assert!(m.claims[0].owner.is_none());

    assert_error_contains(
        &SET.replace("  - metadata: {name: data}", "  - metadata: {name: Data}"),
        &["pod.yaml: document 1: spec.volumeClaimTemplates[0].metadata.name: Invalid value: \"Data\": a lowercase RFC 1123 label"],
    );
}
