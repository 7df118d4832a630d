//! A pod's hostname and domain, worked out as the kubelet works them out
//! (`GeneratePodHostNameAndDomain` and `GetNodenameForKernel`): the hostname is
//! `spec.hostname`, else the pod's name cut to 63 characters; with `spec.subdomain` the pod
//! has the domain `<subdomain>.<namespace>.svc.<cluster domain>`, and with
//! `setHostnameAsFQDN: true` its kernel hostname is the FQDN, which must fit the kernel's
//! 64 characters.
//!
//! There is no cluster here, so the cluster domain is fixed: `cluster.local`, the domain
//! clusters use unless configured otherwise.
//!
//! These rules live here rather than in podrun-manifest (which re-exports them as
//! `podrun_manifest::hostname`) because a container's `HOSTNAME` variable is part of its
//! environment, worked out by this crate, and podrun-manifest depends on this crate.

use k8s_openapi::api::core::v1::Pod;

/// The cluster domain of every pod.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The longest hostname the kubelet keeps (the kernel's 64 bytes with a terminating NUL).
const HOSTNAME_MAX: usize = 63;

/// The longest FQDN the kubelet sets as a kernel hostname (`fqdnMaxLen`).
pub const FQDN_MAX: usize = 64;

/// The namespace of a pod whose metadata names none.
const DEFAULT_NAMESPACE: &str = "default";

/// A pod's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHostname {
    /// The short hostname: `spec.hostname`, else the pod's name.
    pub hostname: String,
    /// `<subdomain>.<namespace>.svc.cluster.local` when `spec.subdomain` is set.
    pub domain: Option<String>,
    /// What the kernel (`hostname`, `uname -n`) says: the FQDN with `setHostnameAsFQDN:
    /// true` and a subdomain, else the short hostname.
    pub kernel: String,
}

impl PodHostname {
    /// `<hostname>.<domain>`, when the pod has a domain.
    pub fn fqdn(&self) -> Option<String> {
        self.domain
            .as_ref()
            .map(|domain| format!("{}.{domain}", self.hostname))
    }
}

/// `setHostnameAsFQDN: true` with a FQDN the kernel cannot hold: the kubelet refuses to
/// create the pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value: true: the pod's FQDN {fqdn:?} is {} characters long, and a hostname may have at most {FQDN_MAX} (the kubelet refuses such a pod)\nhint: shorten `hostname` (or the pod's name), `subdomain` or the namespace, or drop `setHostnameAsFQDN`", fqdn.len())]
pub struct FqdnTooLong {
    pub fqdn: String,
}

/// The names of `pod` (its spec's `hostname`, `subdomain` and `setHostnameAsFQDN`, its
/// metadata's name and namespace). The labels are not checked here: validation does that.
pub fn pod_hostname(pod: &Pod) -> Result<PodHostname, FqdnTooLong> {
    let spec = pod.spec.as_ref();
    let hostname = short_hostname(pod);
    let namespace = pod
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE);
    let domain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
        .map(|subdomain| format!("{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}"));
    let mut names = PodHostname {
        kernel: hostname.clone(),
        hostname,
        domain,
    };
    let as_fqdn = spec.and_then(|s| s.set_hostname_as_fqdn) == Some(true);
    if let (true, Some(fqdn)) = (as_fqdn, names.fqdn()) {
        if fqdn.len() > FQDN_MAX {
            return Err(FqdnTooLong { fqdn });
        }
        names.kernel = fqdn;
    }
    Ok(names)
}

/// The kernel hostname the containers of `pod` see, as the kubelet hands it to the runtime
/// in the sandbox config: the pod's kernel name ([`pod_hostname`]), or `node_name` (the
/// host's hostname) for a pod on the host's network, for which the kubelet passes no
/// hostname and the runtime uses the host's.
pub fn kernel_hostname(pod: &Pod, node_name: &str) -> String {
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    if host_network {
        return node_name.to_string();
    }
    match pod_hostname(pod) {
        Ok(names) => names.kernel,
        // Validation and the pod's plan refuse such a pod before any container runs; the
        // short name is what the kernel would keep.
        Err(_) => short_hostname(pod),
    }
}

/// `spec.hostname`, else the pod's name, cut as the kubelet cuts it.
fn short_hostname(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name);
    truncated(hostname)
}

