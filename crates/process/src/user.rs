//! The user and groups a container runs as.
//!
//! `securityContext.runAsUser`/`runAsGroup` (the container's over the pod's) win; otherwise the
//! image's USER, which may be `uid`, `uid:gid`, `name` or `name:group`, names resolved through
//! the image's own /etc/passwd and /etc/group (as runc does). The supplementary groups are
//! those /etc/group lists the user in (not with `supplementalGroupsPolicy: Strict`), plus the
//! pod's `supplementalGroups` and `fsGroup`. `runAsNonRoot` is checked as the kubelet checks
//! it.

use k8s_openapi::api::core::v1::{Container, Pod};
use oci_spec::image::Config as ImageConfig;

use crate::ProcessError;

/// A container's identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Read access to the image's files (its merged layers), for /etc/passwd and /etc/group.
pub trait ImageFiles {
    /// The content of `path` (absolute, inside the image), if it is a regular file.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
}

/// An image with no files (for tests, and images without /etc/passwd).
impl ImageFiles for () {
    fn read(&self, _path: &str) -> Option<Vec<u8>> {
        None
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

fn passwd(files: &dyn ImageFiles) -> Vec<PasswdEntry> {
    let text = files.read("/etc/passwd").unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// (name, gid, members) of the image's /etc/group.
fn groups(files: &dyn ImageFiles) -> Vec<(String, u32, Vec<String>)> {
    let text = files.read("/etc/group").unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, members))
        })
        .collect()
}

/// The identity `container` runs with.
pub fn resolve(
    name: &str,
    container: &Container,
    pod: &Pod,
    image: Option<&ImageConfig>,
    files: &dyn ImageFiles,
) -> Result<User, ProcessError> {
    let pod_ctx = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let ctx = container.security_context.as_ref();
    let run_as_user = ctx
        .and_then(|c| c.run_as_user)
        .or(pod_ctx.and_then(|c| c.run_as_user));
    let run_as_group = ctx
        .and_then(|c| c.run_as_group)
        .or(pod_ctx.and_then(|c| c.run_as_group));
    // The kubelet adds fsGroup to the process's groups, after supplementalGroups.
    let supplemental: Vec<u32> = pod_ctx
        .and_then(|c| c.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(pod_ctx.and_then(|c| c.fs_group))
        .filter_map(|g| u32::try_from(g).ok())
        .collect();
    // `Strict`: only the groups the pod names, not those the image's /etc/group adds.
    let strict_groups =
        pod_ctx.and_then(|c| c.supplemental_groups_policy.as_deref()) == Some("Strict");
    let run_as_non_root = ctx
        .and_then(|c| c.run_as_non_root)
        .or(pod_ctx.and_then(|c| c.run_as_non_root))
        .unwrap_or(false);

    let image_user = image
        .and_then(|i| i.user().clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".to_string());
    let (user_part, group_part) = match image_user.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (image_user.clone(), None),
    };
    let entries = passwd(files);
    let group_table = groups(files);
    let invalid = |field: &str, message: String| ProcessError::Field {
        container: name.to_string(),
        field: field.to_string(),
        message,
    };
    if run_as_non_root {
        check_non_root(run_as_user, &user_part, &image_user)
            .map_err(|message| invalid("securityContext.runAsNonRoot", message))?;
    }

    let (uid, user_name, primary_gid) = match run_as_user {
        Some(uid) => {
            let uid = u32::try_from(uid).map_err(|_| {
                invalid(
                    "securityContext.runAsUser",
                    format!("{uid} is not a valid uid"),
                )
            })?;
            let entry = entries.iter().find(|e| e.uid == uid);
            (uid, entry.map(|e| e.name.clone()), entry.map(|e| e.gid))
        }
        None => match user_part.parse::<u32>() {
            Ok(uid) => {
                let entry = entries.iter().find(|e| e.uid == uid);
                (uid, entry.map(|e| e.name.clone()), entry.map(|e| e.gid))
            }
            Err(_) => {
                let entry = entries
                    .iter()
                    .find(|e| e.name == user_part)
                    .ok_or_else(|| {
                        invalid(
                            "image USER",
                            format!("user `{user_part}` is not in the image's /etc/passwd"),
                        )
                    })?;
                (entry.uid, Some(entry.name.clone()), Some(entry.gid))
            }
        },
    };
    let gid = match (run_as_group, &group_part) {
        (Some(gid), _) => u32::try_from(gid).map_err(|_| {
            invalid(
                "securityContext.runAsGroup",
                format!("{gid} is not a valid gid"),
            )
        })?,
        (None, Some(group)) if run_as_user.is_none() => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_table
                .iter()
                .find(|(n, _, _)| n == group)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| {
                    invalid(
                        "image USER",
                        format!("group `{group}` is not in the image's /etc/group"),
                    )
                })?,
        },
        _ => primary_gid.unwrap_or(0),
    };
    let mut additional_gids: Vec<u32> = user_name
        .filter(|_| !strict_groups)
        .map(|user| {
            group_table
                .iter()
                .filter(|(_, g, members)| *g != gid && members.contains(&user))
                .map(|(_, g, _)| *g)
                .collect()
        })
        .unwrap_or_default();
    additional_gids.extend(supplemental);
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

