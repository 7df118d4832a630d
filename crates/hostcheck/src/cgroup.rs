//! Cgroups: which version the host runs, and whether the user has a delegated cgroup of their
//! own (the only way a rootless program may set resource limits). podrun does not apply
//! `resources.limits` yet, so this is information for later, never an error.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::{Check, Host};

/// How the cgroup hierarchies are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// cgroup v2 alone at /sys/fs/cgroup.
    Unified,
    /// cgroup v1 controllers, with a cgroup2 mount beside them (usually
    /// /sys/fs/cgroup/unified) that holds few or no controllers.
    Hybrid { unified_at: String },
    /// cgroup v1 only.
    Legacy,
    /// No cgroup file system is mounted.
    None,
}

/// The layout described by the text of /proc/self/mountinfo.
pub fn parse_cgroup_layout(mountinfo: &str) -> CgroupLayout {
    let mut v1 = false;
    let mut v2_at = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        match right.split_whitespace().next() {
            Some("cgroup2") => v2_at = Some(mount_point.to_string()),
            Some("cgroup") => v1 = true,
            _ => {}
        }
    }
    match (v1, v2_at) {
        (false, Some(at)) if at == "/sys/fs/cgroup" => CgroupLayout::Unified,
        (_, Some(at)) => CgroupLayout::Hybrid { unified_at: at },
        (true, None) => CgroupLayout::Legacy,
        (false, None) => CgroupLayout::None,
    }
}

/// The process's cgroup v2 path (the `0::PATH` line of /proc/self/cgroup).
pub(crate) fn unified_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim().to_string())
}

pub(crate) fn check(host: &Host) -> Check {
    let check = Check::new("cgroups", "cgroups for resource limits", false);
    let layout = parse_cgroup_layout(&host.read("/proc/self/mountinfo").unwrap_or_default());
    let (version, mount) = match &layout {
        CgroupLayout::Unified => ("cgroup v2", "/sys/fs/cgroup".to_string()),
        CgroupLayout::Hybrid { unified_at } => ("cgroup v1 with a cgroup v2 mount (hybrid)", unified_at.clone()),
        CgroupLayout::Legacy => {
            return check.warning(
                "cgroup v1 only: a rootless user cannot get a cgroup of their own, so resources.limits cannot be enforced (podrun does not apply them yet)",
                Some(unified_fix()),
            )
        }
        CgroupLayout::None => {
            return check.warning("no cgroup file system is mounted: resources.limits cannot be enforced (podrun does not apply them yet)", None)
        }
    };
    let own = host
        .read("/proc/self/cgroup")
        .and_then(|text| unified_path(&text))
        .unwrap_or_else(|| "/".into());
    match delegated(host, &mount, &own) {
        Some((dir, controllers)) if has_limit_controllers(&controllers) => check.ok(format!(
            "{version}; {} is yours, with the controllers {controllers} (podrun does not apply resources.limits yet)",
            dir.display()
        )),
        Some((dir, controllers)) => check.warning(
            format!(
                "{version}; {} is yours but has only the controllers `{controllers}`: memory, cpu and pids limits could not be enforced (podrun does not apply resources.limits yet)",
                dir.display()
            ),
            matches!(layout, CgroupLayout::Unified).then(delegate_fix),
        ),
        None => check.warning(
            format!(
                "{version}; no cgroup delegated to {} (yours is {own}): resources.limits cannot be enforced rootless (podrun does not apply them yet)",
                host.user
            ),
            Some(if matches!(layout, CgroupLayout::Unified) { delegate_fix() } else { unified_fix() }),
        ),
    }
}

/// The innermost directory of the process's cgroup or its ancestors that the user owns (as
/// systemd's `Delegate=` hands them out), with its controllers.
fn delegated(host: &Host, mount: &str, own: &str) -> Option<(PathBuf, String)> {
    let base = host.file(mount);
    let relative = own.trim_start_matches('/');
    let start = if relative.is_empty() {
        base.clone()
    } else {
        base.join(relative)
    };
    let dir = start
        .ancestors()
        .take_while(|d| d.starts_with(&base))
        .find(|d| {
            std::fs::metadata(d)
                .is_ok_and(|m| m.is_dir() && (m.uid() == host.uid || host.host_root))
        })?
        .to_path_buf();
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .trim()
        .to_string();
    Some((dir, controllers))
}

fn has_limit_controllers(controllers: &str) -> bool {
    let names: Vec<&str> = controllers.split_whitespace().collect();
    ["memory", "pids", "cpu"].iter().all(|c| names.contains(c))
}

fn delegate_fix() -> String {
    "sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload".into()
}

fn unified_fix() -> String {
    "sudo sed -i 's/^GRUB_CMDLINE_LINUX=\"/&systemd.unified_cgroup_hierarchy=1 /' /etc/default/grub && sudo update-grub && sudo reboot".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::Status;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    const UNIFIED: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn layouts() {
        assert_eq!(parse_cgroup_layout(UNIFIED), CgroupLayout::Unified);
        assert_eq!(
            parse_cgroup_layout(HYBRID),
            CgroupLayout::Hybrid {
                unified_at: "/sys/fs/cgroup/unified".into()
            }
        );
        assert_eq!(
            parse_cgroup_layout("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"),
            CgroupLayout::Legacy
        );
        assert_eq!(parse_cgroup_layout("garbage\n"), CgroupLayout::None);
        assert_eq!(
            unified_path("9:pids:/\n0::/user.slice/a.scope\n").as_deref(),
            Some("/user.slice/a.scope")
        );
    }

    #[test]
    fn a_delegated_cgroup_with_controllers_is_ok() {
        let mut fake = FakeHost::new();
        fake.host.uid = nix::unistd::geteuid().as_raw();
        fake.write("/proc/self/mountinfo", UNIFIED);
        fake.write(
            "/proc/self/cgroup",
            "0::/user.slice/user@1000.service/app.slice/x.scope\n",
        );
        fake.write(
            "/sys/fs/cgroup/user.slice/user@1000.service/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        let result = check(&fake.host);
        assert_eq!(result.status, Status::Ok, "{}", result.detail);
        assert!(
            result.detail.contains("user@1000.service"),
            "{}",
            result.detail
        );

        fake.write(
            "/sys/fs/cgroup/user.slice/user@1000.service/cgroup.controllers",
            "pids\n",
        );
        assert_eq!(check(&fake.host).status, Status::Warning);
    }

    #[test]
    fn not_delegated_is_a_warning_only() {
        let mut fake = FakeHost::new();
        fake.write("/proc/self/mountinfo", HYBRID);
        fake.write("/proc/self/cgroup", "0::/\n");
        std::fs::create_dir_all(fake.dir.path().join("sys/fs/cgroup/unified")).unwrap();
        fake.host.uid = nix::unistd::geteuid().as_raw() + 1;
        let result = check(&fake.host);
        assert_eq!(result.status, Status::Warning);
        assert!(!result.blocks_play());
        assert!(
            result
                .detail
                .starts_with("cgroup v1 with a cgroup v2 mount (hybrid)"),
            "{}",
            result.detail
        );
        assert!(result
            .fix
            .unwrap()
            .contains("systemd.unified_cgroup_hierarchy=1"));
    }
}
