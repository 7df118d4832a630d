//! The supervisor's start: the pod sandbox (user, mount, network, IPC and UTS namespaces, the
//! network helper, the watchdog, the shared pid namespace), the pod's files (/etc files,
//! /dev/shm, logs, volumes), and the start of each container (its mounts, log pipes, stdin,
//! directories and runner).

use std::path::Path;
use std::time::Instant;

use podrun_pod_model::plan::Plan;
use podrun_pod_model::process::{title, WATCHDOG_ROLE};
use podrun_pod_model::state::{ContainerState, ContainerStatus, PodPhase, PodState};
use podrun_pod_model::{display_name, now_rfc3339, remove_tree, PodError, PodLayout};
use podrun_runtime::{BindMount, ContainerConfig, Mount, PodPidNamespace};

use super::{Ready, Run, Supervisor};
use crate::logs::ContainerLog;
use crate::network::PodNetwork;

/// Enters podrun's user namespace unless this process is in one already (it inherits the one
/// `podrun play` entered) or is host root.
fn ensure_user_namespace() -> Result<(), PodError> {
    if podrun_userns::is_root_in_initial_namespace() {
        return Ok(());
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let initial = map.split_whitespace().nth(2) == Some("4294967295");
    if !initial {
        return Ok(());
    }
    let plan =
        podrun_userns::MappingPlan::for_current_user().map_err(|e| PodError::msg(e.to_string()))?;
    podrun_userns::enter_user_namespace(&plan).map_err(|e| PodError::msg(e.to_string()))
}

/// Gives the supervisor a mount namespace of its own, so that the pod's memory volumes are
/// mounted only here (and in the containers, whose runners fork from here) and vanish with
/// the supervisor, however it ends.
fn private_mount_namespace() -> Result<(), PodError> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| PodError::msg(format!("cannot create the pod's mount namespace: {e}")))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| PodError::msg(format!("cannot make the pod's mounts private: {e}")))
}

/// What the network setup needs of the plan.
fn pod_network(plan: &Plan) -> PodNetwork<'_> {
    PodNetwork {
        who: format!("pod `{}`", display_name(&plan.namespace, &plan.name)),
        runtime_dir: &plan.runtime_dir,
        hostname: &plan.hostname,
        network: &plan.network,
        ports: &plan.ports,
    }
}

/// A container's state before its first start.
fn waiting(container: &podrun_pod_model::plan::ContainerPlan, reason: &str) -> ContainerState {
    ContainerState {
        name: container.name.clone(),
        image: container.image.clone(),
        state: ContainerStatus::Waiting,
        reason: Some(reason.into()),
        message: None,
        ready: false,
        sidecar: container.sidecar,
        started: false,
        probes: Vec::new(),
        pid: None,
        id: String::new(),
        exit_code: None,
        started_at: None,
        finished_at: None,
        restart_count: 0,
        termination_message: None,
    }
}

