//! Links, addresses and routes over rtnetlink, in process: what `ip link/addr/route` would do.
//!
//! Built on `netlink-packet-route` and `netlink-sys` (the versions libcontainer, hence
//! podrun-runtime, already compiles), used synchronously: one request, then its
//! acknowledgement. `rtnetlink` wraps the same packets in an async connection that needs a
//! runtime; the holder is a single-threaded process that forks, and each request here is a
//! few microseconds, so a blocking socket is simpler and cheaper.
//!
//! A netlink socket acts on the network namespace it was *created* in. [`Netlink::open_in`]
//! creates one in another namespace (enter it, create the socket, come back), so one
//! single-threaded process configures its own namespace and a pod's.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::PodnetError;

/// An rtnetlink socket bound to one network namespace.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// A socket in the caller's network namespace.
    pub fn open() -> Result<Netlink, PodnetError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err("cannot open a socket"))?;
        socket.bind_auto().map_err(err("cannot bind the socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(err("cannot connect the socket"))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// A socket in the network namespace `netns` (a `/proc/PID/ns/net` file). The caller
    /// must be single-threaded (it enters `netns` for a moment) and hold CAP_SYS_ADMIN over
    /// the user namespace that owns it.
    pub fn open_in(netns: &File) -> Result<Netlink, PodnetError> {
        let own = crate::nsfd::open("self", "net")?;
        crate::nsfd::enter(
            netns,
            libc::CLONE_NEWNET,
            "cannot enter the pod's network namespace",
        )?;
        let socket = Netlink::open();
        crate::nsfd::enter(
            &own,
            libc::CLONE_NEWNET,
            "cannot return to the holder's network namespace",
        )
        .expect("a process can always return to its own network namespace");
        socket
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, PodnetError> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            RouteNetlinkMessage::GetLink(message),
            0,
            &format!("find link {name}"),
        ) {
            Ok(Some(RouteNetlinkMessage::NewLink(link))) => Ok(Some(link.header.index)),
            Ok(_) => Ok(None),
            Err(PodnetError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The index of the link called `name`; an error if there is none.
    pub fn require_link(&mut self, name: &str) -> Result<u32, PodnetError> {
        self.link_index(name)?.ok_or_else(|| PodnetError::Netlink {
            what: format!("no link {name}"),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        })
    }

    /// Creates a bridge (`ip link add NAME type bridge mtu MTU`); returns its index.
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<u32, PodnetError> {
        let mut message = LinkMessage::default();
        message.attributes.extend([
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ]);
        self.create_link(message, name)?;
        self.require_link(name)
    }

    /// Creates a veth pair: `name` here, its peer `peer_name` directly in the network
    /// namespace `peer_netns` (`ip link add NAME mtu MTU type veth peer name PEER mtu MTU
    /// netns FD`). Returns the index of `name`.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer_name: &str,
        peer_netns: &File,
        mtu: u32,
    ) -> Result<u32, PodnetError> {
        let mut peer = LinkMessage::default();
        peer.attributes.extend([
            LinkAttribute::IfName(peer_name.to_string()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::NetNsFd(peer_netns.as_raw_fd()),
        ]);
        let mut message = LinkMessage::default();
        message.attributes.extend([
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ]);
        self.create_link(message, name)?;
        self.require_link(name)
    }

    fn create_link(&mut self, message: LinkMessage, name: &str) -> Result<(), PodnetError> {
        self.request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("cannot create link {name}"),
        )
        .map(drop)
    }

    /// Deletes link `index` (a veth takes its peer with it).
    pub fn delete_link(&mut self, index: u32) -> Result<(), PodnetError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.request(
            RouteNetlinkMessage::DelLink(message),
            0,
            &format!("cannot delete link {index}"),
        )
        .map(drop)
    }

    /// Sets link `index` up (`ip link set up`).
    pub fn set_up(&mut self, index: u32) -> Result<(), PodnetError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        self.request(
            RouteNetlinkMessage::SetLink(message),
            0,
            &format!("cannot set link {index} up"),
        )
        .map(drop)
    }

    /// Sets the MTU of link `index`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), PodnetError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(
            RouteNetlinkMessage::SetLink(message),
            0,
            &format!("cannot set the MTU of link {index}"),
        )
        .map(drop)
    }

    /// Makes link `index` a port of bridge `bridge` (`ip link set master`).
    pub fn set_controller(&mut self, index: u32, bridge: u32) -> Result<(), PodnetError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes.push(LinkAttribute::Controller(bridge));
        self.request(
            RouteNetlinkMessage::SetLink(message),
            0,
            &format!("cannot attach link {index} to bridge {bridge}"),
        )
        .map(drop)
    }

    /// Adds `address/prefix` to link `index` (`ip addr add`).
    pub fn add_address(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), PodnetError> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message.attributes.extend([
            AddressAttribute::Local(address.into()),
            AddressAttribute::Address(address.into()),
        ]);
        if prefix < 31 {
            let broadcast = u32::from(address) | (u32::MAX >> prefix);
            message
                .attributes
                .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("cannot add address {address}/{prefix} to link {index}"),
        )
        .map(drop)
    }

    /// Adds the default route via `gateway` (`ip route add default via GATEWAY`).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), PodnetError> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Static;
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("cannot add the default route via {gateway}"),
        )
        .map(drop)
    }

    /// Sends one request and waits for its answer: the kernel's acknowledgement (`None`) or,
    /// for a query, the message it returned.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Option<RouteNetlinkMessage>, PodnetError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buffer = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket.send(&buffer, 0).map_err(err(what))?;

        let mut answer = None;
        loop {
            let (bytes, _) = self.socket.recv_from_full().map_err(err(what))?;
            let mut offset = 0;
            while offset < bytes.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[offset..])
                    .map_err(|e| PodnetError::Netlink {
                        what: what.to_string(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                let length = reply.header.length as usize;
                let ours = reply.header.sequence_number == self.sequence;
                match reply.payload {
                    _ if !ours => {}
                    NetlinkPayload::Error(error) => {
                        return match error.code {
                            None => Ok(answer),
                            Some(code) => Err(PodnetError::Netlink {
                                what: what.to_string(),
                                source: std::io::Error::from_raw_os_error(-code.get()),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(answer),
                    NetlinkPayload::InnerMessage(inner) => answer = Some(inner),
                    _ => {}
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }
}

fn err(what: &str) -> impl FnOnce(std::io::Error) -> PodnetError + '_ {
    move |source| PodnetError::Netlink {
        what: what.to_string(),
        source,
    }
}
