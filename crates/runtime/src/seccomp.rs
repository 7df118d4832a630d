//! The default seccomp profile.
//!
//! `seccomp.json` next to this file is a verbatim copy of `/usr/share/containers/seccomp.json`
//! from Debian 12's `golang-github-containers-common` 0.50.1 (upstream
//! <https://github.com/containers/common>, `pkg/seccomp/seccomp.json`, derived from Docker's
//! default profile). Copyright 2013-2021 Docker, Inc. and the containers/common authors;
//! licensed under the Apache License, Version 2.0, like podrun.
//!
//! That file is in Docker's format (an `archMap`, rules with `includes`/`excludes` by
//! capability and architecture). [`convert`] turns it into an OCI `linux.seccomp` for one
//! architecture and capability set the way containers/common's `setupSeccomp` does. The result
//! for the default capabilities is computed once per process.

use std::collections::HashSet;
use std::sync::OnceLock;

use libcontainer::oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::RuntimeError;

const DOCKER_PROFILE: &str = include_str!("seccomp.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    /// OCI form: the architectures, when a profile names them itself.
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The native architecture as libseccomp names it and as Go (the profile's `arches`) does.
fn native_arch() -> Option<(&'static str, &'static str)> {
    Some(match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "x86" => ("SCMP_ARCH_X86", "386"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        "arm" => ("SCMP_ARCH_ARM", "arm"),
        "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
        "s390x" => ("SCMP_ARCH_S390X", "s390x"),
        "powerpc64" if cfg!(target_endian = "little") => ("SCMP_ARCH_PPC64LE", "ppc64le"),
        "powerpc64" => ("SCMP_ARCH_PPC64", "ppc64"),
        "mips64" if cfg!(target_endian = "little") => ("SCMP_ARCH_MIPSEL64", "mips64le"),
        "mips64" => ("SCMP_ARCH_MIPS64", "mips64"),
        "loongarch64" => ("SCMP_ARCH_LOONGARCH64", "loong64"),
        _ => return None,
    })
}

/// `major.minor` of the running kernel.
fn kernel_version() -> Option<(u32, u32)> {
    let release = nix::sys::utsname::uname().ok()?;
    parse_version(release.release().to_str()?)
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Converts a profile in Docker's format into the OCI form for the native architecture (plus
/// its sub-architectures, e.g. x86 and x32 on x86_64) and a process holding `capabilities`
/// (names like `CAP_CHOWN`).
fn convert(
    profile_json: &str,
    capabilities: &[impl AsRef<str>],
    sub_architectures: bool,
) -> Result<LinuxSeccomp, RuntimeError> {
    let profile: Profile = serde_json::from_str(profile_json)
        .map_err(|e| RuntimeError::Seccomp(format!("cannot parse the profile: {e}")))?;
    let (scmp_arch, go_arch) = native_arch().ok_or_else(|| {
        RuntimeError::Seccomp(format!(
            "no seccomp architecture known for {}",
            std::env::consts::ARCH
        ))
    })?;
    let caps: HashSet<&str> = capabilities.iter().map(AsRef::as_ref).collect();
    let kernel = kernel_version();

    let mut architectures = vec![scmp_arch.to_string()];
    if !profile.architectures.is_empty() {
        architectures = profile.architectures.clone();
    } else if let Some(entry) = profile
        .arch_map
        .iter()
        .find(|entry| entry.architecture == scmp_arch && sub_architectures)
    {
        architectures.extend(entry.sub_architectures.iter().cloned());
    }

    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let arch_included =
            rule.includes.arches.is_empty() || rule.includes.arches.iter().any(|a| a == go_arch);
        let arch_excluded = rule.excludes.arches.iter().any(|a| a == go_arch);
        let caps_included = rule.includes.caps.iter().all(|c| caps.contains(c.as_str()));
        let caps_excluded = rule.excludes.caps.iter().any(|c| caps.contains(c.as_str()));
        let kernel_ok = match (&rule.includes.min_kernel, kernel) {
            (Some(min), Some(running)) => parse_version(min).is_none_or(|min| running >= min),
            _ => true,
        };
        if !arch_included || arch_excluded || !caps_included || caps_excluded || !kernel_ok {
            continue;
        }
        let mut syscall = json!({ "names": rule.names, "action": rule.action });
        if let Some(errno) = rule.errno_ret {
            syscall["errnoRet"] = json!(errno);
        }
        if let Some(args) = rule.args.as_ref().filter(|args| !args.is_empty()) {
            syscall["args"] = json!(args);
        }
        syscalls.push(syscall);
    }

    let mut seccomp = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(errno) = profile.default_errno_ret {
        seccomp["defaultErrnoRet"] = json!(errno);
    }
    if !profile.flags.is_empty() {
        seccomp["flags"] = json!(profile.flags);
    }
    serde_json::from_value(seccomp)
        .map_err(|e| RuntimeError::Seccomp(format!("cannot convert the profile to OCI form: {e}")))
}

/// podman's default seccomp profile (defaultAction ERRNO(ENOSYS), an allow list of about 400
/// system calls) for this architecture and its sub-architectures (x86 and x32 on x86_64), for a
/// process with [`crate::DEFAULT_CAPABILITIES`]. Computed once.
pub fn default_seccomp_profile() -> Result<&'static LinuxSeccomp, RuntimeError> {
    static PROFILE: OnceLock<Result<LinuxSeccomp, String>> = OnceLock::new();
    cached(&PROFILE, true)
}

/// [`default_seccomp_profile`] for the native architecture only. The kernel kills a process that
/// makes a system call of another architecture (32-bit x86 binaries on x86_64), but libseccomp
/// compiles the filter several times faster (measured here: about 2-4 ms instead of 12-17 ms
/// per container start).
pub fn native_seccomp_profile() -> Result<&'static LinuxSeccomp, RuntimeError> {
    static PROFILE: OnceLock<Result<LinuxSeccomp, String>> = OnceLock::new();
    cached(&PROFILE, false)
}

