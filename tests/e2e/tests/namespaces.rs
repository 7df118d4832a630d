//! Namespaces as users type them (issue 18): a pod outside `default` is found by its bare
//! name when it is the only pod of that name, `-n NS` names the namespace (also for play),
//! an ambiguous name is an error listing the namespaces, and `ps` shows a NAMESPACE column
//! when the pods are of several namespaces.

use podrun_e2e::pods::*;
use podrun_e2e::TestEnv;

/// A pod `name` in `namespace` (none: the manifest names no namespace) that writes `text`.
fn pod(name: &str, namespace: Option<&str>, text: &str) -> String {
    let namespace = namespace.map_or(String::new(), |ns| format!("\n  namespace: {ns}"));
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}{namespace}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo {text}; exec sleep 3600"]
"#
    )
}

/// The rows of `ps`' table, split into cells.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn a_pod_of_another_namespace_is_found_by_its_bare_name() {
    let env = TestEnv::new();
    let file = write_manifest(
        &env,
        "hweb.yaml",
        &pod("hweb", Some("team-a"), "from-team-a"),
    );
    let _down = DownOnDrop(&env, "team-a/hweb".into());
    env.podrun_ok(&["play", "--network", "none", &file]);

    // exec, logs and describe take the bare name.
    let out = exec_until_ok(&env, "hweb", "main", "hostname");
    assert_eq!(out.trim(), "hweb");
    wait_for_logs(&env, &["hweb"], &["from-team-a"]);
    let describe = env.podrun_ok(&["describe", "hweb"]);
    assert!(
        describe
            .lines()
            .any(|l| l.starts_with("Namespace:") && l.ends_with("team-a")),
        "{describe}"
    );
    // -n, before or after the command, and NS/NAME.
    let logs = env.podrun_ok(&["-n", "team-a", "logs", "hweb"]);
    assert_eq!(logs, "from-team-a\n");
    let logs = env.podrun_ok(&["logs", "--namespace", "team-a", "hweb"]);
    assert_eq!(logs, "from-team-a\n");
    env.podrun_ok(&["exec", "team-a/hweb", "--", "true"]);
    // -n names the namespace outright: no pod of that name there.
    let err = env.podrun_err(&["exec", "-n", "team-b", "hweb", "--", "true"]);
    assert!(err.contains("pod `team-b/hweb` not found"), "{err}");
    let err = env.podrun_err(&["logs", "nosuch"]);
    assert!(
        err.contains("pod nosuch not found in any namespace"),
        "{err}"
    );
    let err = env.podrun_err(&["-n", "team-b", "logs", "team-a/hweb"]);
    assert!(
        err.contains("is in namespace team-a, but -n says team-b"),
        "{err}"
    );
    let err = env.podrun_err(&["-n", "Team_B", "ps"]);
    assert!(err.contains("invalid namespace `Team_B`"), "{err}");

    // One namespace: no NAMESPACE column; `ps -n` lists that namespace only.
    let ps = env.podrun_ok(&["ps"]);
    assert_eq!(rows(&ps)[0][0], "NAME", "{ps}");
    let out = env.podrun(&["ps", "-n", "team-b"]);
    assert!(out.status.success());
    assert_eq!(podrun_e2e::stdout(&out), "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No pods found in team-b namespace."));

    // down by the bare name.
    let removed = env.podrun_ok(&["down", "hweb"]);
    assert!(removed.contains("pod team-a/hweb removed"), "{removed}");
    assert_nothing_left(&env);
}

#[test]
fn a_name_in_several_namespaces_must_be_said_which() {
    let env = TestEnv::new();
    let a = write_manifest(&env, "a.yaml", &pod("db", Some("team-a"), "db-of-team-a"));
    // No namespace in the file: -n puts the pod in team-b.
    let b = write_manifest(&env, "b.yaml", &pod("db", None, "db-of-team-b"));
    let _down_a = DownOnDrop(&env, "team-a/db".into());
    let _down_b = DownOnDrop(&env, "team-b/db".into());
    env.podrun_ok(&["play", "--network", "none", &a]);
    let out = env.podrun_ok(&["-n", "team-b", "play", "--network", "none", &b]);
    // play's table: one pod, one namespace.
    assert_eq!(rows(&out)[1][0], "db", "{out}");
    // A file whose object names another namespace than -n: refused, as kubectl does.
    let err = env.podrun_err(&["play", "-n", "team-c", "--network", "none", &a]);
    assert!(
        err.contains("the namespace from the provided object \"team-a\" does not match the namespace \"team-c\""),
        "{err}"
    );
    let err = env.podrun_err(&["validate", "-n", "team-c", &a]);
    assert!(err.contains("does not match the namespace"), "{err}");

    let err = env.podrun_err(&["logs", "db"]);
    assert!(
        err.contains("pod db exists in namespaces team-a, team-b: say which with -n or NS/NAME"),
        "{err}"
    );
    let err = env.podrun_err(&["describe", "db"]);
    assert!(err.contains("team-a, team-b"), "{err}");
    wait_for_logs(&env, &["team-a/db"], &["db-of-team-a"]);
    wait_for_logs(&env, &["-n", "team-b", "db"], &["db-of-team-b"]);

    // Two namespaces: a NAMESPACE column; with -n, that namespace only and no column.
    let ps = env.podrun_ok(&["ps"]);
    let table = rows(&ps);
    assert_eq!(table[0][..2], ["NAMESPACE", "NAME"], "{ps}");
    assert_eq!(table[1][..2], ["team-a", "db"], "{ps}");
    assert_eq!(table[2][..2], ["team-b", "db"], "{ps}");
    let ps = env.podrun_ok(&["ps", "-n", "team-b"]);
    let table = rows(&ps);
    assert_eq!(table.len(), 2, "{ps}");
    assert_eq!(table[0][0], "NAME", "{ps}");
    assert_eq!(table[1][0], "db", "{ps}");
    assert_eq!(env.podrun_ok(&["ps", "-n", "team-a", "-q"]), "team-a/db\n");

    // down FILE with -n takes the pods of the namespace the file was played in.
    let out = env.podrun_ok(&["down", "-n", "team-b", &b]);
    assert!(out.contains("pod team-b/db removed"), "{out}");
    // Now the name is unique again.
    let out = env.podrun_ok(&["down", "db"]);
    assert!(out.contains("pod team-a/db removed"), "{out}");
    assert_nothing_left(&env);
}

/// `-n` is refused, not ignored, by the commands that have no pods.
#[test]
fn commands_without_pods_refuse_a_namespace() {
    let env = TestEnv::new();
    for command in [&["images"][..], &["-n", "team-a", "pull", "busybox"][..]] {
        let mut args = command.to_vec();
        if args[0] != "-n" {
            args.splice(0..0, ["--namespace", "team-a"]);
        }
        let out = env.podrun(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("has no pods, so no namespace applies"),
            "{stderr}"
        );
    }
}
