//! The HTTP transport shared by the providers: one reqwest client, the concurrency
//! limit, first-byte and total timeouts, error mapping and the SSE stream driver.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::settings::seconds;
use crate::{ChatResponse, ChatStream, LlmError, LlmSettings, StreamEvent};

/// Sends provider requests. Cheap to share: the reqwest client pools connections.
#[derive(Debug)]
pub(crate) struct Transport {
    pub(crate) provider: &'static str,
    client: reqwest::Client,
    limiter: Arc<Semaphore>,
    first_byte_timeout: Duration,
    default_timeout: Duration,
}

/// A parsed JSON answer.
pub(crate) struct JsonAnswer {
    pub(crate) value: Value,
    pub(crate) request_id: Option<String>,
    pub(crate) started: Instant,
}

/// A response whose status was a success and whose body is still to be read.
pub(crate) struct Opened {
    pub(crate) response: reqwest::Response,
    pub(crate) request_id: Option<String>,
    pub(crate) deadline: Instant,
    pub(crate) started: Instant,
    permit: OwnedSemaphorePermit,
}

impl Transport {
    pub(crate) fn new(provider: &'static str, settings: &LlmSettings) -> Result<Self, LlmError> {
        // reqwest is built without a default crypto provider; ring is the one we ship.
        // Installing fails only when a provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| LlmError::Config {
                key: "provider",
                message: format!("cannot build the HTTP client: {}", error_chain(&error)),
            })?;
        if settings.max_concurrency == 0 {
            return Err(LlmError::Config {
                key: "max_concurrency",
                message: "must be at least 1".into(),
            });
        }
        Ok(Self {
            provider,
            client,
            limiter: Arc::new(Semaphore::new(settings.max_concurrency)),
            first_byte_timeout: seconds("first_byte_timeout_s", settings.first_byte_timeout_s)?,
            default_timeout: seconds("timeout_s", settings.timeout_s)?,
        })
    }

    /// Sends a request and waits for a success status. The total timeout starts once a
    /// concurrency slot is free: waiting for a slot is not the provider's fault.
    pub(crate) async fn open(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<Opened, LlmError> {
        let permit = Arc::clone(&self.limiter)
            .acquire_owned()
            .await
            .map_err(|_| LlmError::Config {
                key: "max_concurrency",
                message: "the request limiter was closed".into(),
            })?;
        let total = timeout.unwrap_or(self.default_timeout);
        let started = Instant::now();
        // A huge per-call timeout means "no limit", not an overflow.
        let deadline = started
            .checked_add(total)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 86_400));
        let (first_byte, phase) = if self.first_byte_timeout < total {
            (self.first_byte_timeout, "first byte")
        } else {
            (total, "complete response")
        };
        let response = match tokio::time::timeout(first_byte, request.send()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: self.provider,
                    phase,
                    after: first_byte,
                });
            }
            Ok(Err(error)) => return Err(self.transport_error(&error, total)),
            Ok(Ok(response)) => response,
        };
        let request_id = header_request_id(response.headers());
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = match tokio::time::timeout_at(deadline, response.bytes()).await {
                Ok(Ok(body)) => body,
                _ => Bytes::new(),
            };
            return Err(http_error(
                self.provider,
                status.as_u16(),
                &headers,
                &body,
                request_id,
            ));
        }
        Ok(Opened {
            response,
            request_id,
            deadline,
            started,
            permit,
        })
    }

    /// Sends a request and parses the JSON body of the successful answer.
    pub(crate) async fn json(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<JsonAnswer, LlmError> {
        let opened = self.open(request, timeout).await?;
        self.read_json(opened).await
    }

    /// Reads and parses the JSON body of an opened response within its deadline.
    pub(crate) async fn read_json(&self, opened: Opened) -> Result<JsonAnswer, LlmError> {
        let total = opened.deadline - opened.started;
        let body = match tokio::time::timeout_at(opened.deadline, opened.response.bytes()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: self.provider,
                    phase: "complete response",
                    after: total,
                });
            }
            Ok(Err(error)) => return Err(self.transport_error(&error, total)),
            Ok(Ok(body)) => body,
        };
        drop(opened.permit);
        let value = serde_json::from_slice(&body).map_err(|error| LlmError::MalformedResponse {
            provider: self.provider,
            message: format!("{error}; body: {}", excerpt(&body)),
            request_id: opened.request_id.clone(),
        })?;
        Ok(JsonAnswer {
            value,
            request_id: opened.request_id,
            started: opened.started,
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn transport_error(&self, error: &reqwest::Error, total: Duration) -> LlmError {
        if error.is_timeout() {
            LlmError::Timeout {
                provider: self.provider,
                phase: "complete response",
                after: total,
            }
        } else {
            LlmError::Connect {
                provider: self.provider,
                url: error
                    .url()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "the provider".into()),
                message: error_chain(error),
            }
        }
    }
}

