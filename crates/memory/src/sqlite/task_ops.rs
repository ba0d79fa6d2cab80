//! `TaskStore` on SQLite. Every operation that changes a task runs on the writer connection, so
//! the read-check-update steps of a claim or a completion are never interleaved.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;

use super::memory_ops::{json_at, json_text};
use super::{SqliteStore, limit_offset, millis, opt_time_at, time_at};
use crate::task::delta;
use crate::{
    ClaimedTask, Enqueued, FailureKind, Lease, MemoryError, NewTask, Priority, Result, TaskCount,
    TaskQuery, TaskRecord, TaskStatus, TaskStore, TaskTransition,
};

const TASK_COLUMNS: &str = "id, role, status, priority, deadline, parent_id, payload, idempotency_key, attempts, \
    max_attempts, last_error, result, not_before, lease_owner, lease_expires_at, fencing_token, created_at, updated_at";

// The queries on the claim path. Their plans are asserted in a test: index searches, no sort,
// so a claim costs the same at any queue depth.
pub(crate) const CLAIM_SQL: &str = "SELECT seq FROM tasks WHERE role = ?1 AND status = 'pending' \
    ORDER BY priority, coalesce(deadline, 9223372036854775807), seq LIMIT 1";

fn status_at(row: &Row<'_>, index: usize) -> rusqlite::Result<TaskStatus> {
    let text: String = row.get(index)?;
    text.parse().map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

fn unsigned_at(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

fn count_at(row: &Row<'_>, index: usize) -> rusqlite::Result<u32> {
    let value: i64 = row.get(index)?;
    u32::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

fn task_record(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let priority: i64 = row.get(3)?;
    let lease_owner: Option<String> = row.get(13)?;
    let lease_expires_at = opt_time_at(row, 14)?;
    Ok(TaskRecord {
        id: row.get(0)?,
        role: row.get(1)?,
        status: status_at(row, 2)?,
        priority: Priority(
            u8::try_from(priority)
                .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, priority))?,
        ),
        deadline: opt_time_at(row, 4)?,
        parent_id: row.get(5)?,
        payload: json_at(row, 6)?,
        idempotency_key: row.get(7)?,
        attempts: count_at(row, 8)?,
        max_attempts: count_at(row, 9)?,
        last_error: row.get(10)?,
        result: match row.get::<_, Option<String>>(11)? {
            None => None,
            Some(_) => Some(json_at(row, 11)?),
        },
        not_before: opt_time_at(row, 12)?,
        lease: match (lease_owner, lease_expires_at) {
            (Some(owner), Some(expires_at)) => Some(Lease { owner, expires_at }),
            _ => None,
        },
        fencing_token: unsigned_at(row, 15)?,
        created_at: time_at(row, 16)?,
        updated_at: time_at(row, 17)?,
    })
}

fn record_transition(
    conn: &Connection,
    task_id: &str,
    from: Option<TaskStatus>,
    to: TaskStatus,
    reason: &str,
    at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO task_transitions (task_id, from_status, to_status, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut insert| insert.execute(params![task_id, from.map(TaskStatus::as_str), to.as_str(), reason, at]))
    .map_err(MemoryError::sqlite("record task transition"))?;
    Ok(())
}

fn token_param(token: u64) -> i64 {
    // A token beyond i64 was never issued, so mapping it to an impossible value makes it stale.
    i64::try_from(token).unwrap_or(-1)
}

/// Explains why a fenced write matched no row: unknown task, or a stale lease.
fn stale_or_missing(conn: &Connection, id: &str, token: u64) -> MemoryError {
    let current = conn
        .prepare_cached("SELECT status, fencing_token FROM tasks WHERE id = ?1")
        .and_then(|mut select| {
            select
                .query_row([id], |row| Ok((status_at(row, 0)?, unsigned_at(row, 1)?)))
                .optional()
        });
    match current {
        Ok(Some((status, current_token))) => MemoryError::StaleLease {
            id: id.to_owned(),
            token,
            current_token,
            status,
        },
        Ok(None) => MemoryError::TaskNotFound { id: id.to_owned() },
        Err(source) => MemoryError::Sqlite {
            operation: "look up task",
            source,
        },
    }
}

fn enqueue_one(conn: &Connection, task: NewTask, now: i64) -> Result<Enqueued> {
    if let Some(key) = &task.idempotency_key {
        let existing: Option<String> = conn
            .prepare_cached("SELECT id FROM tasks WHERE idempotency_key = ?1")
            .and_then(|mut select| select.query_row([key], |row| row.get(0)).optional())
            .map_err(MemoryError::sqlite("enqueue"))?;
        if let Some(id) = existing {
            return Ok(Enqueued { id, created: false });
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let payload = json_text(&task.payload, "task payload")?;
    conn.prepare_cached(
        "INSERT INTO tasks (id, role, status, priority, deadline, parent_id, payload, idempotency_key, max_attempts,
                            created_at, updated_at)
         VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            id,
            task.role,
            task.priority.0,
            task.deadline.map(millis),
            task.parent_id,
            payload,
            task.idempotency_key,
            task.max_attempts,
            now
        ])
    })
    .map_err(MemoryError::sqlite("enqueue"))?;
    record_transition(conn, &id, None, TaskStatus::Pending, "enqueued", now)?;
    Ok(Enqueued { id, created: true })
}

