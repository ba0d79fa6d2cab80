//! The crate's error type.

use std::time::Duration;

/// Everything the orchestrator can fail with. Messages name the task, the step, the key or
/// the backend involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestratorError {
    /// A setting of the `orchestrator` section is unusable; `key` is its full name.
    #[error("invalid setting {key}: {message}")]
    Config {
        /// The full key, e.g. `orchestrator.task_timeout`.
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// The task or memory store failed.
    #[error("store: {0}")]
    Store(#[from] agentd_memory::MemoryError),

    /// An LLM call failed outside an agent (e.g. in the budget guard).
    #[error("llm: {0}")]
    Llm(#[from] agentd_llm::LlmError),

    /// An agent could not do its part (LLM, memory, workspace, malformed output).
    #[error("agent: {0}")]
    Agent(#[from] agentd_agent_core::AgentError),

    /// The task's workspace could not be opened.
    #[error("workspace: {0}")]
    Files(#[from] agentd_fsmanager::FsError),

    /// A git operation failed.
    #[error("git: {0}")]
    Vcs(#[from] agentd_vcs::VcsError),

    /// The test runner could not do its part.
    #[error("tests: {0}")]
    Tests(#[from] agentd_testrunner::TestRunnerError),

    /// A deployment failed.
    #[error("deploy: {0}")]
    Deploy(#[from] agentd_deploy::DeployError),

    /// A budget limit stopped the work of a task.
    #[error("task {task_id} paused by its budget: {denial}")]
    BudgetExceeded {
        /// The task.
        task_id: String,
        /// Which limit, by how much.
        denial: crate::budget::BudgetDenial,
    },

    /// An operation did not finish within its time limit.
    #[error("{operation} did not finish within {}s", .after.as_secs_f64())]
    Timeout {
        /// What was running (names the task and step when there is one).
        operation: String,
        /// The limit.
        after: Duration,
    },

    /// A task's payload or a pipeline's saved progress is not what this build expects.
    #[error("task {task_id}: {message}")]
    InvalidTask {
        /// The task.
        task_id: String,
        /// What is wrong.
        message: String,
    },

    /// A pipeline step failed for a reason that is not another variant (a gate that did not
    /// pass, a review that did not approve, tests still red after every attempt).
    #[error("task {task_id}, step {step}: {message}")]
    Step {
        /// The task.
        task_id: String,
        /// The step (`qa_tests`, `develop`, `review`, `merge`, ...).
        step: &'static str,
        /// What happened.
        message: String,
    },

    /// The work was judged and rejected for good (a review rejected in every round): retrying
    /// cannot help, so the task is dead-lettered and escalated at once.
    #[error("task {task_id}, step {step}: rejected: {message}")]
    Rejected {
        /// The task.
        task_id: String,
        /// The step.
        step: &'static str,
        /// Why.
        message: String,
    },

    /// An alert could not be delivered.
    #[error("alert sink {sink}: {message}")]
    Alert {
        /// `webhook`, `log` or a custom sink's name.
        sink: &'static str,
        /// What failed.
        message: String,
    },

    /// The metrics could not be encoded.
    #[error("metrics: {message}")]
    Metrics {
        /// The encoder's message.
        message: String,
    },
}
