//! Entry types, replacement rules, metadata and whiteouts.

use std::fs;

use nix::sys::stat::{major, minor};

use super::*;

#[test]
fn files_dirs_and_leading_dot_slash() {
    let tar = Layer::new()
        .dir("./", 0o700)
        .dir("./etc", 0o755)
        .file("./etc/hostname", b"pod\n", 0o644)
        .file("usr/lib/deep/file", b"implicit parents", 0o600)
        .finish();
    let (scratch, stats) = unpack_ok(&tar);
    assert_eq!(stats.entries, 4);
    assert_eq!(stats.bytes, 4 + 16);
    assert_eq!(fs::read(scratch.path("etc/hostname")).unwrap(), b"pod\n");
    assert_eq!(
        fs::read(scratch.path("usr/lib/deep/file")).unwrap(),
        b"implicit parents"
    );
    // Implicit parents are 0755; the root entry does not change the layer directory.
    let mode = |rel: &str| fs::symlink_metadata(scratch.path(rel)).unwrap().mode() & 0o7777;
    assert_eq!(mode("usr/lib"), 0o755);
    assert_eq!(mode("usr/lib/deep/file"), 0o600);
    assert_ne!(fs::metadata(&scratch.layer).unwrap().mode() & 0o7777, 0o700);
}

#[test]
fn long_names_and_long_link_targets() {
    let long_dir = "d".repeat(150);
    let long_file = format!("{long_dir}/{}", "f".repeat(120));
    let long_target = format!("/{}", "t".repeat(200));
    let mut builder = tar::Builder::new(Vec::new());
    // tar::Builder writes GNU long-name entries for these.
    let mut header = Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_mtime(MTIME);
    header.set_uid(nix::unistd::geteuid().as_raw().into());
    header.set_gid(nix::unistd::getegid().as_raw().into());
    builder
        .append_data(&mut header.clone(), &long_file, &b"hello"[..])
        .unwrap();
    header.set_entry_type(EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, format!("{long_dir}/link"), &long_target)
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let (scratch, _) = unpack_ok(&tar);
    assert_eq!(fs::read(scratch.path(&long_file)).unwrap(), b"hello");
    let link = fs::read_link(scratch.path(&format!("{long_dir}/link"))).unwrap();
    assert_eq!(link.to_str().unwrap(), long_target);

    // And PAX path/linkpath records (Layer uses them for names over 100 bytes).
    let tar = Layer::new()
        .file(&long_file, b"pax", 0o644)
        .hard_link("short", &long_file)
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    assert_eq!(fs::read(scratch.path("short")).unwrap(), b"pax");
}

#[test]
fn symlink_target_is_stored_verbatim() {
    let tar = Layer::new()
        .symlink("rel", "../../../etc/shadow")
        .symlink("abs", "/etc/passwd")
        .symlink("dot", ".")
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    let target = |rel: &str| {
        fs::read_link(scratch.path(rel))
            .unwrap()
            .display()
            .to_string()
    };
    assert_eq!(target("rel"), "../../../etc/shadow");
    assert_eq!(target("abs"), "/etc/passwd");
    assert_eq!(target("dot"), ".");
}

