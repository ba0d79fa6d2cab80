//! The `llm` settings contract and the secrecy of the API key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use agentd_llm::{
    ApiKey, CallOptions, LlmClientExt, LlmSettings, Message, ProviderKind, build_client,
};
use common::{Reply, SECRET, Server, openai_text, settings};
use serde_json::json;

#[test]
fn every_documented_key_deserializes() {
    let config: LlmSettings = serde_json::from_value(json!({
        "provider": "openai_compatible",
        "api_key": "sk-abc",
        "model": "llama3.2",
        "base_url": "http://localhost:11434/v1",
        "temperature": 0.2,
        "max_tokens": 1000,
        "cache_ttl_s": 60,
        "cache_max_entries": 5,
        "cassette": "runs/a.jsonl",
        "timeout_s": 30,
        "first_byte_timeout_s": 5.5,
        "max_retries": 2,
        "max_retry_wait_s": 10,
        "max_concurrency": 4,
        "prices": {"llama3.2": {"input": 0.0, "output": 0.0}}
    }))
    .unwrap();
    assert_eq!(config.provider, ProviderKind::OpenaiCompatible);
    assert_eq!(config.api_key.as_ref().map(ApiKey::expose), Some("sk-abc"));
    assert_eq!(config.first_byte_timeout_s, 5.5);

    let defaults: LlmSettings = serde_json::from_value(json!({})).unwrap();
    assert_eq!(defaults.provider, ProviderKind::Openai);
    assert_eq!(defaults.cache_ttl_s, 3600);
    assert_eq!(defaults.max_tokens, 4096);
    for provider in ["openai", "anthropic", "openai_compatible", "replay"] {
        let parsed: LlmSettings = serde_json::from_value(json!({"provider": provider})).unwrap();
        assert_eq!(parsed.provider.as_str(), provider);
    }
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let error = serde_json::from_value::<LlmSettings>(json!({"modle": "gpt-4o"})).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `modle`"),
        "{error}"
    );
    let error = serde_json::from_value::<LlmSettings>(json!({"provider": "gemini"})).unwrap_err();
    assert!(
        error.to_string().contains("unknown variant `gemini`"),
        "{error}"
    );
    let error = serde_json::from_value::<LlmSettings>(
        json!({"prices": {"m": {"input": 1, "output": 2, "typo": 3}}}),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("unknown field `typo`"),
        "{error}"
    );
}

#[test]
fn the_key_prints_and_serializes_as_stars() {
    let config = LlmSettings {
        api_key: Some(ApiKey::new(SECRET)),
        ..LlmSettings::default()
    };
    assert!(!format!("{config:?}").contains(SECRET));
    assert_eq!(format!("{}", ApiKey::new(SECRET)), "***");
    let serialized = serde_json::to_string(&config).unwrap();
    assert!(!serialized.contains(SECRET));
    assert!(serialized.contains(r#""api_key":"***""#), "{serialized}");
}

#[test]
fn unusable_settings_name_the_setting() {
    let cases = [
        (
            LlmSettings {
                provider: ProviderKind::OpenaiCompatible,
                model: Some("m".into()),
                ..LlmSettings::default()
            },
            "llm.base_url",
        ),
        (
            LlmSettings {
                base_url: Some("ftp://x".into()),
                ..LlmSettings::default()
            },
            "llm.base_url",
        ),
        (
            LlmSettings {
                base_url: Some("not a url".into()),
                ..LlmSettings::default()
            },
            "llm.base_url",
        ),
        (
            LlmSettings {
                timeout_s: -1.0,
                ..LlmSettings::default()
            },
            "llm.timeout_s",
        ),
        (
            LlmSettings {
                first_byte_timeout_s: f64::NAN,
                ..LlmSettings::default()
            },
            "llm.first_byte_timeout_s",
        ),
        (
            LlmSettings {
                max_concurrency: 0,
                ..LlmSettings::default()
            },
            "llm.max_concurrency",
        ),
        (
            LlmSettings {
                provider: ProviderKind::OpenaiCompatible,
                base_url: Some("http://localhost:1/v1".into()),
                ..LlmSettings::default()
            },
            "llm.model",
        ),
    ];
    for (config, key) in cases {
        let error = build_client(&config).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("invalid setting {key}:")),
            "{error}"
        );
    }
}

/// Collects everything the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_key_never_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start().await;
    server.push([
        Reply::status(
            429,
            r#"{"error":{"message":"slow down","type":"requests"}}"#,
        )
        .header("retry-after-ms", "1"),
        Reply::json(openai_text("ok", "stop")),
        Reply::status(
            401,
            // Some proxies echo the whole key back.
            json!({"error": {"message": format!("Incorrect API key provided: {SECRET}"), "type": "invalid_request_error"}}).to_string(),
        ),
    ]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    client
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap();
    let error = client
        .generate("", vec![Message::user("again")], CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("Incorrect API key provided: ***"),
        "{error}"
    );
    assert!(!format!("{error:?}").contains(SECRET));
    tracing::error!(%error, ?error, "call failed");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("llm.call"),
        "the test must see the client's spans: {logs}"
    );
    assert!(logs.contains("Incorrect API key provided"));
    assert!(!logs.contains(SECRET), "the key leaked into the logs");
}
