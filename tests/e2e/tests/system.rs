//! `podrun system check` and `podrun system config`: each host problem driven into its
//! failure state (a user without subordinate ids, a 0600 TUN device in a private mount
//! namespace, no XDG_RUNTIME_DIR, no network helper in PATH), with the message and the fix
//! podrun prints; and the hint that points to `system check` where play and the other
//! commands fail on one of those problems. The real binary, as ordinary users.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use podrun_e2e::host::{path_without_helpers, podrun_through, tun_0600};
use podrun_e2e::pods::write_manifest;
use podrun_e2e::{log_output, podrun_bin, stdout, test_user, TestEnv};

const DIAGNOSIS: &str = "run `podrun system check` for a full diagnosis";

/// A second user, made by the test, with no /etc/subuid or /etc/subgid line.
const NO_SUBID_USER: &str = "podrun-nosubid";

/// The checks of `podrun system check -o json` run through `command`, and its exit code.
fn checks_json(mut command: Command) -> (Vec<serde_json::Value>, i32) {
    let output = command
        .args(["system", "check", "-o", "json"])
        .output()
        .unwrap();
    log_output("podrun system check -o json", &output);
    let checks: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("system check -o json prints JSON");
    (checks, output.status.code().unwrap())
}

fn find<'a>(checks: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    checks
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check `{id}` in {checks:?}"))
}

/// The text line of the check titled `title` and the line after it (its `fix:`, if any).
fn text_lines<'a>(text: &'a str, status: &str, title: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(status) && l.contains(title))
        .unwrap_or_else(|| panic!("no `{status}` line for {title} in:\n{text}"));
    (lines[at], lines.get(at + 1).copied().unwrap_or(""))
}

#[test]
fn a_healthy_host_passes_and_json_has_every_field() {
    let env = TestEnv::new();
    let output = env.podrun(&["system", "check"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour without a terminal: {text}"
    );
    for title in [
        "user namespaces",
        "subordinate id ranges",
        "newuidmap and newgidmap",
        "runtime directory (XDG_RUNTIME_DIR)",
        "overlayfs in a user namespace",
        "TUN device (/dev/net/tun)",
        "slirp4netns",
    ] {
        text_lines(&text, "ok ", title);
    }
    // The overlay probe leaves nothing behind in the store's directory.
    let leftovers: Vec<_> = std::fs::read_dir(env.root().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".podrun-check"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let (checks, code) = checks_json(env.command(podrun_bin()));
    assert_eq!(code, 0);
    assert!(checks.len() >= 12, "{checks:?}");
    for check in &checks {
        for field in ["id", "title", "detail"] {
            assert!(check[field].is_string(), "{field} in {check}");
        }
        assert!(["ok", "warning", "error"].contains(&check["status"].as_str().unwrap()));
        assert!(check["needed_for_play"].is_boolean(), "{check}");
        assert!(check.get("fix").is_some(), "{check}");
        if check["needed_for_play"] == true {
            assert_ne!(check["status"], "error", "{check}");
        }
    }
    let ranges = find(&checks, "subids");
    assert!(
        ranges["detail"]
            .as_str()
            .unwrap()
            .contains("200000-265535 (65536 ids)"),
        "{ranges}"
    );
    assert_eq!(find(&checks, "overlayfs")["status"], "ok");
}

/// Creates (idempotently, as root) a user with no subordinate id range, and a home and
/// runtime directory for it inside the test environment.
fn no_subid_user(env: &TestEnv) -> (nix::unistd::User, PathBuf) {
    let exists = |name: &str| nix::unistd::User::from_name(name).unwrap();
    if exists(NO_SUBID_USER).is_none() {
        let status = Command::new("useradd")
            .args([
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                NO_SUBID_USER,
            ])
            .status()
            .unwrap();
        // Another test process may have created it at the same time.
        assert!(status.success() || exists(NO_SUBID_USER).is_some());
    }
    // useradd hands a new user a range on its own: drop it (only when there is one, so the
    // files other tests read are rewritten as seldom as possible).
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.starts_with(&format!("{NO_SUBID_USER}:")))
        {
            let status = Command::new("sed")
                .args(["-i", &format!("/^{NO_SUBID_USER}:/d"), file])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    let user = exists(NO_SUBID_USER).unwrap();
    let home = env.root().join("nosubid");
    for dir in ["home", "run", "data"] {
        std::fs::create_dir_all(home.join(dir)).unwrap();
    }
    std::fs::set_permissions(home.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(&home)
        .status()
        .unwrap();
    assert!(status.success());
    // The environment's root belongs to the test user; the other user must get through it.
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o711)).unwrap();
    (user, home)
}

#[test]
fn a_user_without_subordinate_ids_gets_the_usermod_fix() {
    let env = TestEnv::new();
    let (user, home) = no_subid_user(&env);
    let command = || {
        let mut command = Command::new(podrun_bin());
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", home.join("home"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .current_dir(&home)
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw());
        command
    };
    let output = command().args(["system", "check"]).output().unwrap();
    log_output("podrun system check (no subids)", &output);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let (line, fix) = text_lines(&text, "error", "subordinate id ranges");
    assert!(
        line.contains("user podrun-nosubid has no range in /etc/subuid and /etc/subgid"),
        "{line}"
    );
    assert!(
        fix.trim_start()
            .starts_with("fix: sudo usermod --add-subuids ")
            && fix.contains("--add-subgids")
            && fix.ends_with(" podrun-nosubid"),
        "{fix}"
    );
    assert!(text.contains("podrun play cannot work here"), "{text}");

    let (checks, code) = checks_json(command());
    assert_eq!(code, 1);
    let subids = find(&checks, "subids");
    assert_eq!(subids["status"], "error");
    assert_eq!(subids["needed_for_play"], true);
    // The range proposed is free: no other user's range overlaps it.
    let fix = subids["fix"].as_str().unwrap();
    let range = fix.split_whitespace().nth(3).unwrap();
    let (start, end) = range.split_once('-').unwrap();
    let (start, end): (u64, u64) = (start.parse().unwrap(), end.parse().unwrap());
    assert_eq!(end - start + 1, 65536);
    for line in std::fs::read_to_string("/etc/subuid").unwrap().lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if let [_, s, c] = fields[..] {
            let (s, c): (u64, u64) = (s.parse().unwrap(), c.parse().unwrap());
            assert!(s + c <= start || s > end, "{range} overlaps {line}");
        }
    }

    // The commands that notice it say so, pointing to the check.
    let output = command().args(["unshare", "true"]).output().unwrap();
    log_output("podrun unshare true (no subids)", &output);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("has no range in /etc/subuid") && err.contains(DIAGNOSIS),
        "{err}"
    );
}

