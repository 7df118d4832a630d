//! Cgroups: which version the host runs, and whether the user has a delegated cgroup of their
//! own (the only way a rootless program may set resource limits). `podrun play` asks
//! [`delegated_cgroup`] where to put a pod's cgroup; `podrun system check` reports the same.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Check, Host};

/// The controllers podrun enforces `resources.limits` with (memory.max, cpu.max, cpu.weight).
pub const LIMIT_CONTROLLERS: [&str; 2] = ["memory", "cpu"];

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

fn layout_name(layout: &CgroupLayout) -> &'static str {
    match layout {
        CgroupLayout::Unified => "cgroup v2",
        CgroupLayout::Hybrid { .. } => "cgroup v1 with a cgroup v2 mount (hybrid)",
        CgroupLayout::Legacy => "cgroup v1 only",
        CgroupLayout::None => "no cgroup file system is mounted",
    }
}

/// The process's cgroup v2 path (the `0::PATH` line of /proc/self/cgroup).
pub(crate) fn unified_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| path.trim().to_string())
}

/// A cgroup v2 directory the user may manage, as systemd's `Delegate=` hands them out: podrun
/// creates its pods' cgroups in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedCgroup {
    /// The directory on this host (under the cgroup2 mount).
    pub dir: PathBuf,
    /// Its path in the cgroup v2 hierarchy (`/user.slice/...`, `/` for the root), which is
    /// what libcontainer's `cgroupsPath` is relative to.
    pub path: String,
    /// Its `cgroup.controllers`: the controllers it can enable for its children.
    pub controllers: Vec<String>,
}

impl DelegatedCgroup {
    /// The controllers of `wanted` it lacks.
    pub fn missing<'a>(&self, wanted: &[&'a str]) -> Vec<&'a str> {
        wanted
            .iter()
            .filter(|c| !self.controllers.iter().any(|have| have == *c))
            .copied()
            .collect()
    }
}

/// Why the user has no cgroup to manage, and what would give them one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoDelegatedCgroup {
    /// E.g. `this host gives user ann no cgroup v2 of their own (cgroup v1 with a cgroup v2
    /// mount (hybrid); theirs is /)`.
    pub reason: String,
    pub fix: Option<String>,
}

