//! `podrun cp [-c NAME] SRC DEST`: copy files between the host and a running container.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::Args;
use podrun_pod::cp::Location;

use crate::context::pod_dirs;
use crate::output::HintExt as _;

#[derive(Debug, Args)]
#[command(after_help = "\
One of SRC and DEST is a container path, [NAMESPACE/]POD:PATH (a relative PATH starts at \
the container's working directory); the other is a host path. Paths starting with / or . \
are always host paths.

As with docker cp: files and directories (recursively) are copied, symbolic links as links, \
with their modes and times. A directory copied to an existing directory goes inside it; \
SRC/. copies a directory's contents instead. Files copied into the container belong to its \
root (0:0), files copied out belong to you. Container paths resolve inside the container: \
its links never lead to the host. The image needs no tar. DEST - writes a tar stream to \
stdout.

Examples:
  podrun cp web:/etc/nginx/nginx.conf ./nginx.conf
  podrun cp -c client ./site web:/usr/share/nginx/html
  podrun cp team/web:/var/log/nginx/. ./logs")]
pub struct CpArgs {
    /// What to copy: `[NAMESPACE/]POD:PATH` or a host path.
    #[arg(value_name = "SRC", add = crate::complete::cp_operand())]
    source: String,

    /// Where to: a host path (`-`: a tar stream on stdout) or `[NAMESPACE/]POD:PATH`.
    #[arg(value_name = "DEST", add = crate::complete::cp_operand())]
    dest: String,

    /// The container (default: the pod's first container).
    #[arg(short, long, value_name = "NAME", add = crate::complete::container())]
    container: Option<String>,
}

/// Runs single-threaded (no async runtime): its child joins the container's namespaces.
pub fn run(args: CpArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let source = Location::parse(&args.source)?;
    let dest = Location::parse(&args.dest)?;
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let container = args.container.as_deref();
    match (source, dest) {
        (Location::Container { pod, path }, Location::Host(host)) => {
            let (namespace, name) = super::resolve_pod(&dirs, namespace, &pod)?;
            let target = podrun_pod::exec::running_container(&dirs, &namespace, &name, container)?;
            podrun_pod::cp::copy_from_container(&target, &path, &host)?;
        }
        (Location::Host(host), Location::Container { pod, path }) => {
            if host == "-" {
                return Err(anyhow!(
                    "copying a tar stream from stdin into a container is not supported"
                ))
                .hint("unpack the stream into a host directory and copy that directory");
            }
            let (namespace, name) = super::resolve_pod(&dirs, namespace, &pod)?;
            let target = podrun_pod::exec::running_container(&dirs, &namespace, &name, container)?;
            podrun_pod::cp::copy_into_container(&target, &host, &path)?;
        }
        (Location::Host(_), Location::Host(_)) => return Err(anyhow!(
            "neither `{}` nor `{}` is a container path ([NAMESPACE/]POD:PATH)",
            args.source,
            args.dest
        ))
        .hint(
            "write the container's side as POD:PATH, e.g. podrun cp ./app.conf web:/etc/app.conf",
        ),
        (Location::Container { .. }, Location::Container { .. }) => {
            bail!("copying from one container to another is not supported: copy through the host")
        }
    }
    Ok(ExitCode::SUCCESS)
}
