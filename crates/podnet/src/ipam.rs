//! Pod addresses from the network's subnet (default 10.89.0.0/24, gateway .1).
//!
//! The leases live in `ipam.json` in the network's directory, read and written under an
//! exclusive flock of `ipam.lock` (the file itself is replaced by rename, so it cannot carry
//! the lock): two processes never lease one address.
//!
//! **Who owns a lease.** A lease names two processes, each by pid *and* start time (field 22
//! of /proc/PID/stat, so a reused pid is not mistaken for the old process): the pod's process
//! that holds its network namespace, and the holder whose bridge the pod's veth is on. The
//! lease is stale as soon as either has ended: the pod is gone, or its veth went with the
//! holder's network namespace. Stale leases are dropped whenever the file is updated, so a
//! crash of anyone leaves no address taken for long. Pids are those of the user's initial pid
//! namespace (the holder makes no pid namespace).
//!
//! **Which address.** The next free one after the last leased, wrapping around (as podman's
//! IPAM does): an address just released is reused last, so that a neighbour cache entry or a
//! connection of another pod to the old owner does not reach a new pod at once.

use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::PodnetError;

/// An IPv4 subnet: the network address and prefix length. Its first host address is the
/// gateway (the bridge); pods get the others, up to the one before broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// 10.89.0.0/24, podman's default for its own bridge networks' neighbour (10.88).
    pub const DEFAULT: Subnet = Subnet {
        network: Ipv4Addr::new(10, 89, 0, 0),
        prefix: 24,
    };

    /// 10.96.0.0/16: the Services' cluster IPs (kubeadm's default service CIDR is the
    /// /12 around it).
    pub const SERVICES: Subnet = Subnet {
        network: Ipv4Addr::new(10, 96, 0, 0),
        prefix: 16,
    };

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }
    /// The bridge's address: the network's first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }
    /// The addresses pods may get, in order.
    fn pod_range(&self) -> std::ops::RangeInclusive<u32> {
        let base = u32::from(self.network);
        (base + 2)..=(base + self.size() - 2)
    }
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & self.mask() == u32::from(self.network)
    }

    /// Whether the two share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// `text` as the pods' subnet (`[network] shared_subnet`): a subnet that overlaps
    /// neither the Services' cluster IPs nor the way out's own 10.0.2.0/24 (the pods would
    /// lose those addresses to their own).
    pub fn for_pods(text: &str) -> Result<Subnet, PodnetError> {
        let subnet: Subnet = text.parse()?;
        let uplink = Subnet {
            network: Ipv4Addr::new(10, 0, 2, 0),
            prefix: 24,
        };
        for (taken, what) in [
            (Subnet::SERVICES, "the Services' cluster IPs"),
            (uplink, "the way out's own network"),
        ] {
            if subnet.overlaps(&taken) {
                return Err(PodnetError::BadSubnet {
                    text: text.to_string(),
                    reason: format!("it overlaps {taken} ({what})"),
                });
            }
        }
        Ok(subnet)
    }
    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }
    /// The position of `address` in the subnet (0 is the network address).
    pub fn offset(&self, address: Ipv4Addr) -> u32 {
        u32::from(address) - u32::from(self.network)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> String {
        subnet.to_string()
    }
}

impl TryFrom<String> for Subnet {
    type Error = PodnetError;
    fn try_from(text: String) -> Result<Subnet, PodnetError> {
        text.parse()
    }
}

impl FromStr for Subnet {
    type Err = PodnetError;
    fn from_str(text: &str) -> Result<Subnet, PodnetError> {
        let bad = |reason: &str| PodnetError::BadSubnet {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let (address, prefix) = text.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("not a prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be 8 to 30"));
        }
        let subnet = Subnet {
            network: address,
            prefix,
        };
        if u32::from(address) & !subnet.mask() != 0 {
            return Err(bad("host bits are set"));
        }
        Ok(subnet)
    }
}

/// A process, by pid and start time (clock ticks after boot, /proc/PID/stat field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessId {
    /// The process `pid` as it is now, if it exists and has not ended (a zombie, ended but
    /// not yet reaped, counts as ended).
    pub fn of(pid: u32) -> Option<ProcessId> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (state, start_time) = parse_stat(&stat)?;
        if matches!(state, 'Z' | 'X' | 'x') {
            return None;
        }
        Some(ProcessId { pid, start_time })
    }

    /// The calling process.
    pub fn current() -> ProcessId {
        ProcessId::of(std::process::id()).expect("/proc/self/stat is readable")
    }

    /// Whether this very process still exists (not a later one with its pid).
    pub fn is_alive(&self) -> bool {
        ProcessId::of(self.pid).is_some_and(|now| now.start_time == self.start_time)
    }
}

