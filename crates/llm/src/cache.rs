//! The response cache: identical questions within the TTL get the stored answer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::time::Instant;

use crate::fingerprint::cache_key;
use crate::structured::is_valid_reply;
use crate::usage::{CacheOutcome, UsageLedger};
use crate::{
    ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, ProbeReport,
    ResponseFormat, StreamEvent,
};

#[derive(Clone)]
struct Entry {
    /// Tokio's clock, not moka's: expiry then follows `tokio::time::pause`/`advance`,
    /// which makes the TTL testable. moka's own TTL only frees the memory.
    stored_at: Instant,
    response: Arc<ChatResponse>,
}

/// Answers repeated requests from memory. Only complete, valid answers are stored (not
/// truncated, filtered or schema-violating ones), so a retry never gets a known-bad answer.
pub(crate) struct CachingClient {
    inner: Arc<dyn LlmClient>,
    provider: &'static str,
    ttl: Duration,
    entries: moka::sync::Cache<[u8; 32], Entry>,
    ledger: Arc<UsageLedger>,
}

impl CachingClient {
    pub(crate) fn new(
        inner: Arc<dyn LlmClient>,
        provider: &'static str,
        ttl: Duration,
        max_entries: u64,
        ledger: Arc<UsageLedger>,
    ) -> Self {
        Self {
            inner,
            provider,
            ttl,
            entries: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
            ledger,
        }
    }

    fn lookup(&self, key: &[u8; 32], request: &ChatRequest) -> Option<ChatResponse> {
        if request.options.bypass_cache {
            self.ledger.record_cache(CacheOutcome::Bypassed);
            return None;
        }
        let started = Instant::now();
        let hit = self
            .entries
            .get(key)
            .filter(|entry| entry.stored_at.elapsed() < self.ttl);
        match hit {
            Some(entry) => {
                self.ledger.record_cache(CacheOutcome::Hit);
                let mut response = (*entry.response).clone();
                response.from_cache = true;
                response.latency_ms = crate::http::elapsed_ms(started);
                tracing::debug!(model = %response.model, "llm cache hit");
                Some(response)
            }
            None => {
                self.ledger.record_cache(CacheOutcome::Miss);
                None
            }
        }
    }
}

/// Whether `response` is a complete, valid answer to `request`.
fn cacheable(request: &ChatRequest, response: &ChatResponse) -> bool {
    let complete = matches!(
        response.finish_reason,
        FinishReason::Stop | FinishReason::ToolCalls
    );
    let valid = match &request.response_format {
        ResponseFormat::JsonSchema { schema, .. } => is_valid_reply(schema, &response.text),
        ResponseFormat::JsonObject => {
            serde_json::from_str::<serde_json::Value>(&response.text).is_ok()
        }
        ResponseFormat::Text => true,
    };
    complete && valid
}

fn store(
    entries: &moka::sync::Cache<[u8; 32], Entry>,
    key: [u8; 32],
    request: &ChatRequest,
    response: &ChatResponse,
) {
    if cacheable(request, response) {
        entries.insert(
            key,
            Entry {
                stored_at: Instant::now(),
                response: Arc::new(response.clone()),
            },
        );
    }
}

#[async_trait]
impl LlmClient for CachingClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let key = cache_key(self.provider, &request);
        if let Some(response) = self.lookup(&key, &request) {
            return Ok(response);
        }
        let response = self.inner.chat(request.clone()).await?;
        store(&self.entries, key, &request, &response);
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let key = cache_key(self.provider, &request);
        if let Some(response) = self.lookup(&key, &request) {
            return Ok(response.into_stream());
        }
        let stream = self.inner.chat_stream(request.clone()).await?;
        let entries = self.entries.clone();
        Ok(stream
            .map(move |item| {
                if let Ok(StreamEvent::Done(response)) = &item {
                    store(&entries, key, &request, response);
                }
                item
            })
            .boxed())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await
    }
}
