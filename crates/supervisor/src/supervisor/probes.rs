//! The supervisor's side of the probes ([`crate::probe`]): running the ones due, turning
//! their results into events and container stops, and their statuses into `state.json`.

use std::time::{Duration, Instant};

use podrun_pod_model::state::EventKind;

use crate::probe::ProbeEvent;

use super::Supervisor;

impl Supervisor {
    /// Starts the probes that are due (none while the pod stops), and acts on what the
    /// finished ones found: an `Unhealthy` event per failure; a liveness or startup verdict
    /// of failure stops the container (its restart is the restart policy's business).
    pub(super) fn run_probes(&mut self) {
        if self.stopping {
            self.probes.stop_all();
        } else {
            self.probes.run_due(Instant::now());
        }
        for event in self.probes.take_events() {
            match event {
                ProbeEvent::Unhealthy { container, message } => {
                    let name = self.plan_of(container).name.clone();
                    tracing::info!(container = %name, "{message}");
                    self.state
                        .event(EventKind::Warning, "Unhealthy", Some(&name), message);
                }
                ProbeEvent::Kill {
                    container,
                    message,
                    grace,
                } => {
                    tracing::info!("{message}");
                    let pod_grace = Duration::from_secs(self.plan.termination_grace_period_seconds);
                    let why = message
                        .split_once(' ')
                        .and_then(|(_, rest)| rest.split_once(' '))
                        .map_or(message.clone(), |(_, rest)| rest.to_string());
                    self.stop_container(container, grace.unwrap_or(pod_grace), why);
                }
            }
        }
    }

    /// Puts the probes' statuses into the state about to be written: a container is ready
    /// only when its probes also say so (the supervisor's own `ready` covers postStart).
    pub(super) fn apply_probe_status(&mut self) {
        let states = self
            .state
            .containers
            .iter_mut()
            .chain(self.state.init_containers.iter_mut());
        for (index, state) in states.enumerate() {
            let (ready, started, probes) = self.probes.status(index);
            let running = state.running();
            state.ready = state.ready && running && ready;
            state.started = running && started;
            state.probes = probes;
        }
    }
}