/// The state (field 3) and start time (field 22) of a /proc/PID/stat line. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// One leased address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// The process that holds the pod's network namespace.
    pub pod: ProcessId,
    /// The holder the pod is attached to.
    pub holder: ProcessId,
    /// What the pod is called (`namespace/name`), for people reading the file.
    pub name: String,
}

/// The contents of `ipam.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// The address leased last: the search for a free one starts after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Ipv4Addr>,
    #[serde(default)]
    pub leases: Vec<Lease>,
}

impl Leases {
    /// Drops the leases whose pod or holder is no longer `alive`; returns them.
    pub fn prune(&mut self, alive: impl Fn(&ProcessId) -> bool) -> Vec<Lease> {
        let (keep, stale): (Vec<Lease>, Vec<Lease>) = std::mem::take(&mut self.leases)
            .into_iter()
            .partition(|lease| alive(&lease.pod) && alive(&lease.holder));
        self.leases = keep;
        stale
    }

    /// Leases a free address of `subnet` to `pod` (attached to `holder`), after dropping stale
    /// leases. A pod that has a lease already gets an error: one address per pod.
    pub fn allocate(
        &mut self,
        subnet: &Subnet,
        pod: ProcessId,
        holder: ProcessId,
        name: &str,
        alive: impl Fn(&ProcessId) -> bool,
    ) -> Result<Ipv4Addr, PodnetError> {
        self.prune(&alive);
        if let Some(lease) = self.leases.iter().find(|l| l.pod == pod) {
            return Err(PodnetError::Refused(format!(
                "process {} already has address {}",
                pod.pid, lease.address
            )));
        }
        let range = subnet.pod_range();
        let (first, last) = (*range.start(), *range.end());
        let start = match self.last.map(u32::from) {
            Some(previous) if range.contains(&previous) => previous + 1,
            _ => first,
        };
        let taken = |candidate: u32| {
            self.leases
                .iter()
                .any(|l| u32::from(l.address) == candidate)
        };
        let count = last - first + 1;
        let found = (0..count)
            .map(|i| first + (start - first + i) % count)
            .find(|&candidate| !taken(candidate))
            .ok_or_else(|| PodnetError::Exhausted {
                subnet: subnet.to_string(),
                leased: self.leases.len(),
            })?;
        let address = Ipv4Addr::from(found);
        self.leases.push(Lease {
            address,
            pod,
            holder,
            name: name.to_string(),
        });
        self.last = Some(address);
        Ok(address)
    }

    /// Ends the lease of `pod`; returns its address.
    pub fn release(&mut self, pod: &ProcessId) -> Option<Ipv4Addr> {
        let index = self.leases.iter().position(|l| &l.pod == pod)?;
        Some(self.leases.remove(index).address)
    }
}

/// `ipam.json` and its lock.
#[derive(Debug, Clone)]
pub struct LeaseFile {
    path: PathBuf,
    lock: PathBuf,
    /// Whether a lease's process still exists ([`ProcessId::is_alive`]; tests fake it).
    alive: fn(&ProcessId) -> bool,
}

impl LeaseFile {
    pub fn new(path: &Path, lock: &Path) -> LeaseFile {
        LeaseFile {
            path: path.to_path_buf(),
            lock: lock.to_path_buf(),
            alive: ProcessId::is_alive,
        }
    }

    /// The network's lease file.
    pub fn of(paths: &crate::Paths) -> LeaseFile {
        LeaseFile::new(&paths.leases(), &paths.leases_lock())
    }

    /// Runs `change` on the leases under the lock, with the stale ones dropped first, and
    /// writes the result back (atomically: a new file renamed over the old).
    pub fn update<T>(&self, change: impl FnOnce(&mut Leases) -> T) -> Result<T, PodnetError> {
        let _lock = Flock::exclusive(&self.lock)?;
        let mut leases = self.read_unlocked()?;
        leases.prune(self.alive);
        let result = change(&mut leases);
        self.write_unlocked(&leases)?;
        Ok(result)
    }

    /// The live leases (stale ones are dropped from the file too).
    pub fn live(&self) -> Result<Vec<Lease>, PodnetError> {
        self.update(|leases| leases.leases.clone())
    }

    fn read_unlocked(&self) -> Result<Leases, PodnetError> {
        read_json(&self.path).map_err(|e| match e {
            PodnetError::BadStateFile { path, reason } => {
                PodnetError::BadLeaseFile { path, reason }
            }
            other => other,
        })
    }

    fn write_unlocked(&self, leases: &Leases) -> Result<(), PodnetError> {
        store_json(&self.path, leases, leases.leases.is_empty())
    }
}

/// One of the network's JSON state files (`T::default()` when it does not exist yet); the
/// caller holds its lock.
pub(crate) fn read_json<T: Default + for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<T, PodnetError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| PodnetError::BadStateFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(PodnetError::io(format!("cannot read {}", path.display()))(
            e,
        )),
    }
}

