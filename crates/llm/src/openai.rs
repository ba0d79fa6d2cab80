//! OpenAI Chat Completions, also spoken by OpenAI-compatible servers (Ollama, vLLM,
//! llama.cpp server, OpenRouter).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Event;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::http::{JsonAnswer, SseDecoder, Transport, elapsed_ms, secret_header, sse_stream};
use crate::{
    ApiKey, ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, Message,
    ProbeReport, ResponseFormat, StreamEvent, ToolCall, ToolChoice, Usage,
};

/// A Chat Completions client.
#[derive(Debug)]
pub(crate) struct OpenAiClient {
    transport: Transport,
    base_url: String,
    api_key: Option<ApiKey>,
    /// api.openai.com wants `max_completion_tokens` (its reasoning models reject
    /// `max_tokens`); compatible servers mostly know only `max_tokens`.
    native: bool,
}

impl OpenAiClient {
    pub(crate) fn new(
        transport: Transport,
        base_url: &str,
        api_key: Option<ApiKey>,
        native: bool,
    ) -> Self {
        Self {
            transport,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            native,
        }
    }

    fn headers(&self) -> Result<HeaderMap, LlmError> {
        match &self.api_key {
            Some(key) => secret_header("authorization", &format!("Bearer {}", key.expose())),
            None => Ok(HeaderMap::new()),
        }
    }

    fn post(&self, body: &Value) -> Result<reqwest::RequestBuilder, LlmError> {
        Ok(self
            .transport
            .client()
            .post(format!("{}/chat/completions", self.base_url))
            .headers(self.headers()?)
            .json(body))
    }
}

fn provider_name(native: bool) -> &'static str {
    if native {
        "openai"
    } else {
        "openai_compatible"
    }
}

/// OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 except its chat variant) answer
/// HTTP 400 to any temperature but the default; a configured default temperature must
/// not break them, so it is left out for them.
fn rejects_temperature(model: &str) -> bool {
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|family| model == *family || model.starts_with(&format!("{family}-")));
    reasoning && !model.contains("chat")
}

/// The Chat Completions body for `request`.
fn request_body(request: &ChatRequest, stream: bool, native: bool) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request.system.as_ref().filter(|s| !s.is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        messages.push(match message {
            Message::User { content } => json!({"role": "user", "content": content}),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut turn = Map::new();
                turn.insert("role".into(), "assistant".into());
                turn.insert(
                    "content".into(),
                    if content.is_empty() && !tool_calls.is_empty() {
                        Value::Null
                    } else {
                        content.as_str().into()
                    },
                );
                if !tool_calls.is_empty() {
                    let calls = tool_calls
                        .iter()
                        .map(|call| {
                            json!({
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": call.arguments},
                            })
                        })
                        .collect::<Vec<_>>();
                    turn.insert("tool_calls".into(), calls.into());
                }
                Value::Object(turn)
            }
            Message::Tool {
                tool_call_id,
                content,
                ..
            } => json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}),
        });
    }
    let mut body = Map::new();
    body.insert("model".into(), request.model().into());
    body.insert("messages".into(), messages.into());
    if let Some(temperature) = request.options.temperature
        && !(native && rejects_temperature(request.model()))
    {
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(max_tokens) = request.options.max_tokens {
        let key = if native {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(key.into(), max_tokens.into());
    }
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                })
            })
            .collect::<Vec<_>>();
        body.insert("tools".into(), tools.into());
        let choice = match &request.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), choice);
    }
    match &request.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            body.insert(
                "response_format".into(),
                json!({
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": strict},
                }),
            );
        }
    }
    if stream {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

fn usage_from(value: Option<&Value>) -> Usage {
    let Some(usage) = value else {
        return Usage::default();
    };
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: count(usage.get("prompt_tokens")),
        output_tokens: count(usage.get("completion_tokens")),
        cached_input_tokens: count(usage.pointer("/prompt_tokens_details/cached_tokens")),
        cache_write_tokens: 0,
    }
}

fn finish_reason(value: Option<&Value>) -> FinishReason {
    value
        .and_then(Value::as_str)
        .map_or(FinishReason::Other("unknown".into()), |reason| {
            FinishReason::from(reason.to_owned())
        })
}

/// Parses a complete (non-streamed) answer.
fn parse_response(
    provider: &'static str,
    body: &Value,
    request_id: Option<String>,
) -> Result<ChatResponse, LlmError> {
    let malformed = |message: String| LlmError::MalformedResponse {
        provider,
        message,
        request_id: request_id.clone(),
    };
    if let Some(message) = body
        .get("error")
        .and_then(|_| crate::http::provider_error_message(body))
    {
        return Err(malformed(format!("error in a success response: {message}")));
    }
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first())
        .ok_or_else(|| {
            malformed(format!(
                "no choices in {}",
                crate::http::excerpt(body.to_string().as_bytes())
            ))
        })?;
    let message = choice
        .get("message")
        .ok_or_else(|| malformed("the choice has no message".into()))?;
    let mut text = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut reason = finish_reason(choice.get("finish_reason"));
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        text = refusal.to_owned();
        reason = FinishReason::ContentFilter;
    }
    let mut tool_calls = Vec::new();
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let field = |pointer: &str| call.pointer(pointer).and_then(Value::as_str);
        let (Some(id), Some(name)) = (field("/id"), field("/function/name")) else {
            return Err(malformed(format!("tool call without id or name: {call}")));
        };
        tool_calls.push(ToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: field("/function/arguments").unwrap_or("{}").to_owned(),
        });
    }
    Ok(ChatResponse {
        text,
        tool_calls,
        usage: usage_from(body.get("usage")),
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        finish_reason: reason,
        latency_ms: 0,
        request_id: request_id.or_else(|| {
            body.get("id")
                .and_then(Value::as_str)
                .map(ToOwned::to_owned)
        }),
        from_cache: false,
    })
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Assembles a streamed answer from `chat.completion.chunk` events.
struct OpenAiStreamDecoder {
    provider: &'static str,
    text: String,
    refusal: String,
    calls: BTreeMap<usize, PartialCall>,
    usage: Usage,
    model: String,
    id: Option<String>,
    finish_reason: Option<FinishReason>,
    done: bool,
}

