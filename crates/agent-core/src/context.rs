//! What an agent may use for one task, and how each role is tuned.

use std::path::PathBuf;
use std::sync::Arc;

use agentd_fsmanager::{FileManager, Workspace};
use agentd_llm::LlmClient;
use agentd_memory::{ContextManager, MemoryStore};
use agentd_testrunner::TestRunner;
use agentd_vcs::Vcs;
use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};

/// Everything an agent may use while working on one task. Passed to every call of the
/// [`crate::Agent`] trait, so one agent instance serves many tasks, each in its own
/// worktree. Cheap to clone.
#[derive(Clone)]
pub struct AgentContext {
    /// The LLM client (usually the full stack from `agentd_llm::build_client`).
    pub llm: Arc<dyn LlmClient>,
    /// Activity log, decision history and agent memory.
    pub memory: Arc<dyn MemoryStore>,
    /// Strategy, goals and facts; assembles the context part of prompts.
    pub context: ContextManager,
    /// The task's working directory with its tools, for roles that touch files.
    pub workspace: Option<TaskWorkspace>,
}

impl std::fmt::Debug for AgentContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentContext")
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl AgentContext {
    /// A context without a workspace, over `memory` (whose [`ContextManager`] it builds).
    pub fn new(llm: Arc<dyn LlmClient>, memory: Arc<dyn MemoryStore>) -> Self {
        AgentContext {
            context: ContextManager::new(Arc::clone(&memory)),
            llm,
            memory,
            workspace: None,
        }
    }

    /// The same context with a task workspace.
    #[must_use]
    pub fn with_workspace(mut self, workspace: TaskWorkspace) -> Self {
        self.workspace = Some(workspace);
        self
    }
}

/// A task's working directory: jailed file access, and optionally version control and a
/// test runner acting on the same directory (usually a linked worktree on a feature
/// branch).
#[derive(Clone)]
pub struct TaskWorkspace {
    /// The directory: the workspace root, the repository's worktree and the test project.
    pub root: PathBuf,
    /// File operations jailed to `root`.
    pub files: Arc<dyn FileManager>,
    /// Version control over `root`.
    pub vcs: Option<Arc<dyn Vcs>>,
    /// The test runner, run on `root`.
    pub tests: Option<Arc<dyn TestRunner>>,
}

impl std::fmt::Debug for TaskWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWorkspace")
            .field("root", &self.root)
            .field("vcs", &self.vcs.is_some())
            .field("tests", &self.tests.is_some())
            .finish_non_exhaustive()
    }
}

impl TaskWorkspace {
    /// A task workspace over an opened fsmanager [`Workspace`], without VCS or tests.
    pub fn new(workspace: Workspace) -> Self {
        TaskWorkspace {
            root: workspace.root_path().to_path_buf(),
            files: Arc::new(workspace),
            vcs: None,
            tests: None,
        }
    }

    /// The same workspace with version control.
    #[must_use]
    pub fn with_vcs(mut self, vcs: Arc<dyn Vcs>) -> Self {
        self.vcs = Some(vcs);
        self
    }

    /// The same workspace with a test runner.
    #[must_use]
    pub fn with_tests(mut self, tests: Arc<dyn TestRunner>) -> Self {
        self.tests = Some(tests);
        self
    }
}

/// LLM parameters of one role: the `agents.<role>` section of `agentd.yaml`
/// (`model`, `temperature`, `max_tokens`). Unset values fall back to the `llm` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleLlmParams {
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Maximum output tokens per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// The bounds of the self-correction loop and of the tool loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrectionPolicy {
    /// An attempt is accepted when valid and its self-validation score is at least this
    /// (0-10). Default 7.0.
    pub accept_score: f64,
    /// Fix attempts after the first attempt of an approach, each with the previous
    /// issues as feedback and bypassing the LLM cache. Default 3.
    pub max_fix_attempts: u32,
    /// Changes of approach after the fixes of an approach ran out (or it got stuck);
    /// after the last one the task fails. Default 2.
    pub max_approach_changes: u32,
    /// Corrections allowed for one malformed LLM answer (invalid JSON, schema violation,
    /// unknown tool, bad arguments) before the step fails. Default 2.
    pub max_malformed_retries: u32,
    /// LLM turns one Developer attempt may take in its tool loop. Default 30.
    pub max_tool_steps: u32,
    /// The same tool call in an unchanged workspace, or the same set of failing tests,
    /// seen this many times in one attempt means the agent is stuck. Default 3.
    pub loop_repeat_limit: u32,
}

impl Default for CorrectionPolicy {
    fn default() -> Self {
        CorrectionPolicy {
            accept_score: 7.0,
            max_fix_attempts: 3,
            max_approach_changes: 2,
            max_malformed_retries: 2,
            max_tool_steps: 30,
            loop_repeat_limit: 3,
        }
    }
}

/// How one agent is set up: what [`crate::build_agent`] takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The agent instance's name (default: the role's name, e.g. `developer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// LLM parameters for this role.
    #[serde(flatten)]
    pub llm: RoleLlmParams,
    /// Bounds of self-correction and tool use.
    pub correction: CorrectionPolicy,
    /// For a custom role: what the role is responsible for (rendered into its system
    /// prompt). For a built-in role: extra instructions appended to its system prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether QA and the Developer commit the files they wrote (with an LLM-written
    /// Conventional Commits message and the `Task-Id` trailer) when the workspace has
    /// version control. Default false: the orchestrator decides.
    pub auto_commit: bool,
    /// The custom roles that exist (from config), so that the CEO and custom agents may
    /// delegate to them. Filled by the caller, not read from the agent's config section.
    #[serde(skip)]
    pub custom_roles: Vec<crate::model::Role>,
}

impl AgentConfig {
    /// Checks the bounds.
    ///
    /// # Errors
    /// [`AgentError::Config`] naming the offending setting.
    pub fn validate(&self) -> Result<()> {
        let score = self.correction.accept_score;
        if !(0.0..=10.0).contains(&score) {
            return Err(AgentError::Config {
                key: "correction.accept_score".into(),
                message: format!("{score} is outside 0-10"),
            });
        }
        if self.correction.max_tool_steps == 0 {
            return Err(AgentError::Config {
                key: "correction.max_tool_steps".into(),
                message: "must be at least 1".into(),
            });
        }
        if self.correction.loop_repeat_limit < 2 {
            return Err(AgentError::Config {
                key: "correction.loop_repeat_limit".into(),
                message: "must be at least 2 (one call cannot repeat)".into(),
            });
        }
        if let Some(t) = self.llm.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(AgentError::Config {
                key: "temperature".into(),
                message: format!("{t} is outside 0-2"),
            });
        }
        Ok(())
    }
}
