//! Record a run against a loopback server, then replay it with the server gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use agentd_llm::{
    CallOptions, ChatRequest, ChatResponse, LlmClient, LlmClientExt, LlmError, LlmSettings,
    Message, ProviderKind, ToolDefinition, build_client, collect_stream,
};
use common::{Reply, SECRET, Server, fixture, openai_text, settings};
use serde_json::json;

fn tool() -> ToolDefinition {
    ToolDefinition {
        name: "GetWeatherArgs".into(),
        description: "weather".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

/// The fields that must survive a record/replay round trip.
fn essence(
    response: &ChatResponse,
) -> (
    String,
    Vec<agentd_llm::ToolCall>,
    agentd_llm::Usage,
    String,
    agentd_llm::FinishReason,
) {
    (
        response.text.clone(),
        response.tool_calls.clone(),
        response.usage,
        response.model.clone(),
        response.finish_reason.clone(),
    )
}

async fn run(client: Arc<dyn LlmClient>) -> Vec<ChatResponse> {
    let mut results = Vec::new();
    results.push(
        client
            .generate(
                "Be brief.",
                vec![Message::user("hello")],
                CallOptions::default(),
            )
            .await
            .unwrap(),
    );
    results.push(
        client
            .chat_with_tools(
                "",
                vec![Message::user("weather in Edinburgh")],
                vec![tool()],
                CallOptions::default(),
            )
            .await
            .unwrap(),
    );
    let stream = client
        .stream(
            "",
            vec![Message::user("weather in SF, streamed")],
            CallOptions::default(),
        )
        .await
        .unwrap();
    results.push(collect_stream(stream).await.unwrap());
    results
}

fn replay_settings(cassette: &Path) -> LlmSettings {
    LlmSettings {
        provider: ProviderKind::Replay,
        model: Some("gpt-4o".into()),
        temperature: Some(0.0),
        max_tokens: 256,
        cassette: Some(cassette.to_owned()),
        ..LlmSettings::default()
    }
}

#[tokio::test]
async fn record_then_replay_with_the_server_gone() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("run.jsonl");
    let server = Server::start().await;
    server.push([
        Reply::json(openai_text(&format!("hi! your key is {SECRET}"), "stop")),
        Reply::json(fixture("openai_chat_tool_calls.json")),
        Reply::sse(fixture("openai_chat_stream_text.sse")),
    ]);
    let mut live = settings(ProviderKind::Openai, server.url("/v1"));
    live.cassette = Some(cassette.clone());
    let mut recorded = run(build_client(&live).unwrap().client()).await;
    server.shut_down().await;

    let text = std::fs::read_to_string(&cassette).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(
        !text.contains(SECRET),
        "the key must be scrubbed from cassettes"
    );
    assert!(text.contains("hi! your key is ***"));

    let replay = build_client(&replay_settings(&cassette)).unwrap();
    let report = replay.client().probe().await.unwrap();
    assert_eq!(report.detail, "3 recorded exchanges, 3 distinct requests");
    let replayed = run(replay.client()).await;
    // The live caller saw the echoed key; the cassette (and so the replay) has `***`.
    recorded[0].text = recorded[0].text.replace(SECRET, "***");
    assert_eq!(
        recorded.iter().map(essence).collect::<Vec<_>>(),
        replayed.iter().map(essence).collect::<Vec<_>>()
    );
    let usage = replay.usage();
    assert_eq!(usage.total.requests, 3);
    assert_eq!(usage.total.output_tokens, 5 + 24 + 30);
}

fn entry(question: &str, answer: &str) -> String {
    let request = ChatRequest {
        options: CallOptions {
            model: Some("gpt-4o".into()),
            temperature: Some(0.0),
            max_tokens: Some(256),
            ..CallOptions::default()
        },
        ..ChatRequest::new("sys", question)
    };
    let response = ChatResponse {
        text: answer.into(),
        tool_calls: Vec::new(),
        usage: agentd_llm::Usage::default(),
        model: "gpt-4o".into(),
        finish_reason: agentd_llm::FinishReason::Stop,
        latency_ms: 0,
        request_id: None,
        from_cache: false,
    };
    serde_json::to_string(&json!({"request": request, "response": response})).unwrap()
}

#[tokio::test]
async fn concurrent_identical_requests_get_each_recorded_answer_once() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("same.jsonl");
    let lines: Vec<String> = (0..20)
        .map(|i| entry("same question", &format!("answer {i}")))
        .collect();
    std::fs::write(&cassette, lines.join("\n")).unwrap();
    for _ in 0..5 {
        let client = build_client(&replay_settings(&cassette)).unwrap().client();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let client = Arc::clone(&client);
            tasks.push(tokio::spawn(async move {
                let mut request = ChatRequest::new("sys", "same question");
                request.options.bypass_cache = true;
                client.chat(request).await.unwrap().text
            }));
        }
        let mut answers = BTreeSet::new();
        for task in tasks {
            answers.insert(task.await.unwrap());
        }
        let expected: BTreeSet<String> = (0..20).map(|i| format!("answer {i}")).collect();
        assert_eq!(answers, expected);
    }
}

