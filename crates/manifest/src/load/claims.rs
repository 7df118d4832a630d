//! PersistentVolumeClaims, and the claims of a StatefulSet's `volumeClaimTemplates`.
//!
//! A claim becomes a named volume of podrun's (a directory that outlives the pods, see
//! podrun-pod-model's `claims`). Its spec is validated as the API server does for what
//! podrun uses: `accessModes` (at least one, Kubernetes' values), `resources.requests.storage`
//! (required, a quantity; recorded, not enforced, with one warning per file),
//! `storageClassName` (recorded) and `volumeMode` (`Filesystem`; `Block` is refused). Other
//! fields go through the allow-list ([`AllowList::claim_spec`]).
//!
//! A StatefulSet's template `T` gives its pod `<set>-N` the claim `T-<set>-N`, and the pod's
//! `volumes` an entry `T` of that claim (replacing a template volume of the same name), as
//! the StatefulSet controller does.

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSpec,
    Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{check_supported, Candidate, Diag};
use crate::supported::AllowList;
use crate::validate::{self, dns_label_error, dns_subdomain_error, unsupported_value};
use crate::{ClaimManifest, Owner, Source, WorkloadKind};

/// Kubernetes' access modes.
const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

/// Checks a claim's spec, at `prefix` (`spec`, `spec.volumeClaimTemplates[0].spec`).
fn spec(diag: &mut Diag, doc: usize, prefix: &str, spec: Option<&PersistentVolumeClaimSpec>) {
    let Some(spec) = spec else {
        diag.error(doc, prefix, "Required value");
        return;
    };
    check_supported(diag, doc, prefix, spec, AllowList::claim_spec());
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        diag.error(
            doc,
            &format!("{prefix}.accessModes"),
            "Required value: at least 1 access mode is required",
        );
    }
    for mode in modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            diag.error(
                doc,
                &format!("{prefix}.accessModes"),
                unsupported_value(mode, ACCESS_MODES),
            );
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        diag.error(
            doc,
            &format!("{prefix}.accessModes"),
            "Forbidden: may not use ReadWriteOncePod with other access modes",
        );
    }
    let requests = spec.resources.as_ref().and_then(|r| r.requests.as_ref());
    match requests.and_then(|r| r.get("storage")) {
        None => diag.error(
            doc,
            &format!("{prefix}.resources.requests[storage]"),
            "Required value",
        ),
        Some(q) => match podrun_process::Quantity::parse(&q.0) {
            None => diag.error(
                doc,
                &format!("{prefix}.resources.requests[storage]"),
                format_args!(
                    "Invalid value: {:?}: must be a quantity (e.g. 1Gi, 500Mi)",
                    q.0
                ),
            ),
            Some(n) if n.is_zero() => diag.error(
                doc,
                &format!("{prefix}.resources.requests[storage]"),
                format_args!("Invalid value: {:?}: must be greater than zero", q.0),
            ),
            Some(_) => {}
        },
    }
    for key in requests.into_iter().flat_map(|r| r.keys()) {
        if key != "storage" {
            diag.lenient(
                doc,
                &format!("{prefix}.resources.requests[{key}]"),
                "a claim requests storage only; ignored",
            );
        }
    }
    match spec.volume_mode.as_deref() {
        None | Some("Filesystem") => {}
        Some("Block") => diag.error(
            doc,
            &format!("{prefix}.volumeMode"),
            "Unsupported value: \"Block\": podrun's volumes are directories on this host; only Filesystem is supported",
        ),
        Some(other) => diag.error(
            doc,
            &format!("{prefix}.volumeMode"),
            unsupported_value(other, &["Block", "Filesystem"]),
        ),
    }
}

/// A PersistentVolumeClaim document: checked, with its `namespace` filled in, added to
/// `claims` unless the file defines it already.
pub(crate) fn claim(
    diag: &mut Diag,
    source: &Source,
    mut pvc: PersistentVolumeClaim,
    namespace: String,
    claims: &mut Vec<ClaimManifest>,
) {
    let doc = source.document;
    check_supported(diag, doc, "metadata", &pvc.metadata, AllowList::metadata());
    validate::object_name(diag, doc, "PersistentVolumeClaim", &pvc.metadata);
    spec(diag, doc, "spec", pvc.spec.as_ref());
    pvc.metadata.namespace = Some(namespace);
    // Read-only in Kubernetes, as a pod's.
    pvc.status = None;
    let claim = ClaimManifest {
        source: source.clone(),
        claim: pvc,
        owner: None,
    };
    if claim.name().is_empty() {
        return;
    }
    if let Some(first) = claims
        .iter()
        .find(|c| c.namespace() == claim.namespace() && c.name() == claim.name())
    {
        diag.error(
            doc,
            "metadata.name",
            format_args!(
                "Duplicate value: {:?}: a PersistentVolumeClaim of that name is already defined in document {}",
                claim.name(),
                first.source.document
            ),
        );
        return;
    }
    claims.push(claim);
}

