//! agentd's role agents: the task/role/verdict model, the [`Agent`] trait, the role
//! agents and their versioned prompts, bounded self-correction, dynamic approval criteria
//! and a tool-using Developer.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo(llm: std::sync::Arc<dyn agentd_llm::LlmClient>,
//! #               memory: std::sync::Arc<dyn agentd_memory::MemoryStore>,
//! #               workspace: agentd_fsmanager::Workspace,
//! #               vcs: std::sync::Arc<dyn agentd_vcs::Vcs>,
//! #               tests: std::sync::Arc<dyn agentd_testrunner::TestRunner>)
//! #               -> agentd_agent_core::Result<()> {
//! use agentd_agent_core::{build_agent, AgentConfig, AgentContext, Role, Task, TaskWorkspace};
//!
//! let developer = build_agent(Role::Developer, AgentConfig::default())?;
//! let ctx = AgentContext::new(llm, memory)
//!     .with_workspace(TaskWorkspace::new(workspace).with_vcs(vcs).with_tests(tests));
//! let task = Task::new("42", "Fix add()", "add(2, 3) must return 5");
//! let result = developer.process_task(&task, &ctx).await?;
//! println!("{:?}: {} ({} LLM calls)", result.outcome, result.summary, result.usage.calls);
//! # Ok(()) }
//! ```
//!
//! # The model
//!
//! - [`Task`]: id, title, description, [`TaskKind`], [`Priority`] (`high` = 1, `medium` =
//!   5, `low` = 10, as agentd-memory's queue numbers), deadline, assigned [`Role`]s (the
//!   first does the work), parent, JSON payload (input from earlier steps: the parent's
//!   result, `base` revision for reviews, ...), attempts. Stored by the orchestrator as the
//!   payload of a task-store record. [`TaskSpec`] is a task to create (no id, no attempts).
//! - [`Role`]: CEO, CFO, Product, QA, Developer, Tech Lead, Risk, Legal, Security, and
//!   [`Role::Custom`] roles from config. Serialized as snake_case strings (`"tech_lead"`).
//! - [`TaskResult`]: outcome ([`TaskOutcome::Succeeded`] or `Failed` with a reason), summary,
//!   role output (JSON), [`Artifacts`] (files written, [`TestSummary`], commit id), an
//!   optional [`Verdict`], follow-up [`TaskSpec`]s, every [`AttemptRecord`] (score, issues,
//!   decision, prompt version) and the [`LlmSpend`] (calls, tokens).
//! - [`Verdict`]: role, approve, weighted score `Σ wᵢ·sᵢ / Σ wᵢ` (0-10), per-criterion
//!   [`CriterionResult`]s against [`Criterion`] `{name, threshold, weight}`, reasoning and
//!   required changes. [`Validation`] is the self-check `{valid, score, issues}`.
//!
//! # The trait
//!
//! [`Agent`] is object-safe (`Arc<dyn Agent>`, `MockAgent` behind feature `mock`): `name`,
//! `role`, `system_prompt`, `process_task`, `validate_result`, `generate_tasks` (CEO),
//! `review` (peer review of another agent's result), `decide` (CEO's final decision). The
//! [`AgentContext`] is passed on every call, so one agent serves every task, each in its own
//! worktree: the LLM client, the memory store and its `ContextManager`, and optionally a
//! [`TaskWorkspace`] (jailed files, VCS, test runner on one directory). Per-role LLM
//! parameters and the correction bounds are the agent's [`AgentConfig`], fixed when
//! [`build_agent`] builds it (custom roles need `description`).
//!
//! # Roles
//!
//! | role | `process_task` does | LLM calls per attempt |
//! |---|---|---|
//! | CEO | plans a task into delegated follow-ups; `generate_tasks` from strategy, goals and done/failing/pending work, most urgent first; `decide` from verdicts | plan + validate |
//! | CFO, Risk, Legal, Security | chooses approval criteria for *this* task `{criteria: [{name, threshold, weight}], reasoning}`, then scores each into a [`Verdict`] | criteria + evaluation + validate |
//! | Product | requirements, acceptance criteria, out of scope | requirements + validate |
//! | QA | test files written first (constraints in `output.constraints`: every file QA writes is a test target for the tests-first gate); refuses non-test paths; the tests must not already pass | tests + validate |
//! | Developer | tool loop until the suite is green, then validate | one per tool step + validate |
//! | Tech Lead | reviews the diff (since `payload.base`) against fixed weighted criteria; required changes block approval. On a [`TaskKind::Proposal`] it judges like the reviewers above | review + validate |
//! | custom | generic work product and follow-ups from its description | process + validate |
//!
//! Any agent can peer-review another's result ([`Agent::review`]) before it is accepted;
//! [`process_with_peer_review`] sends a rejection's required changes back to the author
//! (in `payload.peer_review`), a bounded number of times.
//! QA and the Developer commit what they wrote when [`AgentConfig::auto_commit`] is set;
//! [`commit_task_changes`] does the same for the orchestrator: an LLM-written Conventional
//! Commits message from the diff, with `Task-Id:` (agentd-vcs makes it idempotent) and
//! `Agent-Role:` trailers.
//!
//! # What a task costs
//!
//! LLM calls and tokens per role and task in the example flows (`tests/flows.rs`: every
//! result accepted first time, tokens estimated at four characters per token of the real
//! rendered requests, through the real client stack and its usage ledger). A fix attempt
//! repeats a role's calls; the Developer adds one call per tool step.
//!
//! | flow | role | step | calls | input tokens | output tokens |
//! |---|---|---|---:|---:|---:|
//! | TDD | product | requirements | 2 | 549 | 58 |
//! | TDD | qa | tests first | 2 | 1 100 | 89 |
//! | TDD | developer | implement (4 tool steps) | 5 | 4 511 | 126 |
//! | TDD | tech_lead | review | 2 | 774 | 91 |
//! | TDD | developer | commit message | 1 | 279 | 24 |
//! | decision | cfo / risk / legal / security | criteria + verdict | 3 each | ~830 each | ~98 each |
//! | decision | ceo | final decision | 1 | 496 | 24 |
//! | planning | ceo | generate tasks | 1 | 620 | 83 |
//!
//! # Self-correction
//!
//! ```text
//!            ┌────────────── Fix (issues as feedback, cache bypassed) ─────────────┐
//!            ▼                                                                     │
//! start ─▶ attempt ─▶ objective checks ─▶ self-validation ─▶ valid ∧ score ≥ 7.0 ? ─┤
//!            ▲        (tests, paths)      {valid,score,issues}       │ yes        │ no, fixes left
//!            │                                                       ▼            │
//!            │                                                    Accept          │ no fixes left, or stuck
//!            │                                                                    ▼
//!            └──── ChangeApproach (all earlier approaches shown) ◀── approach changes left?
//!                                                                                 │ none left
//!                                                                                 ▼
//!                                                             GiveUp: Failed, every attempt's issues
//! ```
//!
//! Bounds ([`CorrectionPolicy`]): `accept_score` 7.0, `max_fix_attempts` 3 after each
//! approach's first attempt, `max_approach_changes` 2, so at most 12 attempts. An attempt
//! whose objective checks fail (red tests, tests that already pass) is not shown to the
//! model for validation: its issues go straight into the next attempt. A stuck Developer
//! skips the remaining fixes. Every attempt is an activity (`task.attempt`) and a decision
//! (`self_correction`) in agentd-memory, with score, issues, decision and prompt version.
//!
//! # The Developer's tool loop
//!
//! Tools: `read_file`, `write_file`, `list_dir`, `find_files`, `search`, `outline`
//! (fsmanager), `run_tests` (testrunner), `view_diff` (vcs), `finish`. Bounded by
//! `max_tool_steps`; stuck when the same call is made `loop_repeat_limit` times with no
//! write in between, or the same failing-test fingerprint (sha256 of failing ids and
//! first message lines) repeats `loop_repeat_limit` times. Existing test files are
//! read-only for it. After `finish` the whole suite runs; only green goes to validation.
//!
//! # Malformed output
//!
//! Invalid JSON, schema violations, answers that do not fit the expected shape or a
//! semantic check (unknown role, unscored criterion, non-test path for QA), unknown tools
//! and unparsable tool arguments are shown to the model with the problem and asked again
//! (cache bypassed), at most `max_malformed_retries` times per step; after that the
//! attempt fails with the problem as its issue and the loop goes on. Nothing panics.
//!
//! # Prompts
//!
//! One template per role and step, `prompts/<role>/<step>.v<N>.j2` (e.g.
//! `developer/implement.v1`), embedded with `include_str!`, rendered by minijinja with
//! strict undefined variables (a typo is an error, not an empty string) from the task, the
//! assembled memory context and the step's constraints. A prompt change is a new version
//! file; [`AttemptRecord::prompt`] names the version used. [`prompt_names`] lists them and
//! the snapshot tests render every one.
//!
//! # Invariants
//!
//! - Work problems are results, not errors: an [`AgentError`] means infrastructure failed
//!   (LLM transport, memory, VCS, test runner) or the context lacks a capability.
//! - Every LLM call carries `CallLabels { agent, role, task_id }` and runs in a tracing
//!   span with the task id and role; every retry after a first attempt bypasses the cache.
//! - The self-correction loop and the tool loop always end (bounded attempts, steps,
//!   corrections).
//! - A criteria verdict approves only when every criterion meets its threshold and no
//!   change is required; the CEO never approves a proposal a reviewer rejected.
//! - QA writes only test files; the Developer never changes an existing test file.
//! - Prompts never contain the workspace's host path (tool output is scrubbed), so a
//!   recorded run replays on another checkout.

mod agent;
mod build;
mod changes;
mod context;
mod error;
pub mod journal;
mod model;
mod peer_review;
mod prompts;
mod roles;
mod runtime;
mod schemas;
mod session;

pub use agent::Agent;
#[cfg(feature = "mock")]
pub use agent::MockAgent;
pub use build::{build_agent, system_prompt_template};
pub use changes::commit_task_changes;
pub use context::{AgentConfig, AgentContext, CorrectionPolicy, RoleLlmParams, TaskWorkspace};
pub use error::{AgentError, Result};
pub use model::{
    Artifacts, AttemptDecision, AttemptRecord, Criterion, CriterionResult, LlmSpend, Priority,
    Role, Task, TaskBrief, TaskKind, TaskOutcome, TaskResult, TaskSpec, TestSummary, Validation,
    Verdict, WorkState,
};
pub use peer_review::{ReviewedResult, process_with_peer_review};
pub use prompts::{prompt_names, render_prompt};
