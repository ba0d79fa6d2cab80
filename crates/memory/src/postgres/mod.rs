//! The PostgreSQL backend: the same tables as SQLite (JSON as JSONB, times as BIGINT
//! milliseconds), a small connection pool, claims with `FOR UPDATE SKIP LOCKED`, so many
//! processes can share one queue.

mod memory_ops;
mod schema;
mod task_ops;

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, NoTls};

use crate::{Clock, MemoryError, Result, RetryPolicy};

/// Tuning of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema (namespace) holding the tables; created if missing. `None`: the server's
    /// default `search_path` (usually `public`).
    pub schema: Option<String>,
    /// Backoff between task attempts.
    pub retry: RetryPolicy,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            retry: RetryPolicy::default(),
            max_connections: 8,
        }
    }
}

/// The PostgreSQL implementation of [`crate::MemoryStore`] and [`crate::TaskStore`]. Cheap to
/// clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

struct Inner {
    url: String,
    schema: Option<String>,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://agentd@127.0.0.1:5432/agentd`), creates the schema if
    /// needed and applies pending migrations. A schema written by a newer build is refused
    /// untouched.
    pub async fn connect(
        url: &str,
        options: PostgresOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if let Some(schema) = &options.schema {
            let valid = !schema.is_empty()
                && schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(MemoryError::InvalidInput {
                    what: format!(
                        "PostgreSQL schema name {schema:?}: use lower-case letters, digits and _"
                    ),
                });
            }
        }
        let store = Self {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                schema: options.schema,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(options.max_connections.max(1))),
                clock,
                retry: options.retry,
            }),
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client, store.inner.schema.as_deref()).await?;
        Ok(store)
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// A pooled connection (opened on demand, at most `max_connections` at once).
    async fn client(&self) -> Result<Pooled> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| MemoryError::Worker {
                message: "the PostgreSQL connection pool is closed".into(),
            })?;
        let reused = self.inner.lock_idle().pop();
        let client = match reused {
            Some(client) if !client.is_closed() => client,
            _ => self.open_connection().await?,
        };
        Ok(Pooled {
            client: Some(client),
            inner: Arc::clone(&self.inner),
            _permit: permit,
        })
    }

    async fn open_connection(&self) -> Result<Client> {
        let (client, connection) = tokio_postgres::connect(&self.inner.url, NoTls)
            .await
            .map_err(pg("connect"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(error = %error_text(&error), "PostgreSQL connection ended");
            }
        });
        if let Some(schema) = &self.inner.schema {
            // The name was validated to [a-z0-9_]+, so quoting it is enough.
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
                ))
                .await
                .map_err(pg("select schema"))?;
        }
        Ok(client)
    }
}

impl Inner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection borrowed from the pool; returned to it on drop.
struct Pooled {
    client: Option<Client>,
    inner: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Always Some until drop.
        self.client.as_ref().unwrap_or_else(|| unreachable_client())
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().unwrap_or_else(|| unreachable_client())
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
        {
            self.inner.lock_idle().push(client);
        }
    }
}

#[allow(clippy::panic)] // `client` is only None inside `drop`, after which no deref happens.
fn unreachable_client() -> ! {
    panic!("pooled PostgreSQL client used after drop")
}

/// The driver's message, with the server's code and message for database errors.
fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn pg(operation: &'static str) -> impl FnOnce(tokio_postgres::Error) -> MemoryError {
    move |error| MemoryError::Postgres {
        operation,
        message: error_text(&error),
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time_from(ms: i64, what: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| MemoryError::Corrupt {
        what: format!("{what}: {ms} ms"),
    })
}

fn opt_time_from(ms: Option<i64>, what: &str) -> Result<Option<DateTime<Utc>>> {
    ms.map(|ms| time_from(ms, what)).transpose()
}

/// Reads column `name` of `row`, naming it in the error.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    name: &'static str,
) -> Result<T> {
    row.try_get(name).map_err(|error| MemoryError::Corrupt {
        what: format!("column {name}: {}", error_text(&error)),
    })
}

fn limit_offset(page: crate::Page) -> Result<(i64, i64)> {
    if page.limit == 0 {
        return Err(MemoryError::InvalidInput {
            what: "page limit must be at least 1".into(),
        });
    }
    let offset = i64::try_from(page.offset).map_err(|_| MemoryError::InvalidInput {
        what: format!("page offset {} is too large", page.offset),
    })?;
    Ok((i64::from(page.limit), offset))
}
