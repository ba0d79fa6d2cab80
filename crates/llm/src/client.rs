//! The `LlmClient` trait and its convenience methods.

use async_trait::async_trait;
use serde_json::Value;

use crate::structured::validate_reply;
use crate::{
    CallOptions, ChatRequest, ChatResponse, ChatStream, LlmError, Message, ProbeReport,
    ResponseFormat, ToolDefinition,
};

/// An LLM backend, or a layer wrapping one (cache, retry, recorder, budget guard, ...).
///
/// Implementors provide the two core methods; callers usually use the [`LlmClientExt`]
/// conveniences, which every `LlmClient` (also `dyn LlmClient`) gets for free. A wrapper
/// therefore intercepts everything by wrapping `chat` and `chat_stream`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LlmClient: Send + Sync {
    /// Sends one request and returns the complete answer.
    ///
    /// # Errors
    /// Provider, network, timeout, replay and structured-output errors; see [`LlmError`].
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;

    /// Sends one request and streams the answer: deltas, then one
    /// [`crate::StreamEvent::Done`] with the assembled answer and usage.
    ///
    /// # Errors
    /// Errors before the first event are returned here (and retried by the retry layer);
    /// errors after it (a provider `error` event, a cut-off stream) end the stream.
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError>;

    /// Checks that the backend is reachable and the credentials are accepted, without
    /// generating tokens (lists the provider's models; replay checks its cassette).
    ///
    /// # Errors
    /// The provider's error, e.g. HTTP 401 for a bad key.
    async fn probe(&self) -> Result<ProbeReport, LlmError>;
}

/// A validated structured answer.
#[derive(Clone, Debug, PartialEq)]
pub struct StructuredResponse {
    /// The parsed reply, valid against the requested schema.
    pub value: Value,
    /// The full response (text, usage, model, finish reason, ...).
    pub response: ChatResponse,
}

/// Conveniences over [`LlmClient::chat`] and [`LlmClient::chat_stream`].
#[async_trait]
pub trait LlmClientExt: LlmClient {
    /// Plain generation: a system prompt and a conversation, text back.
    ///
    /// # Errors
    /// As [`LlmClient::chat`].
    async fn generate(
        &self,
        system: &str,
        messages: Vec<Message>,
        options: CallOptions,
    ) -> Result<ChatResponse, LlmError> {
        self.chat(ChatRequest {
            system: Some(system.to_owned()),
            messages,
            options,
            ..ChatRequest::default()
        })
        .await
    }

    /// Structured generation: the reply must be JSON valid against `schema`.
    ///
    /// # Errors
    /// [`LlmError::InvalidJson`] or [`LlmError::SchemaViolation`] carrying the raw reply
    /// (retry with `options.bypass_cache = true` and the error shown to the model);
    /// [`LlmError::InvalidSchema`] when `schema` itself is invalid; otherwise as
    /// [`LlmClient::chat`].
    async fn generate_structured(
        &self,
        system: &str,
        messages: Vec<Message>,
        schema_name: &str,
        schema: Value,
        options: CallOptions,
    ) -> Result<StructuredResponse, LlmError> {
        let response = self
            .chat(ChatRequest {
                system: Some(system.to_owned()),
                messages,
                response_format: ResponseFormat::JsonSchema {
                    name: schema_name.to_owned(),
                    schema: schema.clone(),
                    strict: false,
                },
                options,
                ..ChatRequest::default()
            })
            .await?;
        let value = validate_reply(schema_name, &schema, &response.text)?;
        Ok(StructuredResponse { value, response })
    }

    /// Chat with tools: the answer's `tool_calls` (several when the model calls tools in
    /// parallel) are to be run and answered with [`Message::tool_result`] messages appended
    /// after the assistant turn ([`ChatResponse::to_message`]).
    ///
    /// # Errors
    /// As [`LlmClient::chat`].
    async fn chat_with_tools(
        &self,
        system: &str,
        messages: Vec<Message>,
        tools: Vec<ToolDefinition>,
        options: CallOptions,
    ) -> Result<ChatResponse, LlmError> {
        self.chat(ChatRequest {
            system: Some(system.to_owned()),
            messages,
            tools,
            options,
            ..ChatRequest::default()
        })
        .await
    }

    /// Streams a plain generation.
    ///
    /// # Errors
    /// As [`LlmClient::chat_stream`].
    async fn stream(
        &self,
        system: &str,
        messages: Vec<Message>,
        options: CallOptions,
    ) -> Result<ChatStream, LlmError> {
        self.chat_stream(ChatRequest {
            system: Some(system.to_owned()),
            messages,
            options,
            ..ChatRequest::default()
        })
        .await
    }
}

impl<T: LlmClient + ?Sized> LlmClientExt for T {}

impl ChatResponse {
    /// This answer as the assistant turn to append to the conversation (text and tool calls).
    pub fn to_message(&self) -> Message {
        Message::Assistant {
            content: self.text.clone(),
            tool_calls: self.tool_calls.clone(),
        }
    }
}
