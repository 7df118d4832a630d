//! What `play` does for a file's Services and StatefulSets besides starting pods: it
//! stores the Services on the shared network (cluster IPs chosen, the holder told), and it
//! starts the pods of an OrderedReady StatefulSet one by one, each once the one before it
//! is ready.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use podrun_manifest::{Manifest, PodManifest};
use podrun_pod::wait::{judge, observe, Condition, Verdict};
use podrun_pod::PodDirs;
use podrun_podnet::cluster::ServiceRecord;
use podrun_podnet::services::ServiceFile;

use crate::context::Context;

/// The Services after `register`: all of them (for the pods' variables), and those this
/// play added (forgotten again if the play fails).
pub struct Registered {
    all: Vec<ServiceRecord>,
    added: Vec<(String, String)>,
}

impl Registered {
    pub fn all(&self) -> &[ServiceRecord] {
        &self.all
    }

    /// Removes the Services this play added (a failed play leaves nothing).
    pub fn undo(&self, context: &Context) {
        if self.added.is_empty() {
            return;
        }
        let Ok(paths) = network_paths(context) else {
            return;
        };
        let removed = ServiceFile::of(&paths).update(|services| {
            for (namespace, name) in &self.added {
                services.remove(namespace, name);
            }
        });
        if let Err(e) = removed {
            eprintln!("warning: cannot remove the file's Services again: {e}");
        }
        tell_holder(&paths);
    }
}

/// The shared network's directory (beside the pods' in podrun's runtime directory).
pub fn network_paths(context: &Context) -> anyhow::Result<podrun_podnet::Paths> {
    let runtime_dir = context
        .paths
        .runtime_dir
        .as_deref()
        .context("XDG_RUNTIME_DIR is not set: the shared network lives there")?;
    Ok(podrun_podnet::Paths::in_runtime_dir(runtime_dir))
}

/// Stores the file's Services (cluster IPs and node ports chosen; a Service played again
/// keeps its address) and tells a running holder. Nothing is stored when one is refused.
pub fn register(context: &Context, manifest: &Manifest) -> anyhow::Result<Registered> {
    if manifest.services.is_empty() {
        return Ok(Registered {
            all: Vec::new(),
            added: Vec::new(),
        });
    }
    let requests = manifest
        .services
        .iter()
        .map(|s| {
            podrun_planner::services::request(&s.service)
                .map_err(|e| anyhow::anyhow!("{}: {e}", s.source))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let paths = network_paths(context)?;
    paths.create()?;
    let (added, all) = ServiceFile::of(&paths).update(|services| {
        let existed: Vec<(String, String)> = services
            .services
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        services.add(&requests, &host_port_free).map(|records| {
            let added = records
                .iter()
                .map(|r| (r.namespace.clone(), r.name.clone()))
                .filter(|key| !existed.contains(key))
                .collect::<Vec<_>>();
            (added, services.services.clone())
        })
    })??;
    tell_holder(&paths);
    Ok(Registered { all, added })
}

/// Whether `port` of `protocol` can be bound on all the host's addresses now (as the
/// holder will, for a node port).
fn host_port_free(port: u16, protocol: podrun_network::Protocol) -> bool {
    let any = (std::net::Ipv4Addr::UNSPECIFIED, port);
    match protocol {
        podrun_network::Protocol::Tcp => std::net::TcpListener::bind(any).is_ok(),
        podrun_network::Protocol::Udp => std::net::UdpSocket::bind(any).is_ok(),
    }
}

/// Removes Services `names` (namespace, name) from the shared network; returns those that
/// were there.
pub fn unregister(
    context: &Context,
    names: &[(String, String)],
) -> anyhow::Result<Vec<ServiceRecord>> {
    let paths = network_paths(context)?;
    if names.is_empty() || !paths.services().exists() {
        return Ok(Vec::new());
    }
    let removed = ServiceFile::of(&paths).update(|services| {
        names
            .iter()
            .filter_map(|(namespace, name)| services.remove(namespace, name))
            .collect::<Vec<_>>()
    })?;
    tell_holder(&paths);
    Ok(removed)
}

/// A running holder reads the Services again; none running reads them when it starts.
fn tell_holder(paths: &podrun_podnet::Paths) {
    let told = podrun_podnet::start::connect_running(paths)
        .and_then(|holder| holder.map(|h| h.reload()).transpose());
    if let Err(e) = told {
        eprintln!("warning: the network holder did not take the new Services: {e}");
    }
}

/// How long a StatefulSet pod waits for the one before it (the controller waits forever;
/// play must end).
const PREDECESSOR_TIMEOUT: Duration = Duration::from_secs(300);

/// For pod N of an OrderedReady StatefulSet: waits until pod N-1 (started by this play) is
/// ready, as the StatefulSet controller does before it creates the next pod.
pub fn wait_for_predecessor(
    dirs: &PodDirs,
    pod: &PodManifest,
    started: &[(String, String)],
) -> anyhow::Result<()> {
    let (Some(ordinal), Some(owner)) = (pod.ordinal, &pod.owner) else {
        return Ok(());
    };
    if !pod.ordered || ordinal == 0 {
        return Ok(());
    }
    let previous = format!("{}-{}", owner.name, ordinal - 1);
    let namespace = pod.namespace();
    if !started
        .iter()
        .any(|(ns, name)| ns == namespace && *name == previous)
    {
        return Ok(());
    }
    eprintln!(
        "StatefulSet {}: waiting for pod {previous} to be ready before {} (OrderedReady)",
        owner.name,
        pod.name()
    );
    let deadline = Instant::now() + PREDECESSOR_TIMEOUT;
    loop {
        match judge(Condition::Ready, &observe(dirs, namespace, &previous)) {
            Verdict::Done => return Ok(()),
            Verdict::Failed(why) => bail!(
                "StatefulSet {}: pod {previous} did not become ready: {why}",
                owner.name
            ),
            Verdict::Waiting(why) if Instant::now() >= deadline => bail!(
                "StatefulSet {}: pod {previous} is not ready after {}s: {why}",
                owner.name,
                PREDECESSOR_TIMEOUT.as_secs()
            ),
            Verdict::Waiting(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
