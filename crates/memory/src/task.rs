//! The `TaskStore` trait: a durable priority queue per role, with leases, fencing, retries and
//! a full transition history.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{MemoryError, Page, Result};

/// Task priority: lower is more urgent. Claims take the lowest number first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(pub u8);

impl Priority {
    /// `high` = 1.
    pub const HIGH: Self = Self(1);
    /// `medium` = 5 (the default).
    pub const MEDIUM: Self = Self(5);
    /// `low` = 10.
    pub const LOW: Self = Self(10);
}

impl Default for Priority {
    fn default() -> Self {
        Self::MEDIUM
    }
}

impl FromStr for Priority {
    type Err = MemoryError;

    /// Parses `high`, `medium`, `low` or a number.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "high" => Ok(Self::HIGH),
            "medium" => Ok(Self::MEDIUM),
            "low" => Ok(Self::LOW),
            other => other
                .parse()
                .map(Self)
                .map_err(|_| MemoryError::InvalidInput {
                    what: format!("priority {other:?}: expected high, medium, low or 0-255"),
                }),
        }
    }
}

/// Where a task is in its life.
///
/// ```text
/// pending ──claim──▶ running ──complete──▶ completed
///    ▲                │  │
///    │   lease expired│  └─fail──▶ retrying ──backoff elapsed──▶ pending
///    └────────────────┘  └─fail (no attempts left / permanent)──▶ dead_letter
/// pending | retrying | running ──cancel──▶ cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting in its role's queue.
    Pending,
    /// Claimed by a worker under a lease.
    Running,
    /// Failed, waiting for its backoff (`not_before`) to elapse before it is claimable again.
    Retrying,
    /// Done; the result is stored. Terminal.
    Completed,
    /// Failed for good (attempts exhausted or a permanent failure); `last_error` says why. Terminal.
    DeadLetter,
    /// Cancelled. Terminal.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Running,
        Self::Retrying,
        Self::Completed,
        Self::DeadLetter,
        Self::Cancelled,
    ];

    /// The stored (and displayed) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::DeadLetter => "dead_letter",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the task will never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::DeadLetter | Self::Cancelled)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = MemoryError;

    fn from_str(text: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| MemoryError::InvalidInput {
            what: format!(
                "task status {text:?}: expected pending, running, retrying, completed, dead_letter or cancelled"
            ),
        })
    }
}

/// A task to enqueue. Build with [`NewTask::new`] and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// The queue (role) it goes to, e.g. `developer`.
    pub role: String,
    /// Claim order: lower first.
    pub priority: Priority,
    /// Among equal priorities, earlier deadlines are claimed first (none = last).
    pub deadline: Option<DateTime<Utc>>,
    /// The task this one was spawned from.
    pub parent_id: Option<String>,
    /// The caller's task description (the orchestrator stores its `Task` here).
    pub payload: Value,
    /// Enqueueing a key that already exists returns the existing task instead of a new one.
    pub idempotency_key: Option<String>,
    /// How many claims the task gets before it is dead-lettered (at least 1).
    pub max_attempts: u32,
}

impl NewTask {
    /// A medium-priority task for `role` with 3 attempts and no deadline, parent or key.
    pub fn new(role: impl Into<String>, payload: Value) -> Self {
        Self {
            role: role.into(),
            priority: Priority::MEDIUM,
            deadline: None,
            parent_id: None,
            payload,
            idempotency_key: None,
            max_attempts: 3,
        }
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the parent task.
    pub fn with_parent(mut self, parent_id: impl Into<String>) -> Self {
        self.parent_id = Some(parent_id.into());
        self
    }

    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the maximum number of attempts.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Checks the fields every backend refuses.
    pub fn validate(&self) -> Result<()> {
        if self.role.is_empty() {
            return Err(MemoryError::InvalidInput {
                what: "task role is empty".into(),
            });
        }
        if self.max_attempts == 0 {
            return Err(MemoryError::InvalidInput {
                what: format!(
                    "task for role {}: max_attempts must be at least 1",
                    self.role
                ),
            });
        }
        Ok(())
    }
}

/// The outcome of enqueueing one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The task's id (the existing task's when the idempotency key was already known).
    pub id: String,
    /// `false` when the idempotency key already existed and nothing was inserted.
    pub created: bool,
}

/// The worker holding a running task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker's name as given to `claim`.
    pub owner: String,
    /// When the lease runs out unless extended by a heartbeat.
    pub expires_at: DateTime<Utc>,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Unique id (a UUID v7, so ids sort by creation time).
    pub id: String,
    /// Queue (role).
    pub role: String,
    /// Current status.
    pub status: TaskStatus,
    /// Claim priority (lower first).
    pub priority: Priority,
    /// Optional deadline.
    pub deadline: Option<DateTime<Utc>>,
    /// Parent task.
    pub parent_id: Option<String>,
    /// The caller's payload.
    pub payload: Value,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Claims so far.
    pub attempts: u32,
    /// Claims allowed.
    pub max_attempts: u32,
    /// The error of the last failure.
    pub last_error: Option<String>,
    /// The result, once completed.
    pub result: Option<Value>,
    /// While retrying: when it becomes claimable again.
    pub not_before: Option<DateTime<Utc>>,
    /// While running: who holds it and until when.
    pub lease: Option<Lease>,
    /// Increases by one on every claim; writes with an older token are refused.
    pub fencing_token: u64,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A task handed to a worker by `claim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedTask {
    /// The task, now `running`.
    pub task: TaskRecord,
    /// The fencing token to present to `heartbeat`, `complete` and `fail`.
    pub token: u64,
}

/// How a failure is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Retry after a backoff while attempts remain, then dead-letter.
    Transient,
    /// Dead-letter now (retrying cannot help).
    Permanent,
}

/// Exponential backoff between attempts: `base_delay * 2^(attempt-1)`, capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base_delay: Duration,
    /// Upper bound of the delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, at most 5 min.
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next claim after `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Filter for task listings. Every field is optional; results come in enqueue order (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this role.
    pub role: Option<String>,
    /// Only children of this task.
    pub parent_id: Option<String>,
    /// Only tasks enqueued at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only tasks enqueued strictly before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Which page of the result.
    pub page: Page,
}