/// The kubelet's `truncatePodHostnameIfNeeded`: a name (pod names may have 253 characters)
/// cut to 63, without a trailing `-` or `.`.
fn truncated(hostname: &str) -> String {
    if hostname.len() <= HOSTNAME_MAX {
        return hostname.to_string();
    }
    // Pod names and labels are ASCII (validated), so byte positions are characters.
    let cut = hostname.get(..HOSTNAME_MAX).unwrap_or(hostname);
    cut.trim_end_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// A pod named `name` in `namespace` (None: unset) with `spec`.
    fn pod(name: &str, namespace: Option<&str>, spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: namespace.map(str::to_string),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
            ..Pod::default()
        }
    }

    /// A spec with `hostname`, `subdomain` and `setHostnameAsFQDN` as given.
    fn names(hostname: Option<&str>, subdomain: Option<&str>, as_fqdn: bool) -> PodSpec {
        PodSpec {
            hostname: hostname.map(str::to_string),
            subdomain: subdomain.map(str::to_string),
            set_hostname_as_fqdn: as_fqdn.then_some(true),
            ..PodSpec::default()
        }
    }

    #[test]
    fn the_pod_name_unless_hostname_is_set() {
        let names_of = pod_hostname(&pod("busybox-1", None, names(None, None, false))).unwrap();
        assert_eq!(names_of.hostname, "busybox-1");
        assert_eq!(names_of.kernel, "busybox-1");
        assert_eq!(names_of.domain, None);
        assert_eq!(names_of.fqdn(), None);
        let names_of = pod_hostname(&pod("p", None, names(Some("my-host"), None, false))).unwrap();
        assert_eq!(names_of.kernel, "my-host");
    }

    #[test]
    fn a_subdomain_gives_the_pod_a_fqdn_in_its_namespace() {
        // The Kubernetes documentation's "Pod's hostname and subdomain fields" example.
        let spec = names(Some("foo"), Some("bar"), false);
        let names_of = pod_hostname(&pod("p", Some("my-namespace"), spec)).unwrap();
        assert_eq!(names_of.hostname, "foo");
        assert_eq!(
            names_of.domain.as_deref(),
            Some("bar.my-namespace.svc.cluster.local")
        );
        assert_eq!(
            names_of.fqdn().as_deref(),
            Some("foo.bar.my-namespace.svc.cluster.local")
        );
        assert_eq!(
            names_of.kernel, "foo",
            "the leaf name unless setHostnameAsFQDN"
        );
        // Without a namespace: `default`.
        let names_of = pod_hostname(&pod("p", None, names(None, Some("bar"), false))).unwrap();
        assert_eq!(
            names_of.fqdn().as_deref(),
            Some("p.bar.default.svc.cluster.local")
        );
    }

    #[test]
    fn set_hostname_as_fqdn_makes_the_kernel_hostname_the_fqdn() {
        let spec = names(Some("foo"), Some("bar"), true);
        let names_of = pod_hostname(&pod("p", Some("ns"), spec)).unwrap();
        assert_eq!(names_of.kernel, "foo.bar.ns.svc.cluster.local");
        assert_eq!(names_of.hostname, "foo");
        // Without a subdomain it changes nothing, as in the kubelet.
        let names_of = pod_hostname(&pod("p", None, names(None, None, true))).unwrap();
        assert_eq!(names_of.kernel, "p");
    }

    #[test]
    fn a_fqdn_over_64_characters_is_refused() {
        // 64 characters fit, 65 do not.
        let at_most = |hostname: &str| {
            pod_hostname(&pod(
                "p",
                Some("ns"),
                names(Some(hostname), Some("s"), true),
            ))
        };
        let fits = "h".repeat(FQDN_MAX - ".s.ns.svc.cluster.local".len());
        assert_eq!(at_most(&fits).unwrap().kernel.len(), FQDN_MAX);
        let e = at_most(&format!("{fits}x")).unwrap_err();
        assert_eq!(e.fqdn.len(), 65);
        let text = e.to_string();
        assert!(text.contains("is 65 characters long"), "{text}");
        assert!(text.contains("at most 64"), "{text}");
        assert!(text.contains("hint:"), "{text}");
    }

    #[test]
    fn long_pod_names_are_cut_as_the_kubelet_cuts_them() {
        let name = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(truncated(&name), "a".repeat(62));
        assert_eq!(truncated("short"), "short");
        let dotted = format!("{}.{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(truncated(&dotted), "a".repeat(62));
    }

    #[test]
    fn the_kernel_hostname_is_the_host_s_on_the_host_network() {
        let fqdn = pod("p", Some("ns"), names(Some("foo"), Some("bar"), true));
        assert_eq!(
            kernel_hostname(&fqdn, "node-1"),
            "foo.bar.ns.svc.cluster.local"
        );
        let host = pod(
            "p",
            None,
            PodSpec {
                host_network: Some(true),
                ..names(Some("foo"), None, false)
            },
        );
        assert_eq!(kernel_hostname(&host, "node-1"), "node-1");
        // Too long a FQDN (refused before any container runs): the short name.
        let long = "h".repeat(60);
        let too_long = pod("p", Some("ns"), names(Some(&long), Some("s"), true));
        assert_eq!(kernel_hostname(&too_long, "node-1"), long);
    }
}
