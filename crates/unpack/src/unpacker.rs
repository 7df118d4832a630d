//! Applying tar entries to the layer directory, one at a time.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{self, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, Gid, Uid};
use tar::EntryType;
use tracing::debug;
use xattr::FileExt;

use crate::error::PathProblem;
use crate::fsx::{self, DIR_ANCHOR, DIR_READ};
use crate::paths::{display_prefix, LayerPath};
use crate::space::{copy_sparse, CopyError, SpaceGuard, DEFAULT_MIN_FREE};
use crate::stream::ErrorSource;
use crate::whiteout::{self, Whiteout};
use crate::{UnpackError, UnpackOptions, UnpackStats};
use UnpackError::UnsafePath;

type Result<T, E = UnpackError> = std::result::Result<T, E>;

/// Size of the buffer file contents are copied through.
const COPY_BUFFER_SIZE: usize = 256 * 1024;

/// The xattr overlayfs (mounted with `userxattr`) reads to find opaque directories.
pub(crate) const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Xattr prefixes a layer may not set: they are overlayfs' own metadata, and a hostile image
/// could use them to make the mount show something other than what the layer contains.
const RESERVED_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// What this process may do beyond what any user namespace root may.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Privileges {
    /// Device nodes (other than 0:0 character devices) can be created: only real root can.
    pub(crate) can_mknod: bool,
}

impl Privileges {
    pub(crate) fn detect() -> Self {
        // The initial user namespace maps the whole 32-bit id range: "0 0 4294967295".
        let initial_userns = std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.contains("4294967295"));
        Self {
            can_mknod: initial_userns && unistd::geteuid().is_root(),
        }
    }
}

/// Ownership, permissions, times and xattrs of an entry, from its header and PAX records.
struct Attrs {
    uid: u32,
    gid: u32,
    /// Permission bits including setuid, setgid and sticky.
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Directory metadata applied after all entries, children before parents: adding a child
/// changes a directory's mtime, and a read-only directory must still accept its children.
struct DirMeta {
    mode: u32,
    /// `None` for directories created implicitly as parents of an entry.
    mtime: Option<TimeSpec>,
}

pub(crate) struct Unpacker<'a> {
    root: OwnedFd,
    dest: &'a Path,
    options: &'a UnpackOptions,
    privileges: Privileges,
    errors: ErrorSource,
    /// Keyed by relative path; Path ordering puts every directory before its descendants.
    pending_dirs: BTreeMap<PathBuf, DirMeta>,
    /// Device nodes not created, so that hard links to them can be skipped too.
    skipped_device_paths: HashSet<PathBuf>,
    buffer: Vec<u8>,
    space: SpaceGuard,
    stats: UnpackStats,
}

impl<'a> Unpacker<'a> {
    pub(crate) fn new(
        root: OwnedFd,
        dest: &'a Path,
        options: &'a UnpackOptions,
        privileges: Privileges,
        errors: ErrorSource,
    ) -> Self {
        Self {
            root,
            dest,
            options,
            privileges,
            errors,
            pending_dirs: BTreeMap::new(),
            skipped_device_paths: HashSet::new(),
            buffer: vec![0; COPY_BUFFER_SIZE],
            space: SpaceGuard::new(options.min_free_bytes.unwrap_or(DEFAULT_MIN_FREE)),
            stats: UnpackStats::default(),
        }
    }

    fn space_reserve(&self) -> u64 {
        self.options.min_free_bytes.unwrap_or(DEFAULT_MIN_FREE)
    }

