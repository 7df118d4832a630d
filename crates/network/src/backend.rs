//! Which network a pod gets.

use serde::{Deserialize, Serialize};

/// A pod's network backend.
///
/// `none` is the serde default so that a `plan.json` written before networking existed keeps
/// its meaning (loopback only); the CLI's default is `slirp4netns` ([`Backend::DEFAULT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// User-mode networking by slirp4netns: 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3.
    Slirp4netns,
    /// User-mode networking by pasta (passt).
    Pasta,
    /// Loopback only.
    #[default]
    None,
    /// The network namespace podrun was started in (`hostNetwork: true`).
    Host,
    /// The user's shared pod network (podrun-podnet): an address of 10.89.0.0/24 on a
    /// bridge that every such pod of the user is on, so that pods reach each other by
    /// address and by Service; the way out and the published ports are the network
    /// holder's one slirp4netns; DNS is the holder's cluster DNS server.
    Shared,
}

impl Backend {
    /// What `podrun play` uses when neither `--network` nor the config file says: slirp4netns,
    /// measured faster than Debian 12's pasta for pod-sent traffic (see docs/ARCHITECTURE.md).
    pub const DEFAULT: Backend = Backend::Slirp4netns;

    /// The name used on the command line and in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Slirp4netns => "slirp4netns",
            Backend::Pasta => "pasta",
            Backend::None => "none",
            Backend::Host => "host",
            Backend::Shared => "shared",
        }
    }

    /// Whether the pod gets a way out and published ports through a user-mode helper.
    pub fn has_helper(self) -> bool {
        matches!(self, Backend::Slirp4netns | Backend::Pasta)
    }

    /// Whether the pod's way out is a slirp4netns, its own or the shared network holder's,
    /// whose DNS forwarder is at 10.0.2.3.
    pub fn uses_helper_dns(self) -> bool {
        self.has_helper() || self == Backend::Shared
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "slirp4netns" => Ok(Backend::Slirp4netns),
            "pasta" => Ok(Backend::Pasta),
            "none" => Ok(Backend::None),
            "host" => Ok(Backend::Host),
            "shared" => Ok(Backend::Shared),
            // A network of the pod's own, where isolation matters: the default helper.
            "private" => Ok(Backend::DEFAULT),
            other => Err(format!(
                "unknown network `{other}` (expected slirp4netns, pasta, none, host, shared or private)"
            )),
        }
    }
}

/// The pod's network as `plan.json` records it (the published ports are a list beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkPlan {
    pub backend: Backend,
    /// Let the pod reach the host's 127.0.0.1 (at 10.0.2.2 with slirp4netns).
    #[serde(default)]
    pub allow_host_loopback: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_is_the_default_helper_of_the_pod_s_own() {
        assert_eq!("private".parse::<Backend>(), Ok(Backend::DEFAULT));
    }

    #[test]
    fn names_round_trip() {
        for backend in [
            Backend::Slirp4netns,
            Backend::Pasta,
            Backend::None,
            Backend::Host,
            Backend::Shared,
        ] {
            assert_eq!(backend.name().parse::<Backend>().unwrap(), backend);
            let json = serde_json::to_string(&backend).unwrap();
            assert_eq!(json, format!("\"{}\"", backend.name()));
        }
        assert!("slirp"
            .parse::<Backend>()
            .unwrap_err()
            .contains("slirp4netns"));
    }

    #[test]
    fn old_plans_have_loopback_only() {
        let plan: NetworkPlan = serde_json::from_str("{\"backend\":\"none\"}").unwrap();
        assert_eq!(plan, NetworkPlan::default());
        assert_eq!(NetworkPlan::default().backend, Backend::None);
    }
}
