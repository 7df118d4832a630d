//! `podrun images`

use std::process::ExitCode;

use clap::Args;
use podrun_store::Digest;

use crate::context::Context;
use crate::output::{human_age, human_size, print_table, Format};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub fn run(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let context = Context::load()?;
    let images = context.store.images()?;
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&images)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = images
                .iter()
                .map(|image| {
                    vec![
                        image.repository.clone(),
                        image.tag.clone().unwrap_or_else(|| "<none>".into()),
                        image
                            .digest
                            .parse::<Digest>()
                            .map(|d| d.short().to_string())
                            .unwrap_or_else(|_| image.digest.clone()),
                        human_size(image.size),
                        human_age(image.created.as_deref()),
                    ]
                })
                .collect();
            print_table(&["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
