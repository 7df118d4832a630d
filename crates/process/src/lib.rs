//! What process a pod's container runs, from the Kubernetes container spec over the image's
//! config, following the kubelet's rules:
//!
//! - `command` replaces the image's ENTRYPOINT and `args` its CMD; `command` without `args`
//!   drops CMD too ([`command`]).
//! - The environment is the image's, overridden by `envFrom` then `env` in order; `valueFrom`
//!   reads ConfigMaps, Secrets and pod fields; `$(VAR)` in command, args and env values
//!   expands as the kubelet expands it ([`expand`]).
//! - `workingDir` replaces the image's WorkingDir (default `/`).
//! - `securityContext.runAsUser/runAsGroup` (container over pod) replace the image's USER,
//!   which may name a user and group of the image's /etc/passwd and /etc/group ([`user`]).

pub mod command;
pub mod env;
pub mod expand;
pub mod quantity;
pub mod user;

use k8s_openapi::api::core::v1::{Container, Pod};
use oci_spec::image::Config as ImageConfig;

pub use env::{FieldUse, NodeResources, Objects, PodFields};
pub use quantity::Quantity;
pub use user::{ImageFiles, User};

/// The process to start for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    /// `NAME=value` in order: the image's first, then the pod's.
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
}

/// Why a container's process could not be worked out; names the container and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("container `{container}`: no command to run: the image has no ENTRYPOINT or CMD and the pod sets no `command`")]
    NoCommand { container: String },
    #[error("container `{container}`: {field}: {message}")]
    Field {
        container: String,
        field: String,
        message: String,
    },
}

/// Works out the process of `container` in `pod`. `image` is the image config's `config`
/// section, `objects` the ConfigMaps and Secrets the pod may read, `files` the image's files
/// (for /etc/passwd and /etc/group).
pub fn resolve(
    pod: &Pod,
    container: &Container,
    image: Option<&ImageConfig>,
    objects: &dyn Objects,
    fields: &PodFields,
    files: &dyn ImageFiles,
) -> Result<ProcessSpec, ProcessError> {
    let pod_env = env::container_env(&container.name, container, pod, objects, fields)?;
    let image_env: Vec<String> = image.and_then(|i| i.env().clone()).unwrap_or_default();
    let env = env::merge(&image_env, &pod_env);
    let mapping = env::as_mapping(&pod_env);
    let args = command::args(&container.name, container, image, &mapping)?;
    let cwd = container
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| image.and_then(|i| i.working_dir().clone()))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".to_string());
    let user = user::resolve(&container.name, container, pod, image, files)?;
    Ok(ProcessSpec {
        args,
        env,
        cwd,
        user,
    })
}
