//! The pod's /etc/resolv.conf.

use crate::Backend;

/// slirp4netns' built-in DNS forwarder, which relays to the host's resolvers (even a loopback
/// one such as systemd-resolved's 127.0.0.53, which the pod could not reach itself).
pub const SLIRP4NETNS_DNS: &str = "10.0.2.3";

/// The pod's resolv.conf for `backend`, given the host's (`host` is its text).
///
/// With slirp4netns and pasta the nameservers become the helper's forwarder at 10.0.2.3
/// (pasta's `--dns-forward`, which relays UDP queries to the host's first resolver); the
/// host's `search`, `domain` and `options` lines are kept so that short names resolve as on
/// the host. Other backends get the host's file unchanged (`none` cannot reach any resolver
/// anyway; `host` shares the host's network).
pub fn resolv_conf(backend: Backend, host: &str) -> String {
    if !backend.uses_helper_dns() {
        return host.to_string();
    }
    let mut text = format!("nameserver {SLIRP4NETNS_DNS}\n");
    for line in host.lines() {
        let keyword = line.split_whitespace().next().unwrap_or("");
        if matches!(keyword, "search" | "domain" | "options") {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slirp_points_at_its_forwarder() {
        let host = "# generated\nnameserver 127.0.0.53\nsearch example.org\noptions edns0\n";
        assert_eq!(
            resolv_conf(Backend::Slirp4netns, host),
            "nameserver 10.0.2.3\nsearch example.org\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf(Backend::Pasta, host),
            resolv_conf(Backend::Slirp4netns, host)
        );
        assert_eq!(resolv_conf(Backend::None, host), host);
        assert_eq!(resolv_conf(Backend::Host, host), host);
    }
}