pub(crate) const PROMOTE_DUE_SQL: &str = "UPDATE tasks SET status = 'pending', not_before = NULL, updated_at = ?2 \
    WHERE status = 'retrying' AND role = ?1 AND not_before <= ?2 RETURNING id";
pub(crate) const EXPIRED_LEASES_SQL: &str = "SELECT id, attempts, max_attempts, lease_owner FROM tasks \
    WHERE status = 'running' AND lease_expires_at <= ?1";

fn promote_due_retries(conn: &Connection, role: &str, now: i64) -> Result<()> {
    let promoted: Vec<String> = conn
        .prepare_cached(PROMOTE_DUE_SQL)
        .and_then(|mut update| {
            update
                .query_map(params![role, now], |row| row.get(0))?
                .collect()
        })
        .map_err(MemoryError::sqlite("promote due retries"))?;
    for id in promoted {
        record_transition(
            conn,
            &id,
            Some(TaskStatus::Retrying),
            TaskStatus::Pending,
            "backoff elapsed",
            now,
        )?;
    }
    Ok(())
}

fn claim(
    conn: &Connection,
    role: &str,
    worker: &str,
    now: i64,
    expires: i64,
) -> Result<Option<ClaimedTask>> {
    promote_due_retries(conn, role, now)?;
    let next: Option<i64> = conn
        .prepare_cached(CLAIM_SQL)
        .and_then(|mut select| select.query_row([role], |row| row.get(0)).optional())
        .map_err(MemoryError::sqlite("claim"))?;
    let Some(seq) = next else { return Ok(None) };
    let task = conn
        .prepare_cached(&format!(
            "UPDATE tasks SET status = 'running', attempts = attempts + 1, fencing_token = fencing_token + 1,
                              lease_owner = ?2, lease_expires_at = ?3, updated_at = ?4
             WHERE seq = ?1 RETURNING {TASK_COLUMNS}"
        ))
        .and_then(|mut update| update.query_row(params![seq, worker, expires, now], task_record))
        .map_err(MemoryError::sqlite("claim"))?;
    let reason = format!(
        "claimed by {worker} (attempt {} of {}, token {})",
        task.attempts, task.max_attempts, task.fencing_token
    );
    record_transition(
        conn,
        &task.id,
        Some(TaskStatus::Pending),
        TaskStatus::Running,
        &reason,
        now,
    )?;
    Ok(Some(ClaimedTask {
        token: task.fencing_token,
        task,
    }))
}

