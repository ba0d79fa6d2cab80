//! The backend-specific half of a deployment: [`DeployTarget`].

use async_trait::async_trait;

use crate::error::DeployError;
use crate::record::StepOutput;
use crate::revision::Revision;

/// What differs between `ci_cd`, `direct` and `docker`: how a revision is put live, how
/// health is checked, and how the live revision is read back. History, idempotency,
/// crash recovery and rollback live in [`crate::TargetDeployer`], once for all backends.
///
/// Every method appends the steps it ran (with their output) to `steps`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DeployTarget: Send + Sync {
    /// The backend's name as recorded: `ci_cd`, `direct`, `docker`, `none`.
    fn backend(&self) -> &'static str;

    /// Puts `revision` live. Also used to restore an earlier revision on rollback, so it
    /// must work for any revision that once deployed successfully.
    ///
    /// # Errors
    /// The failing step's error ([`DeployError::StepFailed`], ...).
    async fn apply(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError>;

    /// Checks the live service, which should be running `revision`; `Ok` when no health
    /// check is configured.
    ///
    /// # Errors
    /// [`DeployError::HealthCheckFailed`] (or a CI status failure) naming what failed.
    async fn check_health(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError>;

    /// Whether [`DeployTarget::apply`] can put an OLDER revision live again. When false,
    /// a failed deploy is not rolled back automatically and an explicit rollback is refused.
    fn can_restore(&self) -> bool {
        true
    }

    /// The revision the target reports as live, `None` when nothing is deployed or the
    /// backend cannot tell. Used by status and to re-check a deploy interrupted by a crash.
    ///
    /// # Errors
    /// The failing step's error.
    async fn live_revision(
        &self,
        steps: &mut Vec<StepOutput>,
    ) -> Result<Option<String>, DeployError>;
}

/// `deployment.type: none`: records deploys in the history and touches nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopTarget;

#[async_trait]
impl DeployTarget for NoopTarget {
    fn backend(&self) -> &'static str {
        "none"
    }

    async fn apply(
        &self,
        _revision: &Revision,
        _steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        Ok(())
    }

    async fn check_health(
        &self,
        _revision: &Revision,
        _steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        Ok(())
    }

    async fn live_revision(
        &self,
        _steps: &mut Vec<StepOutput>,
    ) -> Result<Option<String>, DeployError> {
        Ok(None)
    }
}
