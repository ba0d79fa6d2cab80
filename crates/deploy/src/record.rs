//! What a deployment is asked for and what it leaves behind in the history.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A request to deploy one revision to one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// A hex commit id or a git ref name (branch or tag); validated before any use.
    pub revision: String,
    /// The environment label, e.g. `production`; history and rollback are per environment.
    pub environment: String,
    /// Makes the deploy idempotent: usually the task id. A second call with the same
    /// (revision, environment, key) returns the first outcome instead of deploying again.
    pub idempotency_key: String,
}

/// A request to roll an environment back to its previous good deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The environment to roll back.
    pub environment: String,
    /// Makes the rollback idempotent: a second call with the same key returns the first outcome.
    pub idempotency_key: String,
}

/// Whether a record is a deploy or an explicit rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentAction {
    /// Deploy a requested revision.
    Deploy,
    /// Go back to the previous good revision on request.
    Rollback,
}

impl fmt::Display for DeploymentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
        })
    }
}

/// Where an attempt stands. `Started` and `RollingBack` are written before the work they
/// announce, so a crash leaves a record that the next attempt re-checks instead of re-running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Recorded before the first step ran; no outcome yet.
    Started,
    /// The revision failed; restoring the previous good revision has begun.
    RollingBack,
    /// The revision is live and passed its health check.
    Succeeded,
    /// The attempt failed and nothing (or a failed rollback) followed.
    Failed,
    /// The revision failed and the previous good revision was restored and is healthy.
    RolledBack,
}

impl DeploymentState {
    /// True for the states that end an attempt.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::RolledBack)
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Started => "started",
            Self::RollingBack => "rolling_back",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        })
    }
}

/// One executed step: the exact argv, its exit code and its (capped) output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutput {
    /// The step's name, e.g. `ssh step 1/3` or `docker build`.
    pub step: String,
    /// The program and its arguments, as run.
    pub argv: Vec<String>,
    /// The exit code; `None` when killed by a signal or the timeout, or for in-process steps.
    pub exit_code: Option<i32>,
    /// Whether the step counted as a success.
    pub success: bool,
    /// Standard output, keeping the tail when it exceeds the cap.
    pub stdout: String,
    /// Standard error, keeping the tail when it exceeds the cap.
    pub stderr: String,
    /// Wall-clock time the step took, in milliseconds.
    pub duration_ms: u64,
}

/// How the automatic rollback after a failed deploy went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackOutcome {
    /// The revision restored (the previous good one).
    pub to_revision: String,
    /// True when the previous revision is live again and passed its health check.
    pub succeeded: bool,
    /// The rollback's own error, when it failed.
    pub error: Option<String>,
}

/// One deploy or rollback attempt, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Unique id of this attempt (UUID v7, so ids sort by creation time).
    pub id: String,
    /// Deploy or explicit rollback.
    pub action: DeploymentAction,
    /// The backend that ran it: `ci_cd`, `direct`, `docker`, or `none`.
    pub backend: String,
    /// The environment label.
    pub environment: String,
    /// The revision this attempt puts live (for a rollback: the revision restored).
    pub revision: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// Where the attempt stands.
    pub state: DeploymentState,
    /// The revision that was live (per history) before this attempt.
    pub previous_revision: Option<String>,
    /// When the attempt was first recorded.
    pub started_at: DateTime<Utc>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Every step executed, in order, across crash recoveries.
    pub steps: Vec<StepOutput>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// The automatic rollback after a failed deploy, when one ran.
    pub rollback: Option<RollbackOutcome>,
    /// True when the outcome was established by re-checking the target after a crash.
    pub recovered: bool,
}

impl DeploymentRecord {
    /// Text appended to failure messages describing the automatic rollback, if any.
    pub(crate) fn rollback_summary(&self) -> String {
        match &self.rollback {
            None => String::new(),
            Some(RollbackOutcome {
                to_revision,
                succeeded: true,
                ..
            }) => format!("; rolled back to {to_revision}"),
            Some(RollbackOutcome {
                to_revision, error, ..
            }) => format!(
                "; rollback to {to_revision} ALSO FAILED: {}",
                error.as_deref().unwrap_or("unknown error")
            ),
        }
    }
}

/// The live state of an environment, as observed now plus what history says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    /// The environment label.
    pub environment: String,
    /// The backend's kind.
    pub backend: String,
    /// The revision the target reports as deployed right now (`None`: nothing deployed,
    /// or the backend cannot tell).
    pub live_revision: Option<String>,
    /// The revision history says should be live (the last good deployment).
    pub expected_revision: Option<String>,
    /// Whether the health check passed just now.
    pub healthy: bool,
    /// The health check's failure, when it failed.
    pub health_error: Option<String>,
    /// The most recent attempt for this environment.
    pub last_attempt: Option<DeploymentRecord>,
    /// The steps run to observe this status.
    pub steps: Vec<StepOutput>,
}
