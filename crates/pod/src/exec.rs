//! Finding the container `podrun exec` runs a command in.

use podrun_runtime::ExecConfig;

use crate::plan::Plan;
use crate::state::PodState;
use crate::{display_name, is_supervisor_of, process_alive, PodDirs, PodError};

/// What [`podrun_runtime::exec_in_container`] needs to run `args` in container `container`
/// (default: the pod's first container) of pod `namespace/name`, with the container's
/// environment, working directory and user. Fails, naming the pod and container, when the pod
/// does not exist or does not run, or the container does not exist or does not run.
pub fn exec_config(
    dirs: &PodDirs,
    namespace: &str,
    name: &str,
    container: Option<&str>,
    args: Vec<String>,
) -> Result<ExecConfig, PodError> {
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
    let names = || {
        plan.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let container_plan = match container {
        Some(wanted) => plan
            .containers
            .iter()
            .find(|c| c.name == wanted)
            .ok_or_else(|| {
                PodError::msg(format!(
                    "container `{wanted}` is not in pod `{pod}` (its containers: {})",
                    names()
                ))
            })?,
        None => plan
            .containers
            .first()
            .ok_or_else(|| PodError::msg(format!("pod `{pod}` has no containers")))?,
    };
    let cname = &container_plan.name;
    let running = state
        .containers
        .iter()
        .find(|c| &c.name == cname)
        .filter(|c| c.state == "running" && c.pid.is_some_and(process_alive))
        .ok_or_else(|| {
            PodError::msg(format!("container `{cname}` of pod `{pod}` is not running"))
        })?;
    Ok(ExecConfig {
        id: running.id.clone(),
        state_root: dir.join("libcontainer"),
        user_namespace_of: state.supervisor_pid,
        args,
        env: container_plan.env.clone(),
        cwd: container_plan.cwd.clone(),
        uid: container_plan.uid,
        gid: container_plan.gid,
        additional_gids: container_plan.additional_gids.clone(),
    })
}
