#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The TDD pipeline end to end: scripted agents and LLM, a real git repository with a bare
//! remote, a real SQLite store, real `cargo test` through the test runner, ci_cd deploy.

mod common;

use std::sync::Arc;

use agentd_memory::{
    LogQuery, MemoryStore, OffsetClock, SystemClock, TaskQuery, TaskStatus, TaskStore,
};
use agentd_orchestrator::{RunLimits, feature_branch};
use common::*;

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
async fn feature_goes_from_tests_first_to_deployed_main() {
    if !require("git") || !require("cargo") {
        return;
    }
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let (orchestrator, handle, _book) = world
        .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
        .await;
    let root = orchestrator
        .submit(feature("Add numbers"), None)
        .await
        .unwrap();

    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();

    // Steps: requirements, tests, implementation, review, release.
    assert_eq!(summary.completed, 5, "{summary:?}");
    assert_eq!(
        (summary.failed, summary.merged, summary.deployed),
        (0, 1, 1),
        "{summary:?}"
    );

    // Repository: feature branch, main carries both commits with Task-Id trailers, pushed.
    let branches = git(
        &world.work,
        &["branch", "--list", "--format=%(refname:short)"],
    );
    assert!(
        branches.lines().any(|b| b == feature_branch(&root)),
        "{branches}"
    );
    let trailers = task_id_trailers(&world.work);
    assert_eq!(
        trailers.len(),
        2,
        "one QA and one developer commit: {trailers:?}"
    );
    let records = store.query(TaskQuery::default()).await.unwrap();
    for trailer in &trailers {
        let record = records
            .iter()
            .find(|r| &r.id == trailer)
            .expect("trailer names a task");
        assert!(["qa", "developer"].contains(&record.role.as_str()));
    }
    let main = git(&world.work, &["rev-parse", "main"]);
    assert_eq!(
        git(&world.remote, &["rev-parse", "main"]),
        main,
        "deployed to the remote"
    );
    let lib = git(&world.work, &["show", "main:src/lib.rs"]);
    assert!(lib.contains("pub fn add"), "{lib}");
    git(&world.work, &["fsck", "--strict"]);
    git(&world.remote, &["fsck", "--strict"]);

    // Store: every record completed, children linked to the root.
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r.status == TaskStatus::Completed));
    assert!(
        records
            .iter()
            .filter(|r| r.id != root)
            .all(|r| r.parent_id.as_deref() == Some(root.as_str()))
    );
    let progress = orchestrator.pipeline_progress(&root).await.unwrap();
    let tests = &progress["tests"];
    assert_ne!(
        tests["red"]["outcome"], "passed",
        "tests failed before the code: {tests}"
    );
    let implemented = &progress["implementation/0"];
    assert_eq!(implemented["gate_passed"], true);
    assert_eq!(implemented["tests"]["outcome"], "passed", "{implemented}");
    assert!(implemented["tests"]["passed"].as_u64().unwrap() >= 2);
    let activities = store.query_activities(LogQuery::default()).await.unwrap();
    for agent in ["product", "qa", "developer", "tech_lead", "orchestrator"] {
        assert!(
            activities.iter().any(|a| a.agent_name == agent),
            "no activity of {agent}"
        );
    }
    let decisions = store.query_decisions(LogQuery::default()).await.unwrap();
    let release = decisions
        .iter()
        .find(|d| d.decision_type == "release")
        .expect("release decision");
    assert_eq!(release.decision_data["task_id"], root.as_str());

    // Metrics and usage: each agent call went through the labelled, budgeted client.
    let metrics = orchestrator.metrics().encode().unwrap();
    for role in ["product", "qa", "developer", "tech_lead", "release"] {
        assert!(
            metrics.contains(&format!(
                "agentd_tasks_completed_total{{role=\"{role}\"}} 1"
            )),
            "{role}: {metrics}"
        );
    }
    assert!(
        metrics.contains("agentd_task_success_rate 1.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agentd_llm_requests{role=\"developer\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agentd_budget_spent_usd{scope=\"day\"}"),
        "{metrics}"
    );
    let usage = handle.usage();
    assert_eq!(
        usage.total.requests, 4,
        "product, qa, developer, tech lead: {usage:?}"
    );
    assert!(usage.by_agent.contains_key("developer"));

    // Rerunning is safe: nothing left to do, nothing committed or deployed twice.
    let again = orchestrator.run_once(RunLimits::default()).await.unwrap();
    assert_eq!(
        (again.completed, again.merged, again.deployed),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(task_id_trailers(&world.work).len(), 2);
}

