//! The pods of a workload, named and labelled as Kubernetes' controllers make them.
//!
//! - Deployment: `replicas` pods `<name>-<pod-template-hash>-<5 random>` (the ReplicaSet
//!   `<name>-<hash>` makes them), labelled `pod-template-hash: <hash>`;
//! - ReplicaSet: `replicas` pods `<name>-<5 random>`;
//! - DaemonSet: one pod `<name>-<5 random>` (this host is the one node);
//! - StatefulSet: `replicas` pods `<name>-<ordinal>`, from `ordinals.start` (0), with
//!   `hostname` the pod's name, `subdomain` the `serviceName`, and the labels
//!   `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`;
//! - Job: its first pods (`parallelism`, at most `completions`) `<name>-<5 random>`, labelled
//!   `job-name` and `batch.kubernetes.io/job-name`; its controller makes the others.
//!
//! A generated name's prefix is cut to 58 characters, as Kubernetes' name generator cuts
//! it, so that the name (the pod's hostname) is at most 63.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Candidate, Diag, Kind};
use crate::validate::dns_label_error;
use crate::{Owner, Source, WorkloadKind};

/// The characters of Kubernetes' random names and encoded hashes (`rand.String`,
/// `rand.SafeEncodeString`): no vowels, no 0, 1 or 3, so that no word is spelled.
pub(crate) const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// The random part of a generated name.
pub(crate) const RANDOM_LENGTH: usize = 5;
/// The longest prefix of a generated name (Kubernetes' `maxGeneratedNameLength`).
pub(crate) const MAX_GENERATED_PREFIX: usize = 63 - RANDOM_LENGTH;

/// The most pods of one workload: more than one host runs, and a bound on what a typo
/// (`replicas: 30000`) makes the loader build.
pub(crate) const MAX_REPLICAS: u32 = 1000;

pub(crate) const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
pub(crate) const JOB_NAME_LABEL: &str = "job-name";
pub(crate) const BATCH_JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub(crate) const STATEFULSET_POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub(crate) const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What a workload's spec says about its pods, besides the template.
#[derive(Debug, Default)]
pub(crate) struct WorkloadSpec {
    pub(crate) replicas: Option<i32>,
    /// StatefulSet only, as are the fields below.
    pub(crate) service_name: Option<String>,
    pub(crate) pod_management_policy: Option<String>,
    pub(crate) ordinals_start: Option<i32>,
    /// Each gives each pod a claim and a volume (see `claims`).
    pub(crate) volume_claim_templates: Vec<PersistentVolumeClaim>,
    /// A Job's spec (its fields are checked in `job`; `replicas` holds its first pods).
    pub(crate) job: Option<Box<k8s_openapi::api::batch::v1::JobSpec>>,
}

/// A workload's pods, and the one pod of it to validate (its template with one pod's name,
/// the longest: it is made even for `replicas: 0`, since Kubernetes validates the template
/// whatever the replicas).
pub(crate) struct Pods {
    pub(crate) check: Candidate,
    pub(crate) pods: Vec<Candidate>,
}

/// 32-bit FNV-1a, as Go's `hash/fnv` `New32a`.
pub(crate) fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Kubernetes' `rand.SafeEncodeString`: each byte of `s` mapped to [`ALPHANUMS`].
pub(crate) fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// The `pod-template-hash` of a Deployment's template: as Kubernetes' `ComputeHash`, the
/// FNV-1a hash of the template, printed in decimal and safe-encoded; here hashing the
/// template's JSON (Kubernetes hashes Go's printing of the object, which only Go has), so
/// the same template always gives the same hash, though not the one a cluster would give.
pub(crate) fn pod_template_hash(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    safe_encode(&fnv1a32(&json).to_string())
}

/// [`RANDOM_LENGTH`] random characters of [`ALPHANUMS`], each equally likely (Kubernetes'
/// `rand.String`). The bytes come from the kernel (`/dev/urandom`, what `getrandom` reads;
/// read here so that the crate needs no dependency for five characters), or, should that
/// fail, from the standard library's randomly seeded hasher.
pub(crate) fn random_suffix() -> String {
    use std::io::Read;
    // 243 = 9 × 27: bytes below it map evenly onto the alphabet.
    const LIMIT: u8 = (256 / ALPHANUMS.len() * ALPHANUMS.len()) as u8;
    let mut out = String::with_capacity(RANDOM_LENGTH);
    let mut urandom = std::fs::File::open("/dev/urandom").ok();
    let mut buf = [0u8; 16];
    while out.len() < RANDOM_LENGTH {
        let read = urandom
            .as_mut()
            .is_some_and(|f| f.read_exact(&mut buf).is_ok());
        if !read {
            buf = fallback_random();
        }
        for b in buf.iter().filter(|b| **b < LIMIT) {
            if out.len() < RANDOM_LENGTH {
                out.push(char::from(ALPHANUMS[usize::from(*b) % ALPHANUMS.len()]));
            }
        }
    }
    out
}