/// podman's default profile for a process holding `capabilities` (names without `CAP_`):
/// some rules depend on them (CAP_SYS_ADMIN allows `mount`, CAP_SYS_PTRACE `ptrace`...).
/// The default capabilities get the cached [`default_seccomp_profile`].
pub fn runtime_default_profile_for(capabilities: &[String]) -> Result<LinuxSeccomp, RuntimeError> {
    let mut wanted: Vec<&str> = capabilities.iter().map(String::as_str).collect();
    let mut defaults = crate::DEFAULT_CAPABILITIES.to_vec();
    wanted.sort_unstable();
    defaults.sort_unstable();
    if wanted == defaults {
        return default_seccomp_profile().cloned();
    }
    convert(DOCKER_PROFILE, &with_prefix(capabilities), true)
}

/// A profile of the user's (Kubernetes' `Localhost` type), in Docker's format or the OCI one
/// (`defaultAction`, `architectures`, `syscalls`), for a process holding `capabilities`
/// (names without `CAP_`). Without `architectures`, the native one and its
/// sub-architectures.
pub fn seccomp_profile_from_json(
    json: &str,
    capabilities: &[String],
) -> Result<LinuxSeccomp, RuntimeError> {
    convert(json, &with_prefix(capabilities), true)
}

fn with_prefix(capabilities: &[String]) -> Vec<String> {
    capabilities.iter().map(|c| format!("CAP_{c}")).collect()
}

