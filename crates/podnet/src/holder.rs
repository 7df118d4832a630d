//! The network holder: one long-lived process per user that owns the shared network.
//!
//! Started by [`crate::start`] as `<binary> <its holder command>`, which calls [`main`]. It
//! forks once so that its starter can reap the first process and return (the holder is then
//! nobody's child but init's or a subreaper's), starts a session of its own (a Ctrl-C of the
//! starter's terminal does not reach it), and then:
//!
//! 1. takes `holder.lock` (flock, for as long as it lives: the proof that it runs);
//! 2. enters a new user namespace U0 with the user's full subuid/subgid map (newuidmap and
//!    newgidmap, as every podrun pod does: [`podrun_userns::enter_user_namespace`]);
//! 3. forks slirp4netns' launcher while still in the host's network namespace (slirp4netns
//!    must make its connections there), as a pod's supervisor does;
//! 4. unshares its network namespace N0: `lo` up, the bridge (`podrun0`, the gateway address,
//!    MTU 65520 as slirp4netns'), `net.ipv4.ip_forward=1`;
//! 5. releases slirp4netns on its own pid (`--configure`: tap0 10.0.2.100/24 and the default
//!    route), waits for it, and loads the masquerade rule ([`crate::nft`]);
//! 6. listens on `holder.sock`, writes `holder.json` and tells its starter it is ready.
//!
//! Then it serves requests ([`crate::protocol`]) and watches a pidfd per attached pod (the
//! pod's address is released when its process ends) and one of slirp4netns (if the helper
//! dies, the holder ends: the network has no way out any more).
//!
//! **How it ends.** With no pod attached for [`HolderConfig::linger`], it takes `start.lock`
//! (so no client is between finding it and connecting), checks that no connection waits,
//! removes its socket and `holder.json`, and exits. Killed in any way, nothing stays:
//! slirp4netns holds the read end of an `--exit-fd` pipe whose write end only the holder has,
//! so the kernel's closing of it ends slirp4netns; N0 and its bridge and veths go with their
//! last process; U0 goes once no pod's user namespace (its children) is left. The socket and
//! `holder.json` stay as files; the next holder replaces them, and leases naming the dead
//! holder are stale ([`crate::ipam`]).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};

use crate::attach::{Attached, Network};
use crate::ipam::{Flock, LeaseFile, ProcessId, Subnet};
use crate::netlink::Netlink;
use crate::protocol::{self, Answer, HolderFile, PodIdentity, Request, ServiceStatus, Status};
use crate::publish::Publisher;
use crate::relay::HostSide;
use crate::services::ServiceFile;
use crate::services_nft::ServiceNetwork;
use crate::serving::Serving;
use crate::uplink::{self, Uplink, UplinkKind};
use crate::{nsfd, Paths, PodnetError};

/// The environment variable that passes the ready pipe's descriptor to the holder.
pub const READY_FD_ENV: &str = "PODRUN_PODNET_READY_FD";
/// slirp4netns' tap device in the holder's namespace: the way out.
pub const UPLINK: &str = "tap0";
/// Where the pods' pidfds start in the poll set (after the listener, slirp4netns' pidfd and
/// the DNS server's two sockets).
const FIRST_POD_FD: usize = 4;
/// How long one client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How the shared network is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderConfig {
    pub subnet: Subnet,
    /// The bridge in the holder's namespace.
    pub bridge: String,
    /// Of the bridge and every veth: slirp4netns' 65520 (4–7× the throughput of 1500).
    pub mtu: u32,
    /// How long the holder stays with no pod attached (also after it starts).
    pub linger: Duration,
    /// Let every pod reach the host's 127.0.0.1 at 10.0.2.2. Otherwise only those attached
    /// with `host_loopback` may ([`crate::nft::loopback_ruleset`]); the way out always maps
    /// it (slirp4netns without `--disable-host-loopback`, pasta without `--no-map-gw`), for
    /// them and for a DNS upstream there.
    pub allow_host_loopback: bool,
    /// The way out (`[network] shared_uplink`).
    pub uplink: UplinkKind,
    /// Where the DNS server forwards names outside the cluster, as the holder's namespace
    /// reaches it ([`HolderConfig::forward_dns_to`]).
    pub dns_upstream: std::net::SocketAddrV4,
}

