//! The id maps podrun asks for.

use std::fmt;
use std::path::Path;

use crate::{subordinate_ranges, UsernsError};

/// One line of /proc/PID/uid_map: `size` ids from `inside` map to host ids from `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub inside: u32,
    pub outside: u32,
    pub size: u32,
}

/// A whole uid or gid map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMap(pub Vec<IdMapping>);

impl IdMap {
    /// Namespace root is `own_id`; ids 1.. are the subordinate ranges, one after another.
    fn for_ranges(own_id: u32, ranges: &[crate::SubordinateRange]) -> Self {
        let mut map = vec![IdMapping {
            inside: 0,
            outside: own_id,
            size: 1,
        }];
        let mut next_inside = 1u32;
        for range in ranges {
            map.push(IdMapping {
                inside: next_inside,
                outside: range.start,
                size: range.count,
            });
            next_inside = next_inside.saturating_add(range.count);
        }
        IdMap(map)
    }

    /// How many ids exist inside the namespace.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|m| u64::from(m.size)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Arguments for newuidmap/newgidmap after the PID: `inside outside size` triples.
    pub fn tool_args(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|m| [m.inside, m.outside, m.size])
            .map(|n| n.to_string())
            .collect()
    }

    /// The map in /proc/PID/uid_map syntax.
    pub fn proc_format(&self) -> String {
        self.0
            .iter()
            .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.size))
            .collect()
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|m| format!("{}->{}x{}", m.inside, m.outside, m.size))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// What namespace podrun will set up for the calling user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingPlan {
    /// Real root: no user namespace is needed; ids are the host's.
    HostRoot,
    /// The user's uid/gid plus their subordinate ranges, written by newuidmap/newgidmap.
    Subordinate { uid_map: IdMap, gid_map: IdMap },
    /// The user has no subordinate range: only namespace root exists, mapped to the user.
    /// Files owned by other ids in an image end up owned by root.
    SingleId { uid: u32, gid: u32 },
}

impl MappingPlan {
    /// The plan for the calling process, from /etc/subuid and /etc/subgid.
    pub fn for_current_user() -> Result<Self, UsernsError> {
        Self::for_user_with_files(Path::new("/etc/subuid"), Path::new("/etc/subgid"))
    }

    /// Same as [`MappingPlan::for_current_user`] with explicit subordinate id files.
    pub fn for_user_with_files(subuid: &Path, subgid: &Path) -> Result<Self, UsernsError> {
        let uid = nix::unistd::geteuid();
        let gid = nix::unistd::getegid();
        if uid.is_root() && crate::is_root_in_initial_namespace() {
            return Ok(MappingPlan::HostRoot);
        }
        let name = user_name(uid.as_raw());
        let uid_ranges = subordinate_ranges(subuid, &name, uid.as_raw())?;
        let gid_ranges = subordinate_ranges(subgid, &name, uid.as_raw())?;
        if uid_ranges.is_empty() || gid_ranges.is_empty() {
            return Ok(MappingPlan::SingleId {
                uid: uid.as_raw(),
                gid: gid.as_raw(),
            });
        }
        Ok(MappingPlan::Subordinate {
            uid_map: IdMap::for_ranges(uid.as_raw(), &uid_ranges),
            gid_map: IdMap::for_ranges(gid.as_raw(), &gid_ranges),
        })
    }

    /// A warning to show the user when the plan is a degraded one.
    pub fn warning(&self) -> Option<String> {
        match self {
            MappingPlan::SingleId { .. } => Some(format!(
                "user {} has no range in /etc/subuid or /etc/subgid: only one id is available, so files \
                 of other owners in images become root's and images that switch users may fail\n\
                 hint: as root, run `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}`; run `podrun system check` for a full diagnosis",
                user_name(nix::unistd::geteuid().as_raw()),
                user_name(nix::unistd::geteuid().as_raw())
            )),
            _ => None,
        }
    }
}

/// The login name of `uid`, or the number when it has none (as shadow's tools accept both).
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SubordinateRange;

    #[test]
    fn maps_root_to_user_and_ranges_after() {
        let map = IdMap::for_ranges(
            1001,
            &[
                SubordinateRange {
                    start: 100000,
                    count: 65536,
                },
                SubordinateRange {
                    start: 300000,
                    count: 10,
                },
            ],
        );
        assert_eq!(
            map.tool_args(),
            ["0", "1001", "1", "1", "100000", "65536", "65537", "300000", "10"]
        );
        assert_eq!(map.len(), 65547);
        assert_eq!(
            map.proc_format(),
            "0 1001 1\n1 100000 65536\n65537 300000 10\n"
        );
    }
}
