//! `podrun rmi IMAGE...` and `podrun rmi -a`

use std::process::ExitCode;

use clap::Args;
use podrun_registry::ImageName;
use podrun_store::ImageRecord;

use crate::context::Context;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove, by name (as pulled) or by digest (`sha256:…`, or its first 12+ hex digits).
    #[arg(
        value_name = "IMAGE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    images: Vec<String>,

    /// Remove every image.
    #[arg(short, long)]
    all: bool,
}

/// Whether `pattern` (a normalised name or a digest) names `image`.
fn selects(pattern: &Selector, image: &ImageRecord) -> bool {
    match pattern {
        Selector::Name(name) => &image.name == name,
        Selector::Digest(prefix) => {
            let hex = image.digest.trim_start_matches("sha256:");
            hex.starts_with(prefix.as_str())
        }
    }
}

enum Selector {
    Name(String),
    Digest(String),
}

fn parse_selector(text: &str) -> anyhow::Result<Selector> {
    let hex = text.trim_start_matches("sha256:");
    let looks_like_digest = hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if text.starts_with("sha256:") || looks_like_digest {
        return Ok(Selector::Digest(hex.to_ascii_lowercase()));
    }
    Ok(Selector::Name(text.parse::<ImageName>()?.to_string()))
}

pub fn run(args: RmiArgs) -> anyhow::Result<ExitCode> {
    let context = Context::load()?;
    let selectors: Vec<(String, Selector)> = args
        .images
        .iter()
        .map(|text| Ok((text.clone(), parse_selector(text)?)))
        .collect::<anyhow::Result<_>>()?;
    let images = context.store.images()?;
    let missing: Vec<&str> = selectors
        .iter()
        .filter(|(_, s)| !images.iter().any(|i| selects(s, i)))
        .map(|(text, _)| text.as_str())
        .collect();
    let removed = context
        .store
        .remove_images(|image| args.all || selectors.iter().any(|(_, s)| selects(s, image)))?;
    for image in &removed {
        println!("Untagged: {}", image.name);
    }
    let report = context.store.garbage_collect()?;
    for layer in &report.layers_removed {
        println!("Deleted layer: {layer}");
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "no such image in the store: {}\nhint: `podrun images` lists the images",
            missing.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
