//! `podrun`: run Kubernetes pods on one host, rootless. This binary only parses arguments,
//! sets up the process (user namespace, async runtime, logging) and calls the crates that do
//! the work; each subcommand lives in its own module under `commands/`.

mod commands;
mod complete;
mod context;
mod kube;
mod output;
mod progress;
mod version;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// Run Kubernetes pods on one host, rootless.
#[derive(Debug, Parser)]
#[command(name = "podrun", version = version::short(), about, long_about = None)]
struct Cli {
    /// Show debug logs and the full chain of causes of an error (also: PODRUN_LOG=debug).
    #[arg(long, global = true)]
    debug: bool,

    /// The namespace of the pods named without one (`NAME` rather than `NAMESPACE/NAME`), as
    /// kubectl's -n: `ps` lists only its pods, `play`, `validate` and `down FILE` put the
    /// objects that name no namespace in it. Without it, a bare NAME is the pod of that name
    /// in `default`, else the only pod of that name in any namespace.
    #[arg(
        short = 'n',
        long,
        global = true,
        value_name = "NS",
        value_parser = commands::parse_namespace,
        add = complete::namespace()
    )]
    namespace: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pull images from their registries into the local store.
    Pull(commands::pull::PullArgs),
    /// List the images in the local store.
    Images(commands::images::ImagesArgs),
    /// Remove images, and the layers no remaining image uses.
    Rmi(commands::rmi::RmiArgs),
    /// Run a command in podrun's user namespace (as `podman unshare` does), where the store's
    /// files show the owners the images gave them.
    Unshare(commands::unshare::UnshareArgs),
    /// Run the pods of a Kubernetes manifest.
    Play(commands::play::PlayArgs),
    /// Check a manifest as `play --strict` does (Kubernetes' rules, unknown and unsupported
    /// fields, references between documents, probes, hooks and limits as podrun plans them),
    /// without pulling or running anything.
    Validate(commands::validate::ValidateArgs),
    /// List pods.
    Ps(commands::ps::PsArgs),
    /// Show a pod's containers (state, exit codes, restarts, probes) and events.
    Describe(commands::describe::DescribeArgs),
    /// Print a container's output (stdout and stderr), joined into lines.
    Logs(commands::logs::LogsArgs),
    /// Run a command in a running container of a pod.
    Exec(commands::exec::ExecArgs),
    /// Copy files and directories between the host and a running container.
    Cp(commands::cp::CpArgs),
    /// Print a pod's published ports (host address and port of each container port), as
    /// `docker port` does.
    Port(commands::port::PortArgs),
    /// Stop pods and remove them.
    Down(commands::down::DownArgs),
    /// List, inspect and remove the named volumes of PersistentVolumeClaims, which outlive
    /// `down` (`down --volumes` removes a file's).
    Volume(commands::volume::VolumeArgs),
    /// Wait until pods are ready, have completed or are deleted (as `kubectl wait`).
    Wait(commands::wait::WaitArgs),
    /// Print the shell script that completes podrun's commands, options, pods and containers.
    Completions(commands::completions::CompletionsArgs),
    /// Write the man pages (scripts/gen-man.sh).
    #[command(name = "__man", hide = true)]
    Man(commands::man::ManArgs),
    /// Check the host for what rootless pods need (`system check`); show the effective
    /// configuration and where each value came from (`system config`).
    System(commands::system::SystemArgs),
}

impl Command {
    /// The name of a command that has nothing to do with pods, so `-n` would mean nothing to
    /// it (it is refused rather than ignored).
    fn without_pods(&self) -> Option<&'static str> {
        match self {
            Command::Pull(_) => Some("pull"),
            Command::Images(_) => Some("images"),
            Command::Rmi(_) => Some("rmi"),
            Command::Unshare(_) => Some("unshare"),
            Command::System(_) => Some("system"),
            Command::Man(_) => Some("man"),
            _ => None,
        }
    }

    /// Commands that create or delete files owned by the image's users must run inside the
    /// user namespace; it has to be entered while the process is still single-threaded.
    fn needs_user_namespace(&self) -> bool {
        matches!(
            self,
            Command::Pull(_) | Command::Rmi(_) | Command::Unshare(_)
        )
    }
}

