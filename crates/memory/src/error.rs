//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in a memory or task store.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The database file could not be opened or prepared (permissions, missing directory, I/O).
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory for the database file could not be created.
    #[error("cannot create the store directory {dir}: {source}")]
    CreateDirectory {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not an SQLite database (or its header is corrupt). It was not modified.
    #[error("{path} is not an SQLite database or is corrupt; the file was left untouched")]
    NotADatabase {
        /// The offending file.
        path: PathBuf,
    },
    /// The directory that holds (or would hold) the database is not writable, and a WAL database
    /// needs to create its `-wal` and `-shm` files there.
    #[error(
        "the store directory {dir} is read-only; the database needs it writable for its -wal and -shm files"
    )]
    ReadOnlyDirectory {
        /// The read-only directory.
        dir: PathBuf,
    },
    /// The database was written by a newer agentd (its schema version is higher than this build knows).
    #[error(
        "{location} has schema version {found}, but this build supports up to {supported}; upgrade agentd (the store was left untouched)"
    )]
    SchemaTooNew {
        /// The database file, or the PostgreSQL schema.
        location: String,
        /// Version found in the store.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// A database statement failed.
    #[error("{operation} failed: {source}")]
    Sqlite {
        /// What the store was doing.
        operation: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL statement or connection failed.
    #[error("{operation} failed: {message}")]
    Postgres {
        /// What the store was doing.
        operation: &'static str,
        /// The server's or driver's message.
        message: String,
    },
    /// The transaction that carried a write could not commit; the write did not happen.
    #[error("commit failed, the write was rolled back: {message}")]
    Commit {
        /// SQLite's message.
        message: String,
    },
    /// A JSON value could not be encoded or decoded.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        /// Which value (column or field).
        what: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored row holds a value this build cannot interpret.
    #[error("corrupt row: {what}")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
    /// The caller passed a value the store refuses.
    #[error("invalid argument: {what}")]
    InvalidInput {
        /// What was wrong.
        what: String,
    },
    /// No task has this id.
    #[error("task {id} not found")]
    TaskNotFound {
        /// The unknown id.
        id: String,
    },
    /// The caller's lease is no longer valid: the task was re-claimed (newer fencing token),
    /// completed, failed, cancelled or swept back to the queue.
    #[error(
        "task {id}: fencing token {token} is stale (task is {status}, current token {current_token})"
    )]
    StaleLease {
        /// The task.
        id: String,
        /// The token the caller presented.
        token: u64,
        /// The task's current fencing token.
        current_token: u64,
        /// The task's current status.
        status: crate::TaskStatus,
    },
    /// The store's writer thread is gone (the store was shut down or the thread died).
    #[error("the store's writer thread has stopped")]
    WriterStopped,
    /// A database worker (blocking task, writer thread start, connection pool) failed, e.g.
    /// because the runtime is shutting down.
    #[error("a database worker failed: {message}")]
    Worker {
        /// What failed.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = MemoryError> = std::result::Result<T, E>;

impl MemoryError {
    pub(crate) fn sqlite(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| Self::Sqlite { operation, source }
    }

    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| Self::Json { what, source }
    }
}
