//! Rootless networking for podrun pods.
//!
//! A pod's network namespace is created by its supervisor (podrun-runtime); this crate gives
//! it a way out and a way in:
//!
//! * [`Backend`]: `slirp4netns` (the default), `pasta`, `none` (loopback only) or `host`
//!   (the namespace podrun runs in), and [`NetworkPlan`], what `plan.json` records.
//! * [`ports`]: published ports (`--publish [hostIP:][hostPort:]containerPort[/proto]`, YAML
//!   `hostPort`), the checks made before a pod starts (port in use, privileged port) and the
//!   free host ports picked for `--publish` without a host port.
//! * [`slirp`]: the slirp4netns helper, forked by the supervisor *before* it leaves the host's
//!   network namespace and released once the pod's namespace exists, ended through its exit fd.
//! * [`slirp_api`]: `add_hostfwd` over slirp4netns' API socket, spoken by podrun itself.
//! * [`pasta`]: the pasta helper, forked by the supervisor before it enters the pod's user
//!   namespace, run in the foreground as its child and killed with it.
//! * [`resolv`]: the pod's /etc/resolv.conf for a backend.
//!
//! Errors name the port, helper or file they are about, with a `hint:` for the fix.

pub mod backend;
mod launch;
pub mod pasta;
pub mod ports;
pub mod resolv;
pub mod slirp;
pub mod slirp_api;
pub mod tun;

pub use backend::{Backend, NetworkPlan};
pub use pasta::{Pasta, PastaConfig, PendingPasta};
pub use ports::{
    check_host_ports, parse_publish, reserve_free_ports, PortMapping, PortReservation, Protocol,
};

/// The first line of `BINARY --version` (a network helper's, newuidmap's), when it prints
/// one: what `podrun --version`, `podrun system check` and the pasta stall check show.
pub fn helper_version(binary: &std::path::Path) -> Option<String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}
pub use slirp::{PendingSlirp, Slirp4netns, SlirpConfig};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("host port {port}/{protocol} on {addr} is already in use\nhint: stop what listens there (`ss -lntup 'sport = :{port}'` shows it), or publish another host port (--publish HOSTPORT:CONTAINERPORT)")]
    PortInUse {
        addr: std::net::Ipv4Addr,
        port: u16,
        protocol: Protocol,
    },
    #[error("host port {port}/{protocol} is privileged: ports below {start} (net.ipv4.ip_unprivileged_port_start) need root\nhint: publish a host port of {start} or above (--publish HOSTPORT:CONTAINERPORT), or allow it for everyone: sudo sysctl net.ipv4.ip_unprivileged_port_start={port}")]
    PrivilegedPort {
        port: u16,
        protocol: Protocol,
        start: u16,
    },
    #[error("cannot use host port {port}/{protocol} on {addr}: {source}\nhint: hostIP must be an address of this host (or 0.0.0.0 for all)")]
    HostAddress {
        addr: std::net::Ipv4Addr,
        port: u16,
        protocol: Protocol,
        source: std::io::Error,
    },
    #[error("host port {port}/{protocol} on {addr} is published twice")]
    DuplicatePort {
        addr: std::net::Ipv4Addr,
        port: u16,
        protocol: Protocol,
    },
    #[error("invalid port mapping `{text}`: {reason} (expected [hostIP:][hostPort:]containerPort[/tcp|/udp], e.g. 8080:80, 127.0.0.1:5353:53/udp, or 80 for a free host port)")]
    BadPublish { text: String, reason: String },
    #[error("{helper} is not installed (not found in PATH)\nhint: install it (sudo apt-get install {package}), or run the pod without a network: --network none; run `podrun system check` for a full diagnosis")]
    HelperMissing {
        helper: &'static str,
        package: &'static str,
    },
    #[error("{path} cannot be opened from the pod's user namespace: {source}{detail}\nhint: sudo chmod 0666 {path} (the mode most distributions ship), or run the pod without a network: --network none; run `podrun system check` for a full diagnosis")]
    TunUnusable {
        path: String,
        source: std::io::Error,
        detail: String,
    },
    #[error("{helper} ended before the pod's network was ready ({status}){log}\nhint: its full output is in {log_path}")]
    HelperDied {
        helper: &'static str,
        status: String,
        log: String,
        log_path: String,
    },
    #[error("{helper} did not configure the pod's network within {seconds} s\nhint: its output is in {log_path}")]
    HelperTimeout {
        helper: &'static str,
        seconds: u64,
        log_path: String,
    },
    #[error("cannot publish host port {port}/{protocol} on {addr} (to container port {container_port}): slirp4netns answered: {answer}\nhint: the port may have been taken since podrun checked it; publish another host port")]
    Hostfwd {
        addr: std::net::Ipv4Addr,
        port: u16,
        container_port: u16,
        protocol: Protocol,
        answer: String,
    },
    #[error("cannot find a free host port for container port {container_port}/{protocol} on {addr}: {source}\nhint: hostIP must be an address of this host (or 0.0.0.0 for all); or publish a fixed host port (--publish HOSTPORT:CONTAINERPORT)")]
    NoFreePort {
        addr: std::net::Ipv4Addr,
        container_port: u16,
        protocol: Protocol,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl NetworkError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
        let what = what.into();
        move |source| NetworkError::Io { what, source }
    }
}
