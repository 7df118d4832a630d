//! `podrun cp`: files and directories between the host and a running container.
//!
//! The container's side runs in a child that joins the pod's user namespace and the
//! container's mount namespace ([`podrun_runtime::InContainer`]): paths resolve inside the
//! container, and files written there belong to the container's root (0:0). The host's side
//! stays in podrun's process, outside the user namespace: files written there belong to the
//! invoking user. A tar stream ([`archive`]) connects the two, so the image needs no `tar`.

mod archive;

use std::io::Write;

use podrun_runtime::{ChildError, ContainerFs, InContainer};

use crate::exec::RunningContainer;
use archive::{Source, Unpack};
use podrun_pod_model::PodError;

/// One side of `podrun cp`, as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A host path; `-` is stdout (a tar stream), as with `docker cp`.
    Host(String),
    /// `[NAMESPACE/]POD:PATH`; `pod` as written (see [`crate::listing::resolve`]).
    Container { pod: String, path: String },
}

impl Location {
    /// kubectl's rule: `POD:PATH` or `NAMESPACE/POD:PATH` names a container path; anything
    /// else (also a path starting with `/` or `.`, which may contain `:`) is a host path.
    pub fn parse(text: &str) -> Result<Location, PodError> {
        if text.starts_with('/') || text.starts_with('.') {
            return Ok(Location::Host(text.to_string()));
        }
        let Some((pod, path)) = text.split_once(':') else {
            return Ok(Location::Host(text.to_string()));
        };
        let invalid = || {
            PodError::msg(format!(
                "`{text}`: a container path is written [NAMESPACE/]POD:PATH"
            ))
        };
        if pod.is_empty() || path.is_empty() || pod.matches('/').count() > 1 {
            return Err(invalid());
        }
        if pod.split('/').any(str::is_empty) {
            return Err(invalid());
        }
        Ok(Location::Container {
            pod: pod.to_string(),
            path: path.to_string(),
        })
    }
}

fn container_fs(target: &RunningContainer) -> ContainerFs {
    ContainerFs {
        user_namespace_of: target.supervisor_pid,
        mount_namespace_of: target.init_pid,
        cwd: target.plan.cwd.clone(),
    }
}

/// The container ended since it was found running, or its namespaces cannot be joined.
fn enter_error(target: &RunningContainer, error: podrun_runtime::RuntimeError) -> PodError {
    let container = format!("container `{}` of pod `{}`", target.plan.name, target.pod);
    if podrun_pod_model::process::process_alive(target.init_pid) {
        PodError::msg(format!("cannot enter {container}: {error}"))
    } else {
        PodError::msg(format!("{container} is not running"))
    }
}

fn in_container(target: &RunningContainer) -> String {
    format!(
        "in container `{}` of pod `{}`",
        target.plan.name, target.pod
    )
}

/// Copies `source` (a path in the container; relative to its working directory) to `dest`
/// on the host (`-`: a tar stream on stdout). The calling process must be single-threaded.
pub fn copy_from_container(
    target: &RunningContainer,
    source: &str,
    dest: &str,
) -> Result<(), PodError> {
    let source = Source::parse(source);
    let child = {
        let source = source.clone();
        InContainer::spawn(&container_fs(target), move |stream| {
            archive::pack(&source, stream)
        })
        .map_err(|e| enter_error(target, e))?
    };
    let host = if dest == "-" {
        let mut stdout = std::io::stdout().lock();
        std::io::copy(&mut &child.stream, &mut stdout)
            .and_then(|_| stdout.flush())
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write to stdout: {e}")))
    } else {
        archive::unpack(&child.stream, dest, &source, Unpack { owner: None })
    };
    let container = finish(child, target)?;
    blame(container, host, target, "on the host")
}

/// Copies `source` (a host path) to `dest` in the container (relative to its working
/// directory), owned by the container's root. The calling process must be single-threaded.
pub fn copy_into_container(
    target: &RunningContainer,
    source: &str,
    dest: &str,
) -> Result<(), PodError> {
    let source = Source::parse(source);
    // The host's side is checked first: a missing source then fails before anything is
    // written in the container.
    std::fs::symlink_metadata(&source.path).map_err(|e| {
        PodError::msg(format!(
            "`{}`: {} on the host",
            source.path.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".to_string()
            } else {
                e.to_string()
            }
        ))
    })?;
    let child = {
        let (source, dest) = (source.clone(), dest.to_string());
        InContainer::spawn(&container_fs(target), move |stream| {
            let owner = Some((0, 0));
            archive::unpack(stream, &dest, &source, Unpack { owner })
        })
        .map_err(|e| enter_error(target, e))?
    };
    let host = archive::pack(&source, &child.stream);
    let container = finish(child, target)?;
    blame(container, host, target, "on the host")
}

fn finish(
    child: InContainer,
    target: &RunningContainer,
) -> Result<Result<(), ChildError>, PodError> {
    child
        .finish()
        .map_err(|e| PodError::msg(format!("{}: {e}", in_container(target))))
}

/// The error to report when one side or both failed: the one that is not merely the
/// consequence of the other (a broken or truncated stream), the container's if both are.
fn blame(
    container: Result<(), ChildError>,
    host: std::io::Result<()>,
    target: &RunningContainer,
    host_side: &str,
) -> Result<(), PodError> {
    let in_container = |e: ChildError| PodError::msg(format!("{e} {}", in_container(target)));
    match (container, host) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) => Err(in_container(e)),
        (Err(e), Err(h)) if e.consequence && !archive::is_consequence(h.kind()) => {
            Err(PodError::msg(format!("{h} {host_side}")))
        }
        (Err(e), Err(_)) => Err(in_container(e)),
        (Ok(()), Err(h)) => Err(PodError::msg(format!("{h} {host_side}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::Location;

    fn container(pod: &str, path: &str) -> Location {
        Location::Container {
            pod: pod.into(),
            path: path.into(),
        }
    }

    #[test]
    fn container_paths_follow_kubectls_syntax() {
        assert_eq!(
            Location::parse("web:/etc/hosts").unwrap(),
            container("web", "/etc/hosts")
        );
        assert_eq!(
            Location::parse("team/web:data").unwrap(),
            container("team/web", "data")
        );
        for host in ["/tmp/a:b", "./a:b", "file", "-", "../x:y"] {
            assert_eq!(Location::parse(host).unwrap(), Location::Host(host.into()));
        }
        for bad in [":x", "web:", "a/b/c:x", "team/:x"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