fn main() -> ExitCode {
    if let Some(code) = run_supervisor_if_asked() {
        return code;
    }
    if let Some(code) = run_network_holder_if_asked() {
        return code;
    }
    if let Some(code) = run_job_controller_if_asked() {
        return code;
    }
    // Before anything is printed: the shell's completion scripts call podrun back.
    complete::complete_if_asked();
    let cli = parse_arguments();
    output::install_panic_hook(cli.debug);
    init_logging(cli.debug);
    match run(cli.command, cli.namespace.as_deref()) {
        Ok(code) => code,
        Err(error) => {
            output::print_error(&error, cli.debug);
            ExitCode::FAILURE
        }
    }
}

/// A pod's supervisor is this binary started by `podrun play` (podrun-pod's `start`) as
/// `podrun supervisor <namespace>/<name>`, with its pod directory and ready pipe in the
/// environment: not a user command, so it has no subcommand of its own.
fn run_supervisor_if_asked() -> Option<ExitCode> {
    use podrun_pod_model::process::{
        OWNER_FD_ENV, OWNER_GRACE_ENV, READY_FD_ENV, SUPERVISOR_DIR_ENV, SUPERVISOR_ROLE,
    };
    let dir = std::env::var_os(SUPERVISOR_DIR_ENV)?;
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new(SUPERVISOR_ROLE)) {
        return None;
    }
    let fd_of = |var: &str| std::env::var(var).ok().and_then(|fd| fd.parse().ok());
    let ready_fd = fd_of(READY_FD_ENV);
    let owner = fd_of(OWNER_FD_ENV).map(|fd| podrun_supervisor::OwnerFd {
        fd,
        grace_period_seconds: std::env::var(OWNER_GRACE_ENV)
            .ok()
            .and_then(|g| g.parse().ok()),
    });
    // Still single-threaded: nothing else reads the environment. Hooks and probes run as
    // children of the supervisor and must not see these.
    std::env::remove_var(SUPERVISOR_DIR_ENV);
    std::env::remove_var(READY_FD_ENV);
    std::env::remove_var(OWNER_FD_ENV);
    std::env::remove_var(OWNER_GRACE_ENV);
    output::install_panic_hook(false);
    init_logging(false);
    let code = podrun_supervisor::run(std::path::Path::new(&dir), ready_fd, owner);
    Some(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The shared pod network's holder is this binary started by a pod's supervisor
/// (podrun-supervisor's `network`) as `podrun network-holder`, with the network's directory
/// in the environment; a hidden role, like the supervisor's.
fn run_network_holder_if_asked() -> Option<ExitCode> {
    use podrun_pod_model::process::{NETWORK_DIR_ENV, NETWORK_HOLDER_ROLE, NETWORK_LINGER_ENV};
    let dir = std::env::var_os(NETWORK_DIR_ENV)?;
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new(NETWORK_HOLDER_ROLE)) {
        return None;
    }
    let mut config = podrun_podnet::HolderConfig::default();
    // The user's config file: the way out (a broken file was refused by play already).
    let file = podrun_config::Paths::from_env()
        .ok()
        .and_then(|paths| podrun_config::Config::load(&paths.config_file, false).ok());
    if let Some(podrun_network::Backend::Pasta) =
        file.as_ref().and_then(|f| f.network.shared_uplink)
    {
        config.uplink = podrun_podnet::UplinkKind::Pasta;
    }
    if let Some(upstream) = file
        .as_ref()
        .and_then(|f| f.network.dns_upstream().ok().flatten())
    {
        config.forward_dns_to(upstream);
    }
    // Checked where play loaded the file; the default if it changed since.
    if let Some(subnet) = file
        .as_ref()
        .and_then(|f| f.network.shared_subnet.as_deref())
        .and_then(|text| podrun_podnet::Subnet::for_pods(text).ok())
    {
        config.subnet = subnet;
    }
    if let Some(ms) = std::env::var(NETWORK_LINGER_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
    {
        config.linger = std::time::Duration::from_millis(ms);
    }
    // Still single-threaded: the holder forks and enters its user namespace.
    std::env::remove_var(NETWORK_DIR_ENV);
    std::env::remove_var(NETWORK_LINGER_ENV);
    output::install_panic_hook(false);
    init_logging(false);
    let paths = podrun_podnet::Paths {
        dir: std::path::PathBuf::from(dir),
    };
    let code = podrun_podnet::holder::main(&paths, &config);
    Some(ExitCode::from(code.clamp(0, 255) as u8))
}

/// A Job's controller is this binary started by `podrun play` (commands::job_controller)
/// as `podrun job-controller <namespace>/<name>`, with the Job's directory in the
/// environment; a hidden role, like the supervisor's.
fn run_job_controller_if_asked() -> Option<ExitCode> {
    use commands::job_state::{CONTROLLER_ROLE, JOB_DIR_ENV};
    let dir = std::env::var_os(JOB_DIR_ENV)?;
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new(CONTROLLER_ROLE)) {
        return None;
    }
    // Still single-threaded. The pods it starts must not see it.
    std::env::remove_var(JOB_DIR_ENV);
    output::install_panic_hook(false);
    init_logging(false);
    Some(commands::job_controller::main(std::path::Path::new(&dir)))
}

