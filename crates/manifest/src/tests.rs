//! Loading whole files: fixtures inline, one concern per test.

use super::*;

mod claims;
mod services;
mod workloads;

const POD_NETWORK: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: pod-network
spec:
  containers:
  - name: web
    image: nginx:1.23
    ports:
    - containerPort: 80
  - name: collect
    image: centos:7
    command: ["/bin/bash", "-c", "while true; do sleep 1; done"]
"#;

const POD_VOLUME: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: pod-volume
spec:
  containers:
  - name: web
    image: nginx:1.23
    ports:
    - containerPort: 80
    volumeMounts:
    - name: log
      mountPath: /var/log/nginx
  - name: collect
    image: centos:7
    command: ["/bin/bash", "-c", "while true; do sleep 1; done"]
    volumeMounts:
    - name: log
      mountPath: /var/log/nginx
  volumes:
  - name: log
    emptyDir: {}
"#;

fn load(text: &str) -> Result<Manifest, ManifestError> {
    load_str("pod.yaml", text, &LoadOptions::default())
}

fn load_strict(text: &str) -> Result<Manifest, ManifestError> {
    load_str(
        "pod.yaml",
        text,
        &LoadOptions {
            strict: true,
            ..Default::default()
        },
    )
}

#[track_caller]
fn ok(text: &str) -> Manifest {
    match load(text) {
        Ok(m) => m,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

#[track_caller]
fn errors_of(result: Result<Manifest, ManifestError>) -> Vec<String> {
    match result {
        Err(ManifestError::Invalid { errors }) => errors,
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(m) => panic!(
            "expected Invalid, got success with warnings {:?}",
            m.warnings
        ),
    }
}

#[track_caller]
fn errors(text: &str) -> Vec<String> {
    errors_of(load(text))
}

/// Asserts that loading `text` fails with exactly one error, equal to `expected`.
#[track_caller]
fn assert_error(text: &str, expected: &str) {
    let errors = errors(text);
    assert_eq!(errors, [expected], "errors: {errors:#?}");
}

/// Asserts that loading `text` fails with an error containing every one of `parts`.
#[track_caller]
fn assert_error_contains(text: &str, parts: &[&str]) {
    let errors = errors(text);
    assert!(
        errors.iter().any(|e| parts.iter().all(|p| e.contains(p))),
        "no error contains {parts:?}: {errors:#?}"
    );
}

/// A pod with one container `app` whose extra container lines (`container`, indented by
/// 4) and extra spec lines (`spec`, indented by 2) are given.
fn pod_with(container: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: app\n    image: busybox\n{container}{spec}"
    )
}

// ---------------------------------------------------------------------------------------
// Seeds and YAML features

#[test]
fn seed_pod_network_loads_without_warnings() {
    let m = ok(POD_NETWORK);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.pods.len(), 1);
    let p = &m.pods[0];
    assert_eq!(p.name(), "pod-network");
    assert_eq!(p.namespace(), "default");
    assert_eq!(p.pod.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(p.kind, "Pod");
    assert_eq!(
        p.source,
        Source {
            file: "pod.yaml".into(),
            document: 1
        }
    );
    let spec = p.pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 2);
    assert_eq!(spec.containers[0].name, "web");
    assert_eq!(spec.containers[0].image.as_deref(), Some("nginx:1.23"));
    assert_eq!(
        spec.containers[0].ports.as_ref().unwrap()[0].container_port,
        80
    );
    assert_eq!(spec.containers[1].name, "collect");
    assert_eq!(spec.containers[1].image.as_deref(), Some("centos:7"));
    assert_eq!(
        spec.containers[1].command.as_deref().unwrap(),
        ["/bin/bash", "-c", "while true; do sleep 1; done"]
    );
}

#[test]
fn seed_pod_volume_loads_without_warnings() {
    let m = ok(POD_VOLUME);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let spec = m.pods[0].pod.spec.as_ref().unwrap();
    let volumes = spec.volumes.as_ref().unwrap();
    assert_eq!(volumes[0].name, "log");
    assert!(volumes[0].empty_dir.is_some());
    for c in &spec.containers {
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert_eq!(mounts[0].name, "log");
        assert_eq!(mounts[0].mount_path, "/var/log/nginx");
    }
}

#[test]
fn flow_style() {
    let m = ok(
        "{apiVersion: v1, kind: Pod, metadata: {name: flow}, spec: {containers: [{name: a, image: 'busybox', command: [sh, -c, 'echo hi'], ports: [{containerPort: 8080, protocol: TCP}]}]}}",
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let c = &m.pods[0].pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.command.as_deref().unwrap(), ["sh", "-c", "echo hi"]);
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 8080);
}

#[test]
fn json_input() {
    let m = ok(
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"a","image":"busybox"}]}}"#,
    );
    assert_eq!(m.pods[0].name(), "j");
}

#[test]
fn anchors_and_aliases() {
    let m = ok(r#"
apiVersion: v1
kind: Pod
metadata:
  name: anchors
spec:
  containers:
  - name: a
    image: &img registry.example/app:1.0
    env: &env
    - name: MODE
      value: production
    - name: LEVEL
      value: "3"
  - name: b
    image: *img
    env: *env
"#);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let spec = m.pods[0].pod.spec.as_ref().unwrap();
    assert_eq!(
        spec.containers[1].image.as_deref(),
        Some("registry.example/app:1.0")
    );
    assert_eq!(spec.containers[0].env, spec.containers[1].env);
    assert_eq!(spec.containers[1].env.as_ref().unwrap().len(), 2);
}

#[test]
fn merge_keys() {
    let m = ok(r#"
apiVersion: v1
kind: Pod
metadata:
  name: merged
spec:
  containers:
  - &base
    name: a
    image: busybox
    imagePullPolicy: IfNotPresent
    workingDir: /srv
  - <<: *base
    name: b
"#);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let spec = m.pods[0].pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[1].name, "b");
    assert_eq!(spec.containers[1].image.as_deref(), Some("busybox"));
    assert_eq!(spec.containers[1].working_dir.as_deref(), Some("/srv"));
}

#[test]
fn comments_and_multiline_strings() {
    let m = ok(r#"
# A pod.
apiVersion: v1   # core
kind: Pod
metadata:
  name: strings  # the name
  annotations:
    quoted: "first line
      continued"
    single: 'it''s'
spec:
  containers:
  # the only container
  - name: a
    image: busybox
    args:
    - |
      line one
      line two
    - >
      folded
      text
    - "tab\there"
"#);
    let pod = &m.pods[0].pod;
    let ann = pod.metadata.annotations.as_ref().unwrap();
    assert_eq!(ann["quoted"], "first line continued");
    assert_eq!(ann["single"], "it's");
    let args = pod.spec.as_ref().unwrap().containers[0]
        .args
        .as_ref()
        .unwrap();
    assert_eq!(args[0], "line one\nline two\n");
    assert_eq!(args[1], "folded text\n");
    assert_eq!(args[2], "tab\there");
}

#[test]
fn numbers_and_quantities_as_strings() {
    let m = ok(&pod_with(
        "    env:\n    - name: N\n      value: 123\n    resources:\n      limits: {cpu: 1, memory: 128Mi}\n",
        "",
    ));
    let c = &m.pods[0].pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.env.as_ref().unwrap()[0].value.as_deref(), Some("123"));
    let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["cpu"].0, "1");
    assert_eq!(limits["memory"].0, "128Mi");
}

// ---------------------------------------------------------------------------------------
// Documents and kinds

#[test]
fn later_config_map_and_secret_resolve() {
    let m = ok(r#"
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  containers:
  - name: app
    image: busybox
    env:
    - name: MODE
      valueFrom:
        configMapKeyRef: {name: settings, key: mode}
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: creds, key: password}
    - name: TOKEN
      valueFrom:
        secretKeyRef: {name: creds, key: token}
    envFrom:
    - configMapRef: {name: settings}
    - secretRef: {name: creds}
    volumeMounts:
    - {name: config, mountPath: /etc/app}
    - {name: secret, mountPath: /etc/secret, readOnly: true}
  volumes:
  - name: config
    configMap:
      name: settings
      items:
      - {key: mode, path: mode.txt}
      - {key: blob, path: blob.bin}
  - name: secret
    secret:
      secretName: creds
      items:
      - {key: password, path: pw}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
binaryData:
  blob: AAEC
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
data:
  password: aHVudGVyMg==
  token: b2xk
stringData:
  token: new
"#);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.pods.len(), 1);
    assert_eq!(
        m.config_map_value("settings", "mode"),
        Some(b"fast".to_vec())
    );
    assert_eq!(m.config_map_value("settings", "blob"), Some(vec![0, 1, 2]));
    assert_eq!(m.config_map_value("settings", "nope"), None);
    assert_eq!(m.config_map_value("nope", "mode"), None);
    assert_eq!(
        m.secret_value("creds", "password"),
        Some(b"hunter2".to_vec())
    );
    // stringData wins over data, as in Kubernetes.
    assert_eq!(m.secret_value("creds", "token"), Some(b"new".to_vec()));
    assert_eq!(m.secret_value("creds", "nope"), None);
    let entries = m.secret_entries("creds").unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries["token"], b"new");
    assert_eq!(m.config_map_entries("settings").unwrap().len(), 2);
    assert!(m.config_maps.contains_key("settings"));
    assert!(m.secrets.contains_key("creds"));
}

