//! The data model: tasks, roles, results, verdicts and approval criteria.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::AgentError;

/// A role an agent plays. Built-in roles have prompts shipped with this crate; a
/// [`Role::Custom`] role is configured by the user (`agents.<name>` with a description).
///
/// Serialized as a snake_case string: `"ceo"`, `"tech_lead"`, or the custom role's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Role {
    /// Invents and prioritises work, delegates it, makes final decisions from verdicts.
    Ceo,
    /// Judges cost and return.
    Cfo,
    /// Turns a goal into requirements and acceptance criteria.
    Product,
    /// Writes constraints and tests first, before any code.
    Qa,
    /// Writes code until the tests pass, through tools.
    Developer,
    /// Reviews diffs and asks for changes.
    TechLead,
    /// Judges operational and delivery risk.
    Risk,
    /// Judges licensing, privacy and compliance.
    Legal,
    /// Judges security.
    Security,
    /// A user-defined role (lowercase letters, digits, `_` and `-`).
    Custom(String),
}

impl Role {
    /// Every built-in role, in a stable order.
    pub fn all_builtin() -> [Role; 9] {
        [
            Role::Ceo,
            Role::Cfo,
            Role::Product,
            Role::Qa,
            Role::Developer,
            Role::TechLead,
            Role::Risk,
            Role::Legal,
            Role::Security,
        ]
    }

    /// The role's name as used in config keys, queue names and serialized data.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Ceo => "ceo",
            Role::Cfo => "cfo",
            Role::Product => "product",
            Role::Qa => "qa",
            Role::Developer => "developer",
            Role::TechLead => "tech_lead",
            Role::Risk => "risk",
            Role::Legal => "legal",
            Role::Security => "security",
            Role::Custom(name) => name,
        }
    }

    /// True for the reviewers that give verdicts against criteria they choose per task
    /// (CFO, Risk, Legal, Security).
    pub fn is_criteria_reviewer(&self) -> bool {
        matches!(self, Role::Cfo | Role::Risk | Role::Legal | Role::Security)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AgentError;

    /// Parses a role name, case-insensitively, with `-` or `_` as separator
    /// (`tech-lead` and `TechLead` are [`Role::TechLead`]). Any other valid name is a
    /// [`Role::Custom`] role.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normalized = text.trim().to_ascii_lowercase().replace('-', "_");
        let role = match normalized.as_str() {
            "ceo" => Role::Ceo,
            "cfo" => Role::Cfo,
            "product" => Role::Product,
            "qa" => Role::Qa,
            "developer" => Role::Developer,
            "tech_lead" | "techlead" => Role::TechLead,
            "risk" => Role::Risk,
            "legal" => Role::Legal,
            "security" => Role::Security,
            _ => return custom_role(text.trim()),
        };
        Ok(role)
    }
}

fn custom_role(name: &str) -> Result<Role, AgentError> {
    let invalid = |reason| AgentError::InvalidRole {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 64 {
        return Err(invalid("it is longer than 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(invalid(
            "a custom role name uses only lowercase letters, digits, '_' and '-'",
        ));
    }
    Ok(Role::Custom(name.to_owned()))
}

impl From<Role> for String {
    fn from(role: Role) -> Self {
        role.as_str().to_owned()
    }
}

impl TryFrom<String> for Role {
    type Error = AgentError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// How urgent a task is: `high` = 1, `medium` = 5, `low` = 10 (lower is claimed first,
/// as in agentd-memory's task store).
///
/// Serialized as `"high"`, `"medium"`, `"low"`; deserialized also from a number
/// ([`Priority::from_number`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case", try_from = "PriorityRepr")]
pub enum Priority {
    /// 1.
    High,
    /// 5 (the default).
    #[default]
    Medium,
    /// 10.
    Low,
}

impl Priority {
    /// The queue number: 1, 5 or 10.
    pub fn number(self) -> u8 {
        match self {
            Priority::High => 1,
            Priority::Medium => 5,
            Priority::Low => 10,
        }
    }

    /// The nearest priority for a queue number: 1-3 high, 4-7 medium, 8 and above low
    /// (0 counts as high).
    pub fn from_number(number: u8) -> Self {
        match number {
            0..=3 => Priority::High,
            4..=7 => Priority::Medium,
            _ => Priority::Low,
        }
    }

    /// `high`, `medium` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = AgentError;

    /// `high`, `medium`, `low` (any case) or a number (see [`Priority::from_number`]).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "high" => Ok(Priority::High),
            "medium" => Ok(Priority::Medium),
            "low" => Ok(Priority::Low),
            other => other.parse::<u8>().map(Priority::from_number).map_err(|_| {
                AgentError::InvalidPriority {
                    value: text.to_owned(),
                }
            }),
        }
    }
}

