//! OpenAI Chat Completions (and OpenAI-compatible servers) against a loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use agentd_llm::{
    CallLabels, CallOptions, ChatRequest, FinishReason, LlmClientExt, LlmError, Message,
    ProviderKind, ResponseFormat, StreamEvent, ToolCall, ToolDefinition, build_client,
    collect_stream,
};
use common::{Reply, SECRET, Server, fixture, openai_text, redacted_headers, settings};
use futures::StreamExt;
use serde_json::json;

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "GetWeatherArgs".into(),
        description: "Current weather in a city".into(),
        parameters: json!({
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "units": {"enum": ["c", "f"]}},
            "required": ["city", "country", "units"],
            "additionalProperties": false
        }),
    }
}

fn ask(text: &str) -> Vec<Message> {
    vec![Message::user(text)]
}

#[tokio::test]
async fn text_answer_reports_usage_model_finish_reason_and_request_id() {
    let server = Server::start().await;
    server.push([Reply::json(openai_text("Hello!", "stop")).header("x-request-id", "req_abc")]);
    let llm = build_client(&settings(ProviderKind::OpenaiCompatible, server.url("/v1"))).unwrap();
    let answer = llm
        .client()
        .generate("Be brief.", ask("hi"), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.text, "Hello!");
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    assert_eq!(answer.model, "gpt-4o-2024-08-06");
    assert_eq!(answer.request_id.as_deref(), Some("req_abc"));
    assert_eq!(
        (
            answer.usage.input_tokens,
            answer.usage.output_tokens,
            answer.usage.cached_input_tokens
        ),
        (12, 5, 4)
    );
    let seen = server.seen();
    assert_eq!(seen[0].path, "/v1/chat/completions");
    let usage = llm.usage();
    assert_eq!((usage.total.requests, usage.total.failed_requests), (1, 0));
    assert!(usage.total.cost_usd > 0.0, "gpt-4o has a price");
}

#[tokio::test]
async fn tool_call_fixture_is_parsed_and_tool_results_are_sent_back() {
    let server = Server::start().await;
    server.push([
        Reply::json(fixture("openai_chat_tool_calls.json")),
        Reply::json(openai_text("It is 12C in Edinburgh.", "stop")),
    ]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let mut messages = ask("Weather in Edinburgh?");
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
    assert_eq!(answer.text, "");
    assert_eq!(
        answer.tool_calls,
        vec![ToolCall {
            id: "call_Y6qJ7ofLgOrBnMD5WbVAeiRV".into(),
            name: "GetWeatherArgs".into(),
            arguments: r#"{"city":"Edinburgh","country":"UK","units":"c"}"#.into(),
        }]
    );
    let args: serde_json::Value = answer.tool_calls[0].parse_arguments().unwrap();
    assert_eq!(args["city"], "Edinburgh");
    assert_eq!(
        (answer.usage.input_tokens, answer.usage.output_tokens),
        (76, 24)
    );

    messages.push(answer.to_message());
    messages.push(Message::tool_result(
        "call_Y6qJ7ofLgOrBnMD5WbVAeiRV",
        "12C, cloudy",
    ));
    let second = client
        .chat_with_tools(
            "You check weather.",
            messages,
            vec![weather_tool()],
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(second.text, "It is 12C in Edinburgh.");
    let sent = &server.seen()[1];
    insta::assert_json_snapshot!("openai_tool_round_trip_body", sent.body);
    insta::assert_json_snapshot!("openai_headers", redacted_headers(sent));
    assert_eq!(sent.headers["authorization"], format!("Bearer {SECRET}"));
}

#[tokio::test]
async fn parallel_tool_calls_keep_their_order() {
    let server = Server::start().await;
    let body = json!({
        "id": "chatcmpl-par", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "GetWeatherArgs", "arguments": "{\"city\":\"Paris\",\"country\":\"FR\",\"units\":\"c\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "GetWeatherArgs", "arguments": "{\"city\":\"Oslo\",\"country\":\"NO\",\"units\":\"c\"}"}}
        ]}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120}
    });
    server.push([Reply::json(body.to_string())]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let answer = client
        .chat_with_tools(
            "",
            ask("Paris and Oslo?"),
            vec![weather_tool()],
            CallOptions::default(),
        )
        .await
        .unwrap();
    let ids: Vec<_> = answer.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_1", "call_2"]);
    assert!(answer.tool_calls[1].arguments.contains("Oslo"));
}

