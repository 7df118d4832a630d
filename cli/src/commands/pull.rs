//! `podrun pull IMAGE...`

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use podrun_images::Puller;
use podrun_registry::ImageName;
use podrun_userns::MappingPlan;

use crate::context::Context;
use crate::output::stderr_is_terminal;
use crate::progress::PullProgress;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Images to pull: `nginx`, `nginx:1.23`, `registry:5000/team/app@sha256:…`.
    /// Short names are Docker Hub's (docker.io/library/…), reached through configured mirrors.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,

    /// Print only the pulled images' digests on stdout, no progress.
    #[arg(short, long)]
    quiet: bool,

    /// Registry logins to use first, for this pull only: a file in the format of
    /// `podman login`'s auth.json and docker's config.json (`{"auths": {...}}`). `podrun
    /// play` passes the logins of a pod's imagePullSecrets this way.
    #[arg(long, value_name = "FILE")]
    authfile: Option<std::path::PathBuf>,
}

pub async fn run(args: PullArgs, mapping: Option<MappingPlan>) -> anyhow::Result<ExitCode> {
    // Check every name before pulling anything.
    let names: Vec<ImageName> = args
        .images
        .iter()
        .map(|image| image.parse())
        .collect::<Result<_, _>>()?;
    let context = Context::load()?;
    let mut credentials = context.credentials()?;
    if let Some(file) = &args.authfile {
        credentials.override_with_file(file)?;
    }
    let puller = Puller {
        credentials,
        config: context.config.clone(),
        store: context.store.clone(),
        unpack_options: podrun_unpack_options(mapping.as_ref()),
    };
    let observer: Arc<dyn podrun_images::PullObserver> = if args.quiet {
        Arc::new(())
    } else {
        Arc::new(PullProgress::new(stderr_is_terminal()))
    };
    for name in &names {
        let record = puller
            .pull(name, observer.clone())
            .await
            .with_context(|| format!("pulling {name} failed"))?;
        println!("{}", record.digest);
    }
    Ok(ExitCode::SUCCESS)
}

/// With a single-id map, files owned by other ids cannot keep their owner: they become root's.
fn podrun_unpack_options(mapping: Option<&MappingPlan>) -> podrun_images::UnpackOptions {
    podrun_images::UnpackOptions {
        tolerate_unmapped_ids: matches!(mapping, Some(MappingPlan::SingleId { .. })),
        ..Default::default()
    }
}
