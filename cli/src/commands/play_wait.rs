//! `podrun play --wait`, `--wait-ready` and `--replace`: play in the foreground for CI.
//!
//! * `--wait`: prints every container's output as it comes, each line behind a
//!   `pod/container |` prefix (coloured on a terminal unless NO_COLOR is set, like docker
//!   compose), read from the CRI log files the supervisor writes (`podrun_pod::logs`). When
//!   every pod has completed (each container ended with no restart due) the pods are
//!   removed and play exits with 0 if every container succeeded, else with the exit code of
//!   the container that failed first (the earliest last end; 128+N for signal N).
//!   A file's Jobs are waited for through their controllers' status files
//!   (`play_job::WaitedJobs`): their pods come and go (a failed pod is replaced), so a pod
//!   of a Job is followed (its logs) but does not decide the exit status; the Job does: 1
//!   when it failed, after the pods' own code.
//! * `--wait-ready`: returns 0 once every container is ready and leaves the pods running.
//! * Both: SIGINT/SIGTERM remove the pods and exit 130/143; `--timeout` removes them and
//!   exits 124; a container that ends for good before the pod is ready fails
//!   `--wait-ready` (exit 1), as does a supervisor that dies. The pods are stopped with
//!   `--grace-period`/`--now`'s grace period if given; a SIGINT or SIGTERM during their
//!   removal (a second Ctrl-C) kills them at once.
//!
//! play stays single-threaded here: it polls the state and log files every 100 ms.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use podrun_pod::logs::LogReader;
use podrun_pod::remove::{stop_and_remove, Lock, Removed, EXTRA_WAIT};
use podrun_pod::wait::{judge, Condition, Observed, Verdict};
use podrun_pod::{display_name, PodDirs};
use podrun_pod_model::logfile::Line;
use podrun_pod_model::state::{ContainerState, PodPhase, PodState};

/// Exit status of a run that timed out (as timeout(1)).
pub const EXIT_TIMEOUT: u8 = 124;

/// How often the state and the logs are read.
const POLL: Duration = Duration::from_millis(100);

/// A duration as `--timeout` takes it: `90` (seconds), `30s`, `2m`, `1h`, `1m30s`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("invalid duration `{text}` (expected e.g. 30s, 2m, 1h30m, 500ms or a number of seconds)")
    };
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return Err(invalid()),
        };
        total += Duration::from_secs_f64(seconds);
        rest = &rest[unit_end..];
    }
    Ok(total)
}

use super::play_job::WaitedJobs;
use super::stop_options::StopArgs;

static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// How many SIGINTs and SIGTERMs came.
static STOP_SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::Relaxed);
    STOP_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// From here on SIGINT and SIGTERM are noted (see [`received_signal`]) instead of ending
/// play: the pods it starts are removed first. Handlers (not ignored signals) are reset by
/// `execve`, so the supervisors play starts do not inherit them.
pub fn catch_stop_signals() {
    catch_stop_signal(nix::sys::signal::Signal::SIGINT);
    catch_stop_signal(nix::sys::signal::Signal::SIGTERM);
}

/// Notes `signal` as [`catch_stop_signals`] does SIGINT and SIGTERM.
pub fn catch_stop_signal(signal: nix::sys::signal::Signal) {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_stop_signal),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only stores into an atomic.
    let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
}

/// The SIGINT or SIGTERM received since [`catch_stop_signals`], if any.
pub fn received_signal() -> Option<i32> {
    Some(STOP_SIGNAL.load(Ordering::Relaxed)).filter(|s| *s != 0)
}

/// `--replace`: stops (as `stop` says) and removes the pods of these names, if they exist.
pub fn replace(dirs: &PodDirs, pods: &[(String, String)], stop: &StopArgs) -> anyhow::Result<()> {
    for (namespace, name) in pods {
        let shown = display_name(namespace, name);
        let on_wait = || eprintln!("waiting for the `podrun play` that is starting pod {shown}");
        if dirs.pod(namespace, name).exists() {
            eprintln!("replacing pod {shown}");
        }
        let on_slow = |waiting: &_| {
            eprintln!(
                "{}",
                stop.waiting_message(&shown, waiting, "--grace-period 0")
            )
        };
        let how = stop.stop(EXTRA_WAIT, &on_slow, &|| false);
        stop_and_remove(dirs, namespace, name, Lock::Take(&on_wait), &how)?;
    }
    Ok(())
}

