//! The OCI runtime spec (`config.json`) of a pod container.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    Capability, LinuxCapabilitiesBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount as OciMount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    RootBuilder, Spec, UserBuilder,
};

use crate::{ContainerConfig, Mount, RuntimeError, SeccompProfile};

/// Docker's (and podman's, and containerd's) 14 default capabilities, without the `CAP_`
/// prefix. They go into the bounding, effective and permitted sets; inheritable and ambient
/// stay empty. All of them work inside the pod's user namespace (measured).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every Linux capability, in the kernel's order (its number is the index), without `CAP_`.
pub const LINUX_CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities the running kernel knows (`/proc/sys/kernel/cap_last_cap`): what
/// Kubernetes' `ALL` and `privileged` give. All of [`LINUX_CAPABILITIES`] if the file cannot
/// be read.
pub fn known_capabilities() -> Vec<&'static str> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(LINUX_CAPABILITIES.len() - 1);
    LINUX_CAPABILITIES.iter().take(last + 1).copied().collect()
}

/// The highest RLIMIT_NOFILE a container gets (podman's default): the runner cannot raise its
/// hard limit, so the container gets the smaller of this and the caller's hard limit.
const MAX_NOFILE: u64 = 1_048_576;

fn spec_error(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidConfig(format!("{what}: {e}"))
}

fn capability(name: &str) -> Result<Capability, RuntimeError> {
    serde_json::from_value(serde_json::Value::String(format!("CAP_{name}")))
        .map_err(|e| spec_error(&format!("unknown capability {name}"), e))
}

fn namespace(
    typ: LinuxNamespaceType,
    path: Option<PathBuf>,
) -> Result<LinuxNamespace, RuntimeError> {
    let builder = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(path) => builder.path(path),
        None => builder,
    }
    .build()
    .map_err(|e| spec_error("namespace", e))
}

fn mount(
    destination: &str,
    typ: &str,
    source: &Path,
    options: Vec<String>,
) -> Result<OciMount, RuntimeError> {
    if !destination.starts_with('/') {
        return Err(RuntimeError::InvalidConfig(format!(
            "mount destination {destination:?} is not absolute"
        )));
    }
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options)
        .build()
        .map_err(|e| spec_error("mount", e))
}

fn bind_options(readonly: bool) -> Vec<String> {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".to_string());
    }
    options
}

