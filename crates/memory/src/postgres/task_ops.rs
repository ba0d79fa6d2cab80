//! `TaskStore` on PostgreSQL. Each operation is one transaction; claims lock the chosen row
//! with `FOR UPDATE SKIP LOCKED`, so concurrent workers (in any process) never get the same task.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Transaction};

use super::{PostgresStore, col, limit_offset, millis, opt_time_from, pg, time_from};
use crate::task::delta;
use crate::{
    ClaimedTask, Enqueued, FailureKind, Lease, MemoryError, NewTask, Priority, Result, TaskCount,
    TaskQuery, TaskRecord, TaskStatus, TaskStore, TaskTransition,
};

const TASK_COLUMNS: &str = "id, role, status, priority, deadline, parent_id, payload, idempotency_key, attempts, \
    max_attempts, last_error, result, not_before, lease_owner, lease_expires_at, fencing_token, created_at, updated_at";

fn status_of(row: &Row, name: &'static str) -> Result<TaskStatus> {
    col::<String>(row, name)?.parse()
}

fn count_of(row: &Row, name: &'static str) -> Result<u32> {
    let value: i32 = col(row, name)?;
    u32::try_from(value).map_err(|_| MemoryError::Corrupt {
        what: format!("column {name}: {value}"),
    })
}

fn token_of(row: &Row) -> Result<u64> {
    let value: i64 = col(row, "fencing_token")?;
    u64::try_from(value).map_err(|_| MemoryError::Corrupt {
        what: format!("fencing token {value}"),
    })
}

fn task_record(row: &Row) -> Result<TaskRecord> {
    let priority: i16 = col(row, "priority")?;
    let lease_owner: Option<String> = col(row, "lease_owner")?;
    let lease_expires_at = opt_time_from(col(row, "lease_expires_at")?, "lease_expires_at")?;
    Ok(TaskRecord {
        id: col(row, "id")?,
        role: col(row, "role")?,
        status: status_of(row, "status")?,
        priority: Priority(u8::try_from(priority).map_err(|_| MemoryError::Corrupt {
            what: format!("priority {priority}"),
        })?),
        deadline: opt_time_from(col(row, "deadline")?, "deadline")?,
        parent_id: col(row, "parent_id")?,
        payload: col(row, "payload")?,
        idempotency_key: col(row, "idempotency_key")?,
        attempts: count_of(row, "attempts")?,
        max_attempts: count_of(row, "max_attempts")?,
        last_error: col(row, "last_error")?,
        result: col(row, "result")?,
        not_before: opt_time_from(col(row, "not_before")?, "not_before")?,
        lease: match (lease_owner, lease_expires_at) {
            (Some(owner), Some(expires_at)) => Some(Lease { owner, expires_at }),
            _ => None,
        },
        fencing_token: token_of(row)?,
        created_at: time_from(col(row, "created_at")?, "created_at")?,
        updated_at: time_from(col(row, "updated_at")?, "updated_at")?,
    })
}

async fn record_transition(
    tx: &Transaction<'_>,
    task_id: &str,
    from: Option<TaskStatus>,
    to: TaskStatus,
    reason: &str,
    at: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO task_transitions (task_id, from_status, to_status, reason, at) VALUES ($1, $2, $3, $4, $5)",
        &[&task_id, &from.map(TaskStatus::as_str), &to.as_str(), &reason, &at],
    )
    .await
    .map_err(pg("record task transition"))?;
    Ok(())
}

fn token_param(token: u64) -> i64 {
    // A token beyond i64 was never issued, so mapping it to an impossible value makes it stale.
    i64::try_from(token).unwrap_or(-1)
}

async fn stale_or_missing(client: &impl GenericClient, id: &str, token: u64) -> MemoryError {
    let current = client
        .query_opt(
            "SELECT status, fencing_token FROM tasks WHERE id = $1",
            &[&id],
        )
        .await;
    match current {
        Ok(Some(row)) => match (status_of(&row, "status"), token_of(&row)) {
            (Ok(status), Ok(current_token)) => MemoryError::StaleLease {
                id: id.to_owned(),
                token,
                current_token,
                status,
            },
            (Err(error), _) | (_, Err(error)) => error,
        },
        Ok(None) => MemoryError::TaskNotFound { id: id.to_owned() },
        Err(error) => pg("look up task")(error),
    }
}

