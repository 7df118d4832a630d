//! The tar stream of `podrun cp`, with `docker cp`'s rules for where things land.
//!
//! The sending side packs one path: its top entry is named after the path's last component,
//! the rest of a directory follows below it (`top`, `top/a`, `top/a/b`). Symbolic links are
//! sent as links (never followed), modes and modification times are kept; other file types
//! (devices, fifos, sockets) are skipped with a warning. The receiving side decides from the
//! destination and the top entry's type where the top entry goes ([`target_path`]) and
//! writes the rest below it.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The path to copy, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub path: PathBuf,
    /// `DIR/.`: the directory's contents go into an existing destination directory, not the
    /// directory itself.
    pub contents_only: bool,
}

impl Source {
    pub(crate) fn parse(text: &str) -> Source {
        let contents_only = text == "." || text.ends_with("/.");
        Source {
            path: PathBuf::from(text),
            contents_only,
        }
    }

    /// The top entry's name: the last component, `root` for `/`.
    fn top_name(&self) -> PathBuf {
        let normal = self.path.components().rev().find_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            _ => None,
        });
        normal.unwrap_or_else(|| PathBuf::from("root"))
    }
}

fn error(kind: io::ErrorKind, text: String) -> io::Error {
    io::Error::new(kind, text)
}

/// Writes `source` as a tar stream to `out`.
pub(crate) fn pack(source: &Source, out: impl Write) -> io::Result<()> {
    let shown = source.path.display();
    // A trailing `/` (or `/.`) follows a link to a directory, as path resolution does.
    let meta = std::fs::symlink_metadata(&source.path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => error(e.kind(), format!("`{shown}`: no such file or directory")),
        _ => error(e.kind(), format!("cannot read `{shown}`: {e}")),
    })?;
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let top = source.top_name();
    if meta.is_dir() {
        append_tree(&mut builder, &source.path, &top)?;
    } else {
        append_one(&mut builder, &source.path, &top, &meta)?;
    }
    builder.into_inner()?.flush()
}

/// `path` (a directory) and everything below it, in name order.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
) -> io::Result<()> {
    builder
        .append_path_with_name(path, name)
        .map_err(|e| error(e.kind(), format!("cannot read `{}`: {e}", path.display())))?;
    let mut children: Vec<_> = std::fs::read_dir(path)
        .and_then(|read| read.collect::<io::Result<Vec<_>>>())
        .map_err(|e| error(e.kind(), format!("cannot list `{}`: {e}", path.display())))?;
    children.sort_by_key(|entry| entry.file_name());
    for child in children {
        let child_path = child.path();
        let child_name = name.join(child.file_name());
        let meta = std::fs::symlink_metadata(&child_path).map_err(|e| {
            error(
                e.kind(),
                format!("cannot read `{}`: {e}", child_path.display()),
            )
        })?;
        if meta.is_dir() {
            append_tree(builder, &child_path, &child_name)?;
        } else {
            append_one(builder, &child_path, &child_name, &meta)?;
        }
    }
    Ok(())
}

/// A file or symbolic link; anything else is skipped with a warning.
fn append_one<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    meta: &std::fs::Metadata,
) -> io::Result<()> {
    let kind = meta.file_type();
    if !(kind.is_file() || kind.is_symlink()) {
        eprintln!(
            "warning: skipping `{}`: not a regular file, directory or symbolic link",
            path.display()
        );
        return Ok(());
    }
    builder
        .append_path_with_name(path, name)
        .map_err(|e| error(e.kind(), format!("cannot read `{}`: {e}", path.display())))
}

/// What is at the destination before the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    Directory,
    Other,
    /// Nothing, but its parent directory exists.
    Missing,
}

/// Where the top entry goes, by `docker cp`'s rules: into an existing directory (under its
/// own name, or merged into it for `DIR/.`), over an existing file, or as the new path
/// `dest`. `dest_is_dir_syntax`: the destination was written with a trailing `/`.
pub(crate) fn target_path(
    dest: &Path,
    dest_is_dir_syntax: bool,
    existing: Existing,
    source_is_dir: bool,
    source: &Source,
    top_name: &OsStr,
) -> io::Result<PathBuf> {
    let shown = dest.display();
    match existing {
        Existing::Directory if source_is_dir && source.contents_only => Ok(dest.to_path_buf()),
        Existing::Directory => Ok(dest.join(top_name)),
        Existing::Other if dest_is_dir_syntax => Err(error(
            io::ErrorKind::NotADirectory,
            format!("`{shown}` is not a directory"),
        )),
        Existing::Other if source_is_dir => Err(error(
            io::ErrorKind::AlreadyExists,
            format!("cannot copy a directory over the file `{shown}`"),
        )),
        Existing::Other => Ok(dest.to_path_buf()),
        Existing::Missing if dest_is_dir_syntax && !source_is_dir => Err(error(
            io::ErrorKind::NotFound,
            format!("destination directory `{shown}` does not exist"),
        )),
        Existing::Missing => Ok(dest.to_path_buf()),
    }
}

