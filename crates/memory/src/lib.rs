//! agentd's memory: what agents remember, what they did and decided, the context they are given,
//! and the durable task queue that makes the whole system exactly-once in effect.
//!
//! # Main types
//! - [`MemoryStore`]: per-agent key-value memory (`agent_memory`), the activity log
//!   (`activity_logs`) and the decision history (`decision_history`), with time-range and
//!   paginated queries and retention ([`MemoryStore::purge_logs_before`]).
//! - [`ContextManager`]: strategy, goals and project facts per agent and globally, and
//!   [`ContextManager::assemble`] to build a prompt's context within a character budget.
//! - [`TaskStore`]: a durable priority queue per role. [`TaskStore::claim`] hands out the next
//!   task (priority, then deadline, then FIFO) under a lease with a fencing token;
//!   [`TaskStore::complete`] / [`TaskStore::fail`] / [`TaskStore::heartbeat`] need the current
//!   token; failures retry with exponential backoff ([`RetryPolicy`]) until `max_attempts`,
//!   then dead-letter; [`TaskStore::requeue_expired`] is the stuck-task sweep; every state change
//!   is in [`TaskStore::history`].
//! - [`SqliteStore`]: the embedded backend implementing both traits on one file.
//! - [`PostgresStore`]: the scale-out backend (tokio-postgres; claims with
//!   `FOR UPDATE SKIP LOCKED`, so workers in many processes can share a queue). Same tables,
//!   JSON as JSONB; [`PostgresOptions::schema`] picks the namespace.
//! - [`MemorySettings`]: the config file's `memory` section; [`MemorySettings::open`] opens the
//!   configured backend as [`Stores`] (`Arc<dyn MemoryStore>` + `Arc<dyn TaskStore>`).
//! - [`Clock`]: all times come from an injected clock ([`SystemClock`] in production,
//!   [`ManualClock`] in tests, so lease expiry and backoff need no sleeping).
//!
//! # Opening
//! ```no_run
//! # async fn demo() -> agentd_memory::Result<()> {
//! use std::sync::Arc;
//! use agentd_memory::{MemorySettings, NewTask, Priority, SystemClock};
//!
//! let settings = MemorySettings::default(); // the config file's `memory` section
//! let stores = settings.open(Arc::new(SystemClock)).await?;
//! let task = NewTask::new("qa", serde_json::json!({"title": "write tests"})).with_priority(Priority::HIGH);
//! let id = stores.tasks.enqueue_one(task).await?.id;
//! # let _ = id; Ok(()) }
//! ```
//!
//! # For the layers above
//! - The orchestrator keeps its agent-level `Task` (title, description, kind, roles...) as the
//!   task's JSON `payload`; the store's record stays generic. The role is the queue name.
//! - A worker loop: `claim(role, worker, lease)` → run, calling `heartbeat(id, token, lease)`
//!   while working → `complete(id, token, result)` or `fail(id, token, error, kind)`. A
//!   [`MemoryError::StaleLease`] means the task was taken away (lease expired and re-claimed,
//!   or cancelled): drop the work and do not commit its side effects.
//! - Call `requeue_expired()` periodically (the orchestrator's `check_interval`).
//! - Use idempotency keys for tasks derived from something that may be replayed after a crash
//!   (e.g. `"{parent_id}:qa-tests"`), so a re-run enqueues nothing twice.
//! - `--features mock` gives `MockMemoryStore` and `MockTaskStore`; `--features conformance`
//!   gives the `conformance` module, the behaviour suite every backend must pass.
//!
//! # Invariants
//! - A write is durable when its call returns `Ok` (with `synchronous: normal`, durable against
//!   a process crash; with `full`, also against power loss).
//! - A task is held by at most one worker at a time; only the current fencing token can change
//!   a running task; a completed task is never completed again. The token, not the clock, is
//!   the authority: a holder whose lease ran out may still complete until the sweep
//!   (`requeue_expired`) or another claim has taken the task away.
//! - No operation of the traits exposes backend specifics: times are UTC with millisecond
//!   precision, ids are strings, payloads JSON. Both backends pass the same conformance suite.
//!
//! # SQLite
//! WAL mode, `synchronous` NORMAL (default) or FULL, a busy timeout, schema versions in
//! `user_version` (a file from a newer build is refused untouched, as are non-database files
//! and read-only directories). One writer connection is owned by a dedicated thread: async
//! callers send it jobs over a channel (never blocking the runtime, never meeting "database is
//! locked"), and it commits all queued jobs in one transaction (group commit), each job in its
//! own savepoint. Reads use a pool of read-only connections in `spawn_blocking`, in parallel.

mod clock;
mod context;
mod error;
mod memory;
mod postgres;
mod settings;
mod sqlite;
mod task;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use context::{AssembledContext, ContextManager, GLOBAL_SCOPE, Scope, ScopeContext};
pub use error::{MemoryError, Result};
#[cfg(feature = "mock")]
pub use memory::MockMemoryStore;
pub use memory::{
    ActivityRecord, DecisionRecord, LogQuery, MemoryEntry, MemoryStore, NewActivity, NewDecision,
    Page, PurgeCounts,
};
pub use postgres::{PostgresOptions, PostgresStore};
pub use settings::{BackendKind, MemorySettings, Stores, Synchronous};
pub use sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};
#[cfg(feature = "mock")]
pub use task::MockTaskStore;
pub use task::{
    ClaimedTask, Enqueued, FailureKind, Lease, NewTask, Priority, RetryPolicy, TaskCount,
    TaskQuery, TaskRecord, TaskStatus, TaskStore, TaskTransition,
};
