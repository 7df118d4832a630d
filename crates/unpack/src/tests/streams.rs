//! Compression, the diff_id, and broken streams.

use std::io::Write;

use super::*;

/// A small tree with every kind of entry that any process can create, all dirs explicit
/// (so that every mtime is the header's), followed by padding as tar tools write it.
fn sample_tar() -> Vec<u8> {
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let mut tar = Layer::new()
        .dir("bin", 0o755)
        .file("bin/tool", &big, 0o755)
        .hard_link("bin/tool2", "bin/tool")
        .symlink("bin/sh", "tool")
        .dir("etc", 0o755)
        .file("etc/empty", b"", 0o600)
        .file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)
        .fifo("etc/fifo")
        .finish();
    // tar pads archives to whole 10 KiB records; such zeros are part of the diff_id.
    tar.resize(tar.len().div_ceil(10240) * 10240 + 10240, 0);
    tar
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn unpack_compressed(data: &[u8], compression: Compression) -> (Scratch, UnpackStats) {
    let scratch = Scratch::new();
    let stats = scratch
        .unpack_with(
            data,
            compression,
            &UnpackOptions::default(),
            Privileges::detect(),
        )
        .unwrap();
    (scratch, stats)
}

#[test]
fn all_compressions_give_the_same_tree_and_diff_id() {
    let tar = sample_tar();
    let expected_diff_id = sha256_hex(&tar);
    let zstd = zstd::encode_all(&tar[..], 3).unwrap();
    let (plain, plain_stats) = unpack_compressed(&tar, Compression::None);
    let (gz, gz_stats) = unpack_compressed(&gzip(&tar), Compression::Gzip);
    let (zst, zst_stats) = unpack_compressed(&zstd, Compression::Zstd);

    assert_eq!(plain_stats.diff_id, expected_diff_id);
    assert_eq!(plain_stats.entries, 8);
    assert_eq!(plain_stats.bytes, 600_000 + 20);
    assert_eq!(gz_stats, plain_stats);
    assert_eq!(zst_stats, plain_stats);
    let tree = snapshot(&plain.layer);
    assert_eq!(tree.len(), 8);
    assert_eq!(snapshot(&gz.layer), tree);
    assert_eq!(snapshot(&zst.layer), tree);
}

#[test]
fn multi_member_gzip_and_trailing_bytes_are_read() {
    let mut tar = sample_tar();
    // Bytes after the end-of-archive blocks are not tar entries but are part of the stream.
    tar.extend_from_slice(b"trailing bytes that are not a tar header");
    let (first, second) = tar.split_at(tar.len() / 3);
    let mut members = gzip(first);
    members.extend(gzip(second));
    let (scratch, stats) = unpack_compressed(&members, Compression::Gzip);
    assert_eq!(stats.diff_id, sha256_hex(&tar));
    assert_eq!(stats.entries, 8);
    assert_eq!(
        fs::read(scratch.path("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
}

#[test]
fn diff_id_of_an_empty_layer() {
    let tar = Layer::new().finish();
    let (_scratch, stats) = unpack_ok(&tar);
    assert_eq!(stats.entries, 0);
    assert_eq!(stats.diff_id, sha256_hex(&tar));
}

#[test]
fn truncated_tar_is_an_archive_error() {
    let tar = sample_tar();
    let cut = &tar[..1000]; // in the middle of bin/tool's content
    let (_scratch, error) = {
        let scratch = Scratch::new();
        let error = scratch.unpack(cut).unwrap_err();
        (scratch, error)
    };
    assert!(matches!(error, UnpackError::Archive(_)), "{error}");
}

#[test]
fn corrupt_header_is_an_archive_error() {
    let mut tar = sample_tar();
    tar[10] ^= 0xff; // inside the first header's name: the checksum no longer matches
    let error = Scratch::new().unpack(&tar).unwrap_err();
    assert!(matches!(error, UnpackError::Archive(_)), "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");
}

#[test]
fn corrupt_compression_is_a_decompress_error() {
    let tar = sample_tar();
    let mut gz = gzip(&tar);
    let middle = gz.len() / 2;
    gz[middle..middle + 64].fill(0x55);
    let error = Scratch::new()
        .unpack_with(
            &gz,
            Compression::Gzip,
            &UnpackOptions::default(),
            Privileges::detect(),
        )
        .unwrap_err();
    assert!(matches!(error, UnpackError::Decompress(_)), "{error}");

    let zstd = zstd::encode_all(&tar[..], 3).unwrap();
    let error = Scratch::new()
        .unpack_with(
            &zstd[..zstd.len() / 2],
            Compression::Zstd,
            &UnpackOptions::default(),
            Privileges::detect(),
        )
        .unwrap_err();
    assert!(
        matches!(error, UnpackError::Decompress(_) | UnpackError::Archive(_)),
        "{error}"
    );

    let error = Scratch::new()
        .unpack_with(
            &tar,
            Compression::Zstd,
            &UnpackOptions::default(),
            Privileges::detect(),
        )
        .unwrap_err();
    assert!(matches!(error, UnpackError::Decompress(_)), "{error}");
}

#[test]
fn media_types() {
    use crate::Compression as C;
    assert_eq!(
        C::from_media_type("application/vnd.oci.image.layer.v1.tar"),
        Some(C::None)
    );
    assert_eq!(
        C::from_media_type("application/vnd.oci.image.layer.v1.tar+gzip"),
        Some(C::Gzip)
    );
    assert_eq!(
        C::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Some(C::Gzip)
    );
    assert_eq!(
        C::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
        Some(C::Zstd)
    );
    assert_eq!(C::from_media_type("application/json"), None);
}

/// A gzip stream of a tar holding one file of `size` zero bytes, written without holding the
/// tar in memory.
fn zero_bomb(size: u64) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    encoder.write_all(header.as_bytes()).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = size.div_ceil(512) * 512 + 1024;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        encoder.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    encoder.finish().unwrap()
}

#[test]
fn a_decompression_bomb_is_stopped_at_the_limit() {
    let bomb = zero_bomb(256 << 20);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let scratch = Scratch::new();
    let options = UnpackOptions {
        max_uncompressed_bytes: Some(16 << 20),
        ..UnpackOptions::default()
    };
    let err = scratch
        .unpack_with(&bomb, Compression::Gzip, &options, Privileges::detect())
        .unwrap_err();
    assert!(
        matches!(err, UnpackError::TooLarge { limit } if limit == 16 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("max_layer_expansion"), "{err}");
}

#[test]
fn zeros_within_the_limit_unpack_as_a_sparse_file() {
    use std::os::unix::fs::MetadataExt;
    let (scratch, stats) = unpack_compressed(&zero_bomb(64 << 20), Compression::Gzip);
    assert_eq!(stats.bytes, 64 << 20);
    let meta = std::fs::metadata(scratch.path("zeros")).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
}

#[test]
fn the_free_space_reserve_is_kept() {
    let scratch = Scratch::new();
    let options = UnpackOptions {
        min_free_bytes: Some(u64::MAX / 2),
        ..UnpackOptions::default()
    };
    let tar = Layer::new().file("data", b"some bytes", 0o644).finish();
    let err = scratch
        .unpack_with(&tar, Compression::None, &options, Privileges::detect())
        .unwrap_err();
    assert!(matches!(err, UnpackError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("`data`"), "{err}");
}
