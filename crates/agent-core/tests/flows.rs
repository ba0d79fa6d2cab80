#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The example flows over scripted answers, through the real LLM client stack: the TDD
//! flow (Product → QA → Developer → Tech Lead → commit) on a real repository with pytest,
//! and the decision flow (CFO, Risk, Legal, Security → CEO) plus the CEO's planning.
//! Measures LLM calls and tokens per role and task (printed as a table), then records the
//! run to a cassette and replays it offline with the `replay` provider.

mod common;

use std::path::Path;
use std::sync::Arc;

use agentd_agent_core::{
    AgentConfig, Role, Task, TaskKind, TaskResult, Verdict, WorkState, build_agent,
    commit_task_changes,
};
use agentd_llm::{
    LlmClient, LlmHandle, LlmSettings, ProviderKind, build_client, build_client_with,
};
use common::*;
use serde_json::json as j;

const STATS_TESTS: &str = "import pytest\n\nfrom stats import mean\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n\n\ndef test_mean_of_nothing():\n    with pytest.raises(ValueError):\n        mean([])\n";
const STATS: &str = "def mean(values):\n    if not values:\n        raise ValueError(\"mean of no values\")\n    return sum(values) / len(values)\n";

fn ok(score: u32) -> Reply {
    json(j!({"valid": true, "score": score, "issues": []}))
}

fn tdd_script() -> Vec<Reply> {
    vec![
        // Product
        json(
            j!({"summary": "mean() of a list", "requirements": ["mean(values) returns the arithmetic mean"], "acceptance_criteria": ["mean([1,2,3]) == 2", "mean([]) raises ValueError"], "out_of_scope": ["median"]}),
        ),
        ok(8),
        // QA
        json(
            j!({"summary": "tests for mean()", "constraints": ["module stats, function mean"], "files": [{"path": "tests/test_stats.py", "content": STATS_TESTS}]}),
        ),
        ok(8),
        // Developer
        tool("read_file", j!({"path": "tests/test_stats.py"})),
        tool("write_file", j!({"path": "stats.py", "content": STATS})),
        tool("run_tests", j!({})),
        tool("finish", j!({"summary": "stats.mean implemented"})),
        ok(9),
        // Tech Lead
        json(j!({"scores": [
            {"name": "correctness", "score": 9, "comment": "right"},
            {"name": "tests", "score": 8, "comment": "both cases"},
            {"name": "security", "score": 9, "comment": "no input risk"},
            {"name": "design", "score": 8, "comment": "simple"},
            {"name": "readability", "score": 9, "comment": "clear"}
        ], "reasoning": "small and correct", "required_changes": []})),
        ok(9),
        // Commit message
        json(
            j!({"type": "feat", "scope": "stats", "subject": "add mean()", "body": "With tests for the empty case."}),
        ),
    ]
}

fn reviewer_script(first: &str, second: &str) -> Vec<Reply> {
    vec![
        json(j!({"criteria": [
            {"name": first, "threshold": 6, "weight": 2},
            {"name": second, "threshold": 5, "weight": 1}
        ], "reasoning": "what matters for this proposal"})),
        json(j!({"scores": [
            {"name": first, "score": 8, "comment": "fine"},
            {"name": second, "score": 7, "comment": "acceptable"}
        ], "reasoning": "acceptable overall", "required_changes": []})),
        ok(8),
    ]
}

fn decision_script() -> Vec<Reply> {
    let mut script = Vec::new();
    script.extend(reviewer_script("monthly_cost", "payback_period"));
    script.extend(reviewer_script("vendor_lock_in", "rollback_plan"));
    script.extend(reviewer_script("licence_compatibility", "data_residency"));
    script.extend(reviewer_script("secret_handling", "network_exposure"));
    script.push(json(j!({"approve": true, "reasoning": "all reviewers agree", "conditions": ["revisit cost in 3 months"]})));
    script.push(json(j!({"tasks": [
        {"title": "Migrate embeddings", "description": "Copy vectors to the hosted DB", "kind": "feature", "priority": "high", "roles": ["product", "qa", "developer", "tech_lead"]},
        {"title": "Cost dashboard", "description": "Track DB spend", "kind": "chore", "priority": "low", "roles": ["developer"]}
    ], "reasoning": "execute the approved proposal"})));
    script
}