fn fail(
    conn: &Connection,
    id: &str,
    token: u64,
    error: &str,
    kind: FailureKind,
    now: DateTime<Utc>,
    retry: crate::RetryPolicy,
) -> Result<TaskRecord> {
    let running: Option<(u32, u32)> = conn
        .prepare_cached(
            "SELECT attempts, max_attempts FROM tasks WHERE id = ?1 AND status = 'running' AND fencing_token = ?2",
        )
        .and_then(|mut select| {
            select.query_row(params![id, token_param(token)], |row| Ok((count_at(row, 0)?, count_at(row, 1)?))).optional()
        })
        .map_err(MemoryError::sqlite("fail task"))?;
    let Some((attempts, max_attempts)) = running else {
        return Err(stale_or_missing(conn, id, token));
    };
    let retry_at = match kind {
        FailureKind::Transient if attempts < max_attempts => {
            Some(now + delta(retry.delay_after(attempts), "retry backoff")?)
        }
        _ => None,
    };
    let (status, reason) = match retry_at {
        Some(at) => (
            TaskStatus::Retrying,
            format!("attempt {attempts} of {max_attempts} failed, retry at {at}: {error}"),
        ),
        None if kind == FailureKind::Permanent => (
            TaskStatus::DeadLetter,
            format!("permanent failure: {error}"),
        ),
        None => (
            TaskStatus::DeadLetter,
            format!("attempt {attempts} of {max_attempts} failed, none left: {error}"),
        ),
    };
    let record = conn
        .prepare_cached(&format!(
            "UPDATE tasks SET status = ?2, last_error = ?3, not_before = ?4, lease_owner = NULL,
                              lease_expires_at = NULL, updated_at = ?5
             WHERE id = ?1 RETURNING {TASK_COLUMNS}"
        ))
        .and_then(|mut update| {
            update.query_row(
                params![
                    id,
                    status.as_str(),
                    error,
                    retry_at.map(millis),
                    millis(now)
                ],
                task_record,
            )
        })
        .map_err(MemoryError::sqlite("fail task"))?;
    record_transition(
        conn,
        id,
        Some(TaskStatus::Running),
        status,
        &reason,
        millis(now),
    )?;
    Ok(record)
}

fn cancel(conn: &Connection, id: &str, reason: &str, now: i64) -> Result<bool> {
    let status: Option<TaskStatus> = conn
        .prepare_cached("SELECT status FROM tasks WHERE id = ?1")
        .and_then(|mut select| select.query_row([id], |row| status_at(row, 0)).optional())
        .map_err(MemoryError::sqlite("cancel task"))?;
    let Some(status) = status else {
        return Err(MemoryError::TaskNotFound { id: id.to_owned() });
    };
    if status.is_terminal() {
        return Ok(false);
    }
    conn.prepare_cached(
        "UPDATE tasks SET status = 'cancelled', not_before = NULL, lease_owner = NULL, lease_expires_at = NULL,
                          updated_at = ?2 WHERE id = ?1",
    )
    .and_then(|mut update| update.execute(params![id, now]))
    .map_err(MemoryError::sqlite("cancel task"))?;
    record_transition(
        conn,
        id,
        Some(status),
        TaskStatus::Cancelled,
        &format!("cancelled: {reason}"),
        now,
    )?;
    Ok(true)
}

