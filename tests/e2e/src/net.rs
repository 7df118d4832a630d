//! Traffic to pods from the host, over loopback only: free host ports to publish, and HTTP
//! requests to them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port that is free on the host now, to publish a pod's port on.
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768-60999): a port the kernel hands out for
    // port 0 may be taken as the source port of another test's connection before the pod
    // binds it (seen once: slirp_add_hostfwd failed).
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 1_000) as u16 * 10;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 2_000;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// `GET /` on `addr`, retried until an answer comes (a published port accepts connections
/// before the server in the pod listens), at most 30 s. Returns the whole response.
pub fn http_get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })();
        match attempt {
            Ok(response) if !response.is_empty() => return response,
            other => assert!(
                Instant::now() < deadline,
                "no HTTP answer on {addr}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
