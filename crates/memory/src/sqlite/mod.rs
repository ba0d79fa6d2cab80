//! The SQLite backend: one file holds the memory tables and the task queue.
//!
//! Writes go to a single connection owned by a dedicated thread ([`writer`]), which commits
//! queued writes together; reads run on a small pool of read-only connections in
//! `spawn_blocking`, in parallel with the writer (WAL).

mod memory_ops;
mod readers;
mod schema;
mod task_ops;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode};

use crate::{Clock, MemoryError, Result, RetryPolicy, Synchronous};
use readers::Readers;
use writer::Writer;

pub use schema::SCHEMA_VERSION;

/// Bytes of the database file each connection maps into memory (reads without syscalls).
const MMAP_BYTES: i64 = 1 << 30;

/// Tuning of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability of a commit: `Normal` (default) survives a process crash, `Full` also a power
    /// loss.
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Backoff between task attempts.
    pub retry: RetryPolicy,
    /// Most writes committed together in one transaction.
    pub max_batch: usize,
    /// Idle read connections kept open.
    pub max_idle_readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_batch: 512,
            max_idle_readers: 4,
        }
    }
}

/// The SQLite implementation of [`crate::MemoryStore`] and [`crate::TaskStore`]. Cheap to clone;
/// the file is closed when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Writer,
    readers: Arc<Readers>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and starts
    /// the writer thread.
    ///
    /// Refused, with the file left untouched: a file that is not an SQLite database, a schema
    /// newer than this build, a read-only directory.
    pub async fn open(
        path: impl AsRef<Path>,
        options: SqliteOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, options, clock))
            .await
            .map_err(|error| MemoryError::Worker {
                message: error.to_string(),
            })?
    }

    fn open_blocking(path: PathBuf, options: SqliteOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let _span = tracing::info_span!("open_sqlite_store", path = %path.display()).entered();
        if path.as_os_str() == ":memory:" || path.to_string_lossy().starts_with("file:") {
            return Err(MemoryError::InvalidInput {
                what: format!(
                    "SQLite path {}: the writer and the readers need one shared file, not an in-memory or URI database",
                    path.display()
                ),
            });
        }
        prepare_directory(&path)?;
        let conn = Connection::open(&path).map_err(|source| open_error(&path, source))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(|source| open_error(&path, source))?;
        // Read-only checks first: nothing below this may run on a file we refuse.
        let found = schema::version(&conn).map_err(|source| open_error(&path, source))?;
        if found > SCHEMA_VERSION {
            return Err(MemoryError::SchemaTooNew {
                location: path.display().to_string(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|source| open_error(&path, source))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(MemoryError::Corrupt {
                what: format!(
                    "{}: cannot switch to WAL (journal mode {mode})",
                    path.display()
                ),
            });
        }
        conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
            .map_err(|source| open_error(&path, source))?;
        // A claim touches a handful of B-tree pages; keeping them cached (64 MiB at most) and
        // the file memory-mapped keeps its cost flat as the tables grow. After a burst, the WAL
        // is truncated back to 64 MiB at the next checkpoint instead of staying at its peak.
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -65536; PRAGMA mmap_size = {MMAP_BYTES}; PRAGMA journal_size_limit = 67108864;"
        ))
        .map_err(|source| open_error(&path, source))?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&conn)?;
        let readers = Arc::new(Readers::new(
            path,
            options.busy_timeout,
            options.max_idle_readers,
        ));
        let writer = Writer::start(conn, options.max_batch)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                clock,
                retry: options.retry,
            }),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(work).await
    }

    async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.read(work).await
    }
}

/// Creates a missing parent directory and refuses a read-only one (WAL needs its `-wal` and
/// `-shm` files beside the database). Checked by permission bits, so it holds for root too.
fn prepare_directory(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|source| MemoryError::CreateDirectory {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let readonly = std::fs::metadata(dir).map(|meta| meta.permissions().readonly());
    match readonly {
        Ok(true) => Err(MemoryError::ReadOnlyDirectory {
            dir: dir.to_path_buf(),
        }),
        Ok(false) => Ok(()),
        Err(source) => Err(MemoryError::CreateDirectory {
            dir: dir.to_path_buf(),
            source,
        }),
    }
}

fn open_error(path: &Path, source: rusqlite::Error) -> MemoryError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => MemoryError::NotADatabase {
            path: path.to_path_buf(),
        },
        _ => MemoryError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Milliseconds since the epoch: the stored form of every time.
fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Reads a stored time from column `index`.
fn time_at(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let ms: i64 = row.get(index)?;
    DateTime::from_timestamp_millis(ms).ok_or(rusqlite::Error::IntegralValueOutOfRange(index, ms))
}

/// Reads an optional stored time from column `index`.
fn opt_time_at(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(ms) => DateTime::from_timestamp_millis(ms)
            .map(Some)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(index, ms)),
    }
}

/// Converts a page to SQL `LIMIT`/`OFFSET` values.
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::task_ops::{CLAIM_SQL, EXPIRED_LEASES_SQL, PROMOTE_DUE_SQL};
    use super::*;
    use crate::{ManualClock, NewTask, TaskStore};

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = (1..=explain.parameter_count()).map(|_| 0i64);
        let details: Vec<String> = explain
            .query_map(rusqlite::params_from_iter(params), |row| row.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        details.join("; ")
    }

    /// The claim path must not scan or sort: its cost may not grow with the queue depth.
    #[tokio::test]
    async fn claim_path_queries_search_partial_indexes_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let store = SqliteStore::open(
            &path,
            SqliteOptions::default(),
            Arc::new(ManualClock::default()),
        )
        .await
        .unwrap();
        let tasks = (0..500)
            .map(|i| NewTask::new(format!("role-{}", i % 5), serde_json::json!(i)))
            .collect();
        store.enqueue(tasks).await.unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        for (sql, index) in [
            (CLAIM_SQL, "tasks_claim"),
            (PROMOTE_DUE_SQL, "tasks_retry_due"),
            (EXPIRED_LEASES_SQL, "tasks_lease_expiry"),
        ] {
            let plan = plan(&conn, sql);
            let searches_index = ["INDEX", "COVERING INDEX"]
                .iter()
                .any(|kind| plan.starts_with(&format!("SEARCH tasks USING {kind} {index} (")));
            assert!(searches_index, "{sql}\n=> {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n=> {plan}");
        }
    }

    #[tokio::test]
    async fn store_file_is_wal_at_current_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/memory.db");
        let options = SqliteOptions {
            synchronous: Synchronous::Full,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(&path, options, Arc::new(ManualClock::default()))
            .await
            .unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(schema::version(&conn).unwrap(), SCHEMA_VERSION);
        // Reopening an up-to-date file applies nothing and keeps the version.
        drop(conn);
        SqliteStore::open(
            &path,
            SqliteOptions::default(),
            Arc::new(ManualClock::default()),
        )
        .await
        .unwrap();
        assert_eq!(
            schema::version(&Connection::open(&path).unwrap()).unwrap(),
            SCHEMA_VERSION
        );
    }
}
