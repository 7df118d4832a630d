//! Reading the YAML stream: documents, kinds, typed deserialization, unknown and unsupported
//! fields. Validation proper lives in `validate`.

use std::collections::BTreeMap;
use std::fmt::Display;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, PodTemplateSpec, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::supported::AllowList;
use crate::validate;
use crate::{
    LoadOptions, Manifest, ManifestError, Owner, PodManifest, ServiceManifest, Source,
    DEFAULT_NAMESPACE,
};

mod claims;
mod job;
mod service;
mod workloads;
mod yaml;

use yaml::{describe, has_merge_key, ignored_path, octal_modes_to_numbers};

pub(crate) use workloads::generate_name as generated_name;
use workloads::WorkloadSpec;

/// The kinds podrun reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Pod,
    ConfigMap,
    Secret,
    Service,
    PersistentVolumeClaim,
    Deployment,
    DaemonSet,
    ReplicaSet,
    StatefulSet,
    Job,
}

const KINDS: &[(Kind, &str, &str)] = &[
    (Kind::Pod, "Pod", "v1"),
    (Kind::ConfigMap, "ConfigMap", "v1"),
    (Kind::Secret, "Secret", "v1"),
    (Kind::Service, "Service", "v1"),
    (Kind::PersistentVolumeClaim, "PersistentVolumeClaim", "v1"),
    (Kind::Deployment, "Deployment", "apps/v1"),
    (Kind::DaemonSet, "DaemonSet", "apps/v1"),
    (Kind::ReplicaSet, "ReplicaSet", "apps/v1"),
    (Kind::StatefulSet, "StatefulSet", "apps/v1"),
    (Kind::Job, "Job", "batch/v1"),
];

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("", |e| e.1)
    }

    fn api_version(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("", |e| e.2)
    }

    /// Whether the pod template of this kind is run (rather than the object being a pod
    /// or a source of configuration).
    pub(crate) fn is_workload(self) -> bool {
        matches!(
            self,
            Kind::Deployment | Kind::DaemonSet | Kind::ReplicaSet | Kind::StatefulSet | Kind::Job
        )
    }
}

/// Errors and warnings, each tagged with its document so that the final lists come out in
/// file order.
pub(crate) struct Diag<'a> {
    pub(crate) file: &'a str,
    pub(crate) strict: bool,
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
}

