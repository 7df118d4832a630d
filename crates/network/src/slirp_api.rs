//! slirp4netns' API socket, spoken by podrun itself: one JSON request per connection, one JSON
//! answer, then slirp4netns closes the connection.
//!
//! Forwarding ports through this API (rather than a proxy process in front of the pod, like
//! podman's rootlessport) keeps the real client address: libslirp rewrites only loopback
//! clients (to 10.0.2.2).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::{NetworkError, PortMapping};

/// How long slirp4netns may take to answer one request.
const API_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the socket `name` in directory `dir`.
///
/// A Unix socket address holds at most 107 bytes of path, and a pod's runtime directory can be
/// longer than that (long XDG_RUNTIME_DIR, namespace and pod names). Going through an `O_PATH`
/// descriptor of the directory (`/proc/self/fd/N/NAME`) keeps the address short whatever the
/// directory's length.
pub fn connect_in(dir: &Path, name: &str) -> std::io::Result<UnixStream> {
    let dir_fd = open_path(dir)?;
    UnixStream::connect(format!("/proc/self/fd/{}/{name}", dir_fd.as_raw_fd()))
}

/// An `O_PATH` descriptor of the directory `dir`.
pub(crate) fn open_path(dir: &Path) -> std::io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: open returned a fresh descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Sends one request and returns the answer's JSON.
fn request(dir: &Path, name: &str, body: &serde_json::Value) -> std::io::Result<serde_json::Value> {
    let mut stream = connect_in(dir, name)?;
    stream.set_read_timeout(Some(API_TIMEOUT))?;
    stream.set_write_timeout(Some(API_TIMEOUT))?;
    stream.write_all(body.to_string().as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    serde_json::from_slice(&answer).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not a JSON answer ({e}): {}",
                String::from_utf8_lossy(&answer)
            ),
        )
    })
}

/// The `add_hostfwd` request for `mapping`.
pub fn hostfwd_request(mapping: &PortMapping) -> serde_json::Value {
    serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": mapping.protocol.name(),
            "host_addr": mapping.host_ip.to_string(),
            "host_port": mapping.host_port,
            "guest_port": mapping.container_port,
        }
    })
}

/// Publishes `mapping` through the API socket `name` in `dir`.
pub fn add_hostfwd(dir: &Path, name: &str, mapping: &PortMapping) -> Result<(), NetworkError> {
    add_hostfwd_to(dir, name, mapping, None).map(|_| ())
}

/// Publishes `mapping` to `guest_addr` (slirp4netns' own guest address, 10.0.2.100, when
/// `None`: the shared network's holder gives a pod's address, which it routes to). Returns
/// the forward's id, for [`remove_hostfwd`].
pub fn add_hostfwd_to(
    dir: &Path,
    name: &str,
    mapping: &PortMapping,
    guest_addr: Option<std::net::Ipv4Addr>,
) -> Result<Option<u64>, NetworkError> {
    let error = |answer: String| NetworkError::Hostfwd {
        addr: mapping.host_ip,
        port: mapping.host_port,
        container_port: mapping.container_port,
        protocol: mapping.protocol,
        answer,
    };
    let mut body = hostfwd_request(mapping);
    if let Some(guest) = guest_addr {
        body["arguments"]["guest_addr"] = guest.to_string().into();
    }
    let answer = request(dir, name, &body)
        .map_err(|e| error(format!("(no answer on {}: {e})", dir.join(name).display())))?;
    if let Some(value) = answer.get("return") {
        return Ok(value.get("id").and_then(|id| id.as_u64()));
    }
    let description = answer
        .pointer("/error/desc")
        .and_then(|d| d.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| answer.to_string());
    Err(error(description))
}

/// Removes the forward `id` (from [`add_hostfwd_to`]) through the API socket `name` in
/// `dir`; the host port is free again afterwards.
pub fn remove_hostfwd(dir: &Path, name: &str, id: u64) -> std::io::Result<()> {
    let body = serde_json::json!({"execute": "remove_hostfwd", "arguments": {"id": id}});
    let answer = request(dir, name, &body)?;
    if answer.get("return").is_some() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "slirp4netns refused to remove forward {id}: {answer}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;
    use std::os::unix::net::UnixListener;

    fn mapping() -> PortMapping {
        PortMapping {
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 18080,
            container_port: 80,
            protocol: Protocol::Udp,
        }
    }

    #[test]
    fn request_has_slirp4netns_fields() {
        let request = hostfwd_request(&mapping());
        assert_eq!(request["execute"], "add_hostfwd");
        assert_eq!(request["arguments"]["proto"], "udp");
        assert_eq!(request["arguments"]["host_addr"], "127.0.0.1");
        assert_eq!(request["arguments"]["host_port"], 18080);
        assert_eq!(request["arguments"]["guest_port"], 80);
    }

    /// A fake slirp4netns answering one request with `answer`, in a directory whose path is
    /// too long for a plain socket address.
    fn serve_once(answer: &'static str) -> (tempfile::TempDir, std::path::PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("d".repeat(120));
        std::fs::create_dir(&dir).unwrap();
        let dir_fd = open_path(&dir).unwrap();
        let listener =
            UnixListener::bind(format!("/proc/self/fd/{}/api.sock", dir_fd.as_raw_fd())).unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            stream.read_to_end(&mut request).unwrap();
            assert!(String::from_utf8_lossy(&request).contains("add_hostfwd"));
            stream.write_all(answer.as_bytes()).unwrap();
        });
        (root, dir)
    }

    #[test]
    fn success_and_errors_over_a_long_path() {
        let (_root, dir) = serve_once("{\"return\": {\"id\": 1}}");
        assert!(dir.as_os_str().len() > 108);
        add_hostfwd(&dir, "api.sock", &mapping()).unwrap();

        let (_root, dir) = serve_once(
            "{\"error\": {\"desc\": \"bad request: add_hostfwd: slirp_add_hostfwd failed\"}}",
        );
        let err = add_hostfwd(&dir, "api.sock", &mapping())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host port 18080/udp on 127.0.0.1")
                && err.contains("slirp_add_hostfwd failed"),
            "{err}"
        );
    }

    #[test]
    fn no_helper_is_an_error_naming_the_socket() {
        let root = tempfile::tempdir().unwrap();
        let err = add_hostfwd(root.path(), "api.sock", &mapping())
            .unwrap_err()
            .to_string();
        assert!(err.contains("api.sock"), "{err}");
    }
}
