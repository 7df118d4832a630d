//! The node a pod runs on, which is this host, as the downward API shows it: its name and
//! address ([`podrun_pod_model::node`]) and what it can give a pod (the kubelet's node
//! allocatable).

use std::path::Path;

use podrun_network::Backend;
use podrun_pod_model::node::{host_ip, node_name, pod_ip, LEASED_POD_IP};
use podrun_process::{NodeResources, PodFields};

/// The downward API's runtime fields of a pod with `uid` on the network `backend`; `storage`
/// is a directory on the filesystem that holds the pods (for ephemeral-storage).
pub fn pod_fields(uid: &str, backend: Backend, storage: &Path) -> PodFields {
    PodFields {
        uid: uid.to_string(),
        // On the shared network the supervisor fills it in once the holder leased it.
        pod_ip: match backend {
            Backend::Shared => LEASED_POD_IP.to_string(),
            other => pod_ip(other),
        },
        host_ip: host_ip().to_string(),
        node_name: node_name(),
        node: allocatable(storage),
        service_env: Vec::new(),
    }
}

/// The node's allocatable resources: online CPUs, MemTotal, and the size of the filesystem
/// holding `storage` (0 when unknown).
pub fn allocatable(storage: &Path) -> NodeResources {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text))
        .unwrap_or(0);
    let storage = existing_ancestor(storage)
        .and_then(|dir| nix::sys::statvfs::statvfs(dir).ok())
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0);
    NodeResources {
        cpu_millis: cpus * 1000,
        memory_bytes: memory,
        ephemeral_storage_bytes: storage,
    }
}

fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| p.exists())
}

/// MemTotal of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn meminfo() {
        assert_eq!(
            mem_total("MemTotal:       16303932 kB\nMemFree: 1 kB\n"),
            Some(16303932 * 1024)
        );
    }

    #[test]
    fn this_host() {
        let fields = pod_fields("u", Backend::Slirp4netns, Path::new("/tmp/nonexistent/x"));
        assert_eq!(fields.pod_ip, "10.0.2.100");
        assert!(fields.host_ip.parse::<Ipv4Addr>().is_ok());
        assert!(fields.node.cpu_millis >= 1000);
        assert!(fields.node.memory_bytes > 0);
        assert!(fields.node.ephemeral_storage_bytes > 0);
        let host = pod_fields("u", Backend::Host, Path::new("/"));
        assert_eq!(host.pod_ip, host.host_ip);
        assert_eq!(
            pod_fields("u", Backend::None, Path::new("/")).pod_ip,
            "127.0.0.1"
        );
    }
}
