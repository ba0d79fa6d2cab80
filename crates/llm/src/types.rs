//! The provider-neutral request and response model shared by every layer.

use std::time::Duration;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::LlmError;

/// One message of a conversation. The system prompt is not a message: it lives in
/// [`ChatRequest::system`] because providers treat it differently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Text written by the user (or by the orchestrator on an agent's behalf).
    User {
        /// The text.
        content: String,
    },
    /// An earlier model turn: text, tool calls, or both. Send it back unchanged so the
    /// provider sees the tool calls that the following [`Message::Tool`] results answer.
    Assistant {
        /// The text of the turn; empty when the turn only called tools.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        content: String,
        /// The tool calls the model made in this turn.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of running one tool call.
    Tool {
        /// The [`ToolCall::id`] this result answers.
        tool_call_id: String,
        /// The tool's output (or error text), as the model should read it.
        content: String,
        /// True when the tool failed; Anthropic shows this to the model as `is_error`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    /// A successful tool result.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::Tool {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
            is_error: false,
        }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDefinition {
    /// Name the model uses to call the tool (`^[a-zA-Z0-9_-]{1,64}$` for both providers).
    pub name: String,
    /// What the tool does and when to use it; the model reads this.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A call of a tool requested by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// Provider-assigned id; echo it in [`Message::Tool::tool_call_id`].
    pub id: String,
    /// Name of the tool.
    pub name: String,
    /// The arguments as the model wrote them: a JSON text that is usually, but not
    /// always, a valid object. Kept raw so a malformed call can be reported back to the model.
    pub arguments: String,
}

impl ToolCall {
    /// Parses [`ToolCall::arguments`] into `T`.
    ///
    /// # Errors
    /// [`LlmError::InvalidJson`] carrying the raw arguments when they do not parse as `T`.
    pub fn parse_arguments<T: serde::de::DeserializeOwned>(&self) -> Result<T, LlmError> {
        serde_json::from_str(&self.arguments).map_err(|error| LlmError::InvalidJson {
            raw: self.arguments.clone(),
            message: format!(
                "arguments of tool call {} ({}): {error}",
                self.id, self.name
            ),
        })
    }
}

/// How the model may use the offered tools.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the default).
    #[default]
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call this tool.
    Tool(String),
}

/// The shape the reply text must have.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    #[default]
    Text,
    /// Any JSON object (OpenAI's JSON mode; Anthropic gets an instruction in the system prompt).
    JsonObject,
    /// JSON matching `schema`. OpenAI receives it as `response_format: json_schema`,
    /// Anthropic as a forced tool whose input is the answer. The reply text is the JSON.
    JsonSchema {
        /// Name of the schema (`^[a-zA-Z0-9_-]{1,64}$`).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// OpenAI strict mode (requires `additionalProperties: false` and all properties required).
        #[serde(default)]
        strict: bool,
    },
}

/// Labels that attribute a call to its caller, for usage totals and tracing spans.
/// They never change the answer, so they are not part of the cache key or fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLabels {
    /// The agent instance making the call (e.g. `developer-1`).
    pub agent: Option<String>,
    /// The agent's role (e.g. `developer`, `qa`, `ceo`).
    pub role: Option<String>,
    /// The task the call works on.
    pub task_id: Option<String>,
}

/// Per-call parameters. Unset values fall back to the [`crate::LlmSettings`] defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallOptions {
    /// Model name; default `llm.model`.
    pub model: Option<String>,
    /// Sampling temperature; default `llm.temperature`.
    pub temperature: Option<f32>,
    /// Maximum output tokens; default `llm.max_tokens`.
    pub max_tokens: Option<u32>,
    /// Total time allowed for one attempt; default `llm.timeout_s`.
    #[serde(skip)]
    pub timeout: Option<Duration>,
    /// Skip the cache lookup (the fresh answer still replaces the cached one). Use it for a
    /// fix attempt, which must not get the same cached wrong answer.
    #[serde(skip)]
    pub bypass_cache: bool,
    /// Attribution for usage accounting and tracing.
    #[serde(skip)]
    pub labels: CallLabels,
}

