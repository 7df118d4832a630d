//! The plan-time checks that need no image: what `podrun validate` runs besides the
//! manifest's own validation, so that a file it passes does not fail at `play` on a probe,
//! hook, termination message, resource limit, DNS setting or restart policy. `build` makes
//! the same checks (with the same messages) while it plans.

use podrun_manifest::{Manifest, PodManifest};
use podrun_pod_model::claims::VolumeRoot;

/// [`check`] of every pod of `manifest`, and the claims of its persistentVolumeClaim
/// volumes: each defined in the file or existing in `volumes`, the user's named volumes
/// ([`crate::volumes::check_claims`]). `None` leaves the claims unchecked: the caller has
/// no user's paths (HOME unset), and `play` fails then before it plans anything.
pub fn check_all(manifest: &Manifest, volumes: Option<&VolumeRoot>) -> Vec<String> {
    let mut errors: Vec<String> = manifest.pods.iter().flat_map(check).collect();
    let Some(root) = volumes else {
        return errors;
    };
    for pod in &manifest.pods {
        errors.extend(crate::volumes::check_claims(pod, manifest, root));
    }
    errors
}

/// Every error the image-independent plan-time checks find in `pod`, each naming the file,
/// the pod and the field, as `play` would report it.
pub fn check(pod: &PodManifest) -> Vec<String> {
    let who = format!(
        "pod `{}`",
        podrun_pod_model::display_name(pod.namespace(), pod.name())
    );
    let mut errors = Vec::new();
    let Some(spec) = pod.pod.spec.as_ref() else {
        errors.push(format!("{}: {who}: spec: Required value", pod.source));
        return errors;
    };
    // Its message names the file and the pod already.
    if let Err(e) = crate::restart_policy(spec.restart_policy.as_deref(), &who, &pod.source) {
        errors.push(e.to_string());
    }
    let mut report = |e: &dyn std::fmt::Display| errors.push(format!("{}: {who}: {e}", pod.source));
    match crate::dns::hostname(&pod.pod, "spec") {
        Ok(names) => {
            if let Err(e) = crate::dns::plan(spec, &names, "spec") {
                report(&e);
            }
        }
        Err(e) => report(&e),
    }
    let init = spec.init_containers.iter().flatten().enumerate();
    let all = init
        .map(|(i, c)| (format!("spec.initContainers[{i}]"), c))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("spec.containers[{i}]"), c)),
        );
    for (field, container) in all {
        if let Err(e) = crate::hooks::plan(container, &field) {
            report(&e);
        }
        if let Err(e) = crate::probes::container_probes(container, &field) {
            report(&e);
        }
        if let Err(e) = crate::cgroup::container_limits(container) {
            report(&e);
        }
        if let Err(e) = crate::termination::plan(container, &field) {
            report(&e);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAIMED: &str = r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: v, mountPath: /data}, {name: cache, mountPath: /cache}]
  volumes:
  - {name: v, persistentVolumeClaim: {claimName: data}}
  - {name: cache, persistentVolumeClaim: {claimName: cache}}
"#;

    #[test]
    fn claims_are_looked_for_in_the_volumes_given() {
        let manifest = podrun_manifest::load_str("t.yaml", CLAIMED, &Default::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = VolumeRoot(dir.path().join("volumes"));
        // `data` is the file's; `cache` is neither the file's nor a volume yet.
        let errors = check_all(&manifest, Some(&root));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("PersistentVolumeClaim `cache` not found in namespace default"),
            "{errors:?}"
        );
        podrun_pod_model::claims::ensure(&root.dir("default", "cache"), None).unwrap();
        let errors = check_all(&manifest, Some(&root));
        assert!(errors.is_empty(), "{errors:?}");
        // The claims are looked for in the volumes given, and not at all without any.
        let elsewhere = VolumeRoot(dir.path().join("elsewhere"));
        assert_eq!(check_all(&manifest, Some(&elsewhere)).len(), 1);
        let errors = check_all(&manifest, None);
        assert!(errors.is_empty(), "{errors:?}");
    }
}
