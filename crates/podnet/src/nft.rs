//! The holder's nftables rules: the pod subnet masqueraded out of slirp4netns' tap device,
//! and kept from the host's loopback.
//!
//! How it is programmed: the `nft` binary (Debian's `nftables`), run by the holder inside its
//! own user and network namespaces, where it is root, with the ruleset on its standard input
//! (`nft -f -`, one atomic transaction). nftables' own interface is netlink too, but no
//! maintained Rust crate speaks it without the C libraries: `nftnl` binds libnftnl and libmnl
//! (their -dev packages at build time), `rustables` is a pure-Rust 0.x with few users, and
//! the `nftables` crate writes JSON for the same `nft` binary. docs/ARCHITECTURE.md ("Shared
//! pod network") says so; one table with one rule is little to own by hand later.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::PodnetError;

/// The table's name (family `ip`).
pub const TABLE: &str = "podrun";

/// The ruleset: traffic from the pods leaving through `uplink` gets the uplink's address.
/// Traffic between pods stays on the bridge, untouched.
pub fn masquerade_ruleset(subnet: &Subnet, uplink: &str) -> String {
    format!(
        "table ip {TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {subnet} oifname \"{uplink}\" masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// The table that keeps pods from the host's loopback (family `ip`).
pub const LOOPBACK_TABLE: &str = "podrun_loopback";

/// Who may reach the host's loopback, where the way out maps it (`host_loopback`, 10.0.2.2:
/// the holder always has it mapped, for a DNS upstream there and for the pods allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopbackAccess {
    /// Every pod (the holder's own `allow_host_loopback`).
    Everyone,
    /// Only the pods of these addresses (played with `[network] allow_host_loopback`); the
    /// others' new connections are refused at once, as on a node, where a pod cannot reach
    /// the node's loopback.
    Only(Vec<Ipv4Addr>),
}

/// The loopback table as one transaction that replaces the previous one. New connections
/// only: the host's own connections to a published port or node port come from
/// `host_loopback` (slirp4netns rewrites the host's 127.0.0.1 to it), and their replies must
/// pass.
pub fn loopback_ruleset(host_loopback: Ipv4Addr, access: &LoopbackAccess) -> String {
    let refusals = match access {
        LoopbackAccess::Everyone => String::new(),
        LoopbackAccess::Only(allowed) => {
            let mut allowed = allowed.clone();
            allowed.sort();
            let addresses: Vec<String> = allowed.iter().map(Ipv4Addr::to_string).collect();
            let except = if addresses.is_empty() {
                String::new()
            } else {
                format!("ip saddr != {{ {} }} ", addresses.join(", "))
            };
            let matches = format!("ct state new ip daddr {host_loopback} {except}");
            format!(
                "\t\t{matches}meta l4proto tcp reject with tcp reset comment \"the host's loopback\"\n\
                 \t\t{matches}reject comment \"the host's loopback\"\n"
            )
        }
    };
    format!(
        "table ip {LOOPBACK_TABLE} {{}}\n\
         delete table ip {LOOPBACK_TABLE}\n\
         table ip {LOOPBACK_TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         {refusals}\
         \t}}\n\
         }}\n"
    )
}

/// `nft`: Debian puts it in /usr/sbin, which an ordinary user's PATH often lacks.
fn nft_binary() -> std::path::PathBuf {
    ["/usr/sbin/nft", "/sbin/nft"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| "nft".into())
}

/// Loads `ruleset` with `nft -f -` in the caller's network namespace.
pub fn load(ruleset: &str) -> Result<(), PodnetError> {
    let mut child = Command::new(nft_binary())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PodnetError::Nft(
                "nft is not installed\nhint: install Debian's `nftables` package (apt-get install nftables)"
                    .into(),
            ),
            _ => PodnetError::Nft(format!("cannot run nft: {e}")),
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = stdin.write_all(ruleset.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|e| PodnetError::Nft(format!("cannot run nft: {e}")))?;
    if !output.status.success() {
        return Err(PodnetError::Nft(format!(
            "nft -f - failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    written.map_err(|e| PodnetError::Nft(format!("cannot write to nft: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masquerades_the_subnet_out_of_the_uplink_only() {
        let rules = masquerade_ruleset(&Subnet::DEFAULT, "tap0");
        assert!(rules.starts_with("table ip podrun {"), "{rules}");
        assert!(
            rules.contains("type nat hook postrouting priority srcnat; policy accept;"),
            "{rules}"
        );
        assert!(
            rules.contains("ip saddr 10.89.0.0/24 oifname \"tap0\" masquerade"),
            "{rules}"
        );
    }

    #[test]
    fn pods_reach_the_host_s_loopback_only_when_allowed() {
        let host = Ipv4Addr::new(10, 0, 2, 2);
        let none = loopback_ruleset(host, &LoopbackAccess::Only(Vec::new()));
        assert!(
            none.contains(
                "\t\tct state new ip daddr 10.0.2.2 reject comment \"the host's loopback\""
            ),
            "{none}"
        );
        let allowed = [Ipv4Addr::new(10, 89, 0, 3), Ipv4Addr::new(10, 89, 0, 2)];
        let some = loopback_ruleset(host, &LoopbackAccess::Only(allowed.to_vec()));
        assert!(
            some.contains("ct state new ip daddr 10.0.2.2 ip saddr != { 10.89.0.2, 10.89.0.3 } meta l4proto tcp reject with tcp reset"),
            "{some}"
        );
        let everyone = loopback_ruleset(host, &LoopbackAccess::Everyone);
        assert!(!everyone.contains("reject"), "{everyone}");
        assert!(
            everyone.starts_with("table ip podrun_loopback {}\ndelete table ip podrun_loopback\n")
        );
    }
}
