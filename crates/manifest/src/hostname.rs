//! A pod's hostname and domain, as the kubelet works them out: `spec.hostname` or the pod's
//! name, the domain `<subdomain>.<namespace>.svc.cluster.local`, and the FQDN as kernel
//! hostname with `setHostnameAsFQDN`. The rules are podrun-process's (a container's
//! `HOSTNAME` variable needs them, and this crate depends on that one); validation checks
//! the labels and refuses a FQDN the kernel cannot hold.

pub use podrun_process::hostname::{
    kernel_hostname, pod_hostname, FqdnTooLong, PodHostname, CLUSTER_DOMAIN, FQDN_MAX,
};

#[cfg(test)]
mod tests {
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
}