    pub(crate) fn unpack_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            debug!("ignoring a PAX global header");
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let path = LayerPath::parse(&raw_path).map_err(|reason| UnsafePath {
            path: String::from_utf8_lossy(&raw_path).into_owned(),
            reason,
        })?;
        let entry_error = |reason| UnsafePath {
            path: path.display(),
            reason,
        };
        match whiteout::classify(&path).map_err(entry_error)? {
            Whiteout::None => {}
            Whiteout::Opaque => return self.mark_opaque(&path),
            Whiteout::Hide(name) => return self.hide(&path, &path.with_name(name)),
            Whiteout::Ignore => {
                debug!(path = %path.display(), "ignoring whiteout metadata entry");
                return Ok(());
            }
        }
        if path.is_root() {
            // The caller made the layer directory; an image does not get to change it.
            debug!("ignoring the entry for the layer directory itself");
            return Ok(());
        }
        let attrs = self.read_attrs(entry, &path)?;
        let parent = self
            .lookup_dir(&path.parent_path(), true)?
            .map_err(entry_error)?;
        // Old (pre-POSIX) archives mark directories with a trailing slash on a regular entry.
        let is_dir = kind.is_dir() || (kind.is_file() && raw_path.ends_with(b"/"));
        match kind {
            _ if is_dir => self.make_dir(&parent, &path, &attrs),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.make_file(&parent, &path, &attrs, entry)
            }
            EntryType::Symlink => self.make_symlink(&parent, &path, &attrs, entry),
            EntryType::Link => self.make_hard_link(&parent, &path, entry),
            EntryType::Fifo => self.make_fifo(&parent, &path, &attrs),
            EntryType::Char | EntryType::Block => self.make_device(&parent, &path, &attrs, entry),
            other => Err(UnpackError::InvalidEntry {
                path: path.display(),
                reason: format!("it has an unsupported type {:?}", other.as_byte() as char),
            }),
        }
    }

    /// Applies the deferred directory modes and mtimes, and returns the statistics.
    pub(crate) fn finish(mut self) -> Result<UnpackStats> {
        let pending = std::mem::take(&mut self.pending_dirs);
        for (rel, meta) in pending.iter().rev() {
            let display = rel.to_string_lossy();
            let dir = fsx::open_beneath(&self.root, rel, DIR_READ)
                .map_err(|e| UnpackError::io("open directory", &display, e))?;
            stat::fchmod(dir.as_raw_fd(), mode_bits(meta.mode))
                .map_err(|e| UnpackError::io("set the mode of", &display, e))?;
            if let Some(mtime) = meta.mtime {
                stat::futimens(dir.as_raw_fd(), &mtime, &mtime)
                    .map_err(|e| UnpackError::io("set the times of", &display, e))?;
            }
        }
        Ok(self.stats)
    }

    // ---- Reading entries ----

    fn read_attrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &LayerPath,
    ) -> Result<Attrs> {
        let invalid = |e: io::Error| UnpackError::InvalidEntry {
            path: path.display(),
            reason: e.to_string(),
        };
        let header = entry.header();
        // The tar crate has already applied PAX uid/gid records to the header.
        let uid = header.uid().and_then(id_to_u32).map_err(invalid)?;
        let gid = header.gid().and_then(id_to_u32).map_err(invalid)?;
        let mode = header.mode().map_err(invalid)? & 0o7777;
        let seconds = header.mtime().map_err(invalid)?;
        let mut mtime = TimeSpec::new(i64::try_from(seconds).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        let extensions = entry
            .pax_extensions()
            .map_err(|e| self.errors.stream_error(e))?;
        for extension in extensions.into_iter().flatten() {
            let extension = extension.map_err(|e| self.errors.stream_error(e))?;
            let key = extension.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((name.to_vec(), extension.value_bytes().to_vec()));
            } else if key == b"mtime" {
                // PAX times may carry a fraction: keep the sub-second part when it parses.
                mtime = parse_pax_time(extension.value_bytes()).unwrap_or(mtime);
            }
        }
        Ok(Attrs {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    // ---- Finding directories ----

    /// Opens directory `dir` in the layer without following symlinks. With `create`, missing
    /// directories are made (0755, owned by us, which is root inside the user namespace).
    /// The inner error says why the path is unusable: which symlink or file is in the way.
    fn lookup_dir(
        &mut self,
        dir: &LayerPath,
        create: bool,
    ) -> Result<Result<OwnedFd, PathProblem>> {
        match fsx::open_beneath(&self.root, dir.rel(), DIR_ANCHOR) {
            Ok(fd) => Ok(Ok(fd)),
            // Something is missing or in the way: walk the components to see what.
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV | Errno::EAGAIN) => {
                self.walk_dir(dir, create)
            }
            Err(e) => Err(UnpackError::io("open directory", &dir.display(), e)),
        }
    }

    fn walk_dir(&mut self, dir: &LayerPath, create: bool) -> Result<Result<OwnedFd, PathProblem>> {
        let components = dir.components();
        let io_error =
            |action, len, e| UnpackError::io(action, &display_prefix(components, len), e);
        let mut fd = fsx::open_at(&self.root, OsStr::new("."), DIR_ANCHOR, Mode::empty())
            .map_err(|e| io_error("open directory", 0, e))?;
        for (i, name) in components.iter().enumerate() {
            let here = display_prefix(components, i + 1);
            match fsx::lstat(&fd, name).map_err(|e| io_error("inspect", i + 1, e))? {
                None if create => {
                    fsx::mkdir(&fd, name).map_err(|e| io_error("create directory", i + 1, e))?;
                    let meta = DirMeta {
                        mode: 0o755,
                        mtime: None,
                    };
                    self.pending_dirs
                        .insert(components[..=i].iter().collect(), meta);
                }
                None => return Ok(Err(PathProblem::NotFound)),
                Some(st) => match fsx::file_type(&st) {
                    SFlag::S_IFDIR => {}
                    SFlag::S_IFLNK => {
                        return Ok(Err(PathProblem::ThroughSymlink { symlink: here }))
                    }
                    _ => return Ok(Err(PathProblem::ThroughNonDirectory { file: here })),
                },
            }
            fd = fsx::open_at(&fd, name, DIR_ANCHOR, Mode::empty())
                .map_err(|e| io_error("open directory", i + 1, e))?;
        }
        Ok(Ok(fd))
    }

    /// Makes room for a new entry at `path`: removes whatever an earlier entry left there,
    /// except that a directory is kept when the new entry is a directory too (`keep_dir`).
    /// Returns whether a directory was kept.
    fn clear_slot(&mut self, parent: &OwnedFd, path: &LayerPath, keep_dir: bool) -> Result<bool> {
        let existing = fsx::lstat(parent, path.name())
            .map_err(|e| UnpackError::io("inspect", &path.display(), e))?;
        let Some(existing) = existing else {
            return Ok(false);
        };
        let was_dir = fsx::file_type(&existing) == SFlag::S_IFDIR;
        if was_dir && keep_dir {
            return Ok(true);
        }
        fsx::remove_tree(parent, path.name())
            .map_err(|e| UnpackError::io("replace", &path.display(), e))?;
        if was_dir {
            // What was below it is gone: its deferred metadata must not land on newcomers.
            self.pending_dirs
                .retain(|rel, _| !rel.starts_with(path.rel()));
        }
        Ok(false)
    }

    // ---- Creating entries ----

    fn make_dir(&mut self, parent: &OwnedFd, path: &LayerPath, attrs: &Attrs) -> Result<()> {
        if !self.clear_slot(parent, path, true)? {
            fsx::mkdir(parent, path.name())
                .map_err(|e| UnpackError::io("create directory", &path.display(), e))?;
        }
        self.set_owner(path, attrs, |uid, gid| {
            chown_at(parent, path.name(), uid, gid)
        })?;
        if !attrs.xattrs.is_empty() {
            let dir = fsx::open_at(parent, path.name(), DIR_READ, Mode::empty())
                .map_err(|e| UnpackError::io("open directory", &path.display(), e))?;
            let dir = File::from(dir);
            self.set_xattrs(path, attrs, |name, value| dir.set_xattr(name, value));
        }
        let meta = DirMeta {
            mode: attrs.mode,
            mtime: Some(attrs.mtime),
        };
        self.pending_dirs.insert(path.rel().to_owned(), meta);
        Ok(())
    }

    fn make_file<R: Read>(
        &mut self,
        parent: &OwnedFd,
        path: &LayerPath,
        attrs: &Attrs,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        self.clear_slot(parent, path, false)?;
        let io_error = |action, e: io::Error| UnpackError::io(action, &path.display(), e);
        let mut file =
            fsx::create_file(parent, path.name()).map_err(|e| io_error("create file", e.into()))?;
        let written = match copy_sparse(entry, &mut file, &mut self.buffer, &mut self.space) {
            Ok(written) => written,
            Err(CopyError::Read(e)) => return Err(self.errors.stream_error(e)),
            Err(CopyError::Write(e)) => return Err(io_error("write", e)),
            Err(CopyError::DiskFull { available }) => {
                return Err(UnpackError::DiskFull {
                    path: path.display(),
                    available,
                    reserve: self.space_reserve(),
                })
            }
        };
        if entry.header().entry_type() != EntryType::GNUSparse && written != entry.size() {
            let e = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ends inside a file",
            );
            return Err(self.errors.stream_error(e));
        }
        self.stats.bytes += written;
        let fd = file.as_raw_fd();
        self.set_owner(path, attrs, |uid, gid| {
            unistd::fchown(fd, Some(uid), Some(gid))
        })?;
        self.set_xattrs(path, attrs, |name, value| file.set_xattr(name, value));
        // After chown, which clears setuid and setgid.
        stat::fchmod(fd, mode_bits(attrs.mode))
            .map_err(|e| io_error("set the mode of", e.into()))?;
        stat::futimens(fd, &attrs.mtime, &attrs.mtime)
            .map_err(|e| io_error("set the times of", e.into()))
    }

    fn make_symlink<R: Read>(
        &mut self,
        parent: &OwnedFd,
        path: &LayerPath,
        attrs: &Attrs,
        entry: &tar::Entry<'_, R>,
    ) -> Result<()> {
        // Stored verbatim: a symlink may point anywhere. It only matters if a later entry
        // tries to go through it, and lookup_dir refuses that.
        let target = link_target(entry, path)?;
        self.clear_slot(parent, path, false)?;
        unistd::symlinkat(
            OsStr::from_bytes(&target),
            Some(parent.as_raw_fd()),
            path.name(),
        )
        .map_err(|e| UnpackError::io("create symlink", &path.display(), e))?;
        self.finish_non_regular(parent, path, attrs, false)
    }

    fn make_hard_link<R: Read>(
        &mut self,
        parent: &OwnedFd,
        path: &LayerPath,
        entry: &tar::Entry<'_, R>,
    ) -> Result<()> {
        let raw_target = link_target(entry, path)?;
        let link_error = |reason| UnpackError::HardLink {
            path: path.display(),
            target: String::from_utf8_lossy(&raw_target).into_owned(),
            reason,
        };
        let target = LayerPath::parse(&raw_target).map_err(link_error)?;
        if target.is_root() {
            return Err(link_error(PathProblem::LayerRoot));
        }
        let target_dir = self
            .lookup_dir(&target.parent_path(), false)?
            .map_err(link_error)?;
        let existing = fsx::lstat(&target_dir, target.name())
            .map_err(|e| UnpackError::io("inspect", &target.display(), e))?;
        match existing.map(|st| fsx::file_type(&st)) {
            None if self.skipped_device_paths.contains(target.rel()) => {
                self.skip_device(path);
                return Ok(());
            }
            None => return Err(link_error(PathProblem::NotFound)),
            Some(SFlag::S_IFDIR) => return Err(link_error(PathProblem::IsDirectory)),
            Some(_) if target == *path => return Ok(()), // a link to itself: already there
            Some(_) => {}
        }
        self.clear_slot(parent, path, false)?;
        // Flags empty: link a symlink itself, never what it points to.
        let (from_dir, to_dir) = (Some(target_dir.as_raw_fd()), Some(parent.as_raw_fd()));
        unistd::linkat(
            from_dir,
            target.name(),
            to_dir,
            path.name(),
            AtFlags::empty(),
        )
        .map_err(|e| UnpackError::io("create hard link", &path.display(), e))
    }

    fn make_fifo(&mut self, parent: &OwnedFd, path: &LayerPath, attrs: &Attrs) -> Result<()> {
        self.clear_slot(parent, path, false)?;
        unistd::mkfifoat(
            Some(parent.as_raw_fd()),
            path.name(),
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| UnpackError::io("create fifo", &path.display(), e))?;
        self.finish_non_regular(parent, path, attrs, true)
    }

    fn make_device<R: Read>(
        &mut self,
        parent: &OwnedFd,
        path: &LayerPath,
        attrs: &Attrs,
        entry: &tar::Entry<'_, R>,
    ) -> Result<()> {
        let header = entry.header();
        let invalid = |e: io::Error| UnpackError::InvalidEntry {
            path: path.display(),
            reason: e.to_string(),
        };
        let major = header.device_major().map_err(invalid)?.unwrap_or(0);
        let minor = header.device_minor().map_err(invalid)?.unwrap_or(0);
        let kind = if header.entry_type() == EntryType::Char {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        self.clear_slot(parent, path, false)?;
        // A 0:0 character device is what overlayfs itself uses as a whiteout, and any user
        // namespace root may make one: create it whenever we can, like real root would.
        let whiteout_like = kind == SFlag::S_IFCHR && major == 0 && minor == 0;
        if !self.privileges.can_mknod && !whiteout_like {
            self.skip_device(path);
            return Ok(());
        }
        let dev = stat::makedev(major.into(), minor.into());
        let perm = Mode::from_bits_truncate(0o600);
        match stat::mknodat(Some(parent.as_raw_fd()), path.name(), kind, perm, dev) {
            Ok(()) => self.finish_non_regular(parent, path, attrs, true),
            // Not allowed here after all (no CAP_MKNOD, or a device cgroup): skip it.
            Err(Errno::EPERM) => {
                self.skip_device(path);
                Ok(())
            }
            Err(e) => Err(UnpackError::io("create device node", &path.display(), e)),
        }
    }

    fn skip_device(&mut self, path: &LayerPath) {
        debug!(path = %path.display(), "not creating device node: not permitted here");
        self.stats.skipped_devices.push(path.display());
        self.skipped_device_paths.insert(path.rel().to_owned());
    }

    /// Owner, xattrs, mode and mtime of a symlink, fifo or device node, set by name.
    fn finish_non_regular(
        &mut self,
        parent: &OwnedFd,
        path: &LayerPath,
        attrs: &Attrs,
        set_mode: bool,
    ) -> Result<()> {
        let io_error = |action, e| UnpackError::io(action, &path.display(), e);
        self.set_owner(path, attrs, |uid, gid| {
            chown_at(parent, path.name(), uid, gid)
        })?;
        if !attrs.xattrs.is_empty() {
            // Path based (these cannot be opened for fsetxattr); lsetxattr does not follow the
            // last component, and lookup_dir has checked the others are real directories.
            let full_path = self.dest.join(path.rel());
            self.set_xattrs(path, attrs, |name, value| {
                xattr::set(&full_path, name, value)
            });
        }
        let dir = Some(parent.as_raw_fd());
        if set_mode {
            let mode = mode_bits(attrs.mode);
            stat::fchmodat(dir, path.name(), mode, FchmodatFlags::FollowSymlink)
                .map_err(|e| io_error("set the mode of", e))?;
        }
        let (time, no_follow) = (&attrs.mtime, UtimensatFlags::NoFollowSymlink);
        stat::utimensat(dir, path.name(), time, time, no_follow)
            .map_err(|e| io_error("set the times of", e))
    }

    // ---- Whiteouts ----

    /// `D/.wh..wh..opq`: marks D opaque, so the overlay mount hides what lower layers have in
    /// D (but still shows what this layer puts there).
    fn mark_opaque(&mut self, marker: &LayerPath) -> Result<()> {
        let dir = marker.parent_path();
        let fd = self.lookup_dir(&dir, true)?.map_err(|reason| UnsafePath {
            path: marker.display(),
            reason,
        })?;
        fsx::reopen_readable(&fd)
            .map_err(io::Error::from)
            .and_then(|dir| dir.set_xattr(OPAQUE_XATTR, b"y"))
            .map_err(|e| UnpackError::io("set the opaque xattr on", &dir.display(), e))
    }

    /// `D/.wh.NAME`: puts a whiteout (a 0:0 character device) at D/NAME, so the overlay mount
    /// hides NAME from lower layers.
    fn hide(&mut self, marker: &LayerPath, hidden: &LayerPath) -> Result<()> {
        let parent = self
            .lookup_dir(&hidden.parent_path(), true)?
            .map_err(|reason| UnsafePath {
                path: marker.display(),
                reason,
            })?;
        self.clear_slot(&parent, hidden, false)?;
        let io_error = |e| UnpackError::io("create whiteout", &hidden.display(), e);
        let (dir, name) = (Some(parent.as_raw_fd()), hidden.name());
        stat::mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), 0).map_err(io_error)?;
        let root = (Some(Uid::from_raw(0)), Some(Gid::from_raw(0)));
        unistd::fchownat(dir, name, root.0, root.1, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io_error)
    }

    // ---- Metadata ----

    /// Runs `chown` with the entry's ids. An id this user namespace does not map gives EINVAL:
    /// tolerated on request, leaving the file owned by root.
    fn set_owner(
        &mut self,
        path: &LayerPath,
        attrs: &Attrs,
        chown: impl FnOnce(Uid, Gid) -> nix::Result<()>,
    ) -> Result<()> {
        match chown(Uid::from_raw(attrs.uid), Gid::from_raw(attrs.gid)) {
            Ok(()) => Ok(()),
            Err(Errno::EINVAL) if self.options.tolerate_unmapped_ids => {
                debug!(path = %path.display(), attrs.uid, attrs.gid, "owner not mapped: left to root");
                self.stats.unmapped_ids += 1;
                Ok(())
            }
            Err(Errno::EINVAL) => Err(UnpackError::UnmappedId {
                path: path.display(),
                uid: attrs.uid,
                gid: attrs.gid,
            }),
            Err(e) => Err(UnpackError::io("set the owner of", &path.display(), e)),
        }
    }

    /// Sets the entry's xattrs with `set`. Overlayfs' own xattrs are refused; failures (e.g.
    /// `trusted.*` or `security.*` inside a user namespace) are recorded, not fatal.
    fn set_xattrs(
        &mut self,
        path: &LayerPath,
        attrs: &Attrs,
        mut set: impl FnMut(&OsStr, &[u8]) -> io::Result<()>,
    ) {
        for (name, value) in &attrs.xattrs {
            let name = OsStr::from_bytes(name);
            let result = if is_reserved_xattr(name) {
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "reserved for overlayfs",
                ))
            } else {
                set(name, value)
            };
            if let Err(e) = result {
                let name = name.to_string_lossy();
                debug!(path = %path.display(), xattr = %name, error = %e, "xattr not set");
                self.stats
                    .skipped_xattrs
                    .push(format!("{}: {name}", path.display()));
            }
        }
    }
}

