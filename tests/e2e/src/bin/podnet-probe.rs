//! A stand-in for podrun's processes on the shared pod network (crates/podnet), for
//! tests/podnet.rs: the holder, and "pods" that are plain processes on it.
//!
//! ```text
//! podnet-probe holder              the holder process (the others start it as needed)
//! podnet-probe ensure              find or start the holder; print its status (JSON)
//! podnet-probe status              the running holder's status (JSON), or `none`
//! podnet-probe leases              the live address leases (JSON)
//! podnet-probe serve NAME PORT     a pod: attach, print the attachment (JSON), then answer
//!                                  every TCP connection on PORT with `hello from NAME`
//! podnet-probe fetch NAME ADDR     a pod: attach, print the attachment (JSON), then
//!                                  `answer: TEXT` read from ADDR (host:port), retried 10 s
//! podnet-probe misattach HOW       ask to be attached the wrong way and print the refusal:
//!                                  `sibling` (unshared from the host's user namespace, not
//!                                  the holder's) or `unshared-nothing` (in the holder's)
//! ```
//!
//! The network's directory is `$XDG_RUNTIME_DIR/podrun/network`; `PODNET_LINGER_MS` and
//! `PODNET_HOST_LOOPBACK=1` configure the holder.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use podrun_podnet::{ipam::LeaseFile, start, HolderConfig, Paths};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let paths = paths();
    let code = match args.as_slice() {
        ["holder"] => podrun_podnet::holder::main(&paths, &config()),
        ["ensure"] => {
            let status = start::connect(&paths, holder_command)
                .and_then(|holder| holder.status())
                .unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&status).unwrap());
            0
        }
        ["status"] => {
            match start::connect_running(&paths).unwrap_or_else(|e| fail(e)) {
                Some(holder) => {
                    let status = holder.status().unwrap_or_else(|e| fail(e));
                    println!("{}", serde_json::to_string(&status).unwrap());
                }
                None => println!("none"),
            }
            0
        }
        ["leases"] => {
            let leases = LeaseFile::of(&paths).live().unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&leases).unwrap());
            0
        }
        ["serve", name, port] => {
            attach(&paths, name);
            let listener =
                TcpListener::bind(("0.0.0.0", port.parse().unwrap())).unwrap_or_else(|e| fail(e));
            for mut stream in listener.incoming().flatten() {
                let _ = writeln!(stream, "hello from {name}");
            }
            0
        }
        ["fetch", name, address] => {
            attach(&paths, name);
            println!("answer: {}", fetch(address));
            0
        }
        ["misattach", how] => {
            let holder = start::connect(&paths, holder_command).unwrap_or_else(|e| fail(e));
            match *how {
                "sibling" => nix::sched::unshare(
                    nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNET,
                )
                .unwrap_or_else(|e| fail(e)),
                _ => holder.enter_user_namespace().unwrap_or_else(|e| fail(e)),
            }
            match holder.attach(std::process::id(), how, &Default::default()) {
                Ok(attachment) => fail(format!("attached: {attachment:?}")),
                Err(e) => println!("refused: {e}"),
            }
            0
        }
        _ => {
            eprintln!(
                "usage: podnet-probe holder|ensure|status|leases|serve NAME PORT|fetch NAME ADDR|misattach HOW"
            );
            2
        }
    };
    std::process::exit(code);
}

fn paths() -> Paths {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").expect("XDG_RUNTIME_DIR is set");
    Paths::in_runtime_dir(&std::path::Path::new(&runtime).join("podrun"))
}

fn config() -> HolderConfig {
    let mut config = HolderConfig::default();
    if let Some(ms) = std::env::var("PODNET_LINGER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.linger = Duration::from_millis(ms);
    }
    config.allow_host_loopback = std::env::var("PODNET_HOST_LOOPBACK").as_deref() == Ok("1");
    config
}

fn holder_command() -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.arg("holder");
    command
}

/// Puts this process on the network and prints what it got.
fn attach(paths: &Paths, name: &str) {
    let holder = start::connect(paths, holder_command).unwrap_or_else(|e| fail(e));
    let attachment = podrun_podnet::client::attach_self(holder, name, &Default::default())
        .unwrap_or_else(|e| fail(e));
    println!("{}", serde_json::to_string(&attachment).unwrap());
}

fn fetch(address: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream =
                TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text.trim().to_string())
        })();
        match attempt {
            Ok(text) if !text.is_empty() => return text,
            other if Instant::now() > deadline => fail(format!("{address}: {other:?}")),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn fail(error: impl std::fmt::Display) -> ! {
    eprintln!("podnet-probe: {error}");
    std::process::exit(1)
}
