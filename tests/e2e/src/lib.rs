//! Helpers shared by the end-to-end tests.
//!
//! Each test gets a [`TestEnv`]: a private home directory owned by the ordinary test user
//! (its own image store, config and runtime dir), in which it runs the real `podrun` binary
//! as that user. The registries and images come from `scripts/test.sh`, which exports their
//! addresses; a test run without them fails and says so.

pub mod host;
pub mod net;
pub mod pods;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An environment variable set by scripts/test.sh.
pub fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the end-to-end tests through scripts/test.sh")
    })
}

/// The plain-HTTP anonymous test registry (`127.0.0.1:PORT`).
pub fn registry() -> String {
    setting("PODRUN_TEST_REGISTRY")
}

/// The ordinary user the tests run podrun as (`PODRUN_TEST_USER`).
pub fn test_user() -> nix::unistd::User {
    nix::unistd::User::from_name(&setting("PODRUN_TEST_USER"))
        .expect("user lookup")
        .expect("the test user exists (scripts/create-test-user.sh)")
}

/// One private environment of the test user.
pub struct TestEnv {
    root: PathBuf,
    uid: u32,
    gid: u32,
}

impl TestEnv {
    /// A fresh home with a config that mirrors docker.io to the test registry.
    pub fn new() -> TestEnv {
        let user = test_user();
        let root = tempfile::Builder::new()
            .prefix("podrun-e2e.")
            .tempdir_in("/tmp")
            .expect("temp dir")
            .keep();
        let env = TestEnv {
            root,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        };
        for dir in ["home/.config/podrun", "data", "run"] {
            std::fs::create_dir_all(env.root.join(dir)).unwrap();
        }
        std::fs::set_permissions(env.root.join("run"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        env.write_config(&format!(
            "[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n",
            registry()
        ));
        env.chown_all();
        env
    }

    /// The environment's root directory: `home/`, the data dir `data/` and the runtime dir
    /// `run/` are in it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The store's directory (`$XDG_DATA_HOME/podrun/storage`).
    pub fn storage(&self) -> PathBuf {
        self.root.join("data/podrun/storage")
    }

    /// Replaces the podrun config file.
    pub fn write_config(&self, text: &str) {
        let path = self.home().join(".config/podrun/config.toml");
        std::fs::write(&path, text).unwrap();
        self.chown(&self.home());
    }

    /// Writes a file in the home directory (e.g. `.docker/config.json`), owned by the user.
    pub fn write_home_file(&self, relative: &str, text: &str) {
        let path = self.home().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        self.chown(&self.home());
    }

    fn chown_all(&self) {
        self.chown(&self.root);
    }

    /// Gives the tree `path` to the test user. The home directory only once pods may run:
    /// `chown -R` of the whole root fails when a running pod removes a file of its runtime
    /// directory under it (seen in a full run).
    fn chown(&self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown -R {}", path.display());
    }

    /// A command that runs `program` as the test user with this environment's variables only.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.home())
            .env("USER", setting("PODRUN_TEST_USER"))
            .env("XDG_DATA_HOME", self.root.join("data"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            .env("LANG", "C.UTF-8")
            .current_dir(&self.root)
            .uid(self.uid)
            .gid(self.gid);
        command
    }

    /// A command that runs `program` as root with this environment's variables and working
    /// directory, for a test that prepares something as root before it becomes the test user
    /// (see [`host::podrun_through`]).
    pub fn root_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let template = self.command("true");
        let mut command = Command::new(program);
        command.env_clear().current_dir(&self.root);
        for (key, value) in template.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        command
    }

    /// Runs podrun with `args` as the test user.
    pub fn podrun(&self, args: &[&str]) -> Output {
        self.podrun_with(&podrun_bin(), args)
    }

    /// Runs the podrun binary `bin` (another build than [`podrun_bin`], such as the previous
    /// release) with `args` as the test user, in this environment.
    pub fn podrun_with(&self, bin: &Path, args: &[&str]) -> Output {
        let output = self.command(bin).args(args).output().expect("run podrun");
        let name = if bin == podrun_bin() {
            "podrun".to_string()
        } else {
            bin.display().to_string()
        };
        log_output(&format!("{name} {}", args.join(" ")), &output);
        output
    }

    /// Runs podrun and fails the test unless it succeeds; returns stdout.
    pub fn podrun_ok(&self, args: &[&str]) -> String {
        let output = self.podrun(args);
        assert!(
            output.status.success(),
            "podrun {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs podrun, fails the test if it succeeds; returns stderr.
    pub fn podrun_err(&self, args: &[&str]) -> String {
        let output = self.podrun(args);
        assert!(
            !output.status.success(),
            "podrun {} should have failed",
            args.join(" ")
        );
        String::from_utf8(output.stderr).unwrap()
    }

    /// Runs `podrun pull NAME` `count` times at once; fails the test unless each succeeds.
    pub fn pull_at_once(&self, name: &str, count: usize) {
        let children: Vec<_> = (0..count)
            .map(|_| {
                self.command(podrun_bin())
                    .args(["pull", name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run podrun pull")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "podrun pull {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Runs a shell script inside podrun's user namespace (`podrun unshare sh -c SCRIPT`),
    /// where the store's files show their image owners; returns stdout.
    pub fn in_userns(&self, script: &str) -> String {
        self.podrun_ok(&["unshare", "sh", "-c", script])
    }

    /// Paths of the store's committed layers (`layers/sha256/<hex>` directories).
    pub fn layer_dirs(&self) -> Vec<String> {
        list(&self.storage().join("layers/sha256"))
            .into_iter()
            .filter(|n| !n.ends_with(".json"))
            .collect()
    }

    /// The image records, as `podrun images -o json` prints them.
    pub fn images_json(&self) -> Vec<serde_json::Value> {
        let out = self.podrun_ok(&["images", "-o", "json"]);
        serde_json::from_str(&out).expect("images -o json prints JSON")
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // A test that failed before `podrun down` would leave its pods running: take them
        // down first (pod directories are named `<namespace>_<name>`).
        for pod in list(&self.root.join("run/podrun/pods")) {
            if let Some((namespace, name)) = pod.split_once('_') {
                let pod = format!("{namespace}/{name}");
                let _ = self.command(podrun_bin()).args(["down", &pod]).output();
            }
        }
        // Root may remove files owned by the user's subordinate ids.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The podrun binary under test.
pub fn podrun_bin() -> PathBuf {
    std::env::var_os("PODRUN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/podrun"))
}

/// Names in a directory, sorted; empty when it does not exist.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Prints a command's exit code and output to the test's log (shown when it fails).
pub fn log_output(what: &str, output: &Output) {
    eprintln!(
        "$ {what}\n[exit {:?}]\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A command's stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The test images as scripts/build-test-images.sh recorded them.
pub fn test_images() -> serde_json::Value {
    let path = setting("PODRUN_TEST_IMAGES");
    serde_json::from_slice(&std::fs::read(&path).expect("images.json")).expect("JSON")
}

/// One test image's record (manifest digest, layer digests, ...), from [`test_images`].
pub fn test_image(repository: &str, tag: &str) -> serde_json::Value {
    test_images()["images"]
        .as_array()
        .expect("images.json has images")
        .iter()
        .find(|i| i["repository"] == repository && i["tag"] == tag)
        .unwrap_or_else(|| panic!("{repository}:{tag} is not a test image"))
        .clone()
}

/// Standard base64 (with padding), enough for a docker config entry.
pub fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_is_the_standard_encoding_with_padding() {
        assert_eq!(base64(""), "");
        assert_eq!(base64("a"), "YQ==");
        assert_eq!(base64("ab"), "YWI=");
        assert_eq!(base64("abc"), "YWJj");
        assert_eq!(base64("podrun:s3cret"), "cG9kcnVuOnMzY3JldA==");
    }
}
