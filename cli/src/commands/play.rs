//! `podrun play FILE`: run the pods of a manifest.

use std::collections::BTreeMap;
use std::os::fd::AsFd as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use podrun_manifest::{LoadOptions, Manifest, PodManifest, WorkloadKind};
use podrun_network::{Backend, PortMapping};
use podrun_planner::cgroup::HostCgroups;
use podrun_planner::network::{NetworkOptions, PodNetwork};
use podrun_planner::{pull_policy, PullPolicy};
use podrun_pod::owner::OwnerLink;
use podrun_pod::remove::{stop_and_remove, Lock, Stop, EXTRA_WAIT};
use podrun_pod::start::StartError;
use podrun_pod::{display_name, PodDirs};
use podrun_pod_model::state::PodPhase;
use podrun_registry::ImageName;
use podrun_store::ImageRecord;

use crate::context::{pod_dirs, Context};
use crate::output::Format;

#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The manifest: a YAML file of Pods (or Deployments, Jobs, ...), ConfigMaps and Secrets;
    /// `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: String,

    /// Treat unknown fields and fields podrun does not support yet as errors.
    #[arg(long)]
    strict: bool,

    /// The pods' network: slirp4netns or pasta (a user-mode network of the pod's own: a way
    /// out, published ports, DNS at 10.0.2.3; `private` is the default of the two), none
    /// (loopback only), host (the network podrun runs in) or shared (one network for all
    /// such pods of the user, 10.89.0.0/24 unless `[network] shared_subnet`: pods reach
    /// each other by address and by Service, cluster DNS). Default: `[network] default` in the config file; else shared
    /// for a file with Services (which need it), slirp4netns otherwise. A pod with
    /// `hostNetwork: true` always gets host.
    #[arg(long, value_name = "MODE")]
    network: Option<Backend>,

    /// Publish a container port on the host (repeatable); replaces the manifest's hostPort
    /// for the same containerPort and protocol. hostIP defaults to 0.0.0.0, the protocol to
    /// tcp. Without a host port (`-p 80`, `-p 127.0.0.1::80`) or with 0, a free one is
    /// picked (as `docker run -p 80`): `podrun port POD` shows it. With several pods in the
    /// file, a pod takes the ports it declares.
    #[arg(
        long,
        short = 'p',
        value_name = "[HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]",
        value_parser = parse_publish
    )]
    publish: Vec<PortMapping>,

    /// Also publish every containerPort that has no hostPort, on the same port number.
    #[arg(long)]
    publish_all: bool,

    /// Stay in the foreground: print every container's output behind a `pod/container |`
    /// prefix until every pod has completed (each container ended, none due to restart)
    /// and every Job is Complete or Failed (its pods retried as its backoffLimit allows),
    /// then remove the pods and Jobs. Exit status: 0 when every container of the pods of
    /// no Job succeeded and every Job completed, else the exit code of the container that
    /// failed first (128+N when killed by signal N), else 1 when a Job failed (its name and
    /// reason, BackoffLimitExceeded or DeadlineExceeded, are printed); 130/143
    /// when interrupted by SIGINT/SIGTERM (the pods are removed, with the grace period of
    /// --grace-period or --now if given; a second Ctrl-C kills them at once), 124 on
    /// --timeout.
    /// Run from a terminal, it attaches the terminal (raw mode, window size) to the first
    /// container with `stdin: true` and `tty: true`, like `kubectl run -it`.
    #[arg(long, conflicts_with = "wait_ready")]
    wait: bool,

    /// Return once every container is ready (its readiness probe passed, or it runs where it
    /// has none) and leave the pods running. A container that ends for good first, SIGINT,
    /// SIGTERM and --timeout remove the pods (exit 1, 130, 143, 124; a timeout prints the
    /// failing probes' last output).
    #[arg(long)]
    wait_ready: bool,

    /// With --wait or --wait-ready: how long the pods may take once started (e.g. 30s, 2m,
    /// 1h30m; a bare number is seconds); exit 124 when it is over.
    #[arg(long, value_name = "DURATION", value_parser = super::play_wait::parse_duration)]
    timeout: Option<Duration>,

    /// Stop and remove pods of the same names first, if they exist (with the grace period
    /// of --grace-period or --now if given).
    #[arg(long)]
    replace: bool,

    /// How to print the pods once started (with --wait-ready: once ready): table, wide, or
    /// json or yaml (a Kubernetes `v1` `PodList`, as `podrun ps -o json` prints it).
    #[arg(short, long, value_enum, default_value_t = Format::Table, conflicts_with = "wait")]
    output: Format,

    /// The stop of the pods play removes (--replace, and --wait or --wait-ready when
    /// interrupted or timed out).
    #[command(flatten)]
    stop: super::stop_options::StopArgs,

    /// Take the pods down when process PID ends, however it ends (also SIGKILL): for a test
    /// runner whose cleanup may never run. Each pod's supervisor watches a pidfd of PID (not
    /// its number, which the system may reuse) and stops the pod as `podrun down` does, with
    /// the grace period of --grace-period or --now, else the pod's. `ps -o wide` and
    /// `describe` show the owner.
    #[arg(long, value_name = "PID")]
    owner_pid: Option<i32>,
}

