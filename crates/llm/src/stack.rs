//! Wiring: settings in, a ready client stack and its usage ledger out.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tracing::Instrument;

use crate::anthropic::AnthropicClient;
use crate::cache::CachingClient;
use crate::cassette::{RecordingClient, ReplayClient};
use crate::http::Transport;
use crate::metered::MeteredClient;
use crate::openai::OpenAiClient;
use crate::pricing::PriceTable;
use crate::retry::{RetryPolicy, RetryingClient};
use crate::scrub::ScrubbingClient;
use crate::settings::seconds;
use crate::usage::{UsageLedger, UsageSnapshot};
use crate::{
    ApiKey, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, LlmSettings, ProbeReport,
    ProviderKind, StreamEvent,
};

/// A configured client and its usage ledger. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct LlmHandle {
    client: Arc<dyn LlmClient>,
    ledger: Arc<UsageLedger>,
}

impl std::fmt::Debug for LlmHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmHandle").finish_non_exhaustive()
    }
}

impl LlmHandle {
    /// The client: hand it to agents as `Arc<dyn LlmClient>`.
    pub fn client(&self) -> Arc<dyn LlmClient> {
        Arc::clone(&self.client)
    }

    /// Totals so far: attempts, tokens, cost, unpriced models, cache hits and misses.
    pub fn usage(&self) -> UsageSnapshot {
        self.ledger.snapshot()
    }

    /// The ledger itself (shared with the client), e.g. for a budget guard that prices
    /// each answer with `ledger.prices().cost(&response.model, &response.usage)`.
    pub fn ledger(&self) -> Arc<UsageLedger> {
        Arc::clone(&self.ledger)
    }
}

/// Builds the client described by `settings`.
///
/// # Errors
/// [`LlmError::Config`] naming the setting (`llm.base_url` missing for
/// `openai_compatible`, negative timeout, ...) or [`LlmError::Cassette`] when the replay
/// cassette cannot be read.
pub fn build_client(settings: &LlmSettings) -> Result<LlmHandle, LlmError> {
    let provider = settings.provider;
    let backend: Arc<dyn LlmClient> = match provider {
        ProviderKind::Replay => {
            let path = settings.cassette.as_deref().ok_or(LlmError::Config {
                key: "cassette",
                message: "provider replay needs the cassette file to answer from".into(),
            })?;
            Arc::new(ReplayClient::load(path)?)
        }
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => Arc::new(OpenAiClient::new(
            Transport::new(provider.as_str(), settings)?,
            &base_url(settings)?,
            api_key(settings),
            provider == ProviderKind::Openai,
        )),
        ProviderKind::Anthropic => Arc::new(AnthropicClient::new(
            Transport::new(provider.as_str(), settings)?,
            &base_url(settings)?,
            api_key(settings),
        )),
    };
    build_client_with(settings, backend)
}

/// Wraps a backend of your own (any [`LlmClient`]) in the standard stack configured by
/// `settings`: defaults, cache, recorder, retries and accounting.
///
/// # Errors
/// [`LlmError::Config`] naming an unusable setting.
pub fn build_client_with(
    settings: &LlmSettings,
    backend: Arc<dyn LlmClient>,
) -> Result<LlmHandle, LlmError> {
    let provider = settings.provider;
    let ledger = Arc::new(UsageLedger::new(PriceTable::new(&settings.prices)));
    let backend = ScrubbingClient::wrap(backend, api_key(settings));
    let mut client: Arc<dyn LlmClient> = Arc::new(MeteredClient::new(backend, Arc::clone(&ledger)));
    if settings.max_retries > 0 && provider != ProviderKind::Replay {
        let policy = RetryPolicy::new(
            settings.max_retries,
            seconds("max_retry_wait_s", settings.max_retry_wait_s)?,
        );
        client = Arc::new(RetryingClient::new(client, policy));
    }
    if let Some(path) = &settings.cassette
        && provider != ProviderKind::Replay
    {
        client = Arc::new(RecordingClient::new(
            client,
            path.clone(),
            provider.as_str(),
            api_key(settings),
        ));
    }
    if settings.cache_ttl_s > 0 {
        client = Arc::new(CachingClient::new(
            client,
            provider.as_str(),
            std::time::Duration::from_secs(settings.cache_ttl_s),
            settings.cache_max_entries,
            Arc::clone(&ledger),
        ));
    }
    let model = match (&settings.model, provider.default_model()) {
        (Some(model), _) => model.clone(),
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            return Err(LlmError::Config {
                key: "model",
                message: format!("provider {provider} has no default model; set one"),
            });
        }
    };
    let client = Arc::new(DefaultsClient {
        inner: client,
        provider,
        model,
        temperature: settings.temperature,
        max_tokens: settings.max_tokens,
    });
    Ok(LlmHandle { client, ledger })
}

