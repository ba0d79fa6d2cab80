//! `agentd submit TEXT [--priority high|medium|low] [--role ROLE] [--kind KIND]`: enqueue a
//! task for the daemon (running or not) and print its id.

use std::io::Write;

use agentd_agent_core::{Priority, Role, TaskKind, TaskSpec};
use anyhow::Context;

use crate::app::App;
use crate::config::Config;

/// Arguments of `agentd submit`.
#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    /// What to do. The first line is the title; the whole text is the description.
    pub text: String,
    /// Queue priority.
    #[arg(long, value_parser = ["high", "medium", "low"], default_value = "medium")]
    pub priority: String,
    /// Give the task to this role (e.g. developer, qa, cfo, or a role of your own) instead
    /// of routing it by kind.
    #[arg(long)]
    pub role: Option<String>,
    /// The kind of work: feature (TDD pipeline), bugfix, refactor, proposal (decision
    /// pipeline), research, chore, ...
    #[arg(long, default_value = "feature")]
    pub kind: String,
    /// Submitting the same key again returns the first task's id instead of a new task.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Enqueues the task and prints its id.
pub async fn run(config: Config, args: &SubmitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let spec = spec(args)?;
    let app = App::open(config, false).await?;
    let id = app
        .orchestrator
        .submit(spec, args.idempotency_key.clone())
        .await?;
    writeln!(out, "{id}")?;
    Ok(())
}

/// The task described by the arguments.
pub fn spec(args: &SubmitArgs) -> anyhow::Result<TaskSpec> {
    let text = args.text.trim();
    anyhow::ensure!(!text.is_empty(), "the task text is empty");
    let title: String = text
        .lines()
        .next()
        .unwrap_or(text)
        .chars()
        .take(120)
        .collect();
    let mut spec = TaskSpec::new(title, text);
    spec.priority = match args.priority.as_str() {
        "high" => Priority::High,
        "low" => Priority::Low,
        _ => Priority::Medium,
    };
    spec.kind = serde_json::from_value::<TaskKind>(serde_json::Value::String(args.kind.clone()))
        .with_context(|| {
            format!(
                "unknown --kind {:?} (feature, bugfix, refactor, proposal, research, chore, ...)",
                args.kind
            )
        })?;
    if let Some(role) = &args.role {
        let role: Role = role
            .parse()
            .with_context(|| format!("invalid --role {role:?}"))?;
        spec.assigned_roles = vec![role];
    }
    Ok(spec)
}
