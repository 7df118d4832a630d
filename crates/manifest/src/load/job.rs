//! A Job's own fields: what its controller honours (`completions`, `parallelism`,
//! `backoffLimit`, `activeDeadlineSeconds`), checked as the API server does, and the fields
//! it does not honour yet, refused (they would change what runs) or reported.

use k8s_openapi::api::batch::v1::JobSpec;

use super::workloads::MAX_REPLICAS;
use super::Diag;
use crate::{JobManifest, Source};

/// The number of pods play starts for the Job: as many as may run at once, but no more
/// than its completions (the Job's controller starts the others).
pub(crate) fn first_pods(spec: Option<&JobSpec>) -> i32 {
    let parallelism = spec.and_then(|s| s.parallelism).unwrap_or(1).max(0);
    match spec.and_then(|s| s.completions) {
        Some(completions) => parallelism.min(completions.max(0)),
        None => parallelism,
    }
}

/// The Job `name` of `namespace` as its controller runs it, its fields checked.
pub(crate) fn job(
    diag: &mut Diag,
    source: &Source,
    name: &str,
    namespace: &str,
    spec: Option<&JobSpec>,
) -> JobManifest {
    let doc = source.document;
    let default = JobSpec::default();
    let spec = spec.unwrap_or(&default);
    unsupported(diag, doc, spec);
    let mut count = |field: &str, value: Option<i32>| -> Option<u32> {
        let value = value?;
        if value < 0 {
            diag.error(
                doc,
                &format!("spec.{field}"),
                format_args!("Invalid value: {value}: must be greater than or equal to 0"),
            );
        }
        Some(value.max(0).unsigned_abs())
    };
    let completions = count("completions", spec.completions);
    let parallelism = count("parallelism", spec.parallelism).unwrap_or(1);
    let backoff_limit = count("backoffLimit", spec.backoff_limit);
    if spec.parallelism == Some(0) {
        // Kubernetes keeps such a Job waiting until someone raises parallelism; with no API
        // server nobody can, and `play --wait` would wait for ever.
        diag.error(
            doc,
            "spec.parallelism",
            "not supported: 0 runs no pod, and podrun cannot change a Job's parallelism later (it has no API server); give 1 or more",
        );
    }
    if parallelism > MAX_REPLICAS {
        diag.error(
            doc,
            "spec.parallelism",
            format_args!(
                "Invalid value: {parallelism}: podrun runs at most {MAX_REPLICAS} pods of a workload on one host"
            ),
        );
    }
    let deadline = spec.active_deadline_seconds;
    if let Some(seconds) = deadline.filter(|s| *s <= 0) {
        diag.error(
            doc,
            "spec.activeDeadlineSeconds",
            format_args!("Invalid value: {seconds}: must be greater than 0"),
        );
    }
    JobManifest {
        source: source.clone(),
        name: name.to_string(),
        namespace: namespace.to_string(),
        completions,
        parallelism,
        backoff_limit: backoff_limit.unwrap_or(crate::DEFAULT_BACKOFF_LIMIT),
        active_deadline_seconds: deadline.map(|s| s.max(1).unsigned_abs()),
    }
}

