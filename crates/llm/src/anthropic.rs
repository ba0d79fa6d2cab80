//! Anthropic Messages API.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Event;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use crate::http::{
    JsonAnswer, SseDecoder, Transport, elapsed_ms, excerpt, provider_error_message, secret_header,
    sse_stream,
};
use crate::{
    ApiKey, ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, Message,
    ProbeReport, ResponseFormat, StreamEvent, ToolCall, ToolChoice, Usage,
};

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when neither the call nor the settings set it.
const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Appended to the system prompt for [`ResponseFormat::JsonObject`], which Anthropic lacks.
const JSON_OBJECT_INSTRUCTION: &str = "Reply with a single JSON object and nothing else.";
/// Property wrapping a non-object schema: tool inputs must be objects.
const WRAPPED_VALUE: &str = "value";

/// A Messages API client.
#[derive(Debug)]
pub(crate) struct AnthropicClient {
    transport: Transport,
    base_url: String,
    api_key: Option<ApiKey>,
}

/// How a structured-output request was mapped onto a forced tool.
#[derive(Clone, Debug, PartialEq)]
struct AnswerTool {
    name: String,
    /// True when the schema was not an object and was wrapped in `{"value": ...}`.
    wrapped: bool,
}

fn answer_tool(request: &ChatRequest) -> Option<(AnswerTool, Value)> {
    let ResponseFormat::JsonSchema { name, schema, .. } = &request.response_format else {
        return None;
    };
    let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
    let input_schema = if is_object {
        schema.clone()
    } else {
        json!({"type": "object", "properties": {WRAPPED_VALUE: schema}, "required": [WRAPPED_VALUE]})
    };
    Some((
        AnswerTool {
            name: name.clone(),
            wrapped: !is_object,
        },
        input_schema,
    ))
}

impl AnthropicClient {
    pub(crate) fn new(transport: Transport, base_url: &str, api_key: Option<ApiKey>) -> Self {
        Self {
            transport,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        }
    }

    fn headers(&self) -> Result<HeaderMap, LlmError> {
        let mut headers = match &self.api_key {
            Some(key) => secret_header("x-api-key", key.expose())?,
            None => HeaderMap::new(),
        };
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        Ok(headers)
    }

    fn post(&self, body: &Value) -> Result<reqwest::RequestBuilder, LlmError> {
        Ok(self
            .transport
            .client()
            .post(format!("{}/v1/messages", self.base_url))
            .headers(self.headers()?)
            .json(body))
    }
}

/// Converts the conversation to Messages API turns. Consecutive messages of one role
/// are merged (the API wants alternation; parallel tool results go in one user turn).
fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message {
            Message::User { content } => ("user", vec![json!({"type": "text", "text": content})]),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::with_capacity(tool_calls.len() + 1);
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                for call in tool_calls {
                    // The API requires an object; a malformed call is sent back as {} and the
                    // tool result tells the model what went wrong.
                    let input = serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
            Message::Tool {
                tool_call_id,
                content,
                is_error,
            } => {
                let mut block =
                    json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": content});
                if *is_error && let Some(map) = block.as_object_mut() {
                    map.insert("is_error".into(), true.into());
                }
                ("user", vec![block])
            }
        };
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, blocks)| {
            // A lone text block is sent as a plain string, the API's simplest form.
            let content = match blocks.as_slice() {
                [block] if block.get("type") == Some(&json!("text")) => {
                    block.get("text").cloned().unwrap_or(Value::Null)
                }
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect()
}

/// The Messages API body for `request`.
fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), request.model().into());
    body.insert(
        "max_tokens".into(),
        request
            .options
            .max_tokens
            .unwrap_or(DEFAULT_MAX_TOKENS)
            .into(),
    );
    let mut system = request.system.clone().unwrap_or_default();
    if request.response_format == ResponseFormat::JsonObject {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(JSON_OBJECT_INSTRUCTION);
    }
    if !system.is_empty() {
        body.insert("system".into(), system.into());
    }
    body.insert("messages".into(), messages(request).into());
    if let Some(temperature) = request.options.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    let mut tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
        .collect();
    let mut tool_choice = (!request.tools.is_empty()).then(|| match &request.tool_choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    });
    if let Some((tool, input_schema)) = answer_tool(request) {
        tools.push(json!({
            "name": tool.name,
            "description": "Give your final answer as this tool's input.",
            "input_schema": input_schema,
        }));
        tool_choice = Some(json!({"type": "tool", "name": tool.name}));
    }
    if !tools.is_empty() {
        body.insert("tools".into(), tools.into());
    }
    if let Some(choice) = tool_choice {
        body.insert("tool_choice".into(), choice);
    }
    if stream {
        body.insert("stream".into(), true.into());
    }
    Value::Object(body)
}

