//! Finding the running container that `podrun exec` runs a command in and `podrun cp` copies
//! files to or from.

use std::path::PathBuf;

use podrun_runtime::ExecConfig;

use crate::plan::{ContainerPlan, Plan};
use crate::state::PodState;
use crate::{display_name, is_supervisor_of, process_alive, PodDirs, PodError};

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
    /// The pod's runtime directory.
    pub runtime_dir: PathBuf,
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
    let dir = dirs.runtime_dir(namespace, name);
    if !dir.is_dir() {
        return Err(PodError::msg(format!("pod `{pod}` not found")));
    }
    let plan = Plan::read(&dir)?;
    let state = PodState::read(&dir)
        .map_err(|e| PodError::msg(format!("pod `{pod}` is not running yet ({e})")))?;
    if !is_supervisor_of(state.supervisor_pid, &dir) {
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
        .filter(|c| c.state == "running" && c.pid.is_some_and(process_alive))
        .ok_or_else(|| {
            PodError::msg(format!("container `{cname}` of pod `{pod}` is not running"))
        })?;
    Ok(RunningContainer {
        pod,
        plan: container_plan.clone(),
        id: running.id.clone(),
        init_pid: running.pid.unwrap_or_default(),
        supervisor_pid: state.supervisor_pid,
        runtime_dir: dir,
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
    Ok(container_exec(
        &target.plan,
        target.id,
        target.runtime_dir.join("libcontainer"),
        target.supervisor_pid,
        args,
    ))
}

/// `args` run in container `id` (libcontainer state under `state_root`) as the container's
/// own process runs: its environment, working directory and user; `supervisor` is the pod
/// supervisor's pid, whose user namespace the process joins. For `podrun exec`, exec probes
/// and exec hooks alike.
pub(crate) fn container_exec(
    plan: &crate::plan::ContainerPlan,
    id: String,
    state_root: std::path::PathBuf,
    supervisor: i32,
    args: Vec<String>,
) -> ExecConfig {
    ExecConfig {
        id,
        state_root,
        user_namespace_of: supervisor,
        args,
        env: plan.env.clone(),
        cwd: plan.cwd.clone(),
        uid: plan.uid,
        gid: plan.gid,
        additional_gids: plan.additional_gids.clone(),
        tty: None,
    }
}
