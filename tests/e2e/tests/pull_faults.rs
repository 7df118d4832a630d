//! Issue 9, "Registry and pull": pulls through the fault-injecting proxy
//! (tests/support/registry_proxy.py, `faults/SESSION/SPEC/REPO` paths) and of crafted
//! decompression bombs, driving the real binary as the ordinary test user. Retry delays and the
//! stall timeout are configured short so every test stays quick; the default back-off's shape
//! is checked by podrun-registry's unit tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use podrun_e2e::{list, registry, setting, test_image, TestEnv};
use sha2::{Digest, Sha256};

const FAST_RETRIES: &str = "[pull]\nretries = 3\nretry_delay = \"50ms\"\nstall_timeout = \"1s\"\n";

/// A test environment whose pulls retry fast.
fn env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{FAST_RETRIES}[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n",
        registry()
    ));
    env
}

/// A fresh session name, so that the proxy's counters of concurrent tests stay apart.
fn session() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("s{}x{nanos}", std::process::id())
}

fn fault_registry() -> String {
    setting("PODRUN_TEST_FAULT_REGISTRY")
}

/// `test/busybox-extra` (two layers: busybox's 1 MB one and a small one) behind faults.
fn faulty(session: &str, spec: &str) -> String {
    format!(
        "{}/faults/{session}/{spec}/test/busybox-extra",
        fault_registry()
    )
}

