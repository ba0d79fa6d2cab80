//! The `MemoryStore` trait: agent key-value memory, the activity log and the decision history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;

/// A page of a listing: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Maximum number of rows returned (at least 1).
    pub limit: u32,
    /// Number of rows skipped first.
    pub offset: u64,
}

impl Page {
    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { limit, offset: 0 }
    }

    /// The page after this one.
    pub fn next(self) -> Self {
        Self {
            limit: self.limit,
            offset: self.offset + u64::from(self.limit),
        }
    }
}

impl Default for Page {
    /// The first 100 rows.
    fn default() -> Self {
        Self::first(100)
    }
}

/// One remembered value (a row of `agent_memory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Row id.
    pub id: i64,
    /// The agent (or scope) the value belongs to.
    pub agent_name: String,
    /// Key, unique per agent.
    pub key: String,
    /// The value.
    pub value: Value,
    /// When the key was first remembered.
    pub created_at: DateTime<Utc>,
    /// When the value last changed.
    pub updated_at: DateTime<Utc>,
}

/// An activity to append to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewActivity {
    /// The acting agent.
    pub agent_name: String,
    /// What kind of activity (e.g. `task_started`, `llm_call`, `commit`).
    pub activity: String,
    /// Free-form details.
    pub details: Value,
}

/// One row of `activity_logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// Row id (increases with insertion order).
    pub id: i64,
    /// The acting agent.
    pub agent_name: String,
    /// What kind of activity.
    pub activity: String,
    /// Free-form details.
    pub details: Value,
    /// When it was logged.
    pub timestamp: DateTime<Utc>,
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDecision {
    /// The deciding agent.
    pub agent_name: String,
    /// What kind of decision (e.g. `approval`, `verdict`, `task_plan`).
    pub decision_type: String,
    /// The decision and its reasons.
    pub decision_data: Value,
}

/// One row of `decision_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Row id (increases with insertion order).
    pub id: i64,
    /// The deciding agent.
    pub agent_name: String,
    /// What kind of decision.
    pub decision_type: String,
    /// The decision and its reasons.
    pub decision_data: Value,
    /// When it was recorded.
    pub timestamp: DateTime<Utc>,
}

/// Filter for activity and decision queries. Every field is optional; results come newest first
/// (by timestamp, then by id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Only this agent's rows.
    pub agent_name: Option<String>,
    /// Only this activity (for activities) or decision type (for decisions).
    pub kind: Option<String>,
    /// Only rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only rows strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Which page of the result.
    pub page: Page,
}

/// How many rows a retention purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeCounts {
    /// Deleted activity rows.
    pub activities: u64,
    /// Deleted decision rows.
    pub decisions: u64,
}

/// Agent memory, activity log and decision history.
///
/// Writes are durable when the call returns `Ok`. Times come from the store's clock.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait MemoryStore: Send + Sync {
    /// Stores `value` under (`agent_name`, `key`), replacing any previous value
    /// (`created_at` is kept, `updated_at` moves).
    async fn remember(&self, agent_name: &str, key: &str, value: Value) -> Result<MemoryEntry>;

    /// The value under (`agent_name`, `key`), if any.
    async fn recall(&self, agent_name: &str, key: &str) -> Result<Option<MemoryEntry>>;

    /// Deletes (`agent_name`, `key`); `true` if it existed.
    async fn forget(&self, agent_name: &str, key: &str) -> Result<bool>;

    /// The agent's entries, most recently updated first.
    async fn list(&self, agent_name: &str, page: Page) -> Result<Vec<MemoryEntry>>;

    /// The agent's entries whose key starts with `prefix` (case-sensitive), most recently
    /// updated first.
    async fn list_prefix(
        &self,
        agent_name: &str,
        prefix: &str,
        page: Page,
    ) -> Result<Vec<MemoryEntry>>;

    /// Appends activities in one transaction, in order; returns the stored rows.
    async fn append_activities(&self, activities: Vec<NewActivity>) -> Result<Vec<ActivityRecord>>;

    /// Activities matching `query`, newest first.
    async fn query_activities(&self, query: LogQuery) -> Result<Vec<ActivityRecord>>;

    /// Appends decisions in one transaction, in order; returns the stored rows.
    async fn append_decisions(&self, decisions: Vec<NewDecision>) -> Result<Vec<DecisionRecord>>;

    /// Decisions matching `query`, newest first.
    async fn query_decisions(&self, query: LogQuery) -> Result<Vec<DecisionRecord>>;

    /// Retention: deletes activities and decisions logged strictly before `cutoff`.
    /// Agent memory is state, not a log, and is never purged.
    async fn purge_logs_before(&self, cutoff: DateTime<Utc>) -> Result<PurgeCounts>;
}

impl dyn MemoryStore {
    /// Appends one activity.
    pub async fn append_activity(&self, activity: NewActivity) -> Result<ActivityRecord> {
        single(self.append_activities(vec![activity]).await?, "activity")
    }

    /// Records one decision.
    pub async fn append_decision(&self, decision: NewDecision) -> Result<DecisionRecord> {
        single(self.append_decisions(vec![decision]).await?, "decision")
    }
}

fn single<T>(rows: Vec<T>, what: &str) -> Result<T> {
    rows.into_iter()
        .next()
        .ok_or_else(|| crate::MemoryError::Corrupt {
            what: format!("appending one {what} returned no row"),
        })
}
