//! The behaviour suite every backend of [`MemoryStore`] and [`TaskStore`] must pass.
//!
//! A backend's test file calls [`crate::conformance_tests!`] with an async factory that opens a
//! fresh, empty store on a given [`ManualClock`]; the macro generates one `#[tokio::test]` per
//! case below. Cases take only the traits, so they hold every backend to the same contract.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: failing loudly is the point

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use crate::{
    FailureKind, LogQuery, ManualClock, MemoryError, MemoryStore, NewActivity, NewDecision,
    NewTask, Page, Priority, TaskQuery, TaskStatus, TaskStore,
};

/// A fresh, empty backend under test.
pub struct Backend {
    /// The memory side.
    pub memory: Arc<dyn MemoryStore>,
    /// The task side.
    pub tasks: Arc<dyn TaskStore>,
    /// The clock the backend reads.
    pub clock: Arc<ManualClock>,
    /// Whatever must live as long as the backend (a temporary directory, a schema guard).
    pub keep_alive: Box<dyn std::any::Any + Send + Sync>,
}

/// Opens a fresh, empty backend reading the given clock; `None` skips the case (the factory
/// prints why, e.g. the database server is unreachable).
pub type Factory = fn(Arc<ManualClock>) -> Pin<Box<dyn Future<Output = Option<Backend>> + Send>>;

/// The retry policy every backend under test must be configured with: 1 s doubling, at most 8 s.
pub const TEST_RETRY: crate::RetryPolicy = crate::RetryPolicy {
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(8),
};

const LEASE: Duration = Duration::from_secs(30);

async fn open(factory: Factory) -> Option<Backend> {
    factory(Arc::new(ManualClock::default())).await
}

/// Generates one `#[tokio::test]` per conformance case for `$factory` (a [`Factory`]).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            memory_remember_recall_forget, memory_list_recent_first_paginated,
            activities_query_by_agent_kind_time_and_page, decisions_query_and_retention,
            enqueue_idempotency_key_yields_one_task, claim_order_priority_deadline_fifo,
            claim_is_per_role_and_empty_queue_gives_none, complete_records_result_and_history,
            stale_token_is_refused_after_lease_expiry_and_reclaim, heartbeat_extends_lease,
            retry_backoff_then_dead_letter, permanent_failure_dead_letters_at_once,
            expired_lease_with_no_attempts_left_dead_letters, cancel_pending_running_and_terminal,
            queries_by_status_role_parent_time_and_counts, concurrent_workers_claim_each_task_once,
            concurrent_enqueues_of_one_key_yield_one_task,
            unknown_task_is_reported, invalid_input_is_refused);
    };
    (@cases $factory:expr; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::conformance::$case($factory).await;
            }
        )+
    };
}

/// remember / recall / forget, upsert keeps `created_at`.
pub async fn memory_remember_recall_forget(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let first = b
        .memory
        .remember("qa", "plan", json!({"step": 1}))
        .await
        .unwrap();
    b.clock.advance(TimeDelta::seconds(5));
    let second = b
        .memory
        .remember("qa", "plan", json!({"step": 2}))
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(second.updated_at, first.created_at + TimeDelta::seconds(5));
    let recalled = b.memory.recall("qa", "plan").await.unwrap().unwrap();
    assert_eq!(recalled.value, json!({"step": 2}));
    assert_eq!(recalled, second);
    assert!(
        b.memory
            .recall("developer", "plan")
            .await
            .unwrap()
            .is_none(),
        "memory is per agent"
    );
    assert!(b.memory.forget("qa", "plan").await.unwrap());
    assert!(!b.memory.forget("qa", "plan").await.unwrap());
    assert!(b.memory.recall("qa", "plan").await.unwrap().is_none());
}

