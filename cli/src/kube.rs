//! Pods as Kubernetes API objects, so that jq filters written for `kubectl get pods -o json`
//! work on podrun's: `ps -o json|yaml` and `play -o json|yaml` print a `v1` `PodList`,
//! `describe -o json|yaml` one `v1` `Pod`.
//!
//! * `metadata`: name, namespace, uid, labels, annotations, creationTimestamp.
//! * `spec`: the pod's spec as the manifest gave it (kept in the plan; a pod started by an
//!   older podrun, whose plan has none, gets its containers' names and images, restartPolicy
//!   and grace period), with `nodeName` set to this host's name as a scheduler would.
//! * `status`: in the API's shape (k8s-openapi's types): `phase`, `conditions`, `podIP` (the
//!   pod's address on its network: 10.0.2.100 with slirp4netns and pasta), `hostIP` (the
//!   node's: this host's primary IPv4 address, as the downward API's `status.hostIP`),
//!   `startTime`, `containerStatuses` and `initContainerStatuses`.
//! * `x-podrun`: what podrun adds (kubectl's STATUS and READY columns, the supervisor,
//!   published ports, directories, and the state file itself), never in place of the API's
//!   fields.

use podrun_manifest::k8s_openapi;
use podrun_network::PortMapping;
use podrun_pod::listing::PodEntry;
use podrun_pod_model::plan::Plan;
use podrun_pod_model::state::{ContainerState, ContainerStatus, PodPhase, PodState};

use k8s_openapi::api::core::v1 as api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

/// The node the pods run on: this host, as podrun-pod-model's `node` names it.
pub struct Node {
    pub name: String,
    pub ip: String,
}

impl Node {
    pub fn this_host() -> Node {
        Node {
            name: podrun_pod_model::node::node_name(),
            ip: podrun_pod_model::node::host_ip().to_string(),
        }
    }
}

/// `pods` as a `v1` `PodList`.
pub fn pod_list(pods: &[PodEntry]) -> serde_json::Value {
    let node = Node::this_host();
    let items: Vec<serde_json::Value> = pods
        .iter()
        .map(|entry| pod(entry, Plan::read(&entry.runtime_dir).ok().as_ref(), &node))
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": { "resourceVersion": "" },
        "items": items,
    })
}

/// One pod as a `v1` `Pod`; `plan` is its plan when it can be read.
pub fn pod(entry: &PodEntry, plan: Option<&Plan>, node: &Node) -> serde_json::Value {
    let state = entry.state.as_ref();
    let object = api::Pod {
        metadata: metadata(entry, plan),
        spec: Some(spec(plan, state, node)),
        status: Some(status(entry, plan, node)),
    };
    let mut value = serde_json::to_value(&object).expect("a Pod serializes");
    let (ready, total) = ready(entry);
    value["x-podrun"] = serde_json::json!({
        "status": entry.status(),
        "ready": format!("{ready}/{total}"),
        "restarts": state.map(PodState::restarts).unwrap_or(0),
        "supervisor_alive": entry.supervisor_alive,
        "network": plan.map(|p| p.network.backend),
        "ports": plan.map(|p| p.ports.clone()).unwrap_or_default(),
        "runtime_dir": entry.runtime_dir,
        "data_dir": plan.map(|p| &p.data_dir),
        "state": state,
    });
    value
}

/// Ready containers / all containers as kubectl's READY counts them (none of a pod whose
/// supervisor is gone).
pub fn ready(entry: &PodEntry) -> (usize, usize) {
    match &entry.state {
        Some(state) if entry.supervisor_alive => state.ready(),
        Some(state) => (0, state.containers.len()),
        None => (0, 0),
    }
}

/// The pod's IP (`status.podIP`), once its sandbox exists (it has a state).
pub fn pod_ip(entry: &PodEntry, plan: Option<&Plan>) -> Option<String> {
    let state = entry.state.as_ref()?;
    if let Some(ip) = &state.pod_ip {
        return Some(ip.clone());
    }
    let ip = podrun_pod_model::node::pod_ip(plan?.network.backend);
    (!ip.is_empty()).then_some(ip)
}

/// Published ports as `docker ps` shows them: `0.0.0.0:8080->80/tcp`, comma-separated.
pub fn ports_text(ports: &[PortMapping]) -> String {
    let text: Vec<String> = ports.iter().map(ToString::to_string).collect();
    text.join(",")
}

