//! `agentd tasks [--status S] [--role R] [--json]` and `agentd task ID`: inspect the durable
//! task store. These only read, so they work while a daemon runs on the same store.

use std::io::Write;
use std::sync::Arc;

use agentd_memory::{MemoryStore, Page, TaskQuery, TaskRecord, TaskStatus, TaskStore};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Arguments of `agentd tasks`.
#[derive(Debug, Clone, clap::Args)]
pub struct TasksArgs {
    /// Only tasks in this status: pending, running, retrying, completed, dead_letter, cancelled.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<TaskStatus>,
    /// Only tasks of this role's queue.
    #[arg(long)]
    pub role: Option<String>,
    /// Most tasks to list (newest last).
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_status(text: &str) -> Result<TaskStatus, String> {
    text.parse::<TaskStatus>().map_err(|err| err.to_string())
}

/// Lists tasks.
pub async fn list(
    tasks: &dyn TaskStore,
    args: &TasksArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let records = tasks
        .query(TaskQuery {
            status: args.status,
            role: args.role.clone(),
            page: Page::first(args.limit),
            ..TaskQuery::default()
        })
        .await?;
    if args.json {
        let rows: Vec<Value> = records.iter().map(summary).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if records.is_empty() {
        writeln!(out, "no tasks")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<11}  {:<11}  {:<14}  {:>3}  title",
        "id", "queue", "status", "step", "try"
    )?;
    for record in &records {
        let row = summary(record);
        writeln!(
            out,
            "{:<36}  {:<11}  {:<11}  {:<14}  {:>3}  {}",
            record.id,
            record.role,
            record.status.as_str(),
            row["step"].as_str().unwrap_or("-"),
            record.attempts,
            row["title"].as_str().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// Shows one task: its record, its state transitions, its result, and (for a pipeline's
/// root task) every finished step of the pipeline.
pub async fn show(
    tasks: &dyn TaskStore,
    memory: &Arc<dyn MemoryStore>,
    id: &str,
    json_output: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(record) = tasks.get(id).await? else {
        bail!("no task with id {id} (list them with `agentd tasks`)");
    };
    let history = tasks
        .history(id)
        .await
        .context("cannot read the task's history")?;
    let children = tasks
        .query(TaskQuery {
            parent_id: Some(id.to_owned()),
            page: Page::first(1000),
            ..TaskQuery::default()
        })
        .await?;
    let steps = pipeline_steps(memory.as_ref(), id).await?;
    if json_output {
        let value = json!({
            "task": record,
            "history": history,
            "children": children.iter().map(summary).collect::<Vec<_>>(),
            "pipeline_steps": steps.iter().map(|(k, v)| json!({"step": k, "output": v})).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let row = summary(&record);
    writeln!(out, "task     {}", record.id)?;
    writeln!(out, "title    {}", row["title"].as_str().unwrap_or("-"))?;
    writeln!(
        out,
        "queue    {} (step {})",
        record.role,
        row["step"].as_str().unwrap_or("-")
    )?;
    writeln!(
        out,
        "status   {} after {} of {} attempts",
        record.status.as_str(),
        record.attempts,
        record.max_attempts
    )?;
    if let Some(parent) = &record.parent_id {
        writeln!(out, "parent   {parent}")?;
    }
    if let Some(error) = &record.last_error {
        writeln!(out, "error    {error}")?;
    }
    writeln!(out, "history")?;
    for transition in &history {
        let from = transition.from.map(|s| s.as_str()).unwrap_or("new");
        writeln!(
            out,
            "  {}  {from} -> {}  {}",
            transition.at.to_rfc3339(),
            transition.to.as_str(),
            transition.reason
        )?;
    }
    if !children.is_empty() {
        writeln!(out, "follow-up tasks")?;
        for child in &children {
            let row = summary(child);
            writeln!(
                out,
                "  {}  {:<11} {:<11} {}",
                child.id,
                child.role,
                child.status.as_str(),
                row["title"].as_str().unwrap_or("-")
            )?;
        }
    }
    if !steps.is_empty() {
        writeln!(out, "pipeline steps done")?;
        for (step, _) in &steps {
            writeln!(out, "  {step}")?;
        }
    }
    if let Some(result) = &record.result {
        writeln!(out, "result\n{}", serde_json::to_string_pretty(result)?)?;
    }
    Ok(())
}

/// The finished steps of the pipeline rooted at `root`, oldest first.
async fn pipeline_steps(
    memory: &dyn MemoryStore,
    root: &str,
) -> anyhow::Result<Vec<(String, Value)>> {
    let prefix = format!("{root}/");
    let mut entries = memory
        .list_prefix(
            agentd_orchestrator::PIPELINE_MEMORY_AGENT,
            &prefix,
            Page::first(10_000),
        )
        .await?;
    entries.sort_by_key(|entry| (entry.updated_at, entry.id));
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            entry
                .key
                .strip_prefix(&prefix)
                .map(|step| (step.to_owned(), entry.value))
        })
        .collect())
}

/// The fields a listing shows, read from the orchestrator's envelope in the payload (or
/// left empty for tasks enqueued by other programs).
fn summary(record: &TaskRecord) -> Value {
    let payload = &record.payload;
    json!({
        "id": record.id,
        "queue": record.role,
        "status": record.status.as_str(),
        "priority": record.priority.0,
        "attempts": record.attempts,
        "parent_id": record.parent_id,
        "title": payload.pointer("/task/title").or_else(|| payload.get("title")),
        "step": payload.get("step"),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "last_error": record.last_error,
    })
}
