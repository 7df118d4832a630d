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
        if let Some(subnet) = &config.network.shared_subnet {
            podrun_podnet::Subnet::for_pods(subnet).with_context(|| {
                format!("{}: network.shared_subnet", paths.config_file.display())
            })?;
        }
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