/// Stops (as `stop` says) and removes the Jobs (controller first) and the pods (errors
/// are printed: the exit status is decided already). A SIGINT or SIGTERM that comes
/// meanwhile kills them at once.
fn tear_down(dirs: &PodDirs, pods: &[(String, String)], jobs: &WaitedJobs, stop: &StopArgs) {
    let signals = STOP_SIGNALS.load(Ordering::Relaxed);
    let kill_now = || STOP_SIGNALS.load(Ordering::Relaxed) > signals;
    if !jobs.jobs.is_empty() {
        let on_slow = |_: &_| {};
        jobs.tear_down(dirs, &stop.stop(EXTRA_WAIT, &on_slow, &kill_now));
    }
    for (namespace, name) in pods {
        let shown = display_name(namespace, name);
        let on_wait = || eprintln!("waiting for the `podrun play` that is starting pod {shown}");
        let on_slow =
            |waiting: &_| eprintln!("{}", stop.waiting_message(&shown, waiting, "Ctrl-C again"));
        let how = stop.stop(EXTRA_WAIT, &on_slow, &kill_now);
        match stop_and_remove(dirs, namespace, name, Lock::Take(&on_wait), &how) {
            Ok(Removed::Removed | Removed::NotFound) => {}
            Err(e) => eprintln!("error: pod {shown}: cannot remove it: {e}"),
        }
    }
}

/// What ends a wait early, and its exit status.
fn interrupted(
    dirs: &PodDirs,
    pods: &[(String, String)],
    jobs: &WaitedJobs,
    stop: &StopArgs,
) -> Option<ExitCode> {
    let signal = received_signal()?;
    eprintln!("interrupted: removing the pods");
    tear_down(dirs, pods, jobs, stop);
    Some(ExitCode::from((128 + signal) as u8))
}

fn timed_out(
    dirs: &PodDirs,
    pods: &[(String, String)],
    jobs: &WaitedJobs,
    deadline: Option<Instant>,
    what: &str,
    stop: &StopArgs,
) -> Option<ExitCode> {
    if deadline.is_none_or(|d| Instant::now() < d) {
        return None;
    }
    eprintln!("error: timed out: {what}; removing the pods");
    tear_down(dirs, pods, jobs, stop);
    Some(ExitCode::from(EXIT_TIMEOUT))
}

/// A pod's state, or why it has none that counts any more.
fn read_state(dirs: &PodDirs, namespace: &str, name: &str) -> Result<PodState, String> {
    let shown = display_name(namespace, name);
    let entry = podrun_pod::listing::entry(&dirs.runtime_dir(namespace, name))
        .ok_or_else(|| format!("pod `{shown}` is gone"))?;
    match (entry.state, entry.supervisor_alive) {
        (Some(state), true) => Ok(state),
        _ => Err(format!(
            "pod `{shown}`: its supervisor is gone (see {})",
            dirs.pod(namespace, name).supervisor_log().display()
        )),
    }
}

/// Every container of the pod: init containers first, then the app containers.
fn all_containers(state: &PodState) -> impl Iterator<Item = &ContainerState> {
    state.init_containers.iter().chain(&state.containers)
}

/// Whether the pod has completed: its phase is Succeeded or Failed (every container ended
/// and none is due to restart).
fn completed(state: &PodState) -> bool {
    matches!(
        state.compute_phase(),
        PodPhase::Succeeded | PodPhase::Failed
    )
}