impl<'a> Diag<'a> {
    fn new(file: &'a str, strict: bool) -> Self {
        Diag {
            file,
            strict,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn line(&self, doc: usize, path: &str, msg: impl Display) -> String {
        if path.is_empty() {
            format!("{}: document {doc}: {msg}", self.file)
        } else {
            format!("{}: document {doc}: {path}: {msg}", self.file)
        }
    }

    /// An error about the field at `path` (may be empty) of document `doc`.
    pub(crate) fn error(&mut self, doc: usize, path: &str, msg: impl Display) {
        let line = self.line(doc, path, msg);
        self.errors.push((doc, line));
    }

    /// A warning about the field at `path` (may be empty) of document `doc`.
    pub(crate) fn warn(&mut self, doc: usize, path: &str, msg: impl Display) {
        let line = self.line(doc, path, msg);
        self.warnings.push((doc, line));
    }

    /// A warning, or an error in strict mode.
    fn lenient(&mut self, doc: usize, path: &str, msg: impl Display) {
        if self.strict {
            self.error(doc, path, msg);
        } else {
            self.warn(doc, path, msg);
        }
    }

    fn finish(mut self) -> (Vec<String>, Vec<String>) {
        // Stable: within a document the order of discovery is kept.
        self.errors.sort_by_key(|(doc, _)| *doc);
        self.warnings.sort_by_key(|(doc, _)| *doc);
        (
            self.errors.into_iter().map(|(_, l)| l).collect(),
            self.warnings.into_iter().map(|(_, l)| l).collect(),
        )
    }
}

/// What the first pass decided about a document.
enum Plan {
    /// Empty, ignored, or already reported as invalid.
    Skip,
    /// Read as `kind`; `merged` holds the document with YAML merge keys (`<<`) applied when
    /// it has any (the typed pass then reads this value instead of the text).
    Read { kind: Kind, merged: Option<Value> },
}

/// A typed document.
enum Object {
    Pod(Box<Pod>),
    ConfigMap(Box<ConfigMap>),
    Secret(Box<Secret>),
    Service(Box<Service>),
    Claim(Box<PersistentVolumeClaim>),
    Workload {
        kind: Kind,
        metadata: Box<ObjectMeta>,
        template: Option<Box<PodTemplateSpec>>,
        spec: WorkloadSpec,
    },
}

/// A pod waiting for validation.
#[derive(Clone)]
pub(crate) struct Candidate {
    pub(crate) source: Source,
    pub(crate) kind: Kind,
    pub(crate) owner: Option<Owner>,
    pub(crate) ordinal: Option<u32>,
    pub(crate) ordered: bool,
    pub(crate) pod: Pod,
}

pub(crate) fn load(
    file: &str,
    text: &str,
    options: &LoadOptions,
) -> Result<Manifest, ManifestError> {
    let mut diag = Diag::new(file, options.strict);

    // Pass 1: syntax, and what each document is.
    let mut plans = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let doc = i + 1;
        let value = match Value::deserialize(de) {
            Ok(value) => value,
            Err(e) => {
                // The stream cannot be resumed after a syntax error (the iterator would
                // repeat it forever), so this ends the load.
                let (location, message) = yaml_error(&e, None);
                return Err(ManifestError::Parse {
                    file: file.to_string(),
                    document: doc,
                    line: location.map(|l| l.0),
                    column: location.map(|l| l.1),
                    message,
                });
            }
        };
        plans.push(classify(&mut diag, doc, value));
    }

    // Pass 2: the typed objects.
    let mut objects = Vec::new();
    let documents = serde_yaml_ng::Deserializer::from_str(text);
    for ((i, de), plan) in documents.enumerate().zip(plans) {
        let doc = i + 1;
        let Plan::Read { kind, merged } = plan else {
            continue;
        };
        let read = match kind {
            Kind::Pod => typed::<Pod>(de, merged).map(|(o, u)| (Object::Pod(Box::new(o)), u)),
            Kind::ConfigMap => {
                typed::<ConfigMap>(de, merged).map(|(o, u)| (Object::ConfigMap(Box::new(o)), u))
            }
            Kind::Secret => {
                typed::<Secret>(de, merged).map(|(o, u)| (Object::Secret(Box::new(o)), u))
            }
            Kind::Service => {
                typed::<Service>(de, merged).map(|(o, u)| (Object::Service(Box::new(o)), u))
            }
            Kind::PersistentVolumeClaim => typed::<PersistentVolumeClaim>(de, merged)
                .map(|(o, u)| (Object::Claim(Box::new(o)), u)),
            Kind::Deployment => typed::<Deployment>(de, merged).map(|(o, u)| {
                let spec = WorkloadSpec {
                    replicas: o.spec.replicas,
                    ..WorkloadSpec::default()
                };
                (workload(kind, o.metadata, Some(o.spec.template), spec), u)
            }),
            Kind::DaemonSet => typed::<DaemonSet>(de, merged).map(|(o, u)| {
                let spec = WorkloadSpec::default();
                (workload(kind, o.metadata, Some(o.spec.template), spec), u)
            }),
            Kind::ReplicaSet => typed::<ReplicaSet>(de, merged).map(|(o, u)| {
                let spec = WorkloadSpec {
                    replicas: o.spec.replicas,
                    ..WorkloadSpec::default()
                };
                (workload(kind, o.metadata, o.spec.template, spec), u)
            }),
            Kind::StatefulSet => typed::<StatefulSet>(de, merged).map(|(o, u)| {
                let spec = WorkloadSpec {
                    replicas: o.spec.replicas,
                    service_name: o.spec.service_name,
                    pod_management_policy: o.spec.pod_management_policy,
                    ordinals_start: o.spec.ordinals.and_then(|ord| ord.start),
                    volume_claim_templates: o.spec.volume_claim_templates.unwrap_or_default(),
                    job: None,
                };
                (workload(kind, o.metadata, Some(o.spec.template), spec), u)
            }),
            Kind::Job => typed::<Job>(de, merged).map(|(o, u)| {
                let spec = WorkloadSpec {
                    replicas: Some(job::first_pods(o.spec.as_ref())),
                    job: o.spec.clone().map(Box::new),
                    ..WorkloadSpec::default()
                };
                (
                    workload(kind, o.metadata, o.spec.map(|s| s.template), spec),
                    u,
                )
            }),
        };
        match read {
            Ok((object, unknown)) => {
                for path in unknown {
                    diag.lenient(doc, "", format_args!("unknown field {path}"));
                }
                objects.push((doc, object));
            }
            Err(DocError { location, message }) => {
                let msg = match location {
                    Some((line, column)) => format!("line {line} column {column}: {message}"),
                    None => message,
                };
                diag.error(doc, "", msg);
            }
        }
    }

    // ConfigMaps and Secrets first: pods may refer to those of later documents.
    let mut config_maps: BTreeMap<String, (usize, ConfigMap)> = BTreeMap::new();
    let mut secrets: BTreeMap<String, (usize, Secret)> = BTreeMap::new();
    // The services by namespace and name, for duplicates.
    let mut services: Vec<ServiceManifest> = Vec::new();
    let mut service_names: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut claims = Vec::new();
    let mut jobs = Vec::new();
    // The pods to run, and the pods to validate: one per document (a workload's pods are
    // its template's, and their errors would repeat otherwise).
    let mut candidates = Vec::new();
    let mut checks = Vec::new();
    for (doc, object) in objects {
        let source = Source {
            file: file.to_string(),
            document: doc,
        };
        match object {
            Object::ConfigMap(cm) => {
                namespace_of(&mut diag, doc, &cm.metadata.namespace, options);
                validate::config_map(&mut diag, doc, &cm);
                if let Some(name) = cm.metadata.name.clone().filter(|n| !n.is_empty()) {
                    if let Some((first, _)) = config_maps.get(&name) {
                        diag.error(
                            doc,
                            "metadata.name",
                            format_args!(
                                "Duplicate value: {name:?}: a ConfigMap of that name is already defined in document {first}"
                            ),
                        );
                    } else {
                        config_maps.insert(name, (doc, *cm));
                    }
                }
            }
            Object::Secret(secret) => {
                namespace_of(&mut diag, doc, &secret.metadata.namespace, options);
                validate::secret(&mut diag, doc, &secret);
                if let Some(name) = secret.metadata.name.clone().filter(|n| !n.is_empty()) {
                    if let Some((first, _)) = secrets.get(&name) {
                        diag.error(
                            doc,
                            "metadata.name",
                            format_args!(
                                "Duplicate value: {name:?}: a Secret of that name is already defined in document {first}"
                            ),
                        );
                    } else {
                        secrets.insert(name, (doc, *secret));
                    }
                }
            }
            Object::Pod(mut pod) => {
                check_supported(
                    &mut diag,
                    doc,
                    "metadata",
                    &pod.metadata,
                    AllowList::metadata(),
                );
                validate::object_name(&mut diag, doc, "Pod", &pod.metadata);
                match &pod.spec {
                    Some(spec) => {
                        check_supported(&mut diag, doc, "spec", spec, AllowList::pod_spec())
                    }
                    None => diag.error(doc, "spec", "Required value"),
                }
                if pod.spec.is_some() {
                    pod.metadata.namespace = Some(namespace_of(
                        &mut diag,
                        doc,
                        &pod.metadata.namespace,
                        options,
                    ));
                    // Only the desired state is run; a status (as in `kubectl get -o yaml`
                    // output) is read-only in Kubernetes and dropped here.
                    pod.status = None;
                    let candidate = Candidate {
                        source,
                        kind: Kind::Pod,
                        owner: None,
                        ordinal: None,
                        ordered: false,
                        pod: *pod,
                    };
                    checks.push(candidate.clone());
                    candidates.push(candidate);
                }
            }
            Object::Service(mut svc) => {
                check_supported(
                    &mut diag,
                    doc,
                    "metadata",
                    &svc.metadata,
                    AllowList::metadata(),
                );
                if let Some(spec) = &svc.spec {
                    check_supported(&mut diag, doc, "spec", spec, AllowList::service_spec());
                }
                service::service(&mut diag, doc, &mut svc);
                let namespace = namespace_of(&mut diag, doc, &svc.metadata.namespace, options);
                svc.metadata.namespace = Some(namespace.clone());
                if let Some(name) = svc.metadata.name.clone().filter(|n| !n.is_empty()) {
                    if let Some(first) = service_names.get(&(namespace.clone(), name.clone())) {
                        diag.error(
                            doc,
                            "metadata.name",
                            format_args!(
                                "Duplicate value: {name:?}: a Service of that name is already defined in document {first}"
                            ),
                        );
                        continue;
                    }
                    service_names.insert((namespace, name), doc);
                }
                services.push(ServiceManifest {
                    source,
                    service: *svc,
                });
            }
            Object::Claim(pvc) => {
                let namespace = namespace_of(&mut diag, doc, &pvc.metadata.namespace, options);
                claims::claim(&mut diag, &source, *pvc, namespace, &mut claims);
            }
            Object::Workload {
                kind,
                metadata,
                template,
                spec: workload_spec,
            } => {
                let name = metadata.name.clone().unwrap_or_default();
                check_supported(
                    &mut diag,
                    doc,
                    "metadata",
                    &*metadata,
                    AllowList::metadata(),
                );
                validate::object_name(&mut diag, doc, kind.name(), &metadata);
                let template = template.map(|t| *t).unwrap_or_default();
                let template_meta = template.metadata.clone().unwrap_or_default();
                check_supported(
                    &mut diag,
                    doc,
                    "spec.template.metadata",
                    &template_meta,
                    AllowList::metadata(),
                );
                let Some(spec) = template.spec.clone() else {
                    diag.error(doc, "spec.template.spec", "Required value");
                    continue;
                };
                check_supported(
                    &mut diag,
                    doc,
                    "spec.template.spec",
                    &spec,
                    AllowList::pod_spec(),
                );
                let given = metadata
                    .namespace
                    .clone()
                    .or(template_meta.namespace.clone())
                    .filter(|n| !n.is_empty());
                let namespace = namespace_of(&mut diag, doc, &given, options);
                if kind == Kind::Job {
                    let spec = workload_spec.job.as_deref();
                    jobs.push(job::job(&mut diag, &source, &name, &namespace, spec));
                }
                let template_spec = spec.clone();
                let pods = workloads::pods(
                    &mut diag,
                    &source,
                    kind,
                    &name,
                    namespace,
                    &template,
                    template_meta,
                    spec,
                    &workload_spec,
                );
                let templates = &workload_spec.volume_claim_templates;
                claims::stateful_set(
                    &mut diag,
                    &source,
                    &name,
                    templates,
                    &template_spec,
                    &pods.pods,
                    &mut claims,
                );
                checks.push(pods.check);
                candidates.extend(pods.pods);
            }
        }
    }

    let config_maps: BTreeMap<String, ConfigMap> =
        config_maps.into_iter().map(|(k, (_, v))| (k, v)).collect();
    let secrets: BTreeMap<String, Secret> = secrets.into_iter().map(|(k, (_, v))| (k, v)).collect();

    for check in &checks {
        validate::pod(&mut diag, check, &config_maps, &secrets);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for candidate in &candidates {
        let name = candidate.pod.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            continue;
        }
        let doc = candidate.source.document;
        if let Some(first) = seen.get(&name) {
            diag.error(
                doc,
                "metadata.name",
                format_args!(
                    "Duplicate value: {name:?}: a pod of that name is already defined in document {first}"
                ),
            );
        } else {
            seen.insert(name, doc);
        }
    }

    claims::finish(&mut diag, &mut claims);
    let (errors, warnings) = diag.finish();
    if !errors.is_empty() {
        return Err(ManifestError::Invalid { errors });
    }
    if checks.is_empty() {
        return Err(ManifestError::NoPods {
            file: file.to_string(),
        });
    }
    Ok(Manifest {
        pods: candidates
            .into_iter()
            .map(|c| PodManifest {
                source: c.source,
                kind: c.kind.name().to_string(),
                owner: c.owner,
                ordinal: c.ordinal,
                ordered: c.ordered,
                pod: c.pod,
            })
            .collect(),
        services,
        config_maps,
        secrets,
        claims,
        jobs,
        warnings,
    })
}

/// The namespace of an object whose metadata says `given`: `given`, else
/// [`LoadOptions::namespace`], else `default`. As kubectl does, an object that names a
/// namespace other than the one asked for is an error.
fn namespace_of(
    diag: &mut Diag,
    doc: usize,
    given: &Option<String>,
    options: &LoadOptions,
) -> String {
    let given = given.as_deref().filter(|n| !n.is_empty());
    match (given, options.namespace.as_deref()) {
        (Some(given), Some(asked)) if given != asked => {
            diag.error(
                doc,
                "metadata.namespace",
                format_args!(
                    "the namespace from the provided object {given:?} does not match the namespace {asked:?}: pass -n {given}, or none"
                ),
            );
            given.to_string()
        }
        (Some(given), _) => given.to_string(),
        (None, Some(asked)) => asked.to_string(),
        (None, None) => DEFAULT_NAMESPACE.to_string(),
    }
}

fn workload(
    kind: Kind,
    metadata: ObjectMeta,
    template: Option<PodTemplateSpec>,
    spec: WorkloadSpec,
) -> Object {
    Object::Workload {
        kind,
        metadata: Box::new(metadata),
        template: template.map(Box::new),
        spec,
    }
}

/// Reports the fields of `object` (serialized to JSON) that `list` does not allow.
fn check_supported<T: serde::Serialize>(
    diag: &mut Diag,
    doc: usize,
    prefix: &str,
    object: &T,
    list: &AllowList,
) {
    let Ok(value) = serde_json::to_value(object) else {
        return;
    };
    for path in list.unsupported(&value) {
        let full = if path.starts_with('[') {
            format!("{prefix}{path}")
        } else {
            format!("{prefix}.{path}")
        };
        let why = if prefix.ends_with("spec") && crate::supported::is_scheduling_field(&path) {
            "a scheduling field: podrun runs the pod on this host"
        } else {
            "not supported by podrun yet"
        };
        if diag.strict {
            diag.error(doc, &full, why);
        } else {
            diag.warn(doc, &full, format_args!("{why}; ignored"));
        }
    }
}

/// First pass over one document: is it empty, supported, ignored or wrong?
fn classify(diag: &mut Diag, doc: usize, mut value: Value) -> Plan {
    let map = match &value {
        Value::Null => return Plan::Skip,
        Value::Mapping(map) => map,
        other => {
            diag.error(
                doc,
                "",
                format_args!(
                    "not a Kubernetes object: expected a mapping with apiVersion and kind, found {}",
                    describe(other)
                ),
            );
            return Plan::Skip;
        }
    };
    let field = |diag: &mut Diag, name: &str| -> Option<String> {
        match map.get(name) {
            None | Some(Value::Null) => {
                diag.error(doc, name, "Required value");
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                diag.error(doc, name, "Required value");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                diag.error(
                    doc,
                    name,
                    format_args!(
                        "Invalid value: expected a string, found {}",
                        describe(other)
                    ),
                );
                None
            }
        }
    };
    let api_version = field(diag, "apiVersion");
    let kind_name = field(diag, "kind");
    let (Some(api_version), Some(kind_name)) = (api_version, kind_name) else {
        return Plan::Skip;
    };
    let object_name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(|n| format!(" `{n}`"))
        .unwrap_or_default();
    if kind_name == "CronJob" {
        diag.error(
            doc,
            "",
            format_args!(
                "CronJob{object_name}: podrun runs no schedules; run its job template as a Job (kind: Job) instead"
            ),
        );
        return Plan::Skip;
    }
    let Some(&(kind, _, expected)) = KINDS.iter().find(|(_, k, _)| *k == kind_name) else {
        if let Some((_, k, _)) = KINDS
            .iter()
            .find(|(_, k, _)| k.eq_ignore_ascii_case(&kind_name))
        {
            diag.error(
                doc,
                "kind",
                format_args!("Unsupported value: {kind_name:?}: kinds are case-sensitive; did you mean {k:?}?"),
            );
            return Plan::Skip;
        }
        diag.warn(
            doc,
            "",
            format_args!(
                "{kind_name}{object_name} ({api_version}): kind not supported by podrun; ignored"
            ),
        );
        return Plan::Skip;
    };
    if api_version != expected {
        diag.error(
            doc,
            "apiVersion",
            format_args!(
                "Unsupported value: {api_version:?}: supported values: {expected:?} (for kind {kind_name})"
            ),
        );
        return Plan::Skip;
    }
    debug_assert_eq!(kind.api_version(), expected);
    let mut merged = if has_merge_key(&value) {
        match value.apply_merge() {
            Ok(()) => Some(value.clone()),
            Err(e) => {
                diag.error(doc, "", format_args!("YAML merge key (<<): {e}"));
                return Plan::Skip;
            }
        }
    } else {
        None
    };
    if octal_modes_to_numbers(&mut value) {
        // The merged value (if any) had the same modes: redo it from the fixed value.
        let _ = value.apply_merge();
        merged = Some(value);
    }
    Plan::Read { kind, merged }
}

/// A failed typed read of one document.
struct DocError {
    location: Option<(usize, usize)>,
    message: String,
}

/// Reads one document as `T`, from the text (so that errors have line and column) or, when
/// the document had merge keys, from the merged value. Returns the paths of the fields `T`
/// does not know, Kubernetes style (`spec.containers[0].imagePullPolcy`).
fn typed<T: DeserializeOwned>(
    de: serde_yaml_ng::Deserializer<'_>,
    merged: Option<Value>,
) -> Result<(T, Vec<String>), DocError> {
    match merged {
        Some(value) => typed_from(value),
        None => typed_from(de),
    }
}

fn typed_from<'de, T, D>(de: D) -> Result<(T, Vec<String>), DocError>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de, Error = serde_yaml_ng::Error>,
{
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let de = serde_path_to_error::Deserializer::new(de, &mut track);
        serde_ignored::deserialize(de, |path| unknown.push(ignored_path(&path)))
    };
    match result {
        Ok(value) => Ok((value, unknown)),
        Err(e) => {
            let path = track.path().to_string();
            let (location, message) = yaml_error(&e, Some(&path));
            Err(DocError { location, message })
        }
    }
}

/// The location of a YAML error and its message without the location (which the caller
/// shows in front), prefixed with the field path when the message lacks it.
fn yaml_error(e: &serde_yaml_ng::Error, path: Option<&str>) -> (Option<(usize, usize)>, String) {
    let location = e.location().map(|l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some((line, column)) = location {
        message = message.replace(&format!(" at line {line} column {column}"), "");
    }
    if let Some(path) = path.filter(|p| !p.is_empty() && *p != ".") {
        if !message.starts_with(&format!("{path}: ")) {
            message = format!("{path}: {message}");
        }
    }
    (location, message)
}