/// `list` gives one agent's entries, most recently updated first, page by page.
pub async fn memory_list_recent_first_paginated(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    for key in ["a", "b", "c"] {
        b.memory.remember("dev", key, json!(key)).await.unwrap();
        b.clock.advance(TimeDelta::seconds(1));
    }
    b.memory.remember("dev", "a", json!("a2")).await.unwrap();
    b.memory.remember("other", "z", json!(1)).await.unwrap();
    let keys =
        |entries: Vec<crate::MemoryEntry>| entries.into_iter().map(|e| e.key).collect::<Vec<_>>();
    assert_eq!(
        keys(b.memory.list("dev", Page::default()).await.unwrap()),
        ["a", "c", "b"]
    );
    let page = Page::first(2);
    assert_eq!(keys(b.memory.list("dev", page).await.unwrap()), ["a", "c"]);
    assert_eq!(
        keys(b.memory.list("dev", page.next()).await.unwrap()),
        ["b"]
    );
    assert!(
        b.memory
            .list("dev", page.next().next())
            .await
            .unwrap()
            .is_empty()
    );
    for key in ["fact.Ab", "fact.ab", "fact%x", "factual", "fact."] {
        b.memory.remember("dev", key, json!(key)).await.unwrap();
        b.clock.advance(TimeDelta::seconds(1));
    }
    let facts = b
        .memory
        .list_prefix("dev", "fact.", Page::default())
        .await
        .unwrap();
    assert_eq!(
        keys(facts),
        ["fact.", "fact.ab", "fact.Ab"],
        "exact, case-sensitive prefix, newest first"
    );
    let wildcard = b
        .memory
        .list_prefix("dev", "fact%", Page::default())
        .await
        .unwrap();
    assert_eq!(keys(wildcard), ["fact%x"], "no wildcards");
    assert!(
        b.memory
            .list_prefix("other", "fact.", Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    let paged = b
        .memory
        .list_prefix(
            "dev",
            "fact.",
            Page {
                limit: 1,
                offset: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(keys(paged), ["fact.ab"]);
}

/// Activities: appended in order, queried newest first by agent, kind, time range and page.
pub async fn activities_query_by_agent_kind_time_and_page(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let start = b.clock.now_for_tests();
    for (i, (agent, activity)) in [
        ("qa", "test_written"),
        ("dev", "code_written"),
        ("qa", "test_run"),
        ("dev", "code_written"),
    ]
    .iter()
    .enumerate()
    {
        let stored = (b.memory.as_ref() as &dyn MemoryStore)
            .append_activity(NewActivity {
                agent_name: (*agent).into(),
                activity: (*activity).into(),
                details: json!({ "i": i }),
            })
            .await
            .unwrap();
        assert_eq!(stored.timestamp, b.clock.now_for_tests());
        b.clock.advance(TimeDelta::minutes(1));
    }
    let details = |rows: Vec<crate::ActivityRecord>| {
        rows.into_iter()
            .map(|r| r.details["i"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let all = b
        .memory
        .query_activities(LogQuery::default())
        .await
        .unwrap();
    assert_eq!(details(all), [3, 2, 1, 0], "newest first");
    let dev = LogQuery {
        agent_name: Some("dev".into()),
        ..LogQuery::default()
    };
    assert_eq!(
        details(b.memory.query_activities(dev).await.unwrap()),
        [3, 1]
    );
    let runs = LogQuery {
        kind: Some("test_run".into()),
        ..LogQuery::default()
    };
    assert_eq!(details(b.memory.query_activities(runs).await.unwrap()), [2]);
    let window = LogQuery {
        since: Some(start + TimeDelta::minutes(1)),
        until: Some(start + TimeDelta::minutes(3)),
        ..LogQuery::default()
    };
    assert_eq!(
        details(b.memory.query_activities(window).await.unwrap()),
        [2, 1],
        "since inclusive, until exclusive"
    );
    let second_page = LogQuery {
        page: Page {
            limit: 3,
            offset: 3,
        },
        ..LogQuery::default()
    };
    assert_eq!(
        details(b.memory.query_activities(second_page).await.unwrap()),
        [0]
    );
    let batch = b
        .memory
        .append_activities(vec![
            NewActivity {
                agent_name: "ceo".into(),
                activity: "idle".into(),
                details: json!(null),
            },
            NewActivity {
                agent_name: "ceo".into(),
                activity: "plan".into(),
                details: json!([1, 2]),
            },
        ])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch[0].id < batch[1].id, "a batch keeps its order");
    assert_eq!(batch[1].details, json!([1, 2]));
}

/// Decisions are queried like activities; retention deletes logs strictly older than the cutoff.
pub async fn decisions_query_and_retention(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let start = b.clock.now_for_tests();
    for decision_type in ["approval", "verdict", "approval"] {
        let decision = NewDecision {
            agent_name: "cfo".into(),
            decision_type: decision_type.into(),
            decision_data: json!({"ok": true}),
        };
        (b.memory.as_ref() as &dyn MemoryStore)
            .append_decision(decision)
            .await
            .unwrap();
        let activity = NewActivity {
            agent_name: "cfo".into(),
            activity: "review".into(),
            details: json!({}),
        };
        b.memory.append_activities(vec![activity]).await.unwrap();
        b.clock.advance(TimeDelta::days(1));
    }
    let approvals = LogQuery {
        kind: Some("approval".into()),
        agent_name: Some("cfo".into()),
        ..LogQuery::default()
    };
    let rows = b.memory.query_decisions(approvals.clone()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].timestamp > rows[1].timestamp);
    assert_eq!(rows[0].decision_data, json!({"ok": true}));
    let purged = b
        .memory
        .purge_logs_before(start + TimeDelta::days(1))
        .await
        .unwrap();
    assert_eq!(
        purged,
        crate::PurgeCounts {
            activities: 1,
            decisions: 1
        }
    );
    assert_eq!(b.memory.query_decisions(approvals).await.unwrap().len(), 1);
    assert_eq!(
        b.memory
            .query_activities(LogQuery::default())
            .await
            .unwrap()
            .len(),
        2
    );
    b.memory
        .remember("cfo", "budget", json!(100))
        .await
        .unwrap();
    b.memory
        .purge_logs_before(start + TimeDelta::days(30))
        .await
        .unwrap();
    assert!(
        b.memory.recall("cfo", "budget").await.unwrap().is_some(),
        "memory is not a log"
    );
}

/// The same idempotency key, in separate calls or in one batch, yields one task.
pub async fn enqueue_idempotency_key_yields_one_task(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let task =
        NewTask::new("qa", json!({"title": "write tests"})).with_idempotency_key("parent-1:qa");
    let first = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(task.clone())
        .await
        .unwrap();
    assert!(first.created);
    let again = b
        .tasks
        .enqueue(vec![
            task.clone(),
            task.clone().with_idempotency_key("other"),
        ])
        .await
        .unwrap();
    assert_eq!(again[0].id, first.id);
    assert!(!again[0].created);
    assert!(again[1].created);
    let batch = b
        .tasks
        .enqueue(vec![
            task.clone().with_idempotency_key("k"),
            task.clone().with_idempotency_key("k"),
        ])
        .await
        .unwrap();
    assert_eq!(batch[0].id, batch[1].id);
    assert_eq!((batch[0].created, batch[1].created), (true, false));
    assert_eq!(b.tasks.query(TaskQuery::default()).await.unwrap().len(), 3);
    let stored = b.tasks.get(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.idempotency_key.as_deref(), Some("parent-1:qa"));
    assert_eq!(stored.payload, json!({"title": "write tests"}));
    assert_eq!(stored.status, TaskStatus::Pending);
}

/// Claim order: priority, then earliest deadline (none last), then FIFO.
pub async fn claim_order_priority_deadline_fifo(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let now = b.clock.now_for_tests();
    let specs = [
        ("low", Priority::LOW, None),
        ("medium-no-deadline-1", Priority::MEDIUM, None),
        (
            "medium-late",
            Priority::MEDIUM,
            Some(now + TimeDelta::hours(5)),
        ),
        ("high-2", Priority::HIGH, None),
        ("medium-no-deadline-2", Priority::MEDIUM, None),
        (
            "medium-soon",
            Priority::MEDIUM,
            Some(now + TimeDelta::hours(1)),
        ),
        (
            "high-1-deadline",
            Priority::HIGH,
            Some(now + TimeDelta::days(9)),
        ),
    ];
    for (name, priority, deadline) in specs {
        let mut task = NewTask::new("dev", json!(name)).with_priority(priority);
        task.deadline = deadline;
        b.tasks.enqueue(vec![task]).await.unwrap();
    }
    let mut order = Vec::new();
    while let Some(claimed) = b.tasks.claim("dev", "w", LEASE).await.unwrap() {
        order.push(claimed.task.payload.as_str().unwrap().to_owned());
    }
    assert_eq!(
        order,
        [
            "high-1-deadline",
            "high-2",
            "medium-soon",
            "medium-late",
            "medium-no-deadline-1",
            "medium-no-deadline-2",
            "low"
        ]
    );
}

/// Queues are per role; an empty queue gives `None`.
pub async fn claim_is_per_role_and_empty_queue_gives_none(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    assert!(b.tasks.claim("qa", "w", LEASE).await.unwrap().is_none());
    b.tasks
        .enqueue(vec![NewTask::new("developer", json!(1))])
        .await
        .unwrap();
    assert!(b.tasks.claim("qa", "w", LEASE).await.unwrap().is_none());
    let claimed = b
        .tasks
        .claim("developer", "w1", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.task.role, "developer");
    assert_eq!(claimed.task.status, TaskStatus::Running);
    assert_eq!(claimed.task.attempts, 1);
    assert_eq!(claimed.token, claimed.task.fencing_token);
    let lease = claimed.task.lease.unwrap();
    assert_eq!(lease.owner, "w1");
    assert_eq!(
        lease.expires_at,
        b.clock.now_for_tests() + TimeDelta::seconds(30)
    );
    assert!(
        b.tasks
            .claim("developer", "w2", LEASE)
            .await
            .unwrap()
            .is_none(),
        "a running task is not claimable"
    );
}

/// Completion stores the result, clears the lease and is recorded; a second completion is refused.
pub async fn complete_records_result_and_history(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let id = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(NewTask::new("qa", json!({})))
        .await
        .unwrap()
        .id;
    let claimed = b
        .tasks
        .claim("qa", "worker-7", LEASE)
        .await
        .unwrap()
        .unwrap();
    b.clock.advance(TimeDelta::seconds(3));
    let done = b
        .tasks
        .complete(&id, claimed.token, json!({"tests": 4}))
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result, Some(json!({"tests": 4})));
    assert!(done.lease.is_none());
    assert_eq!(b.tasks.get(&id).await.unwrap().unwrap(), done);
    let again = b
        .tasks
        .complete(&id, claimed.token, json!(null))
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            MemoryError::StaleLease {
                status: TaskStatus::Completed,
                ..
            }
        ),
        "{again}"
    );
    let history = b.tasks.history(&id).await.unwrap();
    let steps: Vec<_> = history.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        steps,
        [
            (None, TaskStatus::Pending),
            (Some(TaskStatus::Pending), TaskStatus::Running),
            (Some(TaskStatus::Running), TaskStatus::Completed)
        ]
    );
    assert!(
        history[1].reason.contains("worker-7"),
        "{}",
        history[1].reason
    );
    assert_eq!(history[2].at, history[1].at + TimeDelta::seconds(3));
}

/// Fencing: after the lease expired and another worker re-claimed, the first worker's
/// heartbeat, complete and fail are refused; the new holder's are accepted.
pub async fn stale_token_is_refused_after_lease_expiry_and_reclaim(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let id = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(NewTask::new("dev", json!({})))
        .await
        .unwrap()
        .id;
    let old = b.tasks.claim("dev", "slow", LEASE).await.unwrap().unwrap();
    b.clock.advance(TimeDelta::seconds(29));
    assert!(
        b.tasks.requeue_expired().await.unwrap().is_empty(),
        "lease not expired yet"
    );
    b.clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        b.tasks.requeue_expired().await.unwrap(),
        std::slice::from_ref(&id)
    );
    assert_eq!(
        b.tasks.get(&id).await.unwrap().unwrap().status,
        TaskStatus::Pending
    );
    let new = b.tasks.claim("dev", "fast", LEASE).await.unwrap().unwrap();
    assert!(new.token > old.token);
    assert_eq!(new.task.attempts, 2);
    for refused in [
        b.tasks
            .complete(&id, old.token, json!("late"))
            .await
            .map(drop),
        b.tasks
            .fail(&id, old.token, "late", FailureKind::Transient)
            .await
            .map(drop),
        b.tasks.heartbeat(&id, old.token, LEASE).await.map(drop),
    ] {
        match refused {
            Err(MemoryError::StaleLease {
                token,
                current_token,
                status,
                ..
            }) => {
                assert_eq!(
                    (token, current_token, status),
                    (old.token, new.token, TaskStatus::Running)
                );
            }
            other => panic!("a stale worker's write must be refused, got {other:?}"),
        }
    }
    let done = b
        .tasks
        .complete(&id, new.token, json!("fast"))
        .await
        .unwrap();
    assert_eq!(done.result, Some(json!("fast")));
    let reasons: Vec<_> = b
        .tasks
        .history(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.reason)
        .collect();
    assert!(reasons.iter().any(|r| r.contains("expired")), "{reasons:?}");
}

