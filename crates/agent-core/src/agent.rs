//! The `Agent` trait.

use async_trait::async_trait;

use crate::context::AgentContext;
use crate::error::Result;
use crate::model::{Role, Task, TaskResult, TaskSpec, Validation, Verdict, WorkState};

/// An agent playing one role. Object-safe: use it as `Arc<dyn Agent>`. One instance serves
/// any number of tasks, concurrently; everything task-specific arrives in the
/// [`AgentContext`] of each call.
///
/// `MockAgent` (feature `mock`) is a mockall mock of this trait.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Agent: Send + Sync {
    /// The instance name used in logs, memory and LLM usage labels (e.g. `developer`).
    fn name(&self) -> &str;

    /// The role it plays.
    fn role(&self) -> &Role;

    /// Its rendered system prompt.
    fn system_prompt(&self) -> &str;

    /// Does the task with bounded self-correction (see the crate docs). Problems of the
    /// work end in a result with [`crate::TaskOutcome::Failed`] and every attempt's
    /// issues; only infrastructure failures are errors.
    ///
    /// # Errors
    /// LLM, memory, workspace, VCS or test-runner failures; a missing capability (e.g.
    /// the Developer without a workspace); model output still malformed after every
    /// allowed correction.
    async fn process_task(&self, task: &Task, ctx: &AgentContext) -> Result<TaskResult>;

    /// Self-validates a result of this agent: the structured `{valid, score, issues}`.
    ///
    /// # Errors
    /// As [`Agent::process_task`].
    async fn validate_result(
        &self,
        task: &Task,
        result: &TaskResult,
        ctx: &AgentContext,
    ) -> Result<Validation>;

    /// Generates the next tasks from strategy, goals and the state of the work. Only the
    /// CEO (and custom roles that plan) does this.
    ///
    /// # Errors
    /// [`crate::AgentError::Unsupported`] for roles that do not plan; otherwise as
    /// [`Agent::process_task`].
    async fn generate_tasks(&self, state: &WorkState, ctx: &AgentContext) -> Result<Vec<TaskSpec>>;

    /// Peer review: judges another agent's result before it is accepted, giving a verdict
    /// with the required changes.
    ///
    /// # Errors
    /// As [`Agent::process_task`].
    async fn review(&self, task: &Task, result: &TaskResult, ctx: &AgentContext)
    -> Result<Verdict>;

    /// The final decision on a proposal from the reviewers' verdicts (the CEO's). A
    /// proposal that any reviewer rejected is never approved.
    ///
    /// # Errors
    /// [`crate::AgentError::Unsupported`] for roles other than the CEO; otherwise as
    /// [`Agent::process_task`].
    async fn decide(
        &self,
        task: &Task,
        verdicts: &[Verdict],
        ctx: &AgentContext,
    ) -> Result<Verdict>;
}
