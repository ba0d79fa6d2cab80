//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::record::DeploymentRecord;

/// Everything that can go wrong while deploying, checking or rolling back.
///
/// Step failures name the step (`ssh: step 2/3`, `docker build`, `health check`, ...),
/// and carry the exit code and the tail of the step's stderr.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The revision is neither a hex commit id nor a valid git ref name.
    #[error("invalid revision {revision:?}: {reason}")]
    InvalidRevision {
        /// The rejected revision, as given.
        revision: String,
        /// Which rule it broke.
        reason: String,
    },

    /// An environment name or idempotency key is unusable.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// Which input (`environment`, `idempotency_key`, `host`, ...).
        field: &'static str,
        /// The rejected value.
        value: String,
        /// Which rule it broke.
        reason: String,
    },

    /// The configuration cannot produce a working deployer.
    #[error("deployment config: {key}: {reason}")]
    Config {
        /// The config key at fault, e.g. `deployment.steps`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A step's program could not be started at all.
    #[error("step `{step}`: cannot start `{program}`: {source}")]
    Spawn {
        /// The step that tried to run it.
        step: String,
        /// The program that could not be started.
        program: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A step ran and exited unsuccessfully.
    #[error("step `{step}` failed with exit code {}: {stderr_tail}", exit_code.map_or_else(|| "none (killed by a signal)".to_owned(), |code| code.to_string()))]
    StepFailed {
        /// The step that failed.
        step: String,
        /// Its exit code; `None` when a signal ended it.
        exit_code: Option<i32>,
        /// The last lines of its stderr (or stdout when stderr was empty).
        stderr_tail: String,
    },

    /// A step ran longer than its time limit; its whole process group was killed.
    #[error("step `{step}` timed out after {timeout:?} and was killed")]
    StepTimedOut {
        /// The step that timed out.
        step: String,
        /// The limit it exceeded.
        timeout: Duration,
    },

    /// The deployed service did not become healthy.
    #[error("health check `{check}` failed: {reason}")]
    HealthCheckFailed {
        /// What was checked (the URL or the command).
        check: String,
        /// The last observation (status code, connection error, command failure).
        reason: String,
    },

    /// The CI status URL reported a failure state, or never reported a final state in time.
    #[error("CI status at {url}: {reason}")]
    CiStatus {
        /// The polled URL.
        url: String,
        /// The failure state or the timeout.
        reason: String,
    },

    /// The deployment history could not be read or written.
    #[error("deployment history {}: {reason}", path.display())]
    History {
        /// The history file.
        path: PathBuf,
        /// What failed (I/O or JSON error text).
        reason: String,
    },

    /// A rollback was asked for but history holds no earlier good deployment.
    #[error("cannot roll back {environment}: no earlier successful deployment in the history")]
    NothingToRollBackTo {
        /// The environment.
        environment: String,
    },

    /// The backend cannot put an older revision live again (ci_cd: the remote branch only
    /// moves forward; revert the change and deploy the revert instead).
    #[error(
        "the {backend} backend cannot roll back: it only moves forward; deploy a revert instead"
    )]
    RollbackUnsupported {
        /// The backend's name.
        backend: &'static str,
    },

    /// The version-control layer failed (ci_cd push or ref lookup).
    #[error("vcs: {0}")]
    Vcs(String),

    /// A deployment or rollback attempt did not succeed; `record` holds every step's output
    /// and whether the automatic rollback restored the previous revision.
    #[error("{} of {} to {} failed: {cause}{}", record.action, record.revision, record.environment, record.rollback_summary())]
    Deployment {
        /// The attempt as recorded in the history.
        record: Box<DeploymentRecord>,
        /// Why it failed.
        #[source]
        cause: Box<DeployError>,
    },

    /// The same idempotency key already ended unsuccessfully; it is not re-run.
    #[error("an earlier attempt with this idempotency key ended as {state}: {message}")]
    EarlierAttempt {
        /// The recorded final state.
        state: String,
        /// The recorded error message.
        message: String,
    },
}
