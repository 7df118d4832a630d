//! `podrun volume ls|inspect|rm`: the named volumes that PersistentVolumeClaims become
//! (podrun-pod-model's `claims`, listed and removed by podrun-pod's `volumes`); and the
//! removal of a file's volumes for `down --volumes`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use podrun_manifest::{Manifest, WorkloadKind, DEFAULT_NAMESPACE};
use podrun_pod::volumes::{VolumeEntry, VolumeRemoved};
use podrun_pod::PodDirs;
use serde::Serialize;

use crate::context::pod_dirs;
use crate::output::{human_age, print_data, print_names, print_table, Format};

#[derive(Debug, Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
enum VolumeCommand {
    /// List the volumes (with -n, those of one namespace).
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Print volumes as JSON: the claim they were made for (storage requested, access
    /// modes, storage class), when and by which file and pod, their directory, the pods that
    /// mount them.
    Inspect(InspectArgs),
    /// Remove volumes and their data; refused for a volume that a running pod mounts.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Debug, Args)]
struct LsArgs {
    /// Output format: table (NAMESPACE NAME CREATED IN USE BY), wide (also STORAGE, the
    /// size requested, recorded but not enforced, and the directory), json or yaml (what
    /// `volume inspect` prints, for every volume).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,

    /// Print only the volumes' names (NAMESPACE/NAME outside the default namespace), one per
    /// line.
    #[arg(short, long, conflicts_with = "output")]
    quiet: bool,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// Volumes: `NAME` (the claim's name; in `default`, or with -n in NS) or
    /// `NAMESPACE/NAME`.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

#[derive(Debug, Args)]
struct RmArgs {
    /// Volumes: `NAME` (in `default`, or with -n in NS) or `NAMESPACE/NAME`.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

/// A volume as `inspect` and `ls -o json` print it.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    namespace: &'a str,
    name: &'a str,
    /// RFC 3339 (empty when unknown).
    created: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<&'a str>,
    access_modes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<&'a podrun_pod_model::claims::CreatedBy>,
    /// The directory the pods mount.
    path: String,
    in_use_by: &'a [String],
}

fn shown(entry: &VolumeEntry) -> Shown<'_> {
    let meta = &entry.volume.meta;
    Shown {
        namespace: &meta.namespace,
        name: &meta.name,
        created: &meta.created,
        storage: meta.storage.as_deref(),
        access_modes: &meta.access_modes,
        storage_class: meta.storage_class.as_deref(),
        owner: meta.owner.as_deref(),
        created_by: meta.created_by.as_ref(),
        path: entry.volume.data_dir().display().to_string(),
        in_use_by: &entry.used_by,
    }
}

/// `namespace`: `-n`.
pub fn run(args: VolumeArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    match args.command {
        VolumeCommand::Ls(args) => ls(&dirs, &args, namespace),
        VolumeCommand::Inspect(args) => inspect(&dirs, &args, namespace),
        VolumeCommand::Rm(args) => rm(&dirs, &args, namespace),
    }
}

/// How commands take a volume: `NAME` in the default namespace, else `NAMESPACE/NAME`.
fn volume_ref(namespace: &str, name: &str) -> String {
    if namespace == DEFAULT_NAMESPACE {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

fn ls(dirs: &PodDirs, args: &LsArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let volumes = podrun_pod::volumes::list(dirs, namespace)?;
    if args.quiet {
        let names: Vec<String> = volumes
            .iter()
            .map(|v| volume_ref(v.namespace(), v.name()))
            .collect();
        print_names(names.iter().map(String::as_str));
        return Ok(ExitCode::SUCCESS);
    }
    if args.output.is_data() {
        let shown: Vec<Shown> = volumes.iter().map(shown).collect();
        print_data(&shown, args.output)?;
        return Ok(ExitCode::SUCCESS);
    }
    if volumes.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No volumes found in {ns} namespace."),
            None => eprintln!("No volumes found."),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let wide = args.output == Format::Wide;
    let mut header = vec!["NAMESPACE", "NAME", "CREATED", "IN USE BY"];
    if wide {
        header.extend(["STORAGE", "PATH"]);
    }
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|v| {
            let meta = &v.volume.meta;
            let created = (!meta.created.is_empty()).then_some(meta.created.as_str());
            let mut row = vec![
                meta.namespace.clone(),
                meta.name.clone(),
                human_age(created),
                if v.used_by.is_empty() {
                    "-".to_string()
                } else {
                    v.used_by.join(",")
                },
            ];
            if wide {
                row.push(meta.storage.clone().unwrap_or_else(|| "-".into()));
                row.push(v.volume.data_dir().display().to_string());
            }
            row
        })
        .collect();
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

/// `NAME` (in `-n`'s namespace, else `default`) or `NAMESPACE/NAME`.
fn parse_ref(reference: &str, namespace: Option<&str>) -> anyhow::Result<(String, String)> {
    let (ns, name) = match reference.split_once('/') {
        Some((ns, name)) => {
            if let Some(given) = namespace.filter(|given| *given != ns) {
                anyhow::bail!("volume {reference} is in namespace {ns}, but -n says {given}");
            }
            (ns, name)
        }
        None => (namespace.unwrap_or(DEFAULT_NAMESPACE), reference),
    };
    if ns.is_empty() || name.is_empty() || name.contains('/') || name.starts_with('.') {
        anyhow::bail!("`{reference}` is not a volume: write NAME or NAMESPACE/NAME");
    }
    Ok((ns.to_string(), name.to_string()))
}

fn inspect(
    dirs: &PodDirs,
    args: &InspectArgs,
    namespace: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut found = Vec::new();
    let mut failed = false;
    for reference in &args.names {
        let (ns, name) = parse_ref(reference, namespace)?;
        match podrun_pod::volumes::get(dirs, &ns, &name)? {
            Some(entry) => found.push(entry),
            None => {
                eprintln!("error: volume {ns}/{name} not found (podrun volume ls lists them)");
                failed = true;
            }
        }
    }
    let shown: Vec<Shown> = found.iter().map(shown).collect();
    print_data(&shown, Format::Json)?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn rm(dirs: &PodDirs, args: &RmArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for reference in &args.names {
        let (ns, name) = parse_ref(reference, namespace)?;
        if !remove_one(dirs, &ns, &name, true) {
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Removes volume `ns/name`, saying so; `missing_is_error`: a volume that does not exist is
/// an error (`volume rm`) rather than nothing to do (`down --volumes`). False on an error.
fn remove_one(dirs: &PodDirs, ns: &str, name: &str, missing_is_error: bool) -> bool {
    let shown = podrun_pod::display_name(ns, name);
    match podrun_pod::volumes::remove(dirs, ns, name) {
        Ok(VolumeRemoved::Removed) => {
            println!("volume {shown} removed");
            true
        }
        Ok(VolumeRemoved::NotFound) if !missing_is_error => true,
        Ok(VolumeRemoved::NotFound) => {
            eprintln!("error: volume {shown} not found (podrun volume ls lists them)");
            false
        }
        Ok(VolumeRemoved::InUse(pods)) => {
            let down: Vec<String> = pods
                .iter()
                .map(|p| p.strip_prefix("default/").unwrap_or(p).to_string())
                .collect();
            eprintln!(
                "error: volume {shown} is in use by running pod{} {}: take {} down first (podrun down {})",
                if pods.len() == 1 { "" } else { "s" },
                pods.join(", "),
                if pods.len() == 1 { "it" } else { "them" },
                down.join(" ")
            );
            false
        }
        Err(e) => {
            eprintln!("error: volume {shown}: {e}");
            false
        }
    }
}

/// `down FILE --volumes`, once the file's pods are down: removes the volumes of the
/// PersistentVolumeClaims the file defines and of its StatefulSets' claims (also those of
/// ordinals beyond today's `replicas`, found by the StatefulSet their metadata records), as
/// `podman kube down --force` removes a file's volumes. False when one could not be removed.
pub fn remove_file_volumes(dirs: &PodDirs, manifest: &Manifest) -> bool {
    let mut targets: Vec<(String, String)> = manifest
        .claims
        .iter()
        .map(|c| (c.namespace().to_string(), c.name().to_string()))
        .collect();
    let sets: Vec<(String, String)> = manifest
        .pods
        .iter()
        .filter_map(|p| {
            let owner = p.owner.as_ref()?;
            (owner.kind == WorkloadKind::StatefulSet).then(|| {
                (
                    p.namespace().to_string(),
                    format!("{}/{}", owner.kind.name(), owner.name),
                )
            })
        })
        .collect();
    for volume in podrun_pod::volumes::list(dirs, None).unwrap_or_default() {
        let meta = &volume.volume.meta;
        let of_set = meta
            .owner
            .as_ref()
            .is_some_and(|owner| sets.contains(&(meta.namespace.clone(), owner.clone())));
        if of_set {
            targets.push((meta.namespace.clone(), meta.name.clone()));
        }
    }
    targets.sort();
    targets.dedup();
    let mut ok = true;
    for (ns, name) in &targets {
        ok &= remove_one(dirs, ns, name, false);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_references() {
        assert_eq!(
            parse_ref("data", None).unwrap(),
            ("default".into(), "data".into())
        );
        assert_eq!(
            parse_ref("data", Some("dev")).unwrap(),
            ("dev".into(), "data".into())
        );
        assert_eq!(
            parse_ref("dev/data", Some("dev")).unwrap(),
            ("dev".into(), "data".into())
        );
        assert!(parse_ref("dev/data", Some("prod")).is_err());
        for bad in ["a/b/c", "/x", "..", "dev/"] {
            assert!(parse_ref(bad, None).is_err(), "{bad}");
        }
        assert_eq!(volume_ref("default", "data"), "data");
        assert_eq!(volume_ref("dev", "data"), "dev/data");
    }
}