/// Number of tasks of one role in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCount {
    /// Role.
    pub role: String,
    /// Status.
    pub status: TaskStatus,
    /// How many.
    pub count: u64,
}

/// One recorded state change of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTransition {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The previous status (`None` for the enqueue).
    pub from: Option<TaskStatus>,
    /// The new status.
    pub to: TaskStatus,
    /// Why, in words (the worker, the error, the cancel reason...).
    pub reason: String,
}

/// A durable priority queue per role.
///
/// Exactly-once in effect: a claim hands a task to one worker with a fencing token; only the
/// holder of the current token can heartbeat, complete or fail it. Every write is durable when
/// the call returns `Ok`, and every state change is recorded in the task's history.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait TaskStore: Send + Sync {
    /// Enqueues tasks in one transaction, in order. A task whose idempotency key already exists
    /// (in the store or earlier in the same batch) is not inserted; its existing id is returned.
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>>;

    /// Claims the next task of `role` for `worker`: lowest priority number first, then earliest
    /// deadline (tasks without one last), then first enqueued. Retrying tasks whose backoff has
    /// elapsed are pending again. `None` when nothing is claimable.
    async fn claim(&self, role: &str, worker: &str, lease: Duration)
    -> Result<Option<ClaimedTask>>;

    /// Extends the lease to now + `lease`; returns the new expiry.
    /// Refused with [`MemoryError::StaleLease`] unless `token` is current and the task running.
    async fn heartbeat(&self, id: &str, token: u64, lease: Duration) -> Result<DateTime<Utc>>;

    /// Marks the task completed with `result`. Refused for a stale token.
    async fn complete(&self, id: &str, token: u64, result: Value) -> Result<TaskRecord>;

    /// Records a failure: retrying after the store's backoff while attempts remain and the
    /// failure is transient, otherwise dead-lettered with `error`. Refused for a stale token.
    async fn fail(
        &self,
        id: &str,
        token: u64,
        error: &str,
        kind: FailureKind,
    ) -> Result<TaskRecord>;

    /// Cancels a pending, retrying or running task; `false` if it was already terminal.
    async fn cancel(&self, id: &str, reason: &str) -> Result<bool>;

    /// The stuck-task sweep: running tasks whose lease expired go back to pending (or to
    /// dead-letter when no attempts remain). Returns the ids it moved.
    async fn requeue_expired(&self) -> Result<Vec<String>>;

    /// One task.
    async fn get(&self, id: &str) -> Result<Option<TaskRecord>>;

    /// Tasks matching `query`, oldest first.
    async fn query(&self, query: TaskQuery) -> Result<Vec<TaskRecord>>;

    /// Number of tasks per role and status (only non-zero counts).
    async fn counts(&self) -> Result<Vec<TaskCount>>;

    /// Every state change of the task, oldest first.
    async fn history(&self, id: &str) -> Result<Vec<TaskTransition>>;
}

impl dyn TaskStore {
    /// Enqueues one task.
    pub async fn enqueue_one(&self, task: NewTask) -> Result<Enqueued> {
        self.enqueue(vec![task])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| MemoryError::Corrupt {
                what: "enqueueing one task returned no id".into(),
            })
    }
}

/// Converts a lease or backoff duration into a time delta, refusing absurd values.
pub(crate) fn delta(duration: Duration, what: &str) -> Result<TimeDelta> {
    TimeDelta::from_std(duration).map_err(|_| MemoryError::InvalidInput {
        what: format!("{what} {duration:?} is too long"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        };
        let delays: Vec<u64> = (1..=6)
            .map(|attempt| policy.delay_after(attempt).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 30, 30]);
        assert_eq!(
            policy.delay_after(u32::MAX),
            Duration::from_secs(30),
            "no overflow"
        );
    }

    #[test]
    fn priorities_parse_by_name_or_number() {
        assert_eq!("high".parse::<Priority>().unwrap(), Priority::HIGH);
        assert_eq!("medium".parse::<Priority>().unwrap(), Priority(5));
        assert_eq!("low".parse::<Priority>().unwrap(), Priority(10));
        assert_eq!("3".parse::<Priority>().unwrap(), Priority(3));
        let error = "urgent".parse::<Priority>().unwrap_err();
        assert!(error.to_string().contains("urgent"), "{error}");
        assert!(Priority::HIGH < Priority::MEDIUM && Priority::MEDIUM < Priority::LOW);
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        let terminal: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                TaskStatus::Completed,
                TaskStatus::DeadLetter,
                TaskStatus::Cancelled
            ]
        );
        assert!("done".parse::<TaskStatus>().is_err());
    }
}
