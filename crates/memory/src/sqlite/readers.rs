//! A small pool of read-only connections used from `spawn_blocking`, so reads run in parallel
//! with each other and with the writer.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{MemoryError, Result};

#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration, max_idle: usize) -> Self {
        Self {
            path,
            busy_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on a read connection off the async runtime.
    pub(crate) async fn read<T, F>(self: &std::sync::Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let outcome = work(&conn);
            readers.give_back(conn);
            outcome
        })
        .await
        .map_err(|error| MemoryError::Worker {
            message: error.to_string(),
        })?
    }

    fn take(&self) -> Result<Connection> {
        if let Some(conn) = self.lock().pop() {
            return Ok(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|source| MemoryError::Open {
                path: self.path.clone(),
                source,
            })?;
        conn.busy_timeout(self.busy_timeout)
            .map_err(|source| MemoryError::Open {
                path: self.path.clone(),
                source,
            })?;
        conn.pragma_update(None, "mmap_size", super::MMAP_BYTES)
            .map_err(|source| MemoryError::Open {
                path: self.path.clone(),
                source,
            })?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