/// A heartbeat moves the lease's expiry, so the sweep leaves the task alone.
pub async fn heartbeat_extends_lease(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let id = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(NewTask::new("dev", json!({})))
        .await
        .unwrap()
        .id;
    let claimed = b.tasks.claim("dev", "w", LEASE).await.unwrap().unwrap();
    b.clock.advance(TimeDelta::seconds(20));
    let expires = b.tasks.heartbeat(&id, claimed.token, LEASE).await.unwrap();
    assert_eq!(expires, b.clock.now_for_tests() + TimeDelta::seconds(30));
    b.clock.advance(TimeDelta::seconds(20));
    assert!(b.tasks.requeue_expired().await.unwrap().is_empty());
    let task = b.tasks.get(&id).await.unwrap().unwrap();
    assert_eq!(task.lease.unwrap().expires_at, expires);
    assert_eq!(task.status, TaskStatus::Running);
}

/// Transient failures retry after 1 s, 2 s (the test policy), then dead-letter with the last
/// error once attempts are used up.
pub async fn retry_backoff_then_dead_letter(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let task = NewTask::new("dev", json!({})).with_max_attempts(3);
    let id = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(task)
        .await
        .unwrap()
        .id;
    for (attempt, backoff) in [(1u32, 1i64), (2, 2)] {
        let claimed = b.tasks.claim("dev", "w", LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.task.attempts, attempt);
        let failed = b
            .tasks
            .fail(
                &id,
                claimed.token,
                &format!("boom {attempt}"),
                FailureKind::Transient,
            )
            .await
            .unwrap();
        assert_eq!(failed.status, TaskStatus::Retrying);
        assert_eq!(
            failed.last_error.as_deref(),
            Some(format!("boom {attempt}").as_str())
        );
        assert_eq!(
            failed.not_before,
            Some(b.clock.now_for_tests() + TimeDelta::seconds(backoff))
        );
        b.clock.advance(TimeDelta::milliseconds(backoff * 1000 - 1));
        assert!(
            b.tasks.claim("dev", "w", LEASE).await.unwrap().is_none(),
            "claimed during backoff"
        );
        b.clock.advance(TimeDelta::milliseconds(1));
    }
    let last = b.tasks.claim("dev", "w", LEASE).await.unwrap().unwrap();
    assert_eq!(last.task.attempts, 3);
    let dead = b
        .tasks
        .fail(&id, last.token, "boom 3", FailureKind::Transient)
        .await
        .unwrap();
    assert_eq!(dead.status, TaskStatus::DeadLetter);
    assert_eq!(dead.last_error.as_deref(), Some("boom 3"));
    b.clock.advance(TimeDelta::hours(1));
    assert!(b.tasks.claim("dev", "w", LEASE).await.unwrap().is_none());
    let statuses: Vec<_> = b
        .tasks
        .history(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.to)
        .collect();
    use TaskStatus::{DeadLetter, Pending, Retrying, Running};
    assert_eq!(
        statuses,
        [
            Pending, Running, Retrying, Pending, Running, Retrying, Pending, Running, DeadLetter
        ]
    );
}

