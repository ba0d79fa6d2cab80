//! `agentd ask PROMPT [--json-schema FILE] [--stream]`: one call through the configured
//! LLM client, with the same retries, cache, accounting and recording as the agents get.

use std::io::Write;
use std::path::PathBuf;

use agentd_llm::{CallLabels, CallOptions, LlmClientExt, Message, StreamEvent};
use anyhow::{Context, bail};
use futures::StreamExt;

use crate::config::Config;

const DEFAULT_SYSTEM: &str = "You are a concise, precise assistant.";

/// Arguments of `agentd ask`.
#[derive(Debug, Clone, clap::Args)]
pub struct AskArgs {
    /// The prompt; `-` reads it from standard input.
    pub prompt: String,
    /// A JSON Schema file: the answer must be JSON valid against it, and is printed as JSON.
    #[arg(long, value_name = "FILE", conflicts_with = "stream")]
    pub json_schema: Option<PathBuf>,
    /// Print the answer as it is generated.
    #[arg(long)]
    pub stream: bool,
    /// Print the whole response (text, tool calls, usage, model, finish reason) as JSON.
    #[arg(long)]
    pub json: bool,
    /// System prompt.
    #[arg(long, default_value = DEFAULT_SYSTEM)]
    pub system: String,
    /// Model, instead of `llm.model`.
    #[arg(long)]
    pub model: Option<String>,
    /// Sampling temperature, instead of `llm.temperature`.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Maximum output tokens, instead of `llm.max_tokens`.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Do not answer from the cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Runs the call and prints the answer to `out`, and a usage line to stderr.
pub async fn run(config: &Config, args: &AskArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let prompt = if args.prompt == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the prompt from stdin")?
    } else {
        args.prompt.clone()
    };
    let schema = match &args.json_schema {
        Some(path) => Some(read_schema(path)?),
        None => None,
    };
    let llm = agentd_llm::build_client(&config.llm).context("cannot set up the LLM client")?;
    let options = CallOptions {
        model: args.model.clone(),
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        bypass_cache: args.no_cache,
        labels: CallLabels {
            agent: Some("cli".into()),
            role: Some("ask".into()),
            task_id: None,
        },
        ..CallOptions::default()
    };
    let messages = vec![Message::user(prompt)];

    let response = if let Some(schema) = schema {
        let answer = llm
            .client()
            .generate_structured(&args.system, messages, "answer", schema, options)
            .await?;
        if args.json {
            let both = serde_json::json!({ "value": answer.value, "response": answer.response });
            writeln!(out, "{}", serde_json::to_string_pretty(&both)?)?;
        } else {
            writeln!(out, "{}", serde_json::to_string_pretty(&answer.value)?)?;
        }
        answer.response
    } else if args.stream {
        let mut stream = llm.client().stream(&args.system, messages, options).await?;
        let mut done = None;
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::TextDelta(text) if !args.json => {
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
                StreamEvent::Done(response) => done = Some(response),
                _ => {}
            }
        }
        let Some(response) = done else {
            bail!("the stream ended without a final answer");
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&response)?)?;
        } else {
            writeln!(out)?;
        }
        response
    } else {
        let response = llm
            .client()
            .generate(&args.system, messages, options)
            .await?;
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&response)?)?;
        } else if response.text.is_empty() && !response.tool_calls.is_empty() {
            // A model may answer with tool calls only; show them rather than nothing.
            for call in &response.tool_calls {
                writeln!(out, "tool call {}({})", call.name, call.arguments)?;
            }
        } else {
            writeln!(out, "{}", response.text)?;
        }
        response
    };

    let totals = llm.usage().total;
    let cost = if totals.unpriced_requests > 0 {
        "cost unknown (no price for this model)".to_owned()
    } else {
        format!("${:.6}", totals.cost_usd)
    };
    eprintln!(
        "[{} · {} in / {} out tokens · {} · {} ms{}]",
        response.model,
        response.usage.input_tokens,
        response.usage.output_tokens,
        cost,
        response.latency_ms,
        if response.from_cache {
            " · cached"
        } else {
            ""
        },
    );
    if response.finish_reason == agentd_llm::FinishReason::Length {
        eprintln!("warning: the answer was cut off at max_tokens");
    }
    Ok(())
}

fn read_schema(path: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read JSON Schema file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("JSON Schema file {} is not valid JSON", path.display()))
}
