//! The TUN device both user-mode helpers open from inside the pod's user namespace.

use std::os::unix::fs::MetadataExt;

use crate::NetworkError;

pub const TUN_DEVICE: &str = "/dev/net/tun";

/// Checks that `/dev/net/tun` can be opened for reading and writing by this process, which
/// must be in the pod's user namespace (where the helper will open it).
///
/// The device belongs to host root, which is unmapped in a rootless user namespace, so only
/// its "other" permission bits count there: Debian 12 ships it 0600 (other distributions
/// 0666), and then the helper fails with EACCES. Checking here turns slirp4netns' terse
/// `open("/dev/net/tun"): Permission denied` into an error that says what to do.
pub fn check_tun_device() -> Result<(), NetworkError> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN_DEVICE)
    {
        Ok(_) => Ok(()),
        Err(source) => Err(NetworkError::TunUnusable {
            path: TUN_DEVICE.into(),
            detail: tun_detail(&source),
            source,
        }),
    }
}

/// Why opening the device failed, in words the user can act on.
fn tun_detail(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => match std::fs::metadata(TUN_DEVICE) {
            Ok(meta) => format!(
                " (it is mode {:04o}, owned by host root, which has no id in the pod's user namespace, so only its permissions for others apply)",
                meta.mode() & 0o7777
            ),
            Err(_) => String::new(),
        },
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            " (the kernel's tun driver is missing: modprobe tun)".into()
        }
        _ => String::new(),
    }
}

/// Whether a helper's output says it could not open the TUN device (the fallback when the
/// check above passed but the helper still failed, e.g. the mode changed in between).
pub fn log_says_tun_denied(log: &str) -> bool {
    log.lines()
        .any(|line| line.contains(TUN_DEVICE) && line.contains("Permission denied"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_slirp4netns_tun_errors() {
        assert!(log_says_tun_denied(
            "open(\"/dev/net/tun\"): Permission denied\nchild failed(1)\n"
        ));
        assert!(!log_says_tun_denied("sent tapfd=5 for tap0\n"));
    }

    #[test]
    fn denial_explains_the_mode() {
        let detail = tun_detail(&std::io::Error::from_raw_os_error(libc::EACCES));
        if std::path::Path::new(TUN_DEVICE).exists() {
            assert!(detail.contains("mode 0"), "{detail}");
        }
    }
}