/// Creates `path` (and its parents) with mode `mode`.
fn mkdir(path: &Path, mode: u32) -> Result<(), PodError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)
        .map_err(PodError::io(format!("cannot create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(PodError::io(format!("cannot chmod {}", path.display())))
}

impl Supervisor {
    pub(super) fn start(dir: &Path, ready: Ready) -> Result<Supervisor, (PodError, Ready)> {
        let mut ready = Some(ready);
        Self::start_inner(dir, &mut ready).map_err(|e| (e, ready.take().unwrap_or(Ready(None))))
    }

    fn start_inner(dir: &Path, ready: &mut Option<Ready>) -> Result<Supervisor, PodError> {
        let mut plan = Plan::read(dir)?;
        let layout = PodLayout::new(dir, &plan.data_dir);
        let pod = display_name(&plan.namespace, &plan.name);
        let signals = crate::signals::install()?;
        let network = pod_network(&plan);
        // pasta's launcher is forked before the pod's user namespace exists (pasta must join
        // it from outside); dropped unreleased (the launcher exits) if anything fails.
        let early = crate::network::prepare_helper_outside_userns(&network)?;
        let attachment = if plan.network.backend == podrun_network::Backend::Shared {
            Some(crate::shared_network::join(dir, &pod, &plan)?)
        } else {
            ensure_user_namespace()?;
            None
        };
        let pod_ip = attachment.as_ref().map(|a| a.address.to_string());
        let cluster_dns = attachment.as_ref().map(|a| crate::dns::ClusterDns {
            nameserver: a.gateway.to_string(),
            namespace: plan.namespace.clone(),
        });
        let shared_network = attachment
            .as_ref()
            .and_then(|_| crate::shared_network::SharedNetwork::new(dir));
        tracing::debug!("in the pod's user namespace");
        private_mount_namespace()?;
        // Forked while still in the host's network namespace, released once the pod's exists.
        let helper = crate::network::prepare_helper(&network, early)?;
        crate::network::become_sandbox(&network)
            .map_err(|e| PodError::msg(format!("pod `{pod}`: {e}")))?;
        crate::security::apply_sysctls(&plan.security.sysctls)
            .map_err(|e| PodError::msg(format!("pod `{pod}`: {e}")))?;
        tracing::debug!("pod sandbox made");
        let helper = crate::network::start_helper(&network, helper)?;
        if let Some(address) = &pod_ip {
            // The downward API's status.podIP, before any container starts (`exec` reads
            // the plan too).
            if plan.fill_in_pod_ip(address) {
                plan.write()?;
            }
        }
        // Before any process of the pod that could outlive this one.
        let watchdog =
            crate::watchdog::Watchdog::start(&title(WATCHDOG_ROLE, &plan.namespace, &plan.name))?;
        let pid_namespace = if plan.share_process_namespace {
            Some(
                podrun_runtime::create_pod_pid_namespace()
                    .map_err(|e| PodError::msg(format!("pod `{pod}`: {e}")))?,
            )
        } else {
            None
        };
        let user_namespace = std::fs::read_link("/proc/self/ns/user")
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let scale = crate::backoff::scale_from_env();
        let first_wait = if plan.init_containers.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let runs = plan
            .containers
            .iter()
            .map(|c| (c, first_wait))
            .chain(plan.init_containers.iter().map(|c| (c, "PodInitializing")))
            .map(|(c, reason)| Run {
                log: ContainerLog::new(layout.container_log(&c.name), plan.log_max_size),
                state: waiting(c, reason),
                restart_at: None,
                backoff: crate::backoff::Backoff::new(scale),
                finished: None,
                stopping: None,
            })
            .collect();
        let state = PodState {
            pod: plan.name.clone(),
            namespace: plan.namespace.clone(),
            uid: plan.uid.clone(),
            supervisor_pid: std::process::id() as i32,
            user_namespace,
            pod_ip,
            created: plan.created.clone(),
            restart_policy: plan.restart_policy,
            termination_grace_period_seconds: plan.termination_grace_period_seconds,
            phase: PodPhase::Pending,
            terminating: false,
            reason: None,
            message: None,
            containers: Vec::new(),
            init_containers: Vec::new(),
            events: Vec::new(),
            owner: None,
            controller: plan.controller.clone(),
        };
        // In the supervisor's container order: the app containers, then the init containers.
        let probes = crate::probe::Prober::new(plan.all_containers(), layout.libcontainer_root());
        let attach = crate::attach::Attachments::new(
            dir,
            plan.all_containers().map(|c| (c.name.clone(), c.stdio)),
        )?;
        let mut supervisor = Supervisor {
            active_deadline: None,
            probes,
            layout,
            plan,
            runs,
            pid_namespace,
            network: helper,
            watchdog,
            signals,
            state,
            stopping: false,
            pod_deadline: None,
            stop_grace: None,
            ready: ready.take().unwrap_or(Ready(None)),
            start_error: None,
            apps_started: false,
            pod_failed: false,
            hooks: Vec::new(),
            written: None,
            attach,
            owner: None,
            shrinker: podrun_footprint::Shrinker::default(),
            shared_network,
            cluster_dns,
        };
        supervisor.arm_active_deadline(Instant::now());
        if let Err(e) = supervisor.prepare().and_then(|()| supervisor.advance()) {
            supervisor.abort();
            *ready = Some(std::mem::replace(&mut supervisor.ready, Ready(None)));
            return Err(e);
        }
        supervisor.write_state();
        Ok(supervisor)
    }

    /// The pod's files: /etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/shm, volumes, logs.
    fn prepare(&mut self) -> Result<(), PodError> {
        use std::os::unix::fs::PermissionsExt;
        let etc = self.layout.etc_dir();
        mkdir(&etc, 0o755)?;
        let write = |name: &str, text: String| -> Result<(), PodError> {
            let path = etc.join(name);
            std::fs::write(&path, text)
                .map_err(PodError::io(format!("cannot write {}", path.display())))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(PodError::io(format!("cannot chmod {}", path.display())))
        };
        let plan = &self.plan;
        let backend = plan.network.backend;
        write(
            "hosts",
            crate::dns::hosts_file(
                &plan.dns,
                &plan.hostname,
                backend,
                self.state.pod_ip.as_deref(),
            )?,
        )?;
        write("hostname", format!("{}\n", plan.hostname))?;
        let policy = crate::dns::policy_resolv_conf(backend, &plan.dns, self.cluster_dns.as_ref());
        write("resolv.conf", crate::dns::resolv_conf(&policy, &plan.dns))?;
        mkdir(&self.layout.shm_dir(), 0o1777)?;
        mkdir(&self.layout.logs_dir(), 0o755)?;
        mkdir(&self.layout.libcontainer_root(), 0o700)?;
        for volume in &plan.volumes.empty_dirs {
            // 0777 (Kubernetes' default) unless `emptyDir.mode` says otherwise.
            mkdir(
                &self.layout.data_volume(volume),
                plan.volumes.empty_dir_mode(volume),
            )?;
        }
        for volume in &plan.volumes.memory {
            let mode = plan.volumes.empty_dir_modes.get(&volume.name).copied();
            crate::volumes::mount_memory_volume(
                &self.layout.data_volume(&volume.name),
                volume,
                mode,
            )?;
        }
        crate::volumes::prepare(&plan.volumes)?;
        if let Some(fs_group) = plan.security.fs_group {
            for volume in &plan.volumes.empty_dirs {
                let dir = self.layout.data_volume(volume);
                crate::security::apply_fs_group(&dir, fs_group, false)?;
            }
            for volume in &plan.volumes.files {
                crate::security::apply_fs_group(&volume.dir, fs_group, true)?;
            }
            for claim in &plan.volumes.claims {
                crate::security::apply_fs_group(&claim.data_dir(), fs_group, claim.read_only)?;
            }
        }
        Ok(())
    }

    /// The libcontainer id of the container's current run:
    /// `<namespace>_<pod>_<container>_<uid's first 8 hex digits>_<restart count>`.
    fn container_id(&self, index: usize) -> String {
        let uid: String = self
            .plan
            .uid
            .chars()
            .filter(|c| *c != '-')
            .take(8)
            .collect();
        format!(
            "{}_{}_{}_{}_{}",
            self.plan.namespace,
            self.plan.name,
            self.plan_of(index).name,
            uid,
            self.runs[index].state.restart_count
        )
    }

    pub(super) fn start_container(&mut self, index: usize) -> Result<(), PodError> {
        let (starting, id) = self.spawn_container(index)?;
        self.finish_start(index, starting, id)
    }

    /// Starts several containers at once: their runners work in parallel (each spends most
    /// of its time compiling the seccomp filter and mounting the root filesystem), then each
    /// is recorded, in order.
    pub(super) fn start_containers(
        &mut self,
        indices: &[usize],
    ) -> Vec<(usize, Result<(), PodError>)> {
        let spawned: Vec<_> = indices
            .iter()
            .map(|&index| (index, self.spawn_container(index)))
            .collect();
        spawned
            .into_iter()
            .map(|(index, spawned)| {
                let result =
                    spawned.and_then(|(starting, id)| self.finish_start(index, starting, id));
                (index, result)
            })
            .collect()
    }

    /// What names a container in messages: the pod and the container.
    fn container_what(&self, index: usize) -> String {
        let pod = display_name(&self.plan.namespace, &self.plan.name);
        format!("pod `{pod}`: container `{}`", self.plan_of(index).name)
    }

    /// Prepares the container's mounts, log pipes and directories and forks its runner.
    fn spawn_container(
        &mut self,
        index: usize,
    ) -> Result<(podrun_runtime::StartingContainer, String), PodError> {
        let container = self.plan_of(index).clone();
        let what = self.container_what(index);
        let with_what = |e: &dyn std::fmt::Display| PodError::msg(format!("{what}: {e}"));
        // The pipes' write ends go into `config` and are closed here when the runner has
        // started the container (or failed to).
        let (stdout, stderr) = self.runs[index].log.new_run().map_err(|e| with_what(&e))?;
        let mut mounts = Vec::new();
        for mount in &container.mounts {
            mounts.push(Mount::Bind(BindMount {
                source: crate::volumes::mount_source(mount).map_err(|e| with_what(&e))?,
                destination: mount.destination.clone(),
                readonly: mount.readonly,
            }));
        }
        for file in ["hosts", "hostname", "resolv.conf"] {
            mounts.push(Mount::Bind(BindMount {
                source: self.layout.etc_dir().join(file),
                destination: format!("/etc/{file}"),
                readonly: false,
            }));
        }
        let container_dir = self.layout.container_dir(&container.name);
        let termination_log = crate::termination::file_path(&container_dir);
        crate::termination::prepare_file(&termination_log).map_err(|e| with_what(&e))?;
        mounts.push(Mount::Bind(BindMount {
            source: termination_log,
            destination: container.termination_message.path.clone(),
            readonly: false,
        }));
        if self.runs[index].state.restart_count > 0 {
            // The kubelet restarts a container as a new container of the same image: its
            // writable layer starts empty again (only volumes keep data).
            for dir in ["upper", "work"] {
                remove_tree(&container_dir.join(dir)).map_err(|e| with_what(&e))?;
            }
        }
        crate::workdir::ensure(
            &container.lower_dirs,
            &container_dir.join("upper"),
            &container.cwd,
        )
        .map_err(|e| with_what(&e))?;
        let id = self.container_id(index);
        let config = ContainerConfig {
            id: id.clone(),
            state_root: self.state_root(),
            bundle_dir: container_dir.join("bundle"),
            lower_dirs: container.lower_dirs.clone(),
            upper_dir: container_dir.join("upper"),
            work_dir: container_dir.join("work"),
            args: container.args.clone(),
            env: container.env.clone(),
            cwd: container.cwd.clone(),
            uid: container.uid,
            gid: container.gid,
            additional_gids: container.additional_gids.clone(),
            mounts,
            join_namespaces_of: std::process::id() as i32,
            pid_namespace: self.pid_namespace.as_ref().map(PodPidNamespace::path),
            shm_dir: Some(self.layout.shm_dir()),
            stdout,
            stderr,
            stdin: self.attach.new_run(index)?,
            hostname: None,
            readonly_rootfs: container.security.read_only_root_filesystem,
            privileges: container.security.privileges().map_err(|e| with_what(&e))?,
            host_network: self.plan.network.backend == podrun_network::Backend::Host,
            cgroup: crate::cgroup::container_cgroup(
                self.plan.cgroup.as_ref(),
                &container.name,
                &container.limits,
            ),
        };
        let starting = podrun_runtime::spawn_container(config)
            .map_err(|e| PodError::msg(format!("{what} (image `{}`): {e}", container.image)))?;
        Ok((starting, id))
    }

    /// Waits for the container's runner and records the running container.
    fn finish_start(
        &mut self,
        index: usize,
        starting: podrun_runtime::StartingContainer,
        id: String,
    ) -> Result<(), PodError> {
        let started = starting.wait().map_err(|e| {
            let image = &self.plan_of(index).image;
            PodError::msg(format!(
                "{} (image `{image}`): {e}",
                self.container_what(index)
            ))
        })?;
        let pid = started.pid;
        self.attach.started(index, started.terminal);
        tracing::info!(container = %self.plan_of(index).name, pid, "started");
        let run = &mut self.runs[index];
        run.state.state = ContainerStatus::Running;
        run.state.pid = Some(pid);
        run.state.id = id;
        run.state.started_at = Some(now_rfc3339());
        run.state.finished_at = None;
        run.restart_at = None;
        let id = run.state.id.clone();
        self.probes.container_started(index, &id, Instant::now());
        self.container_started(index);
        Ok(())
    }
}
