//! Subordinate id ranges (/etc/subuid, /etc/subgid) and the setuid helpers that map them
//! (newuidmap, newgidmap): together they give podrun the 65536 ids images expect.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use podrun_userns::{subordinate_ranges, MappingPlan, SubordinateRange};

use crate::{child, userns::first_line, Check, Host};

/// The ids one user should have: images use ids up to 65534 (nobody).
pub(crate) const RECOMMENDED_IDS: u32 = 65536;

/// The lowest start of a range podrun proposes (below are the system's own users).
const FIRST_PROPOSED_START: u64 = 100_000;

pub(crate) fn check_subids(host: &Host) -> Check {
    let check = Check::new("subids", "subordinate id ranges", true);
    if host.host_root {
        return check.ok("not needed: host root owns every id");
    }
    let uids = ranges(host, "/etc/subuid");
    let gids = ranges(host, "/etc/subgid");
    let (uids, gids) = match (uids, gids) {
        (Ok(uids), Ok(gids)) => (uids, gids),
        (Err(message), _) | (_, Err(message)) => return check.error(message, None),
    };
    let missing: Vec<&str> = [("/etc/subuid", &uids), ("/etc/subgid", &gids)]
        .iter()
        .filter(|(_, ranges)| ranges.is_empty())
        .map(|(file, _)| *file)
        .collect();
    if !missing.is_empty() {
        return check.error(
            format!(
                "user {} has no range in {}: podrun falls back to a single id, so files of other owners in images become root's and images that switch users fail",
                host.user,
                missing.join(" and ")
            ),
            Some(usermod_fix(host, uids.is_empty(), gids.is_empty())),
        );
    }
    let total =
        |ranges: &[SubordinateRange]| ranges.iter().map(|r| u64::from(r.count)).sum::<u64>();
    let found = format!(
        "/etc/subuid: {}; /etc/subgid: {}",
        describe(&uids),
        describe(&gids)
    );
    let small_uids = total(&uids) < u64::from(RECOMMENDED_IDS);
    let small_gids = total(&gids) < u64::from(RECOMMENDED_IDS);
    if small_uids || small_gids {
        return check.warning(
            format!(
                "{found}: fewer than {RECOMMENDED_IDS} ids, so files of images owned by higher ids (nobody is 65534) become root's"
            ),
            Some(usermod_fix(host, small_uids, small_gids)),
        );
    }
    check.ok(found)
}

fn ranges(host: &Host, file: &str) -> Result<Vec<SubordinateRange>, String> {
    subordinate_ranges(&host.file(file), &host.user, host.uid).map_err(|e| e.to_string())
}

fn describe(ranges: &[SubordinateRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            format!(
                "{}-{} ({} ids)",
                r.start,
                u64::from(r.start) + u64::from(r.count) - 1,
                r.count
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `usermod` adding a range of 65536 ids that no other user's range overlaps.
fn usermod_fix(host: &Host, uids: bool, gids: bool) -> String {
    let taken = |file: &str| host.read(file).unwrap_or_default();
    let start = free_range_start(&[&taken("/etc/subuid"), &taken("/etc/subgid")]);
    let range = format!("{start}-{}", start + u64::from(RECOMMENDED_IDS) - 1);
    let mut command = "sudo usermod".to_string();
    if uids {
        command.push_str(&format!(" --add-subuids {range}"));
    }
    if gids {
        command.push_str(&format!(" --add-subgids {range}"));
    }
    format!("{command} {}", host.user)
}

/// The first id at or above 100000 after every range in the files' `texts`, rounded up to a
/// multiple of 65536 (as useradd hands them out).
pub(crate) fn free_range_start(texts: &[&str]) -> u64 {
    let end = texts
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let _owner = fields.next()?;
            let start: u64 = fields.next()?.trim().parse().ok()?;
            let count: u64 = fields.next()?.trim().parse().ok()?;
            Some(start + count)
        })
        .max()
        .unwrap_or(0)
        .max(FIRST_PROPOSED_START);
    if end == FIRST_PROPOSED_START {
        return end;
    }
    end.div_ceil(u64::from(RECOMMENDED_IDS)) * u64::from(RECOMMENDED_IDS)
}

pub(crate) fn check_tools(host: &Host) -> Check {
    let check = Check::new("idmap-tools", "newuidmap and newgidmap", true);
    if host.host_root {
        return check.ok("not needed: podrun runs as host root");
    }
    let has_ranges = matches!(
        (ranges(host, "/etc/subuid"), ranges(host, "/etc/subgid")),
        (Ok(u), Ok(g)) if !u.is_empty() && !g.is_empty()
    );
    let found = match tool_problem(host) {
        Ok(found) => found,
        // Without a range podrun maps a single id itself and does not run the helpers yet.
        Err((detail, fix)) if has_ranges => return check.error(detail, fix),
        Err((detail, fix)) => {
            return check.warning(format!("{detail} (needed once you have a range)"), fix)
        }
    };
    if !has_ranges || !host.is_real() {
        return check.ok(found);
    }
    match child::run_in_child(probe) {
        Ok(_) => check.ok(format!(
            "{found}; they mapped the ranges in a test namespace"
        )),
        Err(message) => check.error(
            format!("{found}, but mapping the ranges in a test namespace failed: {message}"),
            None,
        ),
    }
}

/// Both helpers with how they are privileged, or what is wrong and its fix.
fn tool_problem(host: &Host) -> Result<String, (String, Option<String>)> {
    let mut found = Vec::new();
    for tool in ["newuidmap", "newgidmap"] {
        let Some(path) = find_in_path(tool, &host.path_env) else {
            return Err((
                format!("{tool} is not installed (not found in PATH); podrun needs it to map the subordinate ids (Fedora, Arch: package shadow-utils or shadow)"),
                Some("sudo apt-get install uidmap".to_string()),
            ));
        };
        match privilege(&path) {
            Some(how) => found.push(format!("{} ({how})", path.display())),
            None => {
                return Err((
                    format!(
                        "{} is neither setuid root nor has file capabilities: it cannot write another user's id map",
                        path.display()
                    ),
                    Some(format!("sudo chmod u+s {}", path.display())),
                ))
            }
        }
    }
    Ok(found.join(", "))
}

/// How `path` gets the privilege to write id maps: the setuid bit of a root-owned file, or
/// file capabilities (the `security.capability` xattr, as Fedora ships them).
fn privilege(path: &Path) -> Option<&'static str> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0 {
        return Some("setuid root");
    }
    match xattr::get(path, "security.capability") {
        Ok(Some(_)) => Some("file capabilities"),
        _ => None,
    }
}

