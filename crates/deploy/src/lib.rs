//! Deployment for agentd: put a revision live, check its health, roll back on failure,
//! and remember every attempt.
//!
//! The [`Deployer`] trait (object-safe, `Arc<dyn Deployer>`) deploys a revision to an
//! environment, reports [`Deployer::status`], rolls back to the previous good deployment
//! and lists the history. Its one implementation, [`TargetDeployer`], puts history,
//! idempotency, crash recovery and rollback around a [`DeployTarget`], the
//! backend-specific part:
//!
//! - [`CiCdTarget`] (`ci_cd`): pushes the branch through [`agentd_vcs::Vcs`]; CI does the
//!   rest; optionally polls a CI status URL. Cannot roll back (deploy a revert).
//! - [`DirectTarget`] (`direct`): runs configured steps on a server with the system `ssh`
//!   (batch mode, pinned key and known_hosts, no agent), then a health check.
//! - [`DockerTarget`] (`docker`): `docker build`/`push`/`run` or `compose up` with argv
//!   arrays; rollback re-runs the previous image tag.
//! - [`NoopTarget`] (`none`): records attempts, touches nothing.
//!
//! [`DeploymentSettings`] is the config file's `deployment` section;
//! [`DeploymentSettings::build`] returns the configured `Arc<dyn Deployer>`.
//! [`FileDeploymentHistory`] keeps records in one atomically rewritten JSON file behind
//! the [`DeploymentHistory`] trait. Mocks (`MockDeployer`, `MockDeployTarget`,
//! `MockDeploymentHistory`, `MockCommandRunner`) come with the `mock` feature.
//!
//! # Invariants
//!
//! - **Idempotent per (revision, environment, idempotency key)**: a `started` record is
//!   durably written before the first step and the outcome after the last. A repeated
//!   call replays the recorded outcome; a `started` record left by a crash is re-checked
//!   through [`DeployTarget::live_revision`] and the health check: if the revision is
//!   live it is not deployed again.
//! - **Automatic rollback**: when a deploy's steps or health check fail and an earlier
//!   good revision exists, it is put live again and health-checked; the record ends as
//!   `rolled_back` (or `failed` when that too failed) and the call returns
//!   [`DeployError::Deployment`] with the record.
//! - **Revisions are validated** ([`Revision`]: hex id or git ref name, no shell
//!   metacharacters) and shell-quoted where they meet a remote shell; local commands are
//!   argv arrays, never shell strings.
//! - **Every step is logged** (tracing, and [`StepOutput`] in the record) with its argv,
//!   exit code and capped output; children run with a scrubbed environment, in their own
//!   process group, killed whole at their time limit.

mod ci_cd;
mod deployer;
mod direct;
mod docker;
mod error;
mod health;
mod history;
mod record;
mod revision;
mod runner;
mod settings;
mod target;

pub use ci_cd::{CiCdSettings, CiCdTarget};
#[cfg(feature = "mock")]
pub use deployer::MockDeployer;
pub use deployer::{Deployer, TargetDeployer, good_revisions};
pub use direct::{DirectSettings, DirectTarget};
pub use docker::{DockerSettings, DockerTarget, REVISION_LABEL, image_tag};
pub use error::DeployError;
pub use health::HealthCheck;
#[cfg(feature = "mock")]
pub use history::MockDeploymentHistory;
pub use history::{DeploymentHistory, FileDeploymentHistory};
pub use record::{
    DeployRequest, DeploymentAction, DeploymentRecord, DeploymentState, DeploymentStatus,
    RollbackOutcome, RollbackRequest, StepOutput,
};
pub use revision::{Revision, shell_quote, substitute_revision};
#[cfg(feature = "mock")]
pub use runner::MockCommandRunner;
pub use runner::{CommandOutput, CommandRunner, CommandSpec, OUTPUT_CAP_BYTES, ProcessRunner};
pub use settings::{DeployerDeps, DeploymentSettings};
#[cfg(feature = "mock")]
pub use target::MockDeployTarget;
pub use target::{DeployTarget, NoopTarget};
