//! `MemoryStore` on PostgreSQL.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, col, limit_offset, millis, pg, time_from};
use crate::{
    ActivityRecord, DecisionRecord, LogQuery, MemoryEntry, MemoryStore, NewActivity, NewDecision,
    Page, PurgeCounts, Result,
};

const MEMORY_COLUMNS: &str = "id, agent_name, key, value, created_at, updated_at";

fn memory_entry(row: &Row) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        id: col(row, "id")?,
        agent_name: col(row, "agent_name")?,
        key: col(row, "key")?,
        value: col(row, "value")?,
        created_at: time_from(col(row, "created_at")?, "created_at")?,
        updated_at: time_from(col(row, "updated_at")?, "updated_at")?,
    })
}

/// The two log tables share their shape: (id, agent_name, kind, data JSONB, timestamp).
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

impl LogTable {
    async fn append(
        &self,
        store: &PostgresStore,
        rows: Vec<(String, String, Value)>,
    ) -> Result<Vec<LogRow>> {
        let now = store.now();
        let mut client = store.client().await?;
        let tx = client.transaction().await.map_err(pg("append log"))?;
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {} (agent_name, {}, {}, timestamp) VALUES ($1, $2, $3, $4) RETURNING id",
                self.table, self.kind, self.data
            ))
            .await
            .map_err(pg("append log"))?;
        let mut stored = Vec::with_capacity(rows.len());
        for (agent_name, kind, data) in rows {
            let row = tx
                .query_one(&insert, &[&agent_name, &kind, &data, &millis(now)])
                .await
                .map_err(pg("append log"))?;
            stored.push((col(&row, "id")?, agent_name, kind, data, now));
        }
        tx.commit().await.map_err(pg("append log"))?;
        Ok(stored)
    }

    async fn query(&self, store: &PostgresStore, query: &LogQuery) -> Result<Vec<LogRow>> {
        let mut sql = format!(
            "SELECT id, agent_name, {} AS kind, {} AS data, timestamp FROM {} WHERE TRUE",
            self.kind, self.data, self.table
        );
        let (limit, offset) = limit_offset(query.page)?;
        let since = query.since.map(millis);
        let until = query.until.map(millis);
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(agent) = &query.agent_name {
            args.push(agent);
            sql.push_str(&format!(" AND agent_name = ${}", args.len()));
        }
        if let Some(kind) = &query.kind {
            args.push(kind);
            sql.push_str(&format!(" AND {} = ${}", self.kind, args.len()));
        }
        if let Some(since) = &since {
            args.push(since);
            sql.push_str(&format!(" AND timestamp >= ${}", args.len()));
        }
        if let Some(until) = &until {
            args.push(until);
            sql.push_str(&format!(" AND timestamp < ${}", args.len()));
        }
        args.push(&limit);
        args.push(&offset);
        sql.push_str(&format!(
            " ORDER BY timestamp DESC, id DESC LIMIT ${} OFFSET ${}",
            args.len() - 1,
            args.len()
        ));
        let client = store.client().await?;
        let rows = client.query(&sql, &args).await.map_err(pg("query log"))?;
        rows.iter()
            .map(|row| {
                Ok((
                    col(row, "id")?,
                    col(row, "agent_name")?,
                    col(row, "kind")?,
                    col(row, "data")?,
                    time_from(col(row, "timestamp")?, "timestamp")?,
                ))
            })
            .collect()
    }

    async fn purge(&self, client: &tokio_postgres::Transaction<'_>, cutoff: i64) -> Result<u64> {
        client
            .execute(
                &format!("DELETE FROM {} WHERE timestamp < $1", self.table),
                &[&cutoff],
            )
            .await
            .map_err(pg("purge log"))
    }
}

#[async_trait::async_trait]
impl MemoryStore for PostgresStore {
    #[tracing::instrument(level = "debug", skip(self, value))]
    async fn remember(&self, agent_name: &str, key: &str, value: Value) -> Result<MemoryEntry> {
        let now = millis(self.now());
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO agent_memory (agent_name, key, value, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (agent_name, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
                     RETURNING {MEMORY_COLUMNS}"
                ),
                &[&agent_name, &key, &value, &now],
            )
            .await
            .map_err(pg("remember"))?;
        memory_entry(&row)
    }