/// In the child: enter a user namespace exactly as podrun does, with the full map.
fn probe() -> Result<String, String> {
    let plan = MappingPlan::for_current_user().map_err(|e| first_line(&e.to_string()))?;
    podrun_userns::enter_user_namespace(&plan).map_err(|e| first_line(&e.to_string()))?;
    Ok(String::new())
}

/// The first executable `name` in the directories of `path` (a PATH value).
pub(crate) fn find_in_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::Status;

    #[test]
    fn no_range_is_an_error_with_a_free_range_to_add() {
        let fake = FakeHost::new();
        fake.write("/etc/subuid", "bob:100000:65536\ncarol:165536:65536\n");
        fake.write("/etc/subgid", "bob:100000:65536\n");
        let result = check_subids(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert!(result.blocks_play());
        assert!(
            result
                .detail
                .contains("no range in /etc/subuid and /etc/subgid"),
            "{}",
            result.detail
        );
        assert_eq!(
            result.fix.unwrap(),
            "sudo usermod --add-subuids 262144-327679 --add-subgids 262144-327679 alice"
        );
    }

    #[test]
    fn ranges_by_name_or_uid_and_their_size() {
        let fake = FakeHost::new();
        fake.write("/etc/subuid", "# comment\nalice:200000:65536\n");
        fake.write("/etc/subgid", "1000:200000:65536\n");
        let result = check_subids(&fake.host);
        assert_eq!(result.status, Status::Ok, "{}", result.detail);
        assert!(result.detail.contains("200000-265535 (65536 ids)"));

        fake.write("/etc/subgid", "alice:200000:1000\n");
        let result = check_subids(&fake.host);
        assert_eq!(result.status, Status::Warning);
        assert!(
            result.detail.contains("fewer than 65536"),
            "{}",
            result.detail
        );
        let fix = result.fix.unwrap();
        assert!(
            fix.contains("--add-subgids") && !fix.contains("--add-subuids"),
            "{fix}"
        );

        fake.write("/etc/subgid", "");
        let result = check_subids(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert!(result.detail.contains("no range in /etc/subgid"));
    }

    #[test]
    fn proposed_ranges_follow_the_existing_ones() {
        assert_eq!(free_range_start(&[""]), 100_000);
        assert_eq!(free_range_start(&["a:100000:65536\n"]), 196_608);
        assert_eq!(
            free_range_start(&["a:10:5\n", "junk\nb:300000:65536\n"]),
            393_216
        );
    }

    #[test]
    fn tools_need_setuid_or_capabilities() {
        let fake = FakeHost::new();
        fake.write("/etc/subuid", "alice:200000:65536\n");
        fake.write("/etc/subgid", "alice:200000:65536\n");
        let result = check_tools(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert_eq!(result.fix.as_deref(), Some("sudo apt-get install uidmap"));

        let bin = fake.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in ["newuidmap", "newgidmap"] {
            std::fs::write(bin.join(tool), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let result = check_tools(&fake.host);
        assert_eq!(result.status, Status::Error);
        assert!(
            result.detail.contains("neither setuid root"),
            "{}",
            result.detail
        );
        assert!(result.fix.unwrap().starts_with("sudo chmod u+s "));

        // Without a range the helpers are not used yet: only a warning when they are missing.
        fake.write("/etc/subuid", "");
        std::fs::remove_file(bin.join("newgidmap")).unwrap();
        let result = check_tools(&fake.host);
        assert_eq!(result.status, Status::Warning);
    }
}