fn parse_publish(text: &str) -> Result<PortMapping, String> {
    podrun_network::parse_publish(text).map_err(|e| e.to_string())
}

/// `namespace`: `-n`, the namespace of the objects that name none.
pub fn run(args: PlayArgs, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    // Read once: the Jobs' controllers load the same text again.
    let (label, text) = super::play_job::read_text(&args.file)?;
    let manifest = podrun_manifest::load_str(
        &label,
        &text,
        &LoadOptions {
            strict: args.strict,
            namespace: namespace.map(str::to_string),
        },
    )?;
    // Before anything is pulled or started: a PID that is no process.
    let owner = args.owner_pid.map(podrun_pod::owner::open).transpose()?;
    for warning in &manifest.warnings {
        eprintln!("warning: {warning}");
    }
    tracing::debug!(pods = manifest.pods.len(), "manifest loaded");
    // The planner's checks that need no image, before anything is pulled (as `validate`).
    let volumes = super::validate::user_volumes();
    let errors = podrun_planner::check::check_all(&manifest, volumes.as_ref());
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    let context = Context::load()?;
    let dirs = pod_dirs(&context.paths)?;
    if args.timeout.is_some() && !args.wait && !args.wait_ready {
        bail!("--timeout needs --wait or --wait-ready");
    }
    let job_stop = Stop::new(args.stop.grace(), EXTRA_WAIT);
    super::play_job::check_absent(&dirs, &manifest, args.replace, &job_stop)?;
    if args.replace {
        // The file's pods, and its workloads' pods from an earlier play (other names).
        let names = super::down::pods_of_file(&dirs, &manifest);
        super::play_wait::replace(&dirs, &names, &args.stop)?;
    }
    refuse_running_workloads(&args.file, &dirs, &manifest)?;
    for pod in &manifest.pods {
        let (namespace, name) = (pod.namespace(), pod.name());
        if dirs.pod(namespace, name).exists() {
            bail!(
                "pod `{}` already exists; run `podrun down {}` first",
                display_name(namespace, name),
                down_name(namespace, name)
            );
        }
    }
    let network = NetworkOptions {
        backend: network_backend(&args, &context, &manifest)?,
        allow_host_loopback: context.config.network.allow_host_loopback,
        publish: args.publish,
        publish_all: args.publish_all,
        several_pods: manifest.pods.len() > 1,
    };
    let mut networks = manifest
        .pods
        .iter()
        .map(|pod| podrun_planner::network::plan(pod, &network))
        .collect::<Result<Vec<_>, _>>()?;
    for warning in networks.iter().flat_map(|n| &n.warnings) {
        eprintln!("warning: {warning}");
    }
    // Before anything is pulled or started: helper, TUN device and host ports.
    for warning in podrun_planner::network::preflight(&networks.iter().collect::<Vec<_>>())? {
        eprintln!("warning: {warning}");
    }
    // `--publish 80`: free host ports, held until the pods' helpers have bound them.
    let reserved = podrun_planner::network::reserve_free_ports(&mut networks)?;
    let cgroups = host_cgroups(&context, &manifest);
    warn_unenforced_limits(&cgroups, &manifest);
    let images = pull_images(&context, &manifest)?;
    // Before any pod starts: the pods' Service variables and DNS see the file's Services.
    let services = super::play_services::register(&context, &manifest)?;

    if args.wait || args.wait_ready {
        // A Ctrl-C from here on removes the pods before play ends.
        super::play_wait::catch_stop_signals();
    }
    let mut started: Vec<(String, String)> = Vec::new();
    let started_at = chrono::Utc::now();
    for (pod, network) in manifest.pods.iter().zip(networks) {
        let owner = owner.as_ref().map(|fd| podrun_pod::owner::OwnerLink {
            pidfd: fd.as_fd(),
            grace_period_seconds: args.stop.grace(),
        });
        let started_pod = super::play_services::wait_for_predecessor(&dirs, pod, &started)
            .and_then(|()| {
                start_pod(
                    &context,
                    &dirs,
                    &manifest,
                    pod,
                    &images,
                    network,
                    &cgroups,
                    owner,
                    services.all(),
                )
            });
        if let Err(error) = started_pod {
            // All or nothing: stop the pods of this file that did start, forget its new
            // Services.
            for (namespace, name) in started.iter().rev() {
                let stop = Stop::new(args.stop.grace(), EXTRA_WAIT);
                let _ = stop_and_remove(&dirs, namespace, name, Lock::Take(&|| {}), &stop);
            }
            services.undo(&context);
            return Err(error);
        }
        started.push((pod.namespace().to_string(), pod.name().to_string()));
    }
    drop(reserved);
    let jobs = super::play_job::WaitedJobs::of(&manifest);
    let controllers = super::play_job::start_controllers(
        &dirs,
        &manifest,
        (&label, &text),
        namespace,
        &network,
        started_at,
    );
    if let Err(error) = controllers {
        jobs.tear_down(&dirs, &job_stop);
        for (namespace, name) in started.iter().rev() {
            let _ = stop_and_remove(&dirs, namespace, name, Lock::Take(&|| {}), &job_stop);
        }
        services.undo(&context);
        return Err(error);
    }
    if args.wait {
        // The Jobs' pods are waited for through their Jobs.
        let plain: Vec<(String, String)> = manifest
            .pods
            .iter()
            .filter(|p| p.owner.as_ref().is_none_or(|o| o.kind != WorkloadKind::Job))
            .map(|p| (p.namespace().to_string(), p.name().to_string()))
            .collect();
        let (timeout, stop) = (args.timeout, &args.stop);
        return super::play_wait::wait_for_completion(&dirs, &plain, &jobs, timeout, stop);
    }
    if args.wait_ready {
        let (timeout, stop) = (args.timeout, &args.stop);
        let ready = super::play_wait::wait_until_ready(&dirs, &started, &jobs, timeout, stop);
        if let Some(code) = ready? {
            return Ok(code);
        }
    }
    let entries: Vec<_> = started
        .iter()
        .filter_map(|(namespace, name)| {
            podrun_pod::listing::entry(&dirs.runtime_dir(namespace, name))
        })
        .collect();
    super::ps::print_pods(&entries, args.output)?;
    Ok(report_failed_starts(&entries))
}