/// What is at `dest` (following links); fails when neither it nor its parent directory
/// exists.
pub(crate) fn existing(dest: &Path) -> io::Result<Existing> {
    match std::fs::metadata(dest) {
        Ok(meta) if meta.is_dir() => Ok(Existing::Directory),
        Ok(_) => Ok(Existing::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if std::fs::metadata(parent).is_ok_and(|m| m.is_dir()) {
                Ok(Existing::Missing)
            } else {
                Err(error(
                    io::ErrorKind::NotFound,
                    format!(
                        "destination directory `{}` does not exist",
                        parent.display()
                    ),
                ))
            }
        }
        Err(e) => Err(error(
            e.kind(),
            format!("cannot read `{}`: {e}", dest.display()),
        )),
    }
}

/// How the receiving side writes entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unpack {
    /// Owner of everything written (`Some((0, 0))` in a container); `None`: the process's.
    pub owner: Option<(u32, u32)>,
}

/// Reads a stream written by [`pack`] from `input` and writes it at `dest` (as the user
/// wrote it: `dest_text`) for `source`.
pub(crate) fn unpack(
    input: impl Read,
    dest_text: &str,
    source: &Source,
    options: Unpack,
) -> io::Result<()> {
    let dest = Path::new(dest_text);
    let existing = existing(dest)?;
    let mut archive = tar::Archive::new(input);
    let mut entries = archive.entries().map_err(broken_stream)?;
    let Some(first) = entries.next() else {
        return Err(error(
            io::ErrorKind::UnexpectedEof,
            "nothing was sent".into(),
        ));
    };
    let mut first = first.map_err(broken_stream)?;
    let top_name = first.path().map_err(broken_stream)?.into_owned();
    let top_name = top_name
        .file_name()
        .unwrap_or(OsStr::new("root"))
        .to_owned();
    let source_is_dir = first.header().entry_type().is_dir();
    let target = target_path(
        dest,
        dest_text.ends_with('/'),
        existing,
        source_is_dir,
        source,
        &top_name,
    )?;
    let mut writer = Writer {
        options,
        directories: Vec::new(),
    };
    writer.write(&mut first, &target)?;
    for entry in entries {
        let mut entry = entry.map_err(broken_stream)?;
        let relative = below_top(&entry.path().map_err(broken_stream)?)?;
        let path = safe_join(&target, &relative)?;
        writer.write(&mut entry, &path)?;
    }
    writer.finish()
}

/// A stream that ends early or makes no sense: the sending side failed (and reports why).
/// [`io::ErrorKind::UnexpectedEof`] marks it, see [`is_consequence`].
fn broken_stream(e: io::Error) -> io::Error {
    error(
        io::ErrorKind::UnexpectedEof,
        format!("the stream broke off: {e}"),
    )
}

/// Whether an error of one side only reflects the other side's failure: a write into a
/// closed stream, or a stream that ended early.
pub(crate) fn is_consequence(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
    )
}

/// An entry's path without its first component; only plain names are allowed.
fn below_top(path: &Path) -> io::Result<PathBuf> {
    let mut components = path.components();
    components.next();
    let mut relative = PathBuf::new();
    for component in components {
        match component {
            Component::Normal(name) => relative.push(name),
            Component::CurDir => {}
            _ => {
                return Err(error(
                    io::ErrorKind::InvalidData,
                    format!("refusing archive entry `{}`", path.display()),
                ))
            }
        }
    }
    Ok(relative)
}

/// `base/relative`, refusing a path that would pass through a symbolic link below `base`
/// (the stream never sends one, but a link written earlier must not redirect later entries).
fn safe_join(base: &Path, relative: &Path) -> io::Result<PathBuf> {
    let mut path = base.to_path_buf();
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        path.push(component);
        if components.peek().is_some()
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(error(
                io::ErrorKind::InvalidData,
                format!(
                    "refusing to write through the symbolic link `{}`",
                    path.display()
                ),
            ));
        }
    }
    Ok(path)
}

/// Writes entries; directories get their modes at the end, so that a read-only directory
/// can still be filled.
struct Writer {
    options: Unpack,
    /// Directories created, with their modes, in creation order.
    directories: Vec<(PathBuf, u32)>,
}

impl Writer {
    fn write<R: Read>(&mut self, entry: &mut tar::Entry<R>, path: &Path) -> io::Result<()> {
        let mode = entry.header().mode()? & 0o7777;
        if entry.header().entry_type().is_dir() {
            return self.directory(path, mode);
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_symlink()) {
            eprintln!(
                "warning: skipping `{}`: unsupported entry type",
                path.display()
            );
            return Ok(());
        }
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(error(
                io::ErrorKind::AlreadyExists,
                format!(
                    "cannot overwrite the directory `{}` with a file",
                    path.display()
                ),
            ));
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(false);
        entry
            .unpack(path)
            .map_err(|e| error(e.kind(), format!("cannot write `{}`: {e}", path.display())))?;
        if let Some((uid, gid)) = self.options.owner {
            chown(path, uid, gid)?;
            if kind.is_file() {
                // chown clears set-user-ID and set-group-ID bits: set the mode again.
                set_mode(path, mode)?;
            }
        }
        Ok(())
    }

