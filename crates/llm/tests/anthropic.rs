//! Anthropic Messages against a loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use agentd_llm::{
    CallOptions, ChatRequest, FinishReason, LlmClientExt, LlmError, Message, ProviderKind,
    StreamEvent, ToolCall, ToolDefinition, build_client, collect_stream,
};
use common::{Reply, SECRET, Server, fixture, redacted_headers, settings};
use futures::StreamExt;
use serde_json::json;

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".into(),
        description: "Current weather".into(),
        parameters: json!({"type": "object", "properties": {"location": {"type": "string"}, "units": {"enum": ["c", "f"]}}, "required": ["location"]}),
    }
}

fn text_message(text: &str, stop_reason: &str) -> String {
    json!({
        "id": "msg_text", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 20, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 7}
    })
    .to_string()
}

fn event(name: &str, data: serde_json::Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[tokio::test]
async fn tool_use_fixture_is_parsed_and_results_go_back_as_one_user_turn() {
    let server = Server::start().await;
    server.push([
        Reply::json(fixture("anthropic_message_tool_use.json")).header("request-id", "req_011abc"),
        Reply::json(text_message("SF is 60F, NYC is 50F.", "end_turn")),
    ]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let mut messages = vec![Message::user("Weather in SF and NYC?")];
    let answer = client
        .chat_with_tools(
            "You check weather.",
            messages.clone(),
            vec![weather_tool()],
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert!(
        answer.text.starts_with("I'll get the weather"),
        "{}",
        answer.text
    );
    assert_eq!(
        answer.tool_calls,
        vec![ToolCall {
            id: "toolu_01LRanfq6DmHn1yDTB4d1SAh".into(),
            name: "get_weather".into(),
            arguments: r#"{"location":"San Francisco, CA","units":"f"}"#.into(),
        }]
    );
    assert_eq!(
        (answer.usage.input_tokens, answer.usage.output_tokens),
        (701, 93)
    );
    assert_eq!(answer.model, "claude-haiku-4-5-20251001");
    assert_eq!(answer.request_id.as_deref(), Some("req_011abc"));

    // Parallel results: two tool messages become one user turn with two tool_result blocks.
    messages.push(Message::Assistant {
        content: answer.text.clone(),
        tool_calls: vec![
            answer.tool_calls[0].clone(),
            ToolCall {
                id: "toolu_2".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"New York, NY"}"#.into(),
            },
        ],
    });
    messages.push(Message::tool_result(
        "toolu_01LRanfq6DmHn1yDTB4d1SAh",
        "60F",
    ));
    messages.push(Message::Tool {
        tool_call_id: "toolu_2".into(),
        content: "service down".into(),
        is_error: true,
    });
    let second = client
        .chat_with_tools(
            "You check weather.",
            messages,
            vec![weather_tool()],
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(second.finish_reason, FinishReason::Stop);
    assert_eq!(
        (
            second.usage.input_tokens,
            second.usage.cached_input_tokens,
            second.usage.cache_write_tokens
        ),
        (125, 100, 5)
    );
    let sent = &server.seen()[1];
    assert_eq!(sent.path, "/v1/messages");
    insta::assert_json_snapshot!("anthropic_tool_round_trip_body", sent.body);
    insta::assert_json_snapshot!("anthropic_headers", redacted_headers(sent));
    assert_eq!(sent.headers["x-api-key"], SECRET);
}

#[tokio::test]
async fn streamed_text_fixture_with_ping() {
    let server = Server::start().await;
    server.push([Reply::sse(fixture("anthropic_stream_text.sse"))]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let mut stream = client
        .stream("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap();
    let mut deltas = Vec::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::TextDelta(delta) => deltas.push(delta),
            StreamEvent::Done(response) => done = Some(response),
            StreamEvent::ToolCallDelta { .. } => panic!("no tools here"),
        }
    }
    assert_eq!(deltas, ["Hello", " there", "!"]);
    let done = done.unwrap();
    assert_eq!(done.text, "Hello there!");
    assert_eq!(done.finish_reason, FinishReason::Stop);
    assert_eq!((done.usage.input_tokens, done.usage.output_tokens), (11, 6));
    assert_eq!(done.model, "claude-3-opus-latest");
    assert_eq!(server.seen()[0].body["stream"], true);
}

#[tokio::test]
async fn streamed_parallel_tool_use_with_input_json_delta() {
    let server = Server::start().await;
    let mut sse = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "usage": {"input_tokens": 300, "output_tokens": 1}}}),
    );
    sse += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking both."}}),
    );
    sse += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    sse += &event("ping", json!({"type": "ping"}));
    sse += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"location\": \"Pa"}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ris\"}"}}),
    );
    sse += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    );
    sse += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {}}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"location\": \"Oslo\"}"}}),
    );
    sse += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 2}),
    );
    sse += &event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 88}}),
    );
    sse += &event("message_stop", json!({"type": "message_stop"}));
    server.push([Reply::sse(sse)]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let request = ChatRequest {
        tools: vec![weather_tool()],
        ..ChatRequest::new("", "Paris and Oslo")
    };
    let done = collect_stream(client.chat_stream(request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(done.text, "Checking both.");
    assert_eq!(done.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        done.tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.arguments.as_str()))
            .collect::<Vec<_>>(),
        [
            ("toolu_a", "{\"location\": \"Paris\"}"),
            ("toolu_b", "{\"location\": \"Oslo\"}")
        ]
    );
    assert_eq!(
        (done.usage.input_tokens, done.usage.output_tokens),
        (300, 88)
    );
}

