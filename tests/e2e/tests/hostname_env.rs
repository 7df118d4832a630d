//! The `HOSTNAME` variable (issue 18): every CRI runtime (containerd, CRI-O, docker, podman)
//! puts the pod's hostname in each container's environment, and manifests print it. The
//! value is the kernel hostname of the pod: `spec.hostname`, else the pod's name; the FQDN
//! with `setHostnameAsFQDN`; the host's name on the host's network. A container or image
//! that sets `HOSTNAME` itself keeps its value, as with containerd and podman.

use podrun_e2e::pods::*;
use podrun_e2e::TestEnv;

/// A container that prints its environment, then `--`.
const PRINT_ENV: &str = "env; echo --";

/// The `HOSTNAME` that container `container` of `pod` printed (`pod` may be `ns/name`).
fn hostname_printed(env: &TestEnv, pod: &str, container: &str) -> Option<String> {
    let log = wait_for_logs(env, &[pod, "-c", container], &["--\n"]);
    env_of(&log).remove("HOSTNAME")
}

const PODS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: env-plain
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "env; echo --"]
---
apiVersion: v1
kind: Pod
metadata:
  name: env-named
spec:
  hostname: box-1
  restartPolicy: Never
  containers:
  - name: runtime
    image: busybox
    command: ["sh", "-c", "env; echo --"]
  - name: own
    image: busybox
    command: ["sh", "-c", "env; echo --"]
    env:
    - name: HOSTNAME
      value: set-by-the-container
    - name: ECHOED
      value: $(HOSTNAME)
"#;

#[test]
fn hostname_is_the_pod_name_or_its_spec_hostname() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "hostname-env.yaml", PODS);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());

    assert_eq!(
        hostname_printed(&env, "env-plain", "c").as_deref(),
        Some("env-plain"),
        "the pod's name"
    );
    assert_eq!(
        hostname_printed(&env, "env-named", "runtime").as_deref(),
        Some("box-1"),
        "spec.hostname"
    );
    // The container's own value wins; `$(HOSTNAME)` sees it, as it sees any variable the
    // container defines before.
    let log = wait_for_logs(&env, &["env-named", "-c", "own"], &["--\n"]);
    let vars = env_of(&log);
    assert_eq!(
        vars.get("HOSTNAME").map(String::as_str),
        Some("set-by-the-container"),
        "{log}"
    );
    assert_eq!(
        vars.get("ECHOED").map(String::as_str),
        Some("set-by-the-container"),
        "{log}"
    );
    env.podrun_ok(&["down", &file]);
}

/// The Kubernetes documentation's hostname and subdomain pods (tests/e2e/manifests/
/// pod-hostname.yaml), printing their environment: with `setHostnameAsFQDN` the variable is
/// the FQDN, as the kernel hostname is (the kubelet hands the FQDN to the runtime as the
/// sandbox's hostname).
#[test]
fn hostname_is_the_fqdn_with_set_hostname_as_fqdn() {
    let env = TestEnv::new();
    let yaml = test_manifest("pod-hostname.yaml").replace(
        "hostname; hostname -f; cat /etc/hostname; echo --; cat /etc/hosts",
        PRINT_ENV,
    );
    assert!(yaml.contains(PRINT_ENV), "the manifest's command changed");
    let file = write_manifest(&env, "pod-hostname-env.yaml", &yaml);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert_eq!(
        hostname_printed(&env, "busybox1", "busybox").as_deref(),
        Some("busybox-1"),
        "a subdomain alone leaves the short name"
    );
    assert_eq!(
        hostname_printed(&env, "team-a/busybox2", "busybox").as_deref(),
        Some("busybox-2.busybox-subdomain.team-a.svc.cluster.local")
    );
    env.podrun_ok(&["down", &file]);
}

fn host_network_pod(extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: env-host\nspec:\n{extra}  hostname: ignored-on-the-host-network\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox\n    command: [\"sh\", \"-c\", \"{PRINT_ENV}\"]\n"
    )
}

/// On the host's network the pod has the host's hostname, and so has `HOSTNAME` (the
/// kubelet passes no hostname for such a pod; the runtime uses the host's).
#[test]
fn hostname_is_the_host_s_with_host_network() {
    let env = TestEnv::new();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let file = write_manifest(
        &env,
        "env-host.yaml",
        &host_network_pod("  hostNetwork: true\n"),
    );
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert_eq!(hostname_printed(&env, "env-host", "c"), Some(host));
    env.podrun_ok(&["down", &file]);
}

/// `play --network host` puts a pod without `hostNetwork` on the host's network too, with
/// the host's hostname (the planner passes it to `podrun_process::resolve_with_hostname`).
#[test]
fn hostname_is_the_host_s_with_network_host() {
    let env = TestEnv::new();
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let file = write_manifest(&env, "env-host.yaml", &host_network_pod(""));
    env.podrun_ok(&["play", "--network", "host", &file]);
    let _down = DownOnDrop(&env, file.clone());
    assert_eq!(hostname_printed(&env, "env-host", "c"), Some(host));
    env.podrun_ok(&["down", &file]);
}
