//! What a running daemon shows: Prometheus metrics and JSON status over HTTP, a live
//! status line on a terminal (a periodic JSON progress log line otherwise), and a status
//! snapshot in the store so that `agentd status` in another process can see it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agentd_llm::{LlmHandle, UsageSnapshot};
use agentd_memory::MemoryStore;
use agentd_orchestrator::{OrchestratorStatus, TaskOrchestrator};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The `agent_name` under which the daemon keeps its status snapshot in the memory store.
pub const STATUS_MEMORY_AGENT: &str = "agentd.daemon";
/// The key of the snapshot.
pub const STATUS_KEY: &str = "status";

/// What a daemon last said about itself; `agentd status` reads it from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// The daemon's process id.
    pub pid: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When this snapshot was taken.
    pub updated_at: DateTime<Utc>,
    /// Whether the daemon is still running (false once it stopped cleanly).
    pub running: bool,
    /// Queues, tasks in progress, budget and totals.
    pub orchestrator: OrchestratorStatus,
    /// LLM requests, tokens and cost since it started.
    pub llm: UsageSnapshot,
}

/// Everything the observers need.
#[derive(Clone)]
pub struct Observed {
    /// The orchestrator being watched.
    pub orchestrator: Arc<TaskOrchestrator>,
    /// The LLM client's usage ledger.
    pub llm: LlmHandle,
    /// Where snapshots are saved.
    pub memory: Arc<dyn MemoryStore>,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
}

impl Observed {
    /// A snapshot now.
    pub async fn snapshot(&self, running: bool) -> anyhow::Result<StatusSnapshot> {
        Ok(StatusSnapshot {
            pid: std::process::id(),
            started_at: self.started_at,
            updated_at: Utc::now(),
            running,
            orchestrator: self.orchestrator.status().await?,
            llm: self.llm.usage(),
        })
    }

    /// Saves a snapshot in the store.
    pub async fn save_snapshot(&self, running: bool) -> anyhow::Result<()> {
        let snapshot = self.snapshot(running).await?;
        self.memory
            .remember(
                STATUS_MEMORY_AGENT,
                STATUS_KEY,
                serde_json::to_value(&snapshot)?,
            )
            .await?;
        Ok(())
    }
}

/// Serves `GET /metrics` (Prometheus text), `GET /status` (JSON) and `GET /healthz` on
/// `addr` until `shutdown` turns true. Returns the bound address (port 0 picks one).
pub async fn serve_http(
    addr: SocketAddr,
    observed: Observed,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on --metrics-addr {addr}: {err}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(observed);
    let handle = tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %err, "the metrics server stopped");
        }
    });
    Ok((bound, handle))
}

async fn metrics(State(observed): State<Observed>) -> Response {
    match observed.orchestrator.metrics().encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn status(State(observed): State<Observed>) -> Response {
    match observed.snapshot(true).await {
        Ok(snapshot) => axum::Json(snapshot).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}")).into_response(),
    }
}

/// Shows progress until `shutdown` turns true: a live status line when stderr is a
/// terminal, otherwise a JSON `progress` log line every `log_every`. Saves a status
/// snapshot to the store at every tick.
pub async fn report_progress(
    observed: Observed,
    mut shutdown: watch::Receiver<bool>,
    log_every: Duration,
) {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let tick = if terminal {
        Duration::from_secs(1)
    } else {
        log_every
    };
    loop {
        match observed.snapshot(true).await {
            Ok(snapshot) => {
                let line = status_line(&snapshot);
                match &bar {
                    Some(bar) => bar.set_message(line),
                    None => tracing::info!(target: "agentd::progress", status = %line, "progress"),
                }
                if let Err(err) = observed
                    .memory
                    .remember(
                        STATUS_MEMORY_AGENT,
                        STATUS_KEY,
                        serde_json::to_value(&snapshot).unwrap_or_default(),
                    )
                    .await
                {
                    tracing::warn!(error = %err, "cannot save the status snapshot");
                }
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot read the orchestrator's status")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// One line: what runs, what waits, what it cost.
pub fn status_line(snapshot: &StatusSnapshot) -> String {
    let running: Vec<String> = snapshot
        .orchestrator
        .running
        .iter()
        .map(|task| format!("{}:{}", task.role, task.step))
        .collect();
    let pending: u64 = snapshot
        .orchestrator
        .queues
        .values()
        .filter_map(|statuses| statuses.get("pending"))
        .sum();
    let summary = &snapshot.orchestrator.summary;
    let llm = &snapshot.llm.total;
    format!(
        "running [{}] · pending {} · done {} failed {} · merged {} deployed {} · LLM {} calls {} tok ${:.4}{}",
        running.join(", "),
        pending,
        summary.completed,
        summary.failed,
        summary.merged,
        summary.deployed,
        llm.requests,
        llm.input_tokens + llm.output_tokens,
        llm.cost_usd,
        if snapshot.orchestrator.paused_by_budget {
            " · PAUSED (budget)"
        } else {
            ""
        },
    )
}
