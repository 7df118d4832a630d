//! `podrun validate FILE`: the checks `podrun play --strict` makes of a manifest, without
//! pulling or running anything: the manifest's own (a file that passes is one a Kubernetes
//! API server accepts) and the planner's that need no image (`podrun_planner::check`), so
//! that a file it passes is one podrun runs in full.

use std::process::ExitCode;

use clap::Args;
use podrun_manifest::{LoadOptions, Manifest};
use podrun_pod_model::claims::VolumeRoot;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest: a YAML file of one or more documents, or `-` for stdin.
    #[arg(value_name = "FILE")]
    file: String,
}

/// Exit 0 with a one-line summary, or the errors (see `podrun_manifest`) and exit 1.
/// `namespace`: `-n`, the namespace of the objects that name none.
pub fn run(args: &ValidateArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let options = LoadOptions {
        strict: true,
        namespace: namespace.map(str::to_string),
    };
    let manifest = podrun_manifest::load_path(&args.file, &options)?;
    for warning in &manifest.warnings {
        eprintln!("warning: {warning}");
    }
    // What `play` would refuse while planning (probes, hooks, limits...), images aside.
    let errors = podrun_planner::check::check_all(&manifest, user_volumes().as_ref());
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("error: {error}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let shown = if args.file == "-" {
        "<stdin>"
    } else {
        args.file.as_str()
    };
    println!("{shown}: valid: {}", summary(&manifest));
    Ok(ExitCode::SUCCESS)
}

/// The user's named volumes, where the claims a file does not define must exist (`play`'s
/// and `validate`'s checks); `None` without the user's paths (HOME unset: `play` fails then
/// before it plans anything).
pub(crate) fn user_volumes() -> Option<VolumeRoot> {
    let paths = podrun_config::Paths::from_env().ok()?;
    Some(VolumeRoot(paths.data_dir.join("volumes")))
}

/// `2 pods (default/web, default/db), 1 ConfigMap, 0 Secrets`.
fn summary(manifest: &Manifest) -> String {
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    let pods: Vec<String> = manifest
        .pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace(), p.name()))
        .collect();
    format!(
        "{} ({}), {}, {}",
        plural(pods.len(), "pod"),
        pods.join(", "),
        plural(manifest.config_maps.len(), "ConfigMap"),
        plural(manifest.secrets.len(), "Secret")
    )
}