fn cached(
    cell: &'static OnceLock<Result<LinuxSeccomp, String>>,
    sub_architectures: bool,
) -> Result<&'static LinuxSeccomp, RuntimeError> {
    cell.get_or_init(|| {
        let caps = with_prefix(&crate::DEFAULT_CAPABILITIES.map(String::from));
        convert(DOCKER_PROFILE, &caps, sub_architectures).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| RuntimeError::Seccomp(e.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::oci_spec::runtime::{Arch, LinuxSeccompAction};

    fn rules_for<'a>(seccomp: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        seccomp
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }
    use libcontainer::oci_spec::runtime::LinuxSyscall;

    #[test]
    fn default_profile_is_an_allow_list_for_the_default_caps() {
        let seccomp = default_seccomp_profile().unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(seccomp.default_errno_ret(), Some(38));
        let allowed: usize = seccomp
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
            .map(|s| s.names().len())
            .sum();
        assert!(allowed > 350, "{allowed} allowed syscalls");
        // CAP_SYS_CHROOT is a default capability: chroot allowed, never refused.
        let chroot = rules_for(seccomp, "chroot");
        assert_eq!(chroot.len(), 1);
        assert_eq!(chroot[0].action(), LinuxSeccompAction::ScmpActAllow);
        // CAP_SYS_ADMIN is not: bpf is refused with EPERM.
        let bpf = rules_for(seccomp, "bpf");
        assert_eq!(bpf.len(), 1);
        assert_eq!(bpf[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(bpf[0].errno_ret(), Some(1));
        // CAP_AUDIT_WRITE is a default capability: the socket(AF_NETLINK, NETLINK_AUDIT) ban
        // does not apply.
        assert!(rules_for(seccomp, "socket")
            .iter()
            .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                seccomp.architectures().as_ref().unwrap(),
                &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            );
            assert_eq!(rules_for(seccomp, "arch_prctl").len(), 1);
            assert_eq!(
                native_seccomp_profile()
                    .unwrap()
                    .architectures()
                    .as_ref()
                    .unwrap(),
                &vec![Arch::ScmpArchX86_64]
            );
            assert!(rules_for(seccomp, "s390_runtime_instr").is_empty());
        }
    }

    #[test]
    fn fewer_capabilities_refuse_more_syscalls() {
        let seccomp = convert(DOCKER_PROFILE, &[] as &[&str], true).unwrap();
        let chroot = rules_for(&seccomp, "chroot");
        assert_eq!(chroot.len(), 1);
        assert_eq!(chroot[0].action(), LinuxSeccompAction::ScmpActErrno);
        let socket = rules_for(&seccomp, "socket");
        assert!(socket
            .iter()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActErrno && s.errno_ret() == Some(22)));
    }

    #[test]
    fn added_capabilities_allow_their_syscalls() {
        let mut caps = crate::DEFAULT_CAPABILITIES.map(String::from).to_vec();
        assert_eq!(
            &runtime_default_profile_for(&caps).unwrap(),
            default_seccomp_profile().unwrap()
        );
        caps.push("SYS_ADMIN".into());
        let seccomp = runtime_default_profile_for(&caps).unwrap();
        let bpf = rules_for(&seccomp, "bpf");
        assert!(bpf
            .iter()
            .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow));
        assert!(!bpf.is_empty());
    }

    #[test]
    fn user_profiles_in_oci_form() {
        let json = r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#;
        let seccomp = seccomp_profile_from_json(json, &[]).unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            seccomp.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64]
        );
        let mkdir = rules_for(&seccomp, "mkdirat");
        assert_eq!(mkdir[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(mkdir[0].errno_ret(), Some(1));
        let bare = seccomp_profile_from_json(r#"{"defaultAction": "SCMP_ACT_LOG"}"#, &[]).unwrap();
        assert_eq!(bare.default_action(), LinuxSeccompAction::ScmpActLog);
        assert!(seccomp_profile_from_json("{", &[]).is_err());
        assert!(seccomp_profile_from_json(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#, &[]).is_err());
    }

    #[test]
    fn parses_kernel_versions() {
        assert_eq!(parse_version("6.18.44-amd64"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
    }
}