fn time(text: &str) -> Option<Time> {
    text.parse::<k8s_openapi::jiff::Timestamp>().ok().map(Time)
}

fn non_empty<T, C: IntoIterator<Item = T> + Default + PartialEq>(c: C) -> Option<C> {
    (c != C::default()).then_some(c)
}

fn metadata(entry: &PodEntry, plan: Option<&Plan>) -> ObjectMeta {
    let state = entry.state.as_ref();
    ObjectMeta {
        name: Some(entry.name.clone()),
        namespace: Some(entry.namespace.clone()),
        uid: state
            .map(|s| s.uid.clone())
            .or_else(|| plan.map(|p| p.uid.clone())),
        labels: plan.and_then(|p| non_empty(p.labels.clone())),
        annotations: plan.and_then(|p| non_empty(p.annotations.clone())),
        creation_timestamp: state
            .map(|s| s.created.as_str())
            .or_else(|| plan.map(|p| p.created.as_str()))
            .and_then(time),
        owner_references: entry
            .controller()
            .map(|controller| vec![owner_reference(controller)]),
        ..Default::default()
    }
}

/// The workload a pod belongs to, as Kubernetes' controller reference (no API server, so
/// no uid: empty). A Deployment's pods name the Deployment (a cluster's name its ReplicaSet).
fn owner_reference(controller: podrun_pod_model::plan::Controller) -> OwnerReference {
    let api_version = match controller.kind.as_str() {
        "Job" => "batch/v1",
        _ => "apps/v1",
    };
    OwnerReference {
        api_version: api_version.into(),
        kind: controller.kind,
        name: controller.name,
        uid: String::new(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn spec(plan: Option<&Plan>, state: Option<&PodState>, node: &Node) -> api::PodSpec {
    let given = plan
        .and_then(|p| p.pod_spec.clone())
        .and_then(|spec| serde_json::from_value::<api::PodSpec>(spec).ok());
    let mut spec = given.unwrap_or_else(|| older_spec(plan, state));
    spec.node_name.get_or_insert_with(|| node.name.clone());
    spec
}

/// The spec of a pod whose plan kept none (started by an older podrun): what its plan, else
/// its state, tells.
fn older_spec(plan: Option<&Plan>, state: Option<&PodState>) -> api::PodSpec {
    let container = |name: &str, image: &str| api::Container {
        name: name.to_string(),
        image: Some(image.to_string()),
        ..Default::default()
    };
    if let Some(plan) = plan {
        let list = |c: &[podrun_pod_model::plan::ContainerPlan]| -> Vec<api::Container> {
            c.iter().map(|c| container(&c.name, &c.image)).collect()
        };
        return api::PodSpec {
            containers: list(&plan.containers),
            init_containers: non_empty(list(&plan.init_containers)),
            restart_policy: Some(plan.restart_policy.as_str().to_string()),
            termination_grace_period_seconds: Some(plan.termination_grace_period_seconds as i64),
            ..Default::default()
        };
    }
    let list = |c: &[ContainerState]| -> Vec<api::Container> {
        c.iter().map(|c| container(&c.name, &c.image)).collect()
    };
    api::PodSpec {
        containers: state.map(|s| list(&s.containers)).unwrap_or_default(),
        init_containers: state.and_then(|s| non_empty(list(&s.init_containers))),
        restart_policy: state.map(|s| s.restart_policy.as_str().to_string()),
        ..Default::default()
    }
}

fn status(entry: &PodEntry, plan: Option<&Plan>, node: &Node) -> api::PodStatus {
    let alive = entry.supervisor_alive;
    let host = || {
        (
            Some(node.ip.clone()),
            Some(vec![api::HostIP {
                ip: node.ip.clone(),
            }]),
        )
    };
    let Some(state) = &entry.state else {
        // Being started (the supervisor answers play after it writes the state), or lost.
        let (host_ip, host_ips) = host();
        return api::PodStatus {
            phase: Some(if alive { "Pending" } else { "Unknown" }.into()),
            conditions: Some(vec![condition("PodScheduled", true, None)]),
            host_ip,
            host_ips,
            ..Default::default()
        };
    };
    let phase = match state.phase {
        PodPhase::Unknown => state.compute_phase(),
        phase => phase,
    };
    let completed = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
    let phase = match phase {
        // The node no longer tells: the kubelet's answer for a pod it lost.
        _ if !alive && !completed => "Unknown",
        phase => phase.as_str(),
    };
    let pod_ip = pod_ip(entry, plan);
    let (host_ip, host_ips) = host();
    let statuses = |containers: &[ContainerState]| -> Vec<api::ContainerStatus> {
        containers
            .iter()
            .map(|c| container_status(c, alive))
            .collect()
    };
    api::PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions(state, alive, completed)),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![api::PodIP { ip }]),
        host_ip,
        host_ips,
        start_time: time(&state.created),
        reason: state.reason.clone(),
        message: state.message.clone(),
        container_statuses: Some(statuses(&state.containers)),
        init_container_statuses: non_empty(statuses(&state.init_containers)),
        ..Default::default()
    }
}

