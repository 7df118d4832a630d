//! Tests with crafted tarballs. They run as root here; assertions that need root (ownership of
//! other ids, device nodes, whiteouts outside a user namespace) check `is_root()` first.

mod entries;
mod hostile;
mod proptests;
mod streams;
mod userns;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};
use tempfile::TempDir;

use crate::unpacker::Privileges;
use crate::{unpack_layer_with, Compression, UnpackError, UnpackOptions, UnpackStats};

/// mtime given to every crafted entry unless a test says otherwise.
pub(crate) const MTIME: u64 = 1_600_000_000;

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Builds a layer tar entry by entry, writing paths as raw bytes so hostile ones (`..`,
/// absolute) can be written, which `tar::Builder`'s own path setters refuse.
pub(crate) struct Layer {
    builder: tar::Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl Layer {
    pub(crate) fn new() -> Self {
        // Our own ids, so that chown succeeds when the tests run unprivileged too.
        let uid = nix::unistd::geteuid().as_raw().into();
        let gid = nix::unistd::getegid().as_raw().into();
        Self {
            builder: tar::Builder::new(Vec::new()),
            uid,
            gid,
            mtime: MTIME,
        }
    }

    /// Owner of the entries added after this call.
    pub(crate) fn owner(&mut self, uid: u64, gid: u64) -> &mut Self {
        (self.uid, self.gid) = (uid, gid);
        self
    }

    /// mtime of the entries added after this call.
    pub(crate) fn mtime(&mut self, mtime: u64) -> &mut Self {
        self.mtime = mtime;
        self
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.add(EntryType::Directory, path, None, mode, b"")
    }

    pub(crate) fn file(&mut self, path: &str, content: &[u8], mode: u32) -> &mut Self {
        self.add(EntryType::Regular, path, None, mode, content)
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.add(EntryType::Symlink, path, Some(target), 0o777, b"")
    }

    pub(crate) fn hard_link(&mut self, path: &str, target: &str) -> &mut Self {
        self.add(EntryType::Link, path, Some(target), 0o644, b"")
    }

    pub(crate) fn fifo(&mut self, path: &str) -> &mut Self {
        self.add(EntryType::Fifo, path, None, 0o640, b"")
    }

    pub(crate) fn device(
        &mut self,
        path: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut header = self.header(kind, 0o660, 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.append(header, path, None, b"")
    }

    /// PAX records for the next entry.
    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            data.extend(pax_record(key, value));
        }
        let mut header = self.header(EntryType::XHeader, 0o644, data.len() as u64);
        set_raw(&mut header.as_old_mut().name, b"PaxHeaders/entry");
        header.set_cksum();
        self.builder.append(&header, &data[..]).unwrap();
        self
    }

    pub(crate) fn add(
        &mut self,
        kind: EntryType,
        path: &str,
        link: Option<&str>,
        mode: u32,
        content: &[u8],
    ) -> &mut Self {
        let header = self.header(kind, mode, content.len() as u64);
        self.append(header, path, link, content)
    }

    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(self.uid);
        header.set_gid(self.gid);
        header.set_mtime(self.mtime);
        header.set_size(size);
        header
    }

    /// Appends an entry; names that do not fit the header go in a PAX record.
    fn append(
        &mut self,
        mut header: Header,
        path: &str,
        link: Option<&str>,
        content: &[u8],
    ) -> &mut Self {
        let mut long = Vec::new();
        if path.len() > 100 {
            long.push(("path", path.as_bytes()));
        } else {
            set_raw(&mut header.as_old_mut().name, path.as_bytes());
        }
        if let Some(link) = link {
            if link.len() > 100 {
                long.push(("linkpath", link.as_bytes()));
            } else {
                set_raw(&mut header.as_old_mut().linkname, link.as_bytes());
            }
        }
        if !long.is_empty() {
            self.pax(&long);
        }
        header.set_cksum();
        self.builder.append(&header, content).unwrap();
        self
    }

    /// The finished tar: entries, then the two zero blocks that end an archive.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn set_raw(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value);
}

/// One PAX record: `<length> <key>=<value>\n`, the length counting its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A temporary directory holding an empty `layer` directory to unpack into.
pub(crate) struct Scratch {
    pub(crate) dir: TempDir,
    pub(crate) layer: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        fs::create_dir(&layer).unwrap();
        Self { dir, layer }
    }

    pub(crate) fn unpack(&self, tar: &[u8]) -> Result<UnpackStats, UnpackError> {
        self.unpack_with(
            tar,
            Compression::None,
            &UnpackOptions::default(),
            Privileges::detect(),
        )
    }

    pub(crate) fn unpack_with(
        &self,
        data: &[u8],
        compression: Compression,
        options: &UnpackOptions,
        privileges: Privileges,
    ) -> Result<UnpackStats, UnpackError> {
        unpack_layer_with(data, compression, &self.layer, options, privileges)
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.layer.join(rel)
    }
}

/// Unpacks into a fresh scratch directory, expecting success.
pub(crate) fn unpack_ok(tar: &[u8]) -> (Scratch, UnpackStats) {
    let scratch = Scratch::new();
    let stats = scratch
        .unpack(tar)
        .unwrap_or_else(|e| panic!("unpack failed: {e}"));
    (scratch, stats)
}

/// Unpacks into a fresh scratch directory, expecting failure; returns the message too.
pub(crate) fn unpack_err(tar: &[u8]) -> (Scratch, UnpackError, String) {
    let scratch = Scratch::new();
    let error = scratch.unpack(tar).expect_err("unpack should have failed");
    let message = error.to_string();
    (scratch, error, message)
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Whether the file system under `dir` takes `user.*` xattrs (tmpfs before 6.6 does not).
pub(crate) fn user_xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    fs::write(&probe, b"").unwrap();
    let supported = xattr::set(&probe, "user.probe", b"1").is_ok();
    fs::remove_file(&probe).unwrap();
    supported
}

/// A description of everything under `root` (not following symlinks), keyed by relative
/// path: type, mode, owner, size, content hash, symlink target, mtime and xattrs.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut tree = BTreeMap::new();
    snapshot_into(root, root, &mut tree);
    tree
}

fn snapshot_into(root: &Path, dir: &Path, tree: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let detail = if kind.is_file() {
            let mut content = Vec::new();
            fs::File::open(&path)
                .unwrap()
                .read_to_end(&mut content)
                .unwrap();
            sha256_hex(&content)
        } else if kind.is_symlink() {
            fs::read_link(&path).unwrap().display().to_string()
        } else if kind.is_char_device() || kind.is_block_device() {
            format!("dev {}", meta.rdev())
        } else {
            String::new()
        };
        let mut xattrs: Vec<_> = xattr::list(&path).map(|l| l.collect()).unwrap_or_default();
        xattrs.sort();
        let description = format!(
            "mode {:o} owner {}:{} links {} size {} mtime {}.{} {detail} xattrs {xattrs:?}",
            meta.permissions().mode(),
            meta.uid(),
            meta.gid(),
            if kind.is_dir() { 0 } else { meta.nlink() },
            if kind.is_dir() { 0 } else { meta.len() },
            meta.mtime(),
            meta.mtime_nsec(),
        );
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        tree.insert(rel, description);
        if kind.is_dir() {
            snapshot_into(root, &path, tree);
        }
    }
}

#[test]
fn errors_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<UnpackError>();
    assert_send_sync::<UnpackStats>();
}
