//! The argument vector: Kubernetes `command`/`args` over the image's ENTRYPOINT/CMD.
//!
//! | command | args | runs                      |
//! |---------|------|---------------------------|
//! | -       | -    | ENTRYPOINT + CMD          |
//! | set     | -    | command                   |
//! | -       | set  | ENTRYPOINT + args         |
//! | set     | set  | command + args            |

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use oci_spec::image::Config as ImageConfig;

use crate::expand::expand;
use crate::ProcessError;

/// The argv of `container`, with `$(VAR)` expanded against the pod-defined variables.
pub fn args(
    name: &str,
    container: &Container,
    image: Option<&ImageConfig>,
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<String>, ProcessError> {
    let image_entrypoint = image
        .and_then(|i| i.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|i| i.cmd().clone()).unwrap_or_default();
    let lookup = |n: &str| mapping.get(n).cloned();
    let expand_all =
        |words: &[String]| -> Vec<String> { words.iter().map(|w| expand(w, &lookup)).collect() };
    let (entrypoint, rest) = match (&container.command, &container.args) {
        (Some(command), Some(args)) => (expand_all(command), expand_all(args)),
        (Some(command), None) => (expand_all(command), Vec::new()),
        (None, Some(args)) => (image_entrypoint, expand_all(args)),
        (None, None) => (image_entrypoint, image_cmd),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(rest).collect();
    if argv.is_empty() {
        return Err(ProcessError::NoCommand {
            container: name.to_string(),
        });
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut config = ImageConfig::default();
        config.set_entrypoint(entrypoint.map(|e| e.iter().map(|s| s.to_string()).collect()));
        config.set_cmd(cmd.map(|c| c.iter().map(|s| s.to_string()).collect()));
        config
    }

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        Container {
            name: "c".into(),
            command: command.map(|c| c.iter().map(|s| s.to_string()).collect()),
            args: args.map(|a| a.iter().map(|s| s.to_string()).collect()),
            ..Container::default()
        }
    }

    #[test]
    fn kubernetes_rules() {
        let img = image(Some(&["/entry"]), Some(&["cmd-arg"]));
        let mapping = BTreeMap::from([("X".to_string(), "x-value".to_string())]);
        let run = |c: Container| args("c", &c, Some(&img), &mapping).unwrap();
        assert_eq!(run(container(None, None)), ["/entry", "cmd-arg"]);
        assert_eq!(run(container(Some(&["/bin/sh"]), None)), ["/bin/sh"]);
        assert_eq!(run(container(None, Some(&["a"]))), ["/entry", "a"]);
        assert_eq!(
            run(container(Some(&["echo"]), Some(&["$(X)", "$$(X)", "$(Y)"]))),
            ["echo", "x-value", "$(X)", "$(Y)"]
        );
        // Image words are never expanded.
        let img = image(None, Some(&["echo", "$(X)"]));
        assert_eq!(
            args("c", &container(None, None), Some(&img), &mapping).unwrap(),
            ["echo", "$(X)"]
        );
    }

    #[test]
    fn nothing_to_run_is_an_error() {
        let err = args("web", &container(None, None), None, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("container `web`: no command"));
    }
}