/// 16 bytes from `RandomState` (seeded from the OS once per thread, then a fresh key per
/// state) over a counter and the time.
fn fallback_random() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = [0u8; 16];
    for half in out.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(now);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    out
}

/// `base` cut to [`MAX_GENERATED_PREFIX`] bytes and [`random_suffix`], as Kubernetes'
/// `generateName`.
pub(crate) fn generate_name(base: &str) -> String {
    let mut end = base.len().min(MAX_GENERATED_PREFIX);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &base[..end], random_suffix())
}

impl Kind {
    pub(crate) fn workload_kind(self) -> Option<WorkloadKind> {
        Some(match self {
            Kind::Deployment => WorkloadKind::Deployment,
            Kind::ReplicaSet => WorkloadKind::ReplicaSet,
            Kind::DaemonSet => WorkloadKind::DaemonSet,
            Kind::StatefulSet => WorkloadKind::StatefulSet,
            Kind::Job => WorkloadKind::Job,
            _ => return None,
        })
    }
}

/// How many pods, after checking `replicas` (an error when negative, then none).
fn replicas(diag: &mut Diag, doc: usize, kind: Kind, spec: &WorkloadSpec) -> u32 {
    match kind {
        Kind::DaemonSet => 1,
        // Checked with the Job's other fields (`job`).
        Kind::Job => spec
            .replicas
            .unwrap_or(1)
            .clamp(0, MAX_REPLICAS as i32)
            .unsigned_abs(),
        _ => match spec.replicas {
            None => 1,
            Some(n) if n < 0 => {
                diag.error(
                    doc,
                    "spec.replicas",
                    format_args!("Invalid value: {n}: must be greater than or equal to 0"),
                );
                0
            }
            Some(n) if n.unsigned_abs() > MAX_REPLICAS => {
                diag.error(
                    doc,
                    "spec.replicas",
                    format_args!(
                        "Invalid value: {n}: podrun runs at most {MAX_REPLICAS} pods of a workload on one host"
                    ),
                );
                0
            }
            Some(n) => n.unsigned_abs(),
        },
    }
}

/// The StatefulSet's own fields: `podManagementPolicy`, `ordinals.start`, `serviceName`
/// (`volumeClaimTemplates`: see `claims`). Returns the first ordinal and whether pods start in order.
fn stateful_set(diag: &mut Diag, doc: usize, spec: &WorkloadSpec) -> (u32, bool) {
    let ordered = match spec.pod_management_policy.as_deref() {
        None | Some("") | Some("OrderedReady") => true,
        Some("Parallel") => false,
        Some(other) => {
            diag.error(
                doc,
                "spec.podManagementPolicy",
                format_args!("Invalid value: {other:?}: must be 'OrderedReady' or 'Parallel'"),
            );
            true
        }
    };
    let start = match spec.ordinals_start {
        Some(n) if n < 0 => {
            diag.error(
                doc,
                "spec.ordinals.start",
                format_args!("Invalid value: {n}: must be greater than or equal to 0"),
            );
            0
        }
        Some(n) => n.unsigned_abs(),
        None => 0,
    };
    if let Some(e) = spec
        .service_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(dns_label_error)
    {
        diag.error(doc, "spec.serviceName", e);
    }
    (start, ordered)
}