fn condition(kind: &str, status: bool, why: Option<(&str, String)>) -> api::PodCondition {
    let (reason, message) = why.map(|(r, m)| (r.to_string(), m)).unzip();
    api::PodCondition {
        type_: kind.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason,
        message,
        ..Default::default()
    }
}

/// The kubelet's pod conditions, in kubectl's order.
fn conditions(state: &PodState, alive: bool, completed: bool) -> Vec<api::PodCondition> {
    let names = |containers: Vec<&ContainerState>| -> String {
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        format!("[{}]", names.join(" "))
    };
    // Init containers not done: a regular one that has not succeeded, a sidecar never started.
    let incomplete: Vec<&ContainerState> = state
        .init_containers
        .iter()
        .filter(|c| {
            if c.sidecar {
                !c.running() && c.exit_code.is_none()
            } else {
                !(c.terminated() && c.exit_code == Some(0))
            }
        })
        .collect();
    let initialized = match incomplete.is_empty() {
        true => condition("Initialized", true, None),
        false => condition(
            "Initialized",
            false,
            Some((
                "ContainersNotInitialized",
                format!("containers with incomplete status: {}", names(incomplete)),
            )),
        ),
    };
    let counted = state
        .containers
        .iter()
        .chain(state.init_containers.iter().filter(|c| c.sidecar));
    let unready: Vec<&ContainerState> = counted.filter(|c| !(c.ready && alive)).collect();
    let ready = |kind: &str| match () {
        _ if completed => condition(kind, false, Some(("PodCompleted", String::new()))),
        _ if unready.is_empty() => condition(kind, true, None),
        _ => condition(
            kind,
            false,
            Some((
                "ContainersNotReady",
                format!("containers with unready status: {}", names(unready.clone())),
            )),
        ),
    };
    let created = time(&state.created);
    let mut sandbox = condition("PodReadyToStartContainers", alive && !completed, None);
    sandbox.last_transition_time = created.clone();
    let mut scheduled = condition("PodScheduled", true, None);
    scheduled.last_transition_time = created;
    vec![
        sandbox,
        initialized,
        ready("Ready"),
        ready("ContainersReady"),
        scheduled,
    ]
}

