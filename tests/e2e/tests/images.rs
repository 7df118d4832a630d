//! Issue 2 acceptance: pulling real images from loopback registries into a rootless store,
//! driving the real binary as the ordinary test user.

use podrun_e2e::{base64, list, registry, setting, test_image, TestEnv};

fn layer_digests(info: &serde_json::Value) -> Vec<String> {
    info["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

#[test]
fn anonymous_pull_records_the_image_and_its_layers() {
    let env = TestEnv::new();
    let name = format!("{}/library/busybox:latest", registry());
    let stdout = env.podrun_ok(&["pull", &name]);
    let expected = test_image("library/busybox", "latest");
    assert_eq!(stdout.trim(), expected["digest"].as_str().unwrap());

    let images = env.images_json();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["name"], name);
    assert_eq!(images[0]["digest"], expected["digest"]);
    let layers = layer_digests(&expected);
    assert_eq!(env.layer_dirs(), vec![hex(&layers[0]).to_string()]);
    // Unpacked as the image says: busybox and its applet links.
    let out = env.in_userns(&format!(
        "cd {}/layers/sha256/{} && test -x bin/busybox && readlink bin/sh && stat -c %a tmp",
        env.storage().display(),
        hex(&layers[0])
    ));
    assert!(out.contains("busybox"), "{out}");
    assert!(out.trim_end().ends_with("1777"), "{out}");

    let table = env.podrun_ok(&["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(
        table.contains(&format!("{}/library/busybox", registry())),
        "{table}"
    );
    assert!(
        table.contains(&hex(expected["digest"].as_str().unwrap())[..12]),
        "{table}"
    );
}

#[test]
fn docker_hub_names_resolve_through_the_configured_mirror() {
    let env = TestEnv::new();
    let out = env.podrun(&["pull", "busybox"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("from {}", registry())), "{stderr}");
    let images = env.images_json();
    assert_eq!(images[0]["name"], "docker.io/library/busybox:latest");
    assert_eq!(images[0]["repository"], "docker.io/library/busybox");
    assert_eq!(images[0]["tag"], "latest");
}

#[test]
fn a_mirror_that_fails_falls_back_to_the_next() {
    let env = TestEnv::new();
    // Port 9 (discard) has no registry: the first mirror fails, the second serves.
    env.write_config(&format!(
        "[registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:9\", \"http://{}\"]\n",
        registry()
    ));
    env.podrun_ok(&["pull", "busybox:1.35"]);
    assert_eq!(
        env.images_json()[0]["name"],
        "docker.io/library/busybox:1.35"
    );
}

#[test]
fn token_auth_registry_needs_the_right_credentials() {
    let env = TestEnv::new();
    let auth_registry = setting("PODRUN_TEST_AUTH_REGISTRY");
    let name = format!("{auth_registry}/library/busybox:latest");

    let err = env.podrun_err(&["pull", &name]);
    assert!(err.contains("requires credentials"), "{err}");
    assert!(err.contains("hint:"), "{err}");

    let docker_config = |user: &str, password: &str| {
        let auth = base64(&format!("{user}:{password}"));
        format!(r#"{{"auths": {{"{auth_registry}": {{"auth": "{auth}"}}}}}}"#)
    };
    env.write_home_file(
        ".docker/config.json",
        &docker_config(&setting("PODRUN_TEST_AUTH_USER"), "wrong"),
    );
    let err = env.podrun_err(&["pull", &name]);
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(err.contains(".docker/config.json"), "{err}");
    assert!(env.images_json().is_empty());

    env.write_home_file(
        ".docker/config.json",
        &docker_config(
            &setting("PODRUN_TEST_AUTH_USER"),
            &setting("PODRUN_TEST_AUTH_PASSWORD"),
        ),
    );
    env.podrun_ok(&["pull", &name]);
    assert_eq!(env.images_json()[0]["name"], name);

    // A play of that `:latest` image checks it in-process: the registry's 401 runs the token
    // flow with the same credentials, and the unchanged image is not pulled again.
    let pod = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: private\nspec:\n  containers:\n  - name: c\n    image: {name}\n    command: [sleep, '1000']\n");
    env.write_home_file("private.yaml", &pod);
    let file = env.home().join("private.yaml");
    let out = env.podrun(&["play", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Pulling "), "{stderr}");
    env.podrun_ok(&["down", "--grace-period", "0", "private"]);
}

#[test]
fn multi_platform_index_resolves_to_this_host() {
    let env = TestEnv::new();
    let expected = test_image("test/multiarch", "latest");
    env.podrun_ok(&["pull", &format!("{}/test/multiarch", registry())]);
    let image = &env.images_json()[0];
    assert_eq!(image["digest"], expected["digest"], "the amd64 manifest");
    assert_eq!(image["index_digest"], expected["index_digest"]);
    let top = layer_digests(&expected).last().unwrap().clone();
    let platform = env.in_userns(&format!(
        "cat {}/layers/sha256/{}/etc/podrun-platform",
        env.storage().display(),
        hex(&top)
    ));
    assert_eq!(platform.trim(), "amd64");
}

#[test]
fn zstd_and_docker_schema2_images() {
    let env = TestEnv::new();
    for (repository, marker) in [("test/zstd", "zstd"), ("test/schema2", "schema2")] {
        env.podrun_ok(&["pull", &format!("{}/{repository}", registry())]);
        let top = layer_digests(&test_image(repository, "latest"))
            .last()
            .unwrap()
            .clone();
        let content = env.in_userns(&format!(
            "cat {}/layers/sha256/{}/etc/{marker}-marker",
            env.storage().display(),
            hex(&top)
        ));
        assert_eq!(content.trim(), marker);
    }
}

#[test]
fn a_shared_base_layer_is_downloaded_and_unpacked_once_and_rmi_collects() {
    let env = TestEnv::new();
    let base = layer_digests(&test_image("library/busybox", "latest"))[0].clone();
    let extra = layer_digests(&test_image("test/busybox-extra", "latest"));
    assert_eq!(extra[0], base, "the test images share their base layer");

    env.podrun_ok(&["pull", "busybox"]);
    let base_dir = env.storage().join("layers/sha256").join(hex(&base));
    let inode_before =
        std::fs::metadata(&base_dir).map(|m| std::os::unix::fs::MetadataExt::ino(&m));

    let out = env.podrun(&["pull", &format!("{}/test/busybox-extra", registry())]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("layer {}: already present", &hex(&base)[..12])),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("layer {}: downloaded", &hex(&extra[1])[..12])),
        "{stderr}"
    );
    let inode_after = std::fs::metadata(&base_dir).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    assert_eq!(
        inode_before.unwrap(),
        inode_after.unwrap(),
        "not unpacked again"
    );
    assert_eq!(env.layer_dirs().len(), 2);

    // Removing the first image keeps the shared layer for the second.
    let out = env.podrun_ok(&["rmi", "busybox"]);
    assert!(
        out.contains("Untagged: docker.io/library/busybox:latest"),
        "{out}"
    );
    assert!(!out.contains("Deleted layer"), "{out}");
    assert_eq!(env.layer_dirs().len(), 2);

    let out = env.podrun_ok(&["rmi", "-a"]);
    assert!(out.contains(&format!("Deleted layer: {base}")), "{out}");
    assert!(env.layer_dirs().is_empty());
    assert!(list(&env.storage().join("layers/sha256")).is_empty());
    assert!(list(&env.storage().join("blobs/sha256")).is_empty());
    assert!(list(&env.storage().join("tmp")).is_empty());
    assert!(env.images_json().is_empty());

    let err = env.podrun_err(&["rmi", "busybox"]);
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn a_corrupted_blob_fails_the_pull_and_leaves_the_store_clean() {
    let env = TestEnv::new();
    let fault = setting("PODRUN_TEST_FAULT_REGISTRY");
    let layers = layer_digests(&test_image("test/corrupt", "latest"));
    let err = env.podrun_err(&["pull", &format!("{fault}/test/corrupt")]);
    assert!(err.contains("corrupt"), "{err}");
    assert!(
        layers.iter().any(|l| err.contains(l.as_str())),
        "names the digest: {err}"
    );
    assert!(env.images_json().is_empty());
    for layer in &layers {
        assert!(!env.layer_dirs().contains(&hex(layer).to_string()) || layer == &layers[0]);
    }
    assert!(list(&env.storage().join("tmp")).is_empty(), "no leftovers");
    let meta: Vec<String> = list(&env.storage().join("layers/sha256"))
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(
        meta.len(),
        env.layer_dirs().len(),
        "no half-committed layer"
    );
}

#[test]
fn invalid_references_are_quoted() {
    let env = TestEnv::new();
    for bad in ["Nginx", "nginx:", "a b"] {
        let err = env.podrun_err(&["pull", bad]);
        assert!(err.contains(&format!("`{bad}`")), "{err}");
    }
    let err = env.podrun_err(&["pull", &format!("{}/library/nope:1", registry())]);
    assert!(err.contains("not found"), "{err}");
    assert!(env.images_json().is_empty());
}

#[test]
fn nginx_unpacks_with_owners_whiteouts_and_replaced_site() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "nginx:1.23"]);
    let image = &env.images_json()[0];
    let lowers: Vec<String> = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .rev() // overlay wants the top layer first
        .map(|l| {
            format!(
                "{}/layers/sha256/{}",
                env.storage().display(),
                hex(l["digest"].as_str().unwrap())
            )
        })
        .collect();
    assert!(lowers.len() >= 2);
    // Mount the layers as a container will see them, inside the user's namespace.
    let script = format!(
        "set -e; m=$(mktemp -d); unshare -m sh -c '\
           mount -t overlay overlay -o lowerdir={},userxattr '$m' && cd '$m' && \
           test -x usr/sbin/nginx && echo nginx-ok; \
           test -e etc/nginx/sites-enabled/default && echo default-present || echo default-gone; \
           stat -c \"%u %n\" var/www/html var/lib/nginx 2>/dev/null || true; \
           test -f etc/nginx/conf.d/default.conf && echo conf-ok'",
        lowers.join(":")
    );
    let out = env.in_userns(&script);
    assert!(out.contains("nginx-ok"), "{out}");
    assert!(out.contains("default-gone"), "{out}");
    // …because the top layer's whiteout hides what the base layer has.
    let base = lowers.last().unwrap();
    let whiteout = env.in_userns(&format!(
        "test -L {base}/etc/nginx/sites-enabled/default && echo base-has-default; \
         stat -c %t:%T:%F {}/etc/nginx/sites-enabled/default",
        lowers[0]
    ));
    assert!(whiteout.contains("base-has-default"), "{whiteout}");
    assert!(
        whiteout.contains("0:0:character special file"),
        "whiteout: {whiteout}"
    );
    assert!(out.contains("conf-ok"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("33 ")),
        "www-data owns it: {out}"
    );
    // On the host, the same file belongs to the user's subordinate id for 33.
    let subuid_start: u64 = std::fs::read_to_string("/etc/subuid")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == setting("PODRUN_TEST_USER")).then(|| f[1].parse().unwrap())
        })
        .unwrap();
    let owned_by_33 = lowers.iter().any(|dir| {
        ["var/www/html", "var/lib/nginx"].iter().any(|p| {
            std::fs::metadata(format!("{dir}/{p}"))
                .map(|m| u64::from(std::os::unix::fs::MetadataExt::uid(&m)) == subuid_start + 32)
                .unwrap_or(false)
        })
    });
    assert!(owned_by_33, "host owner is subuid start + 32");
}

