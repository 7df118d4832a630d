//! Free space where podrun keeps images and containers' writable layers.

use std::path::Path;

use crate::{Check, Host, Status};

/// Below this, a pull of an ordinary image may not fit.
pub(crate) const LOW_SPACE: u64 = 1 << 30;

pub(crate) fn check(host: &Host) -> Check {
    let check = Check::new("store-space", "free space in the store", false);
    let dir = &host.paths.data_dir;
    let existing = dir
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/"));
    let stat = match nix::sys::statvfs::statvfs(existing) {
        Ok(stat) => stat,
        Err(e) => {
            return check.warning(
                format!(
                    "cannot measure the free space of {}: {e}",
                    existing.display()
                ),
                None,
            )
        }
    };
    let free = stat.blocks_available() * stat.fragment_size();
    let detail = format!("{} MiB free for {}", free >> 20, dir.display());
    match space_status(free) {
        Status::Ok => check.ok(detail),
        _ => check.warning(
            format!(
                "{detail}: less than {} MiB, pulls may fail (podrun keeps 256 MiB free)",
                LOW_SPACE >> 20
            ),
            Some("podrun images && podrun rmi IMAGE".into()),
        ),
    }
}

pub(crate) fn space_status(free: u64) -> Status {
    if free < LOW_SPACE {
        Status::Warning
    } else {
        Status::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn low_space_is_a_warning() {
        assert_eq!(space_status(LOW_SPACE - 1), Status::Warning);
        assert_eq!(space_status(LOW_SPACE), Status::Ok);
        let fake = FakeHost::new();
        let result = check(&fake.host);
        assert!(result.detail.contains("MiB free for"), "{}", result.detail);
    }
}