/// `error` and its sources, joined: reqwest's own message hides the cause (refused, reset).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The first 500 characters of a body, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(500).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// OpenAI sends `x-request-id`, Anthropic `request-id`.
fn header_request_id(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "x-request-id")
        .or_else(|| header_str(headers, "request-id"))
        .map(ToOwned::to_owned)
}

/// Builds the error for a non-success status from the provider's error body.
pub(crate) fn http_error(
    provider: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id: Option<String>,
) -> LlmError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(provider_error_message)
        .unwrap_or_else(|| {
            if body.is_empty() {
                "(empty body)".to_owned()
            } else {
                excerpt(body)
            }
        });
    let request_id = request_id.or_else(|| {
        parsed
            .as_ref()
            .and_then(|v| v.get("request_id"))
            .and_then(Value::as_str)
            .map(ToOwned::to_owned)
    });
    LlmError::Http {
        provider,
        status,
        retry_after: retry_after(headers, &message),
        should_retry: header_str(headers, "x-should-retry").and_then(|v| v.parse().ok()),
        message,
        request_id,
    }
}

/// `{"error": {"type", "message"}}` (OpenAI, Anthropic), `{"error": "text"}` (Ollama) or
/// `{"message": "text"}`.
pub(crate) fn provider_error_message(body: &Value) -> Option<String> {
    let error = body.get("error").unwrap_or(body);
    if let Some(text) = error.as_str() {
        return Some(text.to_owned());
    }
    let message = error.get("message").and_then(Value::as_str)?;
    let kinds: Vec<&str> = ["type", "code"]
        .iter()
        .filter_map(|key| error.get(*key).and_then(Value::as_str))
        .filter(|kind| !kind.is_empty())
        .collect();
    Some(if kinds.is_empty() {
        message.to_owned()
    } else {
        format!("{}: {message}", kinds.join("/"))
    })
}

