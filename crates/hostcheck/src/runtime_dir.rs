//! XDG_RUNTIME_DIR: where podrun keeps the state of running pods (`$XDG_RUNTIME_DIR/podrun`).
//! podrun has no fallback for it (a directory elsewhere would outlive a reboot or be shared
//! with other users), so play, ps and down fail without it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::{group_name, Check, Host};

pub(crate) fn check(host: &Host) -> Check {
    let check = Check::new("runtime-dir", "runtime directory (XDG_RUNTIME_DIR)", true);
    if host.host_root {
        return check.ok("not needed: host root keeps pods in /run/podrun");
    }
    let standard = format!("/run/user/{}", host.uid);
    let create = |dir: &str| {
        format!(
            "sudo install -d -m 0700 -o {} -g {} {dir}",
            host.user,
            group_name(host.gid)
        )
    };
    let Some(dir) = &host.paths.xdg_runtime_dir else {
        let export = format!("export XDG_RUNTIME_DIR={standard}");
        let fix = if owned_private_dir(&host.file(&standard), host.uid) {
            export
        } else {
            format!("{} && {export}", create(&standard))
        };
        return check.error(
            "XDG_RUNTIME_DIR is not set: podrun keeps the state of running pods there (no login manager such as systemd-logind set it up)",
            Some(fix),
        );
    };
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            return check.error(
                format!("XDG_RUNTIME_DIR {shown} is not a directory"),
                Some(format!("export XDG_RUNTIME_DIR={standard}")),
            )
        }
        Err(e) => {
            return check.error(
                format!("XDG_RUNTIME_DIR {shown} cannot be used: {e}"),
                Some(create(&shown.to_string())),
            )
        }
    };
    if meta.uid() != host.uid {
        return check.error(
            format!(
                "XDG_RUNTIME_DIR {shown} belongs to uid {}, not to {} (uid {})",
                meta.uid(),
                host.user,
                host.uid
            ),
            Some(format!(
                "sudo chown {}:{} {shown}",
                host.user,
                group_name(host.gid)
            )),
        );
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != 0o700 {
        return check.warning(
            format!("XDG_RUNTIME_DIR {shown} has mode {mode:04o}: other users may look at your pods' state (secrets among it)"),
            Some(format!("chmod 0700 {shown}")),
        );
    }
    check.ok(format!("{shown} (podrun keeps pods in {shown}/podrun)"))
}

fn owned_private_dir(path: &Path, uid: u32) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::Status;

    #[test]
    fn unset_missing_foreign_and_open_dirs() {
        let mut fake = FakeHost::new();
        fake.host.uid = nix::unistd::geteuid().as_raw();
        let run = fake.dir.path().join("run");

        let result = check(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert!(
            result.detail.contains("cannot be used"),
            "{}",
            result.detail
        );
        assert!(result
            .fix
            .unwrap()
            .starts_with("sudo install -d -m 0700 -o alice"));

        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        let result = check(&fake.host);
        assert_eq!(result.status, Status::Warning);
        assert_eq!(result.fix.unwrap(), format!("chmod 0700 {}", run.display()));

        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(check(&fake.host).status, Status::Ok);

        fake.host.uid += 1;
        let result = check(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert!(result.fix.unwrap().starts_with("sudo chown alice:"));

        fake.host.paths.xdg_runtime_dir = None;
        let result = check(&fake.host);
        assert!(result.detail.starts_with("XDG_RUNTIME_DIR is not set"));
        assert!(result.blocks_play());
        let fix = result.fix.unwrap();
        assert!(
            fix.ends_with(&format!(
                "export XDG_RUNTIME_DIR=/run/user/{}",
                fake.host.uid
            )),
            "{fix}"
        );
    }
}