#[test]
fn deployment_template_becomes_its_replicas() {
    let m = ok(r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {tier: deployment-label}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {note: from-template}
    spec:
      containers:
      - name: nginx
        image: nginx:1.23
"#);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.pods.len(), 3);
    let p = &m.pods[0];
    assert_eq!(p.kind, "Deployment");
    assert_eq!(
        p.owner,
        Some(Owner {
            kind: WorkloadKind::Deployment,
            name: "web".into()
        })
    );
    assert!(p.name().starts_with("web-"), "{}", p.name());
    assert_eq!(p.namespace(), "shop");
    let labels = p.pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels["app"], "web");
    assert!(labels.contains_key("pod-template-hash"));
    assert_eq!(
        p.pod.metadata.annotations.as_ref().unwrap()["note"],
        "from-template"
    );
    assert_eq!(p.pod.spec.as_ref().unwrap().containers[0].name, "nginx");
}

#[test]
fn other_workloads_become_pods() {
    let m = ok(r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: a, image: busybox}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  selector: {matchLabels: {app: rs}}
  template:
    spec:
      containers: [{name: a, image: busybox}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: a, image: busybox, command: [true]}]
"#);
    let kinds: Vec<(&str, &str)> = m
        .pods
        .iter()
        .map(|p| (p.kind.as_str(), p.owner.as_ref().unwrap().name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("DaemonSet", "agent"),
            ("ReplicaSet", "rs"),
            ("Job", "once")
        ]
    );
    for (p, prefix) in m.pods.iter().zip(["agent-", "rs-", "once-"]) {
        assert!(p.name().starts_with(prefix), "{}", p.name());
        assert_eq!(p.name().len(), prefix.len() + 5, "{}", p.name());
    }
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.pods[2].source.document, 3);
}

#[test]
fn workload_restart_policies() {
    assert_error(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: busybox}]\n",
        "pod.yaml: document 1: spec.template.spec.restartPolicy: Required value: a Job's pod template needs restartPolicy \"OnFailure\" or \"Never\"",
    );
    assert_error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: busybox}]\n",
        "pod.yaml: document 1: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    );
}

#[test]
fn workload_without_template_spec() {
    assert_error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template: {}\n",
        "pod.yaml: document 1: spec.template.spec: Required value",
    );
}

#[test]
fn workload_paths_are_prefixed() {
    assert_error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: [{name: a}]\n",
        "pod.yaml: document 1: spec.template.spec.containers[0].image: Required value",
    );
}

#[test]
fn service_is_read() {
    let text = format!(
        "{POD_NETWORK}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80}}]\n"
    );
    let m = ok(&text);
    assert_eq!(m.pods.len(), 1);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.services.len(), 1);
    assert_eq!(m.services[0].name(), "web");
    assert_eq!(m.services[0].source.document, 2);
    assert!(load_strict(&text).unwrap().warnings.is_empty());
}

#[test]
fn other_kinds_named_in_warnings() {
    let m = ok(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web}}\n---\n{POD_NETWORK}"
    ));
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 1: Ingress `web` (networking.k8s.io/v1): kind not supported by podrun; ignored"]
    );
}

#[test]
fn empty_documents_are_skipped_but_counted() {
    let m = ok(&format!(
        "---\n# only a comment\n---\n\n---\n{POD_NETWORK}---\n"
    ));
    assert_eq!(m.pods.len(), 1);
    assert_eq!(m.pods[0].source.document, 3);
    assert!(m.warnings.is_empty());
}

#[test]
fn many_pods_in_file_order() {
    let m = ok(&format!("{POD_NETWORK}---\n{POD_VOLUME}"));
    let names: Vec<&str> = m.pods.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["pod-network", "pod-volume"]);
    assert_eq!(m.pods[1].source.document, 2);
}

#[test]
fn wrong_api_version_for_supported_kind() {
    assert_error(
        "apiVersion: v2\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n",
        "pod.yaml: document 1: apiVersion: Unsupported value: \"v2\": supported values: \"v1\" (for kind Pod)",
    );
    assert_error(
        "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n",
        "pod.yaml: document 1: apiVersion: Unsupported value: \"extensions/v1beta1\": supported values: \"apps/v1\" (for kind Deployment)",
    );
    assert_error(
        "apiVersion: apps/v1\nkind: Job\nmetadata: {name: j}\n",
        "pod.yaml: document 1: apiVersion: Unsupported value: \"apps/v1\": supported values: \"batch/v1\" (for kind Job)",
    );
}

#[test]
fn missing_api_version_and_kind() {
    let errs = errors("metadata: {name: p}\n");
    assert_eq!(
        errs,
        [
            "pod.yaml: document 1: apiVersion: Required value",
            "pod.yaml: document 1: kind: Required value"
        ]
    );
}

#[test]
fn kind_is_case_sensitive() {
    assert_error(
        "apiVersion: v1\nkind: pod\nmetadata: {name: p}\n",
        "pod.yaml: document 1: kind: Unsupported value: \"pod\": kinds are case-sensitive; did you mean \"Pod\"?",
    );
}

#[test]
fn non_mapping_document() {
    assert_error(
        "- a\n- b\n",
        "pod.yaml: document 1: not a Kubernetes object: expected a mapping with apiVersion and kind, found a list",
    );
}