fn requeue_expired(conn: &Connection, now: i64) -> Result<Vec<String>> {
    type Expired = (String, u32, u32, Option<String>);
    let expired: Vec<Expired> = conn
        .prepare_cached(EXPIRED_LEASES_SQL)
        .and_then(|mut select| {
            select
                .query_map([now], |row| {
                    Ok((
                        row.get(0)?,
                        count_at(row, 1)?,
                        count_at(row, 2)?,
                        row.get(3)?,
                    ))
                })?
                .collect()
        })
        .map_err(MemoryError::sqlite("requeue expired leases"))?;
    let mut moved = Vec::with_capacity(expired.len());
    for (id, attempts, max_attempts, owner) in expired {
        let owner = owner.unwrap_or_default();
        let (status, last_error) = if attempts >= max_attempts {
            (
                TaskStatus::DeadLetter,
                Some(format!(
                    "lease of {owner} expired on attempt {attempts} of {max_attempts}"
                )),
            )
        } else {
            (TaskStatus::Pending, None)
        };
        conn.prepare_cached(
            "UPDATE tasks SET status = ?2, last_error = coalesce(?3, last_error), lease_owner = NULL,
                              lease_expires_at = NULL, updated_at = ?4 WHERE id = ?1",
        )
        .and_then(|mut update| update.execute(params![id, status.as_str(), last_error, now]))
        .map_err(MemoryError::sqlite("requeue expired leases"))?;
        let reason =
            last_error.unwrap_or_else(|| format!("lease of {owner} expired on attempt {attempts}"));
        record_transition(conn, &id, Some(TaskStatus::Running), status, &reason, now)?;
        moved.push(id);
    }
    Ok(moved)
}

fn query(conn: &Connection, query: &TaskQuery) -> Result<Vec<TaskRecord>> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(status) = query.status {
        sql.push_str(" AND status = ?");
        args.push(SqlValue::Text(status.as_str().to_owned()));
    }
    if let Some(role) = &query.role {
        sql.push_str(" AND role = ?");
        args.push(SqlValue::Text(role.clone()));
    }
    if let Some(parent) = &query.parent_id {
        sql.push_str(" AND parent_id = ?");
        args.push(SqlValue::Text(parent.clone()));
    }
    if let Some(after) = query.created_after {
        sql.push_str(" AND created_at >= ?");
        args.push(SqlValue::Integer(millis(after)));
    }
    if let Some(before) = query.created_before {
        sql.push_str(" AND created_at < ?");
        args.push(SqlValue::Integer(millis(before)));
    }
    let (limit, offset) = limit_offset(query.page)?;
    sql.push_str(" ORDER BY seq LIMIT ? OFFSET ?");
    args.extend([SqlValue::Integer(limit), SqlValue::Integer(offset)]);
    conn.prepare_cached(&sql)
        .and_then(|mut select| {
            select
                .query_map(params_from_iter(args), task_record)?
                .collect()
        })
        .map_err(MemoryError::sqlite("query tasks"))
}

