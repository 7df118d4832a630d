//! Planning a container's probes ([`podrun_pod_model::plan::probes`]): worked out from the
//! manifest with Kubernetes' defaults and validation rules, named ports resolved.

use podrun_manifest::k8s_openapi::api::core::v1::{Container, Probe};
use podrun_manifest::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use podrun_pod_model::plan::probes::{ContainerProbes, ProbeAction, ProbePlan};
use podrun_pod_model::PodError;

/// Where httpGet and tcpSocket probes connect when `host` is not given. The kubelet uses the
/// pod's IP; podrun's probes run inside the pod's network namespace, where 127.0.0.1 is the
/// pod's loopback (and `status.podIP` is 127.0.0.1 too, see podrun-process).
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// The probes of `container` (`field`: its path, e.g. `spec.containers[0]`). A probe whose
/// only handler is one podrun does not run (grpc) is left out: the manifest loader warned
/// about it already.
pub fn container_probes(container: &Container, field: &str) -> Result<ContainerProbes, PodError> {
    let plan = |probe: &Option<Probe>, name: &str, must_succeed_once: bool| {
        probe
            .as_ref()
            .map(|p| probe_plan(p, container, &format!("{field}.{name}"), must_succeed_once))
            .transpose()
            .map(Option::flatten)
    };
    let init = field.contains("initContainers");
    if init && container.restart_policy.as_deref() != Some("Always") {
        let set = [
            ("startupProbe", container.startup_probe.is_some()),
            ("livenessProbe", container.liveness_probe.is_some()),
            ("readinessProbe", container.readiness_probe.is_some()),
        ];
        if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
            return Err(PodError::msg(format!(
                "{field}.{name}: Forbidden: may not be set for init containers without restartPolicy=Always"
            )));
        }
    }
    Ok(ContainerProbes {
        startup: plan(&container.startup_probe, "startupProbe", true)?,
        liveness: plan(&container.liveness_probe, "livenessProbe", true)?,
        readiness: plan(&container.readiness_probe, "readinessProbe", false)?,
    })
}

fn probe_plan(
    probe: &Probe,
    container: &Container,
    field: &str,
    must_succeed_once: bool,
) -> Result<Option<ProbePlan>, PodError> {
    let invalid = |what: String| PodError::msg(format!("{field}.{what}"));
    let handlers = [
        probe.exec.is_some(),
        probe.http_get.is_some(),
        probe.tcp_socket.is_some(),
        probe.grpc.is_some(),
    ];
    match handlers.iter().filter(|h| **h).count() {
        0 => {
            return Err(PodError::msg(format!(
                "{field}: must specify a handler type (exec, httpGet, tcpSocket or grpc)"
            )))
        }
        1 => {}
        _ => {
            return Err(PodError::msg(format!(
                "{field}: may not specify more than 1 handler type"
            )))
        }
    }
    let action = if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        if command.is_empty() {
            return Err(invalid("exec.command: Required value".into()));
        }
        ProbeAction::Exec { command }
    } else if let Some(http) = &probe.http_get {
        let https = match http.scheme.as_deref() {
            None | Some("HTTP") => false,
            Some("HTTPS") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "httpGet.scheme: Unsupported value: \"{other}\": supported values: \"HTTP\", \"HTTPS\""
                )))
            }
        };
        let path = http.path.clone().unwrap_or_default();
        ProbeAction::HttpGet {
            https,
            host: host_or_default(http.host.as_deref()),
            port: resolve_port(&http.port, container, &format!("{field}.httpGet.port"))?,
            // The kubelet puts the missing leading slash in front.
            path: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
            headers: http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        }
    } else if let Some(tcp) = &probe.tcp_socket {
        ProbeAction::TcpSocket {
            host: host_or_default(tcp.host.as_deref()),
            port: resolve_port(&tcp.port, container, &format!("{field}.tcpSocket.port"))?,
        }
    } else {
        return Ok(None);
    };
    let number = |value: Option<i32>, name: &str, default: u32| -> Result<u32, PodError> {
        match value {
            None | Some(0) => Ok(default),
            Some(v) if v < 0 => Err(invalid(format!(
                "{name}: Invalid value: {v}: must be greater than or equal to 0"
            ))),
            Some(v) => Ok(v as u32),
        }
    };
    let success_threshold = number(probe.success_threshold, "successThreshold", 1)?;
    if must_succeed_once && success_threshold != 1 {
        return Err(invalid(format!(
            "successThreshold: Invalid value: {success_threshold}: must be 1"
        )));
    }
    Ok(Some(ProbePlan {
        action,
        initial_delay_seconds: number(probe.initial_delay_seconds, "initialDelaySeconds", 0)?,
        period_seconds: number(probe.period_seconds, "periodSeconds", 10)?,
        timeout_seconds: number(probe.timeout_seconds, "timeoutSeconds", 1)?,
        success_threshold,
        failure_threshold: number(probe.failure_threshold, "failureThreshold", 3)?,
        termination_grace_period_seconds: probe
            .termination_grace_period_seconds
            .map(|s| s.max(0) as u64),
    }))
}