impl HolderConfig {
    /// Forwards names outside the cluster to `upstream`, an address as the host sees it
    /// (`[network] cluster_dns_upstream`). The host's 127.0.0.1 is reached where the way
    /// out maps it.
    pub fn forward_dns_to(&mut self, upstream: std::net::SocketAddrV4) {
        self.dns_upstream = if upstream.ip().is_loopback() {
            std::net::SocketAddrV4::new(uplink::HOST_LOOPBACK, upstream.port())
        } else {
            upstream
        };
    }
}

impl Default for HolderConfig {
    fn default() -> Self {
        HolderConfig {
            subnet: Subnet::DEFAULT,
            bridge: "podrun0".into(),
            mtu: 65520,
            linger: Duration::from_secs(10),
            allow_host_loopback: false,
            uplink: UplinkKind::default(),
            dns_upstream: uplink::DNS_FORWARDER,
        }
    }
}

/// The holder process's whole life; a binary's holder command calls it first thing, while
/// single-threaded, and exits with what it returns.
pub fn main(paths: &Paths, config: &HolderConfig) -> i32 {
    let ready = std::env::var(READY_FD_ENV)
        .ok()
        .and_then(|fd| fd.parse::<i32>().ok())
        // SAFETY: the starter passed this descriptor for us alone.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    std::env::remove_var(READY_FD_ENV);
    // SAFETY: single-threaded (the caller's promise); the parent only exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            report(ready, &format!("error: cannot fork: {e}"));
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    let mut ready = ready;
    match run(paths, config, &mut ready) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("podrun network holder: {e}");
            report(ready.take(), &format!("error: {e}"));
            1
        }
    }
}

fn report(ready: Option<OwnedFd>, line: &str) {
    if let Some(fd) = ready {
        let mut file = std::fs::File::from(fd);
        let _ = std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes());
    }
}

/// Everything the running holder has.
struct Holder {
    paths: Paths,
    config: HolderConfig,
    network: Network,
    listener: UnixListener,
    /// The way out: slirp4netns or pasta ([`crate::uplink`]).
    slirp: Uplink,
    slirp_pidfd: OwnedFd,
    pods: Vec<Attached>,
    serving: Serving,
    /// How published ports and node ports reach the holder's namespace.
    publisher: Publisher,
    /// The loopback table loaded last.
    loopback_loaded: String,
}

/// The loopback table for the attached `pods`.
fn loopback_ruleset(config: &HolderConfig, pods: &[Attached]) -> String {
    use crate::nft::LoopbackAccess;
    let access = if config.allow_host_loopback {
        LoopbackAccess::Everyone
    } else {
        let allowed = pods.iter().filter(|p| p.host_loopback).map(|p| p.address);
        LoopbackAccess::Only(allowed.collect())
    };
    crate::nft::loopback_ruleset(uplink::HOST_LOOPBACK, &access)
}