fn chown_at(dir: &OwnedFd, name: &OsStr, uid: Uid, gid: Gid) -> nix::Result<()> {
    let flags = AtFlags::AT_SYMLINK_NOFOLLOW;
    unistd::fchownat(Some(dir.as_raw_fd()), name, Some(uid), Some(gid), flags)
}

fn is_reserved_xattr(name: &OsStr) -> bool {
    RESERVED_XATTR_PREFIXES
        .iter()
        .any(|prefix| name.as_bytes().starts_with(prefix))
}

fn mode_bits(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o7777)
}

fn id_to_u32(id: u64) -> io::Result<u32> {
    u32::try_from(id).map_err(|_| io::Error::other(format!("owner id {id} is out of range")))
}

/// The target of a symlink or hard link entry (GNU long link and PAX linkpath included).
fn link_target<R: Read>(entry: &tar::Entry<'_, R>, path: &LayerPath) -> Result<Vec<u8>> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() => Ok(target.into_owned()),
        _ => Err(UnpackError::InvalidEntry {
            path: path.display(),
            reason: "it is a link without a target".to_string(),
        }),
    }
}

/// Parses a PAX time such as `1700000000` or `1700000000.123456789`.
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let value = std::str::from_utf8(value).ok()?;
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let seconds: i64 = seconds.parse().ok()?;
    if seconds < 0 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None; // pre-1970 times are rare enough to keep to whole seconds
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    Some(TimeSpec::new(seconds, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pax_times() {
        assert_eq!(
            parse_pax_time(b"1700000000"),
            Some(TimeSpec::new(1_700_000_000, 0))
        );
        assert_eq!(
            parse_pax_time(b"12.5"),
            Some(TimeSpec::new(12, 500_000_000))
        );
        assert_eq!(
            parse_pax_time(b"12.123456789123"),
            Some(TimeSpec::new(12, 123_456_789))
        );
        assert_eq!(parse_pax_time(b"-3.5"), None);
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn reserved_xattrs() {
        assert!(is_reserved_xattr(OsStr::new("user.overlay.opaque")));
        assert!(is_reserved_xattr(OsStr::new("trusted.overlay.redirect")));
        assert!(!is_reserved_xattr(OsStr::new("user.test")));
        assert!(!is_reserved_xattr(OsStr::new("security.capability")));
    }
}
