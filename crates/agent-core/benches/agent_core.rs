//! Agent overhead without the model: rendering a prompt, and one accepted Product task
//! (context assembly, two scripted LLM calls, parsing, journaling to a real SQLite file).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use agentd_agent_core::{AgentConfig, AgentContext, Role, Task, build_agent, render_prompt};
use common::{ScriptedLlm, json};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json as j;

fn implement_values() -> serde_json::Value {
    j!({
        "role": "developer", "agent": "developer",
        "task": {"id": "42", "title": "Fix add()", "description": "calc.add(2, 3) must return 5.",
                 "kind": "bugfix", "priority": "high", "assigned_roles": ["developer"],
                 "payload": {"requirements": ["add returns the sum"]}, "attempts": 0},
        "context": "## Strategy\nReliability before features\n",
        "feedback": {"mode": "fix", "attempt": 2, "approach": 0, "issues": ["test_add fails"], "previous_approaches": []},
        "files": (0..100).map(|i| format!("src/module_{i}.py")).collect::<Vec<_>>(),
        "framework": "pytest",
        "tests": {"outcome": "failed", "passed": 0, "failed": 2, "total": 2, "failing": ["test_calc.py::test_add"]},
        "max_steps": 30,
    })
}

fn benches(c: &mut Criterion) {
    let values = implement_values();
    c.bench_function("render developer/implement.v1 (100 files)", |b| {
        b.iter(|| render_prompt("developer/implement.v1", &values).unwrap())
    });

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let memory = runtime.block_on(common::memory_in(dir.path()));
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let task = Task::new("t-1", "Health endpoint", "Add GET /health");
    c.bench_function("product process_task, accepted first time (2 scripted calls)", |b| {
        b.to_async(&runtime).iter(|| async {
            let llm = ScriptedLlm::new(vec![
                json(j!({"summary": "s", "requirements": ["r"], "acceptance_criteria": ["a"], "out_of_scope": []})),
                json(j!({"valid": true, "score": 9, "issues": []})),
            ]);
            let ctx = AgentContext::new(llm, memory.clone());
            let result = agent.process_task(&task, &ctx).await.unwrap();
            assert!(result.succeeded());
        })
    });
}

criterion_group! {
    name = agent_core;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(agent_core);