/// A permanent failure dead-letters even with attempts left.
pub async fn permanent_failure_dead_letters_at_once(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let id = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(NewTask::new("dev", json!({})).with_max_attempts(5))
        .await
        .unwrap()
        .id;
    let claimed = b.tasks.claim("dev", "w", LEASE).await.unwrap().unwrap();
    let dead = b
        .tasks
        .fail(&id, claimed.token, "invalid spec", FailureKind::Permanent)
        .await
        .unwrap();
    assert_eq!((dead.status, dead.attempts), (TaskStatus::DeadLetter, 1));
    assert_eq!(dead.last_error.as_deref(), Some("invalid spec"));
}

/// A task whose worker keeps dying is dead-lettered by the sweep once its attempts are used.
pub async fn expired_lease_with_no_attempts_left_dead_letters(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let id = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(NewTask::new("dev", json!({})).with_max_attempts(2))
        .await
        .unwrap()
        .id;
    for expected in [TaskStatus::Pending, TaskStatus::DeadLetter] {
        b.tasks
            .claim("dev", "doomed", LEASE)
            .await
            .unwrap()
            .unwrap();
        b.clock.advance(TimeDelta::minutes(1));
        assert_eq!(
            b.tasks.requeue_expired().await.unwrap(),
            std::slice::from_ref(&id)
        );
        assert_eq!(b.tasks.get(&id).await.unwrap().unwrap().status, expected);
    }
    let task = b.tasks.get(&id).await.unwrap().unwrap();
    assert!(task.last_error.unwrap().contains("doomed"));
}

