//! Validation of the pod's and the containers' security contexts, as the API server does it
//! (`ValidatePodSecurityContext`, `ValidateSecurityContext`): ids in range, known values of
//! the enumerations, sysctl names, and the combinations it refuses. What podrun does with
//! the fields is in podrun-pod's `security` module and podrun-process's `user`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec, SeccompProfile, SecurityContext};

use crate::load::Diag;
use crate::validate::unsupported_value;

const MAX_ID: i64 = 2_147_483_647;
const SECCOMP_TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];
const PROC_MOUNT_TYPES: &[&str] = &["Default", "Unmasked"];
const FS_GROUP_CHANGE_POLICIES: &[&str] = &["OnRootMismatch", "Always"];
const SUPPLEMENTAL_GROUPS_POLICIES: &[&str] = &["Merge", "Strict"];
const SYSCTL_NAME_MAX: usize = 253;

/// Checks `spec.securityContext` and every container's `securityContext`.
pub(crate) fn pod(diag: &mut Diag, doc: usize, prefix: &str, spec: &PodSpec) {
    if let Some(ctx) = &spec.security_context {
        let path = format!("{prefix}.securityContext");
        id(diag, doc, &format!("{path}.runAsUser"), ctx.run_as_user);
        id(diag, doc, &format!("{path}.runAsGroup"), ctx.run_as_group);
        id(diag, doc, &format!("{path}.fsGroup"), ctx.fs_group);
        for (i, gid) in ctx.supplemental_groups.iter().flatten().enumerate() {
            id(
                diag,
                doc,
                &format!("{path}.supplementalGroups[{i}]"),
                Some(*gid),
            );
        }
        one_of(
            diag,
            doc,
            &format!("{path}.fsGroupChangePolicy"),
            ctx.fs_group_change_policy.as_deref(),
            FS_GROUP_CHANGE_POLICIES,
        );
        one_of(
            diag,
            doc,
            &format!("{path}.supplementalGroupsPolicy"),
            ctx.supplemental_groups_policy.as_deref(),
            SUPPLEMENTAL_GROUPS_POLICIES,
        );
        seccomp(
            diag,
            doc,
            &format!("{path}.seccompProfile"),
            ctx.seccomp_profile.as_ref(),
        );
        let mut names = BTreeSet::new();
        for (i, sysctl) in ctx.sysctls.iter().flatten().enumerate() {
            let name_path = format!("{path}.sysctls[{i}].name");
            if sysctl.name.is_empty() {
                diag.error(doc, &name_path, "Required value");
            } else if !is_sysctl_name(&sysctl.name) {
                diag.error(
                    doc,
                    &name_path,
                    format_args!(
                        "Invalid value: {:?}: sysctl {:?} must have at most {SYSCTL_NAME_MAX} characters and match the regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
                        sysctl.name, sysctl.name
                    ),
                );
            } else if !names.insert(sysctl.name.replace('/', ".")) {
                diag.error(
                    doc,
                    &name_path,
                    format_args!("Duplicate value: {:?}", sysctl.name),
                );
            }
        }
    }
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("{prefix}.initContainers[{i}]"), c))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{prefix}.containers[{i}]"), c)),
        );
    for (path, c) in all {
        container(diag, doc, &format!("{path}.securityContext"), c);
    }
}

fn container(diag: &mut Diag, doc: usize, path: &str, c: &Container) {
    let Some(ctx) = &c.security_context else {
        return;
    };
    id(diag, doc, &format!("{path}.runAsUser"), ctx.run_as_user);
    id(diag, doc, &format!("{path}.runAsGroup"), ctx.run_as_group);
    one_of(
        diag,
        doc,
        &format!("{path}.procMount"),
        ctx.proc_mount.as_deref(),
        PROC_MOUNT_TYPES,
    );
    seccomp(
        diag,
        doc,
        &format!("{path}.seccompProfile"),
        ctx.seccomp_profile.as_ref(),
    );
    privilege_escalation(diag, doc, path, ctx);
}

/// `allowPrivilegeEscalation: false` cannot go with what needs it.
fn privilege_escalation(diag: &mut Diag, doc: usize, path: &str, ctx: &SecurityContext) {
    if ctx.allow_privilege_escalation != Some(false) {
        return;
    }
    let field = format!("{path}.allowPrivilegeEscalation");
    if ctx.privileged == Some(true) {
        diag.error(
            doc,
            &field,
            "Invalid value: false: cannot set allowPrivilegeEscalation to false and privileged to true",
        );
    }
    let adds_sys_admin = ctx
        .capabilities
        .as_ref()
        .and_then(|c| c.add.as_ref())
        .is_some_and(|add| add.iter().any(|c| c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN"));
    if adds_sys_admin {
        diag.error(
            doc,
            &field,
            "Invalid value: false: cannot set allowPrivilegeEscalation to false and capabilities.Add CAP_SYS_ADMIN",
        );
    }
}

fn seccomp(diag: &mut Diag, doc: usize, path: &str, profile: Option<&SeccompProfile>) {
    let Some(profile) = profile else {
        return;
    };
    let localhost = profile.localhost_profile.as_deref().unwrap_or_default();
    match profile.type_.as_str() {
        "Localhost" if localhost.is_empty() => diag.error(
            doc,
            &format!("{path}.localhostProfile"),
            "Required value: must be set when seccomp type is Localhost",
        ),
        "Localhost" => {}
        t if SECCOMP_TYPES.contains(&t) => {
            if !localhost.is_empty() {
                diag.error(
                    doc,
                    &format!("{path}.localhostProfile"),
                    format_args!(
                        "Invalid value: {localhost:?}: can only be set when seccomp type is Localhost"
                    ),
                );
            }
        }
        "" => diag.error(doc, &format!("{path}.type"), "Required value"),
        other => diag.error(
            doc,
            &format!("{path}.type"),
            unsupported_value(other, SECCOMP_TYPES),
        ),
    }
}

fn id(diag: &mut Diag, doc: usize, path: &str, value: Option<i64>) {
    if let Some(v) = value.filter(|v| !(0..=MAX_ID).contains(v)) {
        diag.error(
            doc,
            path,
            format_args!("Invalid value: {v}: must be between 0 and {MAX_ID}, inclusive"),
        );
    }
}

fn one_of(diag: &mut Diag, doc: usize, path: &str, value: Option<&str>, allowed: &[&str]) {
    if let Some(v) = value.filter(|v| !allowed.contains(v)) {
        diag.error(doc, path, unsupported_value(v, allowed));
    }
}

/// Kubernetes' sysctl name rule: dot- or slash-separated segments of `[a-z0-9]`, with `-` and
/// `_` inside a segment.
fn is_sysctl_name(name: &str) -> bool {
    let segment_ok = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    name.len() <= SYSCTL_NAME_MAX && name.split(['.', '/']).all(segment_ok)
}

#[cfg(test)]
mod tests {
    use super::is_sysctl_name;

    #[test]
    fn sysctl_names() {
        assert!(is_sysctl_name("net.ipv4.ip_unprivileged_port_start"));
        assert!(is_sysctl_name("net/ipv4/conf/eth0.100/forwarding"));
        assert!(is_sysctl_name("kernel.shm_rmid_forced"));
        assert!(!is_sysctl_name("net..ipv4"));
        assert!(!is_sysctl_name("Net.ipv4"));
        assert!(!is_sysctl_name("net.ipv4_"));
        assert!(!is_sysctl_name(""));
    }
}
