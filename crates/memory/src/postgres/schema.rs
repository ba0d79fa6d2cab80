//! Versioned migrations for PostgreSQL, tracked in `agentd_schema_version`.

use tokio_postgres::Client;

use super::pg;
use crate::{MemoryError, Result, SCHEMA_VERSION};

/// Migration `i` takes the schema from version `i` to `i + 1`; kept in step with SQLite's.
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE agent_memory (
        id          BIGSERIAL PRIMARY KEY,
        agent_name  TEXT   NOT NULL,
        key         TEXT   NOT NULL,
        value       JSONB  NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        UNIQUE (agent_name, key)
    );
    CREATE INDEX agent_memory_recent ON agent_memory (agent_name, updated_at);

    CREATE TABLE activity_logs (
        id          BIGSERIAL PRIMARY KEY,
        agent_name  TEXT   NOT NULL,
        activity    TEXT   NOT NULL,
        details     JSONB  NOT NULL,
        timestamp   BIGINT NOT NULL
    );
    CREATE INDEX activity_logs_agent ON activity_logs (agent_name, timestamp);
    CREATE INDEX activity_logs_activity ON activity_logs (activity, timestamp);
    CREATE INDEX activity_logs_time ON activity_logs (timestamp);

    CREATE TABLE decision_history (
        id             BIGSERIAL PRIMARY KEY,
        agent_name     TEXT   NOT NULL,
        decision_type  TEXT   NOT NULL,
        decision_data  JSONB  NOT NULL,
        timestamp      BIGINT NOT NULL
    );
    CREATE INDEX decision_history_agent ON decision_history (agent_name, timestamp);
    CREATE INDEX decision_history_type ON decision_history (decision_type, timestamp);
    CREATE INDEX decision_history_time ON decision_history (timestamp);

    CREATE TABLE tasks (
        seq              BIGSERIAL PRIMARY KEY,
        id               TEXT     NOT NULL UNIQUE,
        role             TEXT     NOT NULL,
        status           TEXT     NOT NULL,
        priority         SMALLINT NOT NULL,
        deadline         BIGINT,
        parent_id        TEXT,
        payload          JSONB    NOT NULL,
        idempotency_key  TEXT     UNIQUE,
        attempts         INTEGER  NOT NULL DEFAULT 0,
        max_attempts     INTEGER  NOT NULL,
        last_error       TEXT,
        result           JSONB,
        not_before       BIGINT,
        lease_owner      TEXT,
        lease_expires_at BIGINT,
        fencing_token    BIGINT   NOT NULL DEFAULT 0,
        created_at       BIGINT   NOT NULL,
        updated_at       BIGINT   NOT NULL
    );
    CREATE INDEX tasks_claim ON tasks
        (role, priority, (coalesce(deadline, 9223372036854775807)), seq) WHERE status = 'pending';
    CREATE INDEX tasks_retry_due ON tasks (role, not_before) WHERE status = 'retrying';
    CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE status = 'running';
    CREATE INDEX tasks_status ON tasks (status, seq);
    CREATE INDEX tasks_role_status ON tasks (role, status);
    CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX tasks_created ON tasks (created_at);

    CREATE TABLE task_transitions (
        id           BIGSERIAL PRIMARY KEY,
        task_id      TEXT   NOT NULL,
        from_status  TEXT,
        to_status    TEXT   NOT NULL,
        reason       TEXT   NOT NULL,
        at           BIGINT NOT NULL
    );
    CREATE INDEX task_transitions_task ON task_transitions (task_id, id);
"#];

async fn version(client: &impl tokio_postgres::GenericClient) -> Result<i64> {
    let exists = client
        .query_one(
            "SELECT to_regclass('agentd_schema_version') IS NOT NULL AS present",
            &[],
        )
        .await
        .map_err(pg("read schema version"))?;
    if !super::col::<bool>(&exists, "present")? {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM agentd_schema_version", &[])
        .await
        .map_err(pg("read schema version"))?;
    row.map(|row| super::col::<i64>(&row, "version"))
        .transpose()
        .map(|v| v.unwrap_or(0))
}

/// Refuses a newer schema (before writing anything), then applies missing migrations under an
/// advisory lock so concurrent starters do not race.
pub(super) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<()> {
    let location = format!(
        "PostgreSQL schema {}",
        schema.unwrap_or("(default search_path)")
    );
    let found = version(&*client).await?;
    if found > SCHEMA_VERSION {
        return Err(MemoryError::SchemaTooNew {
            location,
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = client.transaction().await.map_err(pg("schema migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema()))",
        &[],
    )
    .await
    .map_err(pg("schema migration lock"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS agentd_schema_version (version BIGINT NOT NULL)")
        .await
        .map_err(pg("schema migration"))?;
    let current = version(&tx).await?;
    if current > SCHEMA_VERSION {
        return Err(MemoryError::SchemaTooNew {
            location,
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for sql in MIGRATIONS
        .iter()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.batch_execute(sql)
            .await
            .map_err(pg("schema migration"))?;
    }
    tx.batch_execute(&format!(
        "DELETE FROM agentd_schema_version; INSERT INTO agentd_schema_version VALUES ({SCHEMA_VERSION})"
    ))
    .await
    .map_err(pg("schema migration"))?;
    tx.commit().await.map_err(pg("schema migration"))?;
    tracing::info!(version = SCHEMA_VERSION, %location, "applied schema migrations");
    Ok(())
}

// Both backends must agree on what a schema version means.
const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);
