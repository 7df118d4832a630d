//! Planning the security context: the pod's `securityContext` and each container's (which
//! wins field by field) worked out at play into what the runtime enforces
//! ([`podrun_pod_model::plan::security`]), as containerd's CRI plugin does it for a kubelet.
//!
//! - Capabilities start from the container runtimes' 14 defaults
//!   ([`podrun_runtime::DEFAULT_CAPABILITIES`]); `add: [ALL]` gives every capability the
//!   kernel knows, `drop: [ALL]` none, then the other names are added and dropped in that
//!   order, so `add: [ALL], drop: [CHOWN]` is everything but CHOWN. Names may carry `CAP_`.
//! - `privileged: true`: every capability, no seccomp filter, /proc unmasked, /sys writable;
//!   add/drop are ignored, as on a cluster. The capabilities are those of the pod's user
//!   namespace: nothing gives power over the host.
//! - `allowPrivilegeEscalation: false` sets no_new_privs; unset, it is not set (Kubernetes'
//!   default, so set-user-ID programs such as `su` work as on a cluster).
//! - `seccompProfile`: `RuntimeDefault` (also podrun's default when unset, as podman's),
//!   `Unconfined`, or `Localhost` with a profile file under podrun's seccomp directory
//!   (`$XDG_CONFIG_HOME/podrun/seccomp`, the kubelet's is /var/lib/kubelet/seccomp), read and
//!   checked at play.
//! - `procMount: Unmasked` leaves /proc's masked and read-only paths open.
//! - Pod `sysctls` must be namespaced (the pod's network or IPC namespace); they are written
//!   by the supervisor in the pod's namespaces before any container starts.
//! - Pod `fsGroup` owns the pod's volumes (the supervisor's `security` applies it); the process gets the
//!   group through podrun-process.

use std::path::{Path, PathBuf};

use podrun_manifest::k8s_openapi::api::core::v1::{
    Container, PodSecurityContext, PodSpec, SeccompProfile as K8sSeccompProfile, SecurityContext,
};
use podrun_pod_model::plan::security::{ContainerSecurity, PodSecurity, Seccomp};

/// What `privileged: true` means here, said at play.
pub const PRIVILEGED_NOTICE: &str = "privileged: it gets every capability of the pod's user \
namespace, no seccomp filter, an unmasked /proc and a writable /sys; rootless, it cannot get the \
host's devices, the host's root or any power over the host that your own user lacks";

/// The container's security context: the container's fields over the pod's. `field` names the
/// container (`spec.containers[0]`) in messages; `seccomp_dir` is where `Localhost` profiles
/// live.
pub fn plan_container(
    spec: &PodSpec,
    container: &Container,
    field: &str,
    seccomp_dir: &Path,
) -> Result<ContainerSecurity, String> {
    let pod = spec.security_context.as_ref();
    let own = container.security_context.as_ref();
    let privileged = own.and_then(|c| c.privileged).unwrap_or(false);
    let capabilities = if privileged {
        known_capabilities()
    } else {
        capabilities(own, &format!("{field}.securityContext.capabilities"))?
    };
    let seccomp = if privileged {
        Seccomp::Unconfined
    } else {
        let (profile, at) = match own.and_then(|c| c.seccomp_profile.as_ref()) {
            Some(profile) => (
                Some(profile),
                format!("{field}.securityContext.seccompProfile"),
            ),
            None => (
                pod.and_then(|c| c.seccomp_profile.as_ref()),
                "spec.securityContext.seccompProfile".to_string(),
            ),
        };
        seccomp(profile, &at, seccomp_dir, &capabilities)?
    };
    Ok(ContainerSecurity {
        capabilities,
        privileged,
        // The kubelet sets no_new_privs only for an explicit `false` (the API refuses that
        // together with privileged or CAP_SYS_ADMIN).
        no_new_privileges: own.and_then(|c| c.allow_privilege_escalation) == Some(false),
        read_only_root_filesystem: own.and_then(|c| c.read_only_root_filesystem) == Some(true),
        seccomp,
        unmasked_proc: privileged || own.and_then(|c| c.proc_mount.as_deref()) == Some("Unmasked"),
    })
}

/// Every capability the running kernel knows, sorted.
fn known_capabilities() -> Vec<String> {
    let mut all: Vec<String> = podrun_runtime::known_capabilities()
        .into_iter()
        .map(String::from)
        .collect();
    all.sort();
    all
}

