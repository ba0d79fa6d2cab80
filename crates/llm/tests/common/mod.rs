//! A scripted HTTP server on 127.0.0.1 (random port) that speaks whatever the test
//! tells it to, and remembers every request it received.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_llm::{ApiKey, LlmSettings, ProviderKind};
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response};

/// The key every test configures; it must never show up anywhere.
pub const SECRET: &str = "test-key-SECRET-0123456789abcdef";

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
    pub hang: bool,
    /// Send the body, then keep the connection open without ever finishing it.
    pub stall_after_body: bool,
}

impl Reply {
    pub fn json(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
            hang: false,
            stall_after_body: false,
        }
    }

    pub fn sse(body: impl Into<String>) -> Self {
        Self {
            headers: vec![("content-type".into(), "text/event-stream".into())],
            ..Self::json(body)
        }
    }

    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            ..Self::json(body)
        }
    }

    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::json("")
        }
    }

    pub fn then_stall(mut self) -> Self {
        self.stall_after_body = true;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    fallback: Option<Reply>,
    seen: Vec<Seen>,
    in_flight: usize,
    max_in_flight: usize,
}

/// Decrements the in-flight count when the handler ends or is cancelled.
struct InFlight(Arc<Mutex<Script>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

pub struct Server {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let reply = {
        let mut script = script.lock().unwrap();
        script.seen.push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers: parts
                .headers
                .iter()
                .filter(|(name, _)| *name != "host")
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        value.to_str().unwrap_or("<binary>").to_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        });
        script.in_flight += 1;
        script.max_in_flight = script.max_in_flight.max(script.in_flight);
        script.queue.pop_front().or_else(|| script.fallback.clone())
    };
    let _in_flight = InFlight(Arc::clone(&script));
    let Some(reply) = reply else {
        return Response::builder()
            .status(599)
            .body(Body::from("no scripted reply"))
            .unwrap();
    };
    if reply.hang {
        std::future::pending::<()>().await;
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    if reply.stall_after_body {
        let first = futures::stream::once(async move {
            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(reply.body))
        });
        let body = futures::StreamExt::chain(first, futures::stream::pending());
        return builder.body(Body::from_stream(body)).unwrap();
    }
    builder.body(Body::from(reply.body)).unwrap()
}

impl Server {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, script, task }
    }

    /// Answers the next requests with `replies`, in order.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script.lock().unwrap().queue.extend(replies);
        self
    }

    /// Answers every request not covered by `push` with `reply`.
    pub fn always(&self, reply: Reply) -> &Self {
        self.script.lock().unwrap().fallback = Some(reply);
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    /// The most requests the server was handling at once.
    pub fn max_in_flight(&self) -> usize {
        self.script.lock().unwrap().max_in_flight
    }

    pub fn hits(&self) -> usize {
        self.script.lock().unwrap().seen.len()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops serving; the port then refuses connections.
    pub async fn shut_down(self) {
        self.task.abort();
        while !self.task.is_finished() {
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Settings for a loopback provider: fast timeouts and retries, no cache.
pub fn settings(provider: ProviderKind, base_url: String) -> LlmSettings {
    LlmSettings {
        provider,
        api_key: Some(ApiKey::new(SECRET)),
        model: Some(match provider {
            ProviderKind::Anthropic => "claude-haiku-4-5".into(),
            _ => "gpt-4o".into(),
        }),
        base_url: Some(base_url),
        temperature: Some(0.0),
        max_tokens: 256,
        cache_ttl_s: 0,
        timeout_s: 5.0,
        first_byte_timeout_s: 5.0,
        max_retries: 3,
        max_retry_wait_s: 10.0,
        ..LlmSettings::default()
    }
}

/// Headers as snapshotted: the key replaced, volatile ones dropped.
pub fn redacted_headers(seen: &Seen) -> BTreeMap<String, String> {
    seen.headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "content-length" | "accept-encoding"))
        .map(|(name, value)| (name.clone(), value.replace(SECRET, "[API KEY]")))
        .collect()
}

pub fn openai_text(text: &str, finish_reason: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-text1",
        "object": "chat.completion",
        "created": 1727346165,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                  "prompt_tokens_details": {"cached_tokens": 4}}
    })
    .to_string()
}
