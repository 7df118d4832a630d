//! Workloads: how many pods, their names, labels and StatefulSet identities.

use std::collections::BTreeSet;

use super::*;

const ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// A workload document of `kind` named `name` with `spec` lines (indented by 2) before its
/// template, which has the label `app: web` and one container.
fn workload(api: &str, kind: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{spec}  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: a, image: busybox}}]\n"
    )
}

fn deployment(name: &str, spec: &str) -> String {
    workload("apps/v1", "Deployment", name, spec)
}

fn stateful_set(name: &str, spec: &str) -> String {
    workload("apps/v1", "StatefulSet", name, spec)
}

fn labels(p: &PodManifest) -> BTreeMap<String, String> {
    p.pod.metadata.labels.clone().unwrap_or_default()
}

/// Splits `<prefix><hash>-<suffix>` of a Deployment's pod, checking the pattern.
#[track_caller]
fn deployment_pod_name<'a>(name: &'a str, prefix: &str) -> (&'a str, &'a str) {
    let rest = name
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{name} does not start with {prefix}"));
    let (hash, suffix) = rest
        .split_once('-')
        .unwrap_or_else(|| panic!("{name}: no hash"));
    // The hash: the decimal digits of a u32, each mapped to the alphabet.
    assert!((1..=10).contains(&hash.len()), "{name}");
    assert!(hash.chars().all(|c| "456789bcdf".contains(c)), "{name}");
    assert_random(suffix, name);
    (hash, suffix)
}

#[track_caller]
fn assert_random(suffix: &str, name: &str) {
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(suffix.chars().all(|c| ALPHABET.contains(c)), "{name}");
}

#[test]
fn deployment_pods_are_named_as_kubernetes_names_them() {
    let text = deployment("web", "  replicas: 3\n");
    let m = ok(&text);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.pods.len(), 3);
    let mut hashes = BTreeSet::new();
    let mut names = BTreeSet::new();
    for p in &m.pods {
        let (hash, _) = deployment_pod_name(p.name(), "web-");
        hashes.insert(hash.to_string());
        names.insert(p.name().to_string());
        let labels = labels(p);
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["pod-template-hash"], hash);
        assert_eq!(labels.len(), 2);
        assert_eq!(
            p.owner,
            Some(Owner {
                kind: WorkloadKind::Deployment,
                name: "web".into()
            })
        );
        assert_eq!((p.ordinal, p.ordered), (None, false));
    }
    assert_eq!(hashes.len(), 1, "one template, one hash");
    assert_eq!(names.len(), 3, "{names:?}");
    // The hash is the template's: the same in another load, another for another template.
    let again = ok(&text);
    let (hash_again, _) = deployment_pod_name(again.pods[0].name(), "web-");
    assert_eq!(hashes.first().unwrap(), hash_again);
    assert_ne!(m.pods[0].name(), again.pods[0].name());
    let other = ok(&text.replace("image: busybox", "image: nginx"));
    let (other_hash, _) = deployment_pod_name(other.pods[0].name(), "web-");
    assert_ne!(hashes.first().unwrap(), other_hash);
    // The Deployment's own name and labels do not change the hash.
    let renamed = ok(&deployment("shop", "  replicas: 1\n"));
    let (renamed_hash, _) = deployment_pod_name(renamed.pods[0].name(), "shop-");
    assert_eq!(hashes.first().unwrap(), renamed_hash);
}

#[test]
fn replicas_default_to_one_and_zero_runs_none() {
    let m = ok(&deployment("web", ""));
    assert_eq!(m.pods.len(), 1);
    let text = format!(
        "{}---\n{}",
        deployment("idle", "  replicas: 0\n"),
        stateful_set("db", "  replicas: 0\n")
    );
    let m = ok(&text);
    assert!(m.pods.is_empty());
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    // The template is validated all the same.
    assert_error(
        &deployment("idle", "  replicas: 0\n").replace("image: busybox", "image: \"\""),
        "pod.yaml: document 1: spec.template.spec.containers[0].image: Required value",
    );
    assert_error(
        &deployment("web", "  replicas: 1001\n"),
        "pod.yaml: document 1: spec.replicas: Invalid value: 1001: podrun runs at most 1000 pods of a workload on one host",
    );
    assert_error(
        &deployment("web", "  replicas: -1\n"),
        "pod.yaml: document 1: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );
}

#[test]
fn template_errors_are_reported_once_whatever_the_replicas() {
    let text = deployment("web", "  replicas: 5\n").replace("name: a,", "name: A,");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(
        "pod.yaml: document 1: spec.template.spec.containers[0].name: Invalid value: \"A\""
    ));
}

#[test]
fn replica_set_daemon_set_and_job_pods() {
    let text = format!(
        "{}---\n{}---\n{}",
        workload("apps/v1", "ReplicaSet", "front", "  replicas: 2\n"),
        workload("apps/v1", "DaemonSet", "agent", ""),
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  completions: 3\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: busybox}]\n"
    );
    let m = ok(&text);
    let owners: Vec<(WorkloadKind, &str)> = m
        .pods
        .iter()
        .map(|p| {
            let owner = p.owner.as_ref().unwrap();
            (owner.kind, owner.name.as_str())
        })
        .collect();
    assert_eq!(
        owners,
        [
            (WorkloadKind::ReplicaSet, "front"),
            (WorkloadKind::ReplicaSet, "front"),
            (WorkloadKind::DaemonSet, "agent"),
            (WorkloadKind::Job, "migrate"),
        ]
    );
    assert_ne!(m.pods[0].name(), m.pods[1].name());
    for (p, prefix) in m
        .pods
        .iter()
        .zip(["front-", "front-", "agent-", "migrate-"])
    {
        let suffix = p.name().strip_prefix(prefix).unwrap();
        assert_random(suffix, p.name());
    }
    // ReplicaSet and DaemonSet pods have the template's labels only.
    assert_eq!(labels(&m.pods[0]).len(), 1);
    assert_eq!(labels(&m.pods[2]).len(), 1);
    let job = labels(&m.pods[3]);
    assert_eq!(job["job-name"], "migrate");
    assert_eq!(job["batch.kubernetes.io/job-name"], "migrate");
    assert_eq!(job["app"], "web");
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn generated_names_keep_within_a_hostname() {
    let long = "a".repeat(100);
    let m = ok(&format!(
        "{}---\n{}",
        deployment(&long, ""),
        workload("apps/v1", "ReplicaSet", &long, "")
    ));
    for p in &m.pods {
        assert_eq!(p.name().len(), 63, "{}", p.name());
        assert!(p.name().starts_with(&"a".repeat(58)));
        assert_random(&p.name()[58..], p.name());
    }
}