#[test]
fn concurrent_pulls_of_one_image_share_the_work() {
    let env = TestEnv::new();
    let name = format!("{}/test/busybox-extra", registry());
    env.pull_at_once(&name, 2);
    assert_eq!(env.layer_dirs().len(), 2);
    assert_eq!(env.images_json().len(), 1);
    assert!(list(&env.storage().join("tmp")).is_empty());
}

#[test]
fn a_killed_pull_leaves_nothing_trusted_and_the_next_completes() {
    let env = TestEnv::new();
    for delay_ms in [50u64, 300, 800] {
        let mut child = env
            .command(podrun_e2e::podrun_bin())
            .args(["pull", "nginx:1.23"])
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        // Whatever was left: every layer directory has its metadata or is not trusted.
        for image in env.images_json() {
            assert_eq!(image["name"], "docker.io/library/nginx:1.23");
        }
    }
    env.podrun_ok(&["pull", "nginx:1.23"]);
    assert_eq!(env.images_json().len(), 1);
    assert!(
        list(&env.storage().join("tmp")).is_empty(),
        "the next pull cleaned up"
    );
    let names = list(&env.storage().join("layers/sha256"));
    let dirs = env.layer_dirs();
    assert_eq!(
        names.len(),
        dirs.len() * 2,
        "every layer committed with metadata: {names:?}"
    );
}

