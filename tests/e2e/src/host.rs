//! Host problems made for one podrun command: a command run as root around it (a network
//! namespace, a private mount namespace with a 0600 TUN device) and a PATH without the
//! network helpers.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::PathBuf;
use std::process::Output;

use crate::{log_output, podrun_bin, test_user, TestEnv};

/// Runs podrun as the test user through `prefix` (a command run as root that ends by exec'ing
/// its arguments, e.g. `ip netns exec NS`), with the environment's variables and `path` as
/// PATH when given.
pub fn podrun_through<S: AsRef<OsStr> + Debug>(
    env: &TestEnv,
    prefix: &[S],
    args: &[&str],
    path: Option<&str>,
) -> Output {
    let user = test_user();
    let mut command = env.root_command(&prefix[0]);
    command
        .args(&prefix[1..])
        .arg("/usr/bin/setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups")
        .arg(podrun_bin())
        .args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().expect("run podrun");
    log_output(&format!("{prefix:?} podrun {}", args.join(" ")), &output);
    output
}

/// Replaces /dev/net/tun, for the command it runs only, by a 0600 node of the same device
/// (Debian's default mode): a private mount namespace with the node on a private tmpfs bound
/// over it. The real device is never touched, so tests running at the same time keep theirs.
const TUN_0600: &str = r#"set -e
mount -t tmpfs -o mode=0755 podrun-tun-test "$1"
mknod -m 0600 "$1/tun" c 10 200
mount --bind "$1/tun" /dev/net/tun
shift
exec "$@""#;

/// The prefix (for [`podrun_through`]) of a command that sees /dev/net/tun of mode 0600
/// ([`TUN_0600`]), with its tmpfs on the environment's `tun/`.
pub fn tun_0600(env: &TestEnv) -> Vec<String> {
    let tun_dir = env.root().join("tun");
    std::fs::create_dir_all(&tun_dir).unwrap();
    [
        "/usr/bin/unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        TUN_0600,
        "sh",
        tun_dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// A PATH directory holding only newuidmap and newgidmap (no slirp4netns, no pasta).
pub fn path_without_helpers(env: &TestEnv) -> PathBuf {
    let bin = env.root().join("bin-without-helpers");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["newuidmap", "newgidmap"] {
        let link = bin.join(tool);
        if !link.exists() {
            std::os::unix::fs::symlink(PathBuf::from("/usr/bin").join(tool), link).unwrap();
        }
    }
    bin
}