#[test]
fn no_pods() {
    let err = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n").unwrap_err();
    assert!(matches!(err, ManifestError::NoPods { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "pod.yaml: no Pod, Deployment, ReplicaSet, DaemonSet, StatefulSet or Job found"
    );
    assert!(matches!(
        load("").unwrap_err(),
        ManifestError::NoPods { .. }
    ));
}

#[test]
fn kubectl_output_loads_without_warnings() {
    // What `kubectl run --dry-run=client -o yaml` and `kubectl get -o yaml` add.
    let m = ok(r#"
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: web
  name: web
spec:
  containers:
  - image: nginx
    name: web
    resources: {}
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    imagePullPolicy: Always
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
status: {}
"#);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert!(m.pods[0].pod.status.is_none());
}

// ---------------------------------------------------------------------------------------
// Unknown and unsupported fields

const TYPO: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: busybox\n    imagePullPolcy: Always\n";

#[test]
fn unknown_field_is_a_warning() {
    let m = ok(TYPO);
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 1: unknown field spec.containers[0].imagePullPolcy"]
    );
}

#[test]
fn unknown_field_is_an_error_in_strict_mode() {
    assert_eq!(
        errors_of(load_strict(TYPO)),
        ["pod.yaml: document 1: unknown field spec.containers[0].imagePullPolcy"]
    );
}

#[test]
fn unknown_fields_everywhere() {
    let m = ok(&format!(
        "{POD_NETWORK}extra: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, lables: {{a: b}}}}\ndata: {{k: v}}\n"
    ));
    assert_eq!(
        m.warnings,
        [
            "pod.yaml: document 1: unknown field extra",
            "pod.yaml: document 2: unknown field metadata.lables"
        ]
    );
}

#[test]
fn unknown_field_in_merged_document() {
    let m = ok("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - &c {name: a, image: b, colour: red}\n  - {<<: *c, name: c}\n");
    assert_eq!(
        m.warnings,
        [
            "pod.yaml: document 1: unknown field spec.containers[0].colour",
            "pod.yaml: document 1: unknown field spec.containers[1].colour"
        ]
    );
}

const SELINUX: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  nodeSelector: {disk: ssd}\n  containers:\n  - name: a\n    image: busybox\n    securityContext:\n      runAsUser: 1000\n      seLinuxOptions: {level: \"s0:c1\"}\n      allowPrivilegeEscalation: false\n";

#[test]
fn unsupported_field_is_a_warning() {
    let m = ok(SELINUX);
    assert_eq!(
        m.warnings,
        [
            "pod.yaml: document 1: spec.containers[0].securityContext.seLinuxOptions: not supported by podrun yet; ignored",
            "pod.yaml: document 1: spec.nodeSelector: a scheduling field: podrun runs the pod on this host; ignored",
        ]
    );
    // The field is still in the typed pod for later milestones.
    let c = &m.pods[0].pod.spec.as_ref().unwrap().containers[0];
    let se_linux = c
        .security_context
        .as_ref()
        .unwrap()
        .se_linux_options
        .as_ref();
    assert_eq!(se_linux.unwrap().level.as_deref(), Some("s0:c1"));
}

#[test]
fn unsupported_field_is_an_error_in_strict_mode() {
    assert_eq!(
        errors_of(load_strict(SELINUX)),
        [
            "pod.yaml: document 1: spec.containers[0].securityContext.seLinuxOptions: not supported by podrun yet",
            "pod.yaml: document 1: spec.nodeSelector: a scheduling field: podrun runs the pod on this host",
        ]
    );
}

#[test]
fn security_contexts_are_validated_as_the_api_server_does() {
    let errors = errors_of(load(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext:
    fsGroup: -1
    fsGroupChangePolicy: Sometimes
    seccompProfile: {type: Localhost}
    sysctls: [{name: "Net.x", value: "1"}, {name: kernel.shmmax, value: "1"}, {name: kernel/shmmax, value: "2"}]
  containers:
  - name: a
    image: busybox
    securityContext:
      privileged: true
      allowPrivilegeEscalation: false
      procMount: Hidden
      seccompProfile: {type: RuntimeDefault, localhostProfile: x.json}
  - name: b
    image: busybox
    securityContext:
      capabilities: {add: [SYS_ADMIN]}
      allowPrivilegeEscalation: false
      seccompProfile: {type: Strict}
"#,
    ));
    assert_eq!(
        errors,
        [
            "pod.yaml: document 1: spec.securityContext.fsGroup: Invalid value: -1: must be between 0 and 2147483647, inclusive",
            "pod.yaml: document 1: spec.securityContext.fsGroupChangePolicy: Unsupported value: \"Sometimes\": supported values: \"OnRootMismatch\", \"Always\"",
            "pod.yaml: document 1: spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost",
            "pod.yaml: document 1: spec.securityContext.sysctls[0].name: Invalid value: \"Net.x\": sysctl \"Net.x\" must have at most 253 characters and match the regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            "pod.yaml: document 1: spec.securityContext.sysctls[2].name: Duplicate value: \"kernel/shmmax\"",
            "pod.yaml: document 1: spec.containers[0].securityContext.procMount: Unsupported value: \"Hidden\": supported values: \"Default\", \"Unmasked\"",
            "pod.yaml: document 1: spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: \"x.json\": can only be set when seccomp type is Localhost",
            "pod.yaml: document 1: spec.containers[0].securityContext.allowPrivilegeEscalation: Invalid value: false: cannot set allowPrivilegeEscalation to false and privileged to true",
            "pod.yaml: document 1: spec.containers[1].securityContext.seccompProfile.type: Unsupported value: \"Strict\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\"",
            "pod.yaml: document 1: spec.containers[1].securityContext.allowPrivilegeEscalation: Invalid value: false: cannot set allowPrivilegeEscalation to false and capabilities.Add CAP_SYS_ADMIN",
        ]
    );
}

#[test]
fn unsupported_volume_source_and_metadata() {
    let m = ok(r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  generateName: p-
  finalizers: [x]
spec:
  containers: [{name: a, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes:
  - name: data
    nfs: {server: nas, path: /data}
"#);
    assert_eq!(
        m.warnings,
        [
            "pod.yaml: document 1: metadata.finalizers: not supported by podrun yet; ignored",
            "pod.yaml: document 1: metadata.generateName: not supported by podrun yet; ignored",
            "pod.yaml: document 1: spec.volumes[0].nfs: not supported by podrun yet; ignored",
        ]
    );
}

#[test]
fn supported_fields_do_not_warn() {
    let m = ok(r#"
apiVersion: v1
kind: Pod
metadata:
  name: full
  namespace: dev
  uid: 4c1f0a3e-0000-4000-8000-000000000000
  labels: {a: b}
  annotations: {c: d}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  shareProcessNamespace: true
  hostname: box
  hostNetwork: false
  securityContext: {runAsUser: 1000, runAsGroup: 1000}
  initContainers:
  - name: sidecar
    image: busybox
    restartPolicy: Always
  containers:
  - name: app
    image: busybox
    imagePullPolicy: Never
    command: [sh]
    args: [-c, "sleep 1"]
    workingDir: /tmp
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    env:
    - {name: A, value: x}
    - name: POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports: [{containerPort: 80, hostPort: 8080, protocol: TCP, name: http}]
    securityContext: {runAsUser: 1, runAsGroup: 2}
    livenessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 5}
    readinessProbe: {tcpSocket: {port: http}}
    startupProbe: {exec: {command: [true]}}
    lifecycle: {preStop: {exec: {command: [sh, -c, "sleep 1"]}}}
    resources: {limits: {memory: 64Mi}, requests: {cpu: 100m}}
    volumeMounts:
    - {name: scratch, mountPath: /scratch, subPath: sub/dir, readOnly: true}
    - {name: host, mountPath: /host}
  volumes:
  - name: scratch
    emptyDir: {medium: Memory, sizeLimit: 1Gi}
  - name: host
    hostPath: {path: /srv, type: DirectoryOrCreate}
"#);
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.pods[0].namespace(), "dev");
}

// ---------------------------------------------------------------------------------------
// Parse and type errors

#[test]
fn parse_error_has_document_line_and_column() {
    let text =
        format!("{POD_NETWORK}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n");
    let err = load(&text).unwrap_err();
    match &err {
        ManifestError::Parse {
            file,
            document,
            line,
            column,
            message,
        } => {
            assert_eq!(file, "pod.yaml");
            assert_eq!(*document, 2);
            assert_eq!(*line, Some(20));
            assert!(column.is_some());
            assert!(!message.contains("at line 20 column"), "{message}");
            assert!(message.contains("flow sequence"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.starts_with("pod.yaml: document 2: line 20 column "),
        "{shown}"
    );
}

#[test]
fn parse_error_bad_indentation() {
    let err = load("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n   labels: {}\n").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("pod.yaml: document 1: line 5 column "),
        "{shown}"
    );
}

#[test]
fn type_error_has_path_line_and_column() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: busybox\n    ports:\n    - containerPort: http\n";
    assert_error(
        text,
        "pod.yaml: document 1: line 10 column 22: spec.containers[0].ports[0].containerPort: invalid type: string \"http\", expected i32",
    );
}

#[test]
fn type_errors_of_all_documents_are_collected() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 5}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '!!notbase64'}\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].starts_with("pod.yaml: document 1: line 4 column ")
            && errs[0].contains("spec.containers: invalid type: integer `5`, expected a sequence"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("pod.yaml: document 2: line 9 column ") && errs[1].contains("data.k"),
        "{}",
        errs[1]
    );
}

// ---------------------------------------------------------------------------------------
// Validation

#[test]
fn missing_metadata_name() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}\n",
        "pod.yaml: document 1: metadata.name: Required value: name is required",
    );
}

