//! Writes what agents do and decide to the activity log and the decision history.

use agentd_memory::{MemoryStore, NewActivity, NewDecision};
use serde_json::Value;

use crate::error::{AgentError, Result};

/// Activity names written to the activity log.
pub mod activity {
    /// One attempt of the self-correction loop (details: task, attempt, approach, score,
    /// issues, decision, prompt).
    pub const ATTEMPT: &str = "task.attempt";
    /// A task run ended (details: task, outcome, attempts, LLM spend).
    pub const FINISHED: &str = "task.finished";
    /// The CEO generated tasks.
    pub const TASKS_GENERATED: &str = "tasks.generated";
    /// The tool calls of one Developer attempt (details: task, attempt, calls with step,
    /// tool and whether it succeeded).
    pub const TOOL_CALLS: &str = "tool.calls";
    /// A commit was made for a task.
    pub const COMMIT: &str = "task.commit";
}

/// Decision types written to the decision history.
pub mod decision {
    /// What the self-correction loop decided after an attempt: accept, fix, change
    /// approach, give up.
    pub const SELF_CORRECTION: &str = "self_correction";
    /// A reviewer's approval criteria for a task.
    pub const APPROVAL_CRITERIA: &str = "approval_criteria";
    /// A verdict (criteria reviewers, Tech Lead, peer review).
    pub const VERDICT: &str = "verdict";
    /// The CEO's final decision from the verdicts.
    pub const FINAL_DECISION: &str = "final_decision";
    /// The CEO's new tasks and their priorities.
    pub const TASK_GENERATION: &str = "task_generation";
}

pub(crate) async fn activity(
    memory: &dyn MemoryStore,
    agent: &str,
    kind: &str,
    details: Value,
) -> Result<()> {
    memory
        .append_activities(vec![NewActivity {
            agent_name: agent.to_owned(),
            activity: kind.to_owned(),
            details,
        }])
        .await
        .map(drop)
        .map_err(|source| AgentError::Memory {
            during: format!("logging activity {kind}"),
            source,
        })
}

pub(crate) async fn decision(
    memory: &dyn MemoryStore,
    agent: &str,
    kind: &str,
    data: Value,
) -> Result<()> {
    memory
        .append_decisions(vec![NewDecision {
            agent_name: agent.to_owned(),
            decision_type: kind.to_owned(),
            decision_data: data,
        }])
        .await
        .map(drop)
        .map_err(|source| AgentError::Memory {
            during: format!("recording decision {kind}"),
            source,
        })
}
