//! Unpacking inside user namespaces, as podrun normally does. The test binary re-runs itself
//! (the ignored `inner` test) in a new user namespace whose id map the outer test writes.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

const MAP_KIND: &str = "PODRUN_UNPACK_TEST_USERNS";

/// Like podrun's pods: root is the user, 1..=65536 come from a subuid range.
#[test]
fn in_user_namespace_with_subuid_map() {
    if !is_root() {
        return; // writing a map with more than our own id needs root
    }
    let map = "0 0 1\n1 100000 65536\n";
    run_inner(map, map, "subuid");
}

/// Without subuids only root (the user) exists: other owners cannot be set.
#[test]
fn in_user_namespace_with_single_id_map() {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    run_inner(&format!("0 {uid} 1\n"), &format!("0 {gid} 1\n"), "single");
}

#[test]
#[ignore = "run inside a user namespace by the in_user_namespace_* tests"]
fn inner() {
    let Ok(kind) = std::env::var(MAP_KIND) else {
        return;
    };
    assert!(!Privileges::detect().can_mknod);
    let tar = Layer::new()
        .owner(0, 0)
        .dir("etc", 0o755)
        .file("etc/.wh.motd", b"", 0o644)
        .file("etc/.wh..wh..opq", b"", 0o644)
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/whiteout-like", EntryType::Char, 0, 0)
        .pax(&[("SCHILY.xattr.trusted.secret", b"x")])
        .file("trusted", b"", 0o644)
        .owner(1000, 1000)
        .file("owned", b"", 0o4755)
        .owner(70000, 70000)
        .file("unmapped", b"", 0o644)
        .finish();

    let error = Scratch::new().unpack(&tar).unwrap_err();
    let first_unmapped = if kind == "subuid" {
        "unmapped"
    } else {
        "owned"
    };
    assert!(
        matches!(&error, UnpackError::UnmappedId { path, .. } if path == first_unmapped),
        "{error}"
    );

    let scratch = Scratch::new();
    let options = UnpackOptions {
        tolerate_unmapped_ids: true,
        ..UnpackOptions::default()
    };
    let stats = scratch
        .unpack_with(&tar, Compression::None, &options, Privileges::detect())
        .unwrap();
    assert_eq!(stats.skipped_devices, ["dev/null"]);
    assert_eq!(stats.skipped_xattrs, ["trusted: trusted.secret"]);
    for rel in ["etc/motd", "dev/whiteout-like"] {
        let meta = fs::symlink_metadata(scratch.path(rel)).unwrap();
        assert!(
            meta.file_type().is_char_device() && meta.rdev() == 0,
            "{rel}"
        );
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{rel}");
    }
    if user_xattrs_supported(scratch.dir.path()) {
        let opaque = xattr::get(scratch.path("etc"), "user.overlay.opaque").unwrap();
        assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    }
    let owned = fs::metadata(scratch.path("owned")).unwrap();
    let unmapped = fs::metadata(scratch.path("unmapped")).unwrap();
    assert_eq!((unmapped.uid(), unmapped.gid()), (0, 0));
    if kind == "subuid" {
        assert_eq!(stats.unmapped_ids, 1);
        assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    } else {
        assert_eq!(stats.unmapped_ids, 2);
        assert_eq!((owned.uid(), owned.gid()), (0, 0));
    }
    assert_eq!(owned.mode() & 0o7777, 0o4755);
    println!("checks passed in a user namespace with the {kind} map");
}

/// Runs `inner` in a new user namespace with the given id maps.
fn run_inner(uid_map: &str, gid_map: &str, kind: &str) {
    let exe = std::env::current_exe().unwrap();
    // `unshare --user` makes the namespace; the shell waits for the map before running us.
    let spawned = Command::new("unshare")
        .args(["--user", "--", "sh", "-c", "read _ && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([
            "--exact",
            "tests::userns::inner",
            "--ignored",
            "--nocapture",
        ])
        .env(MAP_KIND, kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("skipped: cannot run unshare");
        return;
    };
    if !wait_for_new_userns(child.id()) {
        let output = child.wait_with_output().unwrap();
        eprintln!(
            "skipped: no user namespace: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let proc_dir = format!("/proc/{}", child.id());
    if !is_root() {
        fs::write(format!("{proc_dir}/setgroups"), "deny").unwrap();
    }
    fs::write(format!("{proc_dir}/uid_map"), uid_map).unwrap();
    fs::write(format!("{proc_dir}/gid_map"), gid_map).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "inner test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("checks passed"),
        "inner test did not run:\n{stdout}\n{stderr}"
    );
}

/// Waits until process `pid` is in another user namespace than ours; false if it never is.
fn wait_for_new_userns(pid: u32) -> bool {
    let ours = fs::read_link("/proc/self/ns/user").unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        match fs::read_link(format!("/proc/{pid}/ns/user")) {
            Ok(theirs) if theirs != ours => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => return false, // exited: unshare failed
        }
    }
    false
}
