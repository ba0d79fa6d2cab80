//! The crate's single error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in an LLM call. Messages name the provider, the HTTP
/// status, the provider's own message and its request id; they never contain the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The `llm` settings are unusable; `key` names the offending setting.
    #[error("invalid setting llm.{key}: {message}")]
    Config {
        /// The setting, without the `llm.` prefix (e.g. `base_url`).
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// The provider answered with an HTTP error status.
    #[error("{provider} returned HTTP {status}{}: {message}", request_id_suffix(.request_id))]
    Http {
        /// Provider name.
        provider: &'static str,
        /// HTTP status code.
        status: u16,
        /// The provider's error message (or the start of the body when it has none).
        message: String,
        /// The provider's request id, when it sent one.
        request_id: Option<String>,
        /// Delay the provider asked for (`retry-after`, `retry-after-ms`, "try again in 1.5s").
        retry_after: Option<Duration>,
        /// The provider's `x-should-retry` verdict, when it sent one.
        should_retry: Option<bool>,
    },

    /// The connection failed before a response arrived (refused, reset, DNS, TLS).
    #[error("{provider}: cannot reach {url}: {message}")]
    Connect {
        /// Provider name.
        provider: &'static str,
        /// The URL called.
        url: String,
        /// What failed.
        message: String,
    },

    /// No response (or no complete response) within the allowed time.
    #[error("{provider}: no {phase} within {}s", .after.as_secs_f64())]
    Timeout {
        /// Provider name.
        provider: &'static str,
        /// `first byte` (headers) or `complete response`.
        phase: &'static str,
        /// The limit that expired.
        after: Duration,
    },

    /// The provider's answer does not have the documented shape.
    #[error("{provider}: malformed response{}: {message}", request_id_suffix(.request_id))]
    MalformedResponse {
        /// Provider name.
        provider: &'static str,
        /// What was wrong, with the offending text.
        message: String,
        /// The provider's request id, when known.
        request_id: Option<String>,
    },

    /// The provider reported an error inside a stream, or the stream ended early.
    #[error("{provider}: stream failed{}: {message}", request_id_suffix(.request_id))]
    Stream {
        /// Provider name.
        provider: &'static str,
        /// The provider's error, or what was missing when the stream was cut off.
        message: String,
        /// The provider's request id, when known.
        request_id: Option<String>,
    },

    /// Retries ran out (attempts or total wait); `last` is the final attempt's error.
    #[error("gave up after {attempts} attempts and {}s of waiting: {last}", .waited.as_secs_f64())]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Total time slept between attempts.
        waited: Duration,
        /// The last error.
        last: Box<LlmError>,
    },

    /// Structured output was requested but the reply (or tool arguments) is not valid JSON.
    #[error("reply is not valid JSON ({message}); raw reply: {raw}")]
    InvalidJson {
        /// The raw text, so the caller can show it to the model with the error.
        raw: String,
        /// The parser's complaint.
        message: String,
    },

    /// The reply is JSON but violates the requested schema.
    #[error("reply violates the JSON schema: {}; raw reply: {raw}", .violations.join("; "))]
    SchemaViolation {
        /// The raw text, so the caller can show it to the model with the violations.
        raw: String,
        /// One line per violation: instance path and what is wrong.
        violations: Vec<String>,
    },

    /// The JSON Schema given by the caller is itself invalid.
    #[error("invalid JSON schema {name}: {message}")]
    InvalidSchema {
        /// The schema's name.
        name: String,
        /// The compiler's complaint.
        message: String,
    },

    /// The replay cassette has no answer for this request.
    #[error("cassette {}: no recorded answer for request {fingerprint} ({summary}); {nearest}", .path.display())]
    ReplayMiss {
        /// The cassette.
        path: PathBuf,
        /// Fingerprint of the unanswered request.
        fingerprint: String,
        /// Model and start of the last message of the unanswered request.
        summary: String,
        /// The nearest recorded request and how it differs, or that the cassette is empty.
        nearest: String,
    },

    /// The cassette cannot be read, parsed or written.
    #[error("cassette {}: {message}", .path.display())]
    Cassette {
        /// The cassette.
        path: PathBuf,
        /// What failed (with the line number for a parse error).
        message: String,
    },
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

impl LlmError {
    /// True for transient failures worth another attempt: connection errors, timeouts,
    /// HTTP 408, 409, 429, 500-504 and 529 (unless the provider said `x-should-retry: false`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => true,
            Self::Http {
                status,
                should_retry,
                ..
            } => {
                should_retry.unwrap_or(true) && matches!(status, 408 | 409 | 429 | 500..=504 | 529)
            }
            _ => false,
        }
    }

    /// The delay the provider asked for before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The provider's request id, when the error carries one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Http { request_id, .. }
            | Self::MalformedResponse { request_id, .. }
            | Self::Stream { request_id, .. } => request_id.as_deref(),
            Self::RetriesExhausted { last, .. } => last.request_id(),
            _ => None,
        }
    }

    /// This error with every occurrence of `secret` replaced by `***`, for providers or
    /// proxies that echo the key in an error message or body.
    pub(crate) fn scrubbed(self, secret: &str) -> Self {
        let clean = |text: String| {
            if text.contains(secret) {
                text.replace(secret, "***")
            } else {
                text
            }
        };
        match self {
            Self::Http {
                provider,
                status,
                message,
                request_id,
                retry_after,
                should_retry,
            } => Self::Http {
                provider,
                status,
                message: clean(message),
                request_id,
                retry_after,
                should_retry,
            },
            Self::Connect {
                provider,
                url,
                message,
            } => Self::Connect {
                provider,
                url: clean(url),
                message: clean(message),
            },
            Self::MalformedResponse {
                provider,
                message,
                request_id,
            } => Self::MalformedResponse {
                provider,
                message: clean(message),
                request_id,
            },
            Self::Stream {
                provider,
                message,
                request_id,
            } => Self::Stream {
                provider,
                message: clean(message),
                request_id,
            },
            other => other,
        }
    }

    /// The raw reply text for [`LlmError::InvalidJson`] and [`LlmError::SchemaViolation`],
    /// so a caller can feed it back to the model with the error.
    pub fn raw_reply(&self) -> Option<&str> {
        match self {
            Self::InvalidJson { raw, .. } | Self::SchemaViolation { raw, .. } => Some(raw),
            _ => None,
        }
    }
}