/// The spec for `config`: `Spec::default()` (default mounts, masked and read-only paths) with
/// the process, root, namespaces and mounts of the pod container, no user namespace (the runner
/// is already in the pod's), the cgroup and limits of `config.cgroup` (none without), and the
/// seccomp profile asked for. `nofile_hard_limit` is the runner's RLIMIT_NOFILE hard limit.
pub fn build_spec(config: &ContainerConfig, nofile_hard_limit: u64) -> Result<Spec, RuntimeError> {
    if !config.bundle_dir.is_absolute() {
        return Err(RuntimeError::InvalidConfig(format!(
            "bundle directory {} is not absolute",
            config.bundle_dir.display()
        )));
    }
    if config.args.is_empty() {
        return Err(RuntimeError::InvalidConfig(
            "no command (args) given".into(),
        ));
    }
    let mut spec = Spec::default();

    // Process.
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(config.stdin.is_terminal()));
    process.set_args(Some(config.args.clone()));
    process.set_env(Some(config.env.clone()));
    process.set_cwd(PathBuf::from(if config.cwd.is_empty() {
        "/"
    } else {
        &config.cwd
    }));
    let mut user = UserBuilder::default().uid(config.uid).gid(config.gid);
    if !config.additional_gids.is_empty() {
        user = user.additional_gids(config.additional_gids.clone());
    }
    process.set_user(user.build().map_err(|e| spec_error("user", e))?);
    let privileges = &config.privileges;
    // libcontainer loads seccomp after dropping capabilities whenever the field is present,
    // even `false`, which needs no_new_privs; absent, it loads it first, as runc does.
    process.set_no_new_privileges(privileges.no_new_privileges.then_some(true));
    let caps: HashSet<Capability> = privileges
        .capabilities
        .iter()
        .map(|name| capability(name))
        .collect::<Result<_, _>>()?;
    process.set_capabilities(Some(
        LinuxCapabilitiesBuilder::default()
            .bounding(caps.clone())
            .effective(caps.clone())
            .permitted(caps)
            .inheritable(HashSet::new())
            .ambient(HashSet::new())
            .build()
            .map_err(|e| spec_error("capabilities", e))?,
    ));
    let nofile = nofile_hard_limit.min(MAX_NOFILE);
    process.set_rlimits(Some(vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile)
        .soft(nofile)
        .build()
        .map_err(|e| spec_error("rlimit", e))?]));
    spec.set_process(Some(process));

    // Root: the overlay the runner mounts at bundle/rootfs.
    spec.set_root(Some(
        RootBuilder::default()
            .path(config.bundle_dir.join("rootfs"))
            .readonly(config.readonly_rootfs)
            .build()
            .map_err(|e| spec_error("root", e))?,
    ));
    spec.set_hostname(config.hostname.clone());

    // Mounts: the defaults (proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup),
    // /dev/shm possibly replaced by the pod's shared directory, then the caller's.
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if privileges.writable_sys && !config.host_network {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/sys"))
        {
            let options = m.options().clone().unwrap_or_default();
            m.set_options(Some(options.into_iter().filter(|o| o != "ro").collect()));
        }
    }
    if config.host_network {
        // podman does the same for rootless --network host.
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/sys"))
        {
            let mut options = bind_options(true);
            options.extend(["nosuid", "noexec", "nodev"].map(String::from));
            *m = mount("/sys", "bind", Path::new("/sys"), options)?;
        }
    }
    if let Some(shm_dir) = &config.shm_dir {
        mounts.retain(|m| m.destination() != Path::new("/dev/shm"));
        let mut options = bind_options(false);
        options.extend(["nosuid", "nodev", "noexec"].map(String::from));
        mounts.push(mount("/dev/shm", "bind", shm_dir, options)?);
    }
    for extra in &config.mounts {
        mounts.push(match extra {
            Mount::Bind(bind) => mount(
                &bind.destination,
                "bind",
                &bind.source,
                bind_options(bind.readonly),
            )?,
            Mount::Tmpfs(tmpfs) => {
                let mut options = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    format!("mode={:o}", tmpfs.mode.unwrap_or(0o1777)),
                ];
                if let Some(size) = tmpfs.size_bytes {
                    options.push(format!("size={size}"));
                }
                if tmpfs.readonly {
                    options.push("ro".to_string());
                }
                mount(&tmpfs.destination, "tmpfs", Path::new("tmpfs"), options)?
            }
        });
    }
    spec.set_mounts(Some(mounts));

    // Namespaces: new pid (or the pod's), mount and cgroup; the pod's net, ipc and uts (or a new
    // uts with its own hostname); no user namespace.
    let pod_ns = |name: &str| {
        Some(PathBuf::from(format!(
            "/proc/{}/ns/{name}",
            config.join_namespaces_of
        )))
    };
    let uts_path = match config.hostname {
        Some(_) => None,
        None => pod_ns("uts"),
    };
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, config.pid_namespace.clone())?,
        namespace(LinuxNamespaceType::Mount, None)?,
        namespace(LinuxNamespaceType::Cgroup, None)?,
        namespace(LinuxNamespaceType::Ipc, pod_ns("ipc"))?,
        namespace(LinuxNamespaceType::Uts, uts_path)?,
    ];
    if !config.host_network {
        namespaces.push(namespace(LinuxNamespaceType::Network, pod_ns("net"))?);
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_namespaces(Some(namespaces));
    crate::cgroup::apply(&mut linux, config.cgroup.as_ref())?;
    if !privileges.mask_proc {
        linux.set_masked_paths(Some(Vec::new()));
        linux.set_readonly_paths(Some(Vec::new()));
    }
    linux.set_seccomp(match &privileges.seccomp {
        SeccompProfile::RuntimeDefault => Some(crate::runtime_default_profile_for(
            &privileges.capabilities,
        )?),
        SeccompProfile::RuntimeDefaultNativeOnly => Some(crate::native_seccomp_profile()?.clone()),
        SeccompProfile::Unconfined => None,
        SeccompProfile::Custom(profile) => Some((**profile).clone()),
    });
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BindMount, Privileges, TmpfsMount};

    fn config() -> ContainerConfig {
        let null = || std::fs::File::open("/dev/null").unwrap().into();
        ContainerConfig {
            id: "c1".into(),
            state_root: "/run/state".into(),
            bundle_dir: "/b/c1".into(),
            lower_dirs: vec!["/l/2".into(), "/l/1".into()],
            upper_dir: "/u".into(),
            work_dir: "/w".into(),
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            mounts: vec![
                BindMount {
                    source: "/data".into(),
                    destination: "/data".into(),
                    readonly: true,
                }
                .into(),
                TmpfsMount {
                    destination: "/cache".into(),
                    size_bytes: Some(1 << 20),
                    mode: None,
                    readonly: false,
                }
                .into(),
            ],
            join_namespaces_of: 42,
            pid_namespace: None,
            shm_dir: Some("/pod/shm".into()),
            stdout: null(),
            stderr: null(),
            stdin: crate::ContainerInput::Null,
            hostname: None,
            readonly_rootfs: true,
            privileges: Privileges {
                seccomp: SeccompProfile::Unconfined,
                no_new_privileges: true,
                ..Privileges::default()
            },
            host_network: false,
            cgroup: None,
        }
    }

    /// The spec's mount at `destination`.
    fn mount_at<'a>(json: &'a serde_json::Value, destination: &str) -> &'a serde_json::Value {
        json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == destination)
            .unwrap_or_else(|| panic!("no mount at {destination}"))
    }

    #[test]
    fn host_network_keeps_the_runners_namespace_and_binds_sys() {
        let mut config = config();
        let json = serde_json::to_value(build_spec(&config, 1024).unwrap()).unwrap();
        let has_net = |json: &serde_json::Value| {
            json["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        };
        assert!(has_net(&json));
        config.host_network = true;
        let json = serde_json::to_value(build_spec(&config, 1024).unwrap()).unwrap();
        assert!(!has_net(&json));
        let sys = mount_at(&json, "/sys");
        assert_eq!(sys["type"], "bind");
        assert!(sys["options"].as_array().unwrap().contains(&"ro".into()));
    }

    #[test]
    fn spec_for_a_pod_container() {
        let spec = build_spec(&config(), 20000).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["root"]["path"], "/b/c1/rootfs");
        assert_eq!(json["root"]["readonly"], true);
        assert!(json.get("hostname").is_none());
        let process = &json["process"];
        assert_eq!(process["user"]["uid"], 1000);
        assert_eq!(process["user"]["additionalGids"], serde_json::json!([10]));
        assert_eq!(process["noNewPrivileges"], true);
        assert_eq!(process["rlimits"][0]["hard"], 20000);
        assert_eq!(
            process["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(
            process["capabilities"]["inheritable"]
                .as_array()
                .map(Vec::len),
            Some(0)
        );
        let linux = &json["linux"];
        assert!(linux.get("resources").is_none());
        assert!(linux.get("seccomp").is_none());
        let namespaces = linux["namespaces"].as_array().unwrap();
        let ns = |typ: &str| {
            namespaces
                .iter()
                .find(|n| n["type"] == typ)
                .unwrap_or_else(|| panic!("no {typ} namespace"))
                .get("path")
                .cloned()
        };
        assert_eq!(ns("network"), Some("/proc/42/ns/net".into()));
        assert_eq!(ns("ipc"), Some("/proc/42/ns/ipc".into()));
        assert_eq!(ns("uts"), Some("/proc/42/ns/uts".into()));
        assert_eq!(ns("pid"), None);
        assert_eq!(ns("mount"), None);
        assert_eq!(ns("cgroup"), None);
        assert!(!namespaces.iter().any(|n| n["type"] == "user"));
        let mounts = json["mounts"].as_array().unwrap();
        let shm: Vec<_> = mounts
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0]["source"], "/pod/shm");
        let data = mounts.iter().find(|m| m["destination"] == "/data").unwrap();
        assert!(data["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ro"));
        let cache = mounts
            .iter()
            .find(|m| m["destination"] == "/cache")
            .unwrap();
        assert_eq!(cache["type"], "tmpfs");
        assert!(cache["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "size=1048576"));
        assert!(mounts.iter().any(|m| m["destination"] == "/sys/fs/cgroup"));
    }

    #[test]
    fn own_hostname_means_own_uts_namespace_and_seccomp_is_optional() {
        let mut config = config();
        config.hostname = Some("web".into());
        config.pid_namespace = Some("/proc/7/ns/pid".into());
        config.privileges.seccomp = SeccompProfile::RuntimeDefault;
        let json = serde_json::to_value(build_spec(&config, u64::MAX).unwrap()).unwrap();
        assert_eq!(json["hostname"], "web");
        let namespaces = json["linux"]["namespaces"].as_array().unwrap();
        let uts = namespaces.iter().find(|n| n["type"] == "uts").unwrap();
        assert!(uts.get("path").is_none());
        let pid = namespaces.iter().find(|n| n["type"] == "pid").unwrap();
        assert_eq!(pid["path"], "/proc/7/ns/pid");
        assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["process"]["rlimits"][0]["hard"], MAX_NOFILE);
    }

    #[test]
    fn privileges_shape_the_process() {
        let mut config = config();
        config.privileges = Privileges {
            capabilities: vec!["NET_ADMIN".into(), "SYS_ADMIN".into()],
            no_new_privileges: false,
            seccomp: SeccompProfile::RuntimeDefault,
            mask_proc: false,
            writable_sys: true,
        };
        let json = serde_json::to_value(build_spec(&config, 1024).unwrap()).unwrap();
        let process = &json["process"];
        assert!(process.get("noNewPrivileges").is_none());
        let mut bounding: Vec<&str> = process["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        bounding.sort_unstable();
        assert_eq!(bounding, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
        assert_eq!(json["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(json["linux"]["readonlyPaths"], serde_json::json!([]));
        let sys = mount_at(&json, "/sys");
        assert!(!sys["options"].as_array().unwrap().contains(&"ro".into()));
        // CAP_SYS_ADMIN's rules of the default profile apply (mount is allowed).
        let seccomp = &json["linux"]["seccomp"]["syscalls"];
        assert!(seccomp
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["action"] == "SCMP_ACT_ALLOW"
                && s["names"].as_array().unwrap().contains(&"mount".into())));
        config.privileges = Privileges::default();
        let json = serde_json::to_value(build_spec(&config, 1024).unwrap()).unwrap();
        assert!(json["linux"]["maskedPaths"].as_array().unwrap().len() > 3);
        assert_eq!(known_capabilities()[0], "CHOWN");
        assert!(known_capabilities().len() >= 38);
        assert!(capability("NOT_A_CAP").is_err());
        for name in LINUX_CAPABILITIES {
            capability(name).unwrap();
        }
    }

    #[test]
    fn rejects_relative_paths() {
        let mut config = config();
        config.bundle_dir = "rel".into();
        assert!(build_spec(&config, 1024).is_err());
        let mut config = self::config();
        config.mounts = vec![BindMount {
            source: "/x".into(),
            destination: "x".into(),
            readonly: false,
        }
        .into()];
        assert!(build_spec(&config, 1024).is_err());
    }
}