/// The delay the provider asked for: `retry-after-ms`, then `retry-after` (seconds or an
/// HTTP date), then OpenAI's "Please try again in 1.574s" inside the message.
pub(crate) fn retry_after(headers: &HeaderMap, message: &str) -> Option<Duration> {
    if let Some(ms) =
        header_str(headers, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    if let Some(value) = header_str(headers, "retry-after") {
        let value = value.trim();
        if let Ok(secs) = value.parse::<f64>() {
            return Duration::try_from_secs_f64(secs).ok();
        }
        if let Ok(date) = chrono::DateTime::parse_from_rfc2822(value) {
            let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
            return Some(wait.to_std().unwrap_or(Duration::ZERO));
        }
    }
    try_again_in(message)
}

/// Parses "try again in 1.574s", "try again in 6ms", "try again in 1m30s".
fn try_again_in(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("try again in ")? + "try again in ".len();
    let rest = lower.get(start..)?;
    let spec: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    // The sentence's full stop is not part of the number.
    let spec = spec.trim_end_matches('.');
    let mut total = 0.0_f64;
    let mut number = String::new();
    let mut chars = spec.chars().peekable();
    let mut parsed_any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit_seconds = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += value * unit_seconds;
        parsed_any = true;
    }
    if !number.is_empty() || !parsed_any {
        return None;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Turns one provider's SSE events into stream events.
pub(crate) trait SseDecoder: Send + 'static {
    /// Handles one event, pushing deltas to `out`. `Ok(true)` when the answer is complete.
    fn on_event(
        &mut self,
        event: &Event,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, LlmError>;

    /// The assembled answer, called once after completion or at the end of the body; an
    /// error when the stream was cut off before the answer was complete.
    fn finish(&mut self) -> Result<ChatResponse, LlmError>;
}

struct SseState {
    events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>,
    decoder: Box<dyn SseDecoder>,
    pending: VecDeque<StreamEvent>,
    finished: bool,
    provider: &'static str,
    request_id: Option<String>,
    started: Instant,
    deadline: Instant,
    _permit: OwnedSemaphorePermit,
}

impl SseState {
    fn complete(&mut self) -> Result<(), LlmError> {
        self.finished = true;
        let mut response = self.decoder.finish()?;
        if response.request_id.is_none() {
            response.request_id = self.request_id.clone();
        }
        response.latency_ms = elapsed_ms(self.started);
        self.pending.push_back(StreamEvent::Done(response));
        Ok(())
    }

    async fn next_item(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            let outcome = match tokio::time::timeout_at(self.deadline, self.events.next()).await {
                Err(_) => Err(LlmError::Timeout {
                    provider: self.provider,
                    phase: "complete response",
                    after: self.deadline - self.started,
                }),
                Ok(None) => self.complete(),
                Ok(Some(Err(message))) => Err(LlmError::Stream {
                    provider: self.provider,
                    message: format!("reading the event stream failed: {message}"),
                    request_id: self.request_id.clone(),
                }),
                Ok(Some(Ok(event))) => match self.decoder.on_event(&event, &mut self.pending) {
                    Ok(true) => self.complete(),
                    Ok(false) => Ok(()),
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = outcome {
                self.finished = true;
                self.pending.clear();
                return Some(Err(with_request_id(error, self.request_id.as_ref())));
            }
        }
    }
}

fn with_request_id(mut error: LlmError, id: Option<&String>) -> LlmError {
    if let LlmError::Stream { request_id, .. } | LlmError::MalformedResponse { request_id, .. } =
        &mut error
        && request_id.is_none()
    {
        request_id.clone_from(&id.cloned());
    }
    error
}

/// Drives an SSE body through `decoder`. The concurrency slot is held until the stream
/// ends or is dropped; the total timeout covers the whole stream.
pub(crate) fn sse_stream(
    provider: &'static str,
    opened: Opened,
    decoder: Box<dyn SseDecoder>,
) -> ChatStream {
    // A body that ends without a blank line would lose its last event; a stream cut off
    // mid-event then surfaces as an unparsable event instead of silently vanishing.
    let body = opened
        .response
        .bytes_stream()
        .chain(futures::stream::once(async {
            Ok(Bytes::from_static(b"\n\n"))
        }));
    let events = body
        .eventsource()
        .map(|item| item.map_err(|error| error_chain(&error)));
    let state = SseState {
        events: Box::pin(events),
        decoder,
        pending: VecDeque::new(),
        finished: false,
        provider,
        request_id: opened.request_id,
        started: opened.started,
        deadline: opened.deadline,
        _permit: opened.permit,
    };
    futures::stream::unfold(state, |mut state| async move {
        state.next_item().await.map(|item| (item, state))
    })
    .boxed()
}

pub(crate) fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A header map with one secret header, marked sensitive so that reqwest/hyper never
/// print it in debug output.
pub(crate) fn secret_header(name: &'static str, value: &str) -> Result<HeaderMap, LlmError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| LlmError::Config {
        key: "api_key",
        message: "contains characters not allowed in an HTTP header".into(),
    })?;
    header.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static(name), header);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_again_in_parses_openai_formats() {
        assert_eq!(
            try_again_in("Please try again in 1.574s. Visit"),
            Some(Duration::from_millis(1574))
        );
        assert_eq!(
            try_again_in("Please try again in 6ms."),
            Some(Duration::from_millis(6))
        );
        assert_eq!(
            try_again_in("try again in 1m30s"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(try_again_in("try again later"), None);
        assert_eq!(try_again_in("no hint"), None);
    }

    #[test]
    fn retry_after_prefers_ms_header_then_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers, ""), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers, ""), Some(Duration::from_millis(250)));
        let mut dated = HeaderMap::new();
        dated.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&dated, ""), Some(Duration::ZERO));
    }

    #[test]
    fn provider_messages_are_extracted() {
        let anthropic: Value = serde_json::json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}});
        assert_eq!(
            provider_error_message(&anthropic).as_deref(),
            Some("overloaded_error: Overloaded")
        );
        let ollama: Value = serde_json::json!({"error": "model 'x' not found"});
        assert_eq!(
            provider_error_message(&ollama).as_deref(),
            Some("model 'x' not found")
        );
    }
}