fn container_status(c: &ContainerState, alive: bool) -> api::ContainerStatus {
    let container_id = (!c.id.is_empty()).then(|| format!("podrun://{}", c.id));
    let ended_reason = |code: i32| if code == 0 { "Completed" } else { "Error" };
    let state = match c.state {
        ContainerStatus::Running if c.reason.as_deref() != Some("ContainerCreating") => {
            api::ContainerState {
                running: Some(api::ContainerStateRunning {
                    started_at: c.started_at.as_deref().and_then(time),
                }),
                ..Default::default()
            }
        }
        ContainerStatus::Running | ContainerStatus::Waiting => api::ContainerState {
            waiting: Some(api::ContainerStateWaiting {
                reason: c.reason.clone(),
                message: c.message.clone(),
            }),
            ..Default::default()
        },
        ContainerStatus::Exited => {
            let code = c.exit_code.unwrap_or_default();
            api::ContainerState {
                terminated: Some(api::ContainerStateTerminated {
                    container_id: container_id.clone(),
                    exit_code: code,
                    reason: Some(c.reason.clone().unwrap_or(ended_reason(code).into())),
                    message: c.termination_message.clone().or(c.message.clone()),
                    started_at: c.started_at.as_deref().and_then(time),
                    finished_at: c.finished_at.as_deref().and_then(time),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
    };
    // A container that ran before and runs or waits again: its last run.
    let last_state = match c.exit_code {
        Some(code) if !c.terminated() => api::ContainerState {
            terminated: Some(api::ContainerStateTerminated {
                exit_code: code,
                reason: Some(ended_reason(code).into()),
                message: c.termination_message.clone(),
                finished_at: c.finished_at.as_deref().and_then(time),
                ..Default::default()
            }),
            ..Default::default()
        },
        _ => api::ContainerState::default(),
    };
    api::ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: String::new(),
        container_id,
        ready: c.ready && alive,
        started: Some(c.started && alive),
        restart_count: i32::try_from(c.restart_count).unwrap_or(i32::MAX),
        state: Some(state),
        last_state: Some(last_state),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden state and plan of a pod written by the previous release (no kept spec).
    fn golden() -> (PodEntry, Plan) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/golden/previous-release");
        let state = PodState::read(&dir).unwrap();
        let plan = Plan::read(&dir).unwrap();
        let entry = PodEntry {
            namespace: state.namespace.clone(),
            name: state.pod.clone(),
            runtime_dir: dir,
            state: Some(state),
            supervisor_alive: true,
        };
        (entry, plan)
    }

    fn node() -> Node {
        Node {
            name: "host1".into(),
            ip: "192.0.2.7".into(),
        }
    }

    #[test]
    fn a_pod_in_the_apis_shape() {
        let (mut entry, mut plan) = golden();
        let state = entry.state.as_mut().unwrap();
        for c in state.containers.iter_mut() {
            c.state = ContainerStatus::Running;
            c.reason = None;
            c.ready = true;
            c.started = true;
            c.started_at = Some("2024-05-01T10:00:00Z".into());
        }
        state.containers[0].exit_code = Some(137);
        state.containers[0].restart_count = 2;
        state.phase = PodPhase::Running;
        plan.network.backend = podrun_network::Backend::Slirp4netns;
        plan.ports = vec![podrun_network::parse_publish("127.0.0.1:43125:80").unwrap()];
        plan.pod_spec = Some(serde_json::json!({
            "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]
        }));
        let pod = pod(&entry, Some(&plan), &node());
        assert_eq!(pod["apiVersion"], "v1");
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["name"], entry.name.as_str());
        assert_eq!(pod["metadata"]["uid"], plan.uid.as_str());
        assert_eq!(
            pod["spec"]["containers"][0]["ports"][0]["containerPort"],
            80
        );
        assert_eq!(pod["spec"]["nodeName"], "host1");
        let status = &pod["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.0.2.100");
        assert_eq!(status["podIPs"][0]["ip"], "10.0.2.100");
        assert_eq!(status["hostIP"], "192.0.2.7");
        let c = &status["containerStatuses"][0];
        assert_eq!(c["ready"], true);
        assert_eq!(c["restartCount"], 2);
        assert_eq!(c["state"]["running"]["startedAt"], "2024-05-01T10:00:00Z");
        assert_eq!(c["lastState"]["terminated"]["exitCode"], 137);
        assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
        let ready: Vec<&serde_json::Value> = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "Ready")
            .collect();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0]["status"], "True");
        let x = &pod["x-podrun"];
        assert_eq!(x["ports"][0]["host_port"], 43125);
        assert_eq!(x["status"], "Running");
        assert_eq!(
            x["state"]["uid"],
            entry.state.as_ref().unwrap().uid.as_str()
        );
        assert_eq!(ports_text(&plan.ports), "127.0.0.1:43125->80/tcp");
    }

    #[test]
    fn an_older_pod_and_a_lost_one() {
        let (mut entry, plan) = golden();
        entry.supervisor_alive = false;
        let pod = pod(&entry, Some(&plan), &node());
        // No spec kept: the containers' names and images.
        assert_eq!(
            pod["spec"]["containers"][0]["name"],
            plan.containers[0].name.as_str()
        );
        assert_eq!(pod["spec"]["restartPolicy"], plan.restart_policy.as_str());
        // A supervisor gone: nothing ready, phase Unknown unless it had completed.
        let status = &pod["status"];
        assert!(
            status["phase"] == "Unknown"
                || status["phase"] == "Succeeded"
                || status["phase"] == "Failed",
            "{status}"
        );
        assert!(status["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ready"] == false));
        assert_eq!(pod["x-podrun"]["status"], "Lost");
        // No state yet: Pending, no podIP.
        entry.state = None;
        entry.supervisor_alive = true;
        let pod = super::pod(&entry, Some(&plan), &node());
        assert_eq!(pod["status"]["phase"], "Pending");
        assert!(pod["status"].get("podIP").is_none());
        let list = pod_list(&[]);
        assert_eq!(list["kind"], "PodList");
        assert_eq!(list["items"], serde_json::json!([]));
    }
}
