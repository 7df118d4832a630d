//! Layers that try to write outside the layer directory, or to inject overlay metadata.

use std::fs;

use super::*;
use crate::PathProblem;

#[test]
fn dotdot_path_is_refused() {
    let tar = Layer::new()
        .file("../etc/passwd", b"root::0:0::/:/bin/sh\n", 0o644)
        .finish();
    let (scratch, error, message) = unpack_err(&tar);
    assert!(matches!(
        error,
        UnpackError::UnsafePath {
            reason: PathProblem::Escapes,
            ..
        }
    ));
    assert_eq!(
        message,
        "layer entry `../etc/passwd` escapes the layer directory"
    );
    assert!(!scratch.dir.path().join("etc").exists());
}

#[test]
fn dotdot_in_the_middle_is_refused() {
    let tar = Layer::new()
        .dir("a", 0o755)
        .file("a/../../x", b"x", 0o644)
        .finish();
    let (scratch, _, message) = unpack_err(&tar);
    assert_eq!(
        message,
        "layer entry `a/../../x` escapes the layer directory"
    );
    assert!(!scratch.dir.path().join("x").exists());
}

#[test]
fn absolute_path_is_refused() {
    let tar = Layer::new()
        .file("/tmp/podrun-unpack-absolute-test", b"x", 0o644)
        .finish();
    let (_scratch, error, message) = unpack_err(&tar);
    assert!(matches!(
        error,
        UnpackError::UnsafePath {
            reason: PathProblem::Absolute,
            ..
        }
    ));
    assert_eq!(
        message,
        "layer entry `/tmp/podrun-unpack-absolute-test` is an absolute path"
    );
    assert!(!Path::new("/tmp/podrun-unpack-absolute-test").exists());
}

#[test]
fn file_through_symlink_is_refused() {
    let scratch = Scratch::new();
    let outside = scratch.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let tar = Layer::new()
        .symlink("a", outside.to_str().unwrap())
        .file("a/passwd", b"evil", 0o644)
        .finish();
    let error = scratch.unpack(&tar).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `a/passwd` goes through symlink `a`"
    );
    assert!(!outside.join("passwd").exists());
}

#[test]
fn file_through_symlink_to_etc_is_refused() {
    // The example from the brief, with a real system directory as the target: the entry
    // must be refused before anything is opened through the symlink.
    let tar = Layer::new()
        .symlink("a", "/etc")
        .file("a/passwd", b"evil", 0o644)
        .finish();
    let (_scratch, error, _) = unpack_err(&tar);
    let expected = PathProblem::ThroughSymlink {
        symlink: "a".to_string(),
    };
    assert!(matches!(error, UnpackError::UnsafePath { reason, .. } if reason == expected));
    assert_ne!(fs::read("/etc/passwd").unwrap(), b"evil");
}

#[test]
fn nested_symlink_is_named() {
    let tar = Layer::new()
        .dir("a", 0o755)
        .symlink("a/b", "/")
        .dir("a/b/c", 0o755)
        .finish();
    let (_scratch, _, message) = unpack_err(&tar);
    assert_eq!(message, "layer entry `a/b/c` goes through symlink `a/b`");
}

#[test]
fn entry_through_symlink_to_parent_is_refused() {
    let scratch = Scratch::new();
    let tar = Layer::new()
        .symlink("up", "..")
        .file("up/escaped", b"x", 0o644)
        .finish();
    let error = scratch.unpack(&tar).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `up/escaped` goes through symlink `up`"
    );
    assert!(!scratch.dir.path().join("escaped").exists());
}

#[test]
fn whiteout_through_symlink_is_refused() {
    let scratch = Scratch::new();
    fs::write(scratch.dir.path().join("victim"), b"keep").unwrap();
    let tar = Layer::new()
        .symlink("up", "..")
        .file("up/.wh.victim", b"", 0o644)
        .finish();
    let error = scratch.unpack(&tar).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `up/.wh.victim` goes through symlink `up`"
    );
    assert_eq!(
        fs::read(scratch.dir.path().join("victim")).unwrap(),
        b"keep"
    );
}

#[test]
fn opaque_marker_through_symlink_is_refused() {
    let tar = Layer::new()
        .symlink("up", "..")
        .file("up/.wh..wh..opq", b"", 0o644)
        .finish();
    let (_scratch, _, message) = unpack_err(&tar);
    assert_eq!(
        message,
        "layer entry `up/.wh..wh..opq` goes through symlink `up`"
    );
}

