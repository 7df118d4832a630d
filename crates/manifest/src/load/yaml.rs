//! YAML as Kubernetes reads it, where it differs from YAML 1.2: octal file modes, and the
//! helpers of the first pass (merge keys, what a value is).

use serde_yaml_ng::Value;

/// File modes written the way Kubernetes manifests write them, `defaultMode: 0644`: a YAML 1.1
/// octal integer, which Kubernetes' YAML reader takes as 420 but YAML 1.2 (this reader)
/// leaves a string. Turns such values of `mode` and `defaultMode` keys (`0644`, `0o644`)
/// into numbers; returns whether it changed anything. (A quoted "0644" is accepted too,
/// which Kubernetes would refuse.)
pub(super) fn octal_modes_to_numbers(value: &mut Value) -> bool {
    match value {
        Value::Mapping(map) => {
            let mut changed = false;
            for (key, item) in map.iter_mut() {
                let is_mode = matches!(key.as_str(), Some("mode" | "defaultMode"));
                let octal = item.as_str().and_then(|s| {
                    let digits = s.strip_prefix("0o").or_else(|| s.strip_prefix('0'))?;
                    u32::from_str_radix(digits, 8).ok()
                });
                match octal {
                    Some(number) if is_mode => {
                        *item = Value::Number(number.into());
                        changed = true;
                    }
                    _ => changed |= octal_modes_to_numbers(item),
                }
            }
            changed
        }
        Value::Sequence(items) => items.iter_mut().fold(false, |changed, item| {
            octal_modes_to_numbers(item) | changed
        }),
        Value::Tagged(tagged) => octal_modes_to_numbers(&mut tagged.value),
        _ => false,
    }
}

pub(super) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn has_merge_key(value: &Value) -> bool {
    match value {
        Value::Mapping(map) => map
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_key(v)),
        Value::Sequence(items) => items.iter().any(has_merge_key),
        Value::Tagged(tagged) => has_merge_key(&tagged.value),
        _ => false,
    }
}

/// The path of a field `serde_ignored` reports, Kubernetes style
/// (`spec.containers[0].imagePullPolcy`).
pub(super) fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}