#[test]
fn generate_name_is_unsupported() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\nspec: {containers: [{name: a, image: b}]}\n",
        "pod.yaml: document 1: metadata.name: Required value: generateName is not supported by podrun; give the Pod a name",
    );
}

#[test]
fn invalid_pod_name() {
    assert_error_contains(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: My_Pod}\nspec: {containers: [{name: a, image: b}]}\n",
        &[
            "pod.yaml: document 1: metadata.name: Invalid value: \"My_Pod\": a lowercase RFC 1123 subdomain",
        ],
    );
}

#[test]
fn invalid_namespace() {
    assert_error_contains(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: Dev.Team}\nspec: {containers: [{name: a, image: b}]}\n",
        &["pod.yaml: document 1: metadata.namespace: Invalid value: \"Dev.Team\": a lowercase RFC 1123 label"],
    );
}

#[test]
fn the_namespace_asked_for_fills_in_objects_that_name_none_and_conflicts_are_errors() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: a, image: b}]}}}\n";
    let team = LoadOptions {
        namespace: Some("team-a".into()),
        ..Default::default()
    };
    let m = load_str("pod.yaml", text, &team).unwrap();
    let namespaces: Vec<&str> = m.pods.iter().map(|p| p.namespace()).collect();
    assert_eq!(namespaces, ["team-a", "team-a"]);
    // The same namespace, named: fine.
    let same = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team-a}\nspec: {containers: [{name: a, image: b}]}\n";
    assert_eq!(
        load_str("pod.yaml", same, &team).unwrap().pods[0].namespace(),
        "team-a"
    );
    // Another one, also `default` named outright, as kubectl has it.
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team-b}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: [{name: a, image: b}]}\n";
    assert_eq!(
        errors_of(load_str("pod.yaml", other, &team)),
        [
            "pod.yaml: document 1: metadata.namespace: the namespace from the provided object \"team-b\" does not match the namespace \"team-a\": pass -n team-b, or none",
            "pod.yaml: document 2: metadata.namespace: the namespace from the provided object \"default\" does not match the namespace \"team-a\": pass -n default, or none",
        ]
    );
}

#[test]
fn invalid_container_name() {
    assert_error_contains(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: Web.1, image: b}]}\n",
        &["pod.yaml: document 1: spec.containers[0].name: Invalid value: \"Web.1\": a lowercase RFC 1123 label"],
    );
}

#[test]
fn missing_container_name() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{image: b}]}\n",
        "pod.yaml: document 1: spec.containers[0].name: Required value",
    );
}

#[test]
fn invalid_volume_name() {
    assert_error_contains(
        &pod_with("", "  volumes: [{name: Data_1, emptyDir: {}}]\n"),
        &["pod.yaml: document 1: spec.volumes[0].name: Invalid value: \"Data_1\": a lowercase RFC 1123 label"],
    );
    assert_error_contains(
        &pod_with(
            "",
            &format!(
                "  volumes: [{{name: {}, emptyDir: {{}}}}]\n",
                "v".repeat(64)
            ),
        ),
        &[
            "spec.volumes[0].name: Invalid value: ",
            "must be no more than 63 characters",
        ],
    );
}

#[test]
fn no_containers() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
        "pod.yaml: document 1: spec.containers: Required value",
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
        "pod.yaml: document 1: spec.containers: Required value",
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
        "pod.yaml: document 1: spec: Required value",
    );
}

#[test]
fn missing_image() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: busybox}\n  - {name: b}\n",
        "pod.yaml: document 1: spec.containers[1].image: Required value",
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: ' '}\n",
        "pod.yaml: document 1: spec.containers[0].image: Required value",
    );
}

#[test]
fn duplicate_container_names_across_init_and_regular() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: web, image: b}]\n  containers: [{name: web, image: b}]\n",
        "pod.yaml: document 1: spec.containers[0].name: Duplicate value: \"web\"",
    );
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: web, image: b}, {name: x, image: b}, {name: web, image: c}]\n",
        "pod.yaml: document 1: spec.containers[2].name: Duplicate value: \"web\"",
    );
}

#[test]
fn duplicate_volume_names() {
    assert_error(
        &pod_with(
            "",
            "  volumes:\n  - {name: log, emptyDir: {}}\n  - {name: log, hostPath: {path: /tmp}}\n",
        ),
        "pod.yaml: document 1: spec.volumes[1].name: Duplicate value: \"log\"",
    );
}

#[test]
fn volume_with_two_sources() {
    assert_error(
        &pod_with("", "  volumes:\n  - {name: log, emptyDir: {}, hostPath: {path: /tmp}}\n"),
        "pod.yaml: document 1: spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
    );
}

#[test]
fn mount_of_unknown_volume() {
    assert_error(
        &pod_with("    volumeMounts: [{name: logs, mountPath: /logs}]\n", "  volumes: [{name: log, emptyDir: {}}]\n"),
        "pod.yaml: document 1: spec.containers[0].volumeMounts[0].name: Not found: \"logs\": no volume of that name in the pod",
    );
}

#[test]
fn duplicate_mount_path() {
    assert_error(
        &pod_with(
            "    volumeMounts:\n    - {name: a, mountPath: /data}\n    - {name: b, mountPath: /data/}\n",
            "  volumes: [{name: a, emptyDir: {}}, {name: b, emptyDir: {}}]\n",
        ),
        "pod.yaml: document 1: spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data/\": must be unique",
    );
}

#[test]
fn same_mount_path_in_two_containers_is_fine() {
    ok(POD_VOLUME);
}

#[test]
fn sub_path_must_stay_relative() {
    let volumes = "  volumes: [{name: a, emptyDir: {}}]\n";
    assert_error(
        &pod_with("    volumeMounts: [{name: a, mountPath: /d, subPath: /etc}]\n", volumes),
        "pod.yaml: document 1: spec.containers[0].volumeMounts[0].subPath: Invalid value: \"/etc\": must be a relative path",
    );
    assert_error(
        &pod_with("    volumeMounts: [{name: a, mountPath: /d, subPath: x/../../etc}]\n", volumes),
        "pod.yaml: document 1: spec.containers[0].volumeMounts[0].subPath: Invalid value: \"x/../../etc\": must not contain '..'",
    );
    ok(&pod_with(
        "    volumeMounts: [{name: a, mountPath: /d, subPath: x..y/z}]\n",
        volumes,
    ));
}

#[test]
fn missing_config_map_volume() {
    assert_error(
        &pod_with("", "  volumes: [{name: c, configMap: {name: settings}}]\n"),
        "pod.yaml: document 1: spec.volumes[0].configMap.name: Not found: \"settings\": no ConfigMap of that name in pod.yaml (set optional: true if it may be missing)",
    );
    ok(&pod_with(
        "",
        "  volumes: [{name: c, configMap: {name: settings, optional: true}}]\n",
    ));
}

#[test]
fn missing_secret_volume() {
    assert_error(
        &pod_with("", "  volumes: [{name: s, secret: {secretName: creds}}]\n"),
        "pod.yaml: document 1: spec.volumes[0].secret.secretName: Not found: \"creds\": no Secret of that name in pod.yaml (set optional: true if it may be missing)",
    );
    ok(&pod_with(
        "",
        "  volumes: [{name: s, secret: {secretName: creds, optional: true}}]\n",
    ));
}