/// The capability set of `add`/`drop` over the defaults, in containerd's order.
fn capabilities(own: Option<&SecurityContext>, field: &str) -> Result<Vec<String>, String> {
    let caps = own.and_then(|c| c.capabilities.as_ref());
    let add = caps.and_then(|c| c.add.clone()).unwrap_or_default();
    let drop = caps.and_then(|c| c.drop.clone()).unwrap_or_default();
    if add.is_empty() && drop.is_empty() {
        // The usual case: no need to ask the kernel which capabilities it knows.
        return Ok(ContainerSecurity::default().capabilities);
    }
    let known = known_capabilities();
    let normalize = |name: &str, list: &str, index: usize| -> Result<String, String> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
        if bare == "ALL" || known.contains(&bare) {
            Ok(bare)
        } else if podrun_runtime::LINUX_CAPABILITIES.contains(&bare.as_str()) {
            Err(format!(
                "{field}.{list}[{index}]: `{name}` is not known to this host's kernel"
            ))
        } else {
            Err(format!(
                "{field}.{list}[{index}]: Unsupported value: \"{name}\": not a Linux capability (e.g. NET_ADMIN, SYS_TIME, or ALL)"
            ))
        }
    };
    let add: Vec<String> = add
        .iter()
        .enumerate()
        .map(|(i, n)| normalize(n, "add", i))
        .collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop
        .iter()
        .enumerate()
        .map(|(i, n)| normalize(n, "drop", i))
        .collect::<Result<_, _>>()?;
    let mut set: Vec<String> = podrun_runtime::DEFAULT_CAPABILITIES
        .map(String::from)
        .to_vec();
    if add.iter().any(|c| c == "ALL") {
        set = known.clone();
    }
    if drop.iter().any(|c| c == "ALL") {
        set.clear();
    }
    for cap in add.iter().filter(|c| *c != "ALL") {
        if !set.contains(cap) {
            set.push(cap.clone());
        }
    }
    set.retain(|cap| !drop.contains(cap));
    set.sort();
    Ok(set)
}

fn seccomp(
    profile: Option<&K8sSeccompProfile>,
    field: &str,
    seccomp_dir: &Path,
    capabilities: &[String],
) -> Result<Seccomp, String> {
    let Some(profile) = profile else {
        return Ok(Seccomp::RuntimeDefault);
    };
    match profile.type_.as_str() {
        "RuntimeDefault" => Ok(Seccomp::RuntimeDefault),
        "Unconfined" => Ok(Seccomp::Unconfined),
        "Localhost" => {
            let name = profile.localhost_profile.as_deref().unwrap_or_default();
            let path = localhost_profile_path(seccomp_dir, name)
                .map_err(|e| format!("{field}.localhostProfile: {e}"))?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "{field}.localhostProfile: cannot read {}: {e}\nhint: Localhost profiles are read from {} (the kubelet reads /var/lib/kubelet/seccomp)",
                    path.display(),
                    seccomp_dir.display()
                )
            })?;
            let oci = podrun_runtime::seccomp_profile_from_json(&text, capabilities)
                .map_err(|e| format!("{field}.localhostProfile: {}: {e}", path.display()))?;
            Ok(Seccomp::Localhost {
                profile: name.to_string(),
                oci: serde_json::to_value(oci).expect("a seccomp profile serializes"),
            })
        }
        other => Err(format!(
            "{field}.type: Unsupported value: \"{other}\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""
        )),
    }
}

/// `localhostProfile` must be a descending path, as the kubelet requires.
fn localhost_profile_path(seccomp_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let relative = Path::new(name);
    let descending = !name.is_empty()
        && relative.is_relative()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if descending {
        Ok(seccomp_dir.join(relative))
    } else {
        Err(format!(
            "Invalid value: {name:?}: must be a descending path, relative to {}",
            seccomp_dir.display()
        ))
    }
}

/// What the IPC namespace holds among the sysctls (the kubelet's list); `net.*` belong to the
/// network namespace; every other sysctl is the whole host's.
const IPC_SYSCTLS: &[&str] = &["kernel.sem", "kernel.shm_rmid_forced"];
const IPC_SYSCTL_PREFIXES: &[&str] = &["kernel.shm", "kernel.msg", "fs.mqueue."];

