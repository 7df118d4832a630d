//! Checks that every user and group a pod's containers run as exists in the pod's user
//! namespace, before anything starts: an id beyond the user's subordinate range would
//! otherwise fail deep inside the container's start (`setuid` in libcontainer) with a
//! message that names nothing.

use podrun_userns::MappingPlan;

use podrun_pod_model::plan::Plan;
use podrun_pod_model::PodError;

/// How many uids and gids the pod's user namespace maps (`None`: the host's, all of them).
fn mapped_counts(mapping: &MappingPlan) -> Option<(u64, u64)> {
    match mapping {
        MappingPlan::HostRoot => None,
        MappingPlan::Subordinate { uid_map, gid_map } => Some((uid_map.len(), gid_map.len())),
        MappingPlan::SingleId { .. } => Some((1, 1)),
    }
}

/// Fails naming the container and the id when one of the plan's ids is not mapped.
pub fn check_ids(plan: &Plan, mapping: &MappingPlan) -> Result<(), PodError> {
    let Some((uids, gids)) = mapped_counts(mapping) else {
        return Ok(());
    };
    let user = podrun_userns::user_name(nix::unistd::getuid().as_raw());
    let hint = format!(
        "hint: ids 0–{} exist in a pod of user {user} (its own id and its ranges in \
         /etc/subuid and /etc/subgid); give the user a larger range, e.g. as root \
         `usermod --add-subuids 200000-331071 --add-subgids 200000-331071 {user}`, \
         or run the container as a smaller id",
        uids.min(gids).saturating_sub(1)
    );
    for container in plan.init_containers.iter().chain(&plan.containers) {
        let what = |kind: &str, id: u32| {
            PodError::msg(format!(
                "pod `{}`: container `{}` runs as {kind} {id}, which the pod's user namespace \
                 does not have ({} {kind}s are mapped)\n{hint}",
                podrun_pod_model::display_name(&plan.namespace, &plan.name),
                container.name,
                if kind == "uid" { uids } else { gids },
            ))
        };
        if u64::from(container.uid) >= uids {
            return Err(what("uid", container.uid));
        }
        if let Some(&gid) = std::iter::once(&container.gid)
            .chain(&container.additional_gids)
            .find(|&&gid| u64::from(gid) >= gids)
        {
            return Err(what("gid", gid));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use podrun_userns::{IdMap, IdMapping};

    fn mapping(size: u32) -> MappingPlan {
        let map = IdMap(vec![
            IdMapping {
                inside: 0,
                outside: 1000,
                size: 1,
            },
            IdMapping {
                inside: 1,
                outside: 100_000,
                size,
            },
        ]);
        MappingPlan::Subordinate {
            uid_map: map.clone(),
            gid_map: map,
        }
    }

    #[test]
    fn ids_beyond_the_range_are_named() {
        assert_eq!(mapped_counts(&mapping(65536)), Some((65537, 65537)));
        assert_eq!(mapped_counts(&MappingPlan::HostRoot), None);
        assert_eq!(
            mapped_counts(&MappingPlan::SingleId { uid: 1, gid: 1 }),
            Some((1, 1))
        );
    }
}
