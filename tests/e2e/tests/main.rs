//! The end-to-end tests, in one test binary: each file of this directory is one module.
//! `cargo test -p podrun-e2e --test e2e` runs them all (scripts/test.sh sets up what they
//! need), `cargo test -p podrun-e2e --test e2e -- probes::` those of tests/probes.rs.
//!
//! One binary instead of one per file (`autotests = false` in Cargo.toml), measured on the
//! 2-core test machine under load, `cargo test -p podrun-e2e --no-run` with the dependencies
//! built, 18 files: after `touch src/lib.rs` 0.7-0.9 s instead of 2.1-2.3 s; after a new
//! function in src/lib.rs 1.1-1.3 s instead of 3.9-4.2 s; the crate from scratch 5.9-6.4 s
//! instead of 11.2-11.7 s; 35 MB of test binaries instead of 271 MB. A change of one test file
//! only costs more: 0.8-0.9 s instead of 0.4-0.5 s.

mod applications;
mod ci_script;
mod cli;
mod dns_upstream;
mod down_grace;
mod exec_cp;
mod fidelity;
mod hostname_env;
mod images;
mod jobs;
mod lifecycle;
mod logs;
mod namespaces;
mod network;
mod podnet;
mod pods;
mod ports_json;
mod probes;
mod pull_faults;
mod pull_stalls;
mod reliability;
mod resources;
mod security;
mod shared_network;
mod system;
mod titles;
mod tty;
mod upgrade;
mod volumes;
mod volumes_pvc;
mod wait_owner;

/// A file added to this directory runs only once it is declared above.
#[test]
fn every_file_here_is_a_module_of_the_test_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = include_str!("main.rs");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "main") {
            assert!(
                main.lines().any(|l| l == format!("mod {module};")),
                "tests/{name} is not declared in tests/main.rs: add `mod {module};`"
            );
        }
    }
}
