//! Shows pull progress: bars on a terminal, one plain line per step otherwise (CI logs).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use podrun_images::{PullEvent, PullObserver};

/// Draws [`PullEvent`]s on stderr.
pub struct PullProgress {
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    by_digest: Mutex<HashMap<String, ProgressBar>>,
}

impl PullProgress {
    pub fn new(terminal: bool) -> Self {
        let bars = terminal.then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            by_digest: Mutex::new(HashMap::new()),
        });
        PullProgress { bars }
    }

    fn say(&self, line: String) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

impl PullObserver for PullProgress {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::Resolved {
                image,
                digest,
                served_by,
                layers,
            } => self.say(format!(
                "Pulling {image} ({}, {layers} layer{}) from {served_by}",
                short(&digest),
                if layers == 1 { "" } else { "s" }
            )),
            PullEvent::WaitingForOtherPull { image } => self.say(format!(
                "{image}: waiting for another podrun pull of the same layers"
            )),
            PullEvent::LayerPresent { digest, .. } => self.say(format!(
                "  layer {}: already present, nothing to download",
                short(&digest)
            )),
            PullEvent::LayerStarted { digest, size } => match &self.bars {
                Some(bars) => {
                    let bar = bars.multi.add(ProgressBar::new(size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "  layer {prefix}: [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(short(&digest).to_string());
                    bars.by_digest.lock().unwrap().insert(digest, bar);
                }
                None => self.say(format!(
                    "  layer {}: downloading {}",
                    short(&digest),
                    crate::output::human_size(size)
                )),
            },
            PullEvent::LayerProgress { digest, bytes } => {
                if let Some(bars) = &self.bars {
                    if let Some(bar) = bars.by_digest.lock().unwrap().get(&digest) {
                        bar.set_position(bytes);
                    }
                }
            }
            PullEvent::LayerDone { digest } => {
                if let Some(bars) = &self.bars {
                    if let Some(bar) = bars.by_digest.lock().unwrap().remove(&digest) {
                        bar.finish_and_clear();
                    }
                }
                self.say(format!(
                    "  layer {}: downloaded and unpacked",
                    short(&digest)
                ));
            }
            PullEvent::Done { image, digest } => {
                self.say(format!("Pulled {image} ({})", short(&digest)))
            }
        }
    }
}
