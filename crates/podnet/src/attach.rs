//! Attaching a pod, the holder's side: what it does for a process that has unshared a user
//! namespace (a child of the holder's) and a network namespace, and waits.
//!
//! 1. Checks the namespaces, so that each trap of shared/research/cluster-network.md is an
//!    error that says what is wrong: the pod's user namespace must be new (the pod has
//!    unshared it: writing the map of a process still in the holder's namespace fails with
//!    EPERM) and a *child* of the holder's (else the holder has no CAP_NET_ADMIN over the
//!    pod's network namespace); its network namespace must be new and owned by it.
//! 2. Writes the pod's uid and gid maps itself (newuidmap refuses inside the holder's
//!    namespace, as it checks /etc/subuid for the wrong user): the holder's own ids, each
//!    extent as it is (`0 0 1`, `1 1 65535`), because every extent of a child's map must lie
//!    in one extent of the parent's. The pod's ids are thus the holder's: the user's uid and
//!    subordinate range, as a pod has today.
//! 3. Leases an address ([`crate::ipam`]).
//! 4. Creates the veth pair, the pod's end (`eth0`) directly in the pod's network namespace,
//!    the holder's end (`prN`, N the address's offset in the subnet) on the bridge; then, in
//!    the pod's namespace, `lo` and `eth0` up, the address, the default route via the bridge.
//!
//! A failure undoes what was done (lease, veth). A pod is detached when its process ends
//! (the holder watches its pidfd) or on request: the lease is released and the veth deleted.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use crate::ipam::{LeaseFile, ProcessId, Subnet};
use crate::netlink::Netlink;
use crate::protocol::{AttachedPod, Attachment};
use crate::{nsfd, PodnetError};

/// The pod's interface name in its own namespace.
pub const POD_INTERFACE: &str = "eth0";

/// What the holder needs to attach pods: its own namespace's netlink socket and bridge.
pub(crate) struct Network {
    pub netlink: Netlink,
    pub bridge: u32,
    pub subnet: Subnet,
    pub mtu: u32,
    pub leases: LeaseFile,
    pub holder: ProcessId,
    /// The maps written to each pod: the holder's own, extent by extent, as identities.
    pub uid_map: String,
    pub gid_map: String,
}

/// A pod attached to the holder.
pub(crate) struct Attached {
    pub pod: ProcessId,
    pub name: String,
    pub address: Ipv4Addr,
    pub host_interface: String,
    /// Readable once the pod's process has ended.
    pub pidfd: OwnedFd,
    /// Its published ports (freed on detach).
    pub forwards: Vec<crate::publish::Published>,
    /// It may reach the host's loopback ([`crate::nft::loopback_ruleset`]).
    pub host_loopback: bool,
    /// The pod as Services and DNS see it (with its address and readiness).
    pub record: crate::cluster::PodRecord,
}

impl Attached {
    pub fn info(&self) -> AttachedPod {
        AttachedPod {
            pid: self.pod.pid,
            name: self.name.clone(),
            address: self.address,
            host_interface: self.host_interface.clone(),
            ready: self.record.ready,
        }
    }
}

/// The identity map over the ids of `own_map` (a /proc/PID/uid_map text): each extent's
/// inside range mapped onto itself.
pub fn identity_map(own_map: &str) -> String {
    own_map
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let inside = fields.next()?;
            let _outside = fields.next()?;
            let size = fields.next()?;
            Some(format!("{inside} {inside} {size}\n"))
        })
        .collect()
}

impl Network {
    /// Attaches process `pid` (see the module's steps).
    pub fn attach(
        &mut self,
        pid: u32,
        name: &str,
        identity: &crate::protocol::PodIdentity,
    ) -> Result<(Attached, Attachment), PodnetError> {
        let pidfd = nsfd::pidfd(pid)?;
        let pod = ProcessId::of(pid)
            .ok_or_else(|| PodnetError::Refused(format!("process {pid} does not exist")))?;
        let netns = check_namespaces(pid)?;
        self.write_maps(pid)?;
        let address = self
            .leases
            .update(|l| l.allocate(&self.subnet, pod, self.holder, name, ProcessId::is_alive))??;
        let host_interface = format!("pr{}", self.subnet.offset(address));
        let attached = Attached {
            pod,
            name: name.to_string(),
            address,
            host_interface,
            pidfd,
            forwards: Vec::new(),
            host_loopback: false,
            record: identity.record(address),
        };
        match self.plumb(&attached, &netns) {
            Ok(attachment) => Ok((attached, attachment)),
            Err(e) => {
                self.detach(&attached);
                Err(e)
            }
        }
    }

    /// Releases the pod's address and deletes its veth (gone already if its namespace is).
    pub fn detach(&mut self, attached: &Attached) {
        if let Err(e) = self.leases.update(|l| l.release(&attached.pod)) {
            tracing::warn!("cannot release the address of {}: {e}", attached.name);
        }
        self.delete_link(&attached.host_interface);
    }