    async fn recall(&self, agent_name: &str, key: &str) -> Result<Option<MemoryEntry>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {MEMORY_COLUMNS} FROM agent_memory WHERE agent_name = $1 AND key = $2"
                ),
                &[&agent_name, &key],
            )
            .await
            .map_err(pg("recall"))?;
        row.as_ref().map(memory_entry).transpose()
    }

    async fn forget(&self, agent_name: &str, key: &str) -> Result<bool> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM agent_memory WHERE agent_name = $1 AND key = $2",
                &[&agent_name, &key],
            )
            .await
            .map_err(pg("forget"))?;
        Ok(deleted > 0)
    }

    async fn list(&self, agent_name: &str, page: Page) -> Result<Vec<MemoryEntry>> {
        let (limit, offset) = limit_offset(page)?;
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {MEMORY_COLUMNS} FROM agent_memory WHERE agent_name = $1
                     ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3"
                ),
                &[&agent_name, &limit, &offset],
            )
            .await
            .map_err(pg("list memory"))?;
        rows.iter().map(memory_entry).collect()
    }

    async fn list_prefix(
        &self,
        agent_name: &str,
        prefix: &str,
        page: Page,
    ) -> Result<Vec<MemoryEntry>> {
        let (limit, offset) = limit_offset(page)?;
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {MEMORY_COLUMNS} FROM agent_memory WHERE agent_name = $1 AND starts_with(key, $2)
                     ORDER BY updated_at DESC, id DESC LIMIT $3 OFFSET $4"
                ),
                &[&agent_name, &prefix, &limit, &offset],
            )
            .await
            .map_err(pg("list memory by prefix"))?;
        rows.iter().map(memory_entry).collect()
    }

    async fn append_activities(&self, activities: Vec<NewActivity>) -> Result<Vec<ActivityRecord>> {
        let rows = activities
            .into_iter()
            .map(|a| (a.agent_name, a.activity, a.details))
            .collect();
        let stored = ACTIVITIES.append(self, rows).await?;
        Ok(stored
            .into_iter()
            .map(
                |(id, agent_name, activity, details, timestamp)| ActivityRecord {
                    id,
                    agent_name,
                    activity,
                    details,
                    timestamp,
                },
            )
            .collect())
    }

    async fn query_activities(&self, query: LogQuery) -> Result<Vec<ActivityRecord>> {
        let rows = ACTIVITIES.query(self, &query).await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, agent_name, activity, details, timestamp)| ActivityRecord {
                    id,
                    agent_name,
                    activity,
                    details,
                    timestamp,
                },
            )
            .collect())
    }

    async fn append_decisions(&self, decisions: Vec<NewDecision>) -> Result<Vec<DecisionRecord>> {
        let rows = decisions
            .into_iter()
            .map(|d| (d.agent_name, d.decision_type, d.decision_data))
            .collect();
        let stored = DECISIONS.append(self, rows).await?;
        Ok(stored
            .into_iter()
            .map(
                |(id, agent_name, decision_type, decision_data, timestamp)| DecisionRecord {
                    id,
                    agent_name,
                    decision_type,
                    decision_data,
                    timestamp,
                },
            )
            .collect())
    }

    async fn query_decisions(&self, query: LogQuery) -> Result<Vec<DecisionRecord>> {
        let rows = DECISIONS.query(self, &query).await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, agent_name, decision_type, decision_data, timestamp)| DecisionRecord {
                    id,
                    agent_name,
                    decision_type,
                    decision_data,
                    timestamp,
                },
            )
            .collect())
    }

    async fn purge_logs_before(&self, cutoff: DateTime<Utc>) -> Result<PurgeCounts> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg("purge log"))?;
        let counts = PurgeCounts {
            activities: ACTIVITIES.purge(&tx, millis(cutoff)).await?,
            decisions: DECISIONS.purge(&tx, millis(cutoff)).await?,
        };
        tx.commit().await.map_err(pg("purge log"))?;
        Ok(counts)
    }
}