/// play returns once each pod's app containers run, or its init containers failed: then it
/// says so and fails, but leaves the pod (its logs and `podrun describe` tell why).
fn report_failed_starts(entries: &[podrun_pod::listing::PodEntry]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for entry in entries {
        let Some(state) = &entry.state else { continue };
        let failed_init = state
            .init_containers
            .iter()
            .find(|c| c.exit_code.is_some_and(|code| code != 0) && !c.running());
        if let Some(init) = failed_init {
            let shown = if entry.namespace == podrun_manifest::DEFAULT_NAMESPACE {
                entry.name.clone()
            } else {
                display_name(&entry.namespace, &entry.name)
            };
            let fate = if state.phase == PodPhase::Failed {
                "the pod failed (restartPolicy Never)"
            } else {
                "it is retried with the crash-loop back-off"
            };
            eprintln!(
                "error: pod `{}`: init container `{}` failed with exit code {}; {fate}\nhint: podrun logs {shown} -c {}; podrun describe {shown}; podrun down {shown}",
                display_name(&entry.namespace, &entry.name),
                init.name,
                init.exit_code.unwrap_or_default(),
                init.name,
            );
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// Pulls what the pull policies ask for (each image once), in a `podrun pull` child (pulling
/// needs podrun's user namespace, which this process does not enter: the supervisors it starts
/// enter their own). Returns the store record of every image, by the name the manifest gives.
pub(super) fn pull_images(
    context: &Context,
    manifest: &Manifest,
) -> anyhow::Result<BTreeMap<String, ImageRecord>> {
    let mut to_pull: Vec<(String, String)> = Vec::new(); // (image, who)
                                                         // Present images under `imagePullPolicy: Always`: pulled only if the registry has changed.
    let mut to_check: Vec<(String, String)> = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    // The registry logins of the imagePullSecrets of the pods that use each image.
    let mut logins: BTreeMap<String, BTreeMap<String, serde_json::Value>> = BTreeMap::new();
    for pod in &manifest.pods {
        let pod_name = display_name(pod.namespace(), pod.name());
        let pod_logins = manifest.pull_secret_auths(pod);
        let spec = pod.pod.spec.as_ref();
        let init = spec.iter().flat_map(|s| s.init_containers.iter().flatten());
        let init = init
            .enumerate()
            .map(|(i, c)| (format!("spec.initContainers[{i}]"), c));
        let apps = spec.iter().flat_map(|s| s.containers.iter()).enumerate();
        let apps = apps.map(|(i, c)| (format!("spec.containers[{i}]"), c));
        for (field, container) in init.chain(apps) {
            let who = format!(
                "pod `{pod_name}`: container `{}` ({field}.image)",
                container.name
            );
            let image = container.image.clone().unwrap_or_default();
            let name: ImageName = image
                .parse()
                .with_context(|| format!("{who}: invalid image name"))?;
            let present = context.store.image(&name.to_string())?.is_some();
            let policy =
                pull_policy(container, &field).map_err(|e| anyhow::anyhow!("{who}: {e}"))?;
            match policy {
                PullPolicy::Never if !present => bail!(
                    "{who}: image `{image}` is not in the store and imagePullPolicy is Never\nhint: pull it first: podrun pull {image}"
                ),
                PullPolicy::Always if present => to_check.push((image.clone(), who)),
                PullPolicy::Always => to_pull.push((image.clone(), who)),
                PullPolicy::IfNotPresent if !present => to_pull.push((image.clone(), who)),
                _ => {}
            }
            let image_logins = logins.entry(image.clone()).or_default();
            for (registry, entry) in &pod_logins {
                image_logins
                    .entry(registry.clone())
                    .or_insert_with(|| entry.clone());
            }
            names.insert(image, name.to_string());
        }
    }
    to_pull.extend(changed_images(context, &names, &logins, to_check));
    let mut pulled: Vec<String> = Vec::new();
    for (image, who) in &to_pull {
        if pulled.contains(image) {
            continue;
        }
        let authfile = match logins.get(image).filter(|l| !l.is_empty()) {
            Some(image_logins) => Some(PullLogins::write(context, image_logins)?),
            None => None,
        };
        let mut pull = Command::new("/proc/self/exe");
        pull.arg("pull");
        if let Some(file) = &authfile {
            pull.arg("--authfile").arg(&file.0);
        }
        let status = pull
            .args(["--", image])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("cannot run `podrun pull`")?;
        if !status.success() {
            bail!("{who}: cannot pull image `{image}` (see the error above)");
        }
        pulled.push(image.clone());
    }
    let mut records = BTreeMap::new();
    for (image, name) in names {
        let record = context
            .store
            .image(&name)?
            .with_context(|| format!("image `{image}` is not in the store after its pull"))?;
        records.insert(image, record);
    }
    Ok(records)
}

/// The images of `to_check` (present in the store, `imagePullPolicy: Always`) that must be
/// pulled again: those whose registry serves another manifest now, or that cannot be checked.
/// The check runs here, in-process and outside any user namespace (it asks for a manifest and
/// writes nothing), so an unchanged image costs one round trip instead of a `podrun pull`
/// child; any failure leaves the image to that child, which retries and explains.
fn changed_images(
    context: &Context,
    names: &BTreeMap<String, String>,
    logins: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    mut to_check: Vec<(String, String)>,
) -> Vec<(String, String)> {
    to_check.sort();
    to_check.dedup_by(|a, b| a.0 == b.0);
    if to_check.is_empty() {
        return to_check;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return to_check,
    };
    to_check
        .into_iter()
        .filter(|(image, _)| {
            let current = runtime.block_on(image_is_current(context, names, logins, image));
            match current {
                Ok(current) => !current,
                Err(e) => {
                    tracing::debug!("cannot check image `{image}` in-process: {e:#}");
                    true
                }
            }
        })
        .collect()
}

async fn image_is_current(
    context: &Context,
    names: &BTreeMap<String, String>,
    logins: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    image: &str,
) -> anyhow::Result<bool> {
    let name: ImageName = image.parse()?;
    let record = context
        .store
        .image(&names[image])?
        .context("not in the store")?;
    let mut credentials = context.credentials()?;
    if let Some(image_logins) = logins.get(image).filter(|l| !l.is_empty()) {
        let file = PullLogins::write(context, image_logins)?;
        credentials.override_with_file(&file.0)?;
    }
    let puller = podrun_images::Puller {
        credentials,
        config: context.config.clone(),
        store: context.store.clone(),
        unpack_options: Default::default(),
    };
    Ok(puller.is_current(&name, &record).await?)
}

/// A pod's imagePullSecrets logins written for one `podrun pull --authfile` (mode 0600, in
/// XDG_RUNTIME_DIR when there is one, which is a tmpfs), removed when dropped.
struct PullLogins(std::path::PathBuf);

impl PullLogins {
    fn write(
        context: &Context,
        logins: &BTreeMap<String, serde_json::Value>,
    ) -> anyhow::Result<PullLogins> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = context
            .paths
            .xdg_runtime_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(
            "podrun-pull-logins-{}-{n}.json",
            std::process::id()
        ));
        let text = serde_json::json!({ "auths": logins }).to_string();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let logins = PullLogins(path);
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", logins.0.display()))?;
        Ok(logins)
    }
}

impl Drop for PullLogins {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `owner`: the pidfd of `--owner-pid`, which the pod's supervisor inherits.
#[allow(clippy::too_many_arguments)]
pub(super) fn start_pod(
    context: &Context,
    dirs: &PodDirs,
    manifest: &Manifest,
    pod: &PodManifest,
    images: &BTreeMap<String, ImageRecord>,
    network: PodNetwork,
    cgroups: &HostCgroups,
    owner: Option<OwnerLink<'_>>,
    services: &[podrun_podnet::cluster::ServiceRecord],
) -> anyhow::Result<()> {
    let mut plan = podrun_planner::build(
        pod,
        manifest,
        &context.store,
        images,
        dirs,
        &network.plan,
        &context.paths.seccomp_dir,
        services,
    )?;
    podrun_planner::network::apply(&mut plan, network);
    plan.log_max_size = context.config.logs.max_size;
    plan.cgroup = cgroups.pod_cgroup(&pod.pod, &plan);
    // Before anything is created: a uid or gid the pod's user namespace lacks.
    podrun_planner::ids::check_ids(&plan, &podrun_userns::MappingPlan::for_current_user()?)?;
    match podrun_pod::start::start(dirs, &plan, owner) {
        Ok(()) => Ok(()),
        Err(StartError::Exists(pod)) => bail!(
            "pod `{pod}` already exists (or another `podrun play` is starting it); run `podrun down {}` first",
            down_name(&plan.namespace, &plan.name)
        ),
        Err(error) => Err(error.into()),
    }
}

/// A workload of the file whose pods run already (from an earlier play of it): playing it
/// again would add replicas, so it is refused as a second Pod of a name is.
fn refuse_running_workloads(file: &str, dirs: &PodDirs, manifest: &Manifest) -> anyhow::Result<()> {
    let running = super::down::pods_of_file(dirs, manifest);
    let owned: Vec<&(String, String)> = running
        .iter()
        .filter(|(namespace, name)| {
            !manifest
                .pods
                .iter()
                .any(|p| p.namespace() == namespace && p.name() == name)
        })
        .collect();
    if let Some((namespace, name)) = owned.first() {
        bail!(
            "the workloads of {file} run already (pod `{}`, and {} more); run `podrun down {file}` first, or play with --replace",
            display_name(namespace, name),
            owned.len() - 1
        );
    }
    Ok(())
}

/// The pods' network: `--network`, else the config file's default; else, for a file with
/// Services, the shared network (the only one where Services work), else slirp4netns.
fn network_backend(
    args: &PlayArgs,
    context: &Context,
    manifest: &Manifest,
) -> anyhow::Result<Backend> {
    let chosen = args.network.or(context.config.network.default);
    if manifest.services.is_empty() {
        return Ok(chosen.unwrap_or(Backend::DEFAULT));
    }
    match chosen {
        None | Some(Backend::Shared) => Ok(Backend::Shared),
        Some(other) => {
            let names: Vec<String> = manifest
                .services
                .iter()
                .map(|s| s.service.metadata.name.clone().unwrap_or_default())
                .collect();
            bail!(
                "{}: the Services of the file ({}) need the shared pod network, not {}\nhint: drop --network (and `[network] default`), or use --network shared",
                args.file,
                names.join(", "),
                other.name()
            )
        }
    }
}

/// Where this play's pods get their cgroups (see `podrun_planner::cgroup`). The host is only
/// looked at when a pod declares resources: no other pod gets a cgroup or a warning.
pub(super) fn host_cgroups(context: &Context, manifest: &Manifest) -> HostCgroups {
    let wanted = manifest
        .pods
        .iter()
        .any(|pod| podrun_planner::cgroup::pod_declares_resources(&pod.pod));
    if !wanted {
        return HostCgroups::Missing {
            reason: "no pod declares resources".into(),
        };
    }
    let host = podrun_hostcheck::Host::current(context.paths.clone());
    match podrun_hostcheck::delegated_cgroup(&host) {
        Ok(cgroup) => HostCgroups::Delegated {
            dir: cgroup.dir,
            path: cgroup.path,
            controllers: cgroup.controllers,
            user: host.user,
        },
        Err(none) => HostCgroups::Missing {
            reason: none.reason,
        },
    }
}

/// One warning per pod whose limits will not be enforced (a host property, so never an
/// error, not even with --strict), and one hint for them all.
fn warn_unenforced_limits(cgroups: &HostCgroups, manifest: &Manifest) {
    let warnings: Vec<String> = manifest
        .pods
        .iter()
        .filter_map(|pod| cgroups.unenforced(&display_name(pod.namespace(), pod.name()), &pod.pod))
        .collect();
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !warnings.is_empty() {
        eprintln!("hint: `podrun system check` says what this host lacks; see \"Resource limits\" in docs/user-guide.md");
    }
}

/// The pod as `podrun down` takes it: the bare name in the default namespace.
fn down_name(namespace: &str, name: &str) -> String {
    if namespace == podrun_manifest::DEFAULT_NAMESPACE {
        name.to_string()
    } else {
        display_name(namespace, name)
    }
}
