//! Planning container lifecycle hooks (`lifecycle.postStart`, `lifecycle.preStop`) and
//! `lifecycle.stopSignal`: [`plan`] gives the manifest's hooks as the plan holds them
//! ([`podrun_pod_model::plan::hooks`]), named ports resolved; the supervisor's `hooks` runs
//! them.

use podrun_manifest::k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use podrun_pod_model::plan::hooks::{parse_signal, Handler, Hooks};
use podrun_pod_model::PodError;

/// Where an httpGet hook connects without `host`: the kubelet uses the pod's IP; the
/// supervisor is inside the pod's network namespace, where 127.0.0.1 is the pod's loopback.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// The hooks of `container` (`field`: e.g. `spec.containers[0]`).
pub fn plan(container: &Container, field: &str) -> Result<Hooks, PodError> {
    let Some(lifecycle) = &container.lifecycle else {
        return Ok(Hooks::default());
    };
    let handler = |h: &Option<LifecycleHandler>, name: &str| {
        h.as_ref()
            .map(|h| handler_plan(h, container, &format!("{field}.lifecycle.{name}")))
            .transpose()
    };
    let stop_signal = lifecycle.stop_signal.clone().filter(|s| !s.is_empty());
    if let Some(text) = &stop_signal {
        if parse_signal(text).is_none() {
            return Err(PodError::msg(format!(
                "{field}.lifecycle.stopSignal: `{text}` is not a signal\nhint: a name such as SIGTERM, SIGQUIT or SIGINT"
            )));
        }
    }
    Ok(Hooks {
        post_start: handler(&lifecycle.post_start, "postStart")?,
        pre_stop: handler(&lifecycle.pre_stop, "preStop")?,
        stop_signal,
    })
}

fn handler_plan(
    handler: &LifecycleHandler,
    container: &Container,
    field: &str,
) -> Result<Handler, PodError> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err(PodError::msg(format!(
                "{field}.exec.command: Required value"
            )));
        }
        return Ok(Handler::Exec { command });
    }
    if let Some(get) = &handler.http_get {
        if get
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("HTTP"))
        {
            return Err(PodError::msg(format!(
                "{field}.httpGet.scheme: only HTTP is supported for hooks yet\nhint: serve the hook over plain HTTP, or use an exec hook"
            )));
        }
        let port =
            crate::probes::resolve_port(&get.port, container, &format!("{field}.httpGet.port"))?;
        let path = get
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        return Ok(Handler::HttpGet {
            host: get
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| DEFAULT_HOST.into()),
            port,
            path: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
            headers: get
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        });
    }
    if let Some(sleep) = &handler.sleep {
        return Ok(Handler::Sleep {
            seconds: sleep.seconds.max(0) as u64,
        });
    }
    if handler.tcp_socket.is_some() {
        return Err(PodError::msg(format!(
            "{field}.tcpSocket: not supported for lifecycle hooks (Kubernetes deprecated it and never ran it)\nhint: use exec or httpGet"
        )));
    }
    Err(PodError::msg(format!(
        "{field}: one of exec, httpGet or sleep is required"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(json: serde_json::Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hooks_from_the_manifest() {
        let c = container(serde_json::json!({
            "name": "web",
            "ports": [{"name": "http", "containerPort": 8080}],
            "lifecycle": {
                "stopSignal": "SIGQUIT",
                "postStart": {"exec": {"command": ["sh", "-c", "echo hi"]}},
                "preStop": {"httpGet": {"port": "http", "path": "stop", "httpHeaders": [{"name": "X", "value": "y"}]}}
            }
        }));
        let hooks = plan(&c, "spec.containers[0]").unwrap();
        assert_eq!(hooks.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(
            hooks.post_start,
            Some(Handler::Exec {
                command: vec!["sh".into(), "-c".into(), "echo hi".into()]
            })
        );
        assert_eq!(
            hooks.pre_stop,
            Some(Handler::HttpGet {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/stop".into(),
                headers: vec![("X".into(), "y".into())],
            })
        );
    }

    #[test]
    fn bad_hooks_name_their_field() {
        let err = plan(
            &container(serde_json::json!({"name": "a", "lifecycle": {"preStop": {"httpGet": {"port": "web"}}}})),
            "spec.containers[1]",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("spec.containers[1].lifecycle.preStop.httpGet.port")
                && err.contains("hint:"),
            "{err}"
        );
        let err = plan(
            &container(serde_json::json!({"name": "a", "lifecycle": {"stopSignal": "SIGNOPE"}})),
            "spec.containers[0]",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lifecycle.stopSignal"), "{err}");
    }
}