#[tokio::test]
async fn streamed_text_fixture_yields_deltas_then_usage() {
    let server = Server::start().await;
    server.push([Reply::sse(fixture("openai_chat_stream_text.sse"))]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let mut stream = client
        .stream("", ask("weather in SF?"), CallOptions::default())
        .await
        .unwrap();
    let mut text = String::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::TextDelta(delta) => text.push_str(&delta),
            StreamEvent::Done(response) => done = Some(response),
            StreamEvent::ToolCallDelta { .. } => panic!("no tool calls in this stream"),
        }
    }
    let done = done.expect("a Done event");
    assert!(
        text.starts_with("I'm unable to provide real-time weather updates."),
        "{text}"
    );
    assert_eq!(done.text, text);
    assert_eq!(done.finish_reason, FinishReason::Stop);
    assert_eq!(
        (done.usage.input_tokens, done.usage.output_tokens),
        (14, 30)
    );
    assert_eq!(
        done.request_id.as_deref(),
        Some("chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL")
    );
    insta::assert_json_snapshot!("openai_stream_body", server.seen()[0].body);
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

#[tokio::test]
async fn streamed_parallel_tool_calls_are_assembled() {
    let server = Server::start().await;
    let mut sse = String::new();
    sse += &chunk(
        json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "GetWeatherArgs", "arguments": ""}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "GetWeatherArgs", "arguments": ""}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Rome\"}"}}]}),
        None,
    );
    sse += &chunk(
        json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"city\":\"Kyiv\"}"}}]}),
        None,
    );
    sse += &chunk(json!({}), Some("tool_calls"));
    sse += "data: {\"id\":\"chatcmpl-s\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20,\"total_tokens\":70}}\n\ndata: [DONE]\n\n";
    server.push([Reply::sse(sse)]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let stream = client
        .chat_stream(ChatRequest {
            tools: vec![weather_tool()],
            ..ChatRequest::new("", "Rome and Kyiv")
        })
        .await
        .unwrap();
    let done = collect_stream(stream).await.unwrap();
    assert_eq!(done.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        done.tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.arguments.as_str()))
            .collect::<Vec<_>>(),
        [
            ("call_a", "{\"city\":\"Rome\"}"),
            ("call_b", "{\"city\":\"Kyiv\"}")
        ]
    );
    assert_eq!(done.usage.output_tokens, 20);
}