/// Cancel works on pending, retrying and running tasks (the holder's complete is then refused)
/// and reports `false` on a terminal one.
pub async fn cancel_pending_running_and_terminal(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let ids = b
        .tasks
        .enqueue(vec![
            NewTask::new("r", json!(1)),
            NewTask::new("r", json!(2)),
            NewTask::new("r", json!(3)),
        ])
        .await
        .unwrap();
    assert!(b.tasks.cancel(&ids[0].id, "not needed").await.unwrap());
    let running = b.tasks.claim("r", "w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        running.task.id, ids[1].id,
        "a cancelled task is not claimed"
    );
    assert!(b.tasks.cancel(&ids[1].id, "superseded").await.unwrap());
    assert!(matches!(
        b.tasks
            .complete(&ids[1].id, running.token, json!(null))
            .await,
        Err(MemoryError::StaleLease {
            status: TaskStatus::Cancelled,
            ..
        })
    ));
    let third = b.tasks.claim("r", "w", LEASE).await.unwrap().unwrap();
    b.tasks
        .fail(&ids[2].id, third.token, "flaky", FailureKind::Transient)
        .await
        .unwrap();
    assert!(
        b.tasks.cancel(&ids[2].id, "give up").await.unwrap(),
        "retrying task cancels"
    );
    assert!(!b.tasks.cancel(&ids[2].id, "again").await.unwrap());
    let history = b.tasks.history(&ids[1].id).await.unwrap();
    assert_eq!(history.last().unwrap().reason, "cancelled: superseded");
    b.clock.advance(TimeDelta::hours(1));
    assert!(b.tasks.claim("r", "w", LEASE).await.unwrap().is_none());
}

