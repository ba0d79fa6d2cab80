//! The `mock` feature's mocks stand in for the traits behind `Arc<dyn ...>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use agentd_memory::{ContextManager, MemoryError, MockMemoryStore, MockTaskStore, TaskStore};

#[tokio::test]
async fn mocks_are_usable_as_trait_objects() {
    let mut tasks = MockTaskStore::new();
    tasks.expect_claim().returning(|role, _, _| {
        Err(MemoryError::InvalidInput {
            what: format!("no queue {role}"),
        })
    });
    let tasks: Arc<dyn TaskStore> = Arc::new(tasks);
    let error = tasks
        .claim("cfo", "w", std::time::Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no queue cfo"));

    let mut memory = MockMemoryStore::new();
    memory.expect_recall().returning(|_, _| Ok(None));
    memory
        .expect_list_prefix()
        .returning(|_, _, _| Ok(Vec::new()));
    memory.expect_list().returning(|_, _| Ok(Vec::new()));
    memory
        .expect_query_activities()
        .returning(|_| Ok(Vec::new()));
    memory
        .expect_query_decisions()
        .returning(|_| Ok(Vec::new()));
    let context = ContextManager::new(Arc::new(memory));
    let assembled = context.assemble("ceo", "plan", 100).await.unwrap();
    assert_eq!((assembled.text.as_str(), assembled.included), ("", 0));
}
