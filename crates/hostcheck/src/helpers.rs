//! What a pod's network needs: the TUN device and the user-mode helpers (slirp4netns, pasta).
//! The checks are podrun-network's own, the ones `podrun play` makes before it starts a pod.

use std::path::Path;

use podrun_network::{Backend, NetworkError};

use crate::{userns::first_line, Check, Host};

pub(crate) fn check_tun(host: &Host, backend: Backend) -> Check {
    let check = Check::new("tun", "TUN device (/dev/net/tun)", backend.has_helper());
    if !host.is_real() {
        return check.ok("not tried on a test host");
    }
    let device = podrun_network::tun::TUN_DEVICE;
    match podrun_network::tun::check_tun_device() {
        Ok(()) => check.ok(format!("{device} can be opened")),
        Err(NetworkError::TunUnusable { source, detail, .. }) => {
            let missing = matches!(
                source.raw_os_error(),
                Some(libc::ENOENT | libc::ENODEV | libc::ENXIO)
            );
            let fix = if missing {
                "sudo modprobe tun".to_string()
            } else {
                format!("sudo chmod 0666 {device}")
            };
            let note = if missing {
                String::new()
            } else {
                "; most distributions ship it 0666 (the mode resets at boot: a udev rule `KERNEL==\"tun\", MODE=\"0666\"` keeps it)".into()
            };
            let detail = format!(
                "{device} cannot be opened from the pod's user namespace: {source}{detail}{note}; slirp4netns and pasta need it"
            );
            needed_or_not(check, backend, detail, Some(fix))
        }
        Err(other) => check.error(first_line(&other.to_string()), None),
    }
}

pub(crate) fn check_slirp4netns(host: &Host, backend: Backend) -> Check {
    let check = Check::new(
        "slirp4netns",
        "slirp4netns",
        backend == Backend::Slirp4netns,
    );
    match podrun_network::slirp::find_binary_in(&host.path_env) {
        Ok(binary) => check.ok(found(&binary)),
        Err(e) => missing(check, backend, e),
    }
}

pub(crate) fn check_pasta(host: &Host, backend: Backend) -> Check {
    let check = Check::new("pasta", "pasta (passt)", backend == Backend::Pasta);
    let binary = match podrun_network::pasta::find_binary_in(&host.path_env) {
        Ok(binary) => binary,
        Err(e) => return missing(check, backend, e),
    };
    match podrun_network::pasta::known_to_stall(&binary) {
        None => check.ok(found(&binary)),
        Some(version) => check.warning(
            format!(
                "{} (`{version}`: Debian 12's passt 0.0~git20230309) is known to stall when a pod sends bulk TCP through it; slirp4netns does not",
                binary.display()
            ),
            None,
        ),
    }
}

/// `PATH (first line of --version)`.
fn found(binary: &Path) -> String {
    match version(binary) {
        Some(version) => format!("{} ({version})", binary.display()),
        None => binary.display().to_string(),
    }
}

fn version(binary: &Path) -> Option<String> {
    podrun_network::helper_version(binary)
}

fn missing(check: Check, backend: Backend, error: NetworkError) -> Check {
    let fix = match &error {
        NetworkError::HelperMissing { package, .. } => {
            Some(format!("sudo apt-get install {package}"))
        }
        _ => None,
    };
    needed_or_not(check, backend, first_line(&error.to_string()), fix)
}

/// An error when the default network needs it, else a warning naming who does.
fn needed_or_not(check: Check, backend: Backend, detail: String, fix: Option<String>) -> Check {
    if check.needed_for_play {
        let detail = format!("{detail} (the default network is {backend})");
        check.error(detail, fix)
    } else {
        let who = match check.id {
            "slirp4netns" => "--network slirp4netns",
            "pasta" => "--network pasta",
            _ => "--network slirp4netns and --network pasta",
        };
        let detail = format!("{detail}; needed only for {who} (the default network is {backend})");
        check.warning(detail, fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::Status;
    use std::path::PathBuf;

    /// A PATH directory with fake helpers that print a version.
    fn bin_dir(dir: &Path, tools: &[&str]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in tools {
            std::fs::write(bin.join(tool), "#!/bin/sh\necho \"$0 version 9.9\"\n").unwrap();
            std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        bin
    }

    #[test]
    fn the_default_networks_helper_is_needed_the_other_is_not() {
        let fake = FakeHost::new();
        let result = check_slirp4netns(&fake.host, Backend::Slirp4netns);
        assert_eq!(result.status, Status::Error);
        assert!(result.blocks_play());
        assert!(
            result.detail.starts_with("slirp4netns is not installed"),
            "{}",
            result.detail
        );
        assert_eq!(
            result.fix.as_deref(),
            Some("sudo apt-get install slirp4netns")
        );

        let result = check_pasta(&fake.host, Backend::Slirp4netns);
        assert_eq!(result.status, Status::Warning);
        assert!(
            result.detail.contains("needed only for --network pasta"),
            "{}",
            result.detail
        );
        assert_eq!(result.fix.as_deref(), Some("sudo apt-get install passt"));

        let result = check_slirp4netns(&fake.host, Backend::None);
        assert_eq!(result.status, Status::Warning);
        assert!(!result.blocks_play());
    }

    #[test]
    fn a_found_helper_shows_its_version() {
        let fake = FakeHost::new();
        bin_dir(fake.dir.path(), &["slirp4netns"]);
        let result = check_slirp4netns(&fake.host, Backend::Slirp4netns);
        assert_eq!(result.status, Status::Ok);
        assert!(
            result.detail.ends_with("slirp4netns version 9.9)"),
            "{}",
            result.detail
        );
    }
}