fn host_or_default(host: Option<&str>) -> String {
    host.filter(|h| !h.is_empty())
        .unwrap_or(DEFAULT_HOST)
        .to_string()
}

/// A port by number, or by the name of one of the container's ports.
pub(crate) fn resolve_port(
    port: &IntOrString,
    container: &Container,
    field: &str,
) -> Result<u16, PodError> {
    match port {
        IntOrString::Int(number) => {
            u16::try_from(*number)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    PodError::msg(format!(
                        "{field}: Invalid value: {number}: must be between 1 and 65535, inclusive"
                    ))
                })
        }
        IntOrString::String(text) => {
            if let Ok(number) = text.parse::<i32>() {
                return resolve_port(&IntOrString::Int(number), container, field);
            }
            let ports = container.ports.iter().flatten();
            ports
                .clone()
                .find(|p| p.name.as_deref() == Some(text.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| {
                    let names: Vec<&str> = ports.filter_map(|p| p.name.as_deref()).collect();
                    PodError::msg(format!(
                        "{field}: the container has no port named `{text}` (its named ports: {})\nhint: name the port in the container's `ports` (name: {text}), or give its number",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(json: &str) -> Container {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_like_kubernetes() {
        let c = container(
            r#"{"name":"web","ports":[{"name":"http","containerPort":8080}],
                "livenessProbe":{"httpGet":{"port":"http","path":"healthz"}},
                "readinessProbe":{"tcpSocket":{"port":8080},"periodSeconds":1,"successThreshold":2}}"#,
        );
        let probes = container_probes(&c, "spec.containers[0]").unwrap();
        let live = probes.liveness.unwrap();
        assert_eq!(
            live.action,
            ProbeAction::HttpGet {
                https: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/healthz".into(),
                headers: vec![],
            }
        );
        assert_eq!(
            (
                live.initial_delay_seconds,
                live.period_seconds,
                live.timeout_seconds,
                live.success_threshold,
                live.failure_threshold
            ),
            (0, 10, 1, 1, 3)
        );
        let ready = probes.readiness.unwrap();
        assert_eq!((ready.period_seconds, ready.success_threshold), (1, 2));
        assert!(probes.startup.is_none());
    }

    #[test]
    fn invalid_probes_name_their_field() {
        let err = |json: &str| {
            container_probes(&container(json), "spec.containers[0]")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(
                r#"{"name":"a","livenessProbe":{"exec":{"command":["true"]},"successThreshold":2}}"#
            ),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
        );
        assert!(err(r#"{"name":"a","startupProbe":{"tcpSocket":{"port":"web"}}}"#)
            .starts_with("spec.containers[0].startupProbe.tcpSocket.port: the container has no port named `web` (its named ports: none)\nhint:"));
        assert!(err(r#"{"name":"a","readinessProbe":{"periodSeconds":1}}"#)
            .contains("readinessProbe: must specify a handler type"));
        assert!(err(
            r#"{"name":"a","readinessProbe":{"exec":{"command":["x"]},"tcpSocket":{"port":1}}}"#
        )
        .contains("may not specify more than 1 handler type"));
        assert!(
            err(r#"{"name":"a","readinessProbe":{"httpGet":{"port":70000}}}"#)
                .contains("httpGet.port: Invalid value: 70000")
        );
    }

    #[test]
    fn only_sidecars_among_init_containers_have_probes() {
        let probe = r#""readinessProbe":{"tcpSocket":{"port":80}}"#;
        let init = container(&format!(r#"{{"name":"i",{probe}}}"#));
        let err = container_probes(&init, "spec.initContainers[0]").unwrap_err();
        assert!(err.to_string().contains("Forbidden"), "{err}");
        let sidecar = container(&format!(
            r#"{{"name":"s","restartPolicy":"Always",{probe}}}"#
        ));
        let probes = container_probes(&sidecar, "spec.initContainers[0]").unwrap();
        assert!(probes.readiness.is_some());
    }

    #[test]
    fn grpc_probes_are_left_out() {
        let c = container(r#"{"name":"a","livenessProbe":{"grpc":{"port":9090}}}"#);
        assert!(container_probes(&c, "c").unwrap().is_empty());
    }
}