/// One chat completion request: the single thing every layer of the client handles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Tools offered to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// How the model may use `tools` (ignored when there are none).
    #[serde(default, skip_serializing_if = "is_default")]
    pub tool_choice: ToolChoice,
    /// Required shape of the reply.
    #[serde(default, skip_serializing_if = "is_default")]
    pub response_format: ResponseFormat,
    /// Per-call parameters.
    #[serde(default)]
    pub options: CallOptions,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl ChatRequest {
    /// A request with a system prompt and one user message.
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            system: Some(system.into()),
            messages: vec![Message::user(user)],
            ..Self::default()
        }
    }

    /// The model this request will use. Set after the client resolved defaults.
    pub fn model(&self) -> &str {
        self.options.model.as_deref().unwrap_or_default()
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FinishReason {
    /// Natural end of the answer (OpenAI `stop`, Anthropic `end_turn`/`stop_sequence`).
    Stop,
    /// The output hit `max_tokens`: the answer is truncated.
    Length,
    /// The model wants tool results (OpenAI `tool_calls`, Anthropic `tool_use`).
    ToolCalls,
    /// The provider filtered the output (OpenAI `content_filter`, Anthropic `refusal`).
    ContentFilter,
    /// Anything else, verbatim.
    Other(String),
}

impl From<String> for FinishReason {
    fn from(value: String) -> Self {
        match value.as_str() {
            "stop" => Self::Stop,
            "length" => Self::Length,
            "tool_calls" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            _ => Self::Other(value),
        }
    }
}

impl From<FinishReason> for String {
    fn from(value: FinishReason) -> Self {
        match value {
            FinishReason::Stop => "stop".into(),
            FinishReason::Length => "length".into(),
            FinishReason::ToolCalls => "tool_calls".into(),
            FinishReason::ContentFilter => "content_filter".into(),
            FinishReason::Other(other) => other,
        }
    }
}

/// Token counts of one response. `input_tokens` is the whole prompt, including the
/// cached part: `cached_input_tokens` and `cache_write_tokens` are subsets of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens (reasoning tokens included).
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache (billed cheaper).
    pub cached_input_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic bills them higher).
    pub cache_write_tokens: u64,
}

/// A complete answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatResponse {
    /// The reply text; empty when the model only called tools. For a
    /// [`ResponseFormat::JsonSchema`] request this is the JSON answer.
    #[serde(default)]
    pub text: String,
    /// Tool calls, in the order the model made them (several for parallel calls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Token usage.
    #[serde(default)]
    pub usage: Usage,
    /// The model that answered, as the provider names it (often with a date suffix).
    pub model: String,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// Wall time of the call that produced this value, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// The provider's request id (header `x-request-id` / `request-id`), for support tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// True when the answer came from the client's cache (no provider call, no cost).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_cache: bool,
}

/// One item of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// A piece of the reply text.
    TextDelta(String),
    /// A piece of a tool call; `index` groups the pieces of one call.
    ToolCallDelta {
        /// Position of the call in the answer.
        index: usize,
        /// The call id, in the first piece.
        id: Option<String>,
        /// The tool name, in the first piece.
        name: Option<String>,
        /// A piece of the JSON arguments.
        arguments: String,
    },
    /// The last event: the assembled answer with usage and finish reason.
    Done(ChatResponse),
}

/// A streamed answer: deltas, then exactly one [`StreamEvent::Done`] unless an error ends it.
pub type ChatStream = BoxStream<'static, Result<StreamEvent, LlmError>>;

/// What a reachability probe found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Provider name (`openai`, `anthropic`, `openai_compatible`, `replay`).
    pub provider: String,
    /// What was contacted: a URL, or the cassette path for replay.
    pub endpoint: String,
    /// A one-line human description of the result.
    pub detail: String,
}

impl ChatResponse {
    /// This complete answer as a stream: one text delta, one delta per tool call, then
    /// [`StreamEvent::Done`]. Used for cache hits, replay and non-streaming servers.
    pub fn into_stream(self) -> ChatStream {
        let mut events = Vec::with_capacity(self.tool_calls.len() + 2);
        if !self.text.is_empty() {
            events.push(Ok(StreamEvent::TextDelta(self.text.clone())));
        }
        for (index, call) in self.tool_calls.iter().enumerate() {
            events.push(Ok(StreamEvent::ToolCallDelta {
                index,
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            }));
        }
        events.push(Ok(StreamEvent::Done(self)));
        Box::pin(futures::stream::iter(events))
    }
}

/// Consumes a stream and returns its final answer.
///
/// # Errors
/// The first error of the stream, or [`LlmError::Stream`] when it ends without
/// [`StreamEvent::Done`].
pub async fn collect_stream(mut stream: ChatStream) -> Result<ChatResponse, LlmError> {
    use futures::StreamExt;
    while let Some(event) = stream.next().await {
        if let StreamEvent::Done(response) = event? {
            return Ok(response);
        }
    }
    Err(LlmError::Stream {
        provider: "client",
        message: "the stream ended without a final response".into(),
        request_id: None,
    })
}
