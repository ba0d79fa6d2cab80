//! Parsing and validating structured (JSON Schema) replies.

use serde_json::Value;

use crate::LlmError;

/// Parses `raw` as JSON and validates it against `schema`.
///
/// A reply wrapped in a Markdown code fence (some OpenAI-compatible servers add one) is
/// unwrapped first.
///
/// # Errors
/// [`LlmError::InvalidSchema`], [`LlmError::InvalidJson`] or [`LlmError::SchemaViolation`];
/// the last two carry `raw` unchanged.
pub fn validate_reply(schema_name: &str, schema: &Value, raw: &str) -> Result<Value, LlmError> {
    let validator = jsonschema::validator_for(schema).map_err(|error| LlmError::InvalidSchema {
        name: schema_name.to_owned(),
        message: error.to_string(),
    })?;
    let value: Value =
        serde_json::from_str(strip_code_fence(raw)).map_err(|error| LlmError::InvalidJson {
            raw: raw.to_owned(),
            message: error.to_string(),
        })?;
    let violations: Vec<String> = validator
        .iter_errors(&value)
        .map(|error| {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() { "/".into() } else { path };
            format!("at {path}: {error}")
        })
        .collect();
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(LlmError::SchemaViolation {
            raw: raw.to_owned(),
            violations,
        })
    }
}

/// True when `raw` is a valid answer for `schema` (the cache stores only these).
pub(crate) fn is_valid_reply(schema: &Value, raw: &str) -> bool {
    validate_reply("", schema, raw).is_ok()
}

fn strip_code_fence(raw: &str) -> &str {
    let trimmed = raw.trim();
    let Some(body) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let body = body.strip_prefix("json").unwrap_or(body);
    body.strip_suffix("```").unwrap_or(body).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {"verdict": {"enum": ["approve", "reject"]}, "score": {"type": "integer"}},
            "required": ["verdict", "score"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_reply_parses() {
        let value = validate_reply("v", &schema(), r#"{"verdict":"approve","score":3}"#);
        assert_eq!(value.ok(), Some(json!({"verdict": "approve", "score": 3})));
        let fenced = "```json\n{\"verdict\":\"reject\",\"score\":1}\n```";
        assert!(validate_reply("v", &schema(), fenced).is_ok());
    }

    #[test]
    fn violation_carries_raw_text_and_paths() {
        let raw = r#"{"verdict":"maybe"}"#;
        match validate_reply("v", &schema(), raw) {
            Err(LlmError::SchemaViolation {
                raw: got,
                violations,
            }) => {
                assert_eq!(got, raw);
                assert_eq!(violations.len(), 2, "{violations:?}");
                assert!(
                    violations.iter().any(|v| v.contains("/verdict")),
                    "{violations:?}"
                );
            }
            other => panic!("expected a schema violation, got {other:?}"),
        }
    }

    #[test]
    fn non_json_is_invalid_json_with_raw_text() {
        let err = validate_reply("v", &schema(), "Sure! Here it is").err();
        assert!(
            matches!(err, Some(LlmError::InvalidJson { ref raw, .. }) if raw == "Sure! Here it is")
        );
        let err = validate_reply("bad", &json!({"type": 12}), "{}").err();
        assert!(matches!(err, Some(LlmError::InvalidSchema { .. })));
    }
}