impl From<Priority> for u8 {
    fn from(priority: Priority) -> Self {
        priority.number()
    }
}

impl From<u8> for Priority {
    fn from(number: u8) -> Self {
        Priority::from_number(number)
    }
}

impl From<Priority> for agentd_memory::Priority {
    fn from(priority: Priority) -> Self {
        agentd_memory::Priority(priority.number())
    }
}

impl From<agentd_memory::Priority> for Priority {
    fn from(priority: agentd_memory::Priority) -> Self {
        Priority::from_number(priority.0)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PriorityRepr {
    Number(u8),
    Text(String),
}

impl TryFrom<PriorityRepr> for Priority {
    type Error = AgentError;

    fn try_from(value: PriorityRepr) -> Result<Self, Self::Error> {
        match value {
            PriorityRepr::Number(number) => Ok(Priority::from_number(number)),
            PriorityRepr::Text(text) => text.parse(),
        }
    }
}

/// What kind of work a task is; the orchestrator routes pipelines on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskKind {
    /// A new capability: goes through the TDD flow (requirements → tests → code → review).
    #[default]
    Feature,
    /// A defect to fix: TDD flow, starting with a test that reproduces it.
    Bugfix,
    /// Restructuring without behaviour change.
    Refactor,
    /// Write requirements and acceptance criteria (Product).
    Requirements,
    /// Write constraints and tests first (QA).
    Tests,
    /// Write code until the tests pass (Developer).
    Implementation,
    /// Review a change (Tech Lead, or a peer).
    Review,
    /// A proposal that needs verdicts (CFO, Risk, Legal, Security) and a final decision (CEO).
    Proposal,
    /// Plan the next work (CEO).
    Planning,
    /// Investigate and report, no code change.
    Research,
    /// Maintenance: dependencies, configuration, housekeeping.
    Chore,
}

/// A unit of work. The orchestrator stores it as the JSON payload of an agentd-memory
/// task record; `id` and `attempts` come from that record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique id (the task store's id).
    pub id: String,
    /// One-line title.
    pub title: String,
    /// What to do and why.
    pub description: String,
    /// What kind of work it is.
    #[serde(default)]
    pub kind: TaskKind,
    /// How urgent it is.
    #[serde(default)]
    pub priority: Priority,
    /// When it should be done by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// The roles it is delegated to (the first one does the work; the others review).
    #[serde(default)]
    pub assigned_roles: Vec<Role>,
    /// The task this one was derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Extra structured input: the parent's result, requirements for QA, the base revision
    /// for a review, a reviewer's required changes, ...
    #[serde(default)]
    pub payload: Value,
    /// How many times the task has been claimed before (the orchestrator's count).
    #[serde(default)]
    pub attempts: u32,
}

impl Task {
    /// A task with `id` made from a spec, not yet attempted.
    pub fn from_spec(id: impl Into<String>, spec: TaskSpec) -> Self {
        Task {
            id: id.into(),
            title: spec.title,
            description: spec.description,
            kind: spec.kind,
            priority: spec.priority,
            deadline: spec.deadline,
            assigned_roles: spec.assigned_roles,
            parent_id: spec.parent_id,
            payload: spec.payload,
            attempts: 0,
        }
    }

    /// A medium-priority feature task with a title and description and nothing else.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Task::from_spec(id, TaskSpec::new(title, description))
    }

    /// The role that does the work: the first assigned role.
    pub fn primary_role(&self) -> Option<&Role> {
        self.assigned_roles.first()
    }
}

/// A task to be created (by the CEO, a follow-up, or a user): a [`Task`] without id and
/// attempt count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// One-line title.
    pub title: String,
    /// What to do and why.
    pub description: String,
    /// What kind of work it is.
    #[serde(default)]
    pub kind: TaskKind,
    /// How urgent it is.
    #[serde(default)]
    pub priority: Priority,
    /// When it should be done by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// The roles it is delegated to (the first one does the work).
    #[serde(default)]
    pub assigned_roles: Vec<Role>,
    /// The task it derives from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Extra structured input.
    #[serde(default)]
    pub payload: Value,
}