#[test]
fn missing_env_references() {
    let text = pod_with(
        "    env:\n    - name: A\n      valueFrom: {configMapKeyRef: {name: cm, key: a}}\n    - name: B\n      valueFrom: {secretKeyRef: {name: sec, key: b}}\n    - name: C\n      valueFrom: {secretKeyRef: {name: sec2, key: c, optional: true}}\n    envFrom:\n    - configMapRef: {name: cm2}\n    - secretRef: {name: sec3}\n    - secretRef: {name: sec4, optional: true}\n",
        "",
    );
    assert_eq!(
        errors(&text),
        [
            "pod.yaml: document 1: spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Not found: \"cm\": no ConfigMap of that name in pod.yaml (set optional: true if it may be missing)",
            "pod.yaml: document 1: spec.containers[0].env[1].valueFrom.secretKeyRef.name: Not found: \"sec\": no Secret of that name in pod.yaml (set optional: true if it may be missing)",
            "pod.yaml: document 1: spec.containers[0].envFrom[0].configMapRef.name: Not found: \"cm2\": no ConfigMap of that name in pod.yaml (set optional: true if it may be missing)",
            "pod.yaml: document 1: spec.containers[0].envFrom[1].secretRef.name: Not found: \"sec3\": no Secret of that name in pod.yaml (set optional: true if it may be missing)",
        ]
    );
}

const CM_AND_SECRET: &str = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {present: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: sec}\nstringData: {present: y}\n";

#[test]
fn missing_keys() {
    let text = pod_with(
        "    env:\n    - name: A\n      valueFrom: {configMapKeyRef: {name: cm, key: absent}}\n    - name: B\n      valueFrom: {secretKeyRef: {name: sec, key: absent}}\n    - name: C\n      valueFrom: {secretKeyRef: {name: sec, key: absent, optional: true}}\n    - name: D\n      valueFrom: {configMapKeyRef: {name: cm, key: present}}\n",
        "  volumes:\n  - name: c\n    configMap:\n      name: cm\n      items: [{key: present, path: p}, {key: gone, path: g}]\n  - name: s\n    secret:\n      secretName: sec\n      items: [{key: gone, path: g}]\n  - name: o\n    secret:\n      secretName: sec\n      optional: true\n      items: [{key: gone, path: g}]\n",
    ) + CM_AND_SECRET;
    assert_eq!(
        errors(&text),
        [
            "pod.yaml: document 1: spec.volumes[0].configMap.items[1].key: Not found: \"gone\": ConfigMap \"cm\" has no such key",
            "pod.yaml: document 1: spec.volumes[1].secret.items[0].key: Not found: \"gone\": Secret \"sec\" has no such key",
            "pod.yaml: document 1: spec.containers[0].env[0].valueFrom.configMapKeyRef.key: Not found: \"absent\": ConfigMap \"cm\" has no such key",
            "pod.yaml: document 1: spec.containers[0].env[1].valueFrom.secretKeyRef.key: Not found: \"absent\": Secret \"sec\" has no such key",
        ]
    );
}

#[test]
fn item_paths_must_stay_inside_the_volume() {
    let text = pod_with(
        "",
        "  volumes:\n  - name: c\n    configMap:\n      name: cm\n      items: [{key: present, path: ../../etc/passwd}, {key: present, path: /abs}]\n",
    ) + CM_AND_SECRET;
    assert_eq!(
        errors(&text),
        [
            "pod.yaml: document 1: spec.volumes[0].configMap.items[0].path: Invalid value: \"../../etc/passwd\": must not contain '..'",
            "pod.yaml: document 1: spec.volumes[0].configMap.items[1].path: Invalid value: \"/abs\": must be a relative path",
        ]
    );
}

#[test]
fn config_keys_are_validated() {
    let text = format!(
        "{POD_NETWORK}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{'../x': a, ok: b}}\nbinaryData: {{ok: AA==}}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with(
        "pod.yaml: document 2: data[../x]: Invalid value: \"../x\": a valid config key must consist of alphanumeric characters"
    ));
    assert_eq!(
        errs[1],
        "pod.yaml: document 2: binaryData[ok]: Invalid value: \"ok\": duplicate of key present in data"
    );
}

#[test]
fn restart_policy_values() {
    assert_error(
        &pod_with("", "  restartPolicy: Sometimes\n"),
        "pod.yaml: document 1: spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
    for good in ["Always", "OnFailure", "Never"] {
        ok(&pod_with("", &format!("  restartPolicy: {good}\n")));
    }
}

#[test]
fn image_pull_policy_values() {
    assert_error(
        &pod_with("    imagePullPolicy: IfMissing\n", ""),
        "pod.yaml: document 1: spec.containers[0].imagePullPolicy: Unsupported value: \"IfMissing\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
    );
}

#[test]
fn init_container_restart_policy() {
    assert_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: s, image: b, restartPolicy: Never}]\n  containers: [{name: a, image: b}]\n",
        "pod.yaml: document 1: spec.initContainers[0].restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    );
}

#[test]
fn port_and_host_path_checks() {
    assert_eq!(
        errors(&pod_with(
            "    ports: [{containerPort: 0}, {containerPort: 70000, protocol: ICMP}]\n",
            "  volumes: [{name: h, hostPath: {path: /srv, type: Folder}}]\n"
        )),
        [
            "pod.yaml: document 1: spec.volumes[0].hostPath.type: Unsupported value: \"Folder\": supported values: \"DirectoryOrCreate\", \"Directory\", \"FileOrCreate\", \"File\", \"Socket\", \"CharDevice\", \"BlockDevice\"",
            "pod.yaml: document 1: spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            "pod.yaml: document 1: spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "pod.yaml: document 1: spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
        ]
    );
}

#[test]
fn duplicate_pod_names() {
    let text = format!("{POD_NETWORK}---\n{POD_NETWORK}");
    assert_error(
        &text,
        "pod.yaml: document 2: metadata.name: Duplicate value: \"pod-network\": a pod of that name is already defined in document 1",
    );
    // A workload's pod counts too.
    let text = format!(
        "{POD_NETWORK}---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: pod}}\nspec:\n  selector: {{}}\n  template:\n    spec:\n      containers: [{{name: a, image: b}}]\n"
    )
    .replace("name: pod-network", "name: pod-0");
    assert_error_contains(
        &text,
        &["document 2: metadata.name: Duplicate value: \"pod-0\""],
    );
}

#[test]
fn duplicate_config_maps() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n";
    assert_error(
        &format!("{POD_NETWORK}---\n{cm}---\n{cm}"),
        "pod.yaml: document 3: metadata.name: Duplicate value: \"cm\": a ConfigMap of that name is already defined in document 2",
    );
}

#[test]
fn all_errors_are_collected() {
    let text = r#"
apiVersion: v1
kind: Pod
metadata:
  name: Bad_Name
spec:
  restartPolicy: Sometimes
  containers:
  - name: web
    imagePullPolicy: Sometimes
    volumeMounts:
    - {name: nothere, mountPath: /x}
    - {name: log, mountPath: /x, subPath: /abs}
  - name: web
    image: busybox
  volumes:
  - {name: log, emptyDir: {}}
  - {name: log, configMap: {name: missing}}
---
apiVersion: v1
kind: Pod
metadata: {name: second}
spec:
  containers: []
"#;
    let errs = errors(text);
    let expected_paths = [
        "document 1: metadata.name: Invalid value",
        "document 1: spec.restartPolicy: Unsupported value",
        "document 1: spec.volumes[1].configMap.name: Not found",
        "document 1: spec.volumes[1].name: Duplicate value",
        "document 1: spec.containers[0].image: Required value",
        "document 1: spec.containers[0].imagePullPolicy: Unsupported value",
        "document 1: spec.containers[0].volumeMounts[0].name: Not found",
        "document 1: spec.containers[0].volumeMounts[1].mountPath: Invalid value",
        "document 1: spec.containers[0].volumeMounts[1].subPath: Invalid value",
        "document 1: spec.containers[1].name: Duplicate value",
        "document 2: spec.containers: Required value",
    ];
    assert_eq!(errs.len(), expected_paths.len(), "{errs:#?}");
    for (err, want) in errs.iter().zip(expected_paths) {
        assert!(
            err.starts_with(&format!("pod.yaml: {want}")),
            "{err} vs {want}"
        );
    }
    // Display: one error per line.
    let shown = ManifestError::Invalid {
        errors: errs.clone(),
    }
    .to_string();
    assert_eq!(shown.lines().count(), errs.len());
}

