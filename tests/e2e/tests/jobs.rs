//! Jobs: `completions` and `parallelism` (a Job's controller starts pods until enough
//! succeeded), `backoffLimit` (failed pods replaced, then the Job fails) and
//! `activeDeadlineSeconds` (the Job fails, its pod is stopped); `play --wait` waits for the
//! Jobs and says how they ended; `down FILE` leaves nothing. The pod failure back-off is
//! scaled down with `PODRUN_BACKOFF_SCALE` (10 s → 0.1 s). Completions and parallelism are
//! also run on the shared network (`play --network shared`), with slirp4netns and with pasta
//! as its way out (issue 17).

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use podrun_e2e::pods::{assert_nothing_left, shared_way_out, write_manifest, DownOnDrop, Network};
use podrun_e2e::{log_output, podrun_bin, TestEnv};

fn job(name: &str, spec: &str, script: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{spec}  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{script}"]
"#
    )
}

/// `podrun play --wait FILE` with the back-off scaled down; its output and how long it took.
fn play_wait(env: &TestEnv, file: &str) -> (Output, Duration) {
    let (output, took, _) = play_wait_on(env, Network::Private, file);
    (output, took)
}

/// [`play_wait`] on `network`, with the network holder's linger shortened (500 ms); also
/// what was seen running as the shared network's way out while it ran ([`shared_way_out`],
/// watched on the shared network only).
fn play_wait_on(
    env: &TestEnv,
    network: Network,
    file: &str,
) -> (Output, Duration, BTreeSet<String>) {
    let mut args = vec!["play", "--wait", "--timeout", "60s"];
    args.extend_from_slice(network.play_args());
    args.push(file);
    let start = Instant::now();
    let child = env
        .command(podrun_bin())
        .env("PODRUN_BACKOFF_SCALE", "0.01")
        .env("PODRUN_NETWORK_LINGER_MS", "500")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run podrun");
    // Waited for by a thread, so that the pipes are read while the way out is watched.
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait for podrun"));
    let mut seen = BTreeSet::new();
    while network != Network::Private && !waiter.is_finished() {
        seen.extend(shared_way_out(env));
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = waiter.join().unwrap();
    let took = start.elapsed();
    log_output(&format!("podrun {}", args.join(" ")), &output);
    (output, took, seen)
}

/// No Job's controller runs and no Job's files are left, beside [`assert_nothing_left`].
fn assert_no_job_left(env: &TestEnv) {
    assert_nothing_left(env);
    let jobs = podrun_e2e::list(&env.root().join("run/podrun/jobs"));
    assert_eq!(jobs, Vec::<String>::new(), "Job directories left");
    // This environment's: its runtime directory is in their environment.
    let runtime = format!("XDG_RUNTIME_DIR={}", env.root().join("run").display());
    let controllers: Vec<i64> = podrun_e2e::pods::processes()
        .filter(|(_, dir)| {
            let read = |file| std::fs::read(dir.join(file)).unwrap_or_default();
            read("cmdline").starts_with(b"podrun\0job-controller\0")
                && read("environ")
                    .split(|b| *b == 0)
                    .any(|v| v == runtime.as_bytes())
        })
        .map(|(pid, _)| pid)
        .collect();
    assert!(controllers.is_empty(), "controllers left: {controllers:?}");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The pods `play --wait` summed up with `word` (`succeeded`, `failed`).
fn pods_that(stderr: &str, job: &str, word: &str) -> usize {
    stderr
        .lines()
        .filter(|l| {
            l.starts_with(&format!("pod default/{job}-")) && l.contains(&format!(" {word}"))
        })
        .count()
}

#[test]
fn completions_and_parallelism() {
    completions_and_parallelism_on(Network::Private);
}

#[test]
fn completions_and_parallelism_on_the_shared_network_with_slirp4netns() {
    completions_and_parallelism_on(Network::SharedSlirp4netns);
}

#[test]
fn completions_and_parallelism_on_the_shared_network_with_pasta() {
    completions_and_parallelism_on(Network::SharedPasta);
}

/// Three completions, two at a time, on `network`: each pod says its address (of
/// 10.89.0.0/16 on the shared network only), and the shared network's way out is the one
/// asked for while the Job runs.
fn completions_and_parallelism_on(network: Network) {
    let env = network.env();
    let spec = "  completions: 3\n  parallelism: 2\n";
    let script = "echo done on $(hostname -i)";
    let file = write_manifest(&env, "job.yaml", &job("count", spec, script));
    let _down = DownOnDrop(&env, file.clone());
    let (output, _, way_out) = play_wait_on(&env, network, &file);
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert_eq!(pods_that(&text, "count", "succeeded"), 3, "{text}");
    assert!(
        text.contains("job default/count Complete: 3 succeeded, 0 failed"),
        "{text}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let addresses: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once("| done on ").map(|(_, ip)| ip.trim()))
        .collect();
    assert_eq!(addresses.len(), 3, "{stdout}");
    for ip in &addresses {
        network.assert_address(ip);
    }
    let wanted: BTreeSet<String> = network.way_out().into_iter().collect();
    assert_eq!(
        way_out, wanted,
        "the shared network's way out while the Job ran"
    );
    assert_no_job_left(&env);
    network.assert_released(&env);
}

#[test]
fn failed_pods_are_retried_up_to_the_backoff_limit() {
    let env = TestEnv::new();
    let spec = "  backoffLimit: 1\n";
    let file = write_manifest(&env, "job.yaml", &job("flaky", spec, "exit 1"));
    let _down = DownOnDrop(&env, file.clone());
    let (output, _) = play_wait(&env, &file);
    let text = stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("error: job `default/flaky` failed: BackoffLimitExceeded"),
        "{text}"
    );
    assert_eq!(pods_that(&text, "flaky", "failed"), 2, "two pods: {text}");
    assert_no_job_left(&env);
}

#[test]
fn the_active_deadline_fails_the_job_and_stops_its_pod() {
    let env = TestEnv::new();
    let spec = "  activeDeadlineSeconds: 2\n";
    let file = write_manifest(&env, "job.yaml", &job("slow", spec, "sleep 60"));
    let _down = DownOnDrop(&env, file.clone());
    let (output, took) = play_wait(&env, &file);
    let text = stderr(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("error: job `default/slow` failed: DeadlineExceeded"),
        "{text}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}: {text}");
    assert!(text.contains("job default/slow Failed"), "{text}");
    // Stopped (and removed) by the controller when the Job failed.
    assert_eq!(pods_that(&text, "slow", ""), 0, "{text}");
    assert_no_job_left(&env);
}

#[test]
fn play_returns_at_once_and_the_controller_finishes_the_job() {
    let env = TestEnv::new();
    let spec = "  completions: 2\n";
    let file = write_manifest(&env, "job.yaml", &job("bg", spec, "sleep 1"));
    let _down = DownOnDrop(&env, file.clone());
    env.podrun_ok(&["play", &file]);
    let status = env.root().join("run/podrun/jobs/default_bg/status.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    let complete = loop {
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        if text.contains("\"Complete\"") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(complete.contains("\"succeeded\": 2"), "{complete}");
    assert!(complete.contains("completionTime"), "{complete}");
    // Played again, the Job exists: refused.
    let again = env.podrun_err(&["play", &file]);
    assert!(again.contains("job `default/bg` already exists"), "{again}");
    env.podrun_ok(&["down", &file]);
    assert!(!status.exists(), "the Job's files are removed");
    assert_no_job_left(&env);
}
