//! The `memory` config section: defaults, names, and refusal of unknown keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use std::sync::Arc;

use agentd_memory::{BackendKind, ManualClock, MemoryError, MemorySettings, Synchronous};
use serde_json::json;

#[test]
fn empty_section_takes_the_defaults() {
    let settings: MemorySettings = serde_json::from_value(json!({})).unwrap();
    assert_eq!(settings, MemorySettings::default());
    assert_eq!(settings.backend, BackendKind::Sqlite);
    assert_eq!(settings.path, PathBuf::from(".agentd/memory.db"));
    assert_eq!(settings.synchronous, Synchronous::Normal);
    assert_eq!(settings.url, None);
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let error = serde_json::from_value::<MemorySettings>(json!({"backend": "sqlite", "pth": "x"}))
        .unwrap_err();
    assert!(error.to_string().contains("pth"), "{error}");
    let error =
        serde_json::from_value::<MemorySettings>(json!({"synchronous": "sometimes"})).unwrap_err();
    assert!(error.to_string().contains("sometimes"), "{error}");
}

#[test]
fn the_url_never_shows_in_debug_output() {
    let settings: MemorySettings = serde_json::from_value(
        json!({"backend": "postgres", "url": "postgres://u:hunter2@db/agentd"}),
    )
    .unwrap();
    assert_eq!(settings.backend, BackendKind::Postgres);
    assert!(!format!("{settings:?}").contains("hunter2"));
}

#[tokio::test]
async fn postgres_without_url_is_refused_by_name() {
    let settings = MemorySettings {
        backend: BackendKind::Postgres,
        ..MemorySettings::default()
    };
    let error = settings
        .open(Arc::new(ManualClock::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MemoryError::InvalidInput { what } if what.contains("memory.url")),
        "{error}"
    );
}
