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

fn inputs_json(request: &ChatRequest) -> Vec<u8> {
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
    // Serializing plain data to a Vec cannot fail; an empty digest input would only
    // make every request collide, so fall back to the Debug form.
    serde_json::to_vec(&inputs).unwrap_or_else(|_| format!("{request:?}").into_bytes())
}

fn digest(prefix: &str, request: &ChatRequest) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prefix.as_bytes());
    hasher.update([0]);
    hasher.update(inputs_json(request));
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

/// The fingerprint of the request with its volatile parts masked (see [`mask_volatile`]):
/// the same for two runs of one pipeline whose task ids, commit ids, timings and
/// directories differ. Replay falls back to it when the exact fingerprint is not recorded.
pub fn normalized_fingerprint(request: &ChatRequest) -> String {
    let json = String::from_utf8_lossy(&inputs_json(request)).into_owned();
    let digest: [u8; 32] = Sha256::digest(mask_volatile(&json).as_bytes()).into();
    hex::encode(digest.get(..8).unwrap_or(&digest))
}

/// Masks what differs between two runs of the same work: UUIDs and hex ids of 7 or more
/// characters with a digit in them (commit ids, fingerprints) become `<id>`, other runs of
/// digits (counts, durations, timestamps, line numbers) `<n>`, tempfile names
/// (`.tmpAbC123`) `.tmp<r>`, and absolute paths `<path>`.
pub fn mask_volatile(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while let Some(&c) = chars.get(i) {
        let boundary = i == 0 || chars.get(i - 1).is_some_and(|&p| !word(p));
        // An absolute path: `/` at a token start followed by a path character.
        if c == '/'
            && (i == 0
                || chars
                    .get(i - 1)
                    .is_some_and(|&p| matches!(p, ' ' | '"' | '\'' | '(' | '=' | ':' | '\n' | '`')))
            && chars.get(i + 1).is_some_and(|&n| word(n) || n == '.')
        {
            let mut end = i + 1;
            while chars
                .get(end)
                .is_some_and(|&n| word(n) || matches!(n, '/' | '.' | '-' | '+' | '~'))
            {
                end += 1;
            }
            out.push_str("<path>");
            i = end;
            continue;
        }
        if c == '.' && chars.get(i + 1..i + 4) == Some(&['t', 'm', 'p']) {
            let mut end = i + 4;
            while chars.get(end).is_some_and(|&n| n.is_ascii_alphanumeric()) {
                end += 1;
            }
            out.push_str(".tmp<r>");
            i = end;
            continue;
        }
        if boundary && (c.is_ascii_hexdigit()) {
            let mut end = i;
            while chars
                .get(end)
                .is_some_and(|&n| n.is_ascii_hexdigit() || n == '-')
            {
                end += 1;
            }
            let token: String = chars
                .get(i..end)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            let token = token.trim_end_matches('-');
            let end = i + token.chars().count();
            let followed_by_word = chars.get(end).is_some_and(|&n| word(n));
            let hex_len = token.chars().filter(char::is_ascii_hexdigit).count();
            if !followed_by_word && hex_len >= 7 && token.chars().any(|d| d.is_ascii_digit()) {
                out.push_str("<id>");
                i = end;
                continue;
            }
        }
        if c.is_ascii_digit() {
            let mut end = i;
            while chars
                .get(end)
                .is_some_and(|&n| n.is_ascii_digit() || n == '.')
            {
                end += 1;
            }
            out.push_str("<n>");
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ids_numbers_temp_names_and_absolute_paths() {
        let text = "task 01a212d8-b3da-73da-b327-40156c16a274 at commit 3f6b7067de91540b in /tmp/.tmpAbC123/repo/src/lib.rs: 2 passed in 0.31s";
        assert_eq!(
            mask_volatile(text),
            "task <id> at commit <id> in <path>: <n> passed in <n>s"
        );
    }

    #[test]
    fn keeps_words_relative_paths_and_short_hex() {
        let text = "add a fn deadbeef() in src/lib.rs; cafe babe; face";
        assert_eq!(mask_volatile(text), text);
        assert_eq!(
            mask_volatile("edition 2021, 4 files"),
            "edition <n>, <n> files"
        );
    }

    #[test]
    fn normalized_fingerprints_ignore_volatile_parts_only() {
        let a = ChatRequest::new(
            "sys",
            "review 01a212d8-b3da-73da-b327-40156c16a274 (3 tests, 0.12s)",
        );
        let b = ChatRequest::new(
            "sys",
            "review 01a212d8-ffff-7000-8000-000000000001 (4 tests, 9.99s)",
        );
        let c = ChatRequest::new(
            "sys",
            "merge 01a212d8-b3da-73da-b327-40156c16a274 (3 tests, 0.12s)",
        );
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(normalized_fingerprint(&a), normalized_fingerprint(&b));
        assert_ne!(normalized_fingerprint(&a), normalized_fingerprint(&c));
    }
}