impl TaskSpec {
    /// A medium-priority feature spec with no roles, parent, deadline or payload.
    pub fn new(title: impl Into<String>, description: impl Into<String>) -> Self {
        TaskSpec {
            title: title.into(),
            description: description.into(),
            kind: TaskKind::default(),
            priority: Priority::default(),
            deadline: None,
            assigned_roles: Vec::new(),
            parent_id: None,
            payload: Value::Null,
        }
    }
}

/// One approval criterion a reviewer chose for a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// What is judged, e.g. `cost_within_budget`.
    pub name: String,
    /// The lowest passing score, 0-10.
    pub threshold: f64,
    /// Relative weight in the weighted score (> 0).
    pub weight: f64,
}

/// How a result fared against one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    /// The criterion.
    pub criterion: Criterion,
    /// The score given, 0-10.
    pub score: f64,
    /// `score >= criterion.threshold`.
    pub passed: bool,
    /// Why this score.
    pub comment: String,
}

/// A reviewer's judgement of a task or result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Who judged.
    pub role: Role,
    /// Approved or not. For criteria verdicts: every criterion passed.
    pub approve: bool,
    /// Weighted score, 0-10: `Σ weight·score / Σ weight`.
    pub score: f64,
    /// Per-criterion results, in the order the criteria were chosen.
    pub criteria: Vec<CriterionResult>,
    /// Why.
    pub reasoning: String,
    /// What must change before approval (empty when a reviewer approves). In the CEO's
    /// final decision: the conditions of the decision and the reviewers' required changes.
    #[serde(default)]
    pub required_changes: Vec<String>,
}

impl Verdict {
    /// Builds a verdict from criteria and the score each got: the weighted score, each
    /// criterion's pass/fail against its threshold, and approval when every criterion
    /// passed and no change is required. Scores are clamped to 0-10; a criterion with a
    /// non-positive or non-finite weight counts with weight 0.
    pub fn from_scores(
        role: Role,
        scored: Vec<(Criterion, f64, String)>,
        reasoning: impl Into<String>,
        required_changes: Vec<String>,
    ) -> Self {
        let criteria: Vec<CriterionResult> = scored
            .into_iter()
            .map(|(criterion, score, comment)| {
                let score = clamp_score(score);
                CriterionResult {
                    passed: score >= criterion.threshold,
                    criterion,
                    score,
                    comment,
                }
            })
            .collect();
        let weight_of = |c: &CriterionResult| {
            if c.criterion.weight.is_finite() && c.criterion.weight > 0.0 {
                c.criterion.weight
            } else {
                0.0
            }
        };
        let total_weight: f64 = criteria.iter().map(weight_of).sum();
        let score = if total_weight > 0.0 {
            criteria.iter().map(|c| weight_of(c) * c.score).sum::<f64>() / total_weight
        } else {
            0.0
        };
        let approve = !criteria.is_empty()
            && criteria.iter().all(|c| c.passed)
            && required_changes.is_empty();
        Verdict {
            role,
            approve,
            score,
            criteria,
            reasoning: reasoning.into(),
            required_changes,
        }
    }
}

/// Clamps a model-given score into 0-10 (NaN becomes 0).
pub(crate) fn clamp_score(score: f64) -> f64 {
    if score.is_nan() {
        0.0
    } else {
        score.clamp(0.0, 10.0)
    }
}

/// The self-validation of one attempt: the structured answer `{valid, score, issues}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Whether the work does what the task asks.
    pub valid: bool,
    /// Quality score, 0-10.
    pub score: f64,
    /// What is wrong or missing (the feedback for the next attempt).
    #[serde(default)]
    pub issues: Vec<String>,
}

/// What was decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptDecision {
    /// Valid and scored at least the acceptance score: the result is accepted.
    Accept,
    /// Not good enough: fix it with the issues as feedback.
    Fix,
    /// Fixes ran out, or the agent was stuck: start over with a different approach.
    ChangeApproach,
    /// Approach changes ran out: the task fails with every attempt's issues.
    GiveUp,
}

/// One attempt of the self-correction loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based attempt number within the task run.
    pub number: u32,
    /// 0 for the first approach, then 1, 2, ... after each change of approach.
    pub approach: u32,
    /// The self-validation score, when validation ran.
    pub score: Option<f64>,
    /// Whether validation found the work valid.
    pub valid: bool,
    /// The issues found (validation issues, failing tests, or why the agent was stuck).
    pub issues: Vec<String>,
    /// Why the attempt ended early without validation (stuck, step limit), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck: Option<String>,
    /// What was decided next.
    pub decision: AttemptDecision,
    /// The prompt template (name and version) that produced the attempt.
    pub prompt: String,
}

