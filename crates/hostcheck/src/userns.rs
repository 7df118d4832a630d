//! Whether unprivileged users may create user namespaces: the sysctls that forbid it, then a
//! real attempt in a child process.

use nix::sched::{unshare, CloneFlags};

use crate::{child, Check, Host};

/// A sysctl value as the kernel prints it in /proc/sys (a number, trimmed), or `None` when the
/// file is missing (the knob does not exist on this kernel) or not a number.
pub fn parse_sysctl(text: Option<&str>) -> Option<i64> {
    text?.trim().parse().ok()
}

pub(crate) fn check(host: &Host) -> Check {
    let check = Check::new("userns", "user namespaces", true);
    if host.host_root {
        return check.ok("not needed: podrun runs as host root, without a user namespace");
    }
    let problem = sysctl_problem(host);
    // AppArmor's restriction spares programs whose profile allows `userns`: only trying tells.
    let apparmor_only = problem
        .as_ref()
        .is_some_and(|(detail, _)| detail.starts_with(APPARMOR_SYSCTL));
    if let Some((detail, fix)) = problem {
        if !(apparmor_only && host.is_real()) {
            return check.error(detail, Some(fix));
        }
        return match child::run_in_child(probe) {
            Ok(_) => check.ok(format!(
                "{APPARMOR_SYSCTL} is 1, but an AppArmor profile lets podrun use user namespaces"
            )),
            Err(message) => check.error(format!("{detail} ({message})"), Some(fix)),
        };
    }
    if !host.is_real() {
        return check.ok("allowed by the kernel's settings");
    }
    match child::run_in_child(probe) {
        Ok(_) => check.ok("an unprivileged user namespace with a mount namespace was created"),
        // The sysctls allow it: a security module, a seccomp filter (podrun itself in a
        // container) or an exhausted user.max_user_namespaces is in the way.
        Err(message) => check.error(
            format!(
                "creating a user namespace failed although the sysctls allow it: {message} \
                 (a security module or seccomp filter may forbid it, or user.max_user_namespaces is used up)"
            ),
            None,
        ),
    }
}

const APPARMOR_SYSCTL: &str = "kernel.apparmor_restrict_unprivileged_userns";

/// The first sysctl that forbids user namespaces: what it says, and the command that fixes it.
fn sysctl_problem(host: &Host) -> Option<(String, String)> {
    let read = |name: &str| parse_sysctl(host.read(&format!("/proc/sys/{name}")).as_deref());
    let persist = |key: &str, value: &str| {
        format!(
            "echo '{key} = {value}' | sudo tee /etc/sysctl.d/90-podrun-{}.conf && sudo sysctl -w {key}={value}",
            key.rsplit('.').next().unwrap_or(key).replace('_', "-")
        )
    };
    // Debian's and Ubuntu's older kernels: 0 forbids unprivileged user namespaces outright.
    if read("kernel/unprivileged_userns_clone") == Some(0) {
        return Some((
            "kernel.unprivileged_userns_clone is 0: unprivileged users may not create user namespaces".into(),
            persist("kernel.unprivileged_userns_clone", "1"),
        ));
    }
    if read("user/max_user_namespaces") == Some(0) {
        return Some((
            "user.max_user_namespaces is 0: no user namespace may be created".into(),
            persist("user.max_user_namespaces", "28633"),
        ));
    }
    // Ubuntu 23.10 and later: a user namespace may be created, but the process gets no
    // capabilities in it unless an AppArmor profile allows it, so podrun cannot mount.
    if read("kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Some((
            format!("{APPARMOR_SYSCTL} is 1: AppArmor denies capabilities in user namespaces to programs without a profile that allows `userns`"),
            persist("kernel.apparmor_restrict_unprivileged_userns", "0"),
        ));
    }
    None
}

/// In the child: a user namespace mapping only our own ids (what an unprivileged process may
/// write itself), then a mount namespace inside it, as podrun's containers need.
fn probe() -> Result<String, String> {
    let plan = podrun_userns::MappingPlan::SingleId {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
    podrun_userns::enter_user_namespace(&plan).map_err(|e| first_line(&e.to_string()))?;
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS) inside the user namespace: {e}"))?;
    Ok(String::new())
}

/// Errors of podrun's crates end with a `hint:` line; the check gives its own fix.
pub(crate) fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::Status;

    #[test]
    fn sysctl_values() {
        assert_eq!(parse_sysctl(Some("1\n")), Some(1));
        assert_eq!(parse_sysctl(Some(" 28633 ")), Some(28633));
        assert_eq!(parse_sysctl(Some("yes")), None);
        assert_eq!(parse_sysctl(None), None);
    }

    #[test]
    fn each_forbidding_sysctl_is_named_with_its_fix() {
        let fake = FakeHost::new();
        fake.write("/proc/sys/user/max_user_namespaces", "15000\n");
        assert_eq!(check(&fake.host).status, Status::Ok);

        fake.write(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1\n",
        );
        let result = check(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert!(result.detail.contains("AppArmor"), "{}", result.detail);
        assert!(result
            .fix
            .unwrap()
            .contains("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"));

        fake.write("/proc/sys/user/max_user_namespaces", "0\n");
        let result = check(&fake.host);
        assert!(result.detail.starts_with("user.max_user_namespaces is 0"));
        assert!(result
            .fix
            .unwrap()
            .contains("user.max_user_namespaces=28633"));

        fake.write("/proc/sys/kernel/unprivileged_userns_clone", "0\n");
        let result = check(&fake.host);
        assert!(result
            .detail
            .starts_with("kernel.unprivileged_userns_clone is 0"));
        assert!(result.blocks_play());
        assert_eq!(
            result.fix.unwrap(),
            "echo 'kernel.unprivileged_userns_clone = 1' | sudo tee /etc/sysctl.d/90-podrun-unprivileged-userns-clone.conf && sudo sysctl -w kernel.unprivileged_userns_clone=1"
        );
    }

    #[test]
    fn host_root_needs_none() {
        let mut fake = FakeHost::new();
        fake.write("/proc/sys/user/max_user_namespaces", "0\n");
        fake.host.host_root = true;
        assert_eq!(check(&fake.host).status, Status::Ok);
    }
}