/// `--wait`: follows the logs until every pod completes and every Job is over (`pods`:
/// the pods of no Job; the Jobs' pods come and go); see the module docs.
pub fn wait_for_completion(
    dirs: &PodDirs,
    pods: &[(String, String)],
    jobs: &WaitedJobs,
    timeout: Option<Duration>,
    stop: &StopArgs,
) -> anyhow::Result<ExitCode> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut logs = LogFollower::new(dirs, pods);
    logs.follow(dirs, &jobs.pods(dirs));
    let candidates = super::play_attach::candidates(dirs, pods);
    let mut terminal = super::play_attach::AttachedTerminal::attach_first(&candidates).map(
        |(terminal, attached)| {
            // Its output comes on the terminal: not again from its log.
            logs.mute(&attached.shown);
            logs.crlf = true;
            terminal
        },
    );
    loop {
        logs.follow(dirs, &jobs.pods(dirs));
        logs.print_new(false);
        let over = received_signal().is_some() || deadline.is_some_and(|d| Instant::now() >= d);
        if over {
            // The terminal's mode is restored before anything is said.
            terminal = None;
        }
        if let Some(code) = interrupted(dirs, pods, jobs, stop) {
            return Ok(code);
        }
        // The pods' states, then whether the Jobs are over; the first error ends the wait.
        let read = pods
            .iter()
            .map(|(namespace, name)| read_state(dirs, namespace, name))
            .collect::<Result<Vec<PodState>, String>>()
            .and_then(|states| Ok((states, jobs.finished(dirs)?)));
        let (states, finished_jobs) = match read {
            Ok(read) => read,
            Err(e) => {
                drop(terminal.take());
                logs.print_new(true);
                eprintln!("error: {e}");
                tear_down(dirs, pods, jobs, stop);
                return Ok(ExitCode::FAILURE);
            }
        };
        if let Some(statuses) = finished_jobs.filter(|_| states.iter().all(completed)) {
            if let Some(terminal) = &mut terminal {
                // What the container wrote last, before the terminal's mode is restored.
                terminal.relay(Duration::ZERO);
            }
            drop(terminal.take());
            // The supervisor writes a container's last output before its exit.
            logs.print_new(true);
            let code = exit_code(&states);
            summarize(&states);
            let code = summarize_jobs(dirs, jobs, &statuses, code);
            tear_down(dirs, pods, jobs, stop);
            return Ok(ExitCode::from(code));
        }
        let what = "the pods did not complete in time";
        if let Some(code) = timed_out(dirs, pods, jobs, deadline, what, stop) {
            logs.print_new(true);
            return Ok(code);
        }
        match &mut terminal {
            Some(attached) => {
                if !attached.relay(POLL) {
                    terminal = None;
                }
            }
            None => std::thread::sleep(POLL),
        }
    }
}

/// 0 if every container succeeded, else the code of the failed container whose last run
/// ended first (in container order when they ended in the same second); 1 for a pod that
/// failed as a whole (`DeadlineExceeded`) with no failed container.
fn exit_code(states: &[PodState]) -> u8 {
    let failed = states
        .iter()
        .flat_map(all_containers)
        .filter(|c| c.exit_code.unwrap_or(0) != 0);
    let pod_failed = states.iter().any(|s| s.reason.is_some());
    failed
        .min_by(|a, b| a.finished_at.cmp(&b.finished_at))
        .and_then(|c| c.exit_code)
        .map(|code| code.clamp(1, 255) as u8)
        .unwrap_or(u8::from(pod_failed))
}

/// The Jobs' pods and statuses, one line each, and a failed Job's error; the exit status:
/// `code` (the pods'), else 1 when a Job failed.
fn summarize_jobs(
    dirs: &PodDirs,
    jobs: &WaitedJobs,
    statuses: &[super::job_state::JobStatus],
    mut code: u8,
) -> u8 {
    let states: Vec<PodState> = jobs
        .pods(dirs)
        .iter()
        .filter_map(|(namespace, name)| read_state(dirs, namespace, name).ok())
        .collect();
    summarize(&states);
    for status in statuses {
        eprintln!("{}", status.summary());
        let failed = status
            .finished()
            .filter(|c| c.type_ == super::job_state::ConditionType::Failed);
        if let Some(condition) = failed {
            eprintln!(
                "error: job `{}` failed: {}: {}",
                display_name(&status.namespace, &status.name),
                condition.reason,
                condition.message
            );
            code = code.max(1);
        }
    }
    code
}

fn summarize(states: &[PodState]) {
    for state in states {
        let ended: Vec<String> = all_containers(state)
            .map(|c| match c.exit_code {
                Some(code) => format!("{} exited with code {code}", c.name),
                None => format!("{} did not run", c.name),
            })
            .collect();
        let why = state
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        eprintln!(
            "pod {} {}{why}: {}",
            display_name(&state.namespace, &state.pod),
            state.compute_phase().as_str().to_lowercase(),
            ended.join(", ")
        );
    }
}

