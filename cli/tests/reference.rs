//! docs/reference/ is the `--help` of every command: it must say what this binary says.

use std::path::Path;
use std::process::Command;

fn pages(dir: &Path) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn the_committed_reference_matches_the_help_of_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fresh = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(root.join("scripts/gen-reference.sh"))
        .arg(fresh.path())
        .env("PODRUN_BIN", env!("CARGO_BIN_EXE_podrun"))
        .status()
        .expect("run scripts/gen-reference.sh");
    assert!(status.success(), "scripts/gen-reference.sh failed");
    let generated = pages(fresh.path());
    assert!(generated.iter().any(|(name, _)| name == "podrun-ps.md"));
    let committed = pages(&root.join("docs/reference"));
    let names = |pages: &[(String, String)]| -> Vec<String> {
        pages.iter().map(|(name, _)| name.clone()).collect()
    };
    assert_eq!(
        names(&committed),
        names(&generated),
        "docs/reference/ lists other commands than the binary: run scripts/gen-reference.sh"
    );
    for ((name, old), (_, new)) in committed.iter().zip(&generated) {
        assert_eq!(
            old, new,
            "docs/reference/{name} is not the binary's help: run scripts/gen-reference.sh"
        );
    }
}
