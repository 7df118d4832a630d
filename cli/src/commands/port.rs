//! `podrun port POD [CONTAINERPORT[/PROTO]]`: the pod's published ports, as `docker port`
//! prints a container's.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use podrun_network::{PortMapping, Protocol};

use crate::context::pod_dirs;

#[derive(Debug, Args)]
#[command(after_help = "\
Without CONTAINERPORT, one line per published port: `80/tcp -> 0.0.0.0:43125`. With it, the \
host addresses it is published on, one a line: `0.0.0.0:43125`. The host port is the one \
chosen when `play --publish 80` (no host port) picked a free one. A port that is not \
published is an error (exit 1); a pod with none prints nothing.

Examples:
  podrun port web
  curl http://$(podrun port web 80)/")]
pub struct PortArgs {
    /// The pod: `NAME` (in `default`, or the only pod of that name; `-n NS NAME` in NS) or
    /// `NAMESPACE/NAME`.
    #[arg(value_name = "POD", add = crate::complete::pod())]
    pod: String,

    /// Only this container port (protocol tcp unless `/udp` is given).
    #[arg(value_name = "CONTAINERPORT[/PROTO]", value_parser = parse_port)]
    port: Option<(u16, Protocol)>,
}

/// `80`, `80/tcp` or `53/udp`.
fn parse_port(text: &str) -> Result<(u16, Protocol), String> {
    let (number, protocol) = match text.split_once('/') {
        Some((number, proto)) => (
            number,
            Protocol::parse(proto)
                .ok_or_else(|| format!("`{text}`: the protocol must be tcp or udp"))?,
        ),
        None => (text, Protocol::Tcp),
    };
    let port = number
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{text}`: a container port is a number from 1 to 65535"))?;
    Ok((port, protocol))
}

pub fn run(args: PortArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let (namespace, name) = super::resolve_pod(&dirs, namespace, &args.pod)?;
    let dir = dirs.runtime_dir(&namespace, &name);
    let shown = podrun_pod::display_name(&namespace, &name);
    if !dir.is_dir() {
        bail!("pod `{shown}` not found\nhint: podrun ps lists the pods");
    }
    let plan = podrun_pod_model::plan::Plan::read(&dir)
        .map_err(|e| anyhow::anyhow!("pod `{shown}`: {e}"))?;
    match args.port {
        None => print!("{}", all_ports(&plan.ports)),
        Some((port, protocol)) => {
            let found = addresses(&plan.ports, port, protocol);
            if found.is_empty() {
                let why = match plan.network.backend {
                    podrun_network::Backend::Host => {
                        "\nhint: the pod uses the host's network: its servers listen on the host directly"
                    }
                    _ => "\nhint: `podrun port POD` lists the published ports; `play --publish PORT` publishes one",
                };
                bail!("pod `{shown}`: no host port is published for {port}/{protocol}{why}");
            }
            print!("{found}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `docker port CONTAINER`'s lines: `80/tcp -> 0.0.0.0:43125`.
fn all_ports(ports: &[PortMapping]) -> String {
    ports
        .iter()
        .map(|p| {
            format!(
                "{}/{} -> {}:{}\n",
                p.container_port, p.protocol, p.host_ip, p.host_port
            )
        })
        .collect()
}

/// `docker port CONTAINER PORT`'s lines: `0.0.0.0:43125`, one per mapping of that port.
fn addresses(ports: &[PortMapping], port: u16, protocol: Protocol) -> String {
    ports
        .iter()
        .filter(|p| p.container_port == port && p.protocol == protocol)
        .map(|p| format!("{}:{}\n", p.host_ip, p.host_port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_like_docker_port() {
        let ports: Vec<PortMapping> = ["127.0.0.1:43125:80", "0.0.0.0:5353:53/udp", "8080:80"]
            .iter()
            .map(|p| podrun_network::parse_publish(p).unwrap())
            .collect();
        assert_eq!(
            all_ports(&ports),
            "80/tcp -> 127.0.0.1:43125\n53/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:8080\n"
        );
        assert_eq!(
            addresses(&ports, 80, Protocol::Tcp),
            "127.0.0.1:43125\n0.0.0.0:8080\n"
        );
        assert_eq!(addresses(&ports, 53, Protocol::Tcp), "");
        assert_eq!(parse_port("53/udp"), Ok((53, Protocol::Udp)));
        assert_eq!(parse_port("80"), Ok((80, Protocol::Tcp)));
        assert!(parse_port("0").is_err() && parse_port("80/sctp").is_err());
    }
}