#[test]
fn a_hostile_layer_is_refused_naming_image_and_layer() {
    let env = TestEnv::new();
    let layers = layer_digests(&test_image("test/evil", "latest"));
    let name = format!("{}/test/evil", registry());
    let err = env.podrun_err(&["pull", &name]);
    assert!(
        err.contains(&format!("{name}:latest")),
        "names the image: {err}"
    );
    assert!(err.contains(&layers[1]), "names the layer: {err}");
    assert!(err.contains("escape"), "names the entry: {err}");
    assert!(
        !std::path::Path::new("/tmp/podrun-escaped").exists(),
        "nothing was written outside the store"
    );
    assert!(env.images_json().is_empty());
    assert!(!env.layer_dirs().contains(&hex(&layers[1]).to_string()));
    assert!(list(&env.storage().join("tmp")).is_empty());
}

#[test]
fn a_digest_reference_pins_exactly() {
    let env = TestEnv::new();
    let expected = test_image("test/busybox-extra", "latest");
    let digest = expected["digest"].as_str().unwrap();
    let pinned = format!("{}/test/busybox-extra@{digest}", registry());
    let stdout = env.podrun_ok(&["pull", &pinned]);
    assert_eq!(stdout.trim(), digest);
    let images = env.images_json();
    assert_eq!(images[0]["name"], pinned);
    assert_eq!(images[0]["digest"], digest);
    assert_eq!(images[0]["tag"], serde_json::Value::Null);

    // A tag with a digest: the digest decides.
    let both = format!("{}/test/busybox-extra:whatever@{digest}", registry());
    env.podrun_ok(&["pull", &both]);

    // Another image's digest in this repository is not served: the pull fails.
    let other = test_image("library/nginx", "1.23")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let err = env.podrun_err(&[
        "pull",
        &format!("{}/test/busybox-extra@{other}", registry()),
    ]);
    assert!(err.contains("not found"), "{err}");
}

