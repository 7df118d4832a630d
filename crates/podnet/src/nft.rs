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
/// Traffic between pods stays on the bridge, untouched. Pods never reach `host_loopback`
/// when given (where the way out maps the host's 127.0.0.1, which the holder may use as
/// its DNS upstream): refused at once, as on a node, where a pod cannot reach the node's
/// loopback. New connections only: the host's own connections to a published port or node
/// port come from that address (slirp4netns rewrites the host's 127.0.0.1 to it), and
/// their replies must pass.
pub fn masquerade_ruleset(
    subnet: &Subnet,
    uplink: &str,
    host_loopback: Option<Ipv4Addr>,
) -> String {
    let refusals = host_loopback
        .map(|address| {
            format!(
                "\t\tct state new ip daddr {address} meta l4proto tcp reject with tcp reset comment \"the host's loopback\"\n\
                 \t\tct state new ip daddr {address} reject comment \"the host's loopback\"\n"
            )
        })
        .unwrap_or_default();
    format!(
        "table ip {TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {subnet} oifname \"{uplink}\" masquerade\n\
         \t}}\n\
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
        let rules = masquerade_ruleset(&Subnet::DEFAULT, "tap0", Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert!(rules.starts_with("table ip podrun {"), "{rules}");
        assert!(
            rules.contains("type nat hook postrouting priority srcnat; policy accept;"),
            "{rules}"
        );
        assert!(
            rules.contains("ip saddr 10.89.0.0/24 oifname \"tap0\" masquerade"),
            "{rules}"
        );
        assert!(
            rules.contains("ct state new ip daddr 10.0.2.2 reject comment \"the host's loopback\""),
            "{rules}"
        );
        let open = masquerade_ruleset(&Subnet::DEFAULT, "tap0", None);
        assert!(!open.contains("reject"), "{open}");
    }
}
