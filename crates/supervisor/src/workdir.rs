//! A `workingDir` the image does not have is created before the container starts, as
//! containerd and CRI-O (runc) do: owned by root, mode 0755. It is made in the container's
//! writable layer (the overlay's upper directory), after following the image's symbolic
//! links, so that a path through a link (`/var/run` → `/run`) creates the directory where
//! the link points instead of hiding the link.

use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use crate::PodError;

/// Symbolic links followed at most, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// What a path of the image is, looked up in its layers top-down.
enum Entry {
    Directory,
    Link(PathBuf),
    /// A file, or whited out, or nowhere.
    Other,
    Missing,
}

fn lookup(layers: &[PathBuf], path: &Path) -> Entry {
    let relative = path.strip_prefix("/").unwrap_or(path);
    for layer in layers {
        let candidate = layer.join(relative);
        let Ok(meta) = std::fs::symlink_metadata(&candidate) else {
            continue;
        };
        let kind = meta.file_type();
        return if kind.is_dir() {
            Entry::Directory
        } else if kind.is_symlink() {
            std::fs::read_link(&candidate)
                .map(Entry::Link)
                .unwrap_or(Entry::Other)
        } else if kind.is_char_device() && meta.len() == 0 {
            // A whiteout: deleted in this layer.
            Entry::Missing
        } else {
            Entry::Other
        };
    }
    Entry::Missing
}

/// Makes `cwd` exist in the root filesystem made of `upper` over `lowers` (top first).
/// Nothing is done when it exists already or runs into a file (the runtime then reports
/// the error).
pub fn ensure(lowers: &[PathBuf], upper: &Path, cwd: &str) -> Result<(), PodError> {
    if cwd.is_empty() || cwd == "/" {
        return Ok(());
    }
    let mut layers = vec![upper.to_path_buf()];
    layers.extend(lowers.iter().cloned());
    let mut pending: Vec<PathBuf> = components(Path::new(cwd));
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    let mut missing = Vec::new();
    while let Some(name) = pending.first().cloned() {
        pending.remove(0);
        if name == Path::new("..") {
            resolved.pop();
            continue;
        }
        let next = resolved.join(&name);
        match lookup(&layers, &next) {
            Entry::Directory => resolved = next,
            Entry::Link(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Ok(());
                }
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                let mut expanded = components(&target);
                expanded.append(&mut pending);
                pending = expanded;
            }
            Entry::Other => return Ok(()),
            Entry::Missing => {
                missing.push(name);
                missing.append(&mut pending);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut path = upper.join(resolved.strip_prefix("/").unwrap_or(&resolved));
    for name in missing {
        if name == Path::new("..") {
            path.pop();
            continue;
        }
        path.push(name);
    }
    create(&path)
}

/// The normal components of a path, `..` kept (resolved against the links followed).
fn components(path: &Path) -> Vec<PathBuf> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect()
}

fn create(path: &Path) -> Result<(), PodError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(PodError::io(format!(
            "cannot create the working directory {}",
            path.display()
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> (tempfile::TempDir, Vec<PathBuf>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        let bottom = dir.path().join("bottom");
        let upper = dir.path().join("upper");
        for d in [&top, &bottom, &upper] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(bottom.join("run")).unwrap();
        std::fs::create_dir_all(bottom.join("var")).unwrap();
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::os::unix::fs::symlink("../run", bottom.join("var/run")).unwrap();
        std::os::unix::fs::symlink("/srv/real", top.join("app")).unwrap();
        std::fs::write(top.join("file"), "x").unwrap();
        (dir, vec![top, bottom], upper)
    }

    #[test]
    fn a_missing_directory_is_made_in_the_upper_layer() {
        let (_dir, lowers, upper) = layers();
        ensure(&lowers, &upper, "/srv/app/data").unwrap();
        assert!(upper.join("srv/app/data").is_dir());
        ensure(&lowers, &upper, "/etc").unwrap();
        assert!(!upper.join("etc").exists(), "existing: nothing made");
    }

    #[test]
    fn links_of_the_image_are_followed() {
        let (_dir, lowers, upper) = layers();
        ensure(&lowers, &upper, "/var/run/app").unwrap();
        assert!(upper.join("run/app").is_dir());
        assert!(!upper.join("var").exists(), "the link is not hidden");
        ensure(&lowers, &upper, "/app/x").unwrap();
        assert!(upper.join("srv/real/x").is_dir());
    }

    #[test]
    fn a_file_in_the_way_is_left_to_the_runtime() {
        let (_dir, lowers, upper) = layers();
        ensure(&lowers, &upper, "/file/sub").unwrap();
        assert!(!upper.join("file").exists());
    }
}
