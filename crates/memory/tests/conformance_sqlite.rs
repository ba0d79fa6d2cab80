//! The backend conformance suite, run against SQLite files.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use agentd_memory::conformance::{Backend, TEST_RETRY};
use agentd_memory::{ManualClock, SqliteOptions, SqliteStore};

fn sqlite(
    clock: Arc<ManualClock>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Backend>> + Send>> {
    Box::pin(async move {
        // Each case gets its own file, removed with the backend.
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            retry: TEST_RETRY,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(dir.path().join("memory.db"), options, clock.clone())
            .await
            .unwrap();
        Some(Backend {
            memory: Arc::new(store.clone()),
            tasks: Arc::new(store),
            clock,
            keep_alive: Box::new(dir),
        })
    })
}

agentd_memory::conformance_tests!(sqlite);
