//! Versioned schema migrations, tracked in SQLite's `user_version`.

use rusqlite::Connection;

use crate::{MemoryError, Result};

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only; never edit a
/// released migration.
///
/// Times are INTEGER milliseconds since the Unix epoch (UTC); JSON is TEXT.
const MIGRATIONS: &[&str] = &[
    // 1: the seed's three memory tables, and the task queue.
    r#"
    CREATE TABLE agent_memory (
        id          INTEGER PRIMARY KEY,
        agent_name  TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        value       TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        UNIQUE (agent_name, key)
    );
    CREATE INDEX agent_memory_recent ON agent_memory (agent_name, updated_at);

    CREATE TABLE activity_logs (
        id          INTEGER PRIMARY KEY,
        agent_name  TEXT    NOT NULL,
        activity    TEXT    NOT NULL,
        details     TEXT    NOT NULL,
        timestamp   INTEGER NOT NULL
    );
    CREATE INDEX activity_logs_agent ON activity_logs (agent_name, timestamp);
    CREATE INDEX activity_logs_activity ON activity_logs (activity, timestamp);
    CREATE INDEX activity_logs_time ON activity_logs (timestamp);

    CREATE TABLE decision_history (
        id             INTEGER PRIMARY KEY,
        agent_name     TEXT    NOT NULL,
        decision_type  TEXT    NOT NULL,
        decision_data  TEXT    NOT NULL,
        timestamp      INTEGER NOT NULL
    );
    CREATE INDEX decision_history_agent ON decision_history (agent_name, timestamp);
    CREATE INDEX decision_history_type ON decision_history (decision_type, timestamp);
    CREATE INDEX decision_history_time ON decision_history (timestamp);

    CREATE TABLE tasks (
        seq              INTEGER PRIMARY KEY AUTOINCREMENT,
        id               TEXT    NOT NULL UNIQUE,
        role             TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        priority         INTEGER NOT NULL,
        deadline         INTEGER,
        parent_id        TEXT,
        payload          TEXT    NOT NULL,
        idempotency_key  TEXT    UNIQUE,
        attempts         INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        last_error       TEXT,
        result           TEXT,
        not_before       INTEGER,
        lease_owner      TEXT,
        lease_expires_at INTEGER,
        fencing_token    INTEGER NOT NULL DEFAULT 0,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    );
    -- The claim: one index seek per role, already in claim order, holding only pending tasks,
    -- so its cost does not grow with the number of tasks.
    CREATE INDEX tasks_claim ON tasks
        (role, priority, coalesce(deadline, 9223372036854775807), seq) WHERE status = 'pending';
    CREATE INDEX tasks_retry_due ON tasks (role, not_before) WHERE status = 'retrying';
    CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE status = 'running';
    CREATE INDEX tasks_status ON tasks (status, seq);
    CREATE INDEX tasks_role_status ON tasks (role, status);
    CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX tasks_created ON tasks (created_at);

    CREATE TABLE task_transitions (
        id           INTEGER PRIMARY KEY,
        task_id      TEXT    NOT NULL,
        from_status  TEXT,
        to_status    TEXT    NOT NULL,
        reason       TEXT    NOT NULL,
        at           INTEGER NOT NULL
    );
    CREATE INDEX task_transitions_task ON task_transitions (task_id, id);
    "#,
];

/// The schema version this build writes (SQLite `user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads the file's schema version. Only reads: a non-database file fails here untouched.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Applies the missing migrations, each in its own transaction together with its version bump.
/// The version is re-read inside the write transaction, so two processes opening the same new
/// file at once do not apply a migration twice.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    loop {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(MemoryError::sqlite("schema migration"))?;
        let applied = version(conn).and_then(|current| {
            let next = usize::try_from(current)
                .ok()
                .and_then(|index| MIGRATIONS.get(index));
            match next {
                Some(sql) => {
                    conn.execute_batch(sql)?;
                    conn.pragma_update(None, "user_version", current + 1)?;
                    Ok(Some(current + 1))
                }
                None => Ok(None),
            }
        });
        match applied.and_then(|applied| conn.execute_batch("COMMIT").map(|()| applied)) {
            Ok(Some(to)) => tracing::info!(version = to, "applied schema migration"),
            Ok(None) => return Ok(()),
            Err(source) => {
                // Leave no half-applied migration behind; a failing rollback adds nothing.
                let _ = conn.execute_batch("ROLLBACK");
                return Err(MemoryError::Sqlite {
                    operation: "schema migration",
                    source,
                });
            }
        }
    }
}
