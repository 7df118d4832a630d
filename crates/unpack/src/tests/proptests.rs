//! Random, possibly hostile layers never panic and never change anything outside the layer.

use std::fs;

use proptest::prelude::*;

use super::*;

/// Placeholder in generated link targets for the absolute path of the directory next to the
/// layer, filled in once the scratch directory exists.
const OUTSIDE: &str = "@OUTSIDE@";

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    Symlink(String),
    HardLink(String),
    Fifo,
    Whiteout,
}

/// Mostly ordinary names, so that sequences get deep enough to combine symlinks, links and
/// replacements, with hostile and whiteout names mixed in.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just("a".to_string()),
        6 => Just("b".to_string()),
        2 => Just("outside".to_string()),
        2 => "[a-c.]{1,3}",
        1 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => Just(".wh.a".to_string()),
        1 => Just(".wh..wh..opq".to_string()),
        1 => Just(".wh..".to_string()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![8 => Just(""), 3 => Just("./"), 1 => Just("/"), 1 => Just("../")];
    (prefix, prop::collection::vec(component(), 1..4))
        .prop_map(|(prefix, parts)| format!("{prefix}{}", parts.join("/")))
}

/// Link targets: paths like entry paths, plus ones that lead out of the layer if followed.
/// None leads further out than the scratch directory, in case the unpacker had a bug.
fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        path(),
        Just("..".to_string()),
        Just("../outside".to_string()),
        Just("../outside/file".to_string()),
        Just(OUTSIDE.to_string()),
        Just(format!("{OUTSIDE}/file")),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::File),
        3 => Just(Kind::Dir),
        2 => target().prop_map(Kind::Symlink),
        2 => target().prop_map(Kind::HardLink),
        1 => Just(Kind::Fifo),
        1 => Just(Kind::Whiteout),
    ]
}

fn build(entries: &[(String, Kind)], outside: &str) -> Vec<u8> {
    let mut layer = Layer::new();
    for (path, kind) in entries {
        let fill = |target: &str| target.replace(OUTSIDE, outside);
        match kind {
            Kind::File => layer.file(path, b"data", 0o644),
            Kind::Dir => layer.dir(path, 0o755),
            Kind::Symlink(target) => layer.symlink(path, &fill(target)),
            Kind::HardLink(target) => layer.hard_link(path, &fill(target)),
            Kind::Fifo => layer.fifo(path),
            Kind::Whiteout => layer.file(&format!("{path}/.wh.x"), b"", 0o644),
        };
    }
    layer.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn hostile_layers_stay_inside(entries in prop::collection::vec((path(), kind()), 1..10)) {
        let scratch = Scratch::new();
        let outside = scratch.dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("file"), b"outside content").unwrap();
        fs::create_dir(outside.join("a")).unwrap();
        let before = snapshot(scratch.dir.path());

        let tar = build(&entries, outside.to_str().unwrap());
        let result = scratch.unpack(&tar);

        // Everything but the layer directory itself is as it was.
        let mut after = snapshot(scratch.dir.path());
        after.retain(|path, _| path == "layer" || !path.starts_with("layer"));
        let mut expected = before;
        expected.remove("layer");
        after.remove("layer");
        prop_assert_eq!(after, expected);
        // And when an unpack succeeds, the file count matches what was created.
        if let Ok(stats) = result {
            prop_assert_eq!(stats.entries, entries.len() as u64);
        }
    }
}
