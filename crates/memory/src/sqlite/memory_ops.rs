//! `MemoryStore` on SQLite.

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;

use super::{SqliteStore, limit_offset, millis, time_at};
use crate::{
    ActivityRecord, DecisionRecord, LogQuery, MemoryEntry, MemoryError, MemoryStore, NewActivity,
    NewDecision, Page, PurgeCounts, Result,
};

const MEMORY_COLUMNS: &str = "id, agent_name, key, value, created_at, updated_at";

/// Reads a JSON TEXT column.
pub(super) fn json_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// Encodes a JSON value for a TEXT column.
pub(super) fn json_text(value: &Value, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(MemoryError::json(what))
}

fn memory_entry(row: &Row<'_>) -> rusqlite::Result<MemoryEntry> {
    Ok(MemoryEntry {
        id: row.get(0)?,
        agent_name: row.get(1)?,
        key: row.get(2)?,
        value: json_at(row, 3)?,
        created_at: time_at(row, 4)?,
        updated_at: time_at(row, 5)?,
    })
}

/// The two log tables share their shape: (id, agent_name, kind, data JSON, timestamp).
struct LogTable {
    table: &'static str,
    kind: &'static str,
    data: &'static str,
}

const ACTIVITIES: LogTable = LogTable {
    table: "activity_logs",
    kind: "activity",
    data: "details",
};
const DECISIONS: LogTable = LogTable {
    table: "decision_history",
    kind: "decision_type",
    data: "decision_data",
};

type LogRow = (i64, String, String, Value, DateTime<Utc>);

fn activity_record((id, agent_name, activity, details, timestamp): LogRow) -> ActivityRecord {
    ActivityRecord {
        id,
        agent_name,
        activity,
        details,
        timestamp,
    }
}

fn decision_record(
    (id, agent_name, decision_type, decision_data, timestamp): LogRow,
) -> DecisionRecord {
    DecisionRecord {
        id,
        agent_name,
        decision_type,
        decision_data,
        timestamp,
    }
}

impl LogTable {
    fn append(
        &self,
        conn: &Connection,
        now: DateTime<Utc>,
        rows: Vec<(String, String, String)>,
    ) -> Result<Vec<LogRow>> {
        let sql = format!(
            "INSERT INTO {} (agent_name, {}, {}, timestamp) VALUES (?1, ?2, ?3, ?4)",
            self.table, self.kind, self.data
        );
        let mut insert = conn
            .prepare_cached(&sql)
            .map_err(MemoryError::sqlite("append log"))?;
        let mut stored = Vec::with_capacity(rows.len());
        for (agent_name, kind, data) in rows {
            insert
                .execute(params![agent_name, kind, data, millis(now)])
                .map_err(MemoryError::sqlite("append log"))?;
            let value = serde_json::from_str(&data).map_err(MemoryError::json(self.data))?;
            stored.push((conn.last_insert_rowid(), agent_name, kind, value, now));
        }
        Ok(stored)
    }