/// Runs podrun as the test user in a private mount namespace whose /dev/net/tun is 0600.
fn podrun_with_tun_0600(env: &TestEnv, args: &[&str]) -> Output {
    podrun_through(env, &tun_0600(env), args, None)
}

#[test]
fn a_tun_device_of_mode_0600_is_an_error_with_the_chmod_fix() {
    let env = TestEnv::new();
    let output = podrun_with_tun_0600(&env, &["system", "check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let (line, fix) = text_lines(&text, "error", "TUN device (/dev/net/tun)");
    assert!(
        line.contains("mode 0600") && line.contains("most distributions ship it 0666"),
        "{line}"
    );
    assert_eq!(fix.trim(), "fix: sudo chmod 0666 /dev/net/tun");
    // The real device is untouched.
    let mode = std::fs::metadata("/dev/net/tun")
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);

    // With `--network none` as the default, the TUN device is not needed: a warning only.
    env.write_config("[network]\ndefault = \"none\"\n");
    let output = podrun_with_tun_0600(&env, &["system", "check", "-o", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let tun = find(&checks, "tun");
    assert_eq!(
        (&tun["status"], &tun["needed_for_play"]),
        (&"warning".into(), &false.into())
    );
    assert_eq!(tun["fix"], "sudo chmod 0666 /dev/net/tun");

    // play stops before starting anything, and points to the check.
    env.write_config("");
    let file = write_manifest(&env, "tun.yaml", BUSYBOX_POD);
    let output = podrun_with_tun_0600(&env, &["play", &file]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("/dev/net/tun cannot be opened") && err.contains(DIAGNOSIS),
        "{err}"
    );
}

const BUSYBOX_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: check
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, '60']
";

#[test]
fn no_xdg_runtime_dir_is_an_error_with_the_export_fix() {
    let env = TestEnv::new();
    let mut command = env.command(podrun_bin());
    command
        .env_remove("XDG_RUNTIME_DIR")
        .args(["system", "check"]);
    let output = command.output().unwrap();
    log_output("podrun system check (no XDG_RUNTIME_DIR)", &output);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let (line, fix) = text_lines(&text, "error", "runtime directory (XDG_RUNTIME_DIR)");
    assert!(line.contains("XDG_RUNTIME_DIR is not set"), "{line}");
    let uid = test_user().uid;
    // scripts/create-test-user.sh made /run/user/UID for the user: exporting it is enough.
    assert_eq!(
        fix.trim(),
        format!("fix: export XDG_RUNTIME_DIR=/run/user/{uid}")
    );

    let mut command = env.command(podrun_bin());
    command.env_remove("XDG_RUNTIME_DIR").arg("ps");
    let output = command.output().unwrap();
    log_output("podrun ps (no XDG_RUNTIME_DIR)", &output);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("XDG_RUNTIME_DIR is not set") && err.trim_end().ends_with(DIAGNOSIS),
        "{err}"
    );
}

#[test]
fn missing_network_helpers_name_their_packages() {
    let env = TestEnv::new();
    let bin = path_without_helpers(&env);
    let run = |args: &[&str]| {
        let mut command = env.command(podrun_bin());
        command.env("PATH", &bin).args(args);
        let output = command.output().unwrap();
        log_output(&format!("[no helpers] podrun {}", args.join(" ")), &output);
        output
    };
    let output = run(&["system", "check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let (line, fix) = text_lines(&text, "error", "slirp4netns");
    assert!(
        line.contains("slirp4netns is not installed")
            && line.contains("the default network is slirp4netns"),
        "{line}"
    );
    assert_eq!(fix.trim(), "fix: sudo apt-get install slirp4netns");
    let (line, fix) = text_lines(&text, "warning", "pasta (passt)");
    assert!(line.contains("needed only for --network pasta"), "{line}");
    assert_eq!(fix.trim(), "fix: sudo apt-get install passt");

    // With pasta as the default network, the roles swap.
    env.write_config("[network]\ndefault = \"pasta\"\n");
    let (checks, code) = {
        let mut command = env.command(podrun_bin());
        command.env("PATH", &bin);
        checks_json(command)
    };
    assert_eq!(code, 1);
    assert_eq!(find(&checks, "pasta")["status"], "error");
    assert_eq!(find(&checks, "slirp4netns")["status"], "warning");

    // play stops before starting anything, and points to the check.
    env.write_config("");
    let file = write_manifest(&env, "helpers.yaml", BUSYBOX_POD);
    let output = run(&["play", &file]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("slirp4netns is not installed") && err.contains(DIAGNOSIS),
        "{err}"
    );
}

#[test]
fn system_config_names_where_each_value_came_from() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "[pull]\nretries = 7\n\n[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n",
        podrun_e2e::registry()
    ));
    let file = env.home().join(".config/podrun/config.toml");
    let file = file.to_str().unwrap();

    let out = env.podrun_ok(&["system", "config", "-o", "json"]);
    let settings: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let get = |key: &str| {
        settings
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .clone()
    };
    let retries = get("pull.retries");
    assert_eq!(retries["value"], 7);
    assert_eq!(retries["source"]["kind"], "file");
    assert_eq!(retries["source"]["path"], file);
    let stall = get("pull.stall_timeout");
    assert_eq!(stall["value"], "30s");
    assert_eq!(stall["source"]["kind"], "default");
    let mirrors = get("registries.\"docker.io\".mirrors");
    assert_eq!(mirrors["source"]["path"], file);
    let data = get("paths.data_dir");
    assert_eq!(data["source"]["variable"], "XDG_DATA_HOME");

    let table = env.podrun_ok(&["system", "config"]);
    let line = table
        .lines()
        .find(|l| l.starts_with("pull.retries "))
        .unwrap();
    assert!(line.contains(" 7 ") && line.ends_with(file), "{line}");
    let line = table
        .lines()
        .find(|l| l.starts_with("pull.retry_delay "))
        .unwrap();
    assert!(
        line.contains("\"1s\"") && line.ends_with("default"),
        "{line}"
    );

    let toml = env.podrun_ok(&["system", "config", "-o", "toml"]);
    assert!(toml.contains(&format!("retries = 7  # {file}")), "{toml}");
    assert!(toml.contains("[registries.\"docker.io\"]"), "{toml}");
    assert!(
        toml.contains("default = \"slirp4netns\"  # default"),
        "{toml}"
    );

    // PODRUN_CONFIG names another file, which must exist.
    let other = env.home().join("other.toml");
    std::fs::write(&other, "[network]\nallow_host_loopback = true\n").unwrap();
    let mut command = env.command(podrun_bin());
    command
        .env("PODRUN_CONFIG", &other)
        .args(["system", "config", "-o", "json"]);
    let output = command.output().unwrap();
    log_output("PODRUN_CONFIG=other podrun system config", &output);
    let settings: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let config_file = settings
        .iter()
        .find(|s| s["key"] == "paths.config_file")
        .unwrap();
    assert_eq!(config_file["source"]["variable"], "PODRUN_CONFIG");
    let loopback = settings
        .iter()
        .find(|s| s["key"] == "network.allow_host_loopback")
        .unwrap();
    assert_eq!(loopback["value"], true);
    assert_eq!(loopback["source"]["path"], other.to_str().unwrap());
    assert!(!settings
        .iter()
        .any(|s| s["key"] == "pull.retries" && s["value"] == 7));

    let mut command = env.command(podrun_bin());
    command
        .env("PODRUN_CONFIG", env.home().join("missing.toml"))
        .args(["system", "config"]);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
}