/// One measured step: who, what, and what it cost.
struct Row {
    flow: &'static str,
    role: String,
    step: &'static str,
    calls: u64,
    input: u64,
    output: u64,
}

/// Everything a run produced that must be identical on replay.
#[derive(Debug, PartialEq)]
struct Outcome {
    results: Vec<(String, bool, String)>,
    verdicts: Vec<Verdict>,
    decision: Verdict,
    generated: Vec<String>,
    files: Vec<(String, String)>,
}

fn delta(handle: &LlmHandle, before: &agentd_llm::UsageSnapshot, role: &str) -> (u64, u64, u64) {
    let now = handle.usage();
    let get = |s: &agentd_llm::UsageSnapshot| s.by_role.get(role).cloned().unwrap_or_default();
    let (a, b) = (get(before), get(&now));
    (
        a.requests.abs_diff(b.requests),
        a.input_tokens.abs_diff(b.input_tokens),
        a.output_tokens.abs_diff(b.output_tokens),
    )
}

fn summary(result: &TaskResult) -> (String, bool, String) {
    (
        result.role.to_string(),
        result.succeeded(),
        result.summary.clone(),
    )
}

/// Runs both flows in `dir` with `handle`'s client, measuring each step.
async fn run_flows(dir: &Path, handle: &LlmHandle, rows: &mut Vec<Row>) -> Outcome {
    let repo = dir.join("repo");
    let vcs = python_repo(&repo).await;
    // Start from a green suite: the flow adds a feature, it does not fix calc.
    std::fs::write(repo.join("calc.py"), FIXED_CALC).unwrap();
    vcs.commit(
        &repo,
        agentd_vcs::CommitRequest {
            message: "fix: add".into(),
            paths: vec!["calc.py".into()],
            task_id: Some("setup-fix".into()),
            trailers: vec![],
        },
    )
    .await
    .unwrap();
    let llm: Arc<dyn LlmClient> = handle.client();
    let ctx = context(llm.clone(), dir)
        .await
        .with_workspace(full_workspace(&repo, vcs.clone(), true));
    let feature = Task::new(
        "f-1",
        "Add stats.mean",
        "A mean() function for lists of numbers",
    );
    let mut results = Vec::new();
    for (role, step) in [
        (Role::Product, "requirements"),
        (Role::Qa, "tests first"),
        (Role::Developer, "implement"),
        (Role::TechLead, "review"),
    ] {
        let before = handle.usage();
        let agent = build_agent(role.clone(), AgentConfig::default()).unwrap();
        let result = agent.process_task(&feature, &ctx).await.unwrap();
        assert!(result.succeeded(), "{role}: {result:#?}");
        let (calls, input, output) = delta(handle, &before, role.as_str());
        assert_eq!(
            u64::from(result.usage.calls),
            calls,
            "the result counts what the ledger counts"
        );
        rows.push(Row {
            flow: "tdd",
            role: role.to_string(),
            step,
            calls,
            input,
            output,
        });
        results.push(summary(&result));
    }
    let before = handle.usage();
    let commit = commit_task_changes(
        &ctx,
        &feature,
        &Role::Developer,
        Default::default(),
        vec!["stats.py".into(), "tests/test_stats.py".into()],
    )
    .await
    .unwrap()
    .unwrap();
    assert!(commit.created);
    let (calls, input, output) = delta(handle, &before, "developer");
    rows.push(Row {
        flow: "tdd",
        role: "developer".into(),
        step: "commit message",
        calls,
        input,
        output,
    });

    let mut proposal = Task::new(
        "p-1",
        "Adopt a hosted vector database",
        "Move embeddings to a hosted vector DB at $400/month.",
    );
    proposal.kind = TaskKind::Proposal;
    let plain = context(llm.clone(), &dir.join("decisions")).await;
    let mut verdicts = Vec::new();
    for role in [Role::Cfo, Role::Risk, Role::Legal, Role::Security] {
        let before = handle.usage();
        let agent = build_agent(role.clone(), AgentConfig::default()).unwrap();
        let result = agent.process_task(&proposal, &plain).await.unwrap();
        let (calls, input, output) = delta(handle, &before, role.as_str());
        rows.push(Row {
            flow: "decision",
            role: role.to_string(),
            step: "criteria + verdict",
            calls,
            input,
            output,
        });
        results.push(summary(&result));
        verdicts.push(result.verdict.unwrap());
    }
    let ceo = build_agent(Role::Ceo, AgentConfig::default()).unwrap();
    let before = handle.usage();
    let decision = ceo.decide(&proposal, &verdicts, &plain).await.unwrap();
    let (calls, input, output) = delta(handle, &before, "ceo");
    rows.push(Row {
        flow: "decision",
        role: "ceo".into(),
        step: "final decision",
        calls,
        input,
        output,
    });
    let before = handle.usage();
    let state = WorkState {
        goal: Some("Execute approved proposals".into()),
        ..WorkState::default()
    };
    let generated = ceo.generate_tasks(&state, &plain).await.unwrap();
    let (calls, input, output) = delta(handle, &before, "ceo");
    rows.push(Row {
        flow: "planning",
        role: "ceo".into(),
        step: "generate tasks",
        calls,
        input,
        output,
    });

    let files = ["stats.py", "tests/test_stats.py"]
        .iter()
        .map(|p| {
            (
                p.to_string(),
                std::fs::read_to_string(repo.join(p)).unwrap(),
            )
        })
        .collect();
    Outcome {
        results,
        verdicts,
        decision,
        generated: generated.into_iter().map(|t| t.title).collect(),
        files,
    }
}