/// The cgroup v2 directory the calling user may create cgroups in, or why there is none.
///
/// It is the innermost ancestor of the process's own cgroup (from /proc/self/cgroup, on the
/// cgroup2 mount) that the user owns and that holds no process of its own: cgroup v2 lets
/// only such a cgroup (or the root) enable controllers for its children ("no internal
/// processes"), and the process's own cgroup holds at least this process. Under systemd
/// with `Delegate=`, a shell in `user@UID.service/app.slice/x.scope` gets `app.slice`. The
/// user may move processes into it because the common ancestor of both cgroups is theirs.
pub fn delegated_cgroup(host: &Host) -> Result<DelegatedCgroup, NoDelegatedCgroup> {
    let layout = parse_cgroup_layout(&host.read("/proc/self/mountinfo").unwrap_or_default());
    let version = layout_name(&layout);
    let mount = match &layout {
        CgroupLayout::Unified => "/sys/fs/cgroup".to_string(),
        CgroupLayout::Hybrid { unified_at } => unified_at.clone(),
        CgroupLayout::Legacy => {
            return Err(NoDelegatedCgroup {
                reason: format!(
                    "this host gives user {} no cgroup v2 of their own ({version})",
                    host.user
                ),
                fix: Some(unified_fix()),
            })
        }
        CgroupLayout::None => {
            return Err(NoDelegatedCgroup {
                reason: version.into(),
                fix: None,
            })
        }
    };
    let own = host
        .read("/proc/self/cgroup")
        .and_then(|text| unified_path(&text))
        .unwrap_or_else(|| "/".into());
    let base = host.file(&mount);
    let found = delegated_dir(host, &base, &own).ok_or_else(|| NoDelegatedCgroup {
        reason: format!(
            "this host gives user {} no cgroup v2 of their own ({version}; theirs is {own})",
            host.user
        ),
        fix: Some(if matches!(layout, CgroupLayout::Unified) {
            delegate_fix()
        } else {
            unified_fix()
        }),
    })?;
    let relative = found.strip_prefix(&base).unwrap_or(Path::new(""));
    let controllers = std::fs::read_to_string(found.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    Ok(DelegatedCgroup {
        path: format!("/{}", relative.display()),
        dir: found,
        controllers,
    })
}

pub(crate) fn check(host: &Host) -> Check {
    let check = Check::new("cgroups", "cgroups for resource limits", false);
    let version = layout_name(&parse_cgroup_layout(
        &host.read("/proc/self/mountinfo").unwrap_or_default(),
    ));
    match delegated_cgroup(host) {
        Ok(cgroup) => {
            let missing = cgroup.missing(&LIMIT_CONTROLLERS);
            let have = cgroup.controllers.join(" ");
            if missing.is_empty() {
                check.ok(format!(
                    "{version}; {} is yours, with the controllers `{have}`: resources.limits are enforced",
                    cgroup.dir.display()
                ))
            } else {
                check.warning(
                    format!(
                        "{version}; {} is yours but has only the controllers `{have}`: {} limits are not enforced",
                        cgroup.dir.display(),
                        missing.join(" and ")
                    ),
                    (version == "cgroup v2").then(delegate_fix),
                )
            }
        }
        Err(none) => check.warning(
            format!("{}: resources.limits are not enforced", none.reason),
            none.fix,
        ),
    }
}

/// The innermost ancestor of the cgroup `own` under the cgroup2 mount `base` that the user
/// owns and that has no process of its own (see [`delegated_cgroup`]).
fn delegated_dir(host: &Host, base: &Path, own: &str) -> Option<PathBuf> {
    let relative = own.trim_start_matches('/');
    let own_dir = if relative.is_empty() {
        base.to_path_buf()
    } else {
        base.join(relative)
    };
    // The root is exempt from the "no internal processes" rule; any other cgroup of this
    // process holds this process.
    let skip = usize::from(own_dir != base);
    let dir = own_dir
        .ancestors()
        .skip(skip)
        .take_while(|d| d.starts_with(base))
        .find(|d| {
            let owned = std::fs::metadata(d)
                .is_ok_and(|m| m.is_dir() && (m.uid() == host.uid || host.host_root));
            owned && (*d == base || has_no_processes(d))
        })?;
    Some(dir.to_path_buf())
}

fn has_no_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|procs| procs.trim().is_empty())
        || !dir.join("cgroup.procs").exists()
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

    /// A tree as systemd's user@.service delegation leaves it: the user owns
    /// user@1000.service and below; the shell's scope holds processes.
    fn systemd_user_tree(fake: &FakeHost, controllers: &str) {
        fake.write("/proc/self/mountinfo", UNIFIED);
        let service = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service";
        fake.write(
            "/proc/self/cgroup",
            &format!(
                "0::{}/app.slice/term.scope\n",
                &service["/sys/fs/cgroup".len()..]
            ),
        );
        fake.write(
            &format!("{service}/cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        );
        fake.write(
            &format!("{service}/app.slice/cgroup.controllers"),
            controllers,
        );
        fake.write(&format!("{service}/app.slice/cgroup.procs"), "");
        fake.write(
            &format!("{service}/app.slice/term.scope/cgroup.procs"),
            "4242\n",
        );
    }

    #[test]
    fn a_systemd_delegation_gives_the_parent_of_the_own_cgroup() {
        let mut fake = FakeHost::new();
        fake.host.uid = nix::unistd::geteuid().as_raw();
        systemd_user_tree(&fake, "cpu memory pids\n");
        let cgroup = delegated_cgroup(&fake.host).unwrap();
        assert_eq!(
            cgroup.path,
            "/user.slice/user-1000.slice/user@1000.service/app.slice"
        );
        assert_eq!(
            cgroup.dir,
            fake.dir
                .path()
                .join("sys/fs/cgroup")
                .join(&cgroup.path[1..])
        );
        assert_eq!(cgroup.controllers, ["cpu", "memory", "pids"]);
        assert!(cgroup.missing(&LIMIT_CONTROLLERS).is_empty());
        assert_eq!(check(&fake.host).status, Status::Ok);

        // app.slice with processes of its own cannot pass controllers on: its parent is used.
        fake.write(
            "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/cgroup.procs",
            "77\n",
        );
        let cgroup = delegated_cgroup(&fake.host).unwrap();
        assert_eq!(cgroup.path, "/user.slice/user-1000.slice/user@1000.service");
        assert_eq!(cgroup.controllers.len(), 5);
    }

    #[test]
    fn missing_controllers_are_named() {
        let mut fake = FakeHost::new();
        fake.host.uid = nix::unistd::geteuid().as_raw();
        systemd_user_tree(&fake, "memory pids\n");
        let cgroup = delegated_cgroup(&fake.host).unwrap();
        assert_eq!(cgroup.missing(&LIMIT_CONTROLLERS), ["cpu"]);
        let result = check(&fake.host);
        assert_eq!(result.status, Status::Warning);
        assert!(
            result.detail.contains("cpu limits are not enforced"),
            "{}",
            result.detail
        );
    }

    #[test]
    fn a_v2_host_without_delegation() {
        let mut fake = FakeHost::new();
        systemd_user_tree(&fake, "cpu memory\n");
        // Nothing belongs to the user (a login session's scope under user-1000.slice).
        fake.host.uid = nix::unistd::geteuid().as_raw() + 1;
        let none = delegated_cgroup(&fake.host).unwrap_err();
        assert_eq!(
            none.reason,
            "this host gives user alice no cgroup v2 of their own (cgroup v2; theirs is /user.slice/user-1000.slice/user@1000.service/app.slice/term.scope)"
        );
        assert!(none.fix.unwrap().contains("Delegate="));
    }

    #[test]
    fn a_hybrid_host_like_this_one() {
        let mut fake = FakeHost::new();
        fake.write("/proc/self/mountinfo", HYBRID);
        fake.write("/proc/self/cgroup", "4:memory:/x\n0::/\n");
        fake.write("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
        fake.host.uid = nix::unistd::geteuid().as_raw() + 1;
        let none = delegated_cgroup(&fake.host).unwrap_err();
        assert_eq!(
            none.reason,
            "this host gives user alice no cgroup v2 of their own (cgroup v1 with a cgroup v2 mount (hybrid); theirs is /)"
        );

        // A directory of the cgroup2 mount handed to the user (as the e2e tests do as root).
        fake.write("/proc/self/cgroup", "0::/podrun-e2e/user/session\n");
        fake.write(
            "/sys/fs/cgroup/unified/podrun-e2e/user/cgroup.controllers",
            "hugetlb\n",
        );
        fake.write(
            "/sys/fs/cgroup/unified/podrun-e2e/user/session/cgroup.procs",
            "9\n",
        );
        fake.host.uid = nix::unistd::geteuid().as_raw();
        let cgroup = delegated_cgroup(&fake.host).unwrap();
        assert_eq!(cgroup.path, "/podrun-e2e/user");
        assert_eq!(cgroup.missing(&LIMIT_CONTROLLERS), ["memory", "cpu"]);
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
                .contains("(cgroup v1 with a cgroup v2 mount (hybrid); theirs is /)"),
            "{}",
            result.detail
        );
        assert!(result
            .fix
            .unwrap()
            .contains("systemd.unified_cgroup_hierarchy=1"));
    }
}