/// `--wait-ready`: waits until every container of every pod is ready; see the module docs.
pub fn wait_until_ready(
    dirs: &PodDirs,
    pods: &[(String, String)],
    jobs: &WaitedJobs,
    timeout: Option<Duration>,
    stop: &StopArgs,
) -> anyhow::Result<Option<ExitCode>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if let Some(code) = interrupted(dirs, pods, jobs, stop) {
            return Ok(Some(code));
        }
        let mut not_ready = Vec::new();
        for (namespace, name) in pods {
            let state = match read_state(dirs, namespace, name) {
                Ok(state) => state,
                Err(e) => {
                    eprintln!("error: {e}");
                    tear_down(dirs, pods, jobs, stop);
                    return Ok(Some(ExitCode::FAILURE));
                }
            };
            // `podrun wait --for ready`'s rule: a container ended for good, or the pod
            // completed, before it was ready, fails the wait.
            let observed = Observed::Running(Box::new(state));
            match judge(Condition::Ready, &observed) {
                Verdict::Done => {}
                Verdict::Waiting(_) => {
                    if let Observed::Running(state) = observed {
                        not_ready.push(*state);
                    }
                }
                Verdict::Failed(why) => {
                    eprintln!(
                        "error: pod `{}`: {why}; removing the pods",
                        display_name(namespace, name)
                    );
                    tear_down(dirs, pods, jobs, stop);
                    return Ok(Some(ExitCode::FAILURE));
                }
            }
        }
        if not_ready.is_empty() {
            return Ok(None);
        }
        let what = format!(
            "not ready:{}",
            not_ready.iter().map(why_not_ready).collect::<String>()
        );
        if let Some(code) = timed_out(dirs, pods, jobs, deadline, &what, stop) {
            return Ok(Some(code));
        }
        std::thread::sleep(POLL);
    }
}

/// The containers of the pod that are not ready, each with its failing probe's last result.
fn why_not_ready(state: &PodState) -> String {
    let mut text = String::new();
    for container in state.containers.iter().filter(|c| !c.ready) {
        text.push_str(&format!(
            "\n  pod {} container {}: {}",
            display_name(&state.namespace, &state.pod),
            container.name,
            container.state
        ));
        for probe in &container.probes {
            if probe.result != podrun_pod_model::probe::ProbeResult::Success {
                text.push_str(&format!(
                    "; {} probe: {} ({} failures in a row){}",
                    probe.probe.title().to_lowercase(),
                    match probe.last_result {
                        None => "not run yet".to_string(),
                        Some(r) => format!("{r:?}").to_lowercase(),
                    },
                    probe.consecutive_failures,
                    if probe.last_message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", probe.last_message)
                    }
                ));
            }
        }
    }
    text
}

/// The log files of every container of the pods, read as they grow, printed line by line
/// behind `pod/container |`.
struct LogFollower {
    streams: Vec<Stream>,
    /// The pods whose containers have streams (the Jobs' pods are added as they come).
    followed: std::collections::BTreeSet<(String, String)>,
    colour: bool,
    width: usize,
    /// Lines end in `\r\n`: the terminal is in raw mode (attached to a container).
    crlf: bool,
}

struct Stream {
    log: LogReader,
    prefix: String,
    colour: &'static str,
    /// The last line printed was not complete: its rest follows without a prefix.
    open_line: bool,
    /// Read but not printed: the container's terminal is attached.
    muted: bool,
}

/// docker compose's palette.
const COLOURS: [&str; 6] = [
    "\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m",
];

impl LogFollower {
    fn new(dirs: &PodDirs, pods: &[(String, String)]) -> LogFollower {
        let mut follower = LogFollower {
            streams: Vec::new(),
            followed: Default::default(),
            colour: crate::output::colour(crate::output::Stream::Stdout),
            width: 0,
            crlf: false,
        };
        follower.follow(dirs, pods);
        follower
    }

    /// Adds the containers of the pods not followed yet (a Job's new pods), from the start
    /// of their logs.
    fn follow(&mut self, dirs: &PodDirs, pods: &[(String, String)]) {
        for (namespace, name) in pods {
            if self.followed.contains(&(namespace.clone(), name.clone())) {
                continue;
            }
            let dir = dirs.runtime_dir(namespace, name);
            let Ok(plan) = podrun_pod_model::plan::Plan::read(&dir) else {
                continue;
            };
            self.followed.insert((namespace.clone(), name.clone()));
            let pod = if namespace == podrun_manifest::DEFAULT_NAMESPACE {
                name.clone()
            } else {
                display_name(namespace, name)
            };
            for container in plan.init_containers.iter().chain(&plan.containers) {
                self.streams.push(Stream {
                    log: LogReader::new(plan.layout().container_log(&container.name)),
                    prefix: format!("{pod}/{}", container.name),
                    colour: COLOURS[self.streams.len() % COLOURS.len()],
                    open_line: false,
                    muted: false,
                });
            }
        }
        self.width = self
            .streams
            .iter()
            .map(|s| s.prefix.len())
            .max()
            .unwrap_or(0);
    }

