//! `podrun logs`: what containers write to stdout and stderr, recorded by the supervisor in
//! the CRI log format, printed back as lines, with `--timestamps`, `--tail` and `-f`. Real
//! rootless pods of the test images, run by the ordinary test user.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use podrun_e2e::pods::{runtime_dir, wait_for_pod, write_manifest};
use podrun_e2e::{podrun_bin, TestEnv};

/// A one-container pod of busybox running `script` (`sh -c`).
fn pod(name: &str, restart_policy: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", {script:?}]
"#
    )
}

/// Plays a one-container pod; returns the manifest's path. (The [`TestEnv`] takes down the
/// pods left when it is dropped, also when a test fails.)
fn play(env: &TestEnv, name: &str, restart_policy: &str, script: &str) -> String {
    let file = write_manifest(
        env,
        &format!("{name}.yaml"),
        &pod(name, restart_policy, script),
    );
    env.podrun_ok(&["play", &file]);
    file
}

/// The pod's only container's state, in the pod's `ps -o json` entry.
fn container(pod: &serde_json::Value) -> &serde_json::Value {
    &pod["state"]["containers"][0]
}

/// Whether the pod's only container has exited.
fn exited(pod: &serde_json::Value) -> bool {
    container(pod)["state"] == "exited"
}

/// The container's log file, in the CRI format.
fn log_file(env: &TestEnv, pod: &str) -> PathBuf {
    runtime_dir(env, pod).join("logs/main.log")
}

/// Parses an RFC 3339 timestamp in UTC (`2026-11-23T12:00:00.123456789Z`, the fraction
/// optional) into (year, month, day, hour, minute, second, nanoseconds), which compare in
/// time order; panics on anything else.
fn rfc3339_utc(text: &str) -> (u32, u32, u32, u32, u32, u32, u32) {
    let fail = || -> ! { panic!("not an RFC 3339 UTC timestamp: {text:?}") };
    let body = text.strip_suffix('Z').unwrap_or_else(|| fail());
    let (seconds, fraction) = body.split_once('.').unwrap_or((body, ""));
    let bytes = seconds.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if bytes.len() != 19 || separators.iter().any(|&(i, c)| bytes[i] != c) {
        fail();
    }
    let number = |range: std::ops::Range<usize>, max: u32| {
        let digits = &seconds[range];
        match digits.parse::<u32>() {
            Ok(n) if n <= max && digits.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => fail(),
        }
    };
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        fail();
    }
    let nanos = format!("{fraction:0<9}").parse().unwrap();
    let date = (number(0..4, 9999), number(5..7, 12), number(8..10, 31));
    let time = (number(11..13, 23), number(14..16, 59), number(17..19, 60));
    if date.1 == 0 || date.2 == 0 {
        fail();
    }
    (date.0, date.1, date.2, time.0, time.1, time.2, nanos)
}

/// Splits `podrun logs --timestamps` output into (timestamp, text) pairs, checking that the
/// timestamps are RFC 3339 and never go back.
fn timestamped(out: &str) -> Vec<(String, String)> {
    let mut previous = None;
    out.lines()
        .map(|line| {
            let (timestamp, text) = line.split_once(' ').expect(line);
            let time = rfc3339_utc(timestamp);
            assert!(previous <= Some(time), "timestamps go back: {out}");
            previous = Some(time);
            (timestamp.to_string(), text.to_string())
        })
        .collect()
}

#[test]
fn stdout_and_stderr_come_back_in_order_with_and_without_timestamps() {
    let env = TestEnv::new();
    // The pauses order the two pipes' output; the last line is written just before the exit,
    // so the supervisor must read the pipes before it records the exit.
    play(
        &env,
        "echo",
        "Never",
        "echo one; sleep 0.3; echo two >&2; sleep 0.3; printf 'three\\n'; sleep 0.3; echo four >&2",
    );
    wait_for_pod(&env, "echo", 30, "the container exited", exited);
    assert_eq!(
        env.podrun_ok(&["logs", "echo"]),
        "one\ntwo\nthree\nfour\n",
        "stderr is printed to stdout, like kubectl"
    );
    let lines = timestamped(&env.podrun_ok(&["logs", "echo", "--timestamps"]));
    let texts: Vec<&str> = lines.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    assert_eq!(
        env.podrun_ok(&["logs", "echo", "--tail", "2"]),
        "three\nfour\n"
    );
    assert_eq!(env.podrun_ok(&["logs", "echo", "--tail", "0"]), "");
    let tail = env.podrun_ok(&["logs", "echo", "--tail", "1", "--timestamps"]);
    assert_eq!(tail, format!("{} four\n", lines[3].0));

    // The file itself: one CRI record per line, each stream named.
    let records = std::fs::read_to_string(log_file(&env, "echo")).unwrap();
    let fields: Vec<(String, &str, &str, &str)> = records
        .lines()
        .map(|record| {
            let parts: Vec<&str> = record.splitn(4, ' ').collect();
            assert_eq!(parts.len(), 4, "{record}");
            rfc3339_utc(parts[0]);
            (parts[0].to_string(), parts[1], parts[2], parts[3])
        })
        .collect();
    let summary: Vec<(&str, &str, &str)> = fields.iter().map(|f| (f.1, f.2, f.3)).collect();
    assert_eq!(
        summary,
        [
            ("stdout", "F", "one"),
            ("stderr", "F", "two"),
            ("stdout", "F", "three"),
            ("stderr", "F", "four"),
        ],
        "{records}"
    );
    assert_eq!(
        fields[0].0, lines[0].0,
        "--timestamps prints the records' times"
    );
}

