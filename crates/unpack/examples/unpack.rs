//! Unpacks a layer file and reports throughput:
//! `cargo run --release -p podrun-unpack --example unpack -- LAYER.tar[.gz|.zst] DEST`
//! DEST must not exist or be empty. Compression is taken from the file name.

use std::fs::{self, File};
use std::path::PathBuf;
use std::time::Instant;

use podrun_unpack::{unpack_layer, Compression, UnpackOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(layer), Some(dest)) = (args.next(), args.next()) else {
        return Err("usage: unpack LAYER DEST".into());
    };
    let name = layer.to_string_lossy();
    let compression = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Compression::Gzip
    } else if name.ends_with(".zst") {
        Compression::Zstd
    } else {
        Compression::None
    };
    fs::create_dir_all(&dest)?;
    let compressed_size = fs::metadata(&layer)?.len();
    let options = UnpackOptions {
        tolerate_unmapped_ids: true,
        ..UnpackOptions::default()
    };
    let start = Instant::now();
    let stats = unpack_layer(File::open(&layer)?, compression, &dest, &options)?;
    let seconds = start.elapsed().as_secs_f64();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "{compression:?}: {} entries, {:.1} MiB of file content from {:.1} MiB in {seconds:.2} s",
        stats.entries,
        mib(stats.bytes),
        mib(compressed_size)
    );
    println!(
        "  {:.0} MiB/s of content, {:.0} entries/s",
        mib(stats.bytes) / seconds,
        stats.entries as f64 / seconds
    );
    println!("  diff_id {}", stats.diff_id);
    println!(
        "  skipped devices {}, unmapped ids {}, skipped xattrs {}",
        stats.skipped_devices.len(),
        stats.unmapped_ids,
        stats.skipped_xattrs.len()
    );
    Ok(())
}
