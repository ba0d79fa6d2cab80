//! The [`Deployer`] trait and [`TargetDeployer`]: history, idempotency, crash recovery
//! and rollback around any [`DeployTarget`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::error::DeployError;
use crate::history::DeploymentHistory;
use crate::record::{
    DeployRequest, DeploymentAction, DeploymentRecord, DeploymentState, DeploymentStatus,
    RollbackOutcome, RollbackRequest,
};
use crate::revision::Revision;
use crate::target::DeployTarget;

/// Deploys revisions, reports status and rolls back. Object-safe: use `Arc<dyn Deployer>`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Deployer: Send + Sync {
    /// Deploys `request.revision` to `request.environment`, health-checks it, and on
    /// failure rolls back to the previous good revision automatically.
    ///
    /// Idempotent per (revision, environment, idempotency key): a repeated call returns
    /// the recorded outcome; after a crash mid-deploy the target is re-checked, not
    /// blindly deployed again.
    ///
    /// # Errors
    /// [`DeployError::Deployment`] carrying the record (every step's output and the
    /// rollback outcome) when the deploy failed; validation or history errors otherwise.
    async fn deploy(&self, request: &DeployRequest) -> Result<DeploymentRecord, DeployError>;

    /// Observes the environment now: live revision, health, and the last attempt.
    /// The health check is the backend's own (for `ci_cd` with a `status_url` that means
    /// waiting for CI's final state, up to `status_timeout_s`).
    ///
    /// # Errors
    /// When the live revision cannot be read or the history cannot be read.
    async fn status(&self, environment: &str) -> Result<DeploymentStatus, DeployError>;

    /// Restores the revision that was live before the current good one.
    ///
    /// # Errors
    /// [`DeployError::NothingToRollBackTo`] without an earlier good deployment;
    /// [`DeployError::Deployment`] when restoring failed (it is not undone).
    async fn rollback(&self, request: &RollbackRequest) -> Result<DeploymentRecord, DeployError>;

    /// Every recorded attempt for `environment`, oldest first.
    ///
    /// # Errors
    /// When the history cannot be read.
    async fn history(&self, environment: &str) -> Result<Vec<DeploymentRecord>, DeployError>;
}

/// The one [`Deployer`] implementation: drives a [`DeployTarget`] and records every
/// attempt in a [`DeploymentHistory`] (`started` before the first step, the outcome after).
/// Attempts on one deployer are serialised.
pub struct TargetDeployer {
    target: Arc<dyn DeployTarget>,
    history: Arc<dyn DeploymentHistory>,
    serialise: Mutex<()>,
}

impl std::fmt::Debug for TargetDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetDeployer")
            .field("backend", &self.target.backend())
            .finish_non_exhaustive()
    }
}

impl TargetDeployer {
    /// A deployer over `target`, recording into `history`.
    #[must_use]
    pub fn new(target: Arc<dyn DeployTarget>, history: Arc<dyn DeploymentHistory>) -> Self {
        Self {
            target,
            history,
            serialise: Mutex::new(()),
        }
    }

    fn new_record(
        &self,
        action: DeploymentAction,
        environment: &str,
        revision: &str,
        idempotency_key: &str,
        previous_revision: Option<String>,
    ) -> DeploymentRecord {
        DeploymentRecord {
            id: uuid::Uuid::now_v7().to_string(),
            action,
            backend: self.target.backend().to_owned(),
            environment: environment.to_owned(),
            revision: revision.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            state: DeploymentState::Started,
            previous_revision,
            started_at: Utc::now(),
            finished_at: None,
            steps: Vec::new(),
            error: None,
            rollback: None,
            recovered: false,
        }
    }

    async fn finish(
        &self,
        mut record: DeploymentRecord,
        state: DeploymentState,
    ) -> Result<DeploymentRecord, DeployError> {
        record.state = state;
        record.finished_at = Some(Utc::now());
        self.history.save(&record).await?;
        tracing::info!(id = %record.id, state = %state, "deployment finished");
        Ok(record)
    }