/// Stops the orchestrator after each number of steps, drops it, and resumes with a fresh
/// one (store reopened with a clock past every lease): the final repository and store
/// match an uninterrupted run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_between_steps_loses_and_repeats_nothing() {
    if !require("git") || !require("cargo") {
        return;
    }
    let world = World::new();
    let root = {
        let store = world.store(Arc::new(SystemClock)).await;
        let (orchestrator, _, _) = world
            .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
            .await;
        orchestrator
            .submit(feature("Add numbers"), Some("user:add".into()))
            .await
            .unwrap()
    };
    let mut offset_minutes = 0;
    for _ in 0..5 {
        offset_minutes += 10;
        let clock = Arc::new(OffsetClock::new(chrono::TimeDelta::minutes(offset_minutes)));
        let store = world.store(clock).await;
        let (orchestrator, _, _) = world
            .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
            .await;
        // Submitting again (a user retry) finds the same task.
        assert_eq!(
            orchestrator
                .submit(feature("Add numbers"), Some("user:add".into()))
                .await
                .unwrap(),
            root
        );
        orchestrator
            .run_once(RunLimits {
                max_tasks: Some(1),
                goal: None,
            })
            .await
            .unwrap();
    }
    let clock = Arc::new(OffsetClock::new(chrono::TimeDelta::minutes(
        offset_minutes + 10,
    )));
    let store = world.store(clock).await;
    let records = store.query(TaskQuery::default()).await.unwrap();
    assert_eq!(records.len(), 5, "all five steps were enqueued once");
    assert!(
        records.iter().all(|r| r.status == TaskStatus::Completed),
        "{records:?}"
    );
    assert_eq!(task_id_trailers(&world.work).len(), 2);
    assert_eq!(
        git(&world.remote, &["rev-parse", "main"]),
        git(&world.work, &["rev-parse", "main"])
    );
    let deployer = world.repo().await.deployer.unwrap();
    let history = deployer.history("production").await.unwrap();
    assert_eq!(history.len(), 1, "deployed once: {history:#?}");
    git(&world.work, &["fsck", "--strict"]);
}

/// A run aborted at arbitrary points (the future dropped mid-step, leases left behind),
/// then resumed after the leases expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_runs_resume_after_lease_expiry() {
    if !require("git") || !require("cargo") {
        return;
    }
    let world = World::new();
    let mut offset_minutes = 0;
    let mut root = String::new();
    for (round, abort_after_ms) in [50u64, 400, 1500, 3000].into_iter().enumerate() {
        offset_minutes += 10;
        let clock = Arc::new(OffsetClock::new(chrono::TimeDelta::minutes(offset_minutes)));
        let store = world.store(clock).await;
        let (orchestrator, _, _) = world
            .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
            .await;
        if round == 0 {
            root = orchestrator
                .submit(feature("Add numbers"), None)
                .await
                .unwrap();
        }
        let run = orchestrator.run_once(RunLimits::default());
        let _ = tokio::time::timeout(std::time::Duration::from_millis(abort_after_ms), run).await;
    }
    offset_minutes += 10;
    let clock = Arc::new(OffsetClock::new(chrono::TimeDelta::minutes(offset_minutes)));
    let store = world.store(clock).await;
    let (orchestrator, _, _) = world
        .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
        .await;
    orchestrator.run_once(RunLimits::default()).await.unwrap();
    let records = store.query(TaskQuery::default()).await.unwrap();
    assert_eq!(records.len(), 5, "{records:#?}");
    assert!(
        records.iter().all(|r| r.status == TaskStatus::Completed),
        "{records:#?}"
    );
    assert_eq!(task_id_trailers(&world.work).len(), 2);
    assert_eq!(
        git(&world.remote, &["rev-parse", "main"]),
        git(&world.work, &["rev-parse", "main"])
    );
    assert!(
        orchestrator
            .pipeline_progress(&root)
            .await
            .unwrap()
            .contains_key("release")
    );
    git(&world.work, &["fsck", "--strict"]);
}

/// Two features at once: the second release finds main moved by the first and lands as a
/// real merge commit (two parents) carrying its pipeline's Task-Id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_features_land_as_a_merge_commit_on_main() {
    if !require("git") || !require("cargo") {
        return;
    }
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let (orchestrator, _, _) = world
        .orchestrator(&store, agents(&TDD_ROLES), settings(), true)
        .await;
    let first = orchestrator
        .submit(feature("Add numbers"), None)
        .await
        .unwrap();
    let second = orchestrator
        .submit(feature("Add numbers again"), None)
        .await
        .unwrap();

    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();

    assert_eq!(
        (summary.completed, summary.merged, summary.deployed),
        (10, 2, 2),
        "{summary:?}"
    );
    let merges = git(
        &world.work,
        &[
            "log",
            "main",
            "--merges",
            "--format=%H %(trailers:key=Task-Id,valueonly,separator=)",
        ],
    );
    let merges: Vec<&str> = merges.lines().collect();
    assert_eq!(merges.len(), 1, "{merges:?}");
    let roots = [first.as_str(), second.as_str()];
    assert!(
        roots.iter().any(|root| merges[0].ends_with(root)),
        "{merges:?} {roots:?}"
    );
    assert_eq!(
        task_id_trailers(&world.work).len(),
        5,
        "2 QA, 2 developer commits and the merge"
    );
    assert_eq!(
        git(&world.remote, &["rev-parse", "main"]),
        git(&world.work, &["rev-parse", "main"])
    );
    git(&world.work, &["fsck", "--strict"]);
}
