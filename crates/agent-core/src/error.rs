//! The crate's single error type.

use crate::model::Role;

/// Everything that can stop an agent. Problems of the *work* (a failing test, a low
/// self-validation score, a rejected proposal) are not errors: they are recorded in the
/// [`crate::TaskResult`]. An `AgentError` means the agent could not do its part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// An LLM call failed (after the client's own retries); `during` says what the agent
    /// was doing.
    #[error("{role} agent: LLM call failed while {during}: {source}")]
    Llm {
        /// The agent's role.
        role: Role,
        /// What the call was for (e.g. `self-validation of task 42`).
        during: String,
        /// The client's error.
        #[source]
        source: Box<agentd_llm::LlmError>,
    },

    /// The model kept answering in an unusable shape (invalid JSON, schema violation,
    /// unknown tool, bad arguments) after every allowed correction.
    #[error(
        "{role} agent: malformed LLM output for {what} after {attempts} attempts: {last_problem}"
    )]
    MalformedOutput {
        /// The agent's role.
        role: Role,
        /// What was asked for (the schema or step name).
        what: String,
        /// How many answers were tried.
        attempts: u32,
        /// What was wrong with the last answer.
        last_problem: String,
    },

    /// The memory store (activity log, decision history, context) failed.
    #[error("memory store failed while {during}: {source}")]
    Memory {
        /// What the agent was doing.
        during: String,
        /// The store's error.
        #[source]
        source: agentd_memory::MemoryError,
    },

    /// A workspace file operation that the agent itself (not the model) needed failed.
    #[error("workspace operation failed while {during}: {source}")]
    Files {
        /// What the agent was doing.
        during: String,
        /// The file manager's error.
        #[source]
        source: agentd_fsmanager::FsError,
    },

    /// A version-control operation failed.
    #[error("version control failed while {during}: {source}")]
    Vcs {
        /// What the agent was doing.
        during: String,
        /// The VCS error.
        #[source]
        source: agentd_vcs::VcsError,
    },

    /// The test runner could not run (bad settings, missing directory). Failing tests are
    /// not an error.
    #[error("test runner failed while {during}: {source}")]
    Tests {
        /// What the agent was doing.
        during: String,
        /// The runner's error.
        #[source]
        source: agentd_testrunner::TestRunnerError,
    },

    /// A prompt template is missing or did not render (e.g. an undefined variable).
    #[error("prompt template {template}: {message}")]
    Prompt {
        /// Template name, e.g. `developer/implement.v1`.
        template: String,
        /// The template engine's complaint.
        message: String,
    },

    /// The operation is not something this role does (e.g. `generate_tasks` on QA).
    #[error("the {role} agent does not support {operation}")]
    Unsupported {
        /// The agent's role.
        role: Role,
        /// The operation asked for.
        operation: &'static str,
    },

    /// The task needs something the [`crate::AgentContext`] does not provide.
    #[error("the {role} agent needs {what} for task {task_id}, but the context has none")]
    MissingCapability {
        /// The agent's role.
        role: Role,
        /// The task.
        task_id: String,
        /// What is missing: `a workspace`, `version control`, `a test runner`.
        what: &'static str,
    },

    /// A role name that is not a built-in role and not a valid custom role name.
    #[error("invalid role name {name:?}: {reason}")]
    InvalidRole {
        /// The name given.
        name: String,
        /// Why it is not valid.
        reason: &'static str,
    },

    /// A priority that is not `high`, `medium`, `low` or 1/5/10.
    #[error("invalid priority {value:?}: expected high, medium, low, or a number 1-10")]
    InvalidPriority {
        /// The value given.
        value: String,
    },

    /// Agent configuration that cannot work (e.g. a threshold outside 0-10).
    #[error("invalid agent setting {key}: {message}")]
    Config {
        /// The setting, e.g. `agents.developer.accept_score`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
