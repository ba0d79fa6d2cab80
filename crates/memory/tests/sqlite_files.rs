//! Opening bad files: each is refused with a clear error and left byte-for-byte untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use agentd_memory::{
    ManualClock, MemoryError, MemorySettings, NewTask, SCHEMA_VERSION, SqliteOptions, SqliteStore,
    TaskStore,
};
use serde_json::json;

async fn open(path: &Path) -> Result<SqliteStore, MemoryError> {
    SqliteStore::open(
        path,
        SqliteOptions::default(),
        Arc::new(ManualClock::default()),
    )
    .await
}

/// A real store file with one task in it, closed.
async fn populated(path: &Path) {
    let store = open(path).await.unwrap();
    store
        .enqueue(vec![NewTask::new("qa", json!({"keep": true}))])
        .await
        .unwrap();
}

fn siblings(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn text_and_random_files_are_not_databases_and_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = vec![0u8; 8192];
    rand::fill(&mut random[..]);
    for (name, bytes) in [
        (
            "notes.db",
            b"these are my notes, not a database\n".repeat(200),
        ),
        ("random.db", random),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let error = open(&path).await.unwrap_err();
        assert!(
            matches!(&error, MemoryError::NotADatabase { path: p } if p == &path),
            "{error}"
        );
        assert!(
            error.to_string().contains(name),
            "the error names the file: {error}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was modified");
    }
    assert_eq!(
        siblings(&dir.path().join("x")),
        ["notes.db", "random.db"],
        "no -wal or -shm left behind"
    );
}

#[tokio::test]
async fn newer_schema_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    populated(&path).await;
    let future = SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", future)
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let error = open(&path).await.unwrap_err();
    match &error {
        MemoryError::SchemaTooNew {
            found, supported, ..
        } => assert_eq!((*found, *supported), (future, SCHEMA_VERSION)),
        other => panic!("expected SchemaTooNew, got {other}"),
    }
    assert!(
        error.to_string().contains("future.db") && error.to_string().contains("upgrade"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the newer file was modified"
    );
}

#[tokio::test]
async fn read_only_directory_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store/memory.db");
    populated(&path).await;
    let store_dir = path.parent().unwrap();
    let before = std::fs::read(&path).unwrap();
    let listing = siblings(&path);
    std::fs::set_permissions(store_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let existing = open(&path).await.map(drop);
    let fresh = open(&store_dir.join("new.db")).await.map(drop);
    std::fs::set_permissions(store_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for outcome in [existing, fresh] {
        let error = outcome.unwrap_err();
        assert!(
            matches!(&error, MemoryError::ReadOnlyDirectory { dir } if dir == store_dir),
            "{error}"
        );
        assert!(error.to_string().contains("read-only"), "{error}");
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the database was modified"
    );
    assert_eq!(
        siblings(&path),
        listing,
        "files were created in the read-only directory"
    );
}

#[tokio::test]
async fn a_file_in_place_of_the_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let error = open(&blocker.join("memory.db")).await.unwrap_err();
    assert!(error.to_string().contains("blocker"), "{error}");
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    populated(&path).await;
    let store = open(&path).await.unwrap();
    let claimed = store
        .claim("qa", "w", std::time::Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.task.payload, json!({"keep": true}));
}

#[tokio::test]
async fn settings_open_the_configured_backend() {
    let dir = tempfile::tempdir().unwrap();
    let settings: MemorySettings = serde_json::from_value(json!({
        "backend": "sqlite",
        "path": dir.path().join("configured.db"),
        "synchronous": "full",
    }))
    .unwrap();
    let stores = settings
        .open(Arc::new(ManualClock::default()))
        .await
        .unwrap();
    let id = stores
        .tasks
        .enqueue_one(NewTask::new("ceo", json!(1)))
        .await
        .unwrap()
        .id;
    assert!(stores.tasks.get(&id).await.unwrap().is_some());
    stores
        .memory
        .remember("ceo", "k", json!("v"))
        .await
        .unwrap();
    assert!(dir.path().join("configured.db").exists());
}

#[tokio::test]
async fn in_memory_databases_are_refused() {
    for path in [":memory:", "file:memdb?mode=memory"] {
        let error = open(Path::new(path)).await.unwrap_err();
        assert!(
            matches!(&error, MemoryError::InvalidInput { what } if what.contains(path)),
            "{error}"
        );
    }
}