#[tokio::test]
async fn length_stop_is_surfaced() {
    let server = Server::start().await;
    server.push([Reply::json(openai_text("The answer is trunc", "length"))]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let answer = client
        .generate(
            "",
            ask("long essay"),
            CallOptions {
                max_tokens: Some(5),
                ..CallOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, FinishReason::Length);
    assert_eq!(server.seen()[0].body["max_completion_tokens"], 5);
}

#[tokio::test]
async fn rate_limit_then_success_waits_the_requested_delay_and_counts_both_attempts() {
    let server = Server::start().await;
    server.push([
        Reply::status(429, fixture("openai_error_429_rate_limit_exceeded.json"))
            .header("retry-after-ms", "400"),
        Reply::json(openai_text("ok", "stop")),
    ]);
    let llm = build_client(&settings(ProviderKind::Openai, server.url("/v1"))).unwrap();
    let started = Instant::now();
    let labels = CallLabels {
        agent: Some("dev-1".into()),
        role: Some("developer".into()),
        task_id: Some("T-1".into()),
    };
    let answer = llm
        .client()
        .generate(
            "",
            ask("hi"),
            CallOptions {
                labels,
                ..CallOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(answer.text, "ok");
    assert_eq!(server.hits(), 2);
    let usage = llm.usage();
    assert_eq!((usage.total.requests, usage.total.failed_requests), (2, 1));
    assert_eq!(usage.by_role["developer"].requests, 2);
    assert_eq!(usage.by_agent["dev-1"].output_tokens, 5);
}

#[tokio::test]
async fn try_again_in_from_the_message_is_honoured() {
    let server = Server::start().await;
    let body = json!({"error": {"message": "Rate limit reached for gpt-4o. Please try again in 0.35s. Visit https://platform.openai.com/account/rate-limits", "type": "tokens", "code": "rate_limit_exceeded"}});
    server.push([
        Reply::status(429, body.to_string()),
        Reply::json(openai_text("ok", "stop")),
    ]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let started = Instant::now();
    client
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "waited only {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_error_is_retried_with_backoff() {
    let server = Server::start().await;
    server.push([
        Reply::status(
            500,
            r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
        ),
        Reply::json(openai_text("ok", "stop")),
    ]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    assert_eq!(
        client
            .generate("", ask("hi"), CallOptions::default())
            .await
            .unwrap()
            .text,
        "ok"
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_shows_message_and_request_id_but_not_the_key() {
    let server = Server::start().await;
    let body = json!({"error": {"message": "Incorrect API key provided: sk-test-****cdef. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "code": "invalid_api_key"}});
    server.always(Reply::status(401, body.to_string()).header("x-request-id", "req_401"));
    let llm = build_client(&settings(ProviderKind::Openai, server.url("/v1"))).unwrap();
    let error = llm
        .client()
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(server.hits(), 1, "401 must not be retried");
    let text = error.to_string();
    assert!(
        matches!(error, LlmError::Http { status: 401, .. }),
        "{error:?}"
    );
    assert!(text.contains("Incorrect API key provided"), "{text}");
    assert!(text.contains("req_401"), "{text}");
    assert!(!text.contains(SECRET) && !format!("{error:?}").contains(SECRET));
    assert_eq!(llm.usage().total.failed_requests, 1);
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let server = Server::start().await;
    server.always(Reply::json(
        r#"{"id": "chatcmpl-x", "choices": [{"message": "#,
    ));
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let error = client
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LlmError::MalformedResponse {
                provider: "openai",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("chatcmpl-x"), "{error}");
    assert_eq!(server.hits(), 1, "a malformed answer is not transient");
}

#[tokio::test]
async fn stream_cut_off_mid_event_is_an_error_not_a_short_answer() {
    let server = Server::start().await;
    let full = fixture("openai_chat_stream_text.sse");
    let cut = &full[..full.len() / 2];
    server.push([Reply::sse(cut)]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let stream = client
        .stream("", ask("hi"), CallOptions::default())
        .await
        .unwrap();
    let error = collect_stream(stream).await.unwrap_err();
    assert!(matches!(error, LlmError::Stream { .. }), "{error:?}");
}

#[tokio::test]
async fn stream_ending_before_finish_reason_is_an_error() {
    let server = Server::start().await;
    server.push([Reply::sse(chunk(json!({"content": "Hel"}), None))]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let stream = client
        .stream("", ask("hi"), CallOptions::default())
        .await
        .unwrap();
    let error = collect_stream(stream).await.unwrap_err();
    assert!(
        error.to_string().contains("ended before a finish_reason"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start().await;
    server.always(Reply::hang());
    let mut config = settings(ProviderKind::Openai, server.url("/v1"));
    config.first_byte_timeout_s = 0.3;
    config.max_retries = 1;
    config.max_retry_wait_s = 0.0;
    let llm = build_client(&config).unwrap();
    let error = llm
        .client()
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap_err();
    let LlmError::RetriesExhausted { attempts, last, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 1, "no wait budget left for a retry");
    assert!(
        matches!(
            **last,
            LlmError::Timeout {
                phase: "first byte",
                ..
            }
        ),
        "{last:?}"
    );
}

#[tokio::test]
async fn the_per_call_timeout_bounds_the_whole_answer() {
    let server = Server::start().await;
    server.always(Reply::json(openai_text("slow", "stop")).delayed(Duration::from_secs(5)));
    let mut config = settings(ProviderKind::Openai, server.url("/v1"));
    config.max_retries = 0;
    let client = build_client(&config).unwrap().client();
    let options = CallOptions {
        timeout: Some(Duration::from_millis(200)),
        ..CallOptions::default()
    };
    let error = client.generate("", ask("hi"), options).await.unwrap_err();
    assert!(matches!(error, LlmError::Timeout { .. }), "{error:?}");
}

#[tokio::test]
async fn retries_are_bounded_and_every_attempt_is_counted() {
    let server = Server::start().await;
    server.always(Reply::status(503, "upstream unavailable").header("retry-after-ms", "10"));
    let llm = build_client(&settings(ProviderKind::Openai, server.url("/v1"))).unwrap();
    let error = llm
        .client()
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap_err();
    let LlmError::RetriesExhausted { attempts, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 4);
    assert_eq!(server.hits(), 4);
    assert!(
        error.to_string().contains("upstream unavailable"),
        "{error}"
    );
    let usage = llm.usage();
    assert_eq!((usage.total.requests, usage.total.failed_requests), (4, 4));
}

#[tokio::test]
async fn a_requested_delay_beyond_the_wait_budget_fails_at_once() {
    let server = Server::start().await;
    server.always(
        Reply::status(429, fixture("openai_error_429_rate_limit_exceeded.json"))
            .header("retry-after", "3600"),
    );
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let started = Instant::now();
    let error = client
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(error.to_string().contains("rate_limit_exceeded"), "{error}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn json_schema_request_body_and_validation() {
    let server = Server::start().await;
    server.push([
        Reply::json(openai_text(
            r#"{"verdict":"approve","reasons":["tests pass"]}"#,
            "stop",
        )),
        Reply::json(openai_text(r#"{"verdict":"perhaps"}"#, "stop")),
    ]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let schema = json!({
        "type": "object",
        "properties": {"verdict": {"enum": ["approve", "reject"]}, "reasons": {"type": "array", "items": {"type": "string"}}},
        "required": ["verdict", "reasons"],
        "additionalProperties": false
    });
    let ok = client
        .generate_structured(
            "Review.",
            ask("diff"),
            "verdict",
            schema.clone(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ok.value["verdict"], "approve");
    insta::assert_json_snapshot!("openai_json_schema_body", server.seen()[0].body);
    let error = client
        .generate_structured(
            "Review.",
            ask("diff"),
            "verdict",
            schema,
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    let LlmError::SchemaViolation { raw, violations } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(raw, r#"{"verdict":"perhaps"}"#);
    assert_eq!(violations.len(), 2, "{violations:?}");
}

#[tokio::test]
async fn json_mode_and_compatible_servers_use_max_tokens() {
    let server = Server::start().await;
    server.push([Reply::json(openai_text("{}", "stop"))]);
    let mut config = settings(ProviderKind::OpenaiCompatible, server.url("/v1/"));
    config.api_key = None;
    config.model = Some("llama3.2".into());
    let llm = build_client(&config).unwrap();
    let request = ChatRequest {
        response_format: ResponseFormat::JsonObject,
        ..ChatRequest::new("Reply in JSON.", "hi")
    };
    llm.client().chat(request).await.unwrap();
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert!(
        !seen.headers.contains_key("authorization"),
        "no key configured, none sent"
    );
    insta::assert_json_snapshot!("openai_compatible_json_mode_body", seen.body);
}

#[tokio::test]
async fn unknown_model_price_is_unknown_not_zero() {
    let server = Server::start().await;
    let body = openai_text("hi", "stop").replace("gpt-4o-2024-08-06", "llama3.2:3b");
    server.push([Reply::json(body)]);
    let mut config = settings(ProviderKind::OpenaiCompatible, server.url("/v1"));
    config.model = Some("llama3.2:3b".into());
    let llm = build_client(&config).unwrap();
    llm.client()
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap();
    let usage = llm.usage();
    assert_eq!(usage.total.cost_usd, 0.0);
    assert_eq!(usage.total.unpriced_requests, 1);
    assert!(usage.unpriced_models.contains("llama3.2:3b"));
}

#[tokio::test]
async fn a_non_streaming_server_still_streams() {
    let server = Server::start().await;
    server.push([Reply::json(openai_text("whole answer", "stop"))]);
    let client = build_client(&settings(ProviderKind::OpenaiCompatible, server.url("/v1")))
        .unwrap()
        .client();
    let done = collect_stream(
        client
            .stream("", ask("hi"), CallOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(done.text, "whole answer");
}

#[tokio::test]
async fn probe_lists_models_with_the_key() {
    let server = Server::start().await;
    server.push([Reply::json(
        r#"{"object":"list","data":[{"id":"gpt-4o","object":"model"}]}"#,
    )]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let report = client.probe().await.unwrap();
    assert!(report.detail.contains("1 models listed"), "{report:?}");
    assert_eq!(server.seen()[0].path, "/v1/models");
    server.push([Reply::status(
        401,
        r#"{"error":{"message":"bad key","type":"invalid_request_error"}}"#,
    )]);
    let error = client.probe().await.unwrap_err();
    assert!(error.to_string().contains("bad key"), "{error}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let server = Server::start().await;
    let url = server.url("/v1");
    server.shut_down().await;
    let mut config = settings(ProviderKind::Openai, url);
    config.max_retries = 1;
    let llm = build_client(&config).unwrap();
    let error = llm
        .client()
        .generate("", ask("hi"), CallOptions::default())
        .await
        .unwrap_err();
    let LlmError::RetriesExhausted { attempts, last, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 2);
    assert!(matches!(**last, LlmError::Connect { .. }), "{last:?}");
    assert_eq!(llm.usage().total.failed_requests, 2);
}

#[tokio::test]
async fn max_concurrency_bounds_requests_in_flight() {
    let server = Server::start().await;
    server.always(Reply::json(openai_text("ok", "stop")).delayed(Duration::from_millis(30)));
    let mut config = settings(ProviderKind::Openai, server.url("/v1"));
    config.max_concurrency = 3;
    let client = build_client(&config).unwrap().client();
    let calls = (0..12).map(|i| {
        let client = std::sync::Arc::clone(&client);
        async move {
            client
                .generate("", ask(&format!("q{i}")), CallOptions::default())
                .await
        }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(server.hits(), 12);
    assert_eq!(server.max_in_flight(), 3);
}

#[tokio::test]
async fn a_stream_dropped_early_is_still_counted_as_an_attempt() {
    let server = Server::start().await;
    server.push([Reply::sse(fixture("openai_chat_stream_text.sse"))]);
    let llm = build_client(&settings(ProviderKind::Openai, server.url("/v1"))).unwrap();
    let mut stream = llm
        .client()
        .stream("", ask("hi"), CallOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        stream.next().await,
        Some(Ok(StreamEvent::TextDelta(_)))
    ));
    drop(stream);
    let usage = llm.usage();
    assert_eq!((usage.total.requests, usage.total.failed_requests), (1, 1));
}

#[tokio::test]
async fn a_refusal_is_content_filter_with_the_refusal_text() {
    let server = Server::start().await;
    let body = json!({
        "id": "chatcmpl-r", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}
    });
    server.push([Reply::json(body.to_string())]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let answer = client
        .generate("", ask("bad idea"), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ContentFilter);
    assert_eq!(answer.text, "I can't help with that.");
}

#[tokio::test]
async fn the_total_timeout_ends_a_stalled_stream() {
    let server = Server::start().await;
    let first_chunks =
        chunk(json!({"content": "Hel"}), None) + &chunk(json!({"content": "lo"}), None);
    server.push([Reply::sse(first_chunks).then_stall()]);
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    let options = CallOptions {
        timeout: Some(Duration::from_millis(300)),
        ..CallOptions::default()
    };
    let mut stream = client.stream("", ask("hi"), options).await.unwrap();
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
    assert_eq!(text, "Hello");
    assert!(
        matches!(
            error,
            LlmError::Timeout {
                phase: "complete response",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn reasoning_models_get_no_temperature_from_openai_only() {
    let server = Server::start().await;
    server.always(Reply::json(openai_text("ok", "stop")));
    let client = build_client(&settings(ProviderKind::Openai, server.url("/v1")))
        .unwrap()
        .client();
    for model in ["gpt-5-mini", "o4-mini", "o3", "gpt-4o", "gpt-5-chat-latest"] {
        let options = CallOptions {
            model: Some(model.into()),
            ..CallOptions::default()
        };
        client.generate("", ask(model), options).await.unwrap();
    }
    let compatible = build_client(&settings(ProviderKind::OpenaiCompatible, server.url("/v1")))
        .unwrap()
        .client();
    let options = CallOptions {
        model: Some("o3".into()),
        ..CallOptions::default()
    };
    compatible
        .generate("", ask("o3 elsewhere"), options)
        .await
        .unwrap();
    let sent: Vec<(String, bool)> = server
        .seen()
        .iter()
        .map(|seen| {
            (
                seen.body["model"].as_str().unwrap().to_owned(),
                seen.body.get("temperature").is_some(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("gpt-5-mini".into(), false),
            ("o4-mini".into(), false),
            ("o3".into(), false),
            ("gpt-4o".into(), true),
            ("gpt-5-chat-latest".into(), true),
            ("o3".into(), true),
        ]
    );
}
