//! Embeds the git commit podrun is built from (`podrun --version`), "unknown" outside a git
//! tree. Cargo reruns this only when HEAD moves: `.git/HEAD` and the branch it points to.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A non-PIE executable: its 0.8 MB of read-only data with pointers (`.data.rel.ro`: vtables
    // and the like) is then final at link time instead of relocated at every start, so it
    // stays clean page cache that every pod supervisor shares and drops once its pod runs
    // (podrun_supervisor::footprint). Measured (docs/benchmarks.md): supervisor and watchdog 3.3 MB
    // PSS as PIE, 2.75 MB as non-PIE. The cost: the binary's own code and data are not
    // placed at a random address (heap, stack, mmaps and shared libraries still are).
    println!("cargo:rustc-link-arg-bin=podrun=-no-pie");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PODRUN_COMMIT={commit}");
    // `--git-path` resolves the files of worktrees too. A file that does not exist would make
    // cargo rerun this at every build: only existing ones are watched.
    let mut watched = vec!["HEAD".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
        watched.push("packed-refs".into());
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                let path = std::fs::canonicalize(&path).unwrap_or_else(|_| path.into());
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