impl OpenAiStreamDecoder {
    fn new(provider: &'static str) -> Self {
        Self {
            provider,
            text: String::new(),
            refusal: String::new(),
            calls: BTreeMap::new(),
            usage: Usage::default(),
            model: String::new(),
            id: None,
            finish_reason: None,
            done: false,
        }
    }
}

impl SseDecoder for OpenAiStreamDecoder {
    fn on_event(
        &mut self,
        event: &Event,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|error| LlmError::Stream {
            provider: self.provider,
            message: format!(
                "unparsable event ({error}): {}",
                crate::http::excerpt(data.as_bytes())
            ),
            request_id: None,
        })?;
        if chunk.get("error").is_some() {
            return Err(LlmError::Stream {
                provider: self.provider,
                message: crate::http::provider_error_message(&chunk)
                    .unwrap_or_else(|| chunk.to_string()),
                request_id: None,
            });
        }
        if let Some(model) = chunk.get("model").and_then(Value::as_str) {
            model.clone_into(&mut self.model);
        }
        if self.id.is_none() {
            self.id = chunk
                .get("id")
                .and_then(Value::as_str)
                .map(ToOwned::to_owned);
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| !usage.is_null()) {
            self.usage = usage_from(Some(usage));
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.map(Vec::as_slice).unwrap_or_default() {
            if let Some(reason) = choice.get("finish_reason").filter(|r| !r.is_null()) {
                self.finish_reason = Some(finish_reason(Some(reason)));
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                self.text.push_str(text);
                out.push_back(StreamEvent::TextDelta(text.to_owned()));
            }
            if let Some(refusal) = delta.get("refusal").and_then(Value::as_str) {
                self.refusal.push_str(refusal);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(self.calls.len());
                let field = |pointer: &str| {
                    call.pointer(pointer)
                        .and_then(Value::as_str)
                        .map(ToOwned::to_owned)
                };
                let id = field("/id");
                let name = field("/function/name");
                let arguments = field("/function/arguments").unwrap_or_default();
                let partial = self.calls.entry(index).or_default();
                if let Some(id) = &id {
                    partial.id.clone_from(id);
                }
                if let Some(name) = &name {
                    partial.name.push_str(name);
                }
                partial.arguments.push_str(&arguments);
                out.push_back(StreamEvent::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments,
                });
            }
        }
        Ok(false)
    }

    fn finish(&mut self) -> Result<ChatResponse, LlmError> {
        let Some(mut reason) = self.finish_reason.clone() else {
            return Err(LlmError::Stream {
                provider: self.provider,
                message: format!(
                    "the stream ended before a finish_reason (after {} characters of text)",
                    self.text.len()
                ),
                request_id: None,
            });
        };
        let mut text = std::mem::take(&mut self.text);
        if !self.refusal.is_empty() {
            text = std::mem::take(&mut self.refusal);
            reason = FinishReason::ContentFilter;
        }
        let tool_calls = std::mem::take(&mut self.calls)
            .into_values()
            .map(|call| ToolCall {
                id: call.id,
                name: call.name,
                arguments: if call.arguments.is_empty() {
                    "{}".into()
                } else {
                    call.arguments
                },
            })
            .collect();
        Ok(ChatResponse {
            text,
            tool_calls,
            usage: self.usage,
            model: std::mem::take(&mut self.model),
            finish_reason: reason,
            latency_ms: 0,
            request_id: self.id.take(),
            from_cache: false,
        })
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let provider = provider_name(self.native);
        let body = request_body(&request, false, self.native);
        let JsonAnswer {
            value,
            request_id,
            started,
        } = self
            .transport
            .json(self.post(&body)?, request.options.timeout)
            .await?;
        let mut response = parse_response(provider, &value, request_id)?;
        response.latency_ms = elapsed_ms(started);
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let provider = provider_name(self.native);
        let body = request_body(&request, true, self.native);
        let opened = self
            .transport
            .open(self.post(&body)?, request.options.timeout)
            .await?;
        if is_json(opened.response.headers()) {
            // Some compatible servers ignore `stream: true` and answer in one piece.
            let JsonAnswer {
                value,
                request_id,
                started,
            } = self.transport.read_json(opened).await?;
            let mut response = parse_response(provider, &value, request_id)?;
            response.latency_ms = elapsed_ms(started);
            return Ok(response.into_stream());
        }
        Ok(sse_stream(
            provider,
            opened,
            Box::new(OpenAiStreamDecoder::new(provider)),
        ))
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        let provider = provider_name(self.native);
        let url = format!("{}/models", self.base_url);
        let request = self.transport.client().get(&url).headers(self.headers()?);
        let answer = self
            .transport
            .json(request, Some(Duration::from_secs(30)))
            .await?;
        let models = answer
            .value
            .get("data")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        Ok(ProbeReport {
            provider: provider.into(),
            endpoint: url,
            detail: format!(
                "reachable, credentials accepted, {models} models listed ({} ms)",
                elapsed_ms(answer.started)
            ),
        })
    }
}

/// True when the response is a plain JSON body rather than an event stream.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
