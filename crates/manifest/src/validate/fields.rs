//! Validation of the downward API's references (`fieldRef`, `resourceFieldRef`), env var
//! names and file modes, shared by env vars and volumes.

pub(super) use podrun_process::env::{
    is_env_name, ENV_FIELD_PATHS, RESOURCE_FIELDS, VOLUME_FIELD_PATHS,
};

use super::*;

pub(super) const CPU_DIVISORS: &[&str] = &["1m", "1"];
pub(super) const BYTE_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];
pub(super) const MAX_FILE_MODE: i32 = 0o777;

pub(super) const ENV_NAME_RULE: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// A downward API `fieldRef` at `path` (`env`: for an env variable, else a volume file).
pub(super) fn field_ref(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    selector: &ObjectFieldSelector,
    env: bool,
) {
    if let Some(version) = selector.api_version.as_deref() {
        if !version.is_empty() && version != "v1" {
            diag.error(
                doc,
                &format!("{path}.apiVersion"),
                unsupported_value(version, &["v1"]),
            );
        }
    }
    let field = selector.field_path.as_str();
    let keyed = ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .find_map(|p| field.strip_prefix(p)?.strip_suffix("']"));
    let list = if env {
        ENV_FIELD_PATHS
    } else {
        VOLUME_FIELD_PATHS
    };
    if field.is_empty() {
        diag.error(doc, &format!("{path}.fieldPath"), "Required value");
    } else if let Some(key) = keyed {
        if key.is_empty() || key.contains('\'') {
            diag.error(
                doc,
                &format!("{path}.fieldPath"),
                format_args!("Invalid value: {field:?}: not a label or annotation key"),
            );
        }
    } else if !list.contains(&field) {
        let mut supported = list.to_vec();
        supported.extend(["metadata.labels['KEY']", "metadata.annotations['KEY']"]);
        diag.error(
            doc,
            &format!("{path}.fieldPath"),
            unsupported_value(field, &supported),
        );
    }
}

/// A downward API `resourceFieldRef` at `path`; `containers` are the pod's container names
/// (`containerName` is required in volumes, optional in env).
pub(super) fn resource_field_ref(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    selector: &ResourceFieldSelector,
    containers: &BTreeSet<&str>,
    env: bool,
) {
    match selector.container_name.as_deref().filter(|n| !n.is_empty()) {
        None if !env => diag.error(doc, &format!("{path}.containerName"), "Required value"),
        None => {}
        Some(name) if !containers.contains(name) => diag.error(
            doc,
            &format!("{path}.containerName"),
            format_args!("Not found: {name:?}: no container of that name in the pod"),
        ),
        Some(_) => {}
    }
    let resource = selector.resource.as_str();
    if resource.is_empty() {
        diag.error(doc, &format!("{path}.resource"), "Required value");
        return;
    }
    if !RESOURCE_FIELDS.contains(&resource) {
        diag.error(
            doc,
            &format!("{path}.resource"),
            unsupported_value(resource, RESOURCE_FIELDS),
        );
        return;
    }
    if let Some(divisor) = selector.divisor.as_ref().map(|d| d.0.as_str()) {
        let valid = if resource.ends_with(".cpu") {
            CPU_DIVISORS
        } else {
            BYTE_DIVISORS
        };
        if !valid.contains(&divisor) && divisor != "0" {
            diag.error(
                doc,
                &format!("{path}.divisor"),
                unsupported_value(divisor, valid),
            );
        }
    }
}

/// A file `mode` or `defaultMode` at `path`: 0 to 0777.
pub(super) fn file_mode(diag: &mut Diag, doc: usize, path: &str, mode: Option<i32>) {
    if let Some(mode) = mode.filter(|m| !(0..=MAX_FILE_MODE).contains(m)) {
        diag.error(
            doc,
            path,
            format_args!(
                "Invalid value: {mode}: must be a number between 0 and 0777 (octal), both inclusive"
            ),
        );
    }
}

/// The items of a downwardAPI volume or projection.
pub(super) fn downward_items(
    diag: &mut Diag,
    doc: usize,
    base: &str,
    items: &[DownwardAPIVolumeFile],
    containers: &BTreeSet<&str>,
) {
    for (j, item) in items.iter().enumerate() {
        let item_path = format!("{base}.items[{j}]");
        if item.path.is_empty() {
            diag.error(doc, &format!("{item_path}.path"), "Required value");
        } else if let Some(e) = relative_path_error(&item.path) {
            diag.error(doc, &format!("{item_path}.path"), e);
        }
        file_mode(diag, doc, &format!("{item_path}.mode"), item.mode);
        match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), None) => field_ref(diag, doc, &format!("{item_path}.fieldRef"), f, false),
            (None, Some(r)) => resource_field_ref(
                diag,
                doc,
                &format!("{item_path}.resourceFieldRef"),
                r,
                containers,
                false,
            ),
            (Some(_), Some(_)) => diag.error(
                doc,
                &item_path,
                "Invalid value: fieldRef and resourceFieldRef can not be specified simultaneously",
            ),
            (None, None) => diag.error(
                doc,
                &item_path,
                "Required value: one of fieldRef and resourceFieldRef is required",
            ),
        }
    }
}