/// Queries by status, role, parent and creation time, with paging; counts per role and status.
pub async fn queries_by_status_role_parent_time_and_counts(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let start = b.clock.now_for_tests();
    let parent = (b.tasks.as_ref() as &dyn TaskStore)
        .enqueue_one(NewTask::new("ceo", json!("parent")))
        .await
        .unwrap()
        .id;
    b.clock.advance(TimeDelta::minutes(1));
    b.tasks
        .enqueue(vec![
            NewTask::new("qa", json!("child-1")).with_parent(&parent),
            NewTask::new("developer", json!("child-2")).with_parent(&parent),
            NewTask::new("qa", json!("loose")),
        ])
        .await
        .unwrap();
    let claimed = b.tasks.claim("qa", "w", LEASE).await.unwrap().unwrap();
    b.tasks
        .complete(&claimed.task.id, claimed.token, json!(null))
        .await
        .unwrap();
    let names = |tasks: Vec<crate::TaskRecord>| {
        tasks
            .into_iter()
            .map(|t| t.payload.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let children = TaskQuery {
        parent_id: Some(parent.clone()),
        ..TaskQuery::default()
    };
    assert_eq!(
        names(b.tasks.query(children).await.unwrap()),
        ["child-1", "child-2"]
    );
    let qa = TaskQuery {
        role: Some("qa".into()),
        ..TaskQuery::default()
    };
    assert_eq!(
        names(b.tasks.query(qa).await.unwrap()),
        ["child-1", "loose"]
    );
    let pending = TaskQuery {
        status: Some(TaskStatus::Pending),
        ..TaskQuery::default()
    };
    assert_eq!(
        names(b.tasks.query(pending).await.unwrap()),
        ["parent", "child-2", "loose"]
    );
    let early = TaskQuery {
        created_before: Some(start + TimeDelta::seconds(1)),
        ..TaskQuery::default()
    };
    assert_eq!(names(b.tasks.query(early).await.unwrap()), ["parent"]);
    let late = TaskQuery {
        created_after: Some(start + TimeDelta::minutes(1)),
        page: Page {
            limit: 2,
            offset: 1,
        },
        ..TaskQuery::default()
    };
    assert_eq!(
        names(b.tasks.query(late).await.unwrap()),
        ["child-2", "loose"]
    );
    let mut counts: Vec<_> = b
        .tasks
        .counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.role, c.status, c.count))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("ceo".to_owned(), TaskStatus::Pending, 1),
            ("developer".to_owned(), TaskStatus::Pending, 1),
            ("qa".to_owned(), TaskStatus::Pending, 1),
            ("qa".to_owned(), TaskStatus::Completed, 1),
        ]
    );
}

