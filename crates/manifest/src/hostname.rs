//! A pod's hostname and domain, worked out as the kubelet works them out
//! (`GeneratePodHostNameAndDomain` and `GetNodenameForKernel`): the hostname is
//! `spec.hostname`, else the pod's name cut to 63 characters; with `spec.subdomain` the pod
//! has the domain `<subdomain>.<namespace>.svc.<cluster domain>`, and with
//! `setHostnameAsFQDN: true` its kernel hostname is the FQDN, which must fit the kernel's
//! 64 characters.
//!
//! There is no cluster here, so the cluster domain is fixed: `cluster.local`, the domain
//! clusters use unless configured otherwise.

use k8s_openapi::api::core::v1::Pod;

use crate::DEFAULT_NAMESPACE;

/// The cluster domain of every pod.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The longest hostname the kubelet keeps (the kernel's 64 bytes with a terminating NUL).
const HOSTNAME_MAX: usize = 63;

/// The longest FQDN the kubelet sets as a kernel hostname (`fqdnMaxLen`).
pub const FQDN_MAX: usize = 64;

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
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let hostname = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name);
    let hostname = truncated(hostname);
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

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_pod_name_unless_hostname_is_set() {
        let names = pod_hostname(&pod(serde_json::json!({
            "metadata": {"name": "busybox-1"}, "spec": {"containers": []}
        })))
        .unwrap();
        assert_eq!(names.hostname, "busybox-1");
        assert_eq!(names.kernel, "busybox-1");
        assert_eq!(names.domain, None);
        assert_eq!(names.fqdn(), None);
        let names = pod_hostname(&pod(serde_json::json!({
            "metadata": {"name": "p"}, "spec": {"containers": [], "hostname": "my-host"}
        })))
        .unwrap();
        assert_eq!(names.kernel, "my-host");
    }

    #[test]
    fn a_subdomain_gives_the_pod_a_fqdn_in_its_namespace() {
        // The Kubernetes documentation's "Pod's hostname and subdomain fields" example.
        let spec = serde_json::json!({
            "containers": [], "hostname": "foo", "subdomain": "bar"
        });
        let names = pod_hostname(&pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "my-namespace"}, "spec": spec
        })))
        .unwrap();
        assert_eq!(names.hostname, "foo");
        assert_eq!(
            names.domain.as_deref(),
            Some("bar.my-namespace.svc.cluster.local")
        );
        assert_eq!(
            names.fqdn().as_deref(),
            Some("foo.bar.my-namespace.svc.cluster.local")
        );
        assert_eq!(
            names.kernel, "foo",
            "the leaf name unless setHostnameAsFQDN"
        );
        // Without a namespace: `default`.
        let names = pod_hostname(&pod(serde_json::json!({
            "metadata": {"name": "p"}, "spec": {"containers": [], "subdomain": "bar"}
        })))
        .unwrap();
        assert_eq!(
            names.fqdn().as_deref(),
            Some("p.bar.default.svc.cluster.local")
        );
    }

    #[test]
    fn set_hostname_as_fqdn_makes_the_kernel_hostname_the_fqdn() {
        let names = pod_hostname(&pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [], "hostname": "foo", "subdomain": "bar", "setHostnameAsFQDN": true}
        })))
        .unwrap();
        assert_eq!(names.kernel, "foo.bar.ns.svc.cluster.local");
        assert_eq!(names.hostname, "foo");
        // Without a subdomain it changes nothing, as in the kubelet.
        let names = pod_hostname(&pod(serde_json::json!({
            "metadata": {"name": "p"}, "spec": {"containers": [], "setHostnameAsFQDN": true}
        })))
        .unwrap();
        assert_eq!(names.kernel, "p");
    }

    #[test]
    fn a_fqdn_over_64_characters_is_refused() {
        // 64 characters fit, 65 do not.
        let at_most = |hostname: &str| {
            pod_hostname(&pod(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"containers": [], "hostname": hostname, "subdomain": "s", "setHostnameAsFQDN": true}
            })))
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

    /// The errors of loading `spec` (YAML lines under `spec:`) in a Pod of namespace `ns`.
    fn load_errors(kind_and_spec: &str) -> Vec<String> {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ns}}\nspec:\n  containers: [{{name: a, image: busybox}}]\n{kind_and_spec}"
        );
        match crate::load_str("pod.yaml", &text, &crate::LoadOptions::default()) {
            Ok(_) => Vec::new(),
            Err(crate::ManifestError::Invalid { errors }) => errors,
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn hostname_and_subdomain_are_validated_as_the_api_server_does() {
        assert!(
            load_errors("  hostname: foo\n  subdomain: bar\n  setHostnameAsFQDN: true\n")
                .is_empty()
        );
        let errors = load_errors("  hostname: Foo\n  subdomain: bar.baz\n");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("pod.yaml: document 1: spec.hostname: Invalid value: \"Foo\": a lowercase RFC 1123 label"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("pod.yaml: document 1: spec.subdomain: Invalid value: \"bar.baz\": a lowercase RFC 1123 label"),
            "{errors:?}"
        );
        let long = "s".repeat(64);
        let errors = load_errors(&format!("  subdomain: {long}\n"));
        assert_eq!(
            errors,
            [format!("pod.yaml: document 1: spec.subdomain: Invalid value: \"{long}\": must be no more than 63 characters")]
        );
    }

    #[test]
    fn a_fqdn_too_long_is_an_error_at_load_unless_on_the_host_network() {
        let spec = format!(
            "  hostname: {}\n  subdomain: sub\n  setHostnameAsFQDN: true\n",
            "h".repeat(50)
        );
        let errors = load_errors(&spec);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "pod.yaml: document 1: spec.setHostnameAsFQDN: Invalid value: true: the pod's FQDN"
            ),
            "{errors:?}"
        );
        assert!(errors[0].contains("is 75 characters long"), "{errors:?}");
        // Without setHostnameAsFQDN the kernel keeps the short name: nothing to refuse.
        assert!(load_errors(&spec.replace("true", "false")).is_empty());
        // On the host's network the pod has the host's hostname, as with the kubelet.
        assert!(load_errors(&format!("{spec}  hostNetwork: true\n")).is_empty());
    }

    #[test]
    fn long_pod_names_are_cut_as_the_kubelet_cuts_them() {
        let name = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(truncated(&name), "a".repeat(62));
        assert_eq!(truncated("short"), "short");
        let dotted = format!("{}.{}", "a".repeat(62), "b".repeat(10));
        assert_eq!(truncated(&dotted), "a".repeat(62));
    }
}