#[test]
fn env_value_and_value_from_exclusive() {
    assert_error(
        &pod_with("    env:\n    - name: A\n      value: x\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n", ""),
        "pod.yaml: document 1: spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
    );
}

// ---------------------------------------------------------------------------------------
// Files

#[test]
fn load_path_reads_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, POD_NETWORK).unwrap();
    let path = path.to_str().unwrap();
    let m = load_path(path, &LoadOptions::default()).unwrap();
    assert_eq!(m.pods[0].source.file, path);

    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    let err = load_path(missing, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, ManifestError::Read { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!("{missing}: ")),
        "{err}"
    );
}

#[test]
fn file_label_is_used_everywhere() {
    let err = load_str(
        "<stdin>",
        "apiVersion: v1\nkind: Pod\n",
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("<stdin>: document 1: metadata.name"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Robustness

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// YAML-ish fragments: keys Kubernetes uses, values of all shapes, and syntax.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("apiVersion: v1\n".to_string()),
            Just("apiVersion: apps/v1\n".to_string()),
            Just("kind: Pod\n".to_string()),
            Just("kind: Deployment\n".to_string()),
            Just("kind: ConfigMap\n".to_string()),
            Just("kind: Secret\n".to_string()),
            Just("kind: Job\n".to_string()),
            Just("kind: StatefulSet\n".to_string()),
            Just("kind: Service\n".to_string()),
            Just("kind: CronJob\n".to_string()),
            Just("  replicas: 3\n".to_string()),
            Just("  replicas: 2147483647\n".to_string()),
            Just("  ordinals: {start: 2147483647}\n".to_string()),
            Just("  ports: [{port: 80, targetPort: x, nodePort: 1}]\n".to_string()),
            Just("  clusterIP: None\n".to_string()),
            Just("metadata:\n  name: p\n".to_string()),
            Just("metadata: {name: x, namespace: y}\n".to_string()),
            Just("spec:\n".to_string()),
            Just("  containers:\n".to_string()),
            Just("  - name: a\n    image: b\n".to_string()),
            Just(
                "  volumes: [{name: v, configMap: {name: c, items: [{key: k, path: ../x}]}}]\n"
                    .to_string()
            ),
            Just("    volumeMounts: [{name: v, mountPath: /x, subPath: ..}]\n".to_string()),
            Just("  template:\n    spec:\n      containers: [{name: a}]\n".to_string()),
            Just("data: {k: v}\n".to_string()),
            Just("data: {k: '%%%'}\n".to_string()),
            Just("---\n".to_string()),
            Just("- &a [*a]\n".to_string()),
            Just("<<: *x\n".to_string()),
            Just("x: &x {y: 1}\n".to_string()),
            Just("<<: {z: 2}\n".to_string()),
            Just("{".to_string()),
            Just("]\n".to_string()),
            Just("\t".to_string()),
            Just("!!binary AAAA\n".to_string()),
            Just("? complex\n: key\n".to_string()),
            "[a-zA-Z0-9:{}\\[\\],&*!|>'\"#%@ \n-]{0,40}",
        ]
    }

    fn document() -> impl Strategy<Value = String> {
        prop::collection::vec(fragment(), 0..12).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            let _ = load_str("fuzz.yaml", &text, &LoadOptions::default());
        }

        #[test]
        fn yamlish_documents_never_panic(text in document(), strict in any::<bool>()) {
            match load_str("fuzz.yaml", &text, &LoadOptions { strict, ..Default::default() }) {
                Ok(m) => prop_assert!(!m.pods.is_empty()),
                Err(ManifestError::Invalid { errors }) => prop_assert!(!errors.is_empty()),
                Err(_) => {}
            }
        }

        #[test]
        fn mutated_seeds_never_panic(cut in 0usize..400, insert in "[ :\\-\\[\\]{}a-z\n]{0,6}") {
            let mut text = format!("{POD_VOLUME}---\n{POD_NETWORK}");
            let at = text.char_indices().map(|(i, _)| i).nth(cut % text.len()).unwrap_or(0);
            text.insert_str(at, &insert);
            let _ = load_str("fuzz.yaml", &text, &LoadOptions::default());
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = load(&text).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
        let text = format!("{}{}", "{a: ".repeat(10_000), "}".repeat(10_000));
        let err = load(&text).unwrap_err();
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }

    #[test]
    fn alias_bomb_is_an_error_not_a_hang() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = load(&text).unwrap_err();
        assert!(matches!(err, ManifestError::Parse { .. }), "{err:?}");
        assert!(
            err.to_string().contains("repetition limit exceeded"),
            "{err}"
        );
    }
}

#[test]
fn file_modes_are_read_as_kubernetes_reads_them() {
    let manifest = ok(r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {a: b}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: busybox}]
  volumes:
  - name: octal
    configMap: {name: cm, defaultMode: 0644, items: [{key: a, path: a, mode: 0o400}]}
  - name: decimal
    configMap: {name: cm, defaultMode: 420}
"#);
    let spec = manifest.pods[0].pod.spec.as_ref().unwrap();
    let volumes = spec.volumes.as_ref().unwrap();
    let octal = volumes[0].config_map.as_ref().unwrap();
    assert_eq!(octal.default_mode, Some(0o644));
    assert_eq!(octal.items.as_ref().unwrap()[0].mode, Some(0o400));
    assert_eq!(
        volumes[1].config_map.as_ref().unwrap().default_mode,
        Some(420)
    );
}

// ---------------------------------------------------------------------------------------
// The downward API, projected volumes, ports and pull secrets (issue 8)

