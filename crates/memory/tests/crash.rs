//! Crash test with real processes: this binary re-runs itself as a child that enqueues and works
//! tasks on one SQLite file and reports each acknowledged operation on stdout; the parent SIGKILLs
//! it after a random number of acknowledgements, reopens the file and checks that it is intact,
//! that no acknowledged task is lost and that none is completed twice. After the last round a
//! child drains the queue and every task must end completed.
//!
//! `harness = false`: `main` is the test (and, with the child variable set, the child).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use agentd_memory::{
    NewTask, OffsetClock, SqliteOptions, SqliteStore, TaskQuery, TaskStatus, TaskStore,
};
use chrono::TimeDelta;
use rand::Rng;
use serde_json::json;

const CHILD_DB: &str = "AGENTD_MEMORY_CRASH_CHILD_DB";
const CHILD_ROUND: &str = "AGENTD_MEMORY_CRASH_CHILD_ROUND";
const CHILD_DRAIN: &str = "AGENTD_MEMORY_CRASH_CHILD_DRAIN";
const ROUNDS: u32 = 60;
const TEST_NAME: &str = "crash_sigkill_rounds_lose_nothing_and_complete_once";

fn main() {
    if let Ok(db) = std::env::var(CHILD_DB) {
        let round: i64 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
        child(
            Path::new(&db),
            round,
            std::env::var_os(CHILD_DRAIN).is_some(),
        );
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{TEST_NAME}: test");
        return;
    }
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !TEST_NAME.contains(filter.as_str())
    {
        return;
    }
    println!("running 1 test\ntest {TEST_NAME} ...");
    parent();
    println!("test {TEST_NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed");
}

/// The worker process: enqueues and works tasks forever (until killed), or drains the queue.
fn child(db: &Path, round: i64, drain: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Each round's clock runs an hour ahead of the previous one, as a restart long after the
        // crash would: the dead process's leases have expired, without any sleeping.
        let clock = Arc::new(OffsetClock::new(TimeDelta::hours(round)));
        let store = SqliteStore::open(db, SqliteOptions::default(), clock)
            .await
            .unwrap();
        let store: Arc<dyn TaskStore> = Arc::new(store);
        store.requeue_expired().await.unwrap();
        let lease = Duration::from_secs(600);
        if drain {
            while let Some(claimed) = store.claim("crash", "drain", lease).await.unwrap() {
                store
                    .complete(&claimed.task.id, claimed.token, json!("drain"))
                    .await
                    .unwrap();
                println!("DONE {}", claimed.task.id);
            }
            println!("FINISHED");
            return;
        }
        for w in 0..3 {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                loop {
                    match store
                        .claim("crash", &format!("r{round}-w{w}"), lease)
                        .await
                        .unwrap()
                    {
                        Some(claimed) => {
                            store
                                .complete(&claimed.task.id, claimed.token, json!(w))
                                .await
                                .unwrap();
                            println!("DONE {}", claimed.task.id);
                        }
                        None => tokio::task::yield_now().await,
                    }
                }
            });
        }
        // Enqueue until killed.
        for i in 0.. {
            let task = NewTask::new("crash", json!({ "round": round, "i": i }))
                .with_idempotency_key(format!("r{round}-{i}"))
                .with_max_attempts(1_000);
            let enqueued = store.enqueue(vec![task]).await.unwrap();
            println!("ENQ {}", enqueued[0].id);
        }
    });
}

struct Acknowledged {
    enqueued: HashSet<String>,
    completed: HashSet<String>,
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked = Acknowledged {
        enqueued: HashSet::new(),
        completed: HashSet::new(),
    };
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        // Half the rounds kill after a random number of acknowledged operations, the other half
        // after a random delay (which also hits opening, migrating and recovery).
        let kill_after_acks: Option<usize> =
            rng.random_bool(0.5).then(|| rng.random_range(0..=120));
        let kill_after_delay = Duration::from_micros(rng.random_range(0..30_000));
        let mut child = Command::new(&exe)
            .env(CHILD_DB, &db)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match kill_after_acks {
            Some(acks) => {
                for _ in 0..acks {
                    let Some(line) = lines.next() else {
                        let output = child.wait_with_output().unwrap();
                        panic!(
                            "round {round}: the child died on its own: {}",
                            String::from_utf8_lossy(&output.stderr)
                        );
                    };
                    record(&mut acked, &line.unwrap());
                }
            }
            None => std::thread::sleep(kill_after_delay),
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines already written before the kill were acknowledged too.
        for line in lines.map_while(Result::ok) {
            record(&mut acked, &line);
        }
        check_file(&db, &acked, round);
    }

    let output = Command::new(&exe)
        .env(CHILD_DB, &db)
        .env(CHILD_ROUND, ROUNDS.to_string())
        .env(CHILD_DRAIN, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "drain failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout.lines().for_each(|line| record(&mut acked, line));
    assert_eq!(stdout.lines().last(), Some("FINISHED"));
    check_file(&db, &acked, ROUNDS);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = Arc::new(OffsetClock::new(TimeDelta::hours(i64::from(ROUNDS) + 1)));
        let store = SqliteStore::open(&db, SqliteOptions::default(), clock)
            .await
            .unwrap();
        let counts = store.counts().await.unwrap();
        assert!(
            counts.iter().all(|c| c.status == TaskStatus::Completed),
            "not all terminal: {counts:?}"
        );
        let total: u64 = counts.iter().map(|c| c.count).sum();
        assert!(total as usize >= acked.enqueued.len());
        let all = TaskQuery {
            page: agentd_memory::Page::first(u32::MAX),
            ..TaskQuery::default()
        };
        assert_eq!(store.query(all).await.unwrap().len() as u64, total);
    });
    println!(
        "{ROUNDS} SIGKILL rounds: {} tasks acknowledged enqueued, {} acknowledged completed, all completed exactly once",
        acked.enqueued.len(),
        acked.completed.len()
    );
}

fn record(acked: &mut Acknowledged, line: &str) {
    if let Some(id) = line.strip_prefix("ENQ ") {
        acked.enqueued.insert(id.to_owned());
    } else if let Some(id) = line.strip_prefix("DONE ") {
        assert!(
            acked.completed.insert(id.to_owned()),
            "task {id} acknowledged completed twice"
        );
    }
}

/// Reopens the file as a plain SQLite connection and checks the invariants.
fn check_file(db: &Path, acked: &Acknowledged, round: u32) {
    if !db.exists() {
        assert!(acked.enqueued.is_empty());
        return;
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "round {round}: integrity check");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'tasks'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    if tables == 0 {
        assert!(
            acked.enqueued.is_empty(),
            "round {round}: tasks acknowledged but no schema"
        );
        return;
    }
    let mut status = conn
        .prepare("SELECT status FROM tasks WHERE id = ?1")
        .unwrap();
    for id in &acked.enqueued {
        let found: Result<String, _> = status.query_row([id], |row| row.get(0));
        assert!(found.is_ok(), "round {round}: acknowledged task {id} lost");
    }
    for id in &acked.completed {
        let found: String = status.query_row([id], |row| row.get(0)).unwrap();
        assert_eq!(
            found, "completed",
            "round {round}: acknowledged completion of {id} lost"
        );
    }
    let twice: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT task_id FROM task_transitions WHERE to_status = 'completed'
             GROUP BY task_id HAVING count(*) > 1)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(twice, 0, "round {round}: tasks completed more than once");
    let running_without_lease: i64 = conn
        .query_row(
            "SELECT count(*) FROM tasks WHERE status = 'running' AND lease_expires_at IS NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        running_without_lease, 0,
        "round {round}: running task without a lease"
    );
}
