//! Embedding agentd's crates in your own program, with an LLM client you write yourself.
//!
//! ```text
//! cargo run -p agentd --example embed
//! ```
//!
//! `GatewayClient` is the part you would write: any type implementing
//! [`agentd_llm::LlmClient`] (one `chat`, one `chat_stream`, one `probe`). Here it stands for
//! a company gateway in front of the model: it logs and counts every call, then forwards
//! it. The model behind it is the demo's rule-based one, so the example runs offline; put
//! your HTTP call there instead. [`App::open_with_backend`] wraps the client in the
//! configured stack (defaults, cache, recording, retries, usage accounting and budgets),
//! so a custom backend gets the same guarantees as the built-in providers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agentd::app::App;
use agentd::config::Config;
use agentd::demo::{self, scripted::ScriptedLlm};
use agentd_agent_core::{TaskKind, TaskSpec};
use agentd_llm::{ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, ProbeReport};
use agentd_orchestrator::RunLimits;
use async_trait::async_trait;

/// Your client: counts and logs each call, then forwards it to the model behind it.
struct GatewayClient {
    model: Arc<dyn LlmClient>,
    calls: AtomicU64,
}

#[async_trait]
impl LlmClient for GatewayClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let role = request.options.labels.role.clone().unwrap_or_default();
        let response = self.model.chat(request).await?;
        println!(
            "  gateway call {n:>2} ({role}): {} tokens in, {} out, {} tool call(s)",
            response.usage.input_tokens,
            response.usage.output_tokens,
            response.tool_calls.len()
        );
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        Ok(self.chat(request).await?.into_stream())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.model.probe().await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A workspace to work on: the demo's seed crate with a bare `origin` to deploy to.
    let dir = demo::prepare(&demo::fresh_run_dir(), &demo::shipped_cassette())?;
    let mut config = Config::load(&dir.config)?;
    // The backend replaces the provider; nothing is replayed or recorded.
    config.llm.provider = agentd_llm::ProviderKind::OpenaiCompatible;
    config.llm.cassette = None;

    let gateway = Arc::new(GatewayClient {
        model: Arc::new(ScriptedLlm),
        calls: AtomicU64::new(0),
    });
    let app = App::open_with_backend(config, true, Some(gateway.clone())).await?;

    // Submit work directly instead of letting the CEO plan it.
    let mut task = TaskSpec::new("Support multiplication in calc::eval", demo::scripted::GOAL);
    task.kind = TaskKind::Feature;
    let id = app
        .orchestrator
        .submit(task, Some("embed-example".into()))
        .await?;
    println!("submitted task {id}; running the TDD pipeline:");
    let summary = app
        .orchestrator
        .run_once(RunLimits {
            max_tasks: None,
            goal: None,
        })
        .await?;
    let verified = demo::verify(&dir)?;
    println!(
        "\n{} tasks completed, {} merged, {} deployed; {} gateway calls, ${:.4} accounted",
        summary.completed,
        summary.merged,
        summary.deployed,
        gateway.calls.load(Ordering::Relaxed),
        app.llm.usage().total.cost_usd
    );
    println!("{}", verified.graph.trim_end());
    println!("repository: {}", dir.repo.display());
    anyhow::ensure!(
        summary.dead_lettered == 0,
        "a task failed; see {}",
        dir.log.display()
    );
    Ok(())
}
