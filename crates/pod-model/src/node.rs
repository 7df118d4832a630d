//! The node a pod runs on, which is this host: its name, its primary address and what it
//! gives a pod (the planner's `node` adds what it can give, for the downward API).

use std::net::Ipv4Addr;

use podrun_network::Backend;

/// The address the slirp4netns and pasta helpers give every pod (`tap0`).
pub const HELPER_POD_IP: &str = podrun_network::pasta::POD_ADDRESS;

/// What the plan holds for `status.podIP` on the shared network, where the address is
/// leased only when the pod starts: the supervisor replaces it with the address
/// ([`crate::plan::Plan::fill_in_pod_ip`]) before any container starts. NUL cannot occur in
/// an argument or an environment variable, so no value of the user's can be mistaken for
/// it, and one left over would fail the container's start instead of passing unnoticed.
pub const LEASED_POD_IP: &str = "\u{0}status.podIP\u{0}";

/// The pod's address (`status.podIP`) on the network `backend`.
pub fn pod_ip(backend: Backend) -> String {
    match backend {
        Backend::Slirp4netns | Backend::Pasta => HELPER_POD_IP.to_string(),
        Backend::Host => host_ip().to_string(),
        // Loopback only: the one address the pod has.
        Backend::None => Ipv4Addr::LOCALHOST.to_string(),
        // Leased by the network holder when the pod starts: known from its state only
        // (`PodState::pod_ip`), not at plan time.
        Backend::Shared => String::new(),
    }
}

/// The host's name (`spec.nodeName`).
pub fn node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The host's primary IPv4 address (`status.hostIP`): the address of the interface of the
/// default route, else the first non-loopback address, else 127.0.0.1. Read from
/// /proc/net/route and the interface list; nothing is sent.
pub fn host_ip() -> Ipv4Addr {
    let addresses = interface_addresses();
    let default_interface = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|table| default_route_interface(&table));
    default_interface
        .and_then(|name| addresses.iter().find(|(n, _)| *n == name).map(|a| a.1))
        .or_else(|| addresses.iter().map(|a| a.1).find(|ip| !ip.is_loopback()))
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The interface of the default route in /proc/net/route's table.
fn default_route_interface(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        // Iface Destination Gateway Flags ...; RTF_UP is 0x1.
        let up = columns
            .get(3)
            .and_then(|f| u32::from_str_radix(f, 16).ok())
            .is_some_and(|f| f & 1 != 0);
        (columns.get(1) == Some(&"00000000") && up).then(|| columns[0].to_string())
    })
}

/// Every IPv4 address of the host's interfaces, with the interface's name.
fn interface_addresses() -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a non-null element of the list getifaddrs returned, alive until freed.
        let ifa = unsafe { &*entry };
        if !ifa.ifa_addr.is_null() && !ifa.ifa_name.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says what it is.
            let family = unsafe { (*ifa.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                // SAFETY: ifa_name is a NUL-terminated string owned by the list.
                let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
                out.push((name.to_string_lossy().into_owned(), ip));
            }
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_and_meminfo() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn pod_addresses_per_backend() {
        assert_eq!(pod_ip(Backend::Slirp4netns), "10.0.2.100");
        assert_eq!(pod_ip(Backend::Host), host_ip().to_string());
        assert_eq!(pod_ip(Backend::None), "127.0.0.1");
    }
}