/// Parses the command line; `--version` (not `-V`) also lists the helpers, which takes
/// running them, so only then.
fn parse_arguments() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    if version::asked_for(&args) {
        command = command.long_version(version::long());
    }
    let matches = command.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Runs `command`; `namespace` is the global `-n`.
fn run(command: Command, namespace: Option<&str>) -> anyhow::Result<ExitCode> {
    if let (Some(name), Some(_)) = (command.without_pods(), namespace) {
        anyhow::bail!("-n/--namespace: `podrun {name}` has no pods, so no namespace applies to it");
    }
    let mapping = if command.needs_user_namespace() {
        Some(context::enter_user_namespace()?)
    } else {
        None
    };
    // Commands with nothing async run without a runtime: `down` signals pods from this
    // (initial) user namespace.
    match command {
        // Replaces this process.
        Command::Unshare(args) => return commands::unshare::run(&args),
        Command::Play(args) => return commands::play::run(args, namespace),
        Command::Validate(args) => return commands::validate::run(&args, namespace),
        Command::Ps(args) => return commands::ps::run(args, namespace),
        Command::Port(args) => return commands::port::run(args, namespace),
        Command::Describe(args) => return commands::describe::run(args, namespace),
        Command::Logs(args) => return commands::logs::run(args, namespace),
        Command::Down(args) => return commands::down::run(args, namespace),
        Command::Wait(args) => return commands::wait::run(args, namespace),
        Command::Volume(args) => return commands::volume::run(args, namespace),
        // Forks probe children (user and mount namespaces): must stay single-threaded.
        Command::System(args) => return commands::system::run(args),
        // Joins the pod's user namespace: must stay single-threaded.
        Command::Exec(args) => return commands::exec::run(args, namespace),
        // Forks a child that joins the container's namespaces: must stay single-threaded.
        Command::Cp(args) => return commands::cp::run(args, namespace),
        Command::Completions(args) => return commands::completions::run(args),
        Command::Man(args) => return commands::man::run(args),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            Command::Pull(args) => commands::pull::run(args, mapping).await,
            Command::Images(args) => commands::images::run(args),
            Command::Rmi(args) => commands::rmi::run(args),
            _ => unreachable!("handled above"),
        }
    })
}

fn init_logging(debug: bool) {
    let filter = if debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_env("PODRUN_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(output::LogFormat {
            debug,
            // Debug logs (also the supervisor's, through PODRUN_LOG) carry the time of day, to
            // see where the time goes.
            timestamps: debug || std::env::var_os("PODRUN_LOG").is_some(),
        })
        .init();
}
