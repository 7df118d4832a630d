//! The network probes themselves: an HTTP(S) GET and a TCP connection, made from the pod's
//! network namespace (they run in a child of the supervisor, see [`super`]). Plain blocking
//! code with the probe's timeout on every step: the child is alone in its process.
//!
//! Messages are worded as the kubelet words them, so that they read the same in `podrun`'s
//! state as in `kubectl describe`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The User-Agent the kubelet sends (`kube-probe/<major>.<minor>`).
const USER_AGENT: &str = "kube-probe/1.33";

/// The most of a response's head read; the status line is all that counts.
const MAX_HEAD: usize = 16 * 1024;

/// `host:port` as Go's net.JoinHostPort writes it (IPv6 in brackets).
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|d| !d.is_zero())
}

/// Opens a TCP connection before `deadline`; the error as Go's dialer words it.
fn dial(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let target = join_host_port(host, port);
    let prefix = format!("dial tcp {target}");
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("dial tcp: lookup {host}: {e}"))?
        .collect();
    let mut last = format!("{prefix}: lookup {host}: no such host");
    for addr in addrs {
        let Some(left) = remaining(deadline) else {
            return Err(format!("{prefix}: i/o timeout"));
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{prefix}: {}", io_error_text(&e)),
        }
    }
    Err(last)
}

fn io_error_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connect: connection refused".into(),
        TimedOut | WouldBlock => "i/o timeout".into(),
        ConnectionReset => "read: connection reset by peer".into(),
        _ => match e.raw_os_error() {
            Some(libc::ENETUNREACH) => "connect: network is unreachable".into(),
            Some(libc::EHOSTUNREACH) => "connect: no route to host".into(),
            _ => e.to_string(),
        },
    }
}

/// A tcpSocket probe: success when the connection opens.
pub fn tcp_socket(host: &str, port: u16, timeout: Duration) -> Result<String, String> {
    dial(host, port, Instant::now() + timeout).map(|_| String::new())
}

/// What an httpGet probe asks for.
pub struct HttpGet<'a> {
    pub https: bool,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
}

impl HttpGet<'_> {
    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!(
            "{scheme}://{}{}",
            join_host_port(self.host, self.port),
            self.path
        )
    }

    /// The request: the kubelet's default headers, replaced by the probe's of the same name.
    fn request(&self) -> String {
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), join_host_port(self.host, self.port)),
            ("User-Agent".into(), USER_AGENT.into()),
            ("Accept".into(), "*/*".into()),
        ];
        for (name, _) in self.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        headers.extend(self.headers.iter().cloned());
        headers.push(("Connection".into(), "close".into()));
        let mut request = format!("GET {} HTTP/1.1\r\n", self.path);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request
    }

    /// Runs the probe: success for a status from 200 to 399 (redirects are not followed:
    /// the kubelet counts a redirect it cannot follow as success too).
    pub fn run(&self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let url = self.url();
        let fail = |text: String| format!("Get \"{url}\": {text}");
        let stream = dial(self.host, self.port, deadline).map_err(fail)?;
        let head = if self.https {
            let mut tls =
                super::tls::connect(self.host, stream).map_err(|e| fail(format!("tls: {e}")))?;
            let socket = tls_socket(&tls);
            exchange(&mut tls, socket, &self.request(), deadline)
        } else {
            let socket = stream.try_clone().map_err(|e| fail(e.to_string()))?;
            let mut stream = stream;
            exchange(&mut stream, socket, &self.request(), deadline)
        };
        let head = head.map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut
                || e.kind() == std::io::ErrorKind::WouldBlock
            {
                fail(
                    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                        .into(),
                )
            } else {
                fail(io_error_text(&e))
            }
        })?;
        let status = status_code(&head).ok_or_else(|| fail("malformed HTTP response".into()))?;
        if (200..400).contains(&status) {
            Ok(format!("HTTP probe succeeded with statuscode: {status}"))
        } else {
            Err(format!("HTTP probe failed with statuscode: {status}"))
        }
    }
}

fn tls_socket(tls: &super::tls::TlsStream) -> TcpStream {
    tls.sock.try_clone().expect("a socket can be duplicated")
}

/// Sends `request` and reads the response's head (to its empty line, or as much as comes),
/// each step bounded by `deadline`. `socket` is the TCP socket under `stream`, whose timeouts
/// are set.
fn exchange(
    stream: &mut impl ReadWrite,
    socket: TcpStream,
    request: &str,
    deadline: Instant,
) -> std::io::Result<Vec<u8>> {
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let set_timeouts = |socket: &TcpStream| -> std::io::Result<()> {
        let left = remaining(deadline).ok_or_else(timed_out)?;
        socket.set_read_timeout(Some(left))?;
        socket.set_write_timeout(Some(left))
    };
    set_timeouts(&socket)?;
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        set_timeouts(&socket)?;
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    Ok(head)
}

/// A stream that can be read and written (plain TCP or TLS).
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The status code of `HTTP/1.x NNN ...`.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers one request with `response` and returns what it received.
    fn serve_once(response: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buffer = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buffer).unwrap();
                got.extend_from_slice(&buffer[..n]);
            }
            conn.write_all(response.as_bytes()).unwrap();
            String::from_utf8(got).unwrap()
        });
        (port, handle)
    }

    fn get(port: u16, headers: &[(String, String)]) -> Result<String, String> {
        HttpGet {
            https: false,
            host: "127.0.0.1",
            port,
            path: "/healthz",
            headers,
        }
        .run(Duration::from_secs(5))
    }

    #[test]
    fn http_status_decides() {
        let (port, server) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        let headers = [("Host".to_string(), "example.test".to_string())];
        assert_eq!(
            get(port, &headers).unwrap(),
            "HTTP probe succeeded with statuscode: 204"
        );
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /healthz HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Host: example.test\r\n"), "{request}");
        assert!(!request.contains("Host: 127.0.0.1"), "{request}");
        assert!(request.contains("User-Agent: kube-probe/"), "{request}");

        let (port, _server) = serve_once("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            get(port, &[]).unwrap_err(),
            "HTTP probe failed with statuscode: 404"
        );
    }

    #[test]
    fn refused_and_silent_servers_fail_like_the_kubelet() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert_eq!(
            get(port, &[]).unwrap_err(),
            format!("Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
        assert_eq!(
            tcp_socket("127.0.0.1", port, Duration::from_secs(1)).unwrap_err(),
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
        // Accepts (the backlog) but never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        assert!(tcp_socket("127.0.0.1", port, Duration::from_secs(1)).is_ok());
        let started = Instant::now();
        let err = HttpGet {
            https: false,
            host: "127.0.0.1",
            port,
            path: "/",
            headers: &[],
        }
        .run(Duration::from_millis(300))
        .unwrap_err();
        assert!(err.contains("context deadline exceeded"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
    }
}
