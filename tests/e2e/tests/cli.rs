//! The command line as shells and scripts meet it: completion scripts for bash, zsh and fish
//! (with the names of running pods and their containers), `-o json|yaml|wide` and `-q` on the
//! listings, colour only on a terminal and never with NO_COLOR, errors with a `hint:`, and
//! `--version`.

use std::process::Output;

use podrun_e2e::pods::*;
use podrun_e2e::{podrun_bin, TestEnv};

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: shelltest
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: setup
    image: busybox
    command: ["true"]
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
  - name: helper
    image: busybox
    command: ["sleep", "3600"]
"#;

/// Runs `shell -c script` as the test user, in the environment of `env`; returns its output.
fn shell(env: &TestEnv, shell: &str, script: &str) -> Output {
    let output = env
        .command(shell)
        .arg("-c")
        .arg(script)
        .env("PODRUN", podrun_bin())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shell}: {e}"));
    eprintln!(
        "{shell} -c {script:?}: {}\nstdout:\n{}stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// What bash's completion function answers for the words of `line` (the last one is being
/// completed, possibly empty), as it would at a TAB.
fn bash_complete(env: &TestEnv, line: &str) -> Vec<String> {
    let script = format!(
        r#"source <("$PODRUN" completions bash) || exit 1
COMP_WORDS=({line}); [[ "{line}" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMP_TYPE=9
_clap_complete_podrun podrun "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    stdout(&shell(env, "bash", &script))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn completion_scripts_load_in_bash_zsh_and_fish() {
    let env = TestEnv::new();
    let bash = shell(
        &env,
        "bash",
        r#"source <("$PODRUN" completions bash) && declare -F _clap_complete_podrun && complete -p podrun"#,
    );
    let out = stdout(&bash);
    assert!(out.contains("_clap_complete_podrun"), "{out}");
    assert!(bash.stderr.is_empty(), "{bash:?}");

    // Subcommands and options are completed without any pod.
    let words = bash_complete(&env, "podrun lo");
    assert_eq!(words, ["logs"]);
    let words = bash_complete(&env, "podrun ps --");
    assert!(words.iter().any(|w| w == "--quiet"), "{words:?}");

    let zsh = shell(
        &env,
        "zsh",
        r#"autoload -U compinit && compinit -u && source <("$PODRUN" completions zsh) && whence -w _clap_dynamic_completer_podrun && print -r -- $_comps[podrun]"#,
    );
    let out = stdout(&zsh);
    assert!(
        out.contains("_clap_dynamic_completer_podrun: function"),
        "{out}"
    );

    let fish = shell(
        &env,
        "fish",
        r#""$PODRUN" completions fish | source; and complete --do-complete 'podrun desc'"#,
    );
    let out = stdout(&fish);
    assert!(out.starts_with("describe"), "{out}");
}

#[test]
fn pods_and_containers_are_completed_from_the_running_pods() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "shelltest.yaml", POD);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());

    for verb in ["logs", "exec", "describe", "down"] {
        let words = bash_complete(&env, &format!("podrun {verb} shell"));
        assert!(
            words.contains(&"shelltest".to_string()),
            "{verb}: {words:?}"
        );
    }
    // A prefix that matches no pod gives no pod.
    let words = bash_complete(&env, "podrun logs nosuch");
    assert!(words.is_empty(), "{words:?}");
    // The containers of the pod on the command line, init containers too.
    let mut words = bash_complete(&env, "podrun logs shelltest -c ");
    words.sort();
    assert_eq!(words, ["helper", "main", "setup"]);
    let words = bash_complete(&env, "podrun exec shelltest -c h");
    assert_eq!(words, ["helper"]);
    // cp: the pod, ready for its path.
    let words = bash_complete(&env, "podrun cp shell");
    assert!(words.contains(&"shelltest:".to_string()), "{words:?}");

    // fish and zsh get the pod and its status from the same completer.
    let fish = shell(
        &env,
        "fish",
        r#""$PODRUN" completions fish | source; and complete --do-complete 'podrun describe shell'"#,
    );
    let out = stdout(&fish);
    assert!(out.starts_with("shelltest\tRunning"), "{out}");
    let zsh = env
        .command(podrun_bin())
        .args(["--", "podrun", "logs", "shelltest", "-c", "ma"])
        .env("PODRUN_COMPLETE", "zsh")
        .env("_CLAP_COMPLETE_INDEX", "4")
        .env("_CLAP_IFS", "\n")
        .output()
        .unwrap();
    assert_eq!(stdout(&zsh).trim(), "main:container of shelltest");

    down_and_check(&env, &file, &["shelltest"]);
}

#[test]
fn listings_print_json_yaml_wide_and_names() {
    let env = TestEnv::new();
    let file = write_manifest(&env, "shelltest.yaml", POD);
    env.podrun_ok(&["play", &file]);
    let _down = DownOnDrop(&env, file.clone());

    let yaml = env.podrun_ok(&["ps", "-o", "yaml"]);
    let list: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
    assert_eq!(list["kind"], "PodList", "{yaml}");
    let pods = list["items"].as_array().expect(&yaml);
    assert_eq!(pods.len(), 1, "{yaml}");
    assert_eq!(pods[0]["metadata"]["name"], "shelltest");
    assert_eq!(pods[0]["x-podrun"]["ready"], "2/2");
    assert_eq!(pods[0]["status"]["containerStatuses"][1]["name"], "helper");
    let json: serde_json::Value =
        serde_json::from_str(&env.podrun_ok(&["ps", "-o", "json"])).unwrap();
    assert_eq!(json, list, "-o json and -o yaml show the same data");

    assert_eq!(env.podrun_ok(&["ps", "-q"]), "shelltest\n");
    let wide = env.podrun_ok(&["ps", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "PORTS",
            "SUPERVISOR",
            "UID",
            "OWNER"
        ]
    );
    assert_aligned(&wide);

    let describe = env.podrun_ok(&["describe", "shelltest", "-o", "yaml"]);
    let pod: serde_json::Value = serde_yaml_ng::from_str(&describe).expect(&describe);
    assert_eq!(pod["kind"], "Pod", "{describe}");
    assert_eq!(pod["status"]["phase"], "Running", "{describe}");
    assert_eq!(pod["x-podrun"]["status"], "Running", "{describe}");

    // play pulled busybox: the image listings.
    let images: Vec<serde_json::Value> =
        serde_json::from_str(&env.podrun_ok(&["images", "-o", "json"])).unwrap();
    let names: Vec<&str> = images.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.iter().any(|n| n.contains("busybox")), "{names:?}");
    let quiet = env.podrun_ok(&["images", "-q"]);
    assert_eq!(quiet.lines().collect::<Vec<_>>(), names);
    let yaml: Vec<serde_json::Value> =
        serde_yaml_ng::from_str(&env.podrun_ok(&["images", "-o", "yaml"])).unwrap();
    assert_eq!(yaml, images);
    let wide = env.podrun_ok(&["images", "-o", "wide"]);
    assert!(wide.starts_with("REPOSITORY"), "{wide}");
    assert!(wide.lines().next().unwrap().ends_with("PULLED"), "{wide}");
    assert_aligned(&wide);

    // -q and -o together make no sense.
    let err = env.podrun_err(&["ps", "-q", "-o", "json"]);
    assert!(err.contains("cannot be used with"), "{err}");
    down_and_check(&env, &file, &["shelltest"]);
}

