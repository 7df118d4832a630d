//! Validation of a pod's containers and init containers, their ports and mounts.

use super::*;

/// A hostPort may be used once per protocol and host IP in the pod (Kubernetes' rule).
pub(super) fn unique_host_ports(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    c: &Container,
    seen: &mut BTreeSet<(i32, String, String)>,
) {
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
            continue;
        };
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
        let host_ip = port.host_ip.clone().unwrap_or_default();
        if !seen.insert((host_port, protocol.clone(), host_ip)) {
            diag.error(
                doc,
                &format!("{path}.ports[{j}].hostPort"),
                format_args!("Duplicate value: \"{host_port}/{protocol}\""),
            );
        }
    }
}

/// Why `s` is not an IANA service name (a port's `name`), if it is not.
pub(crate) fn port_name_error(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let why = if s.len() > 15 {
        "must be no more than 15 characters"
    } else if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
    } else if !b.iter().any(|c| c.is_ascii_lowercase()) {
        "must contain at least one letter (a-z)"
    } else if s.contains("--") {
        "must not contain consecutive hyphens"
    } else if s.starts_with('-') || s.ends_with('-') {
        "must not begin or end with a hyphen"
    } else {
        return None;
    };
    Some(format!("Invalid value: {s:?}: {why}"))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn container(
    diag: &mut Diag,
    doc: usize,
    path: &str,
    c: &Container,
    init: bool,
    volumes: &BTreeSet<&str>,
    refs: &Refs,
    containers: &BTreeSet<&str>,
) {
    if c.name.is_empty() {
        diag.error(doc, &format!("{path}.name"), "Required value");
    } else if let Some(e) = dns_label_error(&c.name) {
        diag.error(doc, &format!("{path}.name"), e);
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        diag.error(doc, &format!("{path}.image"), "Required value");
    }
    if let Some(p) = c.image_pull_policy.as_deref() {
        if !PULL_POLICIES.contains(&p) {
            diag.error(
                doc,
                &format!("{path}.imagePullPolicy"),
                unsupported_value(p, PULL_POLICIES),
            );
        }
    }
    if init {
        if let Some(p) = c.restart_policy.as_deref() {
            if p != "Always" {
                diag.error(
                    doc,
                    &format!("{path}.restartPolicy"),
                    unsupported_value(p, &["Always"]),
                );
            }
        }
    }

    let mut port_names = BTreeSet::new();
    for (j, port) in c.ports.iter().flatten().enumerate() {
        let port_path = format!("{path}.ports[{j}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            if let Some(e) = port_name_error(name) {
                diag.error(doc, &format!("{port_path}.name"), e);
            } else if !port_names.insert(name) {
                diag.error(
                    doc,
                    &format!("{port_path}.name"),
                    format_args!("Duplicate value: {name:?}"),
                );
            }
        }
        if !(1..=65535).contains(&port.container_port) {
            diag.error(
                doc,
                &format!("{port_path}.containerPort"),
                format_args!(
                    "Invalid value: {}: must be between 1 and 65535, inclusive",
                    port.container_port
                ),
            );
        }
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            if !(1..=65535).contains(&host_port) {
                diag.error(
                    doc,
                    &format!("{port_path}.hostPort"),
                    format_args!(
                        "Invalid value: {host_port}: must be between 1 and 65535, inclusive"
                    ),
                );
            }
        }
        if let Some(proto) = port.protocol.as_deref() {
            if !PROTOCOLS.contains(&proto) {
                diag.error(
                    doc,
                    &format!("{port_path}.protocol"),
                    unsupported_value(proto, PROTOCOLS),
                );
            }
        }
    }

    for (j, env) in c.env.iter().flatten().enumerate() {
        let env_path = format!("{path}.env[{j}]");
        if env.name.is_empty() {
            diag.error(doc, &format!("{env_path}.name"), "Required value");
        } else if !is_env_name(&env.name) {
            diag.error(
                doc,
                &format!("{env_path}.name"),
                format_args!("Invalid value: {:?}: {ENV_NAME_RULE}", env.name),
            );
        }
        let Some(from) = &env.value_from else {
            continue;
        };
        if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
            diag.error(
                doc,
                &format!("{env_path}.valueFrom"),
                "Invalid value: \"\": may not be specified when `value` is not empty",
            );
        }
        if let Some(f) = &from.field_ref {
            field_ref(
                diag,
                doc,
                &format!("{env_path}.valueFrom.fieldRef"),
                f,
                true,
            );
        }
        if let Some(r) = &from.resource_field_ref {
            resource_field_ref(
                diag,
                doc,
                &format!("{env_path}.valueFrom.resourceFieldRef"),
                r,
                containers,
                true,
            );
        }
        if let Some(sel) = &from.config_map_key_ref {
            let base = format!("{env_path}.valueFrom.configMapKeyRef");
            let optional = sel.optional.unwrap_or(false);
            if refs.check_object(
                diag,
                doc,
                RefKind::ConfigMap,
                &format!("{base}.name"),
                Some(&sel.name),
                optional,
            ) {
                refs.check_key(
                    diag,
                    doc,
                    RefKind::ConfigMap,
                    &sel.name,
                    &format!("{base}.key"),
                    &sel.key,
                    optional,
                );
                if refs.only_binary(&sel.name, &sel.key) && !optional {
                    diag.error(
                        doc,
                        &format!("{base}.key"),
                        format_args!(
                            "Invalid value: {:?}: the key is in binaryData, which the environment cannot hold (only data is read, as by the kubelet)",
                            sel.key
                        ),
                    );
                }
            }
        }
        if let Some(sel) = &from.secret_key_ref {
            let base = format!("{env_path}.valueFrom.secretKeyRef");
            let optional = sel.optional.unwrap_or(false);
            if refs.check_object(
                diag,
                doc,
                RefKind::Secret,
                &format!("{base}.name"),
                Some(&sel.name),
                optional,
            ) {
                refs.check_key(
                    diag,
                    doc,
                    RefKind::Secret,
                    &sel.name,
                    &format!("{base}.key"),
                    &sel.key,
                    optional,
                );
            }
        }
    }

    for (j, from) in c.env_from.iter().flatten().enumerate() {
        let from_path = format!("{path}.envFrom[{j}]");
        if let Some(prefix) = from.prefix.as_deref().filter(|p| !is_env_name(p)) {
            if !prefix.is_empty() {
                diag.error(
                    doc,
                    &format!("{from_path}.prefix"),
                    format_args!("Invalid value: {prefix:?}: {ENV_NAME_RULE}"),
                );
            }
        }
        if let Some(r) = &from.config_map_ref {
            refs.check_object(
                diag,
                doc,
                RefKind::ConfigMap,
                &format!("{from_path}.configMapRef.name"),
                Some(&r.name),
                r.optional.unwrap_or(false),
            );
        }
        if let Some(r) = &from.secret_ref {
            refs.check_object(
                diag,
                doc,
                RefKind::Secret,
                &format!("{from_path}.secretRef.name"),
                Some(&r.name),
                r.optional.unwrap_or(false),
            );
        }
    }

    let mut mount_paths = BTreeSet::new();
    for (j, mount) in c.volume_mounts.iter().flatten().enumerate() {
        let mount_path = format!("{path}.volumeMounts[{j}]");
        if mount.name.is_empty() {
            diag.error(doc, &format!("{mount_path}.name"), "Required value");
        } else if !volumes.contains(mount.name.as_str()) {
            diag.error(
                doc,
                &format!("{mount_path}.name"),
                format_args!(
                    "Not found: {:?}: no volume of that name in the pod",
                    mount.name
                ),
            );
        }
        if mount.mount_path.is_empty() {
            diag.error(doc, &format!("{mount_path}.mountPath"), "Required value");
        } else {
            let normalized = normalize_mount_path(&mount.mount_path);
            if !mount_paths.insert(normalized) {
                diag.error(
                    doc,
                    &format!("{mount_path}.mountPath"),
                    format_args!("Invalid value: {:?}: must be unique", mount.mount_path),
                );
            }
        }
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if let Some(e) = relative_path_error(sub) {
                diag.error(doc, &format!("{mount_path}.subPath"), e);
            }
        }
    }
}

/// `/var//log/` and `/var/log` are the same mount point.
pub(super) fn normalize_mount_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}