/// The kubelet's `runAsNonRoot` rule: a `runAsUser` of 0 breaks it; without one, the image's
/// USER must be a numeric, non-zero uid (a name cannot be verified before the container
/// runs, so the kubelet refuses it too, and so does podrun, to run the same way).
fn check_non_root(
    run_as_user: Option<i64>,
    user_part: &str,
    image_user: &str,
) -> Result<(), String> {
    match run_as_user {
        Some(0) => Err("true, but runAsUser is 0: the container's runAsUser breaks the non-root policy".into()),
        Some(_) => Ok(()),
        None => match user_part.parse::<u32>() {
            Ok(0) => Err(format!(
                "true, but the image will run as root (its USER is {}); set securityContext.runAsUser to a non-zero uid",
                if image_user == "0" { "unset or 0".to_string() } else { format!("`{image_user}`") }
            )),
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "true, but the image has a non-numeric user (`{user_part}`), so it cannot be verified to be non-root (a kubelet refuses it too); set securityContext.runAsUser to its uid"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, SecurityContext};

    struct Files;
    impl ImageFiles for Files {
        fn read(&self, path: &str) -> Option<Vec<u8>> {
            match path {
                "/etc/passwd" => Some(
                    b"root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\n".to_vec(),
                ),
                "/etc/group" => Some(b"root:x:0:\nadm:x:4:www-data\nwww-data:x:33:\n".to_vec()),
                _ => None,
            }
        }
    }

    fn image_user(user: &str) -> ImageConfig {
        let mut config = ImageConfig::default();
        config.set_user(Some(user.to_string()));
        config
    }

    fn container(run_as: Option<i64>) -> Container {
        Container {
            name: "c".into(),
            security_context: run_as.map(|uid| SecurityContext {
                run_as_user: Some(uid),
                ..SecurityContext::default()
            }),
            ..Container::default()
        }
    }

    #[test]
    fn image_user_by_name_and_number() {
        let pod = Pod::default();
        let user = as_www_data(&pod);
        assert_eq!(
            user,
            User {
                uid: 33,
                gid: 33,
                additional_gids: vec![4]
            }
        );
        let user = resolve(
            "c",
            &container(None),
            &pod,
            Some(&image_user("1000:2000")),
            &Files,
        )
        .unwrap();
        assert_eq!(
            user,
            User {
                uid: 1000,
                gid: 2000,
                additional_gids: vec![]
            }
        );
        let user = resolve("c", &container(None), &pod, None, &()).unwrap();
        assert_eq!(user, User::default());
        let err = resolve(
            "c",
            &container(None),
            &pod,
            Some(&image_user("nobody")),
            &Files,
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("`nobody` is not in the image's /etc/passwd"));
    }

    fn non_root(pod_value: Option<bool>, run_as: Option<i64>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext {
                    run_as_non_root: pod_value,
                    run_as_user: run_as,
                    ..PodSecurityContext::default()
                }),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn run_as_non_root_as_the_kubelet_checks_it() {
        let root_image = image_user("");
        let pod = non_root(Some(true), None);
        let err = resolve("c", &container(None), &pod, Some(&root_image), &Files).unwrap_err();
        assert!(
            err.to_string().contains("securityContext.runAsNonRoot"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("will run as root (its USER is unset or 0)"),
            "{err}"
        );
        let err = resolve(
            "c",
            &container(None),
            &pod,
            Some(&image_user("www-data")),
            &Files,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("non-numeric user (`www-data`)"),
            "{err}"
        );
        // A numeric non-root USER, or a non-root runAsUser, passes.
        resolve(
            "c",
            &container(None),
            &pod,
            Some(&image_user("33:33")),
            &Files,
        )
        .unwrap();
        resolve("c", &container(Some(33)), &pod, Some(&root_image), &Files).unwrap();
        let err = resolve("c", &container(Some(0)), &pod, None, &Files).unwrap_err();
        assert!(err.to_string().contains("runAsUser is 0"), "{err}");
        // The container's runAsNonRoot: false wins over the pod's true.
        let mut lenient = container(None);
        lenient.security_context = Some(SecurityContext {
            run_as_non_root: Some(false),
            ..SecurityContext::default()
        });
        resolve("c", &lenient, &pod, Some(&root_image), &Files).unwrap();
    }

    /// The identity of a plain container of `pod` whose image says `USER www-data`.
    fn as_www_data(pod: &Pod) -> User {
        resolve(
            "c",
            &container(None),
            pod,
            Some(&image_user("www-data")),
            &Files,
        )
        .unwrap()
    }

    fn pod_context(pod: &mut Pod) -> &mut PodSecurityContext {
        let spec = pod.spec.as_mut().unwrap();
        spec.security_context.get_or_insert_with(Default::default)
    }

    #[test]
    fn fs_group_and_strict_supplemental_groups() {
        let mut pod = non_root(None, None);
        let ctx = pod_context(&mut pod);
        ctx.fs_group = Some(2000);
        ctx.supplemental_groups = Some(vec![3000]);
        let user = as_www_data(&pod);
        assert_eq!(user.additional_gids, vec![4, 2000, 3000]);
        let ctx = pod_context(&mut pod);
        ctx.supplemental_groups_policy = Some("Strict".into());
        let user = as_www_data(&pod);
        assert_eq!(user.additional_gids, vec![2000, 3000]);
    }

    #[test]
    fn security_context_wins_container_over_pod() {
        let pod = Pod {
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext {
                    run_as_user: Some(500),
                    run_as_group: Some(600),
                    supplemental_groups: Some(vec![700]),
                    ..PodSecurityContext::default()
                }),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let user = as_www_data(&pod);
        assert_eq!(
            user,
            User {
                uid: 500,
                gid: 600,
                additional_gids: vec![700]
            }
        );
        let user = resolve("c", &container(Some(33)), &pod, None, &Files).unwrap();
        assert_eq!(
            user,
            User {
                uid: 33,
                gid: 600,
                additional_gids: vec![4, 700]
            }
        );
    }
}
