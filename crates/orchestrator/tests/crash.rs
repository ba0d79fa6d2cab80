#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `kill -9` in the middle of the TDD pipeline: a child process (this test binary, running
//! the ignored `crash_child` test) drives the pipeline and is SIGKILLed right after it
//! saved a step's output, or a little later; a final run resumes. Nothing is lost, nothing is committed or deployed twice,
//! the repository passes `git fsck` and the database `PRAGMA integrity_check`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentd_memory::{MemoryStore, OffsetClock, Page, TaskQuery, TaskStatus, TaskStore};
use agentd_orchestrator::{PIPELINE_MEMORY_AGENT, RunLimits};
use common::*;

const WORLD_ENV: &str = "AGENTD_CRASH_WORLD";
const OFFSET_ENV: &str = "AGENTD_CRASH_OFFSET_MINUTES";

/// Each run's store clock is ahead of the previous one's, so the leases a killed run held
/// have expired for the next (as they would after waiting out the lease).
fn clock(offset_minutes: i64) -> Arc<OffsetClock> {
    Arc::new(OffsetClock::new(chrono::TimeDelta::minutes(offset_minutes)))
}

#[test]
#[ignore = "run by sigkill_after_saved_steps_then_resume as its child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(WORLD_ENV) else {
        return;
    };
    let offset: i64 = std::env::var(OFFSET_ENV).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let world = World::at(std::path::Path::new(&dir));
        let store = world.store(clock(offset)).await;
        let (orchestrator, _, _) = world
            .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
            .await;
        orchestrator.run_once(RunLimits::default()).await.unwrap();
    });
}

fn task_id_trailers(work: &std::path::Path) -> Vec<String> {
    git(
        work,
        &["log", "main", "--format=%(trailers:key=Task-Id,valueonly)"],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| l.trim().to_owned())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_saved_steps_then_resume() {
    if !require("git") || !require("cargo") {
        return;
    }
    let world = World::new();
    {
        let store = world.store(clock(0)).await;
        let (orchestrator, _, _) = world
            .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
            .await;
        orchestrator
            .submit(feature("Add numbers"), None)
            .await
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    // The parent watches the saved step outputs through its own connection and kills the
    // child right after it saved one (the window between saving and completing), or a
    // little later (inside the next step), round after round until a run completes.
    let watcher = world.store(clock(0)).await;
    let saved_steps = || async {
        watcher
            .list(PIPELINE_MEMORY_AGENT, Page::first(1000))
            .await
            .unwrap()
            .len()
    };
    let extra_delay_ms = [0u64, 5, 25];
    let mut killed = 0;
    let mut finished = false;
    for round in 0..30 {
        let before = saved_steps().await;
        let mut child = tokio::process::Command::new(&exe)
            .args(["--ignored", "--exact", "crash_child", "--nocapture"])
            .env(WORLD_ENV, &world.dir)
            .env(OFFSET_ENV, ((round + 1) * 10).to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            tokio::select! {
                status = child.wait() => {
                    assert!(status.unwrap().success(), "an uninterrupted child run must succeed");
                    finished = true;
                    eprintln!("round {round}: finished, {} steps saved", saved_steps().await);
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    if saved_steps().await > before {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "round {round} made no progress");
                }
            }
        }
        if finished {
            break;
        }
        let extra = extra_delay_ms[round % extra_delay_ms.len()];
        tokio::select! {
            status = child.wait() => {
                assert!(status.unwrap().success());
                finished = true;
            }
            _ = tokio::time::sleep(Duration::from_millis(extra)) => {
                child.start_kill().unwrap(); // SIGKILL
                let _ = child.wait().await;
                killed += 1;
                eprintln!("round {round}: killed {extra} ms after saved step {}", saved_steps().await);
            }
        }
        if finished {
            break;
        }
    }
    drop(watcher);
    assert!(killed >= 4, "only {killed} runs were killed mid-way");
    let store = world.store(clock(1000)).await;
    let (orchestrator, _, _) = world
        .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
        .await;
    orchestrator.run_once(RunLimits::default()).await.unwrap();

    let records = store.query(TaskQuery::default()).await.unwrap();
    assert_eq!(records.len(), 5, "each step enqueued once: {records:#?}");
    assert!(
        records.iter().all(|r| r.status == TaskStatus::Completed),
        "{records:#?}"
    );
    assert_eq!(
        task_id_trailers(&world.work).len(),
        2,
        "one QA and one developer commit"
    );
    assert_eq!(
        git(&world.remote, &["rev-parse", "main"]),
        git(&world.work, &["rev-parse", "main"])
    );
    let deployer = world.repo().await.deployer.unwrap();
    assert_eq!(deployer.history("production").await.unwrap().len(), 1);
    git(&world.work, &["fsck", "--strict"]);
    git(&world.remote, &["fsck", "--strict"]);
    drop(store);
    let db = rusqlite::Connection::open(&world.db).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