/// Many workers claiming at once: every task is claimed exactly once and completes once.
pub async fn concurrent_workers_claim_each_task_once(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let tasks: Vec<_> = (0..200).map(|i| NewTask::new("dev", json!(i))).collect();
    let ids: HashSet<String> = b
        .tasks
        .enqueue(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let store = Arc::clone(&b.tasks);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claimed) = store.claim("dev", &format!("w{w}"), LEASE).await.unwrap()
                {
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
    let completed = TaskQuery {
        status: Some(TaskStatus::Completed),
        page: Page::first(1000),
        ..TaskQuery::default()
    };
    assert_eq!(b.tasks.query(completed).await.unwrap().len(), 200);
}

/// Racing enqueues of the same idempotency key (as two orchestrators replaying one event would)
/// create exactly one task, and every caller gets its id.
pub async fn concurrent_enqueues_of_one_key_yield_one_task(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&b.tasks);
            tokio::spawn(async move {
                let task =
                    NewTask::new("qa", json!({ "racer": n })).with_idempotency_key("event-42");
                store.enqueue(vec![task]).await.unwrap().remove(0)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|e| e.created).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .map(|e| e.id.as_str())
            .collect::<HashSet<_>>()
            .len(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(b.tasks.query(TaskQuery::default()).await.unwrap().len(), 1);
}

/// Operations on an unknown id say so.
pub async fn unknown_task_is_reported(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    assert!(b.tasks.get("nope").await.unwrap().is_none());
    assert!(b.tasks.history("nope").await.unwrap().is_empty());
    for error in [
        b.tasks.complete("nope", 1, json!(null)).await.unwrap_err(),
        b.tasks
            .fail("nope", 1, "x", FailureKind::Transient)
            .await
            .unwrap_err(),
        b.tasks.heartbeat("nope", 1, LEASE).await.unwrap_err(),
        b.tasks.cancel("nope", "x").await.unwrap_err(),
    ] {
        assert!(
            matches!(&error, MemoryError::TaskNotFound { id } if id == "nope"),
            "{error}"
        );
    }
}

/// Zero attempts, an empty role and an empty page are refused; nothing is stored.
pub async fn invalid_input_is_refused(factory: Factory) {
    let Some(b) = open(factory).await else { return };
    let zero = NewTask::new("dev", json!({})).with_max_attempts(0);
    let error = b
        .tasks
        .enqueue(vec![NewTask::new("dev", json!(1)), zero])
        .await
        .unwrap_err();
    assert!(matches!(error, MemoryError::InvalidInput { .. }), "{error}");
    assert!(matches!(
        b.tasks.enqueue(vec![NewTask::new("", json!(1))]).await,
        Err(MemoryError::InvalidInput { .. })
    ));
    assert!(
        b.tasks
            .query(TaskQuery::default())
            .await
            .unwrap()
            .is_empty(),
        "a refused batch stores nothing"
    );
    let empty_page = TaskQuery {
        page: Page {
            limit: 0,
            offset: 0,
        },
        ..TaskQuery::default()
    };
    assert!(matches!(
        b.tasks.query(empty_page).await,
        Err(MemoryError::InvalidInput { .. })
    ));
}

impl ManualClock {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc> {
        crate::Clock::now(self)
    }
}