async fn enqueue_one(tx: &Transaction<'_>, task: NewTask, now: i64) -> Result<Enqueued> {
    let id = uuid::Uuid::now_v7().to_string();
    let max_attempts = i32::try_from(task.max_attempts).map_err(|_| MemoryError::InvalidInput {
        what: format!("max_attempts {} is too large", task.max_attempts),
    })?;
    let inserted = tx
        .query_opt(
            "INSERT INTO tasks (id, role, status, priority, deadline, parent_id, payload, idempotency_key, max_attempts,
                                created_at, updated_at)
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            &[
                &id,
                &task.role,
                &i16::from(task.priority.0),
                &task.deadline.map(millis),
                &task.parent_id,
                &task.payload,
                &task.idempotency_key,
                &max_attempts,
                &now,
            ],
        )
        .await
        .map_err(pg("enqueue"))?;
    if inserted.is_some() {
        record_transition(tx, &id, None, TaskStatus::Pending, "enqueued", now).await?;
        return Ok(Enqueued { id, created: true });
    }
    let existing = tx
        .query_one(
            "SELECT id FROM tasks WHERE idempotency_key = $1",
            &[&task.idempotency_key],
        )
        .await
        .map_err(pg("enqueue"))?;
    Ok(Enqueued {
        id: col(&existing, "id")?,
        created: false,
    })
}

async fn promote_due_retries(tx: &Transaction<'_>, role: &str, now: i64) -> Result<()> {
    let promoted = tx
        .query(
            "UPDATE tasks SET status = 'pending', not_before = NULL, updated_at = $2
             WHERE seq IN (SELECT seq FROM tasks WHERE status = 'retrying' AND role = $1 AND not_before <= $2
                           FOR UPDATE SKIP LOCKED)
             RETURNING id",
            &[&role, &now],
        )
        .await
        .map_err(pg("promote due retries"))?;
    for row in promoted {
        let id: String = col(&row, "id")?;
        record_transition(
            tx,
            &id,
            Some(TaskStatus::Retrying),
            TaskStatus::Pending,
            "backoff elapsed",
            now,
        )
        .await?;
    }
    Ok(())
}

impl PostgresStore {
    async fn in_transaction<T, F>(&self, operation: &'static str, work: F) -> Result<T>
    where
        F: for<'t> FnOnce(
            &'t Transaction<'t>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T>> + Send + 't>,
        >,
    {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(operation))?;
        let value = work(&tx).await?;
        tx.commit().await.map_err(pg(operation))?;
        Ok(value)
    }
}

#[async_trait::async_trait]
impl TaskStore for PostgresStore {
    #[tracing::instrument(level = "debug", skip_all, fields(tasks = tasks.len()))]
    async fn enqueue(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        tasks.iter().try_for_each(NewTask::validate)?;
        let now = millis(self.now());
        self.in_transaction("enqueue", move |tx| {
            Box::pin(async move {
                let mut enqueued = Vec::with_capacity(tasks.len());
                for task in tasks {
                    enqueued.push(enqueue_one(tx, task, now).await?);
                }
                Ok(enqueued)
            })
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
        let now = millis(now);
        let (role, worker) = (role.to_owned(), worker.to_owned());
        self.in_transaction("claim", move |tx| {
            Box::pin(async move {
                promote_due_retries(tx, &role, now).await?;
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE tasks SET status = 'running', attempts = attempts + 1,
                                              fencing_token = fencing_token + 1, lease_owner = $2,
                                              lease_expires_at = $3, updated_at = $4
                             WHERE seq = (SELECT seq FROM tasks WHERE role = $1 AND status = 'pending'
                                          ORDER BY priority, coalesce(deadline, 9223372036854775807), seq
                                          LIMIT 1 FOR UPDATE SKIP LOCKED)
                             RETURNING {TASK_COLUMNS}"
                        ),
                        &[&role, &worker, &expires, &now],
                    )
                    .await
                    .map_err(pg("claim"))?;
                let Some(row) = row else { return Ok(None) };
                let task = task_record(&row)?;
                let reason = format!(
                    "claimed by {worker} (attempt {} of {}, token {})",
                    task.attempts, task.max_attempts, task.fencing_token
                );
                record_transition(tx, &task.id, Some(TaskStatus::Pending), TaskStatus::Running, &reason, now).await?;
                tracing::debug!(task_id = %task.id, role, worker, token = task.fencing_token, "claimed task");
                Ok(Some(ClaimedTask { token: task.fencing_token, task }))
            })
        })
        .await
    }

