//! agentd's role agents: the task/role/verdict model and the [`Agent`] trait.
//!
//! This first version fixes the public model ([`Task`], [`TaskSpec`], [`Role`],
//! [`Priority`], [`TaskResult`], [`Verdict`], [`Criterion`], [`Validation`]) and the
//! object-safe [`Agent`] trait with its per-call [`AgentContext`]; the role agents,
//! prompts and the self-correction loop follow.
//!
//! # Invariants
//! - The model serializes to stable JSON: roles as snake_case strings (`"tech_lead"`,
//!   custom roles as their name), priorities as `"high"`/`"medium"`/`"low"` (1/5/10).
//! - A [`Verdict`] built by [`Verdict::from_scores`] approves only when every criterion
//!   meets its threshold and no change is required.

mod agent;
mod context;
mod error;
mod model;

pub use agent::Agent;
#[cfg(feature = "mock")]
pub use agent::MockAgent;
pub use context::{AgentConfig, AgentContext, CorrectionPolicy, RoleLlmParams, TaskWorkspace};
pub use error::{AgentError, Result};
pub use model::{
    Artifacts, AttemptDecision, AttemptRecord, Criterion, CriterionResult, LlmSpend, Priority,
    Role, Task, TaskBrief, TaskKind, TaskOutcome, TaskResult, TaskSpec, TestSummary, Validation,
    Verdict, WorkState,
};