#[test]
fn replacing_a_directory_by_a_symlink_does_not_open_a_way_out() {
    let scratch = Scratch::new();
    let outside = scratch.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let tar = Layer::new()
        .dir("a", 0o755)
        .file("a/x", b"x", 0o644)
        .symlink("a", outside.to_str().unwrap())
        .file("a/y", b"y", 0o644)
        .finish();
    let error = scratch.unpack(&tar).unwrap_err();
    assert_eq!(
        error.to_string(),
        "layer entry `a/y` goes through symlink `a`"
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn entry_through_a_file_is_refused() {
    let tar = Layer::new()
        .file("a", b"", 0o644)
        .file("a/b", b"", 0o644)
        .finish();
    let (_scratch, _, message) = unpack_err(&tar);
    assert_eq!(
        message,
        "layer entry `a/b` goes through `a`, which is not a directory"
    );
}

#[test]
fn hard_link_outside_is_refused() {
    let tar = Layer::new().hard_link("x", "../../y").finish();
    let (_scratch, error, message) = unpack_err(&tar);
    assert!(matches!(
        error,
        UnpackError::HardLink {
            reason: PathProblem::Escapes,
            ..
        }
    ));
    assert_eq!(message, "hard link `x` points outside the layer: `../../y`");
}

#[test]
fn hard_link_to_absolute_path_is_refused() {
    let tar = Layer::new().hard_link("x", "/etc/passwd").finish();
    let (scratch, _, message) = unpack_err(&tar);
    assert_eq!(
        message,
        "hard link `x` points outside the layer: `/etc/passwd`"
    );
    assert!(!scratch.path("x").exists());
}

#[test]
fn hard_link_through_symlink_is_refused() {
    let scratch = Scratch::new();
    let outside = scratch.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    let tar = Layer::new()
        .symlink("s", outside.to_str().unwrap())
        .hard_link("x", "s/secret")
        .finish();
    let error = scratch.unpack(&tar).unwrap_err();
    assert_eq!(
        error.to_string(),
        "hard link `x` points to `s/secret` through symlink `s`"
    );
    assert!(!scratch.path("x").exists());
    assert_eq!(fs::metadata(outside.join("secret")).unwrap().nlink(), 1);
}

#[test]
fn hard_link_to_missing_target_is_refused() {
    let tar = Layer::new().hard_link("x", "nowhere").finish();
    let (_scratch, _, message) = unpack_err(&tar);
    assert_eq!(
        message,
        "hard link `x` points to `nowhere`, which does not exist in the layer"
    );
}

#[test]
fn hard_link_to_directory_is_refused() {
    let tar = Layer::new().dir("d", 0o755).hard_link("x", "d").finish();
    let (_scratch, _, message) = unpack_err(&tar);
    assert_eq!(message, "hard link `x` points to `d`, which is a directory");
}

#[test]
fn invalid_whiteout_is_refused() {
    let tar = Layer::new().file("a/.wh..", b"", 0o644).finish();
    let (_scratch, error, _) = unpack_err(&tar);
    assert!(matches!(
        error,
        UnpackError::UnsafePath {
            reason: PathProblem::InvalidWhiteout,
            ..
        }
    ));
}

#[test]
fn overlay_xattrs_from_the_layer_are_skipped() {
    let tar = Layer::new()
        .pax(&[
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ])
        .dir("d", 0o755)
        .pax(&[("SCHILY.xattr.user.overlay.origin", b"x")])
        .file("d/f", b"", 0o644)
        .finish();
    let (scratch, stats) = unpack_ok(&tar);
    assert_eq!(
        stats.skipped_xattrs,
        [
            "d: user.overlay.opaque",
            "d: trusted.overlay.redirect",
            "d/f: user.overlay.origin"
        ]
    );
    assert_eq!(
        xattr::get(scratch.path("d"), "user.overlay.opaque").unwrap(),
        None
    );
    assert_eq!(
        xattr::get(scratch.path("d"), "trusted.overlay.redirect").unwrap(),
        None
    );
}

#[test]
fn dest_must_be_empty() {
    let scratch = Scratch::new();
    fs::write(scratch.path("existing"), b"").unwrap();
    let error = scratch.unpack(&Layer::new().finish()).unwrap_err();
    assert!(matches!(error, UnpackError::DestinationNotEmpty { .. }));
    assert!(
        error.to_string().ends_with("the directory is not empty"),
        "{error}"
    );
}

#[test]
fn dest_must_exist_and_be_a_directory() {
    let scratch = Scratch::new();
    let missing = scratch.dir.path().join("missing");
    let error = crate::unpack_layer(&[][..], Compression::None, &missing, &Default::default());
    assert!(matches!(error, Err(UnpackError::Destination { .. })));
    let file = scratch.dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let error = crate::unpack_layer(&[][..], Compression::None, &file, &Default::default());
    assert!(matches!(error, Err(UnpackError::Destination { .. })));
}

#[test]
fn unsupported_entry_type_is_refused() {
    let tar = Layer::new()
        .add(EntryType::new(b'V'), "volume", None, 0o644, b"")
        .finish();
    let (_scratch, error, message) = unpack_err(&tar);
    assert!(
        matches!(error, UnpackError::InvalidEntry { .. }),
        "{message}"
    );
    assert_eq!(
        message,
        "layer entry `volume` is invalid: it has an unsupported type 'V'"
    );
}