    fn query(&self, conn: &Connection, query: &LogQuery) -> Result<Vec<LogRow>> {
        let mut sql = format!(
            "SELECT id, agent_name, {}, {}, timestamp FROM {} WHERE 1 = 1",
            self.kind, self.data, self.table
        );
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(agent) = &query.agent_name {
            sql.push_str(" AND agent_name = ?");
            args.push(SqlValue::Text(agent.clone()));
        }
        if let Some(kind) = &query.kind {
            sql.push_str(&format!(" AND {} = ?", self.kind));
            args.push(SqlValue::Text(kind.clone()));
        }
        if let Some(since) = query.since {
            sql.push_str(" AND timestamp >= ?");
            args.push(SqlValue::Integer(millis(since)));
        }
        if let Some(until) = query.until {
            sql.push_str(" AND timestamp < ?");
            args.push(SqlValue::Integer(millis(until)));
        }
        let (limit, offset) = limit_offset(query.page)?;
        sql.push_str(" ORDER BY timestamp DESC, id DESC LIMIT ? OFFSET ?");
        args.extend([SqlValue::Integer(limit), SqlValue::Integer(offset)]);
        let mut select = conn
            .prepare_cached(&sql)
            .map_err(MemoryError::sqlite("query log"))?;
        let rows = select
            .query_map(params_from_iter(args), |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    json_at(row, 3)?,
                    time_at(row, 4)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(MemoryError::sqlite("query log"))?;
        Ok(rows)
    }

    fn purge(&self, conn: &Connection, cutoff: DateTime<Utc>) -> Result<u64> {
        let deleted = conn
            .execute(
                &format!("DELETE FROM {} WHERE timestamp < ?1", self.table),
                [millis(cutoff)],
            )
            .map_err(MemoryError::sqlite("purge log"))?;
        Ok(deleted as u64)
    }
}

#[async_trait::async_trait]
impl MemoryStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip(self, value))]
    async fn remember(&self, agent_name: &str, key: &str, value: Value) -> Result<MemoryEntry> {
        let (agent_name, key) = (agent_name.to_owned(), key.to_owned());
        let text = json_text(&value, "memory value")?;
        let now = millis(self.now());
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO agent_memory (agent_name, key, value, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (agent_name, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                 RETURNING {MEMORY_COLUMNS}"
            ))
            .and_then(|mut upsert| upsert.query_row(params![agent_name, key, text, now], memory_entry))
            .map_err(MemoryError::sqlite("remember"))
        })
        .await
    }

    async fn recall(&self, agent_name: &str, key: &str) -> Result<Option<MemoryEntry>> {
        let (agent_name, key) = (agent_name.to_owned(), key.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {MEMORY_COLUMNS} FROM agent_memory WHERE agent_name = ?1 AND key = ?2"
            ))
            .and_then(|mut select| {
                select
                    .query_row(params![agent_name, key], memory_entry)
                    .optional()
            })
            .map_err(MemoryError::sqlite("recall"))
        })
        .await
    }

    async fn forget(&self, agent_name: &str, key: &str) -> Result<bool> {
        let (agent_name, key) = (agent_name.to_owned(), key.to_owned());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM agent_memory WHERE agent_name = ?1 AND key = ?2")
                .and_then(|mut delete| delete.execute(params![agent_name, key]))
                .map(|deleted| deleted > 0)
                .map_err(MemoryError::sqlite("forget"))
        })
        .await
    }

    async fn list(&self, agent_name: &str, page: Page) -> Result<Vec<MemoryEntry>> {
        let agent_name = agent_name.to_owned();
        let (limit, offset) = limit_offset(page)?;
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {MEMORY_COLUMNS} FROM agent_memory WHERE agent_name = ?1
                 ORDER BY updated_at DESC, id DESC LIMIT ?2 OFFSET ?3"
            ))
            .and_then(|mut select| {
                select
                    .query_map(params![agent_name, limit, offset], memory_entry)?
                    .collect()
            })
            .map_err(MemoryError::sqlite("list memory"))
        })
        .await
    }

    async fn list_prefix(
        &self,
        agent_name: &str,
        prefix: &str,
        page: Page,
    ) -> Result<Vec<MemoryEntry>> {
        let (agent_name, prefix) = (agent_name.to_owned(), prefix.to_owned());
        let (limit, offset) = limit_offset(page)?;
        self.read(move |conn| {
            // substr, not LIKE: LIKE is case-insensitive and treats % and _ as wildcards.
            conn.prepare_cached(&format!(
                "SELECT {MEMORY_COLUMNS} FROM agent_memory
                 WHERE agent_name = ?1 AND substr(key, 1, length(?2)) = ?2
                 ORDER BY updated_at DESC, id DESC LIMIT ?3 OFFSET ?4"
            ))
            .and_then(|mut select| {
                select
                    .query_map(params![agent_name, prefix, limit, offset], memory_entry)?
                    .collect()
            })
            .map_err(MemoryError::sqlite("list memory by prefix"))
        })
        .await
    }

    async fn append_activities(&self, activities: Vec<NewActivity>) -> Result<Vec<ActivityRecord>> {
        let rows = activities
            .into_iter()
            .map(|a| {
                Ok((
                    a.agent_name,
                    a.activity,
                    json_text(&a.details, "activity details")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        let stored = self
            .write(move |conn| ACTIVITIES.append(conn, now, rows))
            .await?;
        Ok(stored.into_iter().map(activity_record).collect())
    }

    async fn query_activities(&self, query: LogQuery) -> Result<Vec<ActivityRecord>> {
        let rows = self
            .read(move |conn| ACTIVITIES.query(conn, &query))
            .await?;
        Ok(rows.into_iter().map(activity_record).collect())
    }

    async fn append_decisions(&self, decisions: Vec<NewDecision>) -> Result<Vec<DecisionRecord>> {
        let rows = decisions
            .into_iter()
            .map(|d| {
                Ok((
                    d.agent_name,
                    d.decision_type,
                    json_text(&d.decision_data, "decision data")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let now = self.now();
        let stored = self
            .write(move |conn| DECISIONS.append(conn, now, rows))
            .await?;
        Ok(stored.into_iter().map(decision_record).collect())
    }

    async fn query_decisions(&self, query: LogQuery) -> Result<Vec<DecisionRecord>> {
        let rows = self.read(move |conn| DECISIONS.query(conn, &query)).await?;
        Ok(rows.into_iter().map(decision_record).collect())
    }

    async fn purge_logs_before(&self, cutoff: DateTime<Utc>) -> Result<PurgeCounts> {
        self.write(move |conn| {
            Ok(PurgeCounts {
                activities: ACTIVITIES.purge(conn, cutoff)?,
                decisions: DECISIONS.purge(conn, cutoff)?,
            })
        })
        .await
    }
}