    fn directory(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        match std::fs::symlink_metadata(path) {
            // Merging into a directory that is there already: its mode and owner stay.
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(error(
                    io::ErrorKind::AlreadyExists,
                    format!("cannot overwrite `{}` with a directory", path.display()),
                ))
            }
            Err(_) => {}
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|e| error(e.kind(), format!("cannot create `{}`: {e}", path.display())))?;
        if let Some((uid, gid)) = self.options.owner {
            chown(path, uid, gid)?;
        }
        self.directories.push((path.to_path_buf(), mode));
        Ok(())
    }

    /// Gives the directories created their modes, deepest first.
    fn finish(self) -> io::Result<()> {
        for (path, mode) in self.directories.iter().rev() {
            set_mode(path, *mode)?;
        }
        Ok(())
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| error(e.kind(), format!("cannot chown `{}`: {e}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| error(e.kind(), format!("cannot chmod `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn copy(source_text: &str, dest_text: &str) -> io::Result<()> {
        let source = Source::parse(source_text);
        let mut stream = Vec::new();
        pack(&source, &mut stream)?;
        unpack(&stream[..], dest_text, &source, Unpack { owner: None })
    }

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        std::fs::write(dir.join("sub/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("abs")).unwrap();
        set_mode(&dir.join("a.txt"), 0o640).unwrap();
        set_mode(&dir.join("sub"), 0o500).unwrap();
    }

    fn path(dir: &tempfile::TempDir, relative: &str) -> String {
        dir.path().join(relative).to_str().unwrap().to_string()
    }

    #[test]
    fn a_directory_to_a_new_path_is_created_there_with_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        tree(&dir.path().join("src"));
        copy(&path(&dir, "src"), &path(&dir, "copy")).unwrap();
        let copy = dir.path().join("copy");
        assert_eq!(
            std::fs::read_to_string(copy.join("sub/b.txt")).unwrap(),
            "b"
        );
        assert_eq!(
            std::fs::read_link(copy.join("link")).unwrap(),
            Path::new("a.txt")
        );
        assert_eq!(
            std::fs::read_link(copy.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        let mode = |p: &str| std::fs::metadata(copy.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("a.txt"), 0o640);
        assert_eq!(mode("sub"), 0o500);
        set_mode(&copy.join("sub"), 0o700).unwrap();
        set_mode(&dir.path().join("src/sub"), 0o700).unwrap();
    }

    #[test]
    fn into_an_existing_directory_goes_inside_unless_dot() {
        let dir = tempfile::tempdir().unwrap();
        tree(&dir.path().join("src"));
        std::fs::create_dir(dir.path().join("dest")).unwrap();
        copy(&path(&dir, "src"), &path(&dir, "dest")).unwrap();
        assert!(dir.path().join("dest/src/a.txt").is_file());
        copy(&path(&dir, "src/."), &path(&dir, "dest")).unwrap();
        assert!(dir.path().join("dest/a.txt").is_file());
        copy(&path(&dir, "src/a.txt"), &path(&dir, "dest/")).unwrap();
        for sub in ["src/sub", "dest/src/sub", "dest/sub"] {
            set_mode(&dir.path().join(sub), 0o700).unwrap();
        }
    }

    #[test]
    fn a_file_replaces_a_file_and_fails_on_missing_parents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("new"), "new").unwrap();
        std::fs::write(dir.path().join("old"), "old").unwrap();
        copy(&path(&dir, "new"), &path(&dir, "old")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("old")).unwrap(),
            "new"
        );
        let err = copy(&path(&dir, "new"), &path(&dir, "no/such/file")).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "destination directory `{}` does not exist",
                path(&dir, "no/such")
            )),
            "{err}"
        );
        let err = copy(&path(&dir, "new"), &path(&dir, "nodir/")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = copy(&path(&dir, "missing"), &path(&dir, "x")).unwrap_err();
        assert!(
            err.to_string().contains("no such file or directory"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let err = copy(&path(&dir, "src"), &path(&dir, "file")).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot copy a directory over the file"),
            "{err}"
        );
    }

    #[test]
    fn entries_that_leave_the_target_are_refused() {
        assert!(below_top(Path::new("top/../../etc")).is_err());
        assert_eq!(below_top(Path::new("top/a/b")).unwrap(), Path::new("a/b"));
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        assert!(safe_join(dir.path(), Path::new("link/passwd")).is_err());
        assert!(safe_join(dir.path(), Path::new("link")).is_ok());
    }
}