#[test]
fn a_long_line_comes_back_whole() {
    let env = TestEnv::new();
    // 40000 bytes in one line, then 20000 with no newline at all before the exit.
    play(
        &env,
        "long",
        "Never",
        "head -c 40000 /dev/zero | tr '\\0' x; echo; head -c 20000 /dev/zero | tr '\\0' y",
    );
    wait_for_pod(&env, "long", 30, "the container exited", exited);
    let expected = format!("{}\n{}", "x".repeat(40000), "y".repeat(20000));
    assert_eq!(env.podrun_ok(&["logs", "long"]), expected);
    // One timestamp per line, though the lines came in parts.
    let with_times = env.podrun_ok(&["logs", "long", "--timestamps"]);
    let lines = timestamped(&with_times);
    assert_eq!(lines.len(), 2, "{}", &with_times[..200]);
    assert_eq!(lines[0].1, "x".repeat(40000));
    assert_eq!(lines[1].1, "y".repeat(20000));
    assert!(
        !with_times.ends_with('\n'),
        "the unended line stays unended"
    );
    // In the file, no record is longer than 16 KiB and the parts are tagged P.
    let records = std::fs::read_to_string(log_file(&env, "long")).unwrap();
    let tags: Vec<&str> = records
        .lines()
        .map(|r| r.split(' ').nth(2).unwrap())
        .collect();
    assert!(tags.len() >= 5, "{tags:?}");
    assert!(records.lines().all(|r| r.len() < 16 * 1024 + 64));
    assert_eq!(tags.last(), Some(&"P"), "the output ended mid-line");
    assert_eq!(tags.iter().filter(|t| **t == "F").count(), 1, "{tags:?}");
}

#[test]
fn follow_prints_what_is_written_after_it_started_and_ends_with_the_pod() {
    let env = TestEnv::new();
    let file = play(
        &env,
        "follow",
        "Never",
        "echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; exec sleep 3600",
    );
    let mut follower = env
        .command(podrun_bin())
        .args(["logs", "-f", "follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, lines) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if sender.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a line within 30 s")
    };
    assert_eq!(next(), "before");
    // Only now does the container write its second line.
    env.podrun_ok(&["exec", "follow", "--", "touch", "/tmp/go"]);
    assert_eq!(next(), "after");
    env.podrun_ok(&["down", &file]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while follower.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = follower.kill();
            panic!("logs -f did not end within 10 s of the pod's removal");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(follower.wait().unwrap().success());
}

#[test]
fn a_restarted_container_keeps_its_earlier_runs_lines() {
    let env = TestEnv::new();
    // Each run counts itself in a file of its writable layer; a restart starts from the image
    // again (as in Kubernetes), so every run counts 1, and the log keeps every run's lines.
    play(
        &env,
        "again",
        "OnFailure",
        "echo x >> /runs; echo \"run $(wc -l < /runs)\"; sleep 0.3; echo \"failing $(wc -l < /runs)\" >&2; exit 1",
    );
    // The kubelet restarts a crashed container at once the first time.
    wait_for_pod(&env, "again", 40, "a second run", |pod| {
        container(pod)["restart_count"].as_u64() >= Some(1) && container(pod)["state"] != "running"
    });
    let out = env.podrun_ok(&["logs", "again"]);
    assert!(
        out.starts_with("run 1\nfailing 1\nrun 1\nfailing 1\n"),
        "{out}"
    );
    let lines = timestamped(&env.podrun_ok(&["logs", "again", "--timestamps"]));
    assert!(lines.len() >= 4);
}

#[test]
fn a_container_writing_fast_loses_nothing() {
    let env = TestEnv::new();
    // 300,000 records of about 48 bytes: above the default cap of a container's log (10 MiB,
    // tests/e2e/tests/reliability.rs checks it); this test is about losing nothing.
    env.write_config(&format!(
        "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n[logs]\nmax_size = \"64MiB\"\n",
        podrun_e2e::registry()
    ));
    // Far more than a pipe holds, as fast as the container can write it, on both streams; the
    // supervisor reads 256 KiB per pipe per round, the rest waits in the pipes.
    play(
        &env,
        "fast",
        "Never",
        "seq 1 200000 & seq 1 100000 | sed 's/^/x/' >&2; wait; echo end",
    );
    wait_for_pod(&env, "fast", 30, "the container exited", exited);
    let out = env.podrun_ok(&["logs", "fast"]);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut end_after_stdout = false;
    for line in out.lines() {
        match line.strip_prefix('x') {
            Some(number) => stderr.push(number.parse::<u32>().expect(line)),
            None if line == "end" => end_after_stdout = stdout.len() == 200000,
            None => stdout.push(line.parse::<u32>().expect(line)),
        }
    }
    assert!(
        stdout.iter().copied().eq(1..=200000),
        "stdout lost or reordered lines"
    );
    assert!(
        stderr.iter().copied().eq(1..=100000),
        "stderr lost or reordered lines"
    );
    // `end` comes after all of stdout. Not necessarily after all of stderr: the two pipes are
    // read in turns, and what stderr's pipe still held when `end` was written may be read
    // after it (no runtime orders two streams).
    assert!(end_after_stdout, "`end` is stdout's last line");
    let last = out.lines().last().unwrap();
    assert_eq!(
        env.podrun_ok(&["logs", "fast", "--tail", "1"]),
        format!("{last}\n")
    );
}
