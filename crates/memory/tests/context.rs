//! `ContextManager` over a real SQLite store: stored context per scope, and prompt assembly
//! within a budget (pinned strategy and goals first, then relevant and recent items).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use agentd_memory::{
    ContextManager, ManualClock, MemoryStore, NewActivity, NewDecision, Scope, SqliteOptions,
    SqliteStore,
};
use chrono::TimeDelta;
use serde_json::json;

async fn fixture() -> (tempfile::TempDir, ContextManager) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let store = SqliteStore::open(
        dir.path().join("ctx.db"),
        SqliteOptions::default(),
        clock.clone(),
    )
    .await
    .unwrap();
    let memory: Arc<dyn MemoryStore> = Arc::new(store);
    let context = ContextManager::new(Arc::clone(&memory));
    context
        .set_strategy(
            Scope::Global,
            "Ship a small, well-tested CLI for parsing invoices.",
        )
        .await
        .unwrap();
    context
        .set_goals(
            Scope::Global,
            &["Parse PDF invoices".into(), "Export CSV".into()],
        )
        .await
        .unwrap();
    context
        .set_strategy(
            Scope::Agent("developer"),
            "Make the failing tests pass with minimal code.",
        )
        .await
        .unwrap();
    context
        .set_fact(Scope::Global, "language", "Rust 2024, no unsafe")
        .await
        .unwrap();
    context
        .set_fact(Scope::Global, "ci", "cargo test must pass before merge")
        .await
        .unwrap();
    context
        .set_fact(
            Scope::Agent("developer"),
            "csv_crate",
            "use the csv crate for CSV export",
        )
        .await
        .unwrap();
    memory
        .remember("developer", "last_branch", json!("feature/invoice-totals"))
        .await
        .unwrap();
    memory
        .remember("qa", "private", json!("QA's own note"))
        .await
        .unwrap();
    for (activity, details) in [
        ("tests_read", json!({"file": "tests/totals.rs"})),
        (
            "code_written",
            json!({"file": "src/totals.rs", "lines": 42}),
        ),
        (
            "tests_run",
            json!({"passed": 3, "failed": 1, "failing": "csv export header"}),
        ),
    ] {
        clock.advance(TimeDelta::minutes(7));
        memory
            .append_activity(NewActivity {
                agent_name: "developer".into(),
                activity: activity.into(),
                details,
            })
            .await
            .unwrap();
    }
    let decision = NewDecision {
        agent_name: "developer".into(),
        decision_type: "approach".into(),
        decision_data: json!({"choice": "stream rows instead of buffering"}),
    };
    memory.append_decision(decision).await.unwrap();
    (dir, context)
}

#[tokio::test]
async fn scope_context_round_trips() {
    let (_dir, context) = fixture().await;
    let global = context.scope_context(Scope::Global).await.unwrap();
    assert_eq!(
        global.strategy.as_deref(),
        Some("Ship a small, well-tested CLI for parsing invoices.")
    );
    assert_eq!(global.goals, ["Parse PDF invoices", "Export CSV"]);
    let mut facts = global.facts.clone();
    facts.sort();
    assert_eq!(
        facts,
        [
            ("ci".into(), "cargo test must pass before merge".into()),
            ("language".into(), "Rust 2024, no unsafe".into())
        ]
    );
    assert!(context.remove_fact(Scope::Global, "ci").await.unwrap());
    assert!(!context.remove_fact(Scope::Global, "ci").await.unwrap());
    assert_eq!(
        context
            .scope_context(Scope::Global)
            .await
            .unwrap()
            .facts
            .len(),
        1
    );
    assert!(context.scope_context(Scope::Agent("nobody")).await.unwrap() == Default::default());
}

#[tokio::test]
async fn full_budget_renders_every_section() {
    let (_dir, context) = fixture().await;
    let assembled = context
        .assemble("developer", "fix the csv export test", 10_000)
        .await
        .unwrap();
    assert_eq!(assembled.omitted, 0);
    assert!(
        !assembled.text.contains("QA's own note"),
        "another agent's memory leaked"
    );
    insta::assert_snapshot!(assembled.text);
}

#[tokio::test]
async fn small_budget_keeps_pinned_and_relevant_items_within_the_limit() {
    let (_dir, context) = fixture().await;
    let budget = 300;
    let assembled = context
        .assemble("developer", "fix the csv export test", budget)
        .await
        .unwrap();
    assert!(
        assembled.text.chars().count() <= budget,
        "{} chars:\n{}",
        assembled.text.chars().count(),
        assembled.text
    );
    assert!(
        assembled.text.contains("Ship a small"),
        "global strategy is pinned:\n{}",
        assembled.text
    );
    assert!(
        assembled.text.contains("csv crate"),
        "the most relevant fact is kept:\n{}",
        assembled.text
    );
    assert!(
        !assembled.text.contains("tests_read"),
        "an irrelevant old activity should give way:\n{}",
        assembled.text
    );
    assert!(assembled.omitted > 0);
    for budget in [0, 1, 10, 40, 120] {
        let tiny = context
            .assemble("developer", "anything", budget)
            .await
            .unwrap();
        assert!(
            tiny.text.chars().count() <= budget,
            "budget {budget}: {:?}",
            tiny.text
        );
    }
}

#[tokio::test]
async fn strategy_and_facts_survive_many_newer_memories() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let store = SqliteStore::open(
        dir.path().join("ctx.db"),
        SqliteOptions::default(),
        clock.clone(),
    )
    .await
    .unwrap();
    let memory: Arc<dyn MemoryStore> = Arc::new(store);
    let context = ContextManager::new(Arc::clone(&memory));
    context
        .set_strategy(Scope::Agent("dev"), "Keep the strategy")
        .await
        .unwrap();
    context
        .set_fact(Scope::Agent("dev"), "db", "SQLite")
        .await
        .unwrap();
    for n in 0..300 {
        clock.advance(TimeDelta::seconds(1));
        memory
            .remember("dev", &format!("note-{n}"), json!(n))
            .await
            .unwrap();
    }
    let own = context.scope_context(Scope::Agent("dev")).await.unwrap();
    assert_eq!(own.strategy.as_deref(), Some("Keep the strategy"));
    assert_eq!(own.facts, [("db".to_owned(), "SQLite".to_owned())]);
    let assembled = context.assemble("dev", "strategy", 2_000).await.unwrap();
    assert!(
        assembled
            .text
            .starts_with("## Strategy\nKeep the strategy\n"),
        "{}",
        assembled.text
    );
}