fn run(
    paths: &Paths,
    config: &HolderConfig,
    ready: &mut Option<OwnedFd>,
) -> Result<(), PodnetError> {
    let _alive = Flock::try_exclusive(&paths.holder_lock())?.ok_or_else(|| {
        PodnetError::HolderStart("another network holder runs (holder.lock is taken)".into())
    })?;
    std::env::set_current_dir(&paths.dir).map_err(PodnetError::io(format!(
        "cannot enter {}",
        paths.dir.display()
    )))?;
    let me = ProcessId::current();
    let dir = &paths.dir;
    let early = uplink::before_user_namespace(config.uplink, dir, me.pid)?;
    let plan = podrun_userns::MappingPlan::for_current_user()?;
    podrun_userns::enter_user_namespace(&plan)?;
    let pending = uplink::after_user_namespace(early, dir, me.pid)?;
    let publisher = publisher_for(config.uplink, paths)?;
    unshare(CloneFlags::CLONE_NEWNET)
        .map_err(PodnetError::sys("cannot create the network namespace"))?;
    let (netlink, bridge) = set_up_namespace(config)?;
    let slirp = pending.start()?;
    // One transaction for both tables (one nft process on the first pod's start path), before
    // any pod is attached, and fatal: the pods must not find the host's loopback open.
    let loopback_loaded = loopback_ruleset(config, &[]);
    let masquerade = crate::nft::masquerade_ruleset(&config.subnet, UPLINK);
    crate::nft::load(&format!("{masquerade}{loopback_loaded}"))?;
    let slirp_pidfd = nsfd::pidfd(slirp.pid() as u32)?;

    let socket = paths.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(PodnetError::io(format!(
        "cannot listen on {}",
        socket.display()
    )))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(
        PodnetError::io(format!("cannot chmod {}", socket.display())),
    )?;
    let own_map = |file: &str| {
        std::fs::read_to_string(format!("/proc/self/{file}"))
            .map(|map| crate::attach::identity_map(&map))
            .map_err(PodnetError::io(format!("cannot read /proc/self/{file}")))
    };
    let network = Network {
        netlink,
        bridge,
        subnet: config.subnet,
        mtu: config.mtu,
        leases: LeaseFile::of(paths),
        holder: me,
        uid_map: own_map("uid_map")?,
        gid_map: own_map("gid_map")?,
    };
    let file = HolderFile {
        holder: me,
        slirp4netns_pid: slirp.pid() as u32,
    };
    std::fs::write(
        paths.holder_file(),
        serde_json::to_vec(&file).expect("serializes"),
    )
    .map_err(PodnetError::io("cannot write holder.json"))?;
    tracing::info!(
        pid = me.pid,
        slirp4netns = slirp.pid(),
        "network holder ready"
    );
    report(ready.take(), "ready");

    let serving = Serving::start(
        ServiceFile::of(paths),
        ServiceNetwork {
            pod_subnet: config.subnet,
            bridge: config.bridge.clone(),
            uplink: UPLINK.into(),
            gateway: config.subnet.gateway(),
        },
        config.dns_upstream,
    )?;
    let mut holder = Holder {
        paths: paths.clone(),
        config: config.clone(),
        network,
        listener,
        slirp,
        slirp_pidfd,
        pods: Vec::new(),
        serving,
        publisher,
        loopback_loaded,
    };
    holder.refresh();
    holder.serve()
}

/// slirp4netns publishes through its API socket; for pasta the holder relays, from a
/// thread left in the host's network namespace: call before unsharing the holder's own.
fn publisher_for(uplink: UplinkKind, paths: &Paths) -> Result<Publisher, PodnetError> {
    Ok(match uplink {
        UplinkKind::Slirp4netns => Publisher::Slirp {
            dir: paths.dir.clone(),
        },
        UplinkKind::Pasta => Publisher::Relay(
            HostSide::start().map_err(PodnetError::io("cannot start the host-ports thread"))?,
        ),
    })
}

/// Step 4: lo, the bridge with the gateway address, forwarding.
fn set_up_namespace(config: &HolderConfig) -> Result<(Netlink, u32), PodnetError> {
    let mut netlink = Netlink::open()?;
    let lo = netlink.require_link("lo")?;
    netlink.set_up(lo)?;
    let bridge = netlink.create_bridge(&config.bridge, config.mtu)?;
    netlink.add_address(bridge, config.subnet.gateway(), config.subnet.prefix())?;
    netlink.set_up(bridge)?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(PodnetError::io("cannot set net.ipv4.ip_forward=1"))?;
    // Published ports: slirp4netns sends a forwarded connection out of tap0 to the pod's
    // address and asks for it by ARP there; with proxy ARP the holder answers (it routes the
    // address to the bridge). tap0 does not exist yet: set for every interface made later.
    std::fs::write("/proc/sys/net/ipv4/conf/default/proxy_arp", "1").map_err(PodnetError::io(
        "cannot set net.ipv4.conf.default.proxy_arp=1",
    ))?;
    // Service connections are DNATed by the holder's IP layer (crate::services_nft); with
    // br_netfilter's default of 1 the bridged frames of a pod that reaches its own Service
    // would pass netfilter again and be lost. Absent without br_netfilter: the same as 0.
    let bridge_nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if std::path::Path::new(bridge_nf).exists() {
        std::fs::write(bridge_nf, "0").map_err(PodnetError::io(
            "cannot set net.bridge.bridge-nf-call-iptables=0",
        ))?;
    }
    Ok((netlink, bridge))
}

