//! The config file's `deployment` section and the constructor that builds its deployer.

use std::path::PathBuf;
use std::sync::Arc;

use agentd_vcs::Vcs;
use serde::{Deserialize, Serialize};

use crate::ci_cd::{CiCdSettings, CiCdTarget};
use crate::deployer::{Deployer, TargetDeployer};
use crate::direct::{DirectSettings, DirectTarget};
use crate::docker::{DockerSettings, DockerTarget};
use crate::error::DeployError;
use crate::history::{DeploymentHistory, FileDeploymentHistory};
use crate::runner::{CommandRunner, ProcessRunner};
use crate::target::{DeployTarget, NoopTarget};

/// The `deployment` section of `agentd.yaml`, tagged on `type`:
///
/// ```yaml
/// deployment:
///   type: direct            # ci_cd | direct | docker | none
///   host: app.example.com
///   user: deploy
///   key_path: /etc/agentd/deploy_key
///   known_hosts_path: /etc/agentd/known_hosts
///   steps: ["git -C /srv/app fetch origin", "git -C /srv/app checkout --detach {revision}"]
///   revision_command: git -C /srv/app rev-parse HEAD
///   health_check: { type: http, url: "http://app.example.com/health" }
/// ```
///
/// Unknown keys are errors (every variant denies unknown fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeploymentSettings {
    /// Push the branch; CI deploys it. See [`CiCdSettings`].
    CiCd(CiCdSettings),
    /// Run steps on a server over ssh. See [`DirectSettings`].
    Direct(DirectSettings),
    /// Build and run a container image. See [`DockerSettings`].
    Docker(DockerSettings),
    /// Deploy nothing; attempts are still recorded. (A struct variant so that stray
    /// keys beside `type: none` are rejected too.)
    None {},
}

impl Default for DeploymentSettings {
    /// `type: none`: nothing is deployed unless the config says how.
    fn default() -> Self {
        Self::None {}
    }
}

/// What [`DeploymentSettings::build`] needs besides the settings.
#[derive(Clone)]
pub struct DeployerDeps {
    /// The version-control backend (`ci_cd` pushes through it).
    pub vcs: Arc<dyn Vcs>,
    /// Where attempts are recorded.
    pub history: Arc<dyn DeploymentHistory>,
    /// Runs `ssh`, `docker` and `git ls-remote`; [`ProcessRunner`] for real use.
    pub runner: Arc<dyn CommandRunner>,
}

impl std::fmt::Debug for DeployerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployerDeps").finish_non_exhaustive()
    }
}

impl DeployerDeps {
    /// Real dependencies: the given `vcs`, a [`FileDeploymentHistory`] at `history_path`
    /// (e.g. `.agentd/deployments.json`) and the [`ProcessRunner`].
    ///
    /// # Errors
    /// [`DeployError::History`] when the history file cannot be opened.
    pub async fn with_file_history(
        vcs: Arc<dyn Vcs>,
        history_path: impl Into<PathBuf>,
    ) -> Result<Self, DeployError> {
        Ok(Self {
            vcs,
            history: Arc::new(FileDeploymentHistory::open(history_path).await?),
            runner: Arc::new(ProcessRunner),
        })
    }
}

impl DeploymentSettings {
    /// The backend name, as recorded in history.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            Self::CiCd(_) => "ci_cd",
            Self::Direct(_) => "direct",
            Self::Docker(_) => "docker",
            Self::None {} => "none",
        }
    }

    /// Builds the target this section describes.
    ///
    /// # Errors
    /// [`DeployError::Config`] naming the offending key.
    pub fn build_target(&self, deps: &DeployerDeps) -> Result<Arc<dyn DeployTarget>, DeployError> {
        Ok(match self {
            Self::CiCd(settings) => Arc::new(CiCdTarget::new(
                settings.clone(),
                Arc::clone(&deps.vcs),
                Arc::clone(&deps.runner),
            )?),
            Self::Direct(settings) => Arc::new(DirectTarget::new(
                settings.clone(),
                Arc::clone(&deps.runner),
            )?),
            Self::Docker(settings) => Arc::new(DockerTarget::new(
                settings.clone(),
                Arc::clone(&deps.runner),
            )?),
            Self::None {} => Arc::new(NoopTarget),
        })
    }

    /// Builds the configured [`Deployer`].
    ///
    /// # Errors
    /// [`DeployError::Config`] naming the offending key.
    pub fn build(&self, deps: &DeployerDeps) -> Result<Arc<dyn Deployer>, DeployError> {
        Ok(Arc::new(TargetDeployer::new(
            self.build_target(deps)?,
            Arc::clone(&deps.history),
        )))
    }
}
