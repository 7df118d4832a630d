//! The test script of README.md's CI section, run as written (issue 18): a pod as a test
//! fixture on a free host port, read through `podrun port` and `ps -o json`, taken down with
//! `--grace-period 0`; and the same script SIGKILLed before its `down`, whose pod
//! `--owner-pid` takes down.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use podrun_e2e::pods::*;
use podrun_e2e::{podrun_bin, TestEnv};

/// The script between README.md's `ci-script` markers.
fn readme_script() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text
        .find("<!-- ci-script: begin -->")
        .expect("begin marker");
    let end = text.find("<!-- ci-script: end -->").expect("end marker");
    let block = &text[start..end];
    let body = block.split("```sh\n").nth(1).expect("a sh block");
    body.split("```").next().unwrap().to_string()
}

/// Runs `script` as the test user from the environment's root, with `podrun` on PATH and
/// the example manifest where the script expects it.
fn run_script(env: &TestEnv, script: &str) -> std::process::Output {
    let root = env.root();
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let _ = std::fs::remove_file(bin.join("podrun"));
    std::os::unix::fs::symlink(podrun_bin(), bin.join("podrun")).unwrap();
    let examples = root.join("examples");
    std::fs::create_dir_all(&examples).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/web-fixture.yaml");
    std::fs::copy(example, examples.join("web-fixture.yaml")).unwrap();
    std::fs::write(root.join("ci-test.sh"), script).unwrap();
    for path in [&bin, &examples, &examples.join("web-fixture.yaml")] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let output = env
        .command("sh")
        .arg("ci-test.sh")
        .env("PATH", path)
        .output()
        .unwrap();
    podrun_e2e::log_output("sh ci-test.sh", &output);
    output
}

#[test]
fn the_readme_s_test_script_passes_and_leaves_nothing() {
    let env = TestEnv::new();
    let script = readme_script();
    assert!(script.contains("--owner-pid $$") && script.contains("podrun port"));
    let out = run_script(&env, &script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(&env);
}

#[test]
fn the_readme_s_test_script_killed_before_its_down_leaves_nothing() {
    let env = TestEnv::new();
    let script = readme_script();
    let down = script.find("podrun down").expect("the script's down");
    let killed = format!("{}kill -KILL $$\n", &script[..down]);
    let out = run_script(&env, &killed);
    assert!(!out.status.success());
    assert_nothing_left(&env);
    assert!(env.podrun_ok(&["ps", "-q"]).trim().is_empty());
}
