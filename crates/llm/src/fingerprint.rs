//! Request fingerprints: the identity of "the same question", shared by the cache key
//! and the cassette lookup.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{ChatRequest, Message, ResponseFormat, ToolChoice, ToolDefinition};

/// Everything in a request that can change the answer. Timeouts, cache bypass and
/// labels cannot, so they are left out.
#[derive(Serialize)]
struct AnswerInputs<'a> {
    model: &'a str,
    system: Option<&'a str>,
    messages: &'a [Message],
    tools: &'a [ToolDefinition],
    tool_choice: &'a ToolChoice,
    response_format: &'a ResponseFormat,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
}

fn digest(prefix: &str, request: &ChatRequest) -> [u8; 32] {
    let inputs = AnswerInputs {
        model: request.model(),
        system: request.system.as_deref(),
        messages: &request.messages,
        tools: &request.tools,
        tool_choice: &request.tool_choice,
        response_format: &request.response_format,
        temperature: request.options.temperature,
        max_tokens: request.options.max_tokens,
    };
    let mut hasher = Sha256::new();
    hasher.update(prefix.as_bytes());
    hasher.update([0]);
    // Serializing plain data to a Vec cannot fail; an empty digest input would only
    // make every request collide, so fall back to the Debug form.
    match serde_json::to_vec(&inputs) {
        Ok(bytes) => hasher.update(bytes),
        Err(_) => hasher.update(format!("{request:?}").as_bytes()),
    }
    hasher.finalize().into()
}

/// The provider-independent fingerprint used by cassettes: 16 hex digits over the
/// model, system prompt, messages, tools, tool choice, response format, temperature and
/// max_tokens. The client fingerprints requests after filling in the defaults from the
/// settings, so fill in `options.model`, `temperature` and `max_tokens` the same way to
/// reproduce a fingerprint from an error message.
pub fn fingerprint(request: &ChatRequest) -> String {
    let digest = digest("", request);
    hex::encode(digest.get(..8).unwrap_or(&digest))
}

/// The cache key: the fingerprint inputs plus the provider.
pub(crate) fn cache_key(provider: &str, request: &ChatRequest) -> [u8; 32] {
    digest(provider, request)
}