/// The Job fields podrun does not honour: an error for those that change what runs
/// (`completionMode: Indexed`, `suspend: true`), a warning (an error with --strict) for
/// the others.
fn unsupported(diag: &mut Diag, doc: usize, spec: &JobSpec) {
    match spec.completion_mode.as_deref() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => diag.error(
            doc,
            "spec.completionMode",
            "not supported yet: podrun runs NonIndexed Jobs only (no completion index)",
        ),
        Some(other) => diag.error(
            doc,
            "spec.completionMode",
            format_args!(
                "Unsupported value: {other:?}: supported values: \"NonIndexed\", \"Indexed\""
            ),
        ),
    }
    if spec.suspend == Some(true) {
        diag.error(
            doc,
            "spec.suspend",
            "not supported yet: podrun cannot resume a suspended Job; drop suspend to run it",
        );
    }
    let ignored = [
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.is_some(),
        ),
        ("podFailurePolicy", spec.pod_failure_policy.is_some()),
        ("successPolicy", spec.success_policy.is_some()),
        (
            "backoffLimitPerIndex",
            spec.backoff_limit_per_index.is_some(),
        ),
        ("maxFailedIndexes", spec.max_failed_indexes.is_some()),
        (
            "podReplacementPolicy",
            spec.pod_replacement_policy.is_some(),
        ),
        ("managedBy", spec.managed_by.is_some()),
        ("manualSelector", spec.manual_selector.is_some()),
        ("selector", spec.selector.is_some()),
    ];
    for (field, _) in ignored.iter().filter(|(_, set)| *set) {
        diag.lenient(
            doc,
            &format!("spec.{field}"),
            "not supported yet: ignored (podrun's Job controller honours completions, parallelism, backoffLimit and activeDeadlineSeconds)",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_str, LoadOptions, Manifest};

    fn job(spec: &str) -> Result<Manifest, String> {
        let text = format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: work\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n"
        );
        load_str("job.yaml", &text, &LoadOptions::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn play_starts_parallelism_pods_but_no_more_than_completions() {
        let m = job(
            "  completions: 3\n  parallelism: 2\n  backoffLimit: 1\n  activeDeadlineSeconds: 9\n",
        )
        .unwrap();
        assert_eq!(m.pods.len(), 2);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let j = &m.jobs[0];
        assert_eq!((j.name.as_str(), j.namespace.as_str()), ("work", "default"));
        assert_eq!(
            (j.completions, j.parallelism, j.backoff_limit),
            (Some(3), 2, 1)
        );
        assert_eq!(j.active_deadline_seconds, Some(9));
        assert_eq!(
            job("  completions: 1\n  parallelism: 4\n")
                .unwrap()
                .pods
                .len(),
            1
        );
        // The defaults: one completion, one at a time, backoffLimit 6.
        let m = job("").unwrap();
        assert_eq!(m.pods.len(), 1);
        let j = &m.jobs[0];
        assert_eq!(
            (j.completions, j.parallelism, j.backoff_limit),
            (None, 1, 6)
        );
        // A work queue: parallelism pods.
        assert_eq!(job("  parallelism: 3\n").unwrap().pods.len(), 3);
        let name = crate::job_pod_name("work");
        assert!(name.starts_with("work-") && name.len() == 10, "{name}");
    }

    #[test]
    fn negative_counts_and_unsupported_fields() {
        let e =
            job("  completions: -1\n  backoffLimit: -2\n  activeDeadlineSeconds: 0\n").unwrap_err();
        assert!(e.contains("spec.completions: Invalid value: -1"), "{e}");
        assert!(e.contains("spec.backoffLimit: Invalid value: -2"), "{e}");
        assert!(
            e.contains("spec.activeDeadlineSeconds: Invalid value: 0"),
            "{e}"
        );
        let e = job("  parallelism: 0\n").unwrap_err();
        assert!(
            e.contains("spec.parallelism: not supported: 0 runs no pod"),
            "{e}"
        );
        let e = job("  completionMode: Indexed\n  suspend: true\n").unwrap_err();
        assert!(e.contains("spec.completionMode: not supported yet"), "{e}");
        assert!(e.contains("spec.suspend: not supported yet"), "{e}");
        let m = job("  ttlSecondsAfterFinished: 10\n").unwrap();
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].contains("spec.ttlSecondsAfterFinished: not supported yet: ignored"));
        let strict = LoadOptions {
            strict: true,
            ..LoadOptions::default()
        };
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: w\nspec:\n  podFailurePolicy:\n    rules: []\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n";
        assert!(load_str("job.yaml", text, &strict).is_err());
    }
}