#[test]
fn hard_link_shares_the_inode() {
    let tar = Layer::new()
        .file("bin/busybox", b"#!elf", 0o755)
        .hard_link("bin/sh", "bin/busybox")
        .hard_link("./bin/ls", "./bin/busybox")
        .symlink("bin/link", "busybox")
        .hard_link("bin/link2", "bin/link")
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    let ino = |rel: &str| fs::symlink_metadata(scratch.path(rel)).unwrap().ino();
    assert_eq!(ino("bin/sh"), ino("bin/busybox"));
    assert_eq!(ino("bin/ls"), ino("bin/busybox"));
    assert_eq!(
        fs::metadata(scratch.path("bin/busybox")).unwrap().nlink(),
        3
    );
    // A hard link to a symlink links the symlink itself, not its target.
    assert_eq!(ino("bin/link2"), ino("bin/link"));
    assert!(fs::symlink_metadata(scratch.path("bin/link2"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn hard_link_replaces_an_earlier_file() {
    let tar = Layer::new()
        .file("a", b"a", 0o644)
        .file("b", b"old b", 0o644)
        .hard_link("b", "a")
        .hard_link("a", "a")
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    assert_eq!(fs::read(scratch.path("b")).unwrap(), b"a");
    assert_eq!(fs::read(scratch.path("a")).unwrap(), b"a");
}

#[test]
fn file_replaces_a_directory() {
    let tar = Layer::new()
        .dir("a", 0o555)
        .dir("a/sub", 0o700)
        .file("a/sub/x", b"x", 0o644)
        .file("a", b"now a file", 0o640)
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    let meta = fs::symlink_metadata(scratch.path("a")).unwrap();
    assert!(meta.is_file());
    // The deferred mode of the old directory must not land on the file.
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(fs::read(scratch.path("a")).unwrap(), b"now a file");
}

#[test]
fn directory_replaces_a_file_and_a_symlink() {
    let tar = Layer::new()
        .file("a", b"", 0o644)
        .symlink("b", "/etc")
        .dir("a", 0o750)
        .dir("b", 0o750)
        .file("b/inside", b"", 0o644)
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    for dir in ["a", "b"] {
        let meta = fs::symlink_metadata(scratch.path(dir)).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o7777, 0o750);
    }
    assert!(scratch.path("b/inside").exists());
}

#[test]
fn directory_over_directory_updates_metadata_only() {
    let tar = Layer::new()
        .dir("d", 0o755)
        .file("d/kept", b"kept", 0o644)
        .mtime(MTIME + 100)
        .dir("d", 0o700)
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    let meta = fs::metadata(scratch.path("d")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o700);
    assert_eq!(meta.mtime() as u64, MTIME + 100);
    assert_eq!(fs::read(scratch.path("d/kept")).unwrap(), b"kept");
}

#[test]
fn special_mode_bits_are_preserved() {
    let tar = Layer::new()
        .file("usr/bin/sudo", b"#!elf", 0o4755)
        .file("usr/bin/wall", b"#!elf", 0o2755)
        .dir("tmp", 0o1777)
        .dir("ro", 0o555)
        .file("ro/child", b"added to a read-only dir", 0o444)
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    let mode = |rel: &str| fs::symlink_metadata(scratch.path(rel)).unwrap().mode() & 0o7777;
    assert_eq!(mode("usr/bin/sudo"), 0o4755);
    assert_eq!(mode("usr/bin/wall"), 0o2755);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("ro"), 0o555);
    assert_eq!(mode("ro/child"), 0o444);
}

#[test]
fn mtimes_are_preserved() {
    let tar = Layer::new()
        .mtime(1_000_000_000)
        .dir("d", 0o755)
        .mtime(1_100_000_000)
        .file("d/f", b"content", 0o644)
        .mtime(1_200_000_000)
        .symlink("d/l", "f")
        .fifo("d/p")
        .pax(&[("mtime", b"1300000000.25")])
        .file("d/precise", b"", 0o644)
        .finish();
    let (scratch, _) = unpack_ok(&tar);
    let mtime = |rel: &str| {
        let meta = fs::symlink_metadata(scratch.path(rel)).unwrap();
        (meta.mtime(), meta.mtime_nsec())
    };
    // The directory keeps its own mtime although children were added after it.
    assert_eq!(mtime("d"), (1_000_000_000, 0));
    assert_eq!(mtime("d/f"), (1_100_000_000, 0));
    assert_eq!(mtime("d/l"), (1_200_000_000, 0));
    assert_eq!(mtime("d/p"), (1_200_000_000, 0));
    assert_eq!(mtime("d/precise"), (1_300_000_000, 250_000_000));
}

#[test]
fn fifo_is_created() {
    let (scratch, _) = unpack_ok(&Layer::new().fifo("run/fifo").finish());
    let meta = fs::symlink_metadata(scratch.path("run/fifo")).unwrap();
    assert!(meta.file_type().is_fifo());
    assert_eq!(meta.mode() & 0o7777, 0o640);
}

#[test]
fn ownership_follows_the_header() {
    if !is_root() {
        return; // only root may give files away
    }
    let tar = Layer::new()
        .owner(1234, 5678)
        .file("f", b"", 0o4755)
        .dir("d", 0o755)
        .symlink("l", "f")
        .owner(0, 0)
        .finish();
    let (scratch, stats) = unpack_ok(&tar);
    for rel in ["f", "d", "l"] {
        let meta = fs::symlink_metadata(scratch.path(rel)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "{rel}");
    }
    // chmod came after chown, so setuid survived it.
    assert_eq!(
        fs::metadata(scratch.path("f")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(stats.unmapped_ids, 0);
}

#[test]
fn devices_are_skipped_when_not_permitted() {
    let tar = Layer::new()
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/sda", EntryType::Block, 8, 0)
        .hard_link("dev/null-again", "dev/null")
        .file("dev/ok", b"", 0o644)
        .finish();
    let scratch = Scratch::new();
    let unprivileged = Privileges { can_mknod: false };
    let stats = scratch
        .unpack_with(
            &tar,
            Compression::None,
            &UnpackOptions::default(),
            unprivileged,
        )
        .unwrap();
    assert_eq!(
        stats.skipped_devices,
        ["dev/null", "dev/sda", "dev/null-again"]
    );
    assert!(!scratch.path("dev/null").exists());
    assert!(!scratch.path("dev/sda").exists());
    assert!(scratch.path("dev/ok").exists());
}

#[test]
fn devices_are_created_by_real_root() {
    if !Privileges::detect().can_mknod {
        return;
    }
    let tar = Layer::new()
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/loop9", EntryType::Block, 7, 9)
        .finish();
    let (scratch, stats) = unpack_ok(&tar);
    assert!(stats.skipped_devices.is_empty());
    let null = fs::symlink_metadata(scratch.path("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!((major(null.rdev()), minor(null.rdev())), (1, 3));
    assert_eq!(null.mode() & 0o7777, 0o660);
    let loop9 = fs::symlink_metadata(scratch.path("dev/loop9")).unwrap();
    assert!(loop9.file_type().is_block_device());
}

#[test]
fn whiteout_file_becomes_a_character_device() {
    let tar = Layer::new()
        .dir("etc", 0o755)
        .file("etc/.wh.motd", b"", 0o644)
        .file("gone/.wh.dir", b"", 0o644) // parent created implicitly
        .file("etc/replaced", b"earlier entry", 0o644)
        .file("etc/.wh.replaced", b"", 0o644)
        .finish();
    let scratch = Scratch::new();
    let result = scratch.unpack(&tar);
    if !is_root() {
        // mknod needs root (or root of a user namespace: see the userns tests).
        assert!(matches!(
            result,
            Err(UnpackError::Io {
                action: "create whiteout",
                ..
            })
        ));
        return;
    }
    let stats = result.unwrap();
    assert_eq!(stats.entries, 5);
    for rel in ["etc/motd", "gone/dir", "etc/replaced"] {
        let meta = fs::symlink_metadata(scratch.path(rel)).unwrap();
        assert!(meta.file_type().is_char_device(), "{rel}");
        assert_eq!(meta.rdev(), 0, "{rel}");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{rel}");
    }
    assert!(!scratch.path("etc/.wh.motd").exists());
    assert!(!scratch.path("etc/.wh.replaced").exists());
}

#[test]
fn opaque_marker_sets_the_overlay_xattr() {
    let probe = Scratch::new();
    if !user_xattrs_supported(probe.dir.path()) {
        eprintln!("skipped: no user xattrs on this file system");
        return;
    }
    let tar = Layer::new()
        .dir("var", 0o755)
        .dir("var/lib", 0o700)
        .file("var/lib/.wh..wh..opq", b"", 0o644)
        .file("var/lib/kept", b"", 0o644)
        .file("implicit/.wh..wh..opq", b"", 0o644)
        .file(".wh..wh.plnk", b"", 0o644)
        .file(".wh..wh.plnk/123.456", b"", 0o644)
        .finish();
    let (scratch, stats) = unpack_ok(&tar);
    assert_eq!(stats.entries, 7);
    for dir in ["var/lib", "implicit"] {
        let value = xattr::get(scratch.path(dir), crate::unpacker::OPAQUE_XATTR).unwrap();
        assert_eq!(value.as_deref(), Some(&b"y"[..]), "{dir}");
    }
    assert_eq!(
        xattr::get(scratch.path("var"), "user.overlay.opaque").unwrap(),
        None
    );
    assert!(scratch.path("var/lib/kept").exists());
    assert!(!scratch.path("var/lib/.wh..wh..opq").exists());
    assert!(!scratch.path(".wh..wh.plnk").exists());
    assert_eq!(
        fs::metadata(scratch.path("var/lib")).unwrap().mode() & 0o7777,
        0o700
    );
}

#[test]
fn pax_xattrs_are_set() {
    let probe = Scratch::new();
    if !user_xattrs_supported(probe.dir.path()) {
        eprintln!("skipped: no user xattrs on this file system");
        return;
    }
    let tar = Layer::new()
        .pax(&[
            ("SCHILY.xattr.user.test", b"v"),
            ("SCHILY.xattr.user.bin", b"\0\xff"),
        ])
        .file("f", b"", 0o644)
        .pax(&[("SCHILY.xattr.user.dir", b"d")])
        .dir("d", 0o755)
        .pax(&[("SCHILY.xattr.user.fifo", b"p")])
        .fifo("p")
        .finish();
    let (scratch, stats) = unpack_ok(&tar);
    let get = |rel: &str, name: &str| xattr::get(scratch.path(rel), name).unwrap();
    assert_eq!(get("f", "user.test").as_deref(), Some(&b"v"[..]));
    assert_eq!(get("f", "user.bin").as_deref(), Some(&b"\0\xff"[..]));
    assert_eq!(get("d", "user.dir").as_deref(), Some(&b"d"[..]));
    // user.* xattrs are only allowed on files and directories: recorded, not fatal.
    assert_eq!(stats.skipped_xattrs, ["p: user.fifo"]);
}

#[test]
fn unsettable_xattrs_are_recorded() {
    let tar = Layer::new()
        .pax(&[("SCHILY.xattr.bogus.namespace", b"x")])
        .file("f", b"", 0o644)
        .finish();
    let (_scratch, stats) = unpack_ok(&tar);
    assert_eq!(stats.skipped_xattrs, ["f: bogus.namespace"]);
}
