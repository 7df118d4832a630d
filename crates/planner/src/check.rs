//! The plan-time checks that need no image: what `podrun validate` runs besides the
//! manifest's own validation, so that a file it passes does not fail at `play` on a probe,
//! hook, termination message, resource limit, DNS setting or restart policy. `build` makes
//! the same checks (with the same messages) while it plans.

use podrun_manifest::{Manifest, PodManifest};

/// [`check`] of every pod of `manifest`, and the claims of its persistentVolumeClaim
/// volumes: each defined in the file or existing as a volume of the user's
/// ([`crate::volumes::check_claims`]).
pub fn check_all(manifest: &Manifest) -> Vec<String> {
    let mut errors: Vec<String> = manifest.pods.iter().flat_map(check).collect();
    // Without the user's paths (HOME unset) `play` fails before it plans anything.
    let Ok(paths) = podrun_config::Paths::from_env() else {
        return errors;
    };
    let root = podrun_pod_model::claims::VolumeRoot(paths.data_dir.join("volumes"));
    for pod in &manifest.pods {
        errors.extend(crate::volumes::check_claims(pod, manifest, &root));
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