/// `imagePullPolicy: Always` (the default for `:latest`) asks the registry on every play, but
/// an image that has not changed is not pulled again (no pull output); one whose tag now
/// names another manifest is pulled; and when the registry cannot be asked, the play fails as
/// the kubelet's would (ErrImagePull), naming the image.
#[test]
fn latest_images_are_checked_on_every_play_and_pulled_only_when_changed() {
    let env = TestEnv::new();
    env.podrun_ok(&["pull", "busybox"]);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: latest\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '1000']\n";
    env.write_home_file("latest.yaml", pod);
    let file = env.home().join("latest.yaml");
    let file = file.to_str().unwrap();

    // Unchanged: checked, not pulled.
    let out = env.podrun(&["play", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Pulling "), "{stderr}");
    env.podrun_ok(&["down", "--grace-period", "0", "latest"]);

    // The store's record names another manifest (as after the tag moved on): pulled again,
    // and the record is the registry's once more.
    let index = env.storage().join("images.json");
    let text = std::fs::read_to_string(&index).unwrap();
    let expected = test_image("library/busybox", "latest");
    let digest = expected["digest"].as_str().unwrap();
    let stale = format!("sha256:{}", "0".repeat(64));
    std::fs::write(&index, text.replace(digest, &stale)).unwrap();
    let out = env.podrun(&["play", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Pulling docker.io/library/busybox:latest"),
        "{stderr}"
    );
    assert_eq!(env.images_json()[0]["digest"], digest);
    env.podrun_ok(&["down", "--grace-period", "0", "latest"]);

    // No registry to ask: the play fails naming the image, and starts nothing.
    env.write_config(
        "[registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:9\"]\n[pull]\nretries = 1\nretry_delay = \"50ms\"\n",
    );
    let out = env.podrun(&["play", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot pull image `busybox`"), "{stderr}");
    assert!(env.podrun_ok(&["ps", "-q"]).trim().is_empty());
}