    async fn fail(
        &self,
        record: DeploymentRecord,
        state: DeploymentState,
        cause: DeployError,
    ) -> Result<DeploymentRecord, DeployError> {
        let record = self.finish(record, state).await?;
        tracing::warn!(id = %record.id, error = %cause, "deployment failed");
        Err(DeployError::Deployment {
            record: Box::new(record),
            cause: Box::new(cause),
        })
    }

    /// Applies and health-checks the record's revision; on failure rolls back.
    async fn run_deploy(
        &self,
        mut record: DeploymentRecord,
        revision: &Revision,
    ) -> Result<DeploymentRecord, DeployError> {
        let outcome = match self.target.apply(revision, &mut record.steps).await {
            Ok(()) => self.target.check_health(revision, &mut record.steps).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => self.finish(record, DeploymentState::Succeeded).await,
            Err(cause) => self.roll_back_failed_deploy(record, cause).await,
        }
    }

    async fn roll_back_failed_deploy(
        &self,
        mut record: DeploymentRecord,
        cause: DeployError,
    ) -> Result<DeploymentRecord, DeployError> {
        record.error = Some(cause.to_string());
        let previous = record
            .previous_revision
            .clone()
            .filter(|_| self.target.can_restore());
        let Some(previous) = previous else {
            return self.fail(record, DeploymentState::Failed, cause).await;
        };
        record.state = DeploymentState::RollingBack;
        self.history.save(&record).await?;
        self.restore_previous(record, &previous, cause).await
    }

