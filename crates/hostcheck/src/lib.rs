//! Host checks for rootless podrun (`podrun system check`).
//!
//! Most failures of rootless container tools come from the host, not the tool: user
//! namespaces disabled, no subordinate id range, `newuidmap` without its setuid bit, no
//! runtime directory, a TUN device only root may open, a missing network helper. Each check
//! here looks at one of them, says what it found, and when something is wrong gives the exact
//! command that fixes it.
//!
//! Checks read the host through a [`Host`]: its `root` is `/` for real runs and a directory
//! with fake `/proc`, `/etc` and `/sys` files in the unit tests, so every parser can be fed
//! any content. Two checks try things for real in a throw-away child process (creating a user
//! namespace, mounting overlayfs in one); the child never changes anything of its parent.

mod cgroup;
mod child;
mod config;
mod helpers;
mod idmap;
mod overlay;
mod runtime_dir;
mod store;
mod userns;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use cgroup::{
    delegated_cgroup, parse_cgroup_layout, CgroupLayout, DelegatedCgroup, NoDelegatedCgroup,
    LIMIT_CONTROLLERS,
};
pub use userns::parse_sysctl;

/// The hint podrun's errors about host problems end with.
pub const DIAGNOSIS_HINT: &str = "run `podrun system check` for a full diagnosis";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable name for scripts (`subuid`, `tun`, ...).
    pub id: &'static str,
    /// What was checked, for people.
    pub title: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The exact command that fixes it (when the status is not ok and a fix is known).
    pub fix: Option<String>,
    /// Whether `podrun play` cannot work while this check is an error.
    pub needed_for_play: bool,
}

impl Check {
    fn new(id: &'static str, title: &'static str, needed_for_play: bool) -> Check {
        Check {
            id,
            title,
            status: Status::Ok,
            detail: String::new(),
            fix: None,
            needed_for_play,
        }
    }

    fn ok(mut self, detail: impl Into<String>) -> Check {
        self.status = Status::Ok;
        self.detail = detail.into();
        self.fix = None;
        self
    }

    fn warning(mut self, detail: impl Into<String>, fix: Option<String>) -> Check {
        self.status = Status::Warning;
        self.detail = detail.into();
        self.fix = fix;
        self
    }

    fn error(mut self, detail: impl Into<String>, fix: Option<String>) -> Check {
        self.status = Status::Error;
        self.detail = detail.into();
        self.fix = fix;
        self
    }

    /// Whether this result keeps `podrun play` from working.
    pub fn blocks_play(&self) -> bool {
        self.needed_for_play && self.status == Status::Error
    }
}

/// The host and user the checks look at.
#[derive(Debug, Clone)]
pub struct Host {
    /// Where `/proc`, `/sys` and `/etc` are read from: `/`, or a fake tree in tests.
    pub root: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// The login name (or the uid when the user has none).
    pub user: String,
    /// Real root in the initial user namespace: podrun then needs no user namespace.
    pub host_root: bool,
    /// The PATH helpers are looked up in.
    pub path_env: OsString,
    /// podrun's directories and config file, as the other commands resolve them.
    pub paths: podrun_config::Paths,
}

impl Host {
    /// The calling user on this machine.
    pub fn current(paths: podrun_config::Paths) -> Host {
        let uid = nix::unistd::geteuid().as_raw();
        Host {
            root: PathBuf::from("/"),
            uid,
            gid: nix::unistd::getegid().as_raw(),
            user: podrun_userns::user_name(uid),
            host_root: podrun_userns::is_root_in_initial_namespace(),
            path_env: std::env::var_os("PATH").unwrap_or_default(),
            paths,
        }
    }

    /// A host file (`/proc/...`) under `root`.
    fn file(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn read(&self, absolute: &str) -> Option<String> {
        std::fs::read_to_string(self.file(absolute)).ok()
    }

    /// Whether the checks run against the real machine (the probes that fork only then).
    fn is_real(&self) -> bool {
        self.root == Path::new("/")
    }
}

/// Runs every check, in the order a user should fix them.
///
/// Forks children for the user-namespace and overlayfs probes: call it while the process is
/// single-threaded.
pub fn run_all(host: &Host) -> Vec<Check> {
    let config = config::load(host);
    let backend = config
        .as_ref()
        .ok()
        .and_then(|c| c.network.default)
        .unwrap_or(podrun_network::Backend::DEFAULT);
    vec![
        userns::check(host),
        idmap::check_subids(host),
        idmap::check_tools(host),
        runtime_dir::check(host),
        overlay::check(host),
        helpers::check_tun(host, backend),
        helpers::check_slirp4netns(host, backend),
        helpers::check_pasta(host, backend),
        cgroup::check(host),
        store::check(host),
        config::check_file(host, &config),
        config::check_credentials(host),
    ]
}

/// The login name of the group `gid`, or the number.
fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fake host rooted in a temporary directory, for the current user.
    pub struct FakeHost {
        pub dir: tempfile::TempDir,
        pub host: Host,
    }

    impl FakeHost {
        pub fn new() -> FakeHost {
            let dir = tempfile::tempdir().unwrap();
            let paths = podrun_config::Paths::resolve(
                |name| match name {
                    "HOME" => Some(dir.path().join("home")),
                    "XDG_RUNTIME_DIR" => Some(dir.path().join("run")),
                    _ => None,
                },
                false,
            )
            .unwrap();
            let host = Host {
                root: dir.path().to_path_buf(),
                uid: 1000,
                gid: 1000,
                user: "alice".into(),
                host_root: false,
                path_env: dir.path().join("bin").into_os_string(),
                paths,
            };
            FakeHost { dir, host }
        }

        /// Writes `content` at the host path `absolute` inside the fake root.
        pub fn write(&self, absolute: &str, content: &str) {
            let path = self.host.file(absolute);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }
}