impl Holder {
    fn serve(&mut self) -> Result<(), PodnetError> {
        let mut idle_since = Some(Instant::now());
        // The holder is the whole podrun binary, and its start maps much of it: once quiet
        // it drops those pages, as a supervisor does (podrun_footprint).
        let mut shrinker = podrun_footprint::Shrinker::default();
        loop {
            let shrink = shrinker.round_ends();
            let linger_end = idle_since.map(|since| since + self.config.linger);
            let wake_at = linger_end.into_iter().chain(shrinker.due()).min();
            let timeout = match wake_at {
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    left.as_millis().min(i32::MAX as u128) as i32
                }
                None => -1,
            };
            let [dns, dns_upstream] = self.serving.fds();
            let mut fds: Vec<libc::pollfd> = [
                self.listener.as_fd().as_raw_fd(),
                self.slirp_pidfd.as_raw_fd(),
                dns,
                dns_upstream,
            ]
            .into_iter()
            .chain(self.pods.iter().map(|p| p.pidfd.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
            if shrink {
                podrun_footprint::Droppable::find().drop_now();
            }
            // SAFETY: poll on descriptors this process owns.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(PodnetError::io("poll")(error));
            }
            if fds[1].revents != 0 {
                return Err(PodnetError::HolderStart(
                    "slirp4netns ended; the holder ends with it".into(),
                ));
            }
            if fds[2].revents != 0 || fds[3].revents != 0 {
                self.serving.on_dns_readable();
            }
            let ended: Vec<usize> = (0..self.pods.len())
                .filter(|&i| fds[FIRST_POD_FD + i].revents != 0)
                .collect();
            for i in ended.iter().rev() {
                let pod = self.pods.remove(*i);
                tracing::info!(pid = pod.pod.pid, address = %pod.address, "pod ended");
                self.detach(pod);
            }
            if !ended.is_empty() {
                self.refresh();
            }
            if fds[0].revents != 0 {
                self.accept();
            }
            if !self.pods.is_empty() {
                idle_since = None;
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.config.linger && self.try_exit()? {
                return Ok(());
            }
        }
    }

    /// Ends the holder if no client is on its way: under `start.lock`, with no connection
    /// waiting. Returns whether it ended.
    fn try_exit(&mut self) -> Result<bool, PodnetError> {
        let Some(start) = Flock::try_exclusive(&self.paths.start_lock())? else {
            return Ok(false);
        };
        let mut waiting = [libc::pollfd {
            fd: self.listener.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on the listener, without waiting.
        if unsafe { libc::poll(waiting.as_mut_ptr(), 1, 0) } != 0 {
            return Ok(false);
        }
        let _ = std::fs::remove_file(self.paths.socket());
        let _ = std::fs::remove_file(self.paths.holder_file());
        uplink::remove_files(&self.paths.dir);
        tracing::info!(
            slirp4netns = self.slirp.pid(),
            "no pod left: the holder ends"
        );
        // The lock is released by the exit itself, after the files are gone.
        std::mem::forget(start);
        Ok(true)
    }

    fn accept(&mut self) {
        let Ok((mut stream, _)) = self.listener.accept() else {
            return;
        };
        let answer = match self.read_request(&mut stream) {
            Ok(request) => self.handle(request),
            Err(e) => refusal(e),
        };
        let _ = protocol::send(&mut stream, &answer);
    }

    fn read_request(&self, stream: &mut UnixStream) -> Result<Request, PodnetError> {
        let (_, uid) = protocol::peer(stream)?;
        if uid != nix::unistd::geteuid().as_raw() {
            return Err(PodnetError::Refused(format!(
                "only the holder's user may use it (the peer has uid {uid} here)"
            )));
        }
        let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
        protocol::receive(stream)
    }

    fn handle(&mut self, request: Request) -> Answer {
        match request {
            Request::Attach {
                pid,
                name,
                ports,
                identity,
                host_loopback,
            } => {
                let identity = identity.unwrap_or_else(|| PodIdentity::named(&name));
                match self.network.attach(pid, &name, &identity) {
                    Ok((mut attached, attachment)) => {
                        attached.host_loopback = host_loopback;
                        if let Err(e) = self.publish(&mut attached, &ports) {
                            self.detach(attached);
                            return refusal(e);
                        }
                        tracing::info!(pid, %name, address = %attachment.address, "pod attached");
                        self.pods.push(attached);
                        self.refresh();
                        Answer::Attached(attachment)
                    }
                    Err(e) => refusal(e),
                }
            }
            Request::Detach { pid } => match self.pods.iter().position(|p| p.pod.pid == pid) {
                Some(i) => {
                    let pod = self.pods.remove(i);
                    self.detach(pod);
                    self.refresh();
                    Answer::Detached
                }
                None => Answer::Error(format!("process {pid} is not attached")),
            },
            Request::Ready { pid, ready } => {
                match self.pods.iter_mut().find(|p| p.pod.pid == pid) {
                    Some(pod) => {
                        tracing::info!(pid, name = %pod.name, ready, "readiness");
                        pod.record.ready = ready;
                        self.refresh();
                        Answer::Done
                    }
                    None => Answer::Error(format!("process {pid} is not attached")),
                }
            }
            Request::Reload => match self.serving.reload() {
                Ok(()) => {
                    self.refresh();
                    Answer::Done
                }
                Err(e) => refusal(e),
            },
            Request::Status => Answer::Status(self.status()),
        }
    }

    /// Service forwarding, DNS and node ports after a change of pods or Services.
    fn refresh(&mut self) {
        let pods: Vec<_> = self.pods.iter().map(|p| p.record.clone()).collect();
        self.serving.refresh(&pods, &self.publisher);
        let loopback = loopback_ruleset(&self.config, &self.pods);
        if loopback != self.loopback_loaded {
            match crate::nft::load(&loopback) {
                Ok(()) => self.loopback_loaded = loopback,
                Err(e) => tracing::warn!("cannot load the host loopback's rules: {e}"),
            }
        }
    }

    fn status(&self) -> Status {
        let pods: Vec<_> = self.pods.iter().map(|p| p.record.clone()).collect();
        let services = self
            .serving
            .services()
            .iter()
            .map(|service| ServiceStatus {
                service: service.clone(),
                endpoints: service
                    .ports
                    .iter()
                    .map(|port| {
                        crate::cluster::endpoints(service, port, &pods)
                            .iter()
                            .map(|e| format!("{}:{}", e.address, e.port))
                            .collect()
                    })
                    .collect(),
            })
            .collect();
        Status {
            holder: self.network.holder,
            slirp4netns_pid: self.slirp.pid() as u32,
            subnet: self.config.subnet,
            pods: self.pods.iter().map(Attached::info).collect(),
            services,
        }
    }
}

impl Holder {
    /// Publishes `ports` to the pod's address ([`crate::publish`]). slirp4netns sends
    /// them out of tap0 to the pod's address; the holder routes that to the bridge, and
    /// answers slirp4netns' ARP for it on tap0 (proxy ARP, set at start). pasta's are
    /// relayed by the holder, which connects to the pod over the bridge.
    fn publish(
        &mut self,
        attached: &mut Attached,
        ports: &[podrun_network::PortMapping],
    ) -> Result<(), PodnetError> {
        for mapping in ports {
            let published = self.publisher.publish(mapping, attached.address)?;
            tracing::info!(%mapping, address = %attached.address, "published");
            attached.forwards.extend(published);
        }
        Ok(())
    }

    /// Frees the pod's host ports, releases its address and deletes its veth.
    fn detach(&mut self, mut attached: Attached) {
        for published in attached.forwards.drain(..) {
            if let Err(e) = self.publisher.unpublish(published) {
                tracing::warn!("cannot remove a published port of {}: {e}", attached.name);
            }
        }
        self.network.detach(&attached);
    }
}

/// The error answer for `error` (a refusal's own words: the client adds "refused").
fn refusal(error: PodnetError) -> Answer {
    match error {
        PodnetError::Refused(message) => Answer::Error(message),
        other => Answer::Error(other.to_string()),
    }
}