    async fn restore_previous(
        &self,
        mut record: DeploymentRecord,
        previous: &str,
        cause: DeployError,
    ) -> Result<DeploymentRecord, DeployError> {
        tracing::warn!(id = %record.id, to = previous, error = %cause, "rolling back automatically");
        let restored = match Revision::parse(previous) {
            Ok(previous) => match self.target.apply(&previous, &mut record.steps).await {
                Ok(()) => self.target.check_health(&previous, &mut record.steps).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        record.rollback = Some(RollbackOutcome {
            to_revision: previous.to_owned(),
            succeeded: restored.is_ok(),
            error: restored.err().map(|e| e.to_string()),
        });
        let state = if record.rollback.as_ref().is_some_and(|r| r.succeeded) {
            DeploymentState::RolledBack
        } else {
            DeploymentState::Failed
        };
        self.fail(record, state, cause).await
    }

    /// A `started` deploy found after a crash: the target decides what happened.
    async fn recover_deploy(
        &self,
        mut record: DeploymentRecord,
        revision: &Revision,
    ) -> Result<DeploymentRecord, DeployError> {
        record.recovered = true;
        let live = self.target.live_revision(&mut record.steps).await?;
        tracing::info!(id = %record.id, live = ?live, "re-checking a deploy interrupted by a crash");
        if live
            .as_deref()
            .is_some_and(|live| revision.matches_reported(live))
        {
            match self.target.check_health(revision, &mut record.steps).await {
                Ok(()) => self.finish(record, DeploymentState::Succeeded).await,
                Err(cause) => self.roll_back_failed_deploy(record, cause).await,
            }
        } else {
            // The revision never went live, so completing the steps now is its first deploy.
            self.run_deploy(record, revision).await
        }
    }

    /// A deploy that crashed while rolling back: finish restoring the previous revision.
    async fn recover_rollback(
        &self,
        mut record: DeploymentRecord,
    ) -> Result<DeploymentRecord, DeployError> {
        record.recovered = true;
        let cause = DeployError::EarlierAttempt {
            state: DeploymentState::RollingBack.to_string(),
            message: record.error.clone().unwrap_or_default(),
        };
        let Some(previous) = record.previous_revision.clone() else {
            return self.fail(record, DeploymentState::Failed, cause).await;
        };
        let previous_revision = Revision::parse(&previous)?;
        let live = self.target.live_revision(&mut record.steps).await?;
        let already_restored = live
            .as_deref()
            .is_some_and(|live| previous_revision.matches_reported(live))
            && self
                .target
                .check_health(&previous_revision, &mut record.steps)
                .await
                .is_ok();
        if already_restored {
            record.rollback = Some(RollbackOutcome {
                to_revision: previous,
                succeeded: true,
                error: None,
            });
            return self.fail(record, DeploymentState::RolledBack, cause).await;
        }
        self.restore_previous(record, &previous, cause).await
    }

    /// Runs an explicit rollback record (fresh or recovered).
    async fn run_rollback(
        &self,
        mut record: DeploymentRecord,
        target: &Revision,
    ) -> Result<DeploymentRecord, DeployError> {
        let outcome = match self.target.apply(target, &mut record.steps).await {
            Ok(()) => self.target.check_health(target, &mut record.steps).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => self.finish(record, DeploymentState::Succeeded).await,
            Err(cause) => {
                record.error = Some(cause.to_string());
                self.fail(record, DeploymentState::Failed, cause).await
            }
        }
    }
}

/// Replays a recorded final outcome for a repeated idempotency key.
fn replay(record: &DeploymentRecord) -> Result<DeploymentRecord, DeployError> {
    if record.state == DeploymentState::Succeeded {
        return Ok(record.clone());
    }
    Err(DeployError::Deployment {
        record: Box::new(record.clone()),
        cause: Box::new(DeployError::EarlierAttempt {
            state: record.state.to_string(),
            message: record.error.clone().unwrap_or_default(),
        }),
    })
}

/// The stack of revisions that were live and good, oldest first; the last one is live now.
/// A successful deploy pushes its revision; a successful explicit rollback pops the
/// revision it replaced. Failed deploys that were rolled back leave it unchanged.
#[must_use]
pub fn good_revisions(records: &[DeploymentRecord]) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    for record in records
        .iter()
        .filter(|r| r.state == DeploymentState::Succeeded)
    {
        if record.action == DeploymentAction::Rollback {
            stack.pop();
        }
        if stack.last() != Some(&record.revision) {
            stack.push(record.revision.clone());
        }
    }
    stack
}

fn validate_environment(environment: &str) -> Result<(), DeployError> {
    let ok = !environment.is_empty()
        && environment.len() <= 64
        && environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DeployError::InvalidInput {
            field: "environment",
            value: environment.to_owned(),
            reason: "must be 1-64 characters of [A-Za-z0-9._-]".to_owned(),
        })
    }
}

fn validate_key(key: &str) -> Result<(), DeployError> {
    if key.trim().is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
        return Err(DeployError::InvalidInput {
            field: "idempotency_key",
            value: key.to_owned(),
            reason: "must be 1-256 characters without control characters".to_owned(),
        });
    }
    Ok(())
}

#[async_trait]
impl Deployer for TargetDeployer {
    async fn deploy(&self, request: &DeployRequest) -> Result<DeploymentRecord, DeployError> {
        let revision = Revision::parse(&request.revision)?;
        validate_environment(&request.environment)?;
        validate_key(&request.idempotency_key)?;
        let span = tracing::info_span!(
            "deploy",
            backend = self.target.backend(),
            environment = %request.environment,
            revision = %request.revision,
            idempotency_key = %request.idempotency_key,
        );
        async {
            let _one_at_a_time = self.serialise.lock().await;
            let records = self.history.list(&request.environment).await?;
            let earlier = records.iter().find(|r| {
                r.action == DeploymentAction::Deploy
                    && r.revision == request.revision
                    && r.idempotency_key == request.idempotency_key
            });
            if let Some(earlier) = earlier {
                return match earlier.state {
                    DeploymentState::Started => self.recover_deploy(earlier.clone(), &revision).await,
                    DeploymentState::RollingBack => self.recover_rollback(earlier.clone()).await,
                    _ => replay(earlier),
                };
            }
            let record = self.new_record(
                DeploymentAction::Deploy,
                &request.environment,
                &request.revision,
                &request.idempotency_key,
                good_revisions(&records).pop(),
            );
            self.history.save(&record).await?;
            tracing::info!(id = %record.id, previous = ?record.previous_revision, "deployment started");
            self.run_deploy(record, &revision).await
        }
        .instrument(span)
        .await
    }