/// The pods of workload `name` (of `kind`, document `doc`): `template` is the pod
/// template as the file gives it (for the hash), `template_meta` and `spec` its parts,
/// `namespace` the workload's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pods(
    diag: &mut Diag,
    source: &Source,
    kind: Kind,
    name: &str,
    namespace: String,
    template: &PodTemplateSpec,
    template_meta: ObjectMeta,
    spec: PodSpec,
    workload: &WorkloadSpec,
) -> Pods {
    let doc = source.document;
    let workload_kind = kind
        .workload_kind()
        .expect("pods() is called for workloads only");
    let count = replicas(diag, doc, kind, workload);
    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    // Per pod: name, ordinal, extra labels.
    let mut names: Vec<(String, Option<u32>)> = Vec::new();
    let mut ordered = false;
    let mut subdomain = None;
    match kind {
        Kind::StatefulSet => {
            let (start, in_order) = stateful_set(diag, doc, workload);
            ordered = in_order;
            // An invalid serviceName was reported above, on its own field.
            subdomain = workload
                .service_name
                .clone()
                .filter(|s| !s.is_empty() && dns_label_error(s).is_none());
            for field in ["hostname", "subdomain"] {
                let set = match field {
                    "hostname" => spec.hostname.as_deref(),
                    _ => spec.subdomain.as_deref(),
                };
                if set.is_some_and(|s| !s.is_empty()) {
                    diag.warn(
                        doc,
                        &format!("spec.template.spec.{field}"),
                        "ignored: a StatefulSet's pods get their hostname from their name and their subdomain from spec.serviceName, as in Kubernetes",
                    );
                }
            }
            let last = start.saturating_add(count.max(1) - 1);
            let longest = format!("{name}-{last}");
            if dns_label_error(&longest).is_some() && !name.is_empty() {
                diag.error(
                    doc,
                    "metadata.name",
                    format_args!(
                        "Invalid value: {name:?}: the StatefulSet's pod name {longest:?} is the pod's hostname, which must be a lowercase RFC 1123 label of at most 63 characters (no dots)"
                    ),
                );
            }
            for i in 0..count.max(1) {
                let ordinal = start.saturating_add(i);
                names.push((format!("{name}-{ordinal}"), Some(ordinal)));
            }
        }
        _ => {
            let base = match kind {
                Kind::Deployment => {
                    let hash = pod_template_hash(template);
                    labels.insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone());
                    format!("{name}-{hash}-")
                }
                _ => format!("{name}-"),
            };
            if kind == Kind::Job {
                labels.insert(JOB_NAME_LABEL.to_string(), name.to_string());
                labels.insert(BATCH_JOB_NAME_LABEL.to_string(), name.to_string());
            }
            let mut taken = BTreeSet::new();
            while names.len() < count.max(1) as usize {
                let generated = generate_name(&base);
                if taken.insert(generated.clone()) {
                    names.push((generated, None));
                }
            }
        }
    }

    let make = |pod_name: &str, ordinal: Option<u32>| {
        let mut labels = labels.clone();
        let mut spec = spec.clone();
        if let Some(ordinal) = ordinal {
            labels.insert(STATEFULSET_POD_NAME_LABEL.to_string(), pod_name.to_string());
            labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
            spec.hostname = Some(pod_name.to_string());
            spec.subdomain = subdomain.clone();
            let templates = &workload.volume_claim_templates;
            super::claims::add_template_volumes(&mut spec, templates, pod_name);
        }
        Candidate {
            source: source.clone(),
            kind,
            owner: Some(Owner {
                kind: workload_kind,
                name: name.to_string(),
            }),
            ordinal,
            ordered,
            pod: Pod {
                metadata: ObjectMeta {
                    name: Some(pod_name.to_string()),
                    namespace: Some(namespace.clone()),
                    labels: (!labels.is_empty()).then_some(labels),
                    annotations: template_meta.annotations.clone(),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
                status: None,
            },
        }
    };
    let (last_name, last_ordinal) = names.last().cloned().unwrap_or_default();
    let mut check = make(&last_name, last_ordinal);
    if last_ordinal.is_some() && dns_label_error(&last_name).is_some() {
        // Reported above, on the StatefulSet's name.
        if let Some(spec) = check.pod.spec.as_mut() {
            spec.hostname = None;
        }
    }
    let pods = names
        .iter()
        .take(count as usize)
        .map(|(n, o)| make(n, *o))
        .collect();
    Pods { check, pods }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_go() {
        // Go: fnv.New32a() over "" and "a", and the FNV reference vector "foobar".
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_of_a_decimal_hash_uses_ten_characters() {
        // Digits 0-9 are bytes 48-57: 48 % 27 = 21 ('4') … 57 % 27 = 3 ('f').
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(safe_encode(&1_234_567_890u32.to_string()), "56789bcdf4");
    }

    #[test]
    fn generated_names_cut_the_prefix_to_58() {
        let name = generate_name(&format!("{}-", "a".repeat(70)));
        assert_eq!(name.len(), 63);
        assert!(name.starts_with(&"a".repeat(58)));
        assert!(name[58..].bytes().all(|b| ALPHANUMS.contains(&b)));
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
    }

    #[test]
    fn random_suffixes_use_the_whole_alphabet_and_differ() {
        let suffixes: Vec<String> = (0..400).map(|_| random_suffix()).collect();
        let distinct: BTreeSet<&String> = suffixes.iter().collect();
        assert!(distinct.len() > 395, "{}", distinct.len());
        let used: BTreeSet<u8> = suffixes.iter().flat_map(|s| s.bytes()).collect();
        assert_eq!(used.len(), ALPHANUMS.len());
        let fallback: BTreeSet<[u8; 16]> = (0..50).map(|_| fallback_random()).collect();
        assert_eq!(fallback.len(), 50);
    }
}
