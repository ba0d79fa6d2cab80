//! The retry layer: exponential backoff with jitter, honouring the provider's
//! requested delay, bounded in attempts and in total wait.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};

use crate::{ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, ProbeReport};

/// When and how long to retry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: u32,
    /// Upper bound of the total sleep of one call.
    pub(crate) max_total_wait: Duration,
    /// First backoff delay (doubled each retry, with jitter).
    pub(crate) min_delay: Duration,
    /// Largest backoff delay when the provider gives no delay.
    pub(crate) max_delay: Duration,
}

impl RetryPolicy {
    pub(crate) fn new(max_retries: u32, max_total_wait: Duration) -> Self {
        Self {
            max_retries,
            max_total_wait,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the budget runs out.
    pub(crate) async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let attempts = AtomicU32::new(0);
        let waited = std::sync::Mutex::new(Duration::ZERO);
        let max_times = usize::try_from(self.max_retries).unwrap_or(usize::MAX);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(max_times)
            .with_jitter();
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            attempt()
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(LlmError::is_retryable)
        .adjust(|error, backoff_delay| {
            // `None` from the backoff means the attempts are used up.
            let backoff_delay = backoff_delay?;
            let delay = error.retry_after().unwrap_or(backoff_delay);
            let mut waited = waited
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let total = waited
                .checked_add(delay)
                .filter(|t| *t <= self.max_total_wait)?;
            *waited = total;
            Some(delay)
        })
        .notify(|error, delay| {
            tracing::warn!(%error, delay_ms = delay.as_millis(), "llm call failed, retrying");
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Err(error) if error.is_retryable() => {
                let waited = *waited
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Err(LlmError::RetriesExhausted {
                    attempts,
                    waited,
                    last: Box::new(error),
                })
            }
            other => other,
        }
    }
}

/// Retries transient failures of the layer below. For streams only opening the stream
/// is retried: once deltas were delivered, a retry would duplicate them.
pub(crate) struct RetryingClient {
    inner: Arc<dyn LlmClient>,
    policy: RetryPolicy,
}

impl RetryingClient {
    pub(crate) fn new(inner: Arc<dyn LlmClient>, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }
}

#[async_trait]
impl LlmClient for RetryingClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.policy.run(|| self.inner.chat(request.clone())).await
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        self.policy
            .run(|| self.inner.chat_stream(request.clone()))
            .await
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await
    }
}
