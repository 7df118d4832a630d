//! Validation of a pod's volumes (`spec.volumes`).

use super::*;

/// The largest `emptyDir.mode` the API server takes: the permission bits and the sticky bit.
const MAX_EMPTY_DIR_MODE: i32 = 0o1777;

pub(super) fn volume(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    volume: &Volume,
    refs: &Refs,
    containers: &BTreeSet<&str>,
) {
    if volume.name.is_empty() {
        diag.error(doc, &format!("{path}.name"), "Required value");
    } else if let Some(e) = dns_label_error(&volume.name) {
        diag.error(doc, &format!("{path}.name"), e);
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(volume) {
        let sources: Vec<&String> = map.keys().filter(|k| *k != "name").collect();
        if sources.len() > 1 {
            let name = sources.last().map(|s| s.as_str()).unwrap_or_default();
            diag.error(
                doc,
                &format!("{path}.{name}"),
                "Forbidden: may not specify more than 1 volume type",
            );
        }
    }
    if let Some(mode) = volume.empty_dir.as_ref().and_then(|e| e.mode) {
        if !(0..=MAX_EMPTY_DIR_MODE).contains(&mode) {
            diag.error(
                doc,
                &format!("{path}.emptyDir.mode"),
                format_args!(
                    "Invalid value: {mode}: must be a number between 0 and 01777 (octal), both inclusive"
                ),
            );
        }
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        if claim.claim_name.is_empty() {
            let field = format!("{path}.persistentVolumeClaim.claimName");
            diag.error(doc, &field, "Required value");
        }
    }
    if let Some(host) = &volume.host_path {
        if host.path.is_empty() {
            diag.error(doc, &format!("{path}.hostPath.path"), "Required value");
        } else if host.path.split('/').any(|p| p == "..") {
            diag.error(
                doc,
                &format!("{path}.hostPath.path"),
                format_args!("Invalid value: {:?}: must not contain '..'", host.path),
            );
        }
        if let Some(t) = host.type_.as_deref() {
            if !HOST_PATH_TYPES.contains(&t) {
                diag.error(
                    doc,
                    &format!("{path}.hostPath.type"),
                    unsupported_value(t, &HOST_PATH_TYPES[1..]),
                );
            }
        }
    }
    if let Some(cm) = &volume.config_map {
        let base = format!("{path}.configMap");
        let optional = cm.optional.unwrap_or(false);
        let found = refs.check_object(
            diag,
            doc,
            RefKind::ConfigMap,
            &format!("{base}.name"),
            Some(&cm.name),
            optional,
        );
        items(
            diag,
            doc,
            &base,
            cm.items.as_deref(),
            refs,
            RefKind::ConfigMap,
            found.then_some(cm.name.as_str()),
            optional,
        );
    }
    if let Some(secret) = &volume.secret {
        let base = format!("{path}.secret");
        let optional = secret.optional.unwrap_or(false);
        let found = refs.check_object(
            diag,
            doc,
            RefKind::Secret,
            &format!("{base}.secretName"),
            secret.secret_name.as_deref(),
            optional,
        );
        let name = secret.secret_name.as_deref().filter(|_| found);
        items(
            diag,
            doc,
            &base,
            secret.items.as_deref(),
            refs,
            RefKind::Secret,
            name,
            optional,
        );
        file_mode(
            diag,
            doc,
            &format!("{base}.defaultMode"),
            secret.default_mode,
        );
    }
    if let Some(cm) = &volume.config_map {
        file_mode(
            diag,
            doc,
            &format!("{path}.configMap.defaultMode"),
            cm.default_mode,
        );
    }
    if let Some(downward) = &volume.downward_api {
        let base = format!("{path}.downwardAPI");
        file_mode(
            diag,
            doc,
            &format!("{base}.defaultMode"),
            downward.default_mode,
        );
        downward_items(
            diag,
            doc,
            &base,
            downward.items.as_deref().unwrap_or_default(),
            containers,
        );
    }
    if let Some(projected) = &volume.projected {
        projected_volume(
            diag,
            doc,
            &format!("{path}.projected"),
            projected,
            refs,
            containers,
        );
    }
}

/// A projected volume: configMap, secret and downwardAPI sources; the sources that need an
/// API server are refused by name.
pub(super) fn projected_volume(
    diag: &mut Diag,
    doc: usize,
    base: &str,
    projected: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    refs: &Refs,
    containers: &BTreeSet<&str>,
) {
    file_mode(
        diag,
        doc,
        &format!("{base}.defaultMode"),
        projected.default_mode,
    );
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for (k, source) in projected.sources.iter().flatten().enumerate() {
        let source_path = format!("{base}.sources[{k}]");
        let refused = [
            (
                "serviceAccountToken",
                source.service_account_token.is_some(),
            ),
            ("clusterTrustBundle", source.cluster_trust_bundle.is_some()),
            ("podCertificate", source.pod_certificate.is_some()),
        ];
        for (name, _) in refused.iter().filter(|(_, set)| *set) {
            diag.error(
                doc,
                &format!("{source_path}.{name}"),
                "Forbidden: not supported by podrun: it is issued by a cluster's API server, which podrun does not have",
            );
        }
        let count = [
            source.config_map.is_some(),
            source.secret.is_some(),
            source.downward_api.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count()
            + refused.iter().filter(|(_, set)| *set).count();
        if count > 1 {
            diag.error(
                doc,
                &source_path,
                "Forbidden: may not specify more than 1 volume type per source",
            );
        }
        if count == 0 {
            diag.error(
                doc,
                &source_path,
                "Required value: must specify exactly 1 volume type",
            );
        }
        let mut item_paths: Vec<&str> = Vec::new();
        if let Some(cm) = &source.config_map {
            let sub = format!("{source_path}.configMap");
            let optional = cm.optional.unwrap_or(false);
            let found = refs.check_object(
                diag,
                doc,
                RefKind::ConfigMap,
                &format!("{sub}.name"),
                Some(&cm.name),
                optional,
            );
            items(
                diag,
                doc,
                &sub,
                cm.items.as_deref(),
                refs,
                RefKind::ConfigMap,
                found.then_some(cm.name.as_str()),
                optional,
            );
            item_paths.extend(cm.items.iter().flatten().map(|i| i.path.as_str()));
        }
        if let Some(secret) = &source.secret {
            let sub = format!("{source_path}.secret");
            let optional = secret.optional.unwrap_or(false);
            let found = refs.check_object(
                diag,
                doc,
                RefKind::Secret,
                &format!("{sub}.name"),
                Some(&secret.name),
                optional,
            );
            items(
                diag,
                doc,
                &sub,
                secret.items.as_deref(),
                refs,
                RefKind::Secret,
                found.then_some(secret.name.as_str()),
                optional,
            );
            item_paths.extend(secret.items.iter().flatten().map(|i| i.path.as_str()));
        }
        if let Some(downward) = &source.downward_api {
            let items = downward.items.as_deref().unwrap_or_default();
            downward_items(
                diag,
                doc,
                &format!("{source_path}.downwardAPI"),
                items,
                containers,
            );
            item_paths.extend(items.iter().map(|i| i.path.as_str()));
        }
        for item_path in item_paths.into_iter().filter(|p| !p.is_empty()) {
            if !paths.insert(item_path.to_string()) {
                diag.error(
                    doc,
                    &source_path,
                    format_args!("Invalid value: {item_path:?}: conflicting duplicate paths"),
                );
            }
        }
    }
}

/// `items` of a configMap/secret volume; `name` is the referred object when it exists.
#[allow(clippy::too_many_arguments)]
pub(super) fn items(
    diag: &mut Diag,
    doc: usize,
    base: &str,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    refs: &Refs,
    kind: RefKind,
    name: Option<&str>,
    optional: bool,
) {
    for (j, item) in items.into_iter().flatten().enumerate() {
        let item_path = format!("{base}.items[{j}]");
        match name {
            Some(name) => refs.check_key(
                diag,
                doc,
                kind,
                name,
                &format!("{item_path}.key"),
                &item.key,
                optional,
            ),
            None if item.key.is_empty() => {
                diag.error(doc, &format!("{item_path}.key"), "Required value")
            }
            None => {}
        }
        if item.path.is_empty() {
            diag.error(doc, &format!("{item_path}.path"), "Required value");
        } else if let Some(e) = relative_path_error(&item.path) {
            diag.error(doc, &format!("{item_path}.path"), e);
        }
    }
}
