//! LLM clients for agentd: the single chokepoint through which every agent thinks.
//!
//! The crate turns provider-neutral [`ChatRequest`]s into calls to OpenAI Chat
//! Completions, any OpenAI-compatible server (Ollama, vLLM, llama.cpp server,
//! OpenRouter), the Anthropic Messages API, or a recorded cassette, and gives back
//! [`ChatResponse`]s with text, tool calls, usage, model, finish reason, latency and
//! request id. It survives provider faults, counts every token and cent, never leaks the
//! API key, and can record a run and replay it offline.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentd_llm::LlmError> {
//! use agentd_llm::{build_client, CallOptions, LlmClientExt, LlmSettings, Message};
//!
//! let settings: LlmSettings = LlmSettings::default(); // normally the `llm` config section
//! let llm = build_client(&settings)?;
//! let answer = llm
//!     .client()
//!     .generate("You are terse.", vec![Message::user("hello")], CallOptions::default())
//!     .await?;
//! println!("{} ({} tokens in, {} out)", answer.text, answer.usage.input_tokens, answer.usage.output_tokens);
//! println!("spent so far: ${:.4}", llm.usage().total.cost_usd);
//! # Ok(()) }
//! ```
//!
//! # Main types
//!
//! - [`LlmClient`]: the object-safe trait (`Arc<dyn LlmClient>`): `chat`, `chat_stream`,
//!   `probe`. [`LlmClientExt`] adds `generate`, `generate_structured` (parsed and
//!   validated against a JSON Schema), `chat_with_tools` and `stream` to every client.
//!   `MockLlmClient` (feature `mock`) mocks the three core methods.
//! - [`LlmSettings`]: the `llm` section of `agentd.yaml`; [`build_client`] turns it into
//!   an [`LlmHandle`] (the client plus its [`UsageLedger`]); [`build_client_with`] wraps
//!   a backend of your own in the same stack.
//! - [`ChatRequest`] / [`CallOptions`] / [`ChatResponse`] / [`StreamEvent`]: the data model.
//! - [`UsageSnapshot`]: attempts, tokens and cost, per agent, role and model, and cache
//!   hits and misses. [`PriceTable`] prices models.
//! - [`LlmError`]: one error enum; [`LlmError::is_retryable`] says which are transient.
//!
//! # The decorator stack
//!
//! [`build_client`] assembles, from the outside in:
//!
//! 1. **Defaults** fills in model, temperature and max_tokens from the settings and opens
//!    the `llm.call` tracing span (provider, model, agent, role, task_id). It is
//!    outermost so every layer below sees the values that will really be sent: the cache
//!    key and the cassette fingerprint depend on them.
//! 2. **Cache** answers a repeated question (same provider, model, system prompt,
//!    messages, tools, tool choice, response format, temperature, max_tokens) within
//!    `cache_ttl_s` (hits and misses are counted in the ledger). It sits above retries
//!    and recording: a hit costs no attempt, no retry and no cassette line. Only complete, valid answers are stored (finish reason
//!    stop or tool_calls; valid JSON for JSON formats, schema-valid for schemas), so a
//!    retry never receives a known-bad answer; `CallOptions::bypass_cache` skips the
//!    lookup for fix attempts.
//! 3. **Recorder** (when `cassette` is set and the provider is live) writes one cassette
//!    line per call that reached the provider, after retries resolved transient faults:
//!    the cassette holds final answers only, so replay never re-enacts a 429. It sits
//!    below the cache so that replay, running the same stack, sees the same misses.
//! 4. **Retry** repeats transient failures (connection errors, timeouts, HTTP 408, 409
//!    (OpenAI's lock conflict), 429, 500-504, 529, unless the provider sent
//!    `x-should-retry: false`) with exponential backoff and jitter, using the provider's delay
//!    when it gives one (`retry-after-ms`, `retry-after`, "try again in 1.574s"), up to
//!    `max_retries` retries and `max_retry_wait_s` of total sleep. 400/401/403/404 and
//!    malformed answers fail at once. Streams are retried only until they open.
//! 5. **Meter** records every attempt in the ledger, failed ones included; it sits below
//!    retry precisely so each retry is counted.
//! 6. **Scrub** removes the API key from every provider error (some providers and
//!    proxies echo it) before any layer above logs, retries, records or returns it.
//! 7. **Provider** (OpenAI, Anthropic, replay): wire format, timeouts (first byte and
//!    total, per attempt), the `max_concurrency` limit on requests in flight.
//!
//! With provider `replay` there is no retry and no recorder: the cassette is the
//! provider. A cache TTL of 0 leaves the cache out.
//!
//! # Invariants
//!
//! - The API key lives in [`ApiKey`] (prints and serializes as `***`), is sent only in
//!   a header marked sensitive, and appears in no error, log line, cassette or snapshot.
//! - Every provider attempt is in the ledger exactly once, also when it failed, was
//!   retried, or its stream was dropped by the consumer.
//! - A model without a price is reported as unpriced (`unpriced_requests`,
//!   `unpriced_models`), never as free: `cost_usd` is then a lower bound.
//! - A structured answer handed to the caller is valid against its schema; otherwise the
//!   caller gets [`LlmError::SchemaViolation`] or [`LlmError::InvalidJson`] with the raw text.
//! - A stream yields deltas then exactly one [`StreamEvent::Done`], or ends with an error
//!   (provider `error` event, cut-off body, timeout); it never ends silently.
//! - Replay is deterministic: the n-th call with a fingerprint gets the n-th recorded
//!   answer, whatever the interleaving (the last answer repeats when calls outnumber
//!   recordings). A request is matched by its exact [`fingerprint`] first, then by its
//!   [`normalized_fingerprint`] (ids, numbers, temporary names and absolute paths
//!   masked), so a rerun of a pipeline replays although its task ids, commit ids,
//!   timings and directories differ. A miss names the fingerprint and the nearest
//!   recorded request. The cache key, unlike these, is exact.

mod anthropic;
mod cache;
mod cassette;
mod client;
mod error;
mod fingerprint;
mod http;
mod metered;
mod openai;
mod pricing;
mod retry;
mod scrub;
mod settings;
mod stack;
mod structured;
mod types;
mod usage;

pub use cassette::CassetteEntry;
#[cfg(feature = "mock")]
pub use client::MockLlmClient;
pub use client::{LlmClient, LlmClientExt, StructuredResponse};
pub use error::LlmError;
pub use fingerprint::{fingerprint, mask_volatile, normalized_fingerprint};
pub use pricing::{ModelPrice, PriceTable};
pub use settings::{ApiKey, LlmSettings, ProviderKind};
pub use stack::{LlmHandle, build_client, build_client_with};
pub use structured::validate_reply;
pub use types::{
    CallLabels, CallOptions, ChatRequest, ChatResponse, ChatStream, FinishReason, Message,
    ProbeReport, ResponseFormat, StreamEvent, ToolCall, ToolChoice, ToolDefinition, Usage,
    collect_stream,
};
pub use usage::{CacheCounters, CacheOutcome, UsageLedger, UsageSnapshot, UsageTotals};