    async fn status(&self, environment: &str) -> Result<DeploymentStatus, DeployError> {
        validate_environment(environment)?;
        let span = tracing::info_span!(
            "deploy_status",
            backend = self.target.backend(),
            environment
        );
        async {
            let records = self.history.list(environment).await?;
            let mut steps = Vec::new();
            let live_revision = self.target.live_revision(&mut steps).await?;
            let expected_revision = good_revisions(&records).pop();
            // Check the revision that is live, or failing that the one that should be.
            let checked = live_revision
                .as_deref()
                .or(expected_revision.as_deref())
                .map(Revision::parse);
            let health = match checked {
                Some(Ok(revision)) => self.target.check_health(&revision, &mut steps).await,
                Some(Err(e)) => Err(e),
                None => Err(DeployError::HealthCheckFailed {
                    check: "live revision".to_owned(),
                    reason: "nothing is deployed".to_owned(),
                }),
            };
            Ok(DeploymentStatus {
                environment: environment.to_owned(),
                backend: self.target.backend().to_owned(),
                live_revision,
                expected_revision,
                healthy: health.is_ok(),
                health_error: health.err().map(|e| e.to_string()),
                last_attempt: records.last().cloned(),
                steps,
            })
        }
        .instrument(span)
        .await
    }

    async fn rollback(&self, request: &RollbackRequest) -> Result<DeploymentRecord, DeployError> {
        validate_environment(&request.environment)?;
        validate_key(&request.idempotency_key)?;
        let span = tracing::info_span!(
            "rollback",
            backend = self.target.backend(),
            environment = %request.environment,
            idempotency_key = %request.idempotency_key,
        );
        async {
            if !self.target.can_restore() {
                return Err(DeployError::RollbackUnsupported {
                    backend: self.target.backend(),
                });
            }
            let _one_at_a_time = self.serialise.lock().await;
            let records = self.history.list(&request.environment).await?;
            let earlier = records.iter().find(|r| {
                r.action == DeploymentAction::Rollback
                    && r.idempotency_key == request.idempotency_key
            });
            if let Some(earlier) = earlier {
                if earlier.state.is_final() {
                    return replay(earlier);
                }
                let mut record = earlier.clone();
                record.recovered = true;
                let target = Revision::parse(&record.revision)?;
                let live = self.target.live_revision(&mut record.steps).await?;
                if live
                    .as_deref()
                    .is_some_and(|live| target.matches_reported(live))
                    && self
                        .target
                        .check_health(&target, &mut record.steps)
                        .await
                        .is_ok()
                {
                    return self.finish(record, DeploymentState::Succeeded).await;
                }
                return self.run_rollback(record, &target).await;
            }
            let mut good = good_revisions(&records);
            let current = good.pop();
            let (Some(current), Some(target)) = (current, good.pop()) else {
                return Err(DeployError::NothingToRollBackTo {
                    environment: request.environment.clone(),
                });
            };
            let revision = Revision::parse(&target)?;
            let record = self.new_record(
                DeploymentAction::Rollback,
                &request.environment,
                &target,
                &request.idempotency_key,
                Some(current),
            );
            self.history.save(&record).await?;
            tracing::info!(id = %record.id, to = %target, "rollback started");
            self.run_rollback(record, &revision).await
        }
        .instrument(span)
        .await
    }

    async fn history(&self, environment: &str) -> Result<Vec<DeploymentRecord>, DeployError> {
        validate_environment(environment)?;
        self.history.list(environment).await
    }
}
