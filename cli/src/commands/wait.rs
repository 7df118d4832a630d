//! `podrun wait POD... --for ready|completed|deleted [--timeout D]`: kubectl wait for pods.
//! Each pod's state is read every 100 ms and judged by `podrun_pod::wait::judge`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use podrun_pod::listing::ResolveError;
use podrun_pod::wait::{judge, observe, Condition, Verdict};

use crate::context::pod_dirs;

/// How often the pods' states are read.
const POLL: Duration = Duration::from_millis(100);

/// `--for`'s values (kubectl's spellings too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum For {
    /// Every container ready (READY n/n), as `play --wait-ready`.
    #[value(alias = "condition=Ready", alias = "condition=ready")]
    Ready,
    /// The pod Succeeded: every container ended with exit code 0 and none is due to restart
    /// (a pod that Failed instead exits 1).
    Completed,
    /// The pod is gone (`podrun down`, or the end of its `--owner-pid`).
    #[value(alias = "delete")]
    Deleted,
}

impl From<For> for Condition {
    fn from(wanted: For) -> Condition {
        match wanted {
            For::Ready => Condition::Ready,
            For::Completed => Condition::Completed,
            For::Deleted => Condition::Deleted,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status, as `play --wait-ready`: 0 once every pod meets the condition (each is printed \
as `pod NS/NAME condition met`); 1 when a pod can no longer meet it (a container ended for \
good before the pod was ready, the pod failed instead of completing, a pod waited for to be \
ready or to complete does not exist or was deleted, its supervisor is gone), saying why; 124 \
when --timeout passed first, naming the pods not there yet. The pods are left as they are.

Examples:
  podrun wait web --for ready --timeout 2m
  podrun wait -n ci job --for completed --timeout 10m
  podrun down web && podrun wait web --for deleted")]
pub struct WaitArgs {
    /// The pods: `NAME` (in `default`, or the only pod of that name; `-n NS NAME` in NS) or
    /// `NAMESPACE/NAME`.
    #[arg(required = true, value_name = "POD", add = crate::complete::pod())]
    pods: Vec<String>,

    /// What to wait for.
    #[arg(long = "for", value_enum, value_name = "CONDITION")]
    condition: For,

    /// How long to wait (e.g. 30s, 2m, 1h30m; a bare number is seconds; 0 checks once); 30s
    /// unless given, as with kubectl wait.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::play_wait::parse_duration)]
    timeout: Duration,
}

pub fn run(args: WaitArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    let paths = podrun_config::Paths::from_env()?;
    let dirs = pod_dirs(&paths)?;
    let condition = Condition::from(args.condition);
    let mut pods: Vec<(String, String)> = Vec::new();
    for reference in &args.pods {
        match podrun_pod::listing::resolve(&dirs, namespace, reference) {
            Ok(pod) => pods.push(pod),
            // Deleted already: nothing to wait for.
            Err(ResolveError::NotFound(name)) if condition == Condition::Deleted => {
                println!("pod {name} condition met");
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    pods.dedup();
    let deadline = Instant::now() + args.timeout;
    let mut met = vec![false; pods.len()];
    loop {
        let mut waiting = Vec::new();
        for ((namespace, name), met) in pods.iter().zip(&mut met) {
            if *met {
                continue;
            }
            let shown = podrun_pod::display_name(namespace, name);
            match judge(condition, &observe(&dirs, namespace, name)) {
                Verdict::Done => {
                    println!("pod {shown} condition met");
                    *met = true;
                }
                Verdict::Waiting(why) => waiting.push(format!("pod {shown}: {why}")),
                Verdict::Failed(why) => {
                    eprintln!("error: pod {shown}: {why}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        if waiting.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() >= deadline {
            eprintln!(
                "error: timed out waiting for the condition ({} after {:?}):\n  {}",
                condition_name(args.condition),
                args.timeout,
                waiting.join("\n  ")
            );
            return Ok(ExitCode::from(super::play_wait::EXIT_TIMEOUT));
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

fn condition_name(wanted: For) -> &'static str {
    match wanted {
        For::Ready => "ready",
        For::Completed => "completed",
        For::Deleted => "deleted",
    }
}