/// The names of a StatefulSet's templates, in order (empty for a template without a valid
/// one, which [`stateful_set`] reports).
fn template_names(templates: &[PersistentVolumeClaim]) -> Vec<String> {
    templates
        .iter()
        .map(|t| t.metadata.name.clone().unwrap_or_default())
        .map(|n| {
            if dns_label_error(&n).is_some() {
                String::new()
            } else {
                n
            }
        })
        .collect()
}

/// Gives the pod `pod_name` of a StatefulSet one volume per template: `T` of claim
/// `T-<pod_name>`, in place of a template volume of the same name.
pub(crate) fn add_template_volumes(
    spec: &mut PodSpec,
    templates: &[PersistentVolumeClaim],
    pod_name: &str,
) {
    let names = template_names(templates);
    if names.iter().all(String::is_empty) {
        return;
    }
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    volumes.retain(|v| !names.contains(&v.name));
    for name in names.iter().filter(|n| !n.is_empty()) {
        volumes.push(Volume {
            name: name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{name}-{pod_name}"),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
}

/// A StatefulSet's `volumeClaimTemplates`: each checked (name, spec), and the claims of its
/// `pods` added to `claims`. `template_spec` is the pod template's spec, whose volumes of a
/// template's name are replaced (with a warning).
pub(crate) fn stateful_set(
    diag: &mut Diag,
    source: &Source,
    set: &str,
    templates: &[PersistentVolumeClaim],
    template_spec: &PodSpec,
    pods: &[Candidate],
    claims: &mut Vec<ClaimManifest>,
) {
    let doc = source.document;
    let names = template_names(templates);
    for (i, template) in templates.iter().enumerate() {
        let given = template.metadata.name.clone().unwrap_or_default();
        let prefix = format!("spec.volumeClaimTemplates[{i}]");
        check_supported(
            diag,
            doc,
            &format!("{prefix}.metadata"),
            &template.metadata,
            AllowList::metadata(),
        );
        let name = &names[i];
        let field = format!("{prefix}.metadata.name");
        if given.is_empty() {
            diag.error(doc, &field, "Required value");
        } else if let Some(e) = dns_label_error(&given) {
            // It names a volume of the pods too.
            diag.error(doc, &field, e);
        } else if names[..i].contains(name) {
            diag.error(doc, &field, format_args!("Duplicate value: {name:?}"));
        } else if let Some(last) = pods.last().and_then(|p| p.pod.metadata.name.as_deref()) {
            if let Some(e) = dns_subdomain_error(&format!("{name}-{last}")) {
                diag.error(
                    doc,
                    &field,
                    format_args!("the claim name of pod {last}: {e}"),
                );
            }
        }
        spec(diag, doc, &format!("{prefix}.spec"), template.spec.as_ref());
    }
    for (j, volume) in template_spec.volumes.iter().flatten().enumerate() {
        if let Some(i) = names.iter().position(|n| *n == volume.name) {
            diag.warn(
                doc,
                &format!("spec.template.spec.volumes[{j}]"),
                format_args!(
                    "replaced by spec.volumeClaimTemplates[{i}] of the same name, as the StatefulSet controller does"
                ),
            );
        }
    }
    let owner = Owner {
        kind: WorkloadKind::StatefulSet,
        name: set.to_string(),
    };
    for pod in pods {
        let pod_name = pod.pod.metadata.name.as_deref().unwrap_or_default();
        for (template, name) in templates.iter().zip(&names) {
            if name.is_empty() {
                continue;
            }
            let mut labels = template.metadata.labels.clone();
            // As in Kubernetes: the claim carries the pod's selector labels.
            if let Some(pod_labels) = &pod.pod.metadata.labels {
                let labels = labels.get_or_insert_with(Default::default);
                for (k, v) in pod_labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            claims.push(ClaimManifest {
                source: source.clone(),
                claim: PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(format!("{name}-{pod_name}")),
                        namespace: pod.pod.metadata.namespace.clone(),
                        labels,
                        annotations: template.metadata.annotations.clone(),
                        ..ObjectMeta::default()
                    },
                    spec: template.spec.clone(),
                    status: None,
                },
                owner: Some(owner.clone()),
            });
        }
    }
}

/// Once every document is read: a template's claim that a PersistentVolumeClaim document
/// defines is that one (the StatefulSet controller uses an existing claim), and one warning
/// says that sizes are not enforced.
pub(crate) fn finish(diag: &mut Diag, claims: &mut Vec<ClaimManifest>) {
    let defined: Vec<(String, String)> = claims
        .iter()
        .filter(|c| c.owner.is_none())
        .map(|c| (c.namespace().to_string(), c.name().to_string()))
        .collect();
    claims.retain(|c| {
        c.owner.is_none() || !defined.contains(&(c.namespace().to_string(), c.name().to_string()))
    });
    if let Some(first) = claims.iter().find(|c| c.storage().is_some()) {
        diag.warn(
            first.source.document,
            "",
            format_args!(
                "PersistentVolumeClaim `{}`: resources.requests.storage is recorded but not enforced: a podrun volume is a directory of this host with no size limit",
                first.name()
            ),
        );
    }
}
