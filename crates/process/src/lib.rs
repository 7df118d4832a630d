//! What process a pod's container runs, from the Kubernetes container spec over the image's
//! config, following the kubelet's rules:
//!
//! - `command` replaces the image's ENTRYPOINT and `args` its CMD; `command` without `args`
//!   drops CMD too ([`command`]).
//! - The environment is the runtime's (`PATH`, and `HOSTNAME` set to the pod's hostname as
//!   every CRI runtime sets it), overridden by the image's, then by `envFrom` then `env` in
//!   order; `valueFrom` reads ConfigMaps, Secrets and pod fields; `$(VAR)` in command, args
//!   and env values expands as the kubelet expands it ([`expand`]).
//! - `workingDir` replaces the image's WorkingDir (default `/`).
//! - `securityContext.runAsUser/runAsGroup` (container over pod) replace the image's USER,
//!   which may name a user and group of the image's /etc/passwd and /etc/group ([`user`]).

pub mod command;
pub mod env;
pub mod expand;
pub mod hostname;
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
    /// `NAME=value` in order: `PATH` and `HOSTNAME`, the image's, then the pod's.
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
/// (for /etc/passwd and /etc/group). The `HOSTNAME` variable is the pod's kernel hostname as
/// its spec gives it ([`hostname::kernel_hostname`]); a caller that puts the pod on the
/// host's network without `hostNetwork` in the spec uses [`resolve_with_hostname`].
pub fn resolve(
    pod: &Pod,
    container: &Container,
    image: Option<&ImageConfig>,
    objects: &dyn Objects,
    fields: &PodFields,
    files: &dyn ImageFiles,
) -> Result<ProcessSpec, ProcessError> {
    let hostname = hostname::kernel_hostname(pod, &fields.node_name);
    resolve_with_hostname(pod, container, image, objects, fields, files, &hostname)
}

/// [`resolve`], with `hostname` as the kernel hostname of the pod's containers (the
/// `HOSTNAME` variable unless the image or the container sets it).
pub fn resolve_with_hostname(
    pod: &Pod,
    container: &Container,
    image: Option<&ImageConfig>,
    objects: &dyn Objects,
    fields: &PodFields,
    files: &dyn ImageFiles,
    hostname: &str,
) -> Result<ProcessSpec, ProcessError> {
    let pod_env = env::container_env(&container.name, container, pod, objects, fields)?;
    let image_env: Vec<String> = image.and_then(|i| i.env().clone()).unwrap_or_default();
    let env = env::merge(&image_env, &pod_env, hostname);
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use oci_spec::image::ConfigBuilder;
    use std::collections::BTreeMap;

    struct NoObjects;
    impl Objects for NoObjects {
        fn config_map(&self, _name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            None
        }
        fn secret(&self, _name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            None
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    /// Pod `web-1` of namespace `team` with one container `c` whose `env` is `env`.
    fn pod(spec: PodSpec, env: Vec<EnvVar>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("team".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    env: Some(env),
                    ..Container::default()
                }],
                ..spec
            }),
            ..Pod::default()
        }
    }

    /// The environment of the pod's container over an image whose `Env` is `image_env`,
    /// on the node `node-1`.
    fn env_of(pod: &Pod, image_env: &[&str]) -> Vec<String> {
        let image = ConfigBuilder::default()
            .env(image_env.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .cmd(vec!["sh".to_string()])
            .build()
            .unwrap();
        let fields = PodFields {
            node_name: "node-1".into(),
            ..PodFields::default()
        };
        let container = &pod.spec.as_ref().unwrap().containers[0];
        resolve(pod, container, Some(&image), &NoObjects, &fields, &())
            .unwrap()
            .env
    }

    fn hostname_of(env: &[String]) -> Option<&str> {
        env.iter().find_map(|e| e.strip_prefix("HOSTNAME="))
    }

    #[test]
    fn hostname_is_the_pod_s_kernel_hostname() {
        let echo = || vec![var("A", "$(HOSTNAME)")];
        let env = env_of(&pod(PodSpec::default(), echo()), &[]);
        assert_eq!(hostname_of(&env), Some("web-1"));
        assert!(
            env.contains(&"A=$(HOSTNAME)".to_string()),
            "the runtime's variable is not the pod's, so not expanded: {env:?}"
        );
        let named = PodSpec {
            hostname: Some("box".into()),
            ..PodSpec::default()
        };
        let env = env_of(&pod(named.clone(), echo()), &[]);
        assert_eq!(hostname_of(&env), Some("box"));
        let fqdn = PodSpec {
            subdomain: Some("sub".into()),
            set_hostname_as_fqdn: Some(true),
            ..named
        };
        let env = env_of(&pod(fqdn, echo()), &[]);
        assert_eq!(hostname_of(&env), Some("box.sub.team.svc.cluster.local"));
        let host = PodSpec {
            host_network: Some(true),
            ..PodSpec::default()
        };
        let env = env_of(&pod(host, echo()), &[]);
        assert_eq!(hostname_of(&env), Some("node-1"));
    }

    #[test]
    fn the_image_and_the_container_set_hostname_over_the_runtime() {
        let env = env_of(&pod(PodSpec::default(), vec![]), &["HOSTNAME=image"]);
        assert_eq!(hostname_of(&env), Some("image"));
        let own = vec![var("HOSTNAME", "mine")];
        let env = env_of(&pod(PodSpec::default(), own), &["HOSTNAME=image"]);
        assert_eq!(hostname_of(&env), Some("mine"));
        assert_eq!(env.iter().filter(|e| e.starts_with("HOSTNAME=")).count(), 1);
    }
}
