//! What every command needs: paths, configuration, credentials, the store, the namespace.

use anyhow::Context as _;
use podrun_config::{Config, Credentials, Paths};
use podrun_store::Store;
use podrun_userns::MappingPlan;

/// The user's environment, loaded once per command.
pub struct Context {
    pub paths: Paths,
    pub config: Config,
    pub store: Store,
}

impl Context {
    pub fn load() -> anyhow::Result<Context> {
        let paths = Paths::from_env()?;
        let config = Config::load(&paths.config_file, paths.config_file_explicit)?;
        let store = Store::open(&paths.data_dir).with_context(|| {
            format!(
                "cannot open the image store in {}",
                paths.data_dir.display()
            )
        })?;
        Ok(Context {
            paths,
            config,
            store,
        })
    }

    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        Ok(Credentials::load(&self.paths)?)
    }
}

/// Enters podrun's user namespace (a no-op for root) and returns the mapping used.
pub fn enter_user_namespace() -> anyhow::Result<MappingPlan> {
    let plan = MappingPlan::for_current_user()?;
    if let Some(warning) = plan.warning() {
        tracing::warn!("{warning}");
    }
    podrun_userns::enter_user_namespace(&plan)?;
    Ok(plan)
}

/// Where pods live; fails with a hint when XDG_RUNTIME_DIR is missing (a host problem, so
/// the hint points to `podrun system check` too).
pub fn pod_dirs(paths: &podrun_config::Paths) -> anyhow::Result<podrun_pod::PodDirs> {
    podrun_pod::PodDirs::new(
        paths.runtime_dir.as_deref(),
        paths.xdg_runtime_dir.as_deref(),
        &paths.data_dir,
    )
    .map_err(|e| anyhow::anyhow!("{e}; {}", podrun_hostcheck::DIAGNOSIS_HINT))
}

/// Removes directories that may hold files of subordinate ids (container layers, overlayfs
/// work directories): directly when possible, else with `rm -rf` run in podrun's user
/// namespace (`podrun unshare`), as this process may not enter it any more.
pub fn remove_dirs(dirs: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let left: Vec<&std::path::PathBuf> = dirs
        .iter()
        .filter(|d| podrun_pod::remove_tree(d).is_err() || d.exists())
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    let status = std::process::Command::new("/proc/self/exe")
        .args(["unshare", "rm", "-rf", "--"])
        .args(&left)
        .stdin(std::process::Stdio::null())
        .status()
        .context("cannot run `podrun unshare rm -rf`")?;
    match left.iter().find(|d| d.exists()) {
        Some(dir) => anyhow::bail!(
            "cannot remove {} (`podrun unshare rm -rf` ended with {status})",
            dir.display()
        ),
        None => Ok(()),
    }
}
