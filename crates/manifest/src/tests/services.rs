//! Services: validation with the API server's messages, defaults, unsupported fields.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;

/// A file of a pod and a Service `web` (document 2) whose spec has `spec` lines (indented
/// by 2).
fn with_service(spec: &str) -> String {
    format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  selector: {{app: web}}\n{spec}",
        pod_with("", "")
    )
}

#[track_caller]
fn service_error(spec: &str, expected: &str) {
    assert_error(
        &with_service(spec),
        &format!("pod.yaml: document 2: {expected}"),
    );
}

#[test]
fn services_are_defaulted_as_the_api_server_defaults_them() {
    let m = ok(&with_service(
        "  ports:\n  - {name: http, port: 80}\n  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}\n  - {name: admin, port: 9000, targetPort: admin}\n",
    ));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    let s = &m.services[0];
    assert_eq!((s.name(), s.namespace()), ("web", "default"));
    let spec = s.service.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.cluster_ip.as_deref(), Some(""));
    let ports: Vec<(i32, &str, IntOrString)> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (
                p.port,
                p.protocol.as_deref().unwrap(),
                p.target_port.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (80, "TCP", IntOrString::Int(80)),
            (53, "UDP", IntOrString::Int(5353)),
            (9000, "TCP", IntOrString::String("admin".into())),
        ]
    );
}