#[test]
fn downward_api_fields_are_checked_per_use() {
    let text = pod_with(
        "    env:\n    - {name: A, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    - {name: B, valueFrom: {fieldRef: {fieldPath: metadata.labels}}}\n    - {name: C, valueFrom: {fieldRef: {fieldPath: \"metadata.annotations['x']\", apiVersion: v2}}}\n    - {name: D, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}\n    - {name: E, valueFrom: {resourceFieldRef: {resource: limits.gpu}}}\n    - {name: F, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi, containerName: nope}}}\n",
        "  volumes:\n  - name: info\n    downwardAPI:\n      items:\n      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n      - {path: ip, fieldRef: {fieldPath: status.podIP}}\n      - {path: cpu, resourceFieldRef: {resource: limits.cpu}}\n      - {path: mem, resourceFieldRef: {resource: requests.memory, containerName: app}, mode: 0400}\n      - {path: both}\n",
    );
    let errors = errors(&text);
    let expected = [
        "spec.volumes[0].downwardAPI.items[1].fieldRef.fieldPath: Unsupported value: \"status.podIP\"",
        "spec.volumes[0].downwardAPI.items[2].resourceFieldRef.containerName: Required value",
        "spec.volumes[0].downwardAPI.items[4]: Required value: one of fieldRef and resourceFieldRef is required",
        "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"metadata.labels\"",
        "spec.containers[0].env[2].valueFrom.fieldRef.apiVersion: Unsupported value: \"v2\"",
        "spec.containers[0].env[4].valueFrom.resourceFieldRef.resource: Unsupported value: \"limits.gpu\"",
        "spec.containers[0].env[5].valueFrom.resourceFieldRef.containerName: Not found: \"nope\"",
        "spec.containers[0].env[5].valueFrom.resourceFieldRef.divisor: Unsupported value: \"1Mi\"",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(expected) {
        assert!(got.contains(want), "{got}\nshould contain\n{want}");
    }
}

#[test]
fn downward_api_and_projected_volumes_load_without_warnings() {
    let text = pod_with(
        "    env:\n    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}\n    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n",
        "  volumes:\n  - name: info\n    downwardAPI:\n      defaultMode: 0444\n      items:\n      - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n      - {path: cpu, resourceFieldRef: {resource: limits.cpu, divisor: 1m, containerName: app}}\n  - name: all\n    projected:\n      defaultMode: 0440\n      sources:\n      - configMap: {name: cm, items: [{key: present, path: cm/present}]}\n      - secret: {name: sec}\n      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}, mode: 0400}]}\n",
    ) + CM_AND_SECRET;
    let m = load_strict(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn projected_sources_needing_an_api_server_are_refused_by_name() {
    let text = pod_with(
        "",
        "  volumes:\n  - name: token\n    projected:\n      sources:\n      - serviceAccountToken: {path: token, expirationSeconds: 3600}\n      - clusterTrustBundle: {path: ca.pem, signerName: example.com/x}\n",
    );
    let errors = errors(&text);
    assert!(errors[0].contains("spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: not supported by podrun"), "{errors:#?}");
    assert!(
        errors[1].contains("spec.volumes[0].projected.sources[1].clusterTrustBundle: Forbidden"),
        "{errors:#?}"
    );
}

#[test]
fn projected_paths_must_not_collide() {
    let text = pod_with(
        "",
        "  volumes:\n  - name: all\n    projected:\n      sources:\n      - configMap: {name: cm, items: [{key: present, path: same}]}\n      - secret: {name: sec, items: [{key: present, path: same}]}\n      - configMap: {name: missing}\n",
    ) + CM_AND_SECRET;
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("sources[1]: Invalid value: \"same\": conflicting duplicate paths"));
    assert!(errors[1].contains("sources[2].configMap.name: Not found: \"missing\""));
}

#[test]
fn file_modes_must_be_at_most_0777() {
    assert_error_contains(
        &pod_with("", "  volumes: [{name: d, downwardAPI: {defaultMode: 644, items: [{path: n, fieldRef: {fieldPath: metadata.name}}]}}]\n"),
        &["spec.volumes[0].downwardAPI.defaultMode: Invalid value: 644: must be a number between 0 and 0777"],
    );
}

#[test]
fn port_names_and_host_ports_are_unique() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: busybox\n    ports:\n    - {name: http, containerPort: 80, hostPort: 8080}\n    - {name: http, containerPort: 81}\n    - {name: Web_1, containerPort: 82}\n  - name: b\n    image: busybox\n    ports:\n    - {containerPort: 90, hostPort: 8080}\n    - {containerPort: 91, hostPort: 8080, protocol: UDP}\n";
    let errors = errors(text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("spec.containers[0].ports[1].name: Duplicate value: \"http\""));
    assert!(errors[1].contains("spec.containers[0].ports[2].name: Invalid value: \"Web_1\""));
    assert!(
        errors[2].contains("spec.containers[1].ports[0].hostPort: Duplicate value: \"8080/TCP\"")
    );
}

#[test]
fn docker_config_secrets_need_their_key() {
    let text = format!(
        "{POD_NETWORK}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: pull}}\ntype: kubernetes.io/dockerconfigjson\nstringData: {{other: x}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: pull2}}\ntype: kubernetes.io/dockerconfigjson\nstringData: {{.dockerconfigjson: 'not json'}}\n"
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("document 2: data[.dockerconfigjson]: Required value"));
    assert!(errors[1].contains(
        "document 3: data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\""
    ));
    assert!(!errors[1].contains("not json"), "the secret is not shown");
}

#[test]
fn env_reads_config_map_data_not_binary_data() {
    let text = pod_with(
        "    env:\n    - {name: B, valueFrom: {configMapKeyRef: {name: bin, key: blob}}}\n    - {name: 'bad\u{e9}', value: x}\n    - {name: 'ok name.1', value: x}\n    envFrom:\n    - {configMapRef: {name: bin}, prefix: 'A='}\n",
        "",
    ) + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: bin}\nbinaryData: {blob: aGVsbG8=}\n";
    let errors = errors(&text);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[2].contains("envFrom[0].prefix: Invalid value: \"A=\""),
        "{errors:#?}"
    );
    assert!(errors[0].contains(
        "env[0].valueFrom.configMapKeyRef.key: Invalid value: \"blob\": the key is in binaryData"
    ));
    assert!(errors[1].contains("env[1].name: Invalid value: \"badé\": a valid environment variable name must consist only of printable ASCII"));
}

#[test]
fn image_pull_secrets_give_the_pods_registry_logins() {
    let text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  imagePullSecrets: [{{name: regcred}}, {{name: other}}, {{name: opaque}}, {{name: missing}}]\n  containers: [{{name: a, image: busybox}}]\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: regcred}}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{{\"auths\": {{\"127.0.0.1:5859\": {{\"auth\": \"dTpw\"}}}}}}'\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: other}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: opaque}}\nstringData: {{a: b}}\n",
        "eyJhdXRocyI6IHsiMTI3LjAuMC4xOjU4NTkiOiB7ImF1dGgiOiAiYjNSb1pYSTZlQT09In0sICJyZWcuZXhhbXBsZSI6IHsiYXV0aCI6ICJlRHA1In19fQ=="
    );
    let m = ok(&text);
    assert_eq!(m.warnings.len(), 2, "{:#?}", m.warnings);
    assert!(
        m.warnings[0].contains("imagePullSecrets[2].name: Secret \"opaque\" is of type \"Opaque\"")
    );
    assert!(
        m.warnings[1].contains("imagePullSecrets[3].name: Secret \"missing\" is not in pod.yaml")
    );
    let auths = m.pull_secret_auths(&m.pods[0]);
    assert_eq!(auths.len(), 2);
    assert_eq!(
        auths["127.0.0.1:5859"]["auth"], "dTpw",
        "the first Secret wins"
    );
    assert_eq!(auths["reg.example"]["auth"], "eDp5");
}

// ---------------------------------------------------------------------------------------
// The manifests of the end-to-end tests are valid Kubernetes, and the compatibility table
// in docs/kubernetes-compatibility.md is true to the allow-list.

/// The field names k8s-openapi's `T` deserializes: its `Deserialize` impl hands them to
/// `deserialize_struct`, which this deserializer records and then refuses.
fn struct_fields<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    use serde::de::{self, Visitor};
    struct Recorder<'a>(&'a mut Vec<&'static str>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for Recorder<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Vec::new();
    let _ = T::deserialize(Recorder(&mut fields));
    assert!(!fields.is_empty(), "no fields recorded");
    fields
}

fn e2e_manifests() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/manifests");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files
}

/// YAML 1.1 octal integers, as Kubernetes' YAML reader takes `mode: 0400` (a YAML 1.2
/// reader sees the string "0400"): the one difference between the two for these files.
fn yaml11_octals(value: &mut serde_yaml_ng::Value) {
    use serde_yaml_ng::Value;
    match value {
        Value::String(s) if s.len() > 1 && s.starts_with('0') => {
            if let Ok(n) = u32::from_str_radix(&s[1..], 8) {
                *value = Value::Number(n.into());
            }
        }
        Value::Mapping(map) => map.values_mut().for_each(yaml11_octals),
        Value::Sequence(items) => items.iter_mut().for_each(yaml11_octals),
        _ => {}
    }
}

/// Reads `value` as `T` the way an API server's schema does: every field must be one of
/// `T`'s, with the right type.
fn schema_check<T: serde::de::DeserializeOwned>(value: serde_yaml_ng::Value) -> Result<(), String> {
    let mut unknown = Vec::new();
    let read: Result<T, _> =
        serde_ignored::deserialize(value, |path| unknown.push(path.to_string()));
    read.map_err(|e| e.to_string())?;
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("unknown fields: {unknown:?}"))
    }
}

