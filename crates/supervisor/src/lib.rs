//! podrun's pod supervisor: the long-lived, single-threaded process that holds one pod
//! (`podrun supervisor <namespace>/<name>`, started by `podrun play`). It reads the pod's
//! plan (podrun-pod-model's [`Plan`](podrun_pod_model::plan::Plan), made by
//! podrun-planner), becomes the pod sandbox, runs the containers, their hooks and probes,
//! writes their logs and the pod's `state.json`, restarts them as the kubelet would, and
//! stops the pod and removes its directories when it is told to (SIGTERM).
//!
//! The crate's entry point is [`run`]. Its modules:
//!
//! * `supervisor`: the process and its main loop; `supervisor/start.rs` (the sandbox, the
//!   pod's files, a container's start), `supervisor/lifecycle.rs` (init containers,
//!   sidecars, hooks, restarts, stops), `supervisor/probes.rs`, `supervisor/deadline.rs`
//!   (`activeDeadlineSeconds`).
//! * `signals`: the self-pipe the main loop polls.
//! * The rules, pure and tested on a fake clock: `restart` (restart or not, the back-off,
//!   `backoff`), `stop` (a container's stop: preStop, stop signal, SIGKILL), `hooks`'
//!   `outcome` (what a hook's end means), `probe`'s workers (thresholds, verdicts, schedule)
//!   and the active deadline (`supervisor/deadline.rs`).
//! * `watchdog`: ends the pod's processes if the supervisor dies.
//! * `owner`: `play --owner-pid`'s pidfd, whose end stops the pod.
//! * Features, each taking its own part of the plan: `network` (the helper and the
//!   sandbox's network), `dns` (/etc/hosts, /etc/resolv.conf), `volumes`, `security`
//!   (sysctls, fsGroup), `cgroup` (a container's cgroup), `workdir` (a missing working
//!   directory), `logs` (a container's log), `termination` (termination messages),
//!   `attach` (stdin, terminals and the attach endpoint), `hooks` (running a hook),
//!   `probe` (running probes and judging them).
//! * podrun-footprint (a crate of its own, also used by the network holder): the memory the
//!   supervisor gives back once its pod runs.

mod attach;
mod backoff;
mod cgroup;
mod dns;
mod hooks;
mod logs;
mod network;
mod owner;
mod probe;
mod restart;
mod security;
mod shared_network;
mod signals;
mod stop;
mod supervisor;
mod termination;
mod volumes;
mod watchdog;
mod workdir;

pub use owner::OwnerFd;
pub use supervisor::{run, stop_signal};

pub(crate) use podrun_pod_model::PodError;