#[tokio::test]
async fn sequential_identical_requests_get_the_recorded_order_then_the_last_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("seq.jsonl");
    let content = format!(
        "# hand-written\n{}\n\n// second try\n{}\n",
        entry("q", "first"),
        entry("q", "second")
    );
    std::fs::write(&cassette, content).unwrap();
    let client = build_client(&replay_settings(&cassette)).unwrap().client();
    let mut texts = Vec::new();
    for _ in 0..3 {
        let mut request = ChatRequest::new("sys", "q");
        request.options.bypass_cache = true;
        texts.push(client.chat(request).await.unwrap().text);
    }
    assert_eq!(texts, ["first", "second", "second"]);
}

#[tokio::test]
async fn a_miss_names_the_fingerprint_and_the_nearest_request() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("miss.jsonl");
    std::fs::write(
        &cassette,
        format!(
            "{}\n{}\n",
            entry("write a parser", "ok"),
            entry("write tests", "ok")
        ),
    )
    .unwrap();
    let client = build_client(&replay_settings(&cassette)).unwrap().client();
    let request = ChatRequest::new("sys", "write tests!");
    let wanted = {
        let mut resolved = request.clone();
        resolved.options = CallOptions {
            model: Some("gpt-4o".into()),
            temperature: Some(0.0),
            max_tokens: Some(256),
            ..CallOptions::default()
        };
        agentd_llm::fingerprint(&resolved)
    };
    let error = client.chat(request).await.unwrap_err();
    let LlmError::ReplayMiss {
        fingerprint,
        nearest,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(fingerprint, &wanted);
    let text = error.to_string();
    assert!(text.contains(&wanted), "{text}");
    assert!(nearest.contains("line 2"), "{nearest}");
    assert!(nearest.contains("messages from [0]"), "{nearest}");
    assert!(text.contains("\"write tests!\""), "{text}");

    let other_model = ChatRequest {
        options: CallOptions {
            model: Some("gpt-4o-mini".into()),
            ..CallOptions::default()
        },
        ..ChatRequest::new("sys", "write tests")
    };
    let error = client.chat(other_model).await.unwrap_err();
    assert!(
        error.to_string().contains("model (gpt-4o vs gpt-4o-mini)"),
        "{error}"
    );
}

#[tokio::test]
async fn hand_edited_requests_are_matched_by_their_new_content() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("edited.jsonl");
    let line = entry("old question", "edited answer").replace("old question", "new question");
    assert!(line.contains("new question"));
    std::fs::write(&cassette, line).unwrap();
    let client = build_client(&replay_settings(&cassette)).unwrap().client();
    let answer = client
        .chat(ChatRequest::new("sys", "new question"))
        .await
        .unwrap();
    assert_eq!(answer.text, "edited answer");
}

#[test]
fn broken_cassettes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("broken.jsonl");
    std::fs::write(
        &cassette,
        format!("{}\n{{\"request\": 1}}\n", entry("q", "a")),
    )
    .unwrap();
    let error = build_client(&replay_settings(&cassette)).unwrap_err();
    assert!(
        error.to_string().contains("broken.jsonl: line 2:"),
        "{error}"
    );

    let missing = dir.path().join("missing.jsonl");
    let error = build_client(&replay_settings(&missing)).unwrap_err();
    assert!(
        error.to_string().contains("missing.jsonl: cannot read"),
        "{error}"
    );

    let error = build_client(&LlmSettings {
        provider: ProviderKind::Replay,
        ..LlmSettings::default()
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid setting llm.cassette: provider replay needs the cassette file to answer from"
    );
}

#[tokio::test]
async fn recording_appends_so_a_restarted_run_keeps_its_earlier_answers() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("nested/run.jsonl");
    let server = Server::start().await;
    server.always(Reply::json(openai_text("same", "stop")));
    let mut live = settings(ProviderKind::Openai, server.url("/v1"));
    live.cassette = Some(cassette.clone());
    for question in ["before the crash", "after the restart"] {
        let client = build_client(&live).unwrap().client();
        client
            .generate("", vec![Message::user(question)], CallOptions::default())
            .await
            .unwrap();
    }
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains("before the crash") && text.contains("after the restart"));
}