/// Replaces a JSON state file atomically (a new file renamed over the old); the caller holds
/// its lock.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PodnetError> {
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).expect("state files serialize");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&text)?;
        file.sync_data()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(PodnetError::io(format!("cannot write {}", path.display())))
}

/// Stores a JSON state file, or removes it when it holds nothing (`empty`), so that a
/// network with no pod and no Service keeps no state file, only its lock files (which
/// stay: removing a lock file another process is about to lock would let two hold it).
/// [`read_json`] reads a missing file as the default. The caller holds its lock.
pub(crate) fn store_json<T: Serialize>(
    path: &Path,
    value: &T,
    empty: bool,
) -> Result<(), PodnetError> {
    if !empty {
        return write_json(path, value);
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(PodnetError::io(format!("cannot remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

/// An exclusive flock on a file (created if needed), released when dropped.
pub(crate) struct Flock {
    _file: std::fs::File,
}

impl Flock {
    /// Waits for the lock.
    pub fn exclusive(path: &Path) -> Result<Flock, PodnetError> {
        Self::take(path, libc::LOCK_EX)?
            .ok_or_else(|| PodnetError::io("flock")(std::io::ErrorKind::WouldBlock.into()))
    }

    /// Takes the lock if nobody holds it; `None` if someone does.
    pub fn try_exclusive(path: &Path) -> Result<Option<Flock>, PodnetError> {
        Self::take(path, libc::LOCK_EX | libc::LOCK_NB)
    }

    /// Whether someone holds the lock now (probed with a shared lock, released at once).
    pub fn is_held(path: &Path) -> Result<bool, PodnetError> {
        Ok(Self::take(path, libc::LOCK_SH | libc::LOCK_NB)?.is_none())
    }

    fn take(path: &Path, operation: libc::c_int) -> Result<Option<Flock>, PodnetError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(PodnetError::io(format!("cannot open {}", path.display())))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
                return Ok(Some(Flock { _file: file }));
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => return Ok(None),
                _ => {
                    return Err(PodnetError::io(format!("cannot lock {}", path.display()))(
                        error,
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_subnet_must_not_overlap_the_services_or_the_way_out() {
        assert_eq!(
            Subnet::for_pods("10.90.0.0/16").unwrap().gateway(),
            Ipv4Addr::new(10, 90, 0, 1)
        );
        for (text, why) in [
            ("10.96.5.0/24", "10.96.0.0/16"),
            ("10.0.0.0/8", "10.96.0.0/16"),
            ("10.0.2.0/28", "10.0.2.0/24"),
            ("10.89.0.1/24", "host bits"),
        ] {
            let error = Subnet::for_pods(text).unwrap_err().to_string();
            assert!(error.contains(text) && error.contains(why), "{error}");
        }
    }

    fn process(pid: u32) -> ProcessId {
        ProcessId { pid, start_time: 7 }
    }
    const HOLDER: ProcessId = ProcessId {
        pid: 1,
        start_time: 1,
    };

    fn everyone_alive(_: &ProcessId) -> bool {
        true
    }

    #[test]
    fn subnets_parse_and_name_their_gateway() {
        let subnet: Subnet = "10.89.0.0/24".parse().unwrap();
        assert_eq!(subnet, Subnet::DEFAULT);
        assert_eq!(subnet.gateway(), Ipv4Addr::new(10, 89, 0, 1));
        assert!(subnet.contains(Ipv4Addr::new(10, 89, 0, 200)));
        assert!(!subnet.contains(Ipv4Addr::new(10, 89, 1, 2)));
        for bad in [
            "10.89.0.1/24",
            "10.89.0.0",
            "10.89.0.0/31",
            "x/24",
            "10.89.0.0/ab",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&Subnet::DEFAULT).unwrap(),
            "\"10.89.0.0/24\""
        );
    }

    #[test]
    fn addresses_follow_the_last_one_and_skip_network_gateway_and_broadcast() {
        let subnet: Subnet = "10.1.0.0/29".parse().unwrap(); // pods: .2 to .6
        let mut leases = Leases::default();
        let got: Vec<Ipv4Addr> = (0..5)
            .map(|i| {
                leases
                    .allocate(&subnet, process(100 + i), HOLDER, "p", everyone_alive)
                    .unwrap()
            })
            .collect();
        let expected: Vec<Ipv4Addr> = (2..=6).map(|h| Ipv4Addr::new(10, 1, 0, h)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn an_exhausted_subnet_is_an_error_and_a_released_address_is_reused() {
        let subnet: Subnet = "10.1.0.0/29".parse().unwrap();
        let mut leases = Leases::default();
        for i in 0..5 {
            leases
                .allocate(&subnet, process(100 + i), HOLDER, "p", everyone_alive)
                .unwrap();
        }
        let err = leases
            .allocate(&subnet, process(200), HOLDER, "p", everyone_alive)
            .unwrap_err();
        assert!(
            matches!(err, PodnetError::Exhausted { leased: 5, .. }),
            "{err}"
        );
        assert_eq!(
            leases.release(&process(102)),
            Some(Ipv4Addr::new(10, 1, 0, 4))
        );
        assert_eq!(leases.release(&process(102)), None);
        let again = leases
            .allocate(&subnet, process(200), HOLDER, "p", everyone_alive)
            .unwrap();
        assert_eq!(again, Ipv4Addr::new(10, 1, 0, 4));
    }

    #[test]
    fn a_released_address_is_not_the_next_one_while_others_are_free() {
        let subnet = Subnet::DEFAULT;
        let mut leases = Leases::default();
        let first = leases
            .allocate(&subnet, process(1), HOLDER, "a", everyone_alive)
            .unwrap();
        leases.release(&process(1));
        let second = leases
            .allocate(&subnet, process(2), HOLDER, "b", everyone_alive)
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(second, Ipv4Addr::new(10, 89, 0, 3));
    }

    #[test]
    fn leases_of_a_dead_pod_or_a_dead_holder_are_reclaimed() {
        let subnet: Subnet = "10.1.0.0/30".parse().unwrap(); // one pod address: .2
        let mut leases = Leases::default();
        leases
            .allocate(&subnet, process(10), HOLDER, "a", everyone_alive)
            .unwrap();
        let dead_pod = |p: &ProcessId| p.pid != 10;
        let address = leases
            .allocate(&subnet, process(11), HOLDER, "b", dead_pod)
            .unwrap();
        assert_eq!(address, Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(leases.leases.len(), 1);
        let other_holder = ProcessId {
            pid: 2,
            start_time: 2,
        };
        let dead_holder = |p: &ProcessId| *p != HOLDER;
        leases
            .allocate(&subnet, process(12), other_holder, "c", dead_holder)
            .unwrap();
        assert_eq!(leases.leases[0].pod, process(12));
    }

    #[test]
    fn one_address_per_pod() {
        let mut leases = Leases::default();
        leases
            .allocate(&Subnet::DEFAULT, process(1), HOLDER, "a", everyone_alive)
            .unwrap();
        let err = leases
            .allocate(&Subnet::DEFAULT, process(1), HOLDER, "a", everyone_alive)
            .unwrap_err();
        assert!(
            err.to_string().contains("already has address 10.89.0.2"),
            "{err}"
        );
    }

    #[test]
    fn start_time_is_read_after_the_command_name() {
        let stat =
            "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(stat), Some(('S', 123456)));
        let me = ProcessId::current();
        assert!(me.is_alive());
        assert!(!ProcessId {
            start_time: me.start_time + 1,
            ..me
        }
        .is_alive());
    }

    #[test]
    fn an_ended_unreaped_process_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while ProcessId::of(pid).is_some() {
            assert!(std::time::Instant::now() < deadline, "true did not end");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "a zombie"
        );
        child.wait().unwrap();
    }

    #[test]
    fn the_file_keeps_live_leases_and_drops_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = LeaseFile::new(&dir.path().join("ipam.json"), &dir.path().join("ipam.lock"));
        let me = ProcessId::current();
        let gone = ProcessId {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        let a = file
            .update(|l| l.allocate(&Subnet::DEFAULT, me, me, "live", |_| true))
            .unwrap()
            .unwrap();
        file.update(|l| l.allocate(&Subnet::DEFAULT, gone, me, "stale", |_| true))
            .unwrap()
            .unwrap();
        // The stale lease was written (allocate was told everyone lives), then dropped on read.
        let live = file.live().unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].address, live[0].name.as_str()), (a, "live"));
        let text = std::fs::read_to_string(dir.path().join("ipam.json")).unwrap();
        assert!(!text.contains("stale"), "{text}");
        // The last lease released: no file left, and none read.
        file.update(|l| l.release(&me)).unwrap();
        assert!(!dir.path().join("ipam.json").exists());
        assert!(file.live().unwrap().is_empty());
    }

    #[test]
    fn two_threads_never_get_one_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = LeaseFile::new(&dir.path().join("ipam.json"), &dir.path().join("ipam.lock"));
        file.alive = |_| true;
        let me = ProcessId::current();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let file = file.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .map(|i| {
                            let pod = ProcessId {
                                pid: 1_000_000 + t * 100 + i,
                                start_time: me.start_time,
                            };
                            file.update(|l| l.allocate(&Subnet::DEFAULT, pod, me, "p", |_| true))
                                .unwrap()
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Ipv4Addr> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 40);
    }
}
