//! `podrun images`

use std::process::ExitCode;

use clap::Args;
use podrun_store::{Digest, ImageRecord};

use crate::context::Context;
use crate::output::{human_age, human_size, print_data, print_names, print_table, Format};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format: table (REPOSITORY TAG DIGEST SIZE CREATED), wide (also the config
    /// digest, the layer count and when it was pulled), json or yaml (the image records).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,

    /// Print only the images' names (as `podrun rmi` takes them), one per line.
    #[arg(short, long, conflicts_with = "output")]
    quiet: bool,
}

pub fn run(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let context = Context::load()?;
    let images = context.store.images()?;
    if args.quiet {
        print_names(images.iter().map(|image| image.name.as_str()));
        return Ok(ExitCode::SUCCESS);
    }
    match args.output {
        format if format.is_data() => print_data(&images, format)?,
        format => {
            let wide = format == Format::Wide;
            let mut header = vec!["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"];
            if wide {
                header.extend(["CONFIG", "LAYERS", "PULLED"]);
            }
            let rows: Vec<Vec<String>> = images.iter().map(|image| row(image, wide)).collect();
            print_table(&header, &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(image: &ImageRecord, wide: bool) -> Vec<String> {
    let mut row = vec![
        image.repository.clone(),
        image.tag.clone().unwrap_or_else(|| "<none>".into()),
        short_digest(&image.digest),
        human_size(image.size),
        human_age(image.created.as_deref()),
    ];
    if wide {
        row.extend([
            short_digest(&image.config_digest),
            image.layers.len().to_string(),
            human_age(Some(&image.pulled)),
        ]);
    }
    row
}

fn short_digest(digest: &str) -> String {
    digest
        .parse::<Digest>()
        .map(|d| d.short().to_string())
        .unwrap_or_else(|_| digest.to_string())
}
