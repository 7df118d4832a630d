//! `udp-echo PORT`: answers every datagram on PORT with its own bytes. The test images have
//! no UDP server (busybox-static's `nc` has no `-u`), so the UDP Service test mounts this
//! binary into a pod of the Debian image (same glibc as the host that built it).

use std::net::UdpSocket;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: udp-echo PORT");
    let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind");
    let mut buffer = [0u8; 2048];
    loop {
        if let Ok((length, peer)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..length], peer);
        }
    }
}
