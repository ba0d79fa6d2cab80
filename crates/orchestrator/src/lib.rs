//! agentd's orchestrator: per-role queues over the durable task store, a worker loop per
//! agent, the main loop (health, stuck-task sweep, escalation, the CEO's idle planning),
//! the TDD and decision pipelines, budgets, alerts and metrics.
//!
//! # Using it
//!
//! The binary (or an embedding program) builds the parts and hands them over:
//!
//! ```text
//! let llm = agentd_llm::build_client(&config.llm)?;                  // LlmHandle
//! let metrics = Metrics::new(Some(llm.ledger()));
//! let alerts = Alerts::log_and_webhook(settings.alert_webhook.as_deref())?;
//! let book = Arc::new(BudgetBook::new(settings.budget.clone(), llm.ledger().prices().clone(),
//!                                     stores.memory.clone(), clock, alerts.clone(), metrics.clone()));
//! let guarded = book.guard(llm.client(), CallDefaults::from_llm_settings(&config.llm));
//! let orchestrator = TaskOrchestrator::new(settings, OrchestratorDeps {
//!     tasks: stores.tasks, memory: stores.memory, llm: guarded, agents, repo: Some(repo_setup),
//!     budget: Some(book), alerts, metrics })?;
//! orchestrator.submit(spec, None).await?;                               // agentd submit
//! let summary = orchestrator.run_once(RunLimits { max_tasks, goal }).await?;   // run --once
//! let summary = orchestrator.run(RunLimits::default(), shutdown_rx).await?;     // daemon
//! orchestrator.status().await?;  orchestrator.metrics().encode()?;   // status, /metrics
//! ```
//!
//! # Main types
//!
//! - [`TaskOrchestrator`] — [`submit`](TaskOrchestrator::submit),
//!   [`run_once`](TaskOrchestrator::run_once) (drain), [`run`](TaskOrchestrator::run)
//!   (daemon until a `watch` channel says stop), [`status`](TaskOrchestrator::status),
//!   [`pipeline_progress`](TaskOrchestrator::pipeline_progress), [`tick`](TaskOrchestrator::tick).
//! - [`OrchestratorSettings`]: the config file's `orchestrator` section.
//! - [`BudgetBook`]: limits, persisted spend, and [`BudgetBook::guard`], the `LlmClient`
//!   decorator that enforces them before each call.
//! - [`AlertSink`] ([`LogAlertSink`], [`WebhookAlertSink`]) and [`Alerts`] (fan-out).
//! - [`Metrics`]: a Prometheus registry, [`Metrics::encode`] for the text format.
//! - [`OrchestratorError`]: the one error enum.
//!
//! # The data flow of a task
//!
//! A task enters as a root record ([`TaskOrchestrator::submit`], the CEO's idle planning, a
//! follow-up, or an approved proposal's project). [`route`] picks its pipeline and first
//! queue from its kind and assigned roles; the record's JSON payload is an [`Envelope`]
//! (the agent-level `Task`, the pipeline, the step, the root id, the review round).
//! Every queue (a role name, plus [`RELEASE_QUEUE`]) has `concurrency[role]` workers
//! (default 1; release always 1, so merges into the protected branch are serialised). A
//! worker claims the queue's next record (priority, then deadline, then FIFO) under a lease
//! that heartbeats renew, runs the step with `task_timeout`, and then either enqueues the
//! next steps and completes the record, or fails it (retry with backoff while attempts
//! remain, then dead-letter).
//!
//! - **TDD** (features, bug fixes, refactors): `requirements` (Product) → `tests` (QA writes
//!   tests in the task's linked worktree on `feature/task-<root>`; the suite must then be
//!   red; QA's files are committed) → `implementation` (Developer, with agent-core's own
//!   self-correction: fixes, then new approaches; then the testrunner's tests-first gate
//!   against a base worktree: new tests fail on the base and pass on the head, nothing
//!   dropped, skipped or weakened; the code is committed) → `review` (Tech Lead, on the
//!   diff since the fork point, given as `payload.base`; a
//!   rejection sends the required changes back to the Developer, up to
//!   [`MAX_REVIEW_ROUNDS`]) → `release` (merge into the protected branch with an approval
//!   that is both reviewed and tested, then deploy, then remove the worktrees).
//! - **Decision** (proposals): `intake` (CEO) fans out one `verdict` record per V-team
//!   role (CFO, Risk, Legal, Tech Lead): they run in parallel on their own queues, each
//!   choosing its criteria; the last verdict to be saved enqueues `decide` (CEO), whose
//!   verdict goes to the decision history; an approval asks the CEO for the project's tasks
//!   and enqueues them as children.
//! - **Single** (everything else): the role's agent does the task; its follow-ups become
//!   child tasks.
//!
//! The main loop, every `check_interval`: requeues records whose lease expired (a crashed
//! or hung worker), updates queue-depth and budget metrics, pauses claiming when the day's
//! budget is used up, and when nothing is pending, running or retrying lets the CEO plan
//! new root tasks towards the goal (`--goal` or `orchestrator.goal`). Every store operation
//! has a 30 s limit, every step `task_timeout`; errors are logged, counted and backed off,
//! never fatal (three failed passes in a row raise a critical alert); a panicking step
//! fails its attempt instead of taking its worker down.
//!
//! A task that fails for good is **escalated** to the CEO (whose planning turns it into
//! delegated follow-ups), or without a CEO agent, failures of code steps to the Tech Lead,
//! as a high-priority task carrying the issue of every attempt (from the record's history). Its **fingerprint** ([`fingerprint`]: queue, kind, title
//! without digits and punctuation) is counted; after `loop_threshold` such failures the
//! fingerprint is quarantined: a loop alert is raised, and further tasks with it are
//! cancelled when claimed instead of being run, retried or escalated again.
//!
//! # Crash-safety invariants
//!
//! Every step follows one pattern, so a `kill -9` at any point resumes at the first
//! unfinished step and repeats no side effect:
//!
//! 1. A step's output is saved in the memory store (agent [`PIPELINE_MEMORY_AGENT`], key
//!    `<root>/<step>`) **before** its record is completed and before its next steps are
//!    enqueued; a replayed step finds it and skips the work.
//! 2. Next steps are enqueued with idempotency keys `<root>:<step>` **before** the record is
//!    completed; a replay enqueues nothing twice.
//! 3. Agent output that side effects depend on is saved before those side effects: QA's test
//!    files (`tests/authored`) before the red check and commit; the Developer's result
//!    (`implementation/<n>/authored`) before the gate and commit. Files live in the task's
//!    own worktree, reused after a restart once its creation was recorded (`worktree`); a
//!    worktree whose creation a crash interrupted is removed and made again. The gate's base
//!    worktree is scratch space and is rebuilt for every gate run.
//! 4. Commits carry the step record's id as `Task-Id` trailer: agentd-vcs does not commit
//!    a `Task-Id` twice. The merge is saved (`release/merge`) before the deployment; a
//!    replayed merge is "already up to date". Deployments are keyed by the pipeline root in
//!    agentd-deploy's history, which replays a recorded outcome instead of deploying again.
//! 5. Leases are at most 30 s and renewed by heartbeats, so a crashed worker's record is
//!    reclaimed within 30 s of the restart, without using up one of its
//!    `max_task_attempts` (those count failures; [`CRASH_ALLOWANCE`] more claims are
//!    allowed for crashes, so a task that kills the process every time still ends); a worker whose lease was taken away drops its
//!    work without completing it (fencing tokens).
//! 6. Budget spend is persisted before each call (see below), so a restart never resets it.
//!
//! # Budgets
//!
//! [`BudgetBook::guard`] wraps the client stack. Before each call it computes the worst
//! case, `estimated input tokens × input price + max_tokens × output price` (agentd-llm's
//! [`agentd_llm::PriceTable`]), and checks it against the task's lifetime limit
//! (`per_task_usd`; the task is the pipeline root, so all its steps and attempts share it),
//! the agent's daily limit (`per_agent_usd`) and the daily limit of all agents
//! (`per_day_usd`). A call that would exceed one is not sent: it fails with an
//! [`agentd_llm::LlmError::Http`] of status [`BUDGET_DENIED_STATUS`] (402), a budget alert
//! is raised, and the orchestrator dead-letters the task with "paused by budget" (no
//! escalation: that would spend more); an agent's daily denial also pauses that agent's
//! queue, and a global daily denial all claiming, until the next UTC day (a drain then
//! returns with the paused work still queued). A call to a model without a price is denied unless `allow_unpriced`.
//! Otherwise the worst case is reserved and persisted (memory agent
//! [`BUDGET_MEMORY_AGENT`], keys `day/<date>`, `agent/<name>/<date>`, `task/<root>`), the
//! call is made, and the reservation is settled to the real cost of the response's usage.
//! Failed calls settle to zero but are counted; the client's own retries happen below the
//! guard, inside one reserved call. A crash during a call leaves the worst case counted:
//! spend is over-, never under-estimated.

mod alert;
mod budget;
mod envelope;
mod error;
mod metrics;
mod orchestrator;
mod pipelines;
mod settings;
mod steplog;

#[cfg(feature = "mock")]
pub use alert::MockAlertSink;
pub use alert::{Alert, AlertKind, AlertSink, Alerts, LogAlertSink, WebhookAlertSink};
pub use budget::{
    BUDGET_DENIED_STATUS, BUDGET_MEMORY_AGENT, BudgetBook, BudgetDenial, BudgetStatus,
    CallDefaults, Spend, estimate_input_tokens,
};
pub use envelope::{Envelope, Pipeline, RELEASE_QUEUE, Route, fingerprint, role_for_kind, route};
pub use error::OrchestratorError;
pub use metrics::Metrics;
pub use orchestrator::{
    CRASH_ALLOWANCE, LOOP_MEMORY_AGENT, OrchestratorDeps, OrchestratorStatus, RepoSetup, RunLimits,
    RunSummary, RunningTask, TaskOrchestrator,
};
pub use pipelines::{MAX_REVIEW_ROUNDS, feature_branch};
pub use settings::{BudgetSettings, OrchestratorSettings};
pub use steplog::PIPELINE_MEMORY_AGENT;
