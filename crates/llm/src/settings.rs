//! The `llm` section of `agentd.yaml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::pricing::ModelPrice;

/// Which backend answers the calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions at `https://api.openai.com/v1`.
    #[default]
    Openai,
    /// Anthropic Messages at `https://api.anthropic.com`.
    Anthropic,
    /// Any server speaking OpenAI Chat Completions (Ollama, vLLM, llama.cpp server,
    /// OpenRouter); `base_url` is required.
    OpenaiCompatible,
    /// No network: answers come from the `cassette` file.
    Replay,
}

impl ProviderKind {
    /// The name used in config files, errors, cassettes and usage reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::OpenaiCompatible => "openai_compatible",
            Self::Replay => "replay",
        }
    }

    /// The endpoint used when `base_url` is not set (`None`: the setting is required).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::Openai => Some("https://api.openai.com/v1"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::OpenaiCompatible | Self::Replay => None,
        }
    }

    /// The model used when `model` is not set (`None`: the setting is required).
    pub fn default_model(self) -> Option<&'static str> {
        match self {
            Self::Openai => Some("gpt-4o-mini"),
            Self::Anthropic => Some("claude-sonnet-4-5"),
            Self::OpenaiCompatible | Self::Replay => None,
        }
    }

    /// The environment variable read when `api_key` is not set.
    pub fn api_key_env(self) -> Option<&'static str> {
        match self {
            Self::Openai => Some("OPENAI_API_KEY"),
            Self::Anthropic => Some("ANTHROPIC_API_KEY"),
            Self::OpenaiCompatible | Self::Replay => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key. `Debug` and `Display` print `***`, serializing writes `***`, and the
/// memory is zeroed on drop; only the HTTP layer reads the value.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(SecretString::from(key.into()))
    }

    /// The key itself. Call it only to build a request header or to scrub a text.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for ApiKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// The `llm` section of `agentd.yaml`: which provider answers, with which defaults, and
/// how calls are timed out, retried, cached, priced and recorded. Every key is optional;
/// unknown keys are rejected.
///
/// ```yaml
/// llm:
///   provider: anthropic            # openai | anthropic | openai_compatible | replay
///   api_key: ${ANTHROPIC_API_KEY}
///   model: claude-sonnet-4-5
///   temperature: 0.2
///   max_tokens: 4096
///   cache_ttl_s: 3600
///   cassette: runs/today.jsonl     # record this run; replay it later with provider: replay
///   prices:
///     my-finetune: { input: 3.0, output: 12.0 }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// Backend: `openai`, `anthropic`, `openai_compatible` or `replay`. Default `openai`.
    pub provider: ProviderKind,

    /// API key. Unset or empty: read `OPENAI_API_KEY` (openai) or `ANTHROPIC_API_KEY`
    /// (anthropic) from the environment; `openai_compatible` then sends no key (Ollama,
    /// llama.cpp need none). Write `${MY_KEY}` rather than the key itself. Never logged,
    /// recorded or shown: it prints as `***`.
    pub api_key: Option<ApiKey>,

    /// Default model for calls that name none (a role's `agents.<role>.model` overrides it).
    /// Default `gpt-4o-mini` for openai, `claude-sonnet-4-5` for anthropic; required for
    /// `openai_compatible`. For `replay` it must be the model the cassette was recorded with.
    pub model: Option<String>,

    /// Provider endpoint. Default `https://api.openai.com/v1` (openai) and
    /// `https://api.anthropic.com` (anthropic); required for `openai_compatible`, e.g.
    /// `http://localhost:11434/v1` for Ollama. Like the official SDKs, an OpenAI base URL
    /// includes `/v1` and `chat/completions` is appended; Anthropic's excludes it and
    /// `v1/messages` is appended.
    pub base_url: Option<String>,

    /// Default sampling temperature (0 to 2). Unset: the provider's default. Not sent to
    /// OpenAI's reasoning models (o1, o3, o4-mini, gpt-5), which accept only their default.
    pub temperature: Option<f32>,

    /// Default maximum number of output tokens per call. Default 4096.
    pub max_tokens: u32,

    /// How long a cached answer is reused, in seconds. 0 disables the cache. Default 3600.
    pub cache_ttl_s: u64,

    /// Most answers kept in the cache; the least used (by recency and frequency) are evicted
    /// first. Default 10000.
    pub cache_max_entries: u64,

    /// Cassette file (JSON lines). With provider `replay`: the recording to answer from
    /// (required). With any other provider: when set, every answer is appended to it
    /// (delete the file to start a fresh recording).
    pub cassette: Option<PathBuf>,

    /// Total time allowed for one attempt, from connecting to the last byte of the answer
    /// (streams included), in seconds. Default 600.
    pub timeout_s: f64,

    /// Time allowed until the response headers arrive, in seconds. Default 60.
    pub first_byte_timeout_s: f64,

    /// Retries after the first attempt for transient failures (connection errors,
    /// timeouts, HTTP 408, 409, 429, 500-504, 529). 0 disables retries. Default 4.
    pub max_retries: u32,

    /// Upper bound of the total time slept between retries of one call, in seconds. A
    /// provider asking to wait longer than what remains ends the call at once. Default 120.
    pub max_retry_wait_s: f64,

    /// Most provider requests in flight at once, across all agents. Default 16.
    pub max_concurrency: usize,

    /// Prices per model in USD per million tokens, added to or replacing the built-in
    /// table, e.g. `{ "my-model": { input: 0.5, output: 1.5 } }`; optional
    /// `cached_input` and `cache_write` price prompt-cache reads and writes (default: the
    /// `input` price). A model's dated
    /// variants (`gpt-4o-2024-08-06`) use the undated entry. Calls to a model with no price
    /// are reported as unpriced, never as free.
    pub prices: BTreeMap<String, ModelPrice>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Openai,
            api_key: None,
            model: None,
            base_url: None,
            temperature: None,
            max_tokens: 4096,
            cache_ttl_s: 3600,
            cache_max_entries: 10_000,
            cassette: None,
            timeout_s: 600.0,
            first_byte_timeout_s: 60.0,
            max_retries: 4,
            max_retry_wait_s: 120.0,
            max_concurrency: 16,
            prices: BTreeMap::new(),
        }
    }
}

/// Converts a seconds setting to a `Duration`, naming the key when it is not usable.
pub(crate) fn seconds(key: &'static str, value: f64) -> Result<Duration, crate::LlmError> {
    Duration::try_from_secs_f64(value).map_err(|_| crate::LlmError::Config {
        key,
        message: format!("{value} is not a number of seconds >= 0"),
    })
}