/// The sysctls a kubelet allows without `--allowed-unsafe-sysctls` (Kubernetes 1.32).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// The pod-wide security settings. Sysctls that a default kubelet would refuse (namespaced
/// but not in its safe set) are allowed here, with a warning returned for each.
pub fn plan_pod(spec: &PodSpec, host_network: bool) -> Result<(PodSecurity, Vec<String>), String> {
    let ctx: Option<&PodSecurityContext> = spec.security_context.as_ref();
    let fs_group = match ctx.and_then(|c| c.fs_group) {
        Some(gid) => Some(u32::try_from(gid).map_err(|_| {
            format!("spec.securityContext.fsGroup: Invalid value: {gid}: must be between 0 and 2147483647")
        })?),
        None => None,
    };
    let mut sysctls = Vec::new();
    let mut warnings = Vec::new();
    for (i, sysctl) in ctx
        .and_then(|c| c.sysctls.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.securityContext.sysctls[{i}]");
        // Kubernetes accepts `/` as the separator too (`net/ipv4/conf/eth0.1/forwarding`).
        let name = if sysctl.name.contains('/') {
            sysctl
                .name
                .chars()
                .map(|c| match c {
                    '/' => '.',
                    '.' => '/',
                    c => c,
                })
                .collect()
        } else {
            sysctl.name.clone()
        };
        let ipc = IPC_SYSCTLS.contains(&name.as_str())
            || IPC_SYSCTL_PREFIXES.iter().any(|p| name.starts_with(p));
        let net = name.starts_with("net.");
        if !ipc && !net {
            return Err(format!(
                "{field}.name: Forbidden: `{}` is not a namespaced sysctl: it would change the whole host, not the pod (a cluster refuses it too); only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* can be set for a pod",
                sysctl.name
            ));
        }
        if net && host_network {
            return Err(format!(
                "{field}.name: Forbidden: `{}` would change the host's network namespace, which a hostNetwork pod uses",
                sysctl.name
            ));
        }
        if !SAFE_SYSCTLS.contains(&name.as_str()) {
            warnings.push(format!(
                "{field}: `{}` is set here, but a default kubelet refuses this unsafe sysctl (it must be allowed with --allowed-unsafe-sysctls)",
                sysctl.name
            ));
        }
        sysctls.push((name, sysctl.value.clone()));
    }
    Ok((PodSecurity { fs_group, sysctls }, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_manifest::k8s_openapi::api::core::v1::{Capabilities, Sysctl};
    use podrun_runtime::SeccompProfile;

    fn container(ctx: SecurityContext) -> Container {
        Container {
            name: "c".into(),
            security_context: Some(ctx),
            ..Container::default()
        }
    }

    fn caps(add: &[&str], drop: &[&str]) -> Result<Vec<String>, String> {
        let ctx = SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(add.iter().map(|s| s.to_string()).collect()),
                drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            }),
            ..SecurityContext::default()
        };
        plan_container(
            &PodSpec::default(),
            &container(ctx),
            "spec.containers[0]",
            Path::new("/nonexistent"),
        )
        .map(|s| s.capabilities)
    }

    #[test]
    fn capabilities_add_and_drop_in_containerds_order() {
        let defaults = ContainerSecurity::default().capabilities;
        assert_eq!(caps(&[], &[]).unwrap(), defaults);
        let added = caps(&["NET_ADMIN", "CAP_SYS_TIME", "net_admin"], &["CAP_CHOWN"]).unwrap();
        assert!(added.contains(&"NET_ADMIN".to_string()));
        assert!(added.contains(&"SYS_TIME".to_string()));
        assert!(!added.contains(&"CHOWN".to_string()));
        assert_eq!(added.len(), 15);
        assert_eq!(caps(&[], &["ALL"]).unwrap(), Vec::<String>::new());
        assert_eq!(
            caps(&["NET_BIND_SERVICE"], &["ALL"]).unwrap(),
            ["NET_BIND_SERVICE"]
        );
        let all_but_chown = caps(&["ALL"], &["CHOWN"]).unwrap();
        assert_eq!(all_but_chown.len(), known_capabilities().len() - 1);
        let err = caps(&["NET_ADMN"], &[]).unwrap_err();
        assert!(
            err.starts_with("spec.containers[0].securityContext.capabilities.add[0]: Unsupported value: \"NET_ADMN\""),
            "{err}"
        );
    }

    #[test]
    fn privileged_and_the_other_switches() {
        let ctx = SecurityContext {
            privileged: Some(true),
            seccomp_profile: Some(K8sSeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        };
        let security =
            plan_container(&PodSpec::default(), &container(ctx), "c", Path::new("/x")).unwrap();
        assert_eq!(security.capabilities, known_capabilities());
        assert_eq!(security.seccomp, Seccomp::Unconfined);
        assert!(security.unmasked_proc && security.privileged && !security.no_new_privileges);
        let privileges = security.privileges().unwrap();
        assert!(privileges.writable_sys && !privileges.mask_proc);

        let ctx = SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            proc_mount: Some("Unmasked".into()),
            ..SecurityContext::default()
        };
        let security =
            plan_container(&PodSpec::default(), &container(ctx), "c", Path::new("/x")).unwrap();
        assert!(security.no_new_privileges && security.read_only_root_filesystem);
        assert!(security.unmasked_proc && !security.privileged);
        assert_eq!(security.seccomp, Seccomp::RuntimeDefault);
    }

    #[test]
    fn seccomp_profiles_pod_and_container_level() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(
            dir.path().join("profiles/no-mkdir.json"),
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let profile = |type_: &str, localhost: Option<&str>| K8sSeccompProfile {
            type_: type_.into(),
            localhost_profile: localhost.map(String::from),
        };
        let spec = PodSpec {
            security_context: Some(PodSecurityContext {
                seccomp_profile: Some(profile("Localhost", Some("profiles/no-mkdir.json"))),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        };
        let plain = Container::default();
        let security = plan_container(&spec, &plain, "c", dir.path()).unwrap();
        let Seccomp::Localhost { profile: name, oci } = &security.seccomp else {
            panic!("{:?}", security.seccomp);
        };
        assert_eq!(name, "profiles/no-mkdir.json");
        assert_eq!(oci["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(matches!(
            security.privileges().unwrap().seccomp,
            SeccompProfile::Custom(_)
        ));
        // The container's own profile wins.
        let own = container(SecurityContext {
            seccomp_profile: Some(profile("Unconfined", None)),
            ..SecurityContext::default()
        });
        let security = plan_container(&spec, &own, "c", dir.path()).unwrap();
        assert_eq!(security.seccomp, Seccomp::Unconfined);
        for (bad, message) in [
            ("../etc/x.json", "must be a descending path"),
            ("/etc/x.json", "must be a descending path"),
            ("missing.json", "cannot read"),
        ] {
            let own = container(SecurityContext {
                seccomp_profile: Some(profile("Localhost", Some(bad))),
                ..SecurityContext::default()
            });
            let err = plan_container(&spec, &own, "spec.containers[0]", dir.path()).unwrap_err();
            assert!(
                err.starts_with(
                    "spec.containers[0].securityContext.seccompProfile.localhostProfile: "
                ) && err.contains(message),
                "{err}"
            );
        }
    }

    fn pod_with_sysctls(names: &[(&str, &str)]) -> PodSpec {
        PodSpec {
            security_context: Some(PodSecurityContext {
                fs_group: Some(2000),
                sysctls: Some(
                    names
                        .iter()
                        .map(|(n, v)| Sysctl {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect(),
                ),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        }
    }

    #[test]
    fn namespaced_sysctls_only() {
        let spec = pod_with_sysctls(&[
            ("net.ipv4.ip_unprivileged_port_start", "0"),
            ("kernel.msgmax", "65536"),
            ("net/ipv4/conf/lo/forwarding", "1"),
        ]);
        let (pod, warnings) = plan_pod(&spec, false).unwrap();
        assert_eq!(pod.fs_group, Some(2000));
        assert_eq!(
            pod.sysctls,
            [
                (
                    "net.ipv4.ip_unprivileged_port_start".to_string(),
                    "0".to_string()
                ),
                ("kernel.msgmax".to_string(), "65536".to_string()),
                ("net.ipv4.conf.lo.forwarding".to_string(), "1".to_string()),
            ]
        );
        // kernel.msgmax and the forwarding switch are unsafe for a default kubelet.
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let err = plan_pod(&pod_with_sysctls(&[("vm.max_map_count", "1")]), false).unwrap_err();
        assert!(
            err.contains(
                "sysctls[0].name: Forbidden: `vm.max_map_count` is not a namespaced sysctl"
            ),
            "{err}"
        );
        let err =
            plan_pod(&pod_with_sysctls(&[("net.ipv4.tcp_syncookies", "1")]), true).unwrap_err();
        assert!(err.contains("hostNetwork"), "{err}");
    }
}
