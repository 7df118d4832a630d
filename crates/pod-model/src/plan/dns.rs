//! A pod's name resolution settings as the plan holds them: `hostAliases`, `dnsPolicy`,
//! `dnsConfig` and `subdomain`, planned by podrun-planner (`dns`) and written into the pod's
//! /etc/hosts and /etc/resolv.conf by podrun-supervisor (`dns`).

use serde::{Deserialize, Serialize};

/// A pod's DNS settings (its plan).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDns {
    /// `dnsPolicy: None`: the host's resolver is not used.
    #[serde(default)]
    pub policy_none: bool,
    /// `dnsPolicy: Default`: the host's resolver even where a cluster DNS serves the pod
    /// (the shared network); else `ClusterFirst` there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_resolver: bool,
    /// `dnsConfig`, if set.
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    /// `name` or `name:value`.
    #[serde(default)]
    pub options: Vec<String>,
    /// `hostAliases`: an address and its names.
    #[serde(default)]
    pub host_aliases: Vec<(String, Vec<String>)>,
    /// `subdomain`: the pod's short hostname and its domain, for its /etc/hosts line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<PodDomain>,
}

/// A pod's FQDN in parts: `<hostname>.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDomain {
    pub hostname: String,
    /// `<subdomain>.<namespace>.svc.cluster.local`.
    pub domain: String,
}

impl PodDns {
    /// Whether anything changes the files podrun writes without it.
    pub fn is_empty(&self) -> bool {
        *self == PodDns::default()
    }
}
