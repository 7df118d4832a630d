//! Issue 18: a registry that stalls on every attempt (takes the request, sends nothing) ends
//! the pull after two such attempts in a row, saying why, instead of holding it for the stall
//! timeout times the retries. The stalling registries are served by the test itself: one
//! that never answers, and one that passes everything on to the test registry but a layer
//! blob, which it never sends.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podrun_e2e::{registry, test_image, TestEnv};

/// Ten retries of a 2 s stall timeout: without the limit on stalls in a row, a pull from a
/// registry that never answers would take at least 22 s; with it, about 4 s.
const MANY_RETRIES: &str = "[pull]\nretries = 10\nretry_delay = \"50ms\"\nstall_timeout = \"2s\"\n";

/// Upper bound for the pulls below: well under the 22 s the retries alone would take.
const QUICK: Duration = Duration::from_secs(15);

fn env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(MANY_RETRIES);
    env
}

/// The paths of the requests a stalling server received.
type Seen = Arc<Mutex<Vec<String>>>;

/// The request line's path and the raw head (request line and headers) of one request.
fn read_head(stream: &TcpStream) -> Option<(String, Vec<String>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let path = lines.first()?.split(' ').nth(1)?.to_string();
    Some((path, lines))
}

/// A server on 127.0.0.1 that records each request and hands its connection to `serve`
/// (in a thread per connection). Returns its address and what it saw.
fn serve(serve: impl Fn(TcpStream, &str, Vec<String>) + Send + Sync + 'static) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let record = record.clone();
            let serve = serve.clone();
            std::thread::spawn(move || {
                if let Some((path, head)) = read_head(&stream) {
                    record.lock().unwrap().push(path.clone());
                    serve(stream, &path, head);
                }
            });
        }
    });
    (address, seen)
}

/// Keeps the connection open and silent for longer than any pull below lasts.
fn stay_silent(stream: TcpStream) {
    std::thread::sleep(Duration::from_secs(120));
    drop(stream);
}

/// Passes one request on to the test registry and its whole answer back.
fn pass_on(mut client: TcpStream, head: Vec<String>) {
    let mut upstream = TcpStream::connect(registry()).unwrap();
    let mut request = String::new();
    for line in head
        .iter()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
    {
        request.push_str(line);
        request.push_str("\r\n");
    }
    // One request per connection: the answer ends when the registry closes it.
    request.push_str("Connection: close\r\n\r\n");
    upstream.write_all(request.as_bytes()).unwrap();
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Both);
}

#[test]
fn a_registry_that_never_answers_is_given_up_after_two_stalls() {
    let env = env();
    let (address, seen) = serve(|stream, _, _| stay_silent(stream));
    let image = format!("{address}/test/busybox:latest");
    let started = Instant::now();
    let err = env.podrun_err(&["pull", &image]);
    let elapsed = started.elapsed();
    assert!(elapsed < QUICK, "took {elapsed:?}: {err}");
    assert_eq!(seen.lock().unwrap().len(), 2, "two attempts: {err}");
    for says in [
        address.as_str(),
        image.as_str(),
        "authentication: no answer in 2.0 s",
        "gave up after 2 attempts in a row that received nothing for the stall timeout (2.0 s)",
        "stall_timeout",
    ] {
        assert!(err.contains(says), "says {says:?}: {err}");
    }
}

#[test]
fn a_layer_that_stalls_on_every_attempt_ends_the_pull_after_two() {
    let env = env();
    let layers: Vec<String> = test_image("test/busybox-extra", "latest")["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let stalled = layers[0].clone();
    let blob = format!("/blobs/{stalled}");
    let (address, seen) = serve(move |stream, path, head| {
        if path.ends_with(&blob) {
            stay_silent(stream)
        } else {
            pass_on(stream, head)
        }
    });
    let image = format!("{address}/test/busybox-extra:latest");
    let started = Instant::now();
    let err = env.podrun_err(&["pull", &image]);
    let elapsed = started.elapsed();
    assert!(elapsed < QUICK, "took {elapsed:?}: {err}");
    let gets = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.ends_with(&stalled))
        .count();
    assert_eq!(gets, 2, "two attempts at the stalled layer: {err}");
    for says in [
        address.as_str(),
        "test/busybox-extra",
        stalled.as_str(),
        "no answer in 2.0 s",
        "gave up after 2 attempts in a row that received nothing for the stall timeout (2.0 s)",
    ] {
        assert!(err.contains(says), "says {says:?}: {err}");
    }
    assert!(
        env.layer_dirs().len() < layers.len(),
        "the stalled layer is not in the store"
    );
}