#[test]
fn services_in_file_order_with_their_namespace_and_duplicates_refused() {
    let svc = |name: &str, ns: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{selector: {{a: b}}, ports: [{{port: 80}}]}}\n")
    };
    let m = ok(&format!(
        "{}---\n{}---\n{}",
        svc("b", "one"),
        svc("a", "two"),
        pod_with("", "")
    ));
    let names: Vec<(&str, &str)> = m
        .services
        .iter()
        .map(|s| (s.name(), s.namespace()))
        .collect();
    assert_eq!(names, [("b", "one"), ("a", "two")]);
    // The same name in another namespace is another Service; in the same, an error.
    assert!(load(&format!(
        "{}---\n{}---\n{}",
        svc("a", "one"),
        svc("a", "two"),
        pod_with("", "")
    ))
    .is_ok());
    assert_error(
        &format!("{}---\n{}---\n{}", svc("a", "one"), svc("a", "one"), pod_with("", "")),
        "pod.yaml: document 2: metadata.name: Duplicate value: \"a\": a Service of that name is already defined in document 1",
    );
    // The namespace asked for fills in.
    let m = load_str(
        "pod.yaml",
        &with_service("  ports: [{port: 80}]\n"),
        &LoadOptions {
            namespace: Some("ci".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(m.services[0].namespace(), "ci");
}

#[test]
fn service_names_are_dns_1035_labels() {
    assert_error(
        &with_service("  ports: [{port: 80}]\n").replace("name: web}", "name: 1web}"),
        "pod.yaml: document 2: metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
    assert_error_contains(
        &with_service("  ports: [{port: 80}]\n").replace("name: web}", "name: web.shop}"),
        &["document 2: metadata.name: Invalid value: \"web.shop\": a DNS-1035 label"],
    );
}

#[test]
fn ports_are_required_unless_headless() {
    service_error("", "spec.ports: Required value");
    service_error("  ports: []\n", "spec.ports: Required value");
    let m = ok(&with_service("  clusterIP: None\n"));
    let spec = m.services[0].service.spec.as_ref().unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert!(spec.ports.is_none());
}

#[test]
fn port_numbers_protocols_and_target_ports() {
    service_error(
        "  ports: [{port: 0}]\n",
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    service_error(
        "  ports: [{port: 65536}]\n",
        "spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive",
    );
    service_error(
        "  ports: [{port: 80, protocol: SCTP}]\n",
        "spec.ports[0].protocol: Unsupported value: \"SCTP\": podrun's Services forward TCP and UDP only; supported values: \"TCP\", \"UDP\"",
    );
    service_error(
        "  ports: [{port: 80, protocol: tcp}]\n",
        "spec.ports[0].protocol: Unsupported value: \"tcp\": supported values: \"TCP\", \"UDP\"",
    );
    service_error(
        "  ports: [{port: 80, targetPort: 70000}]\n",
        "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    service_error(
        "  ports: [{port: 80, targetPort: web_port}]\n",
        "spec.ports[0].targetPort: Invalid value: \"web_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
    );
    service_error(
        "  ports: [{port: 80, targetPort: \"8080\"}]\n",
        "spec.ports[0].targetPort: Invalid value: \"8080\": must contain at least one letter (a-z)",
    );
    service_error(
        "  ports: [{name: a, port: 80}, {name: b, port: 80}]\n",
        "spec.ports[1]: Duplicate value: \"80/TCP\"",
    );
    // The same port number for TCP and UDP is two ports.
    ok(&with_service(
        "  ports: [{name: a, port: 53}, {name: b, port: 53, protocol: UDP}]\n",
    ));
}

#[test]
fn port_names_are_required_and_unique_when_several() {
    service_error(
        "  ports: [{name: http, port: 80}, {port: 443}]\n",
        "spec.ports[1].name: Required value",
    );
    service_error(
        "  ports: [{name: http, port: 80}, {name: http, port: 443}]\n",
        "spec.ports[1].name: Duplicate value: \"http\"",
    );
    assert_error_contains(
        &with_service("  ports: [{name: Http, port: 80}]\n"),
        &["document 2: spec.ports[0].name: Invalid value: \"Http\": a lowercase RFC 1123 label"],
    );
    // One port needs no name.
    ok(&with_service("  ports: [{port: 80}]\n"));
}

#[test]
fn types_and_node_ports() {
    let m = ok(&with_service(
        "  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n",
    ));
    let spec = m.services[0].service.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    ok(&with_service(
        "  type: LoadBalancer\n  ports: [{port: 80}]\n",
    ));
    service_error(
        "  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n",
        "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767",
    );
    service_error(
        "  type: LoadBalancer\n  ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]\n",
        "spec.ports[1].nodePort: Duplicate value: 30080",
    );
    service_error(
        "  ports: [{port: 80, nodePort: 30080}]\n",
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    );
    service_error(
        "  type: ExternalName\n  externalName: db.example.com\n",
        "spec.type: Unsupported value: \"ExternalName\": podrun serves no ExternalName Services (a DNS alias of a name outside the file); supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\"",
    );
    service_error(
        "  type: Internal\n  ports: [{port: 80}]\n",
        "spec.type: Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\"",
    );
    service_error(
        "  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]\n",
        "spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services",
    );
}

#[test]
fn cluster_ips() {
    let m = ok(&with_service(
        "  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10]\n  ports: [{port: 80}]\n",
    ));
    assert_eq!(
        m.services[0]
            .service
            .spec
            .as_ref()
            .unwrap()
            .cluster_ip
            .as_deref(),
        Some("10.96.0.10")
    );
    let m = ok(&with_service(
        "  clusterIPs: [10.96.0.11]\n  ports: [{port: 80}]\n",
    ));
    assert_eq!(
        m.services[0]
            .service
            .spec
            .as_ref()
            .unwrap()
            .cluster_ip
            .as_deref(),
        Some("10.96.0.11")
    );
    service_error(
        "  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n",
        "spec.clusterIP: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    );
    service_error(
        "  clusterIP: fd00::10\n  ports: [{port: 80}]\n",
        "spec.clusterIP: Invalid value: \"fd00::10\": podrun's Service network is IPv4 only",
    );
    service_error(
        "  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10, fd00::10]\n  ports: [{port: 80}]\n",
        "spec.clusterIPs[1]: Invalid value: \"fd00::10\": podrun's Service network is IPv4 only: a Service has one cluster IP",
    );
    service_error(
        "  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.11]\n  ports: [{port: 80}]\n",
        "spec.clusterIPs[0]: Invalid value: \"10.96.0.11\": must be the same as spec.clusterIP (\"10.96.0.10\")",
    );
}

#[test]
fn selectors_are_label_selectors() {
    let text =
        with_service("  ports: [{port: 80}]\n").replace("{app: web}", "{\"my app\": \"-web\"}");
    let errors = errors(&text);
    assert_eq!(
        errors,
        [
            "pod.yaml: document 2: spec.selector: Invalid value: \"my app\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "pod.yaml: document 2: spec.selector: Invalid value: \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ]
    );
    ok(&with_service("  ports: [{port: 80}]\n")
        .replace("{app: web}", "{app.kubernetes.io/name: web}"));
    // No selector: no endpoints, said as a warning.
    let m = ok(&with_service("  ports: [{port: 80}]\n").replace("  selector: {app: web}\n", ""));
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 2: spec.selector: the Service selects no pods: podrun reads no EndpointSlices, so it has no endpoints"]
    );
}

#[test]
fn unsupported_service_fields_are_warned_and_errors_in_strict_mode() {
    let text = with_service(
        "  sessionAffinity: ClientIP\n  externalTrafficPolicy: Local\n  type: NodePort\n  loadBalancerIP: 192.0.2.1\n  ipFamilies: [IPv4, IPv6]\n  ports: [{port: 80}]\n",
    );
    let m = ok(&text);
    assert_eq!(
        m.warnings,
        [
            "pod.yaml: document 2: spec.externalTrafficPolicy: not supported by podrun yet; ignored",
            "pod.yaml: document 2: spec.ipFamilies: not supported by podrun yet; ignored",
            "pod.yaml: document 2: spec.loadBalancerIP: not supported by podrun yet; ignored",
            "pod.yaml: document 2: spec.sessionAffinity: not supported by podrun yet; ignored",
        ]
    );
    assert_eq!(errors_of(load_strict(&text)).len(), 4);
    // What `kubectl get -o yaml` shows by default does not warn, and the status is dropped.
    let m = ok(&with_service(
        "  sessionAffinity: None\n  internalTrafficPolicy: Cluster\n  ipFamilies: [IPv4]\n  ipFamilyPolicy: SingleStack\n  ports: [{port: 80, protocol: TCP, targetPort: 80}]\nstatus:\n  loadBalancer: {}\n",
    ));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert!(m.services[0].service.status.is_none());
    // Unknown fields as everywhere.
    let m = ok(&with_service("  ports: [{port: 80, prot: TCP}]\n"));
    assert_eq!(
        m.warnings,
        ["pod.yaml: document 2: unknown field spec.ports[0].prot"]
    );
}

#[test]
fn a_file_of_services_only_has_no_pods() {
    let err = load("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {a: b}, ports: [{port: 80}]}\n").unwrap_err();
    assert!(matches!(err, ManifestError::NoPods { .. }), "{err:?}");
}