fn print_table(rows: &[Row]) {
    println!("| flow | role | task step | LLM calls | input tokens | output tokens |");
    println!("|---|---|---|---:|---:|---:|");
    let (mut calls, mut input, mut output) = (0, 0, 0);
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.flow, r.role, r.step, r.calls, r.input, r.output
        );
        calls += r.calls;
        input += r.input;
        output += r.output;
    }
    println!("| all | | | {calls} | {input} | {output} |");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_flows_measured_then_replayed_offline() {
    if !require_program("pytest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("flows.jsonl");
    let mut script = tdd_script();
    script.extend(decision_script());
    let scripted = ScriptedLlm::new(script);
    let recording = LlmSettings {
        provider: ProviderKind::OpenaiCompatible,
        model: Some("scripted".into()),
        base_url: Some("http://127.0.0.1:9".into()),
        cassette: Some(cassette.clone()),
        ..LlmSettings::default()
    };
    let handle = build_client_with(&recording, scripted.clone()).unwrap();
    let mut rows = Vec::new();
    let recorded = run_flows(&dir.path().join("record"), &handle, &mut rows).await;
    print_table(&rows);
    assert_eq!(scripted.remaining(), 0, "every scripted answer was used");

    let calls: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (format!("{}/{}", r.role, r.step), r.calls))
        .collect();
    let expected: Vec<(String, u64)> = [
        ("product/requirements", 2),
        ("qa/tests first", 2),
        ("developer/implement", 5),
        ("tech_lead/review", 2),
        ("developer/commit message", 1),
        ("cfo/criteria + verdict", 3),
        ("risk/criteria + verdict", 3),
        ("legal/criteria + verdict", 3),
        ("security/criteria + verdict", 3),
        ("ceo/final decision", 1),
        ("ceo/generate tasks", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(calls, expected);
    assert!(rows.iter().all(|r| r.input > 0 && r.output > 0));
    assert!(recorded.decision.approve);
    assert_eq!(recorded.files[0].1, STATS);

    // Offline: the same flows, answered from the cassette alone.
    let replay = LlmSettings {
        provider: ProviderKind::Replay,
        model: Some("scripted".into()),
        cassette: Some(cassette),
        ..LlmSettings::default()
    };
    let handle = build_client(&replay).unwrap();
    let mut replay_rows = Vec::new();
    let replayed = run_flows(&dir.path().join("replay"), &handle, &mut replay_rows).await;
    assert_eq!(replayed, recorded);
    let replay_calls: Vec<u64> = replay_rows.iter().map(|r| r.calls).collect();
    assert_eq!(
        replay_calls,
        rows.iter().map(|r| r.calls).collect::<Vec<_>>()
    );
}