fn layers(repository: &str) -> Vec<String> {
    test_image(repository, "latest")["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// The big layer of busybox-extra (busybox itself).
fn big_layer() -> String {
    layers("test/busybox-extra")[0].clone()
}

/// One HTTP/1.1 request; returns (status, headers, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (key, value) in headers {
        request.push_str(&format!("{key}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP answer");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

/// The GETs the proxy saw in this session: (path, Range header, status, time).
fn fault_log(session: &str) -> Vec<(String, Option<String>, u16, f64)> {
    let (status, _, body) = http(
        &fault_registry(),
        "GET",
        &format!("/_faults/{session}"),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let log: serde_json::Value = serde_json::from_slice(&body).unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["range"].as_str().map(str::to_string),
                e["status"].as_u64().unwrap() as u16,
                e["t"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn gets_of(
    log: &[(String, Option<String>, u16, f64)],
    digest: &str,
) -> Vec<(Option<String>, u16, f64)> {
    log.iter()
        .filter(|(path, ..)| path.ends_with(digest))
        .map(|(_, range, status, t)| (range.clone(), *status, *t))
        .collect()
}

/// N of a `bytes=N-` Range header (0 without one).
fn range_start(range: &Option<String>) -> u64 {
    range.as_deref().map_or(0, |r| {
        r.trim_start_matches("bytes=")
            .trim_end_matches('-')
            .parse()
            .unwrap()
    })
}

/// The pull succeeded with the expected digest, every layer committed, nothing left over.
fn assert_pulled_whole(env: &TestEnv, stdout: &str) {
    let expected = test_image("test/busybox-extra", "latest");
    assert_eq!(stdout.trim(), expected["digest"].as_str().unwrap());
    let mut dirs = env.layer_dirs();
    dirs.sort();
    let mut want: Vec<String> = layers("test/busybox-extra")
        .iter()
        .map(|l| l.trim_start_matches("sha256:").to_string())
        .collect();
    want.sort();
    assert_eq!(dirs, want);
    assert_store_clean_of_drafts(env);
}

fn assert_store_clean_of_drafts(env: &TestEnv) {
    assert!(list(&env.storage().join("tmp")).is_empty(), "no leftovers");
    let metas = list(&env.storage().join("layers/sha256"))
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .count();
    assert_eq!(metas, env.layer_dirs().len(), "no half-committed layer");
}

#[test]
fn status_500_then_success_is_retried() {
    let env = env();
    let session = session();
    let stdout = env.podrun_ok(&["pull", &faulty(&session, "e500x2")]);
    assert_pulled_whole(&env, &stdout);
    let log = fault_log(&session);
    let statuses: Vec<u16> = gets_of(&log, &big_layer()).iter().map(|g| g.1).collect();
    assert_eq!(statuses, [500, 500, 200], "{log:?}");
    assert!(
        log.iter()
            .any(|(p, _, s, _)| p.contains("/manifests/") && *s == 500),
        "manifests are retried too: {log:?}"
    );
}

#[test]
fn retries_are_bounded_and_the_error_names_image_registry_and_what_failed() {
    let env = env();
    let session = session();
    let name = faulty(&session, "e503x50");
    let started = Instant::now();
    let err = env.podrun_err(&["pull", &name]);
    assert!(started.elapsed() < Duration::from_secs(20), "bounded");
    assert!(err.contains("503"), "{err}");
    assert!(err.contains(&fault_registry()), "names the registry: {err}");
    assert!(err.contains("busybox-extra"), "names the image: {err}");
    assert!(err.contains("manifest"), "names what failed: {err}");
    assert!(err.contains("gave up after 4 attempts"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    // retries = 3: four GETs of the manifest, then no more.
    assert_eq!(fault_log(&session).len(), 4);
    assert!(env.images_json().is_empty());
}

#[test]
fn retry_after_of_a_429_is_honoured() {
    let env = env();
    let session = session();
    let stdout = env.podrun_ok(&["pull", &faulty(&session, "e429x1")]);
    assert_pulled_whole(&env, &stdout);
    let gets = gets_of(&fault_log(&session), &big_layer());
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].1, 429);
    // The back-off is 50 ms; Retry-After asked for 1 s.
    assert!(gets[1].2 - gets[0].2 >= 0.95, "{gets:?}");
}

#[test]
fn a_cut_transfer_resumes_with_range() {
    for spec in ["trunc", "drop"] {
        let env = env();
        let session = session();
        let stdout = env.podrun_ok(&["pull", &faulty(&session, spec)]);
        assert_pulled_whole(&env, &stdout);
        let gets = gets_of(&fault_log(&session), &big_layer());
        assert_eq!(gets.len(), 2, "{spec}: {gets:?}");
        assert_eq!(gets[0].0, None);
        // The proxy sent the first half (1036359 / 2 bytes), the rest came by Range. (A
        // reset discards what still waited in the client's socket: it resumes earlier.)
        let start = range_start(&gets[1].0);
        assert!(start > 0 && start <= 518179, "{spec}: {gets:?}");
        if spec == "trunc" {
            assert_eq!(start, 518179);
        }
        assert_eq!(gets[1].1, 206);
    }
}

#[test]
fn a_stalled_transfer_is_aborted_and_resumed() {
    let env = env();
    let session = session();
    let started = Instant::now();
    let stdout = env.podrun_ok(&["pull", &faulty(&session, "stall")]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 60 s stall was not waited out"
    );
    assert_pulled_whole(&env, &stdout);
    let gets = gets_of(&fault_log(&session), &big_layer());
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].0.as_deref(), Some("bytes=518179-"));
}

#[test]
fn a_slow_drip_is_not_a_stall() {
    let env = env();
    let session = session();
    let stdout = env.podrun_ok(&["pull", &faulty(&session, "drip")]);
    assert_pulled_whole(&env, &stdout);
    let gets = gets_of(&fault_log(&session), &big_layer());
    assert_eq!(gets.len(), 1, "never aborted: {gets:?}");
}

#[test]
fn without_range_support_the_resumed_transfer_skips_what_it_has() {
    let env = env();
    let session = session();
    let stdout = env.podrun_ok(&["pull", &faulty(&session, "drop.norange")]);
    assert_pulled_whole(&env, &stdout);
    let gets = gets_of(&fault_log(&session), &big_layer());
    assert_eq!(gets.len(), 2, "{gets:?}");
    // Asked for a range, got the whole blob (200) again.
    assert!(range_start(&gets[1].0) > 0, "{gets:?}");
    assert_eq!(gets[1].1, 200);
}

#[test]
fn permanent_blob_faults_fail_at_once_naming_blob_image_and_registry() {
    for (spec, says) in [
        ("corrupt", "corrupt"),
        ("swap", "descriptor says"),
        ("badlen", "announced"),
        ("endless", "more than the"),
    ] {
        let env = env();
        let session = session();
        let name = faulty(&session, spec);
        let err = env.podrun_err(&["pull", &name]);
        assert!(err.contains(says), "{spec}: {err}");
        assert!(
            err.contains(&fault_registry()),
            "{spec} names the registry: {err}"
        );
        assert!(
            err.contains("busybox-extra"),
            "{spec} names the image: {err}"
        );
        let log = fault_log(&session);
        let failed: Vec<String> = layers("test/busybox-extra")
            .into_iter()
            .filter(|l| err.contains(l.as_str()))
            .collect();
        assert!(!failed.is_empty(), "{spec} names the blob: {err}");
        for layer in layers("test/busybox-extra") {
            assert!(
                gets_of(&log, &layer).len() <= 1,
                "{spec}: not retried: {log:?}"
            );
        }
        assert!(env.images_json().is_empty());
        assert_store_clean_of_drafts(&env);
        for layer in failed {
            assert!(!env
                .layer_dirs()
                .contains(&layer.trim_start_matches("sha256:").to_string()));
        }
    }
}

#[test]
fn a_pull_killed_mid_blob_leaves_nothing_trusted_and_the_next_matches_the_digests() {
    let env = env();
    let session = session();
    let mut child = env
        .command(podrun_e2e::podrun_bin())
        .args(["pull", &faulty(&session, "drip")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the big layer is on its way (it drips for about 3 s), then kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    while gets_of(&fault_log(&session), &big_layer()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the pull never fetched the layer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(env.images_json().is_empty());
    let big = big_layer().trim_start_matches("sha256:").to_string();
    assert!(
        !env.layer_dirs().contains(&big),
        "the cut layer is not trusted"
    );
    assert!(!list(&env.storage().join("layers/sha256")).contains(&format!("{big}.json")));

    // The next pull (no faults) completes; every layer is the one the config promises.
    let stdout = env.podrun_ok(&["pull", &faulty(&session, "norange")]);
    assert_pulled_whole(&env, &stdout);
    let config_digest = env.images_json()[0]["config_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            env.storage()
                .join("blobs/sha256")
                .join(config_digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    for (layer, diff_id) in layers("test/busybox-extra")
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                env.storage()
                    .join("layers/sha256")
                    .join(format!("{}.json", layer.trim_start_matches("sha256:"))),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(&meta["diff_id"], diff_id);
        assert_eq!(meta["digest"], layer.as_str());
    }
}

#[test]
fn two_pulls_of_one_image_at_once_download_each_blob_once() {
    let env = env();
    let session = session();
    // Dripping keeps the first pull busy long enough for the second to find it working.
    let name = faulty(&session, "drip");
    env.pull_at_once(&name, 2);
    let log = fault_log(&session);
    for layer in layers("test/busybox-extra") {
        assert_eq!(gets_of(&log, &layer).len(), 1, "{layer}: {log:?}");
    }
    assert_eq!(env.images_json().len(), 1);
    assert_store_clean_of_drafts(&env);
}

/// A gzip-compressed layer of one file of `size` zero bytes, and the layer's diff_id.
fn zero_layer(size: u64) -> (Vec<u8>, String) {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut hash = Sha256::new();
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    gzip.write_all(header.as_bytes()).unwrap();
    hash.update(header.as_bytes());
    let block = vec![0u8; 1 << 20];
    let mut left = size.div_ceil(512) * 512 + 1024;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        gzip.write_all(&block[..n]).unwrap();
        hash.update(&block[..n]);
        left -= n as u64;
    }
    (
        gzip.finish().unwrap(),
        format!("sha256:{}", hex::encode(hash.finalize())),
    )
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Pushes a blob to the plain test registry.
fn push_blob(repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let (status, head, _) = http(
        &registry(),
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(status, 202, "{head}");
    let location = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("location:")
                .then(|| l[9..].trim().to_string())
        })
        .unwrap();
    let path = location
        .split_once("://")
        .map_or(location.as_str(), |(_, rest)| {
            &rest[rest.find('/').unwrap()..]
        })
        .to_string();
    let separator = if path.contains('?') { '&' } else { '?' };
    let (status, head, _) = http(
        &registry(),
        "PUT",
        &format!("{path}{separator}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(status, 201, "{head}");
    digest
}

/// Pushes an image of one zero-filled layer of `size` bytes; returns its name and layer.
fn push_zero_image(size: u64) -> (String, String) {
    push_zero_image_with(size, None)
}

/// [`push_zero_image`], with the config's diff_id replaced by `diff_id` if given.
fn push_zero_image_with(size: u64, wrong_diff_id: Option<&str>) -> (String, String) {
    let repo = format!("test/bomb-{}", session());
    let (layer, diff_id) = zero_layer(size);
    let diff_id = wrong_diff_id.map_or(diff_id, str::to_string);
    let layer_digest = push_blob(&repo, &layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    .to_string();
    let config_digest = push_blob(&repo, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    let (status, head, _) = http(
        &registry(),
        "PUT",
        &format!("/v2/{repo}/manifests/latest"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    );
    assert_eq!(status, 201, "{head}");
    (format!("{}/{repo}:latest", registry()), layer_digest)
}

#[test]
fn a_decompression_bomb_is_refused_naming_image_and_layer_and_leaves_nothing() {
    let env = env();
    // 256 MiB of zeros compress to about 250 KiB: over 100 times, past the 64 MiB floor.
    let (name, layer) = push_zero_image(256 << 20);
    let err = env.podrun_err(&["pull", &name]);
    assert!(err.contains(&name), "names the image: {err}");
    assert!(err.contains(&layer), "names the layer: {err}");
    assert!(err.contains("max_layer_expansion"), "{err}");
    assert!(env.images_json().is_empty());
    assert!(env.layer_dirs().is_empty(), "no partial layer");
    assert_store_clean_of_drafts(&env);
}

#[test]
fn zeros_a_raised_limit_allows_are_unpacked_as_holes() {
    use std::os::unix::fs::MetadataExt;
    let env = env();
    env.write_config(&format!("{FAST_RETRIES}max_layer_expansion = 5000\n"));
    let (name, layer) = push_zero_image(256 << 20);
    env.podrun_ok(&["pull", &name]);
    let file = env
        .storage()
        .join("layers/sha256")
        .join(layer.trim_start_matches("sha256:"))
        .join("zeros");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.len(), 256 << 20);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "256 MiB of zeros take {} blocks",
        meta.blocks()
    );
}

#[test]
fn a_layer_that_does_not_unpack_to_its_diff_id_is_refused() {
    let env = env();
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let (name, layer) = push_zero_image_with(1 << 20, Some(&wrong));
    let err = env.podrun_err(&["pull", &name]);
    assert!(err.contains(&name), "names the image: {err}");
    assert!(err.contains(&layer), "names the layer: {err}");
    assert!(err.contains(&wrong), "names the promised diff_id: {err}");
    assert!(env.images_json().is_empty());
    assert!(env.layer_dirs().is_empty());
    assert_store_clean_of_drafts(&env);
}
