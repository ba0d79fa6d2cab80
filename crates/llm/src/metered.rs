//! The accounting layer: every provider attempt, failed ones included, goes to the ledger.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use crate::usage::UsageLedger;
use crate::{
    CallLabels, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, ProbeReport,
    StreamEvent,
};

/// Counts each call it forwards as one provider attempt. Sits directly above the
/// provider, below the retry layer, so each retry is an attempt of its own.
pub(crate) struct MeteredClient {
    inner: Arc<dyn LlmClient>,
    ledger: Arc<UsageLedger>,
}

impl MeteredClient {
    pub(crate) fn new(inner: Arc<dyn LlmClient>, ledger: Arc<UsageLedger>) -> Self {
        Self { inner, ledger }
    }
}

/// Records a streamed attempt exactly once: at `Done`, at an error, or when the
/// consumer drops the stream early (an abandoned attempt still happened).
struct StreamAttempt {
    ledger: Arc<UsageLedger>,
    labels: CallLabels,
    model: String,
    recorded: bool,
}

impl StreamAttempt {
    fn record(&mut self, response: Option<&ChatResponse>) {
        if !self.recorded {
            self.recorded = true;
            let model = response.map_or(self.model.as_str(), |r| r.model.as_str());
            self.ledger
                .record_attempt(&self.labels, model, response.map(|r| &r.usage));
        }
    }
}

impl Drop for StreamAttempt {
    fn drop(&mut self) {
        self.record(None);
    }
}

#[async_trait]
impl LlmClient for MeteredClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let labels = request.options.labels.clone();
        let model = request.model().to_owned();
        let result = self.inner.chat(request).await;
        match &result {
            Ok(response) => {
                let cost =
                    self.ledger
                        .record_attempt(&labels, &response.model, Some(&response.usage));
                tracing::debug!(
                    model = %response.model,
                    input_tokens = response.usage.input_tokens,
                    output_tokens = response.usage.output_tokens,
                    cached_tokens = response.usage.cached_input_tokens,
                    cost_usd = cost,
                    latency_ms = response.latency_ms,
                    request_id = response.request_id.as_deref(),
                    "llm attempt succeeded"
                );
            }
            Err(error) => {
                self.ledger.record_attempt(&labels, &model, None);
                tracing::debug!(%error, "llm attempt failed");
            }
        }
        result
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let mut attempt = StreamAttempt {
            ledger: Arc::clone(&self.ledger),
            labels: request.options.labels.clone(),
            model: request.model().to_owned(),
            recorded: false,
        };
        let stream = match self.inner.chat_stream(request).await {
            Ok(stream) => stream,
            Err(error) => {
                attempt.record(None);
                return Err(error);
            }
        };
        Ok(stream
            .map(move |item| {
                match &item {
                    Ok(StreamEvent::Done(response)) => attempt.record(Some(response)),
                    Err(_) => attempt.record(None),
                    Ok(_) => {}
                }
                item
            })
            .boxed())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await
    }
}