#[async_trait::async_trait]
impl TaskStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(tasks = tasks.len()))]
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        tasks.iter().try_for_each(NewTask::validate)?;
        let now = millis(self.now());
        self.write(move |conn| {
            tasks
                .into_iter()
                .map(|task| enqueue_one(conn, task, now))
                .collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn claim(
        &self,
        role: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedTask>> {
        let now = self.now();
        let expires = millis(now + delta(lease, "lease")?);
        let (role_owned, worker_owned) = (role.to_owned(), worker.to_owned());
        let claimed = self
            .write(move |conn| claim(conn, &role_owned, &worker_owned, millis(now), expires))
            .await?;
        if let Some(claimed) = &claimed {
            tracing::debug!(task_id = %claimed.task.id, role, worker, token = claimed.token, "claimed task");
        }
        Ok(claimed)
    }

    #[tracing::instrument(level = "trace", skip(self, id, lease), fields(task_id = id))]
    async fn heartbeat(&self, id: &str, token: u64, lease: Duration) -> Result<DateTime<Utc>> {
        let now = self.now();
        let expires_at = now + delta(lease, "lease")?;
        let id = id.to_owned();
        self.write(move |conn| {
            let updated = conn
                .prepare_cached(
                    "UPDATE tasks SET lease_expires_at = ?3, updated_at = ?4
                     WHERE id = ?1 AND status = 'running' AND fencing_token = ?2",
                )
                .and_then(|mut update| {
                    update.execute(params![
                        id,
                        token_param(token),
                        millis(expires_at),
                        millis(now)
                    ])
                })
                .map_err(MemoryError::sqlite("heartbeat"))?;
            if updated == 0 {
                Err(stale_or_missing(conn, &id, token))
            } else {
                Ok(expires_at)
            }
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, id, result), fields(task_id = id))]
    async fn complete(&self, id: &str, token: u64, result: Value) -> Result<TaskRecord> {
        let result = json_text(&result, "task result")?;
        let now = millis(self.now());
        let id = id.to_owned();
        self.write(move |conn| {
            let record = conn
                .prepare_cached(&format!(
                    "UPDATE tasks SET status = 'completed', result = ?3, lease_owner = NULL, lease_expires_at = NULL,
                                      updated_at = ?4
                     WHERE id = ?1 AND status = 'running' AND fencing_token = ?2 RETURNING {TASK_COLUMNS}"
                ))
                .and_then(|mut update| update.query_row(params![id, token_param(token), result, now], task_record).optional())
                .map_err(MemoryError::sqlite("complete task"))?;
            let Some(record) = record else { return Err(stale_or_missing(conn, &id, token)) };
            let reason = format!("completed (token {token})");
            record_transition(conn, &id, Some(TaskStatus::Running), TaskStatus::Completed, &reason, now)?;
            Ok(record)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, id), fields(task_id = id))]
    async fn fail(
        &self,
        id: &str,
        token: u64,
        error: &str,
        kind: FailureKind,
    ) -> Result<TaskRecord> {
        let (id, error) = (id.to_owned(), error.to_owned());
        let (now, retry) = (self.now(), self.inner.retry);
        self.write(move |conn| fail(conn, &id, token, &error, kind, now, retry))
            .await
    }

    #[tracing::instrument(level = "debug", skip(self, id), fields(task_id = id))]
    async fn cancel(&self, id: &str, reason: &str) -> Result<bool> {
        let (id, reason) = (id.to_owned(), reason.to_owned());
        let now = millis(self.now());
        self.write(move |conn| cancel(conn, &id, &reason, now))
            .await
    }

    async fn requeue_expired(&self) -> Result<Vec<String>> {
        let now = millis(self.now());
        let moved = self.write(move |conn| requeue_expired(conn, now)).await?;
        if !moved.is_empty() {
            tracing::info!(tasks = moved.len(), "requeued tasks with expired leases");
        }
        Ok(moved)
    }

    async fn get(&self, id: &str) -> Result<Option<TaskRecord>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))
                .and_then(|mut select| select.query_row([id], task_record).optional())
                .map_err(MemoryError::sqlite("get task"))
        })
        .await
    }

    async fn query(&self, task_query: TaskQuery) -> Result<Vec<TaskRecord>> {
        self.read(move |conn| query(conn, &task_query)).await
    }

    async fn counts(&self) -> Result<Vec<TaskCount>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT role, status, count(*) FROM tasks GROUP BY role, status ORDER BY role, status")
                .and_then(|mut select| {
                    select
                        .query_map([], |row| {
                            Ok(TaskCount { role: row.get(0)?, status: status_at(row, 1)?, count: unsigned_at(row, 2)? })
                        })?
                        .collect()
                })
                .map_err(MemoryError::sqlite("count tasks"))
        })
        .await
    }

    async fn history(&self, id: &str) -> Result<Vec<TaskTransition>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT at, from_status, to_status, reason FROM task_transitions WHERE task_id = ?1 ORDER BY id")
                .and_then(|mut select| {
                    select
                        .query_map([id], |row| {
                            let from = match row.get::<_, Option<String>>(1)? {
                                None => None,
                                Some(_) => Some(status_at(row, 1)?),
                            };
                            Ok(TaskTransition { at: time_at(row, 0)?, from, to: status_at(row, 2)?, reason: row.get(3)? })
                        })?
                        .collect()
                })
                .map_err(MemoryError::sqlite("task history"))
        })
        .await
    }
}