fn usage_from(usage: Option<&Value>, into: &mut Usage) {
    let Some(usage) = usage else { return };
    let count = |key: &str| usage.get(key).and_then(Value::as_u64);
    // message_delta repeats only the counts that changed; keep the others.
    let uncached = count("input_tokens");
    let written = count("cache_creation_input_tokens");
    let read = count("cache_read_input_tokens");
    if uncached.is_some() || written.is_some() || read.is_some() {
        let written = written.unwrap_or(into.cache_write_tokens);
        let read = read.unwrap_or(into.cached_input_tokens);
        let plain = uncached.unwrap_or_else(|| {
            into.input_tokens.saturating_sub(
                into.cache_write_tokens
                    .saturating_add(into.cached_input_tokens),
            )
        });
        into.input_tokens = plain.saturating_add(written).saturating_add(read);
        into.cache_write_tokens = written;
        into.cached_input_tokens = read;
    }
    if let Some(output) = count("output_tokens") {
        into.output_tokens = output;
    }
}

fn stop_reason(reason: Option<&str>, answered_by_tool: bool) -> FinishReason {
    match reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("tool_use") if answered_by_tool => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
        None => FinishReason::Other("unknown".into()),
    }
}

/// The JSON answer carried by the forced answer tool's input.
fn answer_text(tool: &AnswerTool, input: &Value) -> String {
    let answer = if tool.wrapped {
        input.get(WRAPPED_VALUE).unwrap_or(&Value::Null)
    } else {
        input
    };
    answer.to_string()
}

fn parse_response(
    request: &ChatRequest,
    body: &Value,
    request_id: Option<String>,
) -> Result<ChatResponse, LlmError> {
    let answer = answer_tool(request).map(|(tool, _)| tool);
    let content = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::MalformedResponse {
            provider: PROVIDER,
            message: format!(
                "no content array in {}",
                excerpt(body.to_string().as_bytes())
            ),
            request_id: request_id.clone(),
        })?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut answered_by_tool = false;
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                match &answer {
                    Some(tool) if tool.name == name => {
                        text = answer_text(tool, &input);
                        answered_by_tool = true;
                    }
                    _ => tool_calls.push(ToolCall {
                        id: block
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        name: name.to_owned(),
                        arguments: input.to_string(),
                    }),
                }
            }
            // thinking, redacted_thinking, server tool blocks: not part of the answer.
            _ => {}
        }
    }
    let mut usage = Usage::default();
    usage_from(body.get("usage"), &mut usage);
    Ok(ChatResponse {
        text,
        tool_calls,
        usage,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        finish_reason: stop_reason(
            body.get("stop_reason").and_then(Value::as_str),
            answered_by_tool,
        ),
        latency_ms: 0,
        request_id: request_id.or_else(|| {
            body.get("id")
                .and_then(Value::as_str)
                .map(ToOwned::to_owned)
        }),
        from_cache: false,
    })
}

enum Block {
    Text,
    Tool {
        call_index: usize,
        id: String,
        name: String,
        json: String,
    },
    Answer {
        json: String,
    },
    Ignored,
}

/// Assembles a streamed answer from Messages API events.
struct AnthropicStreamDecoder {
    answer: Option<AnswerTool>,
    text: String,
    blocks: BTreeMap<u64, Block>,
    tool_calls: usize,
    usage: Usage,
    model: String,
    id: Option<String>,
    stop_reason: Option<String>,
    answered_by_tool: bool,
    stopped: bool,
}

fn stream_error(message: String) -> LlmError {
    LlmError::Stream {
        provider: PROVIDER,
        message,
        request_id: None,
    }
}