/// Every column starts where its header does (kubectl's layout: three spaces between
/// columns, the widest cell decides).
fn assert_aligned(table: &str) {
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[0];
    assert_eq!(header, header.to_uppercase(), "{table}");
    let starts: Vec<usize> = header
        .match_indices(|c: char| c != ' ')
        .filter(|(i, _)| *i == 0 || header.as_bytes()[i - 1] == b' ')
        .map(|(i, _)| i)
        .collect();
    for line in &lines[1..] {
        for start in &starts[1..] {
            assert_eq!(
                &line[start - 3..*start],
                "   ",
                "column at {start}:\n{table}"
            );
            assert_ne!(&line[*start..start + 1], " ", "column at {start}:\n{table}");
        }
    }
}

#[test]
fn errors_say_what_failed_and_how_to_fix_it() {
    let env = TestEnv::new();
    let out = env.podrun(&["logs", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "errors go to stderr");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        "error: pod nosuch not found in any namespace\nhint: podrun ps lists the pods\n"
    );
    let err = env.podrun_err(&["cp", "a", "b"]);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("error: neither `a` nor `b`"), "{err}");
    assert!(lines[1].starts_with("hint: "), "{err}");
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let env = TestEnv::new();
    // Not a terminal: plain text.
    let err = env.podrun_err(&["logs", "nosuch"]);
    assert!(!err.contains('\x1b'), "{err:?}");
    // A terminal (script gives podrun a pty): coloured, unless NO_COLOR is set.
    let on_terminal = |no_color: Option<&str>| {
        let mut command = env.command("script");
        command.args([
            "-qec",
            &format!("{} logs nosuch", podrun_bin().display()),
            "/dev/null",
        ]);
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let coloured = on_terminal(None);
    assert!(
        coloured.contains("\x1b[1;31merror:\x1b[0m pod"),
        "{coloured:?}"
    );
    assert!(coloured.contains("\x1b[1;36mhint:\x1b[0m"), "{coloured:?}");
    let plain = on_terminal(Some("1"));
    assert!(
        plain.contains("error: pod nosuch not found in any namespace"),
        "{plain:?}"
    );
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

#[test]
fn version_names_the_commit_and_the_helpers() {
    let env = TestEnv::new();
    let long = env.podrun_ok(&["--version"]);
    let first = long.lines().next().unwrap();
    assert!(first.starts_with("podrun 0."), "{long}");
    assert!(first.contains("(commit "), "{long}");
    let slirp = long
        .lines()
        .find(|l| l.trim_start().starts_with("slirp4netns:"))
        .expect(&long);
    assert!(slirp.contains("slirp4netns version"), "{long}");
    assert!(long.contains("newuidmap: /"), "{long}");
    // -V is the short form.
    assert_eq!(env.podrun_ok(&["-V"]), format!("{first}\n"));
}

#[test]
fn man_pages_are_written_for_every_subcommand() {
    let env = TestEnv::new();
    let dir = env.home().join("man");
    env.podrun_ok(&["__man", dir.to_str().unwrap()]);
    for page in [
        "podrun.1",
        "podrun-ps.1",
        "podrun-completions.1",
        "podrun-logs.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).expect(page);
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{page}: {text}");
        let title = text.lines().find(|l| l.starts_with(".TH ")).expect(page);
        assert!(title.contains("\"podrun 0."), "{page}: {title}");
    }
    assert!(!dir.join("podrun-__supervise.1").exists());
}

/// Pod names are completed as commands take them: a bare name where it names one pod,
/// NAMESPACE/NAME where pods of several namespaces have it, the names of one namespace
/// under `-n`, whose values are the namespaces that have pods (issue 18).
#[test]
fn pods_are_completed_under_their_namespace() {
    let env = TestEnv::new();
    let pod = |name: &str, namespace: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: main, image: busybox, command: [sleep, '3600']}}\n"
        )
    };
    let a = write_manifest(
        &env,
        "a.yaml",
        &format!("{}---\n{}", pod("hweb", "team-a"), pod("solo", "team-a")),
    );
    let b = write_manifest(&env, "b.yaml", &pod("hweb", "team-b"));
    let _down_a = DownOnDrop(&env, a.clone());
    let _down_b = DownOnDrop(&env, b.clone());
    env.podrun_ok(&["play", "--network", "none", &a]);
    env.podrun_ok(&["play", "--network", "none", &b]);

    // After a space, options are offered too: the values only, sorted.
    let values = |line: &str| -> Vec<String> {
        let mut words = bash_complete(&env, line);
        words.retain(|w| !w.starts_with('-'));
        words.sort();
        words
    };
    assert_eq!(values("podrun logs so"), ["solo"]);
    assert_eq!(values("podrun logs team"), ["team-a/hweb", "team-b/hweb"]);
    assert_eq!(values("podrun -n team-b logs "), ["hweb"]);
    assert_eq!(values("podrun exec --namespace team-a "), ["hweb", "solo"]);
    assert_eq!(values("podrun logs -n team-a hweb -c "), ["main"]);
    assert_eq!(values("podrun ps -n t"), ["team-a", "team-b"]);
    env.podrun_ok(&["down", &a, &b]);
}