fn base_url(settings: &LlmSettings) -> Result<String, LlmError> {
    let url = match (&settings.base_url, settings.provider.default_base_url()) {
        (Some(url), _) => url.clone(),
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            return Err(LlmError::Config {
                key: "base_url",
                message: format!(
                    "provider {} needs the server's URL, e.g. http://localhost:11434/v1",
                    settings.provider
                ),
            });
        }
    };
    let parsed = reqwest::Url::parse(&url).map_err(|error| LlmError::Config {
        key: "base_url",
        message: format!("{url:?} is not a URL: {error}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(LlmError::Config {
            key: "base_url",
            message: format!("{url:?} must start with http:// or https://"),
        });
    }
    Ok(url)
}

/// The configured key, else the provider's environment variable; empty means none.
fn api_key(settings: &LlmSettings) -> Option<ApiKey> {
    settings
        .api_key
        .clone()
        .filter(|key| !key.expose().is_empty())
        .or_else(|| {
            let var = settings.provider.api_key_env()?;
            std::env::var(var)
                .ok()
                .filter(|key| !key.is_empty())
                .map(ApiKey::new)
        })
}

/// One line per call for the JSON logs: what it cost in tokens and time, or why it failed.
fn log_outcome(result: Result<&ChatResponse, &LlmError>) {
    match result {
        Ok(response) => tracing::info!(
            answered_by = %response.model,
            input_tokens = response.usage.input_tokens,
            output_tokens = response.usage.output_tokens,
            cached_input_tokens = response.usage.cached_input_tokens,
            finish_reason = %String::from(response.finish_reason.clone()),
            latency_ms = response.latency_ms,
            from_cache = response.from_cache,
            request_id = response.request_id.as_deref(),
            "llm call answered"
        ),
        Err(error) => tracing::warn!(%error, "llm call failed"),
    }
}

/// The outermost layer: fills in the defaults, so every layer below sees the model and
/// parameters that will really be used (the cache key and fingerprint depend on them),
/// and opens the tracing span of the call.
struct DefaultsClient {
    inner: Arc<dyn LlmClient>,
    provider: ProviderKind,
    model: String,
    temperature: Option<f32>,
    max_tokens: u32,
}

impl DefaultsClient {
    fn resolve(&self, mut request: ChatRequest) -> (ChatRequest, tracing::Span) {
        // An empty system prompt is no system prompt: same cache key, same fingerprint.
        if request.system.as_deref() == Some("") {
            request.system = None;
        }
        let options = &mut request.options;
        options.model.get_or_insert_with(|| self.model.clone());
        if options.temperature.is_none() {
            options.temperature = self.temperature;
        }
        options.max_tokens.get_or_insert(self.max_tokens);
        let labels = &options.labels;
        let span = tracing::info_span!(
            "llm.call",
            provider = self.provider.as_str(),
            model = options.model.as_deref(),
            agent = labels.agent.as_deref(),
            role = labels.role.as_deref(),
            task_id = labels.task_id.as_deref(),
        );
        (request, span)
    }
}

#[async_trait]
impl LlmClient for DefaultsClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let (request, span) = self.resolve(request);
        async {
            let result = self.inner.chat(request).await;
            log_outcome(result.as_ref());
            result
        }
        .instrument(span)
        .await
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let (request, span) = self.resolve(request);
        let opened = self
            .inner
            .chat_stream(request)
            .instrument(span.clone())
            .await;
        let stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                span.in_scope(|| log_outcome(Err(&error)));
                return Err(error);
            }
        };
        Ok(stream
            .map(move |item| {
                match &item {
                    Ok(StreamEvent::Done(response)) => span.in_scope(|| log_outcome(Ok(response))),
                    Err(error) => span.in_scope(|| log_outcome(Err(error))),
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
