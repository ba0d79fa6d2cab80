//! The backend conformance suite, run against PostgreSQL (one fresh schema per case, dropped
//! afterwards). Skips with a printed reason when the server is unreachable, unless `CI=true` or
//! `AGENTD_REQUIRE_ALL=1`, which make that a failure. Server: `AGENTD_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use agentd_memory::conformance::{Backend, TEST_RETRY};
use agentd_memory::{
    BackendKind, ManualClock, MemoryError, MemorySettings, NewTask, PostgresOptions, PostgresStore,
    SCHEMA_VERSION,
};

fn url() -> String {
    std::env::var("AGENTD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Drops the test schema when the backend goes away.
struct SchemaGuard {
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Drop runs inside the test's runtime; a separate thread may block on its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                // Unreachable server: there is nothing to drop.
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await
                        .unwrap();
                }
            });
        });
        if dropped.join().is_err() {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

/// Connects to a fresh schema, or `None` (skip) when the server is unreachable.
async fn connect(schema: &str, clock: Arc<ManualClock>) -> Option<PostgresStore> {
    let options = PostgresOptions {
        schema: Some(schema.to_owned()),
        retry: TEST_RETRY,
        max_connections: 8,
    };
    match PostgresStore::connect(&url(), options, clock).await {
        Ok(store) => Some(store),
        Err(
            error @ MemoryError::Postgres {
                operation: "connect",
                ..
            },
        ) => {
            assert!(
                !required(),
                "PostgreSQL is required (CI=true or AGENTD_REQUIRE_ALL=1) but unreachable: {error}"
            );
            eprintln!("skipping: PostgreSQL unreachable at {}: {error}", url());
            None
        }
        Err(error) => panic!("opening the PostgreSQL store failed: {error}"),
    }
}

fn schema_name() -> String {
    format!("agentd_test_{}", uuid::Uuid::new_v4().simple())
}

fn postgres(
    clock: Arc<ManualClock>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Backend>> + Send>> {
    Box::pin(async move {
        let schema = schema_name();
        let guard = SchemaGuard {
            schema: schema.clone(),
        };
        let store = connect(&schema, Arc::clone(&clock)).await?;
        Some(Backend {
            memory: Arc::new(store.clone()),
            tasks: Arc::new(store),
            clock,
            keep_alive: Box::new(guard),
        })
    })
}

agentd_memory::conformance_tests!(postgres);

#[tokio::test]
async fn newer_schema_version_is_refused_untouched() {
    let schema = schema_name();
    let _guard = SchemaGuard {
        schema: schema.clone(),
    };
    let clock = Arc::new(ManualClock::default());
    let Some(store) = connect(&schema, Arc::clone(&clock)).await else {
        return;
    };
    drop(store);
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let future = SCHEMA_VERSION + 1;
    client
        .batch_execute(&format!(
            "UPDATE \"{schema}\".agentd_schema_version SET version = {future}"
        ))
        .await
        .unwrap();
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        ..PostgresOptions::default()
    };
    match PostgresStore::connect(&url(), options, clock).await {
        Err(MemoryError::SchemaTooNew {
            location,
            found,
            supported,
        }) => {
            assert_eq!((found, supported), (future, SCHEMA_VERSION));
            assert!(location.contains(&schema), "{location}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let row = client
        .query_one(
            &format!("SELECT version FROM \"{schema}\".agentd_schema_version"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, i64>(0),
        future,
        "the newer schema was modified"
    );
}

#[tokio::test]
async fn settings_open_the_postgres_backend() {
    let schema = schema_name();
    let _guard = SchemaGuard {
        schema: schema.clone(),
    };
    let clock = Arc::new(ManualClock::default());
    // Creates the schema (and checks the server is there).
    let Some(_) = connect(&schema, Arc::clone(&clock)).await else {
        return;
    };
    let settings = MemorySettings {
        backend: BackendKind::Postgres,
        url: Some(format!("{}?options=-csearch_path%3D{schema}", url())),
        ..MemorySettings::default()
    };
    let stores = settings.open(clock).await.unwrap();
    let id = stores
        .tasks
        .enqueue_one(NewTask::new("ceo", serde_json::json!({"title": "t"})))
        .await
        .unwrap()
        .id;
    assert_eq!(
        stores.tasks.get(&id).await.unwrap().unwrap().payload["title"],
        "t"
    );
}
