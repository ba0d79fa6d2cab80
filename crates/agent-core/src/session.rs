//! One agent's LLM conversation helper for one task: labels every call, applies the role's
//! parameters, counts calls and tokens, and feeds malformed answers back to the model.

use std::sync::Arc;

use agentd_llm::{
    CallLabels, CallOptions, ChatRequest, ChatResponse, LlmClient, LlmError, Message,
    ResponseFormat, ToolDefinition, validate_reply,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::RoleLlmParams;
use crate::error::{AgentError, Result};
use crate::model::{LlmSpend, Role};

/// Makes the LLM calls of one agent for one task.
pub(crate) struct Session {
    llm: Arc<dyn LlmClient>,
    role: Role,
    labels: CallLabels,
    params: RoleLlmParams,
    max_malformed_retries: u32,
    pub(crate) spend: LlmSpend,
}

impl Session {
    pub(crate) fn new(
        llm: Arc<dyn LlmClient>,
        agent: &str,
        role: &Role,
        task_id: &str,
        params: RoleLlmParams,
        max_malformed_retries: u32,
    ) -> Self {
        Session {
            llm,
            role: role.clone(),
            labels: CallLabels {
                agent: Some(agent.to_owned()),
                role: Some(role.as_str().to_owned()),
                task_id: Some(task_id.to_owned()),
            },
            params,
            max_malformed_retries,
            spend: LlmSpend::default(),
        }
    }

    pub(crate) fn role(&self) -> &Role {
        &self.role
    }

    pub(crate) fn max_malformed_retries(&self) -> u32 {
        self.max_malformed_retries
    }

    fn options(&self, bypass_cache: bool) -> CallOptions {
        CallOptions {
            model: self.params.model.clone(),
            temperature: self.params.temperature,
            max_tokens: self.params.max_tokens,
            bypass_cache,
            labels: self.labels.clone(),
            ..CallOptions::default()
        }
    }

    /// One call; counts it.
    pub(crate) async fn chat(
        &mut self,
        system: &str,
        messages: Vec<Message>,
        tools: Vec<ToolDefinition>,
        response_format: ResponseFormat,
        bypass_cache: bool,
        during: &str,
    ) -> Result<ChatResponse> {
        let request = ChatRequest {
            system: Some(system.to_owned()),
            messages,
            tools,
            response_format,
            options: self.options(bypass_cache),
            ..ChatRequest::default()
        };
        let response = self
            .llm
            .chat(request)
            .await
            .map_err(|source| AgentError::Llm {
                role: self.role.clone(),
                during: during.to_owned(),
                source: Box::new(source),
            })?;
        self.spend.record(&response.usage);
        Ok(response)
    }

    /// A structured answer of type `T`, valid against `schema`. An answer that is not
    /// JSON, violates the schema, or does not deserialize into `T` (or fails `check`) is
    /// shown to the model with the problem, and the question asked again (bypassing the
    /// cache), at most `max_malformed_retries` times.
    pub(crate) async fn structured<T: DeserializeOwned>(
        &mut self,
        system: &str,
        user: String,
        schema_name: &str,
        schema: &Value,
        bypass_cache: bool,
        check: impl Fn(&T) -> std::result::Result<(), String>,
    ) -> Result<T> {
        let mut messages = vec![Message::user(user)];
        let mut corrections = 0;
        loop {
            let response = self
                .chat(
                    system,
                    messages.clone(),
                    Vec::new(),
                    ResponseFormat::JsonSchema {
                        name: schema_name.to_owned(),
                        schema: schema.clone(),
                        strict: false,
                    },
                    bypass_cache || corrections > 0,
                    schema_name,
                )
                .await?;
            let problem = match parse_structured::<T>(schema_name, schema, &response.text) {
                Ok(value) => match check(&value) {
                    Ok(()) => return Ok(value),
                    Err(problem) => problem,
                },
                Err(problem) => problem,
            };
            tracing::warn!(schema = schema_name, %problem, corrections, "malformed LLM answer");
            if corrections >= self.max_malformed_retries {
                return Err(AgentError::MalformedOutput {
                    role: self.role.clone(),
                    what: schema_name.to_owned(),
                    attempts: corrections + 1,
                    last_problem: problem,
                });
            }
            corrections += 1;
            messages.push(Message::assistant(response.text));
            messages.push(Message::user(malformed_feedback(&problem)));
        }
    }
}

/// The message that shows the model what was wrong with its answer.
pub(crate) fn malformed_feedback(problem: &str) -> String {
    format!(
        "Your previous answer could not be used: {problem}\n\
         Answer again with only a JSON object that matches the requested schema."
    )
}

fn parse_structured<T: DeserializeOwned>(
    schema_name: &str,
    schema: &Value,
    raw: &str,
) -> std::result::Result<T, String> {
    let value = validate_reply(schema_name, schema, raw).map_err(|error| match error {
        LlmError::InvalidJson { message, .. } => format!("it is not valid JSON ({message})"),
        LlmError::SchemaViolation { violations, .. } => {
            format!("it violates the schema: {}", violations.join("; "))
        }
        other => other.to_string(),
    })?;
    serde_json::from_value(value).map_err(|e| format!("it does not have the expected shape: {e}"))
}