#[test]
fn stateful_set_pods_have_ordinals_hostnames_and_order() {
    let m = ok(&stateful_set(
        "db",
        "  replicas: 3\n  serviceName: db-headless\n",
    ));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let names: Vec<&str> = m.pods.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    for (i, p) in m.pods.iter().enumerate() {
        let spec = p.pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(p.name()));
        assert_eq!(spec.subdomain.as_deref(), Some("db-headless"));
        let labels = labels(p);
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], p.name());
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert_eq!(labels["app"], "web");
        assert_eq!(p.ordinal, Some(i as u32));
        assert!(p.ordered);
        assert_eq!(p.owner.as_ref().unwrap().kind, WorkloadKind::StatefulSet);
        assert_eq!(p.kind, "StatefulSet");
    }
    // Parallel, ordinals.start, no serviceName.
    let m = ok(&stateful_set(
        "db",
        "  replicas: 2\n  podManagementPolicy: Parallel\n  ordinals: {start: 5}\n",
    ));
    let names: Vec<&str> = m.pods.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["db-5", "db-6"]);
    assert!(m.pods.iter().all(|p| !p.ordered));
    assert_eq!(m.pods[1].ordinal, Some(6));
    assert_eq!(labels(&m.pods[1])["apps.kubernetes.io/pod-index"], "6");
    assert_eq!(m.pods[0].pod.spec.as_ref().unwrap().subdomain, None);
}

#[test]
fn stateful_set_identity_overrides_the_template_as_kubernetes_does() {
    let text = stateful_set("db", "  replicas: 1\n  serviceName: db\n")
        .replace("containers:", "hostname: mine\n      containers:");
    let m = ok(&text);
    assert_eq!(
        m.pods[0].pod.spec.as_ref().unwrap().hostname.as_deref(),
        Some("db-0")
    );
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 1: spec.template.spec.hostname: ignored: a StatefulSet's pods get their hostname from their name and their subdomain from spec.serviceName, as in Kubernetes"]
    );
}

#[test]
fn stateful_set_errors() {
    assert_error(
        &stateful_set("db", "  podManagementPolicy: Random\n"),
        "pod.yaml: document 1: spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
    );
    assert_error(
        &stateful_set(
            "db",
            "  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], volumeMode: Block, resources: {requests: {storage: 1Gi}}}\n",
        ),
        "pod.yaml: document 1: spec.volumeClaimTemplates[0].spec.volumeMode: Unsupported value: \"Block\": podrun's volumes are directories on this host; only Filesystem is supported",
    );
    assert_error(
        &stateful_set("db", "  ordinals: {start: -1}\n"),
        "pod.yaml: document 1: spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0",
    );
    let errors = errors(&stateful_set("db", "  serviceName: Db\n"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with(
        "pod.yaml: document 1: spec.serviceName: Invalid value: \"Db\": a lowercase RFC 1123 label"
    ));
    let long = "a".repeat(62);
    assert_error(
        &stateful_set(&long, ""),
        &format!("pod.yaml: document 1: metadata.name: Invalid value: \"{long}\": the StatefulSet's pod name \"{long}-0\" is the pod's hostname, which must be a lowercase RFC 1123 label of at most 63 characters (no dots)"),
    );
    // A Deployment-style restart policy rule.
    assert_error(
        &stateful_set("db", "").replace("containers:", "restartPolicy: Never\n      containers:"),
        "pod.yaml: document 1: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    );
}

#[test]
fn cron_job_is_refused_by_name() {
    let text = format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly}}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate: {{}}\n---\n{}",
        deployment("web", "")
    );
    assert_error(
        &text,
        "pod.yaml: document 1: CronJob `nightly`: podrun runs no schedules; run its job template as a Job (kind: Job) instead",
    );
}

#[test]
fn pods_have_no_owner_and_kinds_have_names() {
    let m = ok(&pod_with("", ""));
    let p = &m.pods[0];
    assert_eq!(
        (p.owner.as_ref(), p.ordinal, p.ordered),
        (None, None, false)
    );
    let kinds = [
        WorkloadKind::Deployment,
        WorkloadKind::ReplicaSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::StatefulSet,
        WorkloadKind::Job,
    ];
    let named: Vec<(&str, &str)> = kinds.iter().map(|k| (k.name(), k.short())).collect();
    assert_eq!(
        named,
        [
            ("Deployment", "deploy"),
            ("ReplicaSet", "rs"),
            ("DaemonSet", "ds"),
            ("StatefulSet", "sts"),
            ("Job", "job")
        ]
    );
    assert_eq!(WorkloadKind::StatefulSet.to_string(), "StatefulSet");
}
