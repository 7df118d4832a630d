//! Finding the running container that `podrun exec` runs a command in and `podrun cp` copies
//! files to or from.

use podrun_runtime::ExecConfig;

use podrun_pod_model::plan::{ContainerPlan, Plan};
use podrun_pod_model::process::{is_supervisor_of, process_alive};
use podrun_pod_model::state::PodState;
use podrun_pod_model::{display_name, PodDirs, PodError, PodLayout};

/// A running container of a running pod.
#[derive(Debug, Clone)]
pub struct RunningContainer {
    /// `NAME` or `NAMESPACE/NAME`, for messages.
    pub pod: String,
    /// The container's plan (process, mounts).
    pub plan: ContainerPlan,
    /// Its libcontainer id.
    pub id: String,
    /// The host pid of its init: `/proc/PID/ns/mnt` is its mount namespace.
    pub init_pid: i32,
    /// The pod's supervisor, whose user namespace is the pod's.
    pub supervisor_pid: i32,
    /// The pod's directories.
    pub layout: PodLayout,
}

/// Container `container` (default: the pod's first container) of pod `namespace/name`.
/// Fails, naming the pod and container, when the pod does not exist or does not run, or the
/// container does not exist or does not run.
pub fn running_container(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
    container: Option<&str>,
) -> Result<RunningContainer, PodError> {
    let pod = display_name(namespace, name);
    let layout = dirs.pod(namespace, name);
    let dir = &layout.runtime_dir;
    if !dir.is_dir() {
        return Err(PodError::msg(format!("pod `{pod}` not found")));
    }
    let plan = Plan::read(dir)?;
    let state = PodState::read(dir)
        .map_err(|e| PodError::msg(format!("pod `{pod}` is not running yet ({e})")))?;
    if !is_supervisor_of(state.supervisor_pid, dir) {
        return Err(PodError::msg(format!(
            "pod `{pod}` is not running (its supervisor is gone)"
        )));
    }
    let container_plan = find_container(&plan, &pod, container)?;
    let cname = &container_plan.name;
    let running = state
        .containers
        .iter()
        .chain(&state.init_containers)
        .find(|c| &c.name == cname)
        .filter(|c| c.running() && c.pid.is_some_and(process_alive))
        .ok_or_else(|| {
            PodError::msg(format!("container `{cname}` of pod `{pod}` is not running"))
        })?;
    Ok(RunningContainer {
        pod,
        plan: container_plan.clone(),
        id: running.id.clone(),
        init_pid: running.pid.unwrap_or_default(),
        supervisor_pid: state.supervisor_pid,
        layout,
    })
}

/// The container named `wanted`, or the pod's first one.
fn find_container<'a>(
    plan: &'a Plan,
    pod: &str,
    wanted: Option<&str>,
) -> Result<&'a ContainerPlan, PodError> {
    let Some(wanted) = wanted else {
        return plan
            .containers
            .first()
            .ok_or_else(|| PodError::msg(format!("pod `{pod}` has no containers")));
    };
    let all = || plan.containers.iter().chain(&plan.init_containers);
    all().find(|c| c.name == wanted).ok_or_else(|| {
        let names: Vec<&str> = all().map(|c| c.name.as_str()).collect();
        PodError::msg(format!(
            "container `{wanted}` is not in pod `{pod}` (its containers: {})",
            names.join(", ")
        ))
    })
}

/// What [`podrun_runtime::exec_in_container`] needs to run `args` in container `container`
/// (default: the pod's first container) of pod `namespace/name`, with the container's
/// environment, working directory and user, without a terminal (set `tty` for one). Fails as
/// [`running_container`] does.
pub fn exec_config(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
    container: Option<&str>,
    args: Vec<String>,
) -> Result<ExecConfig, PodError> {
    let target = running_container(dirs, namespace, name, container)?;
    let state_root = target.layout.libcontainer_root();
    Ok(target
        .plan
        .exec_config(target.id, state_root, target.supervisor_pid, args))
}
