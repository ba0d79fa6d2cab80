//! The `memory` section of `agentd.yaml`, and opening the backend it names.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    Clock, MemoryError, MemoryStore, PostgresOptions, PostgresStore, Result, SqliteOptions,
    SqliteStore, TaskStore,
};

/// Which backend holds memory and tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// An embedded SQLite file (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL server (scale-out).
    Postgres,
}

/// SQLite commit durability (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// With WAL: a commit survives a crash of the process; the last commits may be lost on
    /// power loss. Much faster.
    #[default]
    Normal,
    /// A commit also survives power loss (fsync on every commit).
    Full,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub fn pragma_value(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// The `memory` section of the configuration file.
///
/// ```yaml
/// memory:
///   backend: sqlite          # sqlite | postgres
///   path: .agentd/memory.db  # SQLite file
///   synchronous: normal      # normal | full
///   # url: postgres://agentd@127.0.0.1:5432/agentd   # when backend is postgres
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySettings {
    /// `sqlite` (embedded file, default) or `postgres`.
    pub backend: BackendKind,
    /// The SQLite database file; its directory is created if missing. Default `.agentd/memory.db`
    /// (relative to the working directory). Unused for `postgres`.
    pub path: PathBuf,
    /// PostgreSQL connection URL, e.g. `postgres://agentd@127.0.0.1:5432/agentd`. Required for
    /// `postgres`, unused for `sqlite`. May hold a password: it is never logged.
    pub url: Option<String>,
    /// SQLite durability: `normal` (default; survives process crashes) or `full` (also power loss).
    pub synchronous: Synchronous,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            backend: BackendKind::Sqlite,
            path: PathBuf::from(".agentd/memory.db"),
            url: None,
            synchronous: Synchronous::Normal,
        }
    }
}

impl std::fmt::Debug for MemorySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("MemorySettings")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("synchronous", &self.synchronous)
            .finish()
    }
}

/// The opened backend, as the two traits the upper layers use.
#[derive(Clone)]
pub struct Stores {
    /// Agent memory, activity log, decision history.
    pub memory: Arc<dyn MemoryStore>,
    /// The durable task queue.
    pub tasks: Arc<dyn TaskStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl MemorySettings {
    /// Opens the configured backend (migrating its schema) with default tuning.
    pub async fn open(&self, clock: Arc<dyn Clock>) -> Result<Stores> {
        match self.backend {
            BackendKind::Sqlite => {
                let options = SqliteOptions {
                    synchronous: self.synchronous,
                    ..SqliteOptions::default()
                };
                let store = SqliteStore::open(&self.path, options, clock).await?;
                Ok(Stores {
                    memory: Arc::new(store.clone()),
                    tasks: Arc::new(store),
                })
            }
            BackendKind::Postgres => {
                let url = self
                    .url
                    .as_deref()
                    .ok_or_else(|| MemoryError::InvalidInput {
                        what: "memory.url is required when memory.backend is postgres".into(),
                    })?;
                let store = PostgresStore::connect(url, PostgresOptions::default(), clock).await?;
                Ok(Stores {
                    memory: Arc::new(store.clone()),
                    tasks: Arc::new(store),
                })
            }
        }
    }
}
