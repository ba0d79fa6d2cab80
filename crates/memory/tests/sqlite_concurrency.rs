//! Two stores on one SQLite file (as two processes would have): their writers take turns through
//! SQLite's lock and busy timeout, callers never see "database is locked", and every task is
//! still claimed exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentd_memory::{
    LogQuery, ManualClock, MemoryStore, NewActivity, NewTask, Page, SqliteOptions, SqliteStore,
    TaskQuery, TaskStatus, TaskStore,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_share_the_queue_without_lock_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let clock = Arc::new(ManualClock::default());
    let first = SqliteStore::open(&path, SqliteOptions::default(), clock.clone())
        .await
        .unwrap();
    let second = SqliteStore::open(&path, SqliteOptions::default(), clock.clone())
        .await
        .unwrap();
    let stores: [Arc<SqliteStore>; 2] = [Arc::new(first), Arc::new(second)];
    let tasks: Vec<_> = (0..300).map(|i| NewTask::new("dev", json!(i))).collect();
    let ids: HashSet<String> = stores[0]
        .enqueue(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();

    let workers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&stores[w % 2]);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claimed) = store
                    .claim("dev", &format!("w{w}"), Duration::from_secs(60))
                    .await
                    .unwrap()
                {
                    let activity = NewActivity {
                        agent_name: format!("w{w}"),
                        activity: "done".into(),
                        details: json!(null),
                    };
                    store.append_activities(vec![activity]).await.unwrap();
                    store
                        .complete(&claimed.task.id, claimed.token, json!(w))
                        .await
                        .unwrap();
                    mine.push(claimed.task.id);
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    assert_eq!(claimed.len(), ids.len(), "every task claimed exactly once");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), ids);
    let done = TaskQuery {
        status: Some(TaskStatus::Completed),
        page: Page::first(1000),
        ..TaskQuery::default()
    };
    assert_eq!(stores[1].query(done).await.unwrap().len(), 300);
    let logged = LogQuery {
        page: Page::first(1000),
        ..LogQuery::default()
    };
    assert_eq!(stores[0].query_activities(logged).await.unwrap().len(), 300);
}
