//! The pod's side of attaching, and other requests to the holder.
//!
//! A pod's process (later: its supervisor) does, while single-threaded:
//!
//! ```text
//! let holder = podrun_podnet::start::connect(&paths, holder_command)?; // in the host's namespaces
//! holder.enter_user_namespace()?;              // setns into U0, the holder's user namespace
//! unshare(CLONE_NEWUSER | CLONE_NEWNET)?;      // UA, a child of U0, and NA, owned by UA
//! let attachment = holder.attach(getpid(), "default/web", &wants)?; // the holder maps UA, plumbs NA
//! ```
//!
//! [`attach_self`] is exactly that. The connection is made first, in the host's namespaces,
//! because a process that has unshared a user namespace has no ids until its map is written
//! and could not open the socket in the user's 0700 runtime directory.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sched::{unshare, CloneFlags};

use crate::protocol::{self, Answer, Attachment, Request, Status, Wants};
use crate::{nsfd, PodnetError};

/// How long the holder may take to answer (an attach takes milliseconds).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the holder, for one request.
#[derive(Debug)]
pub struct HolderConnection {
    stream: UnixStream,
    holder_pid: u32,
}

impl HolderConnection {
    pub(crate) fn new(stream: UnixStream) -> Result<HolderConnection, PodnetError> {
        let (holder_pid, _) = protocol::peer(&stream)?;
        let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
        let _ = stream.set_write_timeout(Some(ANSWER_TIMEOUT));
        Ok(HolderConnection { stream, holder_pid })
    }

    /// The holder's pid (the process that listens on the socket).
    pub fn holder_pid(&self) -> u32 {
        self.holder_pid
    }

    /// Moves the calling process into the holder's user namespace U0, where it is root; its
    /// next `unshare(CLONE_NEWUSER)` makes a child of U0. The caller must be single-threaded.
    pub fn enter_user_namespace(&self) -> Result<(), PodnetError> {
        let userns = nsfd::open(&self.holder_pid.to_string(), "user")?;
        nsfd::enter(
            &userns,
            libc::CLONE_NEWUSER,
            "cannot enter the network holder's user namespace",
        )
    }

    /// Asks the holder to attach process `pid` (see [`crate::attach`]) and publish `ports`
    /// to its address; `identity` is what Services select it by and DNS names it by.
    pub fn attach(self, pid: u32, name: &str, wants: &Wants) -> Result<Attachment, PodnetError> {
        match self.request(&Request::Attach {
            pid,
            name: name.to_string(),
            ports: wants.ports.to_vec(),
            identity: wants.identity.cloned(),
            host_loopback: wants.host_loopback,
        })? {
            Answer::Attached(attachment) => Ok(attachment),
            other => Err(unexpected(other)),
        }
    }

    /// Asks the holder to detach process `pid` now (it also does when the process ends).
    pub fn detach(self, pid: u32) -> Result<(), PodnetError> {
        match self.request(&Request::Detach { pid })? {
            Answer::Detached => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Tells the holder that the pod of process `pid` became ready or stopped being.
    pub fn set_ready(self, pid: u32, ready: bool) -> Result<(), PodnetError> {
        match self.request(&Request::Ready { pid, ready })? {
            Answer::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Tells the holder that the Services changed.
    pub fn reload(self) -> Result<(), PodnetError> {
        match self.request(&Request::Reload)? {
            Answer::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The holder and its pods.
    pub fn status(self) -> Result<Status, PodnetError> {
        match self.request(&Request::Status)? {
            Answer::Status(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    fn request(mut self, request: &Request) -> Result<Answer, PodnetError> {
        protocol::send(&mut self.stream, request)?;
        match protocol::receive(&mut self.stream)? {
            Answer::Error(message) => Err(PodnetError::Refused(message)),
            answer => Ok(answer),
        }
    }
}

fn unexpected(answer: Answer) -> PodnetError {
    PodnetError::Protocol(format!("unexpected answer {answer:?}"))
}

/// Puts the calling process on the shared network: enters the holder's user namespace,
/// unshares a user and a network namespace, and has the holder attach it. Afterwards the
/// process is root of its own user namespace (with the holder's ids) and has `eth0` with
/// its address; `wants.ports` are published to that address. The caller must be
/// single-threaded.
pub fn attach_self(
    holder: HolderConnection,
    name: &str,
    wants: &Wants,
) -> Result<Attachment, PodnetError> {
    holder.enter_user_namespace()?;
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
        .map_err(PodnetError::sys("cannot create the pod's namespaces"))?;
    holder.attach(std::process::id(), name, wants)
}