    fn delete_link(&mut self, name: &str) {
        if let Ok(Some(index)) = self.netlink.link_index(name) {
            if let Err(e) = self.netlink.delete_link(index) {
                tracing::warn!("cannot delete {name}: {e}");
            }
        }
    }

    fn write_maps(&self, pid: u32) -> Result<(), PodnetError> {
        for (file, map) in [("uid_map", &self.uid_map), ("gid_map", &self.gid_map)] {
            let path = format!("/proc/{pid}/{file}");
            let current = std::fs::read_to_string(&path)
                .map_err(PodnetError::io(format!("cannot read {path}")))?;
            if !current.trim().is_empty() {
                if normalise(&current) == normalise(map) {
                    continue;
                }
                return Err(PodnetError::Refused(format!(
                    "process {pid} has an id map already ({file}: {})",
                    current.trim()
                )));
            }
            std::fs::write(&path, map).map_err(PodnetError::io(format!(
                "cannot write {path} ({})",
                map.trim().replace('\n', ", ")
            )))?;
        }
        Ok(())
    }

    fn plumb(&mut self, attached: &Attached, netns: &File) -> Result<Attachment, PodnetError> {
        let host = attached.host_interface.as_str();
        let index = match self
            .netlink
            .create_veth(host, POD_INTERFACE, netns, self.mtu)
        {
            Err(PodnetError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                // Left by a pod whose namespace the kernel has not finished tearing down.
                self.delete_link(host);
                self.netlink
                    .create_veth(host, POD_INTERFACE, netns, self.mtu)?
            }
            other => other?,
        };
        self.netlink.set_controller(index, self.bridge)?;
        self.netlink.set_up(index)?;

        let mut pod = Netlink::open_in(netns)?;
        let lo = pod.require_link("lo")?;
        pod.set_up(lo)?;
        let eth0 = pod.require_link(POD_INTERFACE)?;
        pod.add_address(eth0, attached.address, self.subnet.prefix())?;
        pod.set_up(eth0)?;
        pod.add_default_route(self.subnet.gateway())?;
        Ok(Attachment {
            address: attached.address,
            prefix: self.subnet.prefix(),
            gateway: self.subnet.gateway(),
            interface: POD_INTERFACE.into(),
            mtu: self.mtu,
        })
    }
}

fn normalise(map: &str) -> Vec<Vec<&str>> {
    map.lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|fields: &Vec<&str>| !fields.is_empty())
        .collect()
}

/// The checks of step 1; returns the pod's network namespace.
fn check_namespaces(pid: u32) -> Result<File, PodnetError> {
    let own_user = nsfd::open("self", "user")?;
    let own_net = nsfd::open("self", "net")?;
    let not_a_child = || {
        PodnetError::Refused(format!(
            "the user namespace of process {pid} is not a child of the holder's: the pod must \
             enter the holder's user namespace (setns /proc/HOLDER/ns/user) before it unshares"
        ))
    };
    // The kernel lets the holder open a process's namespaces only if it has the process's
    // capabilities: a pod in a sibling user namespace is refused here already.
    let open_pods = |kind: &str| match nsfd::open(&pid.to_string(), kind) {
        Err(PodnetError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Err(not_a_child())
        }
        other => other,
    };
    let pod_user = open_pods("user")?;
    let pod_net = open_pods("net")?;
    if nsfd::same(&pod_user, &own_user)? {
        return Err(PodnetError::Refused(format!(
            "process {pid} is still in the holder's user namespace: it must unshare its own \
             (a child of the holder's) before it asks to be attached"
        )));
    }
    let parent = nsfd::parent(&pod_user);
    if !matches!(parent, Ok(ref p) if nsfd::same(p, &own_user)?) {
        return Err(not_a_child());
    }
    if nsfd::same(&pod_net, &own_net)? {
        return Err(PodnetError::Refused(format!(
            "process {pid} is in the holder's network namespace: it must unshare its own"
        )));
    }
    if !nsfd::same(&nsfd::owner(&pod_net)?, &pod_user)? {
        return Err(PodnetError::Refused(format!(
            "the network namespace of process {pid} is not owned by its user namespace: \
             unshare both at once (CLONE_NEWUSER | CLONE_NEWNET)"
        )));
    }
    Ok(pod_net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_map_is_the_holders_ids_extent_by_extent() {
        // trap 3: `0 0 65536` would span two extents of the parent's map and fail.
        let holder = "         0       1002          1\n         1     100000      65535\n";
        assert_eq!(identity_map(holder), "0 0 1\n1 1 65535\n");
        assert_eq!(identity_map("0 0 4294967295\n"), "0 0 4294967295\n");
    }

    #[test]
    fn maps_compare_whatever_the_spacing() {
        assert_eq!(
            normalise("   0  0  1\n 1 1 65535\n"),
            normalise("0 0 1\n1 1 65535")
        );
        assert_ne!(normalise("0 0 1\n"), normalise("0 1 1\n"));
    }
}