impl SseDecoder for AnthropicStreamDecoder {
    fn on_event(
        &mut self,
        event: &Event,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, LlmError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let data: Value = serde_json::from_str(&event.data).map_err(|error| {
            stream_error(format!(
                "unparsable {} event ({error}): {}",
                event.event,
                excerpt(event.data.as_bytes())
            ))
        })?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&event.event);
        match kind {
            "message_start" => {
                let message = data.get("message");
                let field = |key: &str| {
                    message
                        .and_then(|m| m.get(key))
                        .and_then(Value::as_str)
                        .map(ToOwned::to_owned)
                };
                self.model = field("model").unwrap_or_default();
                self.id = field("id");
                usage_from(message.and_then(|m| m.get("usage")), &mut self.usage);
            }
            "content_block_start" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = data.get("content_block").unwrap_or(&Value::Null);
                let block = match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let initial = block.get("text").and_then(Value::as_str).unwrap_or("");
                        if !initial.is_empty() {
                            self.text.push_str(initial);
                            out.push_back(StreamEvent::TextDelta(initial.to_owned()));
                        }
                        Block::Text
                    }
                    Some("tool_use") => {
                        let name = block
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if self.answer.as_ref().is_some_and(|tool| tool.name == name) {
                            self.answered_by_tool = true;
                            Block::Answer {
                                json: String::new(),
                            }
                        } else {
                            let id = block
                                .get("id")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned();
                            let call_index = self.tool_calls;
                            self.tool_calls += 1;
                            out.push_back(StreamEvent::ToolCallDelta {
                                index: call_index,
                                id: Some(id.clone()),
                                name: Some(name.to_owned()),
                                arguments: String::new(),
                            });
                            Block::Tool {
                                call_index,
                                id,
                                name: name.to_owned(),
                                json: String::new(),
                            }
                        }
                    }
                    _ => Block::Ignored,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = data.get("delta").unwrap_or(&Value::Null);
                let piece = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or("");
                match (
                    self.blocks.get_mut(&index),
                    delta.get("type").and_then(Value::as_str),
                ) {
                    (Some(Block::Text), Some("text_delta")) => {
                        let text = piece("text");
                        self.text.push_str(text);
                        out.push_back(StreamEvent::TextDelta(text.to_owned()));
                    }
                    (
                        Some(Block::Tool {
                            call_index, json, ..
                        }),
                        Some("input_json_delta"),
                    ) => {
                        let partial = piece("partial_json");
                        json.push_str(partial);
                        out.push_back(StreamEvent::ToolCallDelta {
                            index: *call_index,
                            id: None,
                            name: None,
                            arguments: partial.to_owned(),
                        });
                    }
                    (Some(Block::Answer { json }), Some("input_json_delta")) => {
                        let partial = piece("partial_json");
                        json.push_str(partial);
                        out.push_back(StreamEvent::TextDelta(partial.to_owned()));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                usage_from(data.get("usage"), &mut self.usage);
            }
            "message_stop" => {
                self.stopped = true;
                return Ok(true);
            }
            "error" => {
                return Err(stream_error(
                    provider_error_message(&data).unwrap_or_else(|| data.to_string()),
                ));
            }
            // ping, content_block_stop and event types added later.
            _ => {}
        }
        Ok(false)
    }

    fn finish(&mut self) -> Result<ChatResponse, LlmError> {
        if !self.stopped && self.stop_reason.is_none() {
            return Err(stream_error(format!(
                "the stream ended before message_stop (after {} characters of text)",
                self.text.len()
            )));
        }
        let mut text = std::mem::take(&mut self.text);
        let mut tool_calls = Vec::new();
        for block in std::mem::take(&mut self.blocks).into_values() {
            match block {
                Block::Tool { id, name, json, .. } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: if json.is_empty() { "{}".into() } else { json },
                }),
                Block::Answer { json } => {
                    if let Some(tool) = &self.answer {
                        let input = serde_json::from_str(&json).unwrap_or(Value::String(json));
                        text = match input {
                            Value::String(raw) => raw,
                            input => answer_text(tool, &input),
                        };
                    }
                }
                Block::Text | Block::Ignored => {}
            }
        }
        Ok(ChatResponse {
            text,
            tool_calls,
            usage: self.usage,
            model: std::mem::take(&mut self.model),
            finish_reason: stop_reason(self.stop_reason.as_deref(), self.answered_by_tool),
            latency_ms: 0,
            request_id: self.id.take(),
            from_cache: false,
        })
    }
}

#[async_trait]
impl LlmClient for AnthropicClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let body = request_body(&request, false);
        let JsonAnswer {
            value,
            request_id,
            started,
        } = self
            .transport
            .json(self.post(&body)?, request.options.timeout)
            .await?;
        let mut response = parse_response(&request, &value, request_id)?;
        response.latency_ms = elapsed_ms(started);
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let body = request_body(&request, true);
        let opened = self
            .transport
            .open(self.post(&body)?, request.options.timeout)
            .await?;
        let decoder = AnthropicStreamDecoder {
            answer: answer_tool(&request).map(|(tool, _)| tool),
            text: String::new(),
            blocks: BTreeMap::new(),
            tool_calls: 0,
            usage: Usage::default(),
            model: String::new(),
            id: None,
            stop_reason: None,
            answered_by_tool: false,
            stopped: false,
        };
        Ok(sse_stream(PROVIDER, opened, Box::new(decoder)))
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        let url = format!("{}/v1/models", self.base_url);
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
            provider: PROVIDER.into(),
            endpoint: url,
            detail: format!(
                "reachable, credentials accepted, {models} models listed ({} ms)",
                elapsed_ms(answer.started)
            ),
        })
    }
}