    #[tracing::instrument(level = "trace", skip(self, id, lease), fields(task_id = id))]
    async fn heartbeat(&self, id: &str, token: u64, lease: Duration) -> Result<DateTime<Utc>> {
        let now = self.now();
        let expires_at = now + delta(lease, "lease")?;
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE tasks SET lease_expires_at = $3, updated_at = $4
                 WHERE id = $1 AND status = 'running' AND fencing_token = $2",
                &[&id, &token_param(token), &millis(expires_at), &millis(now)],
            )
            .await
            .map_err(pg("heartbeat"))?;
        if updated == 0 {
            Err(stale_or_missing(&*client, id, token).await)
        } else {
            Ok(expires_at)
        }
    }

    #[tracing::instrument(level = "debug", skip(self, id, result), fields(task_id = id))]
    async fn complete(&self, id: &str, token: u64, result: Value) -> Result<TaskRecord> {
        let now = millis(self.now());
        let id = id.to_owned();
        self.in_transaction("complete task", move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE tasks SET status = 'completed', result = $3, lease_owner = NULL,
                                              lease_expires_at = NULL, updated_at = $4
                             WHERE id = $1 AND status = 'running' AND fencing_token = $2 RETURNING {TASK_COLUMNS}"
                        ),
                        &[&id, &token_param(token), &result, &now],
                    )
                    .await
                    .map_err(pg("complete task"))?;
                let Some(row) = row else { return Err(stale_or_missing(tx, &id, token).await) };
                let reason = format!("completed (token {token})");
                record_transition(tx, &id, Some(TaskStatus::Running), TaskStatus::Completed, &reason, now).await?;
                task_record(&row)
            })
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
        let now = self.now();
        let retry = self.inner.retry;
        let (id, error) = (id.to_owned(), error.to_owned());
        self.in_transaction("fail task", move |tx| {
            Box::pin(async move {
                let running = tx
                    .query_opt(
                        "SELECT attempts, max_attempts FROM tasks
                         WHERE id = $1 AND status = 'running' AND fencing_token = $2 FOR UPDATE",
                        &[&id, &token_param(token)],
                    )
                    .await
                    .map_err(pg("fail task"))?;
                let Some(running) = running else { return Err(stale_or_missing(tx, &id, token).await) };
                let (attempts, max_attempts) = (count_of(&running, "attempts")?, count_of(&running, "max_attempts")?);
                let retry_at = match kind {
                    FailureKind::Transient if attempts < max_attempts => {
                        Some(now + delta(retry.delay_after(attempts), "retry backoff")?)
                    }
                    _ => None,
                };
                let (status, reason) = match retry_at {
                    Some(at) => {
                        (TaskStatus::Retrying, format!("attempt {attempts} of {max_attempts} failed, retry at {at}: {error}"))
                    }
                    None if kind == FailureKind::Permanent => {
                        (TaskStatus::DeadLetter, format!("permanent failure: {error}"))
                    }
                    None => {
                        (TaskStatus::DeadLetter, format!("attempt {attempts} of {max_attempts} failed, none left: {error}"))
                    }
                };
                let row = tx
                    .query_one(
                        &format!(
                            "UPDATE tasks SET status = $2, last_error = $3, not_before = $4, lease_owner = NULL,
                                              lease_expires_at = NULL, updated_at = $5
                             WHERE id = $1 RETURNING {TASK_COLUMNS}"
                        ),
                        &[&id, &status.as_str(), &error, &retry_at.map(millis), &millis(now)],
                    )
                    .await
                    .map_err(pg("fail task"))?;
                record_transition(tx, &id, Some(TaskStatus::Running), status, &reason, millis(now)).await?;
                task_record(&row)
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, id), fields(task_id = id))]
    async fn cancel(&self, id: &str, reason: &str) -> Result<bool> {
        let now = millis(self.now());
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.in_transaction("cancel task", move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt("SELECT status FROM tasks WHERE id = $1 FOR UPDATE", &[&id])
                    .await
                    .map_err(pg("cancel task"))?;
                let Some(row) = row else {
                    return Err(MemoryError::TaskNotFound { id });
                };
                let status = status_of(&row, "status")?;
                if status.is_terminal() {
                    return Ok(false);
                }
                tx.execute(
                    "UPDATE tasks SET status = 'cancelled', not_before = NULL, lease_owner = NULL,
                                      lease_expires_at = NULL, updated_at = $2 WHERE id = $1",
                    &[&id, &now],
                )
                .await
                .map_err(pg("cancel task"))?;
                record_transition(
                    tx,
                    &id,
                    Some(status),
                    TaskStatus::Cancelled,
                    &format!("cancelled: {reason}"),
                    now,
                )
                .await?;
                Ok(true)
            })
        })
        .await
    }

    async fn requeue_expired(&self) -> Result<Vec<String>> {
        let now = millis(self.now());
        let moved = self
            .in_transaction("requeue expired leases", move |tx| {
                Box::pin(async move {
                    let expired = tx
                        .query(
                            "SELECT id, attempts, max_attempts, lease_owner FROM tasks
                             WHERE status = 'running' AND lease_expires_at <= $1 FOR UPDATE SKIP LOCKED",
                            &[&now],
                        )
                        .await
                        .map_err(pg("requeue expired leases"))?;
                    let mut moved = Vec::with_capacity(expired.len());
                    for row in expired {
                        let id: String = col(&row, "id")?;
                        let (attempts, max_attempts) = (count_of(&row, "attempts")?, count_of(&row, "max_attempts")?);
                        let owner: String = col::<Option<String>>(&row, "lease_owner")?.unwrap_or_default();
                        let (status, last_error) = if attempts >= max_attempts {
                            let error = format!("lease of {owner} expired on attempt {attempts} of {max_attempts}");
                            (TaskStatus::DeadLetter, Some(error))
                        } else {
                            (TaskStatus::Pending, None)
                        };
                        tx.execute(
                            "UPDATE tasks SET status = $2, last_error = coalesce($3, last_error), lease_owner = NULL,
                                              lease_expires_at = NULL, updated_at = $4 WHERE id = $1",
                            &[&id, &status.as_str(), &last_error, &now],
                        )
                        .await
                        .map_err(pg("requeue expired leases"))?;
                        let reason = last_error.unwrap_or_else(|| format!("lease of {owner} expired on attempt {attempts}"));
                        record_transition(tx, &id, Some(TaskStatus::Running), status, &reason, now).await?;
                        moved.push(id);
                    }
                    Ok(moved)
                })
            })
            .await?;
        if !moved.is_empty() {
            tracing::info!(tasks = moved.len(), "requeued tasks with expired leases");
        }
        Ok(moved)
    }

    async fn get(&self, id: &str) -> Result<Option<TaskRecord>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg("get task"))?;
        row.as_ref().map(task_record).transpose()
    }

    async fn query(&self, query: TaskQuery) -> Result<Vec<TaskRecord>> {
        let (limit, offset) = limit_offset(query.page)?;
        let status = query.status.map(TaskStatus::as_str);
        let after = query.created_after.map(millis);
        let before = query.created_before.map(millis);
        let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE TRUE");
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        for (value, clause) in [
            (
                status.as_ref().map(|s| s as &(dyn ToSql + Sync)),
                "status =",
            ),
            (
                query.role.as_ref().map(|s| s as &(dyn ToSql + Sync)),
                "role =",
            ),
            (
                query.parent_id.as_ref().map(|s| s as &(dyn ToSql + Sync)),
                "parent_id =",
            ),
            (
                after.as_ref().map(|s| s as &(dyn ToSql + Sync)),
                "created_at >=",
            ),
            (
                before.as_ref().map(|s| s as &(dyn ToSql + Sync)),
                "created_at <",
            ),
        ] {
            if let Some(value) = value {
                args.push(value);
                sql.push_str(&format!(" AND {clause} ${}", args.len()));
            }
        }
        args.push(&limit);
        args.push(&offset);
        sql.push_str(&format!(
            " ORDER BY seq LIMIT ${} OFFSET ${}",
            args.len() - 1,
            args.len()
        ));
        let client = self.client().await?;
        let rows = client.query(&sql, &args).await.map_err(pg("query tasks"))?;
        rows.iter().map(task_record).collect()
    }

    async fn counts(&self) -> Result<Vec<TaskCount>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT role, status, count(*) AS n FROM tasks GROUP BY role, status ORDER BY role, status", &[])
            .await
            .map_err(pg("count tasks"))?;
        rows.iter()
            .map(|row| {
                let count: i64 = col(row, "n")?;
                Ok(TaskCount {
                    role: col(row, "role")?,
                    status: status_of(row, "status")?,
                    count: u64::try_from(count).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn history(&self, id: &str) -> Result<Vec<TaskTransition>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT at, from_status, to_status, reason FROM task_transitions WHERE task_id = $1 ORDER BY id",
                &[&id],
            )
            .await
            .map_err(pg("task history"))?;
        rows.iter()
            .map(|row| {
                let from: Option<String> = col(row, "from_status")?;
                Ok(TaskTransition {
                    at: time_from(col(row, "at")?, "at")?,
                    from: from.map(|f| f.parse()).transpose()?,
                    to: status_of(row, "to_status")?,
                    reason: col(row, "reason")?,
                })
            })
            .collect()
    }
}
