//! Whether overlayfs works the way podrun's containers use it, tried for real.
//!
//! podrun unpacks each image layer into a directory of its store (deletions as 0:0 character
//! device whiteouts made with mknod, opaque directories as the `user.overlay.opaque` xattr),
//! and mounts a container's root filesystem as an overlay of those layers with the `userxattr`
//! option, inside a user and mount namespace, its upper and work directories in the store too
//! (`pods/<pod>/`). The probe does all of that in a scratch directory on the store's file
//! system, in a child process, and checks that the merged view hides what it must.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::{child, userns::first_line, Check, Host};

pub(crate) fn check(host: &Host) -> Check {
    let check = Check::new("overlayfs", "overlayfs in a user namespace", true);
    if !host.is_real() {
        return check.ok("not tried on a test host");
    }
    let base = nearest_existing(&host.paths.data_dir);
    let scratch = match make_scratch(&base) {
        Ok(dir) => dir,
        Err(e) => {
            return check.error(
                format!(
                    "cannot create a scratch directory in {}: {e}",
                    base.display()
                ),
                None,
            )
        }
    };
    let host_root = host.host_root;
    let dir = scratch.clone();
    let result = child::run_in_child(move || probe(&dir, host_root));
    remove_scratch(&scratch);
    let place = format!("on {}'s file system", base.display());
    match result {
        Ok(_) => check.ok(format!(
            "mounted {place} with userxattr; whiteouts (mknod c 0 0) and opaque directories work"
        )),
        Err(message) => check.error(
            format!(
                "{message} ({place}, Linux {}); podrun needs overlayfs with the userxattr option in a user namespace (Linux 5.11 or later) on the file system of its store",
                host.read("/proc/sys/kernel/osrelease").unwrap_or_default().trim()
            ),
            None,
        ),
    }
}

/// The store's directory, or its closest ancestor that exists (before the first pull).
fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/tmp"))
        .to_path_buf()
}

fn make_scratch(base: &Path) -> nix::Result<PathBuf> {
    nix::unistd::mkdtemp(&base.join(".podrun-check.XXXXXX"))
}

/// Removes the scratch directory; the overlay's `work/work` is left mode 000.
fn remove_scratch(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_err() {
        let _ = std::fs::set_permissions(
            dir.join("work/work"),
            std::fs::Permissions::from_mode(0o700),
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// In the child: the namespaces podrun uses, two layers as podrun unpacks them, the overlay
/// mount, and what the merged view must show.
fn probe(dir: &Path, host_root: bool) -> Result<String, String> {
    if !host_root {
        let plan = podrun_userns::MappingPlan::SingleId {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        podrun_userns::enter_user_namespace(&plan).map_err(|e| {
            format!(
                "cannot create a user namespace: {}",
                first_line(&e.to_string())
            )
        })?;
    }
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("cannot create a mount namespace: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the mounts private: {e}"))?;
    let at = |name: &str| dir.join(name);
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    for name in ["base", "top", "upper", "work", "merged", "base/d", "top/d"] {
        std::fs::create_dir(at(name)).map_err(io(&format!("mkdir {name}")))?;
    }
    for name in [
        "base/deleted",
        "base/kept",
        "base/removed-later",
        "base/d/hidden",
        "top/d/shown",
    ] {
        std::fs::write(at(name), name).map_err(io(&format!("write {name}")))?;
    }
    // A whiteout as podrun's unpacker writes it for `.wh.deleted`.
    mknod(&at("top/deleted"), SFlag::S_IFCHR, Mode::empty(), 0)
        .map_err(|e| format!("mknod of a 0:0 character device (a whiteout) failed: {e}"))?;
    xattr::set(at("top/d"), "user.overlay.opaque", b"y").map_err(io(
        "setting the user.overlay.opaque xattr (an opaque directory)",
    ))?;

    let options = format!(
        "lowerdir={}:{},upperdir={},workdir={},userxattr",
        at("top").display(),
        at("base").display(),
        at("upper").display(),
        at("work").display()
    );
    mount(
        Some("overlay"),
        &at("merged"),
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|e| format!("mounting overlayfs with userxattr failed: {e}"))?;
    let verdict = inspect(&at("merged"), &at("upper"));
    let _ = umount2(&at("merged"), MntFlags::MNT_DETACH);
    let _ = std::fs::set_permissions(at("work/work"), std::fs::Permissions::from_mode(0o700));
    verdict
}

fn inspect(merged: &Path, upper: &Path) -> Result<String, String> {
    let exists = |name: &str| merged.join(name).symlink_metadata().is_ok();
    if exists("deleted") {
        return Err("overlayfs ignored a whiteout: a deleted file shows in the merged view".into());
    }
    if exists("d/hidden") || !exists("d/shown") {
        return Err("overlayfs ignored the user.overlay.opaque xattr of a directory".into());
    }
    if !exists("kept") {
        return Err("a file of the lower layer is missing from the merged view".into());
    }
    std::fs::remove_file(merged.join("removed-later"))
        .map_err(|e| format!("deleting a lower file through the overlay failed: {e}"))?;
    let whiteout = std::fs::symlink_metadata(upper.join("removed-later")).map_err(|e| {
        format!("deleting a lower file left no whiteout in the upper directory: {e}")
    })?;
    if !(whiteout.file_type().is_char_device() && whiteout.rdev() == 0) {
        return Err("deleting a lower file left something else than a 0:0 whiteout".into());
    }
    Ok(String::new())
}