    /// Stops printing the lines of container `shown` (`pod/container`, the pod's namespace
    /// only when it is not `default`).
    fn mute(&mut self, shown: &str) {
        let shown = shown
            .strip_prefix(podrun_manifest::DEFAULT_NAMESPACE)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(shown);
        for stream in self.streams.iter_mut().filter(|s| s.prefix == shown) {
            stream.muted = true;
        }
    }

    /// Prints the lines written since the last call; `flush`: also the lines not ended yet
    /// (the pods are done).
    fn print_new(&mut self, flush: bool) {
        let mut text = Vec::new();
        for stream in &mut self.streams {
            // A log that cannot be read (gone with its pod) has nothing more to show.
            let mut lines = stream.log.read_new().unwrap_or_default();
            if flush {
                lines.extend(stream.log.flush());
            }
            if stream.muted {
                continue;
            }
            for line in lines {
                let _ = stream.print(&mut text, &line, self.colour, self.width);
            }
        }
        if self.crlf {
            text = crlf(&text);
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&text);
        let _ = out.flush();
    }
}

/// `text` with `\r\n` for each `\n`: a terminal in raw mode does not add the `\r`.
fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &byte in text {
        if byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out
}

impl Stream {
    fn print(
        &mut self,
        out: &mut impl Write,
        line: &Line,
        colour: bool,
        width: usize,
    ) -> std::io::Result<()> {
        if !(self.open_line && line.continued) {
            if self.open_line {
                out.write_all(b"\n")?;
            }
            let prefix = format!("{:width$} |", self.prefix);
            if colour {
                write!(out, "{}{prefix}\x1b[0m ", self.colour)?;
            } else {
                write!(out, "{prefix} ")?;
            }
        }
        line.write_to(out, false)?;
        self.open_line = !line.complete;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn prefixed_lines_with_and_without_colour() {
        let mut stream = Stream {
            log: LogReader::new("/nonexistent"),
            prefix: "web/a".into(),
            colour: COLOURS[0],
            open_line: false,
            muted: false,
        };
        let line = |text: &str, complete: bool, continued: bool| Line {
            timestamp: None,
            text: text.as_bytes().to_vec(),
            complete,
            continued,
        };
        let mut out = Vec::new();
        stream
            .print(&mut out, &line("one", true, false), false, 7)
            .unwrap();
        stream
            .print(&mut out, &line("pro", false, false), false, 7)
            .unwrap();
        stream
            .print(&mut out, &line("mpt", true, true), false, 7)
            .unwrap();
        stream
            .print(&mut out, &line("two", true, false), true, 7)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "web/a   | one\nweb/a   | prompt\n\x1b[36mweb/a   |\x1b[0m two\n"
        );
    }

    fn container(name: &str, code: Option<i32>, finished: &str) -> ContainerState {
        serde_json::from_value(serde_json::json!({
            "name": name, "image": "i", "state": "exited", "pid": null, "id": "x",
            "exit_code": code, "started_at": null, "finished_at": finished, "restart_count": 0
        }))
        .unwrap()
    }

    #[test]
    fn the_first_failure_decides_the_exit_status() {
        let pod = |containers: Vec<ContainerState>| -> PodState {
            serde_json::from_value(serde_json::json!({
                "pod": "p", "namespace": "default", "uid": "u", "supervisor_pid": 1,
                "created": "2026-01-01T00:00:00Z", "restart_policy": "Never",
                "termination_grace_period_seconds": 1, "containers": containers
            }))
            .unwrap()
        };
        let ok = pod(vec![container("a", Some(0), "2026-01-01T00:00:05Z")]);
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        let failed = pod(vec![
            container("a", Some(0), "2026-01-01T00:00:01Z"),
            container("b", Some(7), "2026-01-01T00:00:09Z"),
            container("c", Some(137), "2026-01-01T00:00:03Z"),
        ]);
        assert_eq!(exit_code(&[ok.clone(), failed]), 137);
        // Past its activeDeadlineSeconds, a pod whose containers exited 0 still failed.
        let mut deadline = ok.clone();
        deadline.reason = Some("DeadlineExceeded".into());
        assert_eq!(exit_code(&[ok, deadline]), 1);
    }
}