#[tokio::test]
async fn error_event_mid_stream_ends_the_stream_with_the_providers_message() {
    let server = Server::start().await;
    let full = fixture("anthropic_stream_text.sse");
    let head = &full[..full.find("event: content_block_stop").unwrap()];
    let sse = format!(
        "{head}event: error\ndata: {}\n\n",
        fixture("anthropic_error_529_overloaded.json")
    );
    server.push([Reply::sse(sse)]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let mut stream = client
        .stream("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap();
    let mut text = String::new();
    let error = loop {
        match stream
            .next()
            .await
            .expect("the stream must end with an error")
        {
            Ok(StreamEvent::TextDelta(delta)) => text.push_str(&delta),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => break error,
        }
    };
    assert_eq!(text, "Hello there!");
    assert!(matches!(error, LlmError::Stream { .. }), "{error:?}");
    assert!(
        error.to_string().contains("overloaded_error: Overloaded"),
        "{error}"
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn stream_cut_before_message_stop_is_an_error() {
    let server = Server::start().await;
    let full = fixture("anthropic_stream_text.sse");
    let cut = &full[..full.find("event: message_delta").unwrap()];
    server.push([Reply::sse(cut)]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let error = collect_stream(
        client
            .stream("", vec![Message::user("hi")], CallOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("before message_stop"), "{error}");
}

#[tokio::test]
async fn overloaded_529_is_retried() {
    let server = Server::start().await;
    server.push([
        Reply::status(529, fixture("anthropic_error_529_overloaded.json"))
            .header("retry-after", "0.2"),
        Reply::json(text_message("fine now", "end_turn")),
    ]);
    let llm = build_client(&settings(ProviderKind::Anthropic, server.url(""))).unwrap();
    let started = Instant::now();
    let answer = llm
        .client()
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(answer.text, "fine now");
    assert_eq!(llm.usage().total.requests, 2);
}

#[tokio::test]
async fn overloaded_529_exhausting_retries_names_the_request_id() {
    let server = Server::start().await;
    server.always(
        Reply::status(529, fixture("anthropic_error_529_overloaded.json"))
            .header("retry-after-ms", "5"),
    );
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let error = client
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.request_id(), Some("req_011CZquRQNtQiXTvkLNPnid4"));
    assert!(error.to_string().contains("HTTP 529"), "{error}");
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = Server::start().await;
    server.always(Reply::status(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#).header("request-id", "req_400"));
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let error = client
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1);
    assert_eq!(
        error.to_string(),
        "anthropic returned HTTP 400 (request id req_400): invalid_request_error: messages: roles must alternate"
    );
}

#[tokio::test]
async fn structured_output_uses_a_forced_tool() {
    let server = Server::start().await;
    let reply = json!({
        "id": "msg_s", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "tool_use", "id": "toolu_v", "name": "verdict", "input": {"verdict": "approve", "reasons": ["covered"]}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 20}
    });
    server.push([Reply::json(reply.to_string())]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let schema = json!({"type": "object", "properties": {"verdict": {"enum": ["approve", "reject"]}, "reasons": {"type": "array", "items": {"type": "string"}}}, "required": ["verdict", "reasons"]});
    let answer = client
        .generate_structured(
            "Review.",
            vec![Message::user("diff")],
            "verdict",
            schema,
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        answer.value,
        json!({"verdict": "approve", "reasons": ["covered"]})
    );
    assert_eq!(answer.response.finish_reason, FinishReason::Stop);
    assert!(answer.response.tool_calls.is_empty());
    insta::assert_json_snapshot!("anthropic_structured_body", server.seen()[0].body);
}

#[tokio::test]
async fn structured_output_violation_carries_the_raw_reply() {
    let server = Server::start().await;
    let reply = json!({
        "id": "msg_s", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "tool_use", "id": "toolu_v", "name": "count", "input": {"value": "three"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 20}
    });
    server.push([Reply::json(reply.to_string())]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    // A non-object schema is wrapped in {"value": ...} for the tool and unwrapped again.
    let error = client
        .generate_structured(
            "",
            vec![Message::user("how many?")],
            "count",
            json!({"type": "integer"}),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.raw_reply(), Some("\"three\""));
    assert!(
        matches!(error, LlmError::SchemaViolation { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn max_tokens_stop_is_length() {
    let server = Server::start().await;
    server.push([Reply::json(text_message("cut he", "max_tokens"))]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let answer = client
        .generate("", vec![Message::user("essay")], CallOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn never_answering_server_times_out_on_the_first_byte() {
    let server = Server::start().await;
    server.always(Reply::hang());
    let mut config = settings(ProviderKind::Anthropic, server.url(""));
    config.first_byte_timeout_s = 0.2;
    config.max_retries = 0;
    let client = build_client(&config).unwrap().client();
    let error = client
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LlmError::Timeout {
                phase: "first byte",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "anthropic: no first byte within 0.2s");
}

#[tokio::test]
async fn rate_limit_then_success_honours_retry_after_and_server_errors_are_retried() {
    let server = Server::start().await;
    let rate_limited = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#;
    let api_error =
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#;
    server.push([
        Reply::status(429, rate_limited).header("retry-after", "0.3"),
        Reply::status(500, api_error),
        Reply::json(text_message("finally", "end_turn")),
    ]);
    let llm = build_client(&settings(ProviderKind::Anthropic, server.url(""))).unwrap();
    let started = Instant::now();
    let answer = llm
        .client()
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.text, "finally");
    let usage = llm.usage();
    assert_eq!((usage.total.requests, usage.total.failed_requests), (3, 2));
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_names_the_request_id() {
    let server = Server::start().await;
    let body = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CAuth"}"#;
    server.always(Reply::status(401, body));
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let error = client
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1);
    assert_eq!(
        error.to_string(),
        "anthropic returned HTTP 401 (request id req_011CAuth): authentication_error: invalid x-api-key"
    );
}

#[tokio::test]
async fn malformed_json_and_a_stream_cut_mid_event_are_errors() {
    let server = Server::start().await;
    server.push([Reply::json(
        r#"{"id":"msg_x","type":"message","content":[{"type":"te"#,
    )]);
    let client = build_client(&settings(ProviderKind::Anthropic, server.url("")))
        .unwrap()
        .client();
    let error = client
        .generate("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LlmError::MalformedResponse {
                provider: "anthropic",
                ..
            }
        ),
        "{error:?}"
    );

    let full = fixture("anthropic_stream_text.sse");
    let cut_at = full.find("\" there\"").unwrap();
    server.push([Reply::sse(&full[..cut_at])]);
    let stream = client
        .stream("", vec![Message::user("hi")], CallOptions::default())
        .await
        .unwrap();
    let error = collect_stream(stream).await.unwrap_err();
    assert!(matches!(error, LlmError::Stream { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("unparsable content_block_delta event"),
        "{error}"
    );
}

#[tokio::test]
async fn streamed_structured_output_arrives_as_text() {
    let server = Server::start().await;
    let mut sse = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_j", "model": "claude-haiku-4-5-20251001", "usage": {"input_tokens": 40, "output_tokens": 1}}}),
    );
    sse += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_j", "name": "verdict", "input": {}}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"verdict\": "}}),
    );
    sse += &event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"reject\"}"}}),
    );
    sse += &event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
    );
    sse += &event("message_stop", json!({"type": "message_stop"}));
    server.push([Reply::sse(sse)]);
    let llm = build_client(&settings(ProviderKind::Anthropic, server.url(""))).unwrap();
    let request = ChatRequest {
        response_format: agentd_llm::ResponseFormat::JsonSchema {
            name: "verdict".into(),
            schema: json!({"type": "object"}),
            strict: false,
        },
        ..ChatRequest::new("Review.", "diff")
    };
    let done = collect_stream(llm.client().chat_stream(request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        done.text, r#"{"verdict":"reject"}"#,
        "the final text is the normalized JSON"
    );
    assert_eq!(done.finish_reason, FinishReason::Stop);
    assert!(done.tool_calls.is_empty());
    insta::assert_json_snapshot!("anthropic_structured_stream_body", server.seen()[0].body);
    // claude-haiku-4-5 at $1 / $5 per million tokens.
    let cost = llm.usage().total.cost_usd;
    assert!(
        (cost - (40.0 * 1.0 + 12.0 * 5.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
}
