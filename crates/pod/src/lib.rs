//! Pod operations: what podrun's commands do to pods from outside the supervisor.
//!
//! A pod is planned by podrun-planner, run by podrun-supervisor (one process per pod), and
//! described by the files both write (podrun-pod-model). This crate is the third role: the
//! commands a user (or a test script) runs against pods, each reading those files and
//! signalling the supervisor:
//!
//! * [`start`]: `play`'s last step: the pod's directories and lock, the supervisor started
//!   as `podrun supervisor <ns>/<name>`, its ready answer awaited.
//! * [`remove`]: the one stop-and-remove (`down`, `play --replace`, `play --wait`'s end or
//!   interruption, a failed `play`), over [`stop`]'s signalling and [`lock`]'s pod lock.
//! * [`listing`]: the pods in the runtime directory, for `ps`, `describe` and completions.
//! * [`logs`]: reading a container's log as it grows, across rotations (`logs -f`, `play
//!   --wait`).
//! * [`exec`] and [`cp`]: finding a running container; copying files between it and the
//!   host.
//! * [`attach`]: a terminal attached to a container through the supervisor's socket.
//! * [`wait`]: `podrun wait`'s conditions (ready, completed, deleted), judged on a pod's
//!   state.
//! * [`job`]: a Job controller's decisions (pods to start and stop, the Job's outcome),
//!   pure, fed a clock.
//! * [`owner`]: `play --owner-pid`: the process whose end takes the pods down (a pidfd).
//! * [`volumes`]: the named volumes of PersistentVolumeClaims, with the pods that mount
//!   them (`volume ls`, `inspect`, `rm`, `down --volumes`).

pub mod attach;
pub mod cp;
pub mod exec;
pub mod job;
pub mod listing;
pub mod lock;
pub mod logs;
pub mod owner;
pub mod remove;
pub mod start;
pub mod stop;
pub mod volumes;
pub mod wait;

pub use podrun_pod_model::{display_name, PodDirs, PodError, PodLayout};
