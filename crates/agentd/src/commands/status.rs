//! `agentd status [--json]`: agents, queue depths, failures, budget, and LLM
//! requests/tokens/cost, from the store (so it works whether or not a daemon runs).

use std::collections::BTreeMap;
use std::io::Write;

use agentd_memory::{Page, TaskQuery, TaskStatus};
use serde_json::{Value, json};

use crate::app::App;
use crate::config::Config;
use crate::observe::{STATUS_KEY, STATUS_MEMORY_AGENT, StatusSnapshot, status_line};

/// Prints the status; `Ok(false)` when there is no store yet.
pub async fn run(config: Config, json_output: bool, out: &mut dyn Write) -> anyhow::Result<bool> {
    if config.memory.backend == agentd_memory::BackendKind::Sqlite && !config.memory.path.exists() {
        if json_output {
            writeln!(
                out,
                "{}",
                json!({"store": null, "queues": {}, "daemon": null})
            )?;
        } else {
            writeln!(
                out,
                "no store yet at {} (start with `agentd run`)",
                config.memory.path.display()
            )?;
        }
        return Ok(false);
    }
    let app = App::open(config, false).await?;
    let live = app.orchestrator.status().await?;
    let daemon: Option<StatusSnapshot> = app
        .stores
        .memory
        .recall(STATUS_MEMORY_AGENT, STATUS_KEY)
        .await?
        .and_then(|entry| serde_json::from_value(entry.value).ok());
    let failures = app
        .stores
        .tasks
        .query(TaskQuery {
            status: Some(TaskStatus::DeadLetter),
            page: Page::first(1000),
            ..TaskQuery::default()
        })
        .await?;
    let mut agents: Vec<String> = app.orchestrator.queues();
    agents.retain(|queue| queue != agentd_orchestrator::RELEASE_QUEUE);

    if json_output {
        let value = json!({
            "agents": agents,
            "queues": live.queues,
            "budget": live.budget,
            "failures": failures.iter().map(|t| json!({"id": t.id, "queue": t.role, "error": t.last_error})).collect::<Vec<_>>(),
            "daemon": daemon,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(true);
    }
    writeln!(out, "agents   {}", agents.join(", "))?;
    writeln!(out, "queues")?;
    let statuses = [
        "pending",
        "running",
        "retrying",
        "completed",
        "dead_letter",
        "cancelled",
    ];
    writeln!(
        out,
        "  {:<12} {}",
        "queue",
        statuses.map(|s| format!("{s:>12}")).join("")
    )?;
    for (queue, counts) in &live.queues {
        let row: String = statuses
            .iter()
            .map(|s| format!("{:>12}", counts.get(*s).copied().unwrap_or(0)))
            .collect();
        writeln!(out, "  {queue:<12} {row}")?;
    }
    if live.queues.is_empty() {
        writeln!(out, "  (no tasks)")?;
    }
    if !failures.is_empty() {
        writeln!(out, "failures ({} dead-lettered)", failures.len())?;
        for task in failures.iter().rev().take(10) {
            writeln!(
                out,
                "  {}  {:<11} {}",
                task.id,
                task.role,
                task.last_error.as_deref().unwrap_or("-")
            )?;
        }
    }
    if let Some(budget) = &live.budget {
        let limit = budget
            .day_limit_usd
            .map(|l| format!(" of ${l:.2}"))
            .unwrap_or_default();
        writeln!(
            out,
            "budget   ${:.4}{limit} spent on {}",
            budget.today.spent_usd, budget.day
        )?;
    }
    match &daemon {
        None => writeln!(out, "daemon   never ran on this store")?,
        Some(snapshot) => {
            let state = if snapshot.running {
                "running (last seen"
            } else {
                "stopped (at"
            };
            writeln!(
                out,
                "daemon   pid {} {state} {})",
                snapshot.pid,
                snapshot.updated_at.to_rfc3339()
            )?;
            writeln!(out, "         {}", status_line(snapshot))?;
            let totals = &snapshot.llm.total;
            writeln!(
                out,
                "llm      {} requests ({} failed), {} in / {} out tokens, ${:.4}{}; cache {} hits / {} misses",
                totals.requests,
                totals.failed_requests,
                totals.input_tokens,
                totals.output_tokens,
                totals.cost_usd,
                if totals.unpriced_requests > 0 {
                    " (some unpriced)"
                } else {
                    ""
                },
                snapshot.llm.cache.hits,
                snapshot.llm.cache.misses,
            )?;
            let by_role: BTreeMap<&String, Value> = snapshot
                .llm
                .by_role
                .iter()
                .map(|(role, t)| (role, json!({"requests": t.requests, "tokens": t.input_tokens + t.output_tokens, "usd": t.cost_usd})))
                .collect();
            for (role, t) in by_role {
                writeln!(
                    out,
                    "  {role:<12} {} calls, {} tokens, ${:.4}",
                    t["requests"],
                    t["tokens"],
                    t["usd"].as_f64().unwrap_or(0.0)
                )?;
            }
        }
    }
    Ok(true)
}
