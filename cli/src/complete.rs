//! Shell completion of the names only podrun knows: the pods of this user and the containers
//! of a pod. The shell scripts (`podrun completions SHELL`) call podrun back with
//! `PODRUN_COMPLETE=SHELL` (clap_complete's env completion), which lands in these completers.
//!
//! A completer runs at every TAB: it only lists the pods' runtime directory and reads one
//! state file, and it never fails: whatever it cannot read, it leaves out, silently.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::CommandFactory as _;
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter as _,
};

/// The variable that turns a run of podrun into a completion request.
pub const ENV_VAR: &str = "PODRUN_COMPLETE";

/// Answers a completion request and exits, when the shell script made one.
pub fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(crate::Cli::command)
        .var(ENV_VAR)
        .complete();
}

/// `POD` arguments: the pods' names (those of `-n`'s namespace, when the command line has
/// one).
pub fn pod() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| matching(pod_names(), current))
}

/// `-n`: the namespaces that have pods.
pub fn namespace() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let Some(dirs) = pod_dirs() else {
            return Vec::new();
        };
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for pod in podrun_pod::listing::list(&dirs).unwrap_or_default() {
            *counts.entry(pod.namespace).or_default() += 1;
        }
        let namespaces = counts
            .into_iter()
            .map(|(ns, n)| (ns, format!("{n} pod{}", if n == 1 { "" } else { "s" })))
            .collect();
        matching(namespaces, current)
    })
}

/// The words of the command line being completed (see [`pod_on_command_line`]).
fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|w| w.to_string_lossy().into_owned())
        .collect()
}

/// `--container`: the containers of the pod named on the command line (init containers
/// too), or of every pod before one is named.
pub fn container() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let words = command_line();
        let pods = match pod_on_command_line(&words) {
            Some(pod) => vec![pod],
            None => pod_names().into_iter().map(|(name, _)| name).collect(),
        };
        let mut names: Vec<(String, String)> = Vec::new();
        for pod in pods {
            for name in container_names(&pod) {
                if !names.iter().any(|(known, _)| *known == name) {
                    names.push((name, format!("container of {pod}")));
                }
            }
        }
        matching(names, current)
    })
}

/// `podrun cp`'s SRC and DEST: `POD:` (then the path in the container is typed by hand), or
/// a host path.
pub fn cp_operand() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        if current.to_string_lossy().contains(':') {
            return Vec::new();
        }
        let pods = pod_names()
            .into_iter()
            .map(|(name, status)| (format!("{name}:"), status))
            .collect();
        let mut candidates = matching(pods, current);
        candidates.extend(PathCompleter::any().complete(current));
        candidates
    })
}

/// `podrun down`'s targets: pods, or manifest files.
pub fn pod_or_file() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let mut candidates = matching(pod_names(), current);
        candidates.extend(PathCompleter::file().complete(current));
        candidates
    })
}

/// `(name, help)` pairs whose name starts with `current`, as candidates.
fn matching(names: Vec<(String, String)>, current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    names
        .into_iter()
        .filter(|(name, _)| name.starts_with(current.as_ref()))
        .map(|(name, help)| CompletionCandidate::new(name).help(Some(help.into())))
        .collect()
}

fn pod_dirs() -> Option<podrun_pod::PodDirs> {
    let paths = podrun_config::Paths::from_env().ok()?;
    crate::context::pod_dirs(&paths).ok()
}

