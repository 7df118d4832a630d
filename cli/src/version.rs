//! `podrun --version`: podrun's version and commit, and the helper programs it would run
//! (found on PATH) with their versions. `-V` prints the short form only.

use std::path::{Path, PathBuf};

/// `0.1.0 (commit 4a045f8)`.
pub fn short() -> String {
    format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("PODRUN_COMMIT")
    )
}

/// The short form, then one line per helper: where it is and the first line of its
/// `--version`, or that it is missing.
pub fn long() -> String {
    let mut text = short();
    text.push_str("\nhelpers:");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let helpers = [
        (
            "slirp4netns",
            podrun_network::slirp::find_binary_in(&path).ok(),
        ),
        ("pasta", podrun_network::pasta::find_binary_in(&path).ok()),
        ("newuidmap", find_in_path("newuidmap", &path)),
        ("newgidmap", find_in_path("newgidmap", &path)),
    ];
    for (name, binary) in helpers {
        text.push_str(&format!("\n  {}", helper_line(name, binary.as_deref())));
    }
    text
}

fn helper_line(name: &str, binary: Option<&Path>) -> String {
    match binary {
        None => format!("{name}: not found on PATH"),
        Some(binary) => match version_line(binary) {
            Some(version) => format!("{name}: {version} ({})", binary.display()),
            // newuidmap and newgidmap (shadow's uidmap) print no version.
            None => format!("{name}: {}", binary.display()),
        },
    }
}

/// The first line of `BINARY --version`, when it prints one.
fn version_line(binary: &Path) -> Option<String> {
    podrun_network::helper_version(binary)
}

fn find_in_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether the arguments ask for the long version: `--version` among podrun's own options,
/// before the subcommand (`podrun exec web -- cat --version` does not).
pub fn asked_for(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|arg| arg.to_string_lossy().starts_with('-') && *arg != "--")
        .any(|arg| arg == "--version")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn args(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn only_podruns_own_version_option_counts() {
        assert!(asked_for(&args("podrun --version")));
        assert!(asked_for(&args("podrun --debug --version")));
        assert!(!asked_for(&args("podrun -V")));
        assert!(!asked_for(&args("podrun exec web -- cat --version")));
        assert!(!asked_for(&args("podrun ps")));
    }

    #[test]
    fn a_helper_line_names_the_version_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("slirp4netns");
        std::fs::write(
            &tool,
            "#!/bin/sh\necho 'slirp4netns version 9.9'\necho 'commit: x'\n",
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let found = find_in_path("slirp4netns", dir.path().as_os_str()).unwrap();
        assert_eq!(
            helper_line("slirp4netns", Some(&found)),
            format!("slirp4netns: slirp4netns version 9.9 ({})", found.display())
        );
        assert_eq!(helper_line("pasta", None), "pasta: not found on PATH");
    }
}
