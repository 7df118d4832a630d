//! Planning a container's termination message settings (`terminationMessagePath`,
//! `terminationMessagePolicy`); the supervisor's `termination` says what becomes of them.

use podrun_manifest::k8s_openapi::api::core::v1::Container;
use podrun_pod_model::plan::termination::{TerminationMessage, DEFAULT_PATH};
use podrun_pod_model::PodError;

/// The container's settings; `field` names it in errors (`spec.containers[0]`).
pub fn plan(container: &Container, field: &str) -> Result<TerminationMessage, PodError> {
    let path = container
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.into());
    if !path.starts_with('/') {
        return Err(PodError::msg(format!(
            "{field}.terminationMessagePath: `{path}` is not an absolute path"
        )));
    }
    let fallback_to_logs = match container.termination_message_policy.as_deref() {
        None | Some("") | Some("File") => false,
        Some("FallbackToLogsOnError") => true,
        Some(other) => {
            return Err(PodError::msg(format!(
                "{field}.terminationMessagePolicy: unsupported value `{other}` (expected File or FallbackToLogsOnError)"
            )))
        }
    };
    Ok(TerminationMessage {
        path,
        fallback_to_logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(json: serde_json::Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn settings_default_and_validate() {
        let plain = container(serde_json::json!({"name": "a"}));
        assert_eq!(plan(&plain, "c").unwrap(), TerminationMessage::default());
        let custom = container(serde_json::json!({
            "name": "a",
            "terminationMessagePath": "/tmp/why",
            "terminationMessagePolicy": "FallbackToLogsOnError"
        }));
        assert_eq!(
            plan(&custom, "c").unwrap(),
            TerminationMessage {
                path: "/tmp/why".into(),
                fallback_to_logs: true
            }
        );
        let bad = container(serde_json::json!({"name": "a", "terminationMessagePolicy": "Logs"}));
        let e = plan(&bad, "spec.containers[0]").unwrap_err().to_string();
        assert!(
            e.contains("spec.containers[0].terminationMessagePolicy: unsupported value `Logs`"),
            "{e}"
        );
        let relative = container(serde_json::json!({"name": "a", "terminationMessagePath": "why"}));
        assert!(plan(&relative, "c").is_err());
    }
}
