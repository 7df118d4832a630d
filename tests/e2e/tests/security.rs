//! Security contexts (issue 8): the pod's and the containers' `securityContext`, played by the
//! ordinary test user from manifests in the style of the Kubernetes task pages ("Configure a
//! Security Context for a Pod or Container"), checked from inside the containers: their ids
//! and groups, volume ownership, capabilities, seccomp, no_new_privs, /proc and /sys, sysctls.

use std::collections::BTreeMap;

use podrun_e2e::pods::*;
use podrun_e2e::TestEnv;

/// `key=value` and `Key:\tvalue` lines of a container's report, up to `END`.
fn report(log: &str) -> BTreeMap<String, String> {
    log.lines()
        .take_while(|l| *l != "END")
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn container_report(env: &TestEnv, pod: &str, container: &str) -> BTreeMap<String, String> {
    report(&wait_for_logs(env, &[pod, "-c", container], &["END"]))
}

/// The pod's ids, groups, fsGroup-owned volumes and sysctls; no_new_privs only where
/// `allowPrivilegeEscalation: false` asks for it.
#[test]
fn pod_security_context_fs_group_and_sysctls() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "security-context.yaml",
        &test_manifest("security-context.yaml"),
    );
    let out = env.podrun(&["play", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let _down = DownOnDrop(&env, file.clone());
    // kernel.msgmax is namespaced but not in the kubelet's safe set: set, with a warning.
    assert!(
        stderr.contains(
            "`kernel.msgmax` is set here, but a default kubelet refuses this unsafe sysctl"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("net.ipv4.ip_unprivileged_port_start"),
        "{stderr}"
    );
    let demo = container_report(&env, "security-context-demo", "sec-ctx-demo");
    // busybox's `id` prints the primary group first, then the supplementary ones.
    let line = |key: &str| {
        demo.get(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key}: {demo:?}"))
    };
    assert!(line("uid").starts_with("1000 gid=3000 groups="), "{demo:?}");
    let ids = line("uid");
    let groups: Vec<&str> = ids
        .split("groups=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    for gid in ["3000", "2000", "4000"] {
        assert!(groups.contains(&gid), "{gid} missing: {demo:?}");
    }
    // The emptyDir: group 2000, group-writable and set-group-ID; new files get the group.
    assert_eq!(line("volume"), "2000 2777", "{demo:?}");
    assert_eq!(line("new-file-group"), "2000", "{demo:?}");
    // The Secret (defaultMode 0400): readable by uid 1000 through the group only.
    assert_eq!(line("secret"), "2000 440 s3cret", "{demo:?}");
    assert_eq!(line("NoNewPrivs"), "1", "{demo:?}");
    assert_eq!(line("port-start"), "0", "{demo:?}");
    assert_eq!(line("shm-rmid-forced"), "1", "{demo:?}");
    assert_eq!(line("msgmax"), "65536", "{demo:?}");
    let other = container_report(&env, "security-context-demo", "escalation-allowed");
    assert_eq!(other["NoNewPrivs"], "0", "Kubernetes' default: {other:?}");
    // The sysctls are the pod's, not the host's.
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_eq!(host.trim(), "1024");
    down_and_check(&env, &file, &["security-context-demo"]);
}

/// Capabilities added and dropped, `ALL`, privileged, a read-only root file system with an
/// unmasked /proc and a Localhost seccomp profile, and Unconfined.
#[test]
fn capabilities_seccomp_and_the_other_switches() {
    let env = TestEnv::new();
    env.write_home_file(
        ".config/podrun/seccomp/profiles/deny-mkdir.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    );
    let file = write_manifest(
        &env,
        "capabilities.yaml",
        &test_manifest("capabilities.yaml"),
    );
    let out = env.podrun(&["play", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let _down = DownOnDrop(&env, file.clone());
    assert!(
        stderr.contains("container `privileged`: privileged: it gets every capability of the pod's user namespace")
            && stderr.contains("rootless, it cannot get the host's devices"),
        "{stderr}"
    );
    let pod = "capabilities-demo";
    let all_caps = {
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        format!("{:016x}", (1u64 << (last + 1)) - 1)
    };
    let expected: [(&str, &[(&str, &str)]); 6] = [
        (
            "defaults",
            &[
                ("CapEff", "00000000a80425fb"),
                ("Seccomp", "2"),
                ("NoNewPrivs", "0"),
                ("net-admin", "no"),
                ("rootfs", "rw"),
                ("mkdir", "yes"),
                ("keys-masked", "1"),
                ("sys", "ro,"),
            ],
        ),
        (
            "add-drop",
            // + NET_ADMIN (12) + SYS_TIME (25) - CHOWN (0)
            &[("CapEff", "00000000aa0435fa"), ("net-admin", "yes")],
        ),
        (
            "only-bind",
            &[("CapEff", "0000000000000400"), ("net-admin", "no")],
        ),
        (
            "privileged",
            &[
                ("CapEff", &all_caps),
                ("Seccomp", "0"),
                ("net-admin", "yes"),
                ("keys-masked", "0"),
                ("sys", "rw,"),
            ],
        ),
        (
            "locked-down",
            &[
                ("Seccomp", "2"),
                ("rootfs", "ro"),
                ("mkdir", "no"),
                ("keys-masked", "0"),
            ],
        ),
        ("unconfined", &[("Seccomp", "0"), ("mkdir", "yes")]),
    ];
    for (container, wanted) in expected {
        let got = container_report(&env, pod, container);
        for (key, value) in wanted {
            assert_eq!(
                got.get(*key).map(String::as_str),
                Some(*value),
                "{container}: {key}: {got:?}"
            );
        }
    }
    down_and_check(&env, &file, &[pod]);
}

/// `runAsNonRoot` refuses an image that would run as root before anything is created, as a
/// kubelet refuses to start it; a non-root `runAsUser` passes.
#[test]
fn run_as_non_root_refuses_a_root_image() {
    let env = TestEnv::new();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: non-root}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - {name: app, image: busybox, command: [sleep, '3600']}\n";
    let file = write_manifest(&env, "non-root.yaml", yaml);
    let err = env.podrun_err(&["play", &file]);
    assert!(
        err.contains(
            "container `app`: securityContext.runAsNonRoot: true, but the image will run as root"
        ),
        "{err}"
    );
    let ps = env.podrun_ok(&["ps", "-q"]);
    assert!(ps.trim().is_empty(), "nothing was created: {ps}");
    assert!(!runtime_dir(&env, "non-root").exists());
    let file = write_manifest(
        &env,
        "non-root.yaml",
        &yaml.replace(
            "{runAsNonRoot: true}",
            "{runAsNonRoot: true, runAsUser: 1000}",
        ),
    );
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());
    down_and_check(&env, &file, &["non-root"]);
}

/// A sysctl of the whole host, a capability that does not exist and a Localhost profile that
/// is not there are errors naming the field, before anything is created.
#[test]
fn bad_security_settings_are_refused_by_name() {
    let env = TestEnv::new();
    let cases = [
        (
            "spec:\n  securityContext:\n    sysctls: [{name: vm.max_map_count, value: '262144'}]\n  containers:\n  - {name: app, image: busybox}\n",
            "spec.securityContext.sysctls[0].name: Forbidden: `vm.max_map_count` is not a namespaced sysctl",
        ),
        (
            "spec:\n  containers:\n  - name: app\n    image: busybox\n    securityContext: {capabilities: {add: [NET_ADMN]}}\n",
            "spec.containers[0].securityContext.capabilities.add[0]: Unsupported value: \"NET_ADMN\"",
        ),
        (
            "spec:\n  containers:\n  - name: app\n    image: busybox\n    securityContext: {seccompProfile: {type: Localhost, localhostProfile: missing.json}}\n",
            "spec.containers[0].securityContext.seccompProfile.localhostProfile: cannot read",
        ),
    ];
    for (spec, wanted) in cases {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\n{spec}");
        let file = write_manifest(&env, "bad.yaml", &yaml);
        let err = env.podrun_err(&["play", &file]);
        assert!(err.contains(wanted), "{wanted}\n{err}");
        assert!(!runtime_dir(&env, "bad").exists(), "{err}");
    }
}