#[test]
fn fidelity_manifests_are_valid_kubernetes() {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
    use serde::Deserialize;
    for (file, text) in e2e_manifests() {
        for (i, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let mut value = serde_yaml_ng::Value::deserialize(document).unwrap();
            yaml11_octals(&mut value);
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            assert_eq!(value["apiVersion"].as_str(), Some("v1"), "{file} #{i}");
            let checked = match kind.as_str() {
                "Pod" => schema_check::<Pod>(value),
                "ConfigMap" => schema_check::<ConfigMap>(value),
                "Secret" => schema_check::<Secret>(value),
                other => Err(format!("unexpected kind {other:?}")),
            };
            if let Err(e) = checked {
                panic!("{file}: document {}: {e}", i + 1);
            }
        }
        // And podrun's strict reading, with Kubernetes' validation, has nothing to say.
        let manifest = load_str(
            &file,
            &text,
            &LoadOptions {
                strict: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    }
}

#[test]
fn schema_check_rejects_what_a_cluster_rejects() {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, image: b, imagePullPolcy: Always}]}}",
    )
    .unwrap();
    let e = schema_check::<k8s_openapi::api::core::v1::Pod>(value).unwrap_err();
    assert!(e.contains("imagePullPolcy"), "{e}");
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, ports: [{containerPort: eighty}]}]}}",
    )
    .unwrap();
    assert!(schema_check::<k8s_openapi::api::core::v1::Pod>(value).is_err());
}

#[test]
fn fields_without_effect_yet_are_warned_not_ignored() {
    let m = ok(&pod_with(
        "    volumeDevices: [{name: d, devicePath: /dev/xvda}]\n    terminationMessagePolicy: FallbackToLogsOnError\n    terminationMessagePath: /tmp/msg\n",
        "",
    ));
    // The termination message fields are supported (podrun-pod's termination module).
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 1: spec.containers[0].volumeDevices: not supported by podrun yet; ignored"]
    );
}

#[test]
fn fields_new_below_supported_objects_are_warned() {
    // A probe's `protocol` is newer than the object it is in; `recursiveReadOnly: Disabled`
    // is what podrun's read-only mounts do, and an emptyDir's `mode` is supported.
    let m = ok(&pod_with(
        "    livenessProbe: {httpGet: {port: 80, protocol: HTTP/2}}\n    volumeMounts: [{name: v, mountPath: /v, readOnly: true, recursiveReadOnly: Disabled}]\n",
        "  volumes: [{name: v, emptyDir: {mode: 0755, sizeLimit: 1Mi}}]\n",
    ));
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 1: spec.containers[0].livenessProbe.httpGet.protocol: not supported by podrun yet; ignored"]
    );
}

#[test]
fn an_empty_dir_mode_beyond_01777_is_refused() {
    assert_error_contains(
        &pod_with("", "  volumes: [{name: v, emptyDir: {mode: 04755}}]\n"),
        &["spec.volumes[0].emptyDir.mode: Invalid value: 2541: must be a number between 0 and 01777 (octal)"],
    );
}

#[test]
fn os_linux_is_accepted_and_windows_refused() {
    let m = ok(&pod_with("", "  os: {name: linux}\n"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_error(
        &pod_with("", "  os: {name: windows}\n"),
        "pod.yaml: document 1: spec.os.name: Invalid value: \"windows\": the pod is for Windows nodes, and podrun runs Linux containers (a Linux node's kubelet rejects such a pod)",
    );
    assert_error(
        &pod_with("", "  os: {name: plan9}\n"),
        "pod.yaml: document 1: spec.os.name: Unsupported value: \"plan9\": supported values: \"linux\", \"windows\"",
    );
}

#[test]
fn stdin_stdin_once_and_tty_are_supported_in_any_combination() {
    // Kubernetes validates none of them against the others.
    for fields in [
        "    stdin: true\n    stdinOnce: true\n    tty: true\n",
        "    stdinOnce: true\n",
        "    tty: true\n",
        "    stdin: true\n",
    ] {
        let m = ok(&pod_with(fields, ""));
        assert!(m.warnings.is_empty(), "{fields}: {:?}", m.warnings);
    }
}

/// The rows of the table under `## {section}` of the compatibility page: field → status.
fn doc_table(doc: &str, section: &str) -> BTreeMap<String, String> {
    let start = doc
        .find(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("no section {section}"));
    let body = &doc[start + 4..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    body.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let field = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let status = cells.get(2)?.split_whitespace().next()?;
            Some((field.to_string(), status.trim_end_matches(':').to_string()))
        })
        .collect()
}

/// What the allow-list says of the top-level `field`, by the API's leaf fields below it
/// (`leaves`, from crate::schema): all of them allowed, some (or `field` is in `partial`),
/// or none.
fn allow_list_verdict(
    field: &str,
    leaves: &[String],
    allowed: &[&str],
    partial: &[&str],
) -> &'static str {
    let below: Vec<&String> = leaves
        .iter()
        .filter(|l| {
            l.strip_prefix(field).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
            })
        })
        .collect();
    let supported = below
        .iter()
        .filter(|l| allowed.contains(&l.as_str()))
        .count();
    if partial.contains(&field) || (supported > 0 && supported < below.len()) {
        "part"
    } else if supported > 0 {
        "whole"
    } else {
        "none"
    }
}

#[track_caller]
fn check_table(
    table: &BTreeMap<String, String>,
    fields: &[&str],
    leaves: &[String],
    allowed: &[&str],
    partial: &[&str],
) {
    for field in fields {
        let status = table
            .get(*field)
            .unwrap_or_else(|| panic!("docs/kubernetes-compatibility.md: `{field}` is not listed"));
        let expected: &[&str] = match allow_list_verdict(field, leaves, allowed, partial) {
            "whole" => &["supported", "partial"],
            "part" => &["partial"],
            _ => &["warned", "refused"],
        };
        assert!(
            expected.contains(&status.as_str()),
            "docs/kubernetes-compatibility.md says `{field}` is {status}, but supported.rs makes it one of {expected:?}"
        );
    }
    for listed in table.keys() {
        assert!(
            fields.contains(&listed.as_str()),
            "docs/kubernetes-compatibility.md lists `{listed}`, which is no field"
        );
    }
}

#[test]
fn docs_compatibility_table_matches_the_allow_list() {
    use crate::supported::{CONTAINER_FIELDS, INIT_CONTAINER_FIELDS, POD_SPEC_FIELDS};
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/kubernetes-compatibility.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    check_table(
        &doc_table(&doc, "PodSpec"),
        &struct_fields::<PodSpec>(),
        &crate::schema::leaves::<PodSpec>(),
        POD_SPEC_FIELDS,
        &["containers", "initContainers"],
    );
    let container_leaves = crate::schema::leaves::<Container>();
    check_table(
        &doc_table(&doc, "Container"),
        &struct_fields::<Container>(),
        &container_leaves,
        CONTAINER_FIELDS,
        INIT_CONTAINER_FIELDS,
    );
    // The check itself: a field the allow-list forbids cannot be called supported, nor one
    // it allows in part.
    for (field, status) in [("volumeDevices", "supported"), ("lifecycle", "supported")] {
        let mut wrong = doc_table(&doc, "Container");
        wrong.insert(field.into(), status.into());
        let caught = std::panic::catch_unwind(|| {
            check_table(
                &wrong,
                &struct_fields::<Container>(),
                &container_leaves,
                CONTAINER_FIELDS,
                INIT_CONTAINER_FIELDS,
            )
        });
        assert!(caught.is_err(), "{field}: {status}");
    }
}

#[test]
fn active_deadline_must_be_positive() {
    let m = ok(&pod_with("", "  activeDeadlineSeconds: 30\n"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_error(
        &pod_with("", "  activeDeadlineSeconds: 0\n"),
        "pod.yaml: document 1: spec.activeDeadlineSeconds: Invalid value: 0: must be greater than or equal to 1",
    );
}

#[test]
fn dns_policy_none_needs_a_nameserver() {
    let m = ok(&pod_with(
        "",
        "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [192.0.2.1]\n    searches: [a.example]\n    options: [{name: ndots, value: \"2\"}]\n  hostAliases:\n  - {ip: 127.0.0.1, hostnames: [foo.local]}\n",
    ));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_error(
        &pod_with("", "  dnsPolicy: None\n"),
        "pod.yaml: document 1: spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
    );
    assert_error(
        &pod_with("", "  dnsPolicy: Cluster\n"),
        "pod.yaml: document 1: spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
    );
}
