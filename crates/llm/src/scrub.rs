//! The scrubbing layer: provider errors leave the provider without the API key.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use crate::{ApiKey, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, ProbeReport};

/// Removes the key from every error of the provider below, before any layer above
/// logs, retries, records or returns it. A provider or proxy that echoes the key in
/// an error message (some do, in full) would otherwise leak it.
pub(crate) struct ScrubbingClient {
    inner: Arc<dyn LlmClient>,
    secret: ApiKey,
}

impl ScrubbingClient {
    /// Wraps `inner`; `None` when there is no key worth scrubbing (absent or shorter than
    /// 8 characters, which would corrupt ordinary text rather than hide a secret).
    pub(crate) fn wrap(inner: Arc<dyn LlmClient>, secret: Option<ApiKey>) -> Arc<dyn LlmClient> {
        match secret {
            Some(secret) if secret.expose().len() >= 8 => Arc::new(Self { inner, secret }),
            _ => inner,
        }
    }

    fn scrub(&self, error: LlmError) -> LlmError {
        error.scrubbed(self.secret.expose())
    }
}

#[async_trait]
impl LlmClient for ScrubbingClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.inner.chat(request).await.map_err(|e| self.scrub(e))
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let stream = self
            .inner
            .chat_stream(request)
            .await
            .map_err(|e| self.scrub(e))?;
        let secret = self.secret.clone();
        Ok(stream
            .map(move |item| item.map_err(|e| e.scrubbed(secret.expose())))
            .boxed())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await.map_err(|e| self.scrub(e))
    }
}