/// The pods as commands take them, with their status: under `-n`, the names of its pods;
/// else `NAME` where that names the pod (see [`podrun_pod::listing::resolve`]), else
/// `NAMESPACE/NAME`.
fn pod_names() -> Vec<(String, String)> {
    let Some(dirs) = pod_dirs() else {
        return Vec::new();
    };
    let pods = podrun_pod::listing::list(&dirs).unwrap_or_default();
    let namespace = namespace_on_command_line(&command_line());
    let all: Vec<(&str, &str)> = pods
        .iter()
        .map(|p| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    pods.iter()
        .filter(|pod| namespace.as_ref().is_none_or(|ns| pod.namespace == *ns))
        .map(|pod| {
            let found = podrun_pod::listing::resolve_among(all.iter().copied(), None, &pod.name);
            let bare = namespace.is_some() || found.is_ok_and(|(ns, _)| ns == pod.namespace);
            let shown = if bare {
                pod.name.clone()
            } else {
                podrun_pod::display_name(&pod.namespace, &pod.name)
            };
            (shown, pod.status())
        })
        .collect()
}

/// The value of `-n`/`--namespace` on the command line being completed (not the word being
/// completed).
fn namespace_on_command_line(args: &[String]) -> Option<String> {
    let start = args.iter().position(|a| a == "--")? + 1;
    let words = args.get(start..args.len().saturating_sub(1))?;
    let mut found = None;
    let mut rest = words.iter();
    while let Some(word) = rest.next() {
        if word == "--" {
            break;
        }
        if word == "-n" || word == "--namespace" {
            found = rest.next().cloned();
        } else if let Some(value) = word.strip_prefix("--namespace=") {
            found = Some(value.to_string());
        } else if let Some(value) = word.strip_prefix("-n").filter(|v| !v.is_empty()) {
            found = Some(value.to_string());
        }
    }
    found
}

/// The init and app containers of `pod` (`[NAMESPACE/]NAME`, with `-n`), from its state
/// file.
fn container_names(pod: &str) -> Vec<String> {
    let Some(dirs) = pod_dirs() else {
        return Vec::new();
    };
    let namespace = namespace_on_command_line(&command_line());
    let Ok((namespace, name)) = podrun_pod::listing::resolve(&dirs, namespace.as_deref(), pod)
    else {
        return Vec::new();
    };
    let dir: PathBuf = dirs.runtime_dir(&namespace, &name);
    let Ok(state) = podrun_pod_model::state::PodState::read(&dir) else {
        return Vec::new();
    };
    state
        .init_containers
        .iter()
        .chain(&state.containers)
        .map(|c| c.name.clone())
        .collect()
}

/// The pod named by the command line being completed (`podrun logs web -c <TAB>`, `podrun
/// cp web:/etc/x -c <TAB>`): the words after `--` in this process's arguments, as the
/// completion scripts pass them. The last word is the one being completed and is left out.
fn pod_on_command_line(args: &[String]) -> Option<String> {
    let start = args.iter().position(|a| a == "--")? + 1;
    let words = args.get(start..args.len().saturating_sub(1))?;
    let command = crate::Cli::command();
    // The binary's name, then the global options (-n's value too), then the subcommand.
    let (index, sub) = words.iter().enumerate().skip(1).find(|(i, w)| {
        !w.starts_with('-') && !matches!(words[i - 1].as_str(), "-n" | "--namespace")
    })?;
    let sub = command.find_subcommand(sub)?;
    let takes_value = |word: &str| {
        sub.get_arguments().any(|arg| {
            arg.get_action().takes_values()
                && !arg.is_positional()
                && (arg.get_short().is_some_and(|s| word == format!("-{s}"))
                    || arg.get_long().is_some_and(|l| word == format!("--{l}")))
        })
    };
    let mut rest = words[index + 1..].iter();
    while let Some(word) = rest.next() {
        if word == "--" {
            return None;
        }
        // `-n` is global: not among the subcommand's own arguments.
        if takes_value(word) || word == "-n" || word == "--namespace" {
            rest.next();
            continue;
        }
        if word.starts_with('-') {
            continue;
        }
        if sub.get_name() == "cp" {
            if let Some((pod, _)) = word.split_once(':') {
                return Some(pod.to_string());
            }
            continue;
        }
        return Some(word.clone());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        ["/usr/bin/podrun", "--"]
            .into_iter()
            .chain(line.split(' '))
            .map(String::from)
            .collect()
    }

    #[test]
    fn finds_the_pod_of_the_command_line() {
        let pod = |line| pod_on_command_line(&words(line));
        assert_eq!(pod("podrun logs web -c "), Some("web".into()));
        assert_eq!(
            pod("podrun --debug logs -f web --container "),
            Some("web".into())
        );
        // The value of --tail is not the pod.
        assert_eq!(
            pod("podrun logs --tail 5 ns/web -c "),
            Some("ns/web".into())
        );
        assert_eq!(pod("podrun exec -i web -c "), Some("web".into()));
        assert_eq!(pod("podrun -n team exec web -c "), Some("web".into()));
        assert_eq!(pod("podrun exec -n team web -c "), Some("web".into()));
        assert_eq!(pod("podrun cp /tmp/x web:/tmp/x -c "), Some("web".into()));
        assert_eq!(pod("podrun cp /tmp/x -c "), None);
        // The word being completed is not a pod yet.
        assert_eq!(pod("podrun logs -c a we"), None);
        assert_eq!(pod("podrun nosuch web -c "), None);
        assert_eq!(pod_on_command_line(&["podrun".into()]), None);
    }

    #[test]
    fn finds_the_namespace_of_the_command_line() {
        let ns = |line| namespace_on_command_line(&words(line));
        assert_eq!(ns("podrun -n team-a logs "), Some("team-a".into()));
        assert_eq!(
            ns("podrun logs --namespace team-a web -c "),
            Some("team-a".into())
        );
        assert_eq!(ns("podrun logs --namespace=team-b "), Some("team-b".into()));
        assert_eq!(ns("podrun -nteam-c exec "), Some("team-c".into()));
        assert_eq!(ns("podrun logs web -c "), None);
        // The value being typed is not the namespace yet.
        assert_eq!(ns("podrun -n te"), None);
    }

    #[test]
    fn candidates_start_with_what_is_typed() {
        let names = vec![
            ("web".to_string(), "Running".to_string()),
            ("db".to_string(), "Pending".to_string()),
        ];
        let found = matching(names, OsStr::new("w"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].get_value(), "web");
    }
}