/// How a task run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskOutcome {
    /// The result was accepted.
    Succeeded,
    /// Every approach failed; `attempts` in the result holds each attempt's issues, for
    /// escalation.
    Failed {
        /// A one-line reason.
        reason: String,
    },
}

/// A summary of a test run, small enough to store with the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSummary {
    /// `passed`, `failed` or `could_not_run: <kind>`.
    pub outcome: String,
    /// Passed tests.
    pub passed: u64,
    /// Failed or errored tests.
    pub failed: u64,
    /// All tests reported.
    pub total: u64,
    /// Ids of failed or errored tests (at most 20).
    pub failing: Vec<String>,
}

impl TestSummary {
    /// Summarises a testrunner report.
    pub fn from_report(report: &agentd_testrunner::TestReport) -> Self {
        let outcome = match &report.outcome {
            agentd_testrunner::Outcome::Passed => "passed".to_owned(),
            agentd_testrunner::Outcome::Failed => "failed".to_owned(),
            agentd_testrunner::Outcome::CouldNotRun { kind, .. } => {
                format!("could_not_run: {kind:?}")
            }
        };
        TestSummary {
            outcome,
            passed: report.counts.passed,
            failed: report.counts.failed + report.counts.errors,
            total: report.counts.total,
            failing: report.failures().take(20).map(|t| t.id.clone()).collect(),
        }
    }

    /// True when the suite ran and nothing failed.
    pub fn is_green(&self) -> bool {
        self.outcome == "passed"
    }
}

/// What a task run left behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Artifacts {
    /// Workspace-relative files written, sorted, without duplicates.
    pub files_written: Vec<String>,
    /// The last test run, if tests ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSummary>,
    /// The commit made for the task, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// LLM calls and tokens spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmSpend {
    /// Calls answered (cache hits included).
    pub calls: u32,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

impl LlmSpend {
    /// Adds one answered call.
    pub fn record(&mut self, usage: &agentd_llm::Usage) {
        self.calls += 1;
        self.input_tokens += usage.input_tokens;
        self.output_tokens += usage.output_tokens;
    }

    /// Adds another spend.
    pub fn add(&mut self, other: LlmSpend) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// The result of one [`crate::Agent::process_task`] run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task.
    pub task_id: String,
    /// The role that did it.
    pub role: Role,
    /// The agent instance that did it.
    pub agent: String,
    /// Succeeded, or failed with a reason.
    pub outcome: TaskOutcome,
    /// What was done, in a few sentences.
    pub summary: String,
    /// The role's structured output (requirements, constraints, a plan, ...).
    #[serde(default)]
    pub output: Value,
    /// Files, tests, commit.
    #[serde(default)]
    pub artifacts: Artifacts,
    /// The verdict, for reviewing roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Tasks to create next.
    #[serde(default)]
    pub follow_ups: Vec<TaskSpec>,
    /// Every attempt of the self-correction loop, with scores, issues and decisions.
    #[serde(default)]
    pub attempts: Vec<AttemptRecord>,
    /// LLM calls and tokens this run spent.
    #[serde(default)]
    pub usage: LlmSpend,
}

impl TaskResult {
    /// True when the result was accepted.
    pub fn succeeded(&self) -> bool {
        self.outcome == TaskOutcome::Succeeded
    }

    /// Every issue of every attempt, prefixed with its attempt number (for escalation).
    pub fn all_issues(&self) -> Vec<String> {
        self.attempts
            .iter()
            .flat_map(|a| {
                a.issues.iter().map(move |issue| {
                    format!("attempt {} (approach {}): {issue}", a.number, a.approach)
                })
            })
            .collect()
    }
}

/// A short description of a task for the CEO's view of the current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskBrief {
    /// Task id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The role it was assigned to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A note: why it failed, what it produced (may be empty).
    #[serde(default)]
    pub note: String,
}

/// What the CEO plans from: the work done, failing and pending. Strategy and goals come
/// from the [`agentd_memory::ContextManager`] in the [`crate::AgentContext`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkState {
    /// Recently completed tasks.
    pub done: Vec<TaskBrief>,
    /// Tasks that failed or were escalated.
    pub failing: Vec<TaskBrief>,
    /// Tasks queued or running.
    pub pending: Vec<TaskBrief>,
    /// An extra goal for this round (e.g. `agentd run --goal`), on top of the stored goals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// At most this many tasks may be generated; 0 means the default, 5.
    #[serde(default)]
    pub max_tasks: u32,
}
