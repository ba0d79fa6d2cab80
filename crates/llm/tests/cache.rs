//! The response cache, driven through the public stack with a counting backend and
//! paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentd_llm::{
    CallLabels, ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError,
    LlmHandle, LlmSettings, ProbeReport, ProviderKind, ResponseFormat, ToolDefinition, Usage,
    build_client_with, collect_stream,
};
use async_trait::async_trait;
use serde_json::json;

/// A backend that answers `answer-N` for its N-th call and counts calls.
struct Counting {
    calls: AtomicUsize,
    finish_reason: FinishReason,
}

#[async_trait]
impl LlmClient for Counting {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(ChatResponse {
            text: format!("answer-{n}"),
            tool_calls: Vec::new(),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 2,
                ..Usage::default()
            },
            model: request.model().to_owned(),
            finish_reason: self.finish_reason.clone(),
            latency_ms: 5,
            request_id: None,
            from_cache: false,
        })
    }
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        Ok(self.chat(request).await?.into_stream())
    }
    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        Ok(ProbeReport {
            provider: "counting".into(),
            endpoint: String::new(),
            detail: String::new(),
        })
    }
}

fn stack(finish_reason: FinishReason) -> (LlmHandle, Arc<Counting>) {
    let backend = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        finish_reason,
    });
    let settings = LlmSettings {
        provider: ProviderKind::Openai,
        model: Some("gpt-4o".into()),
        cache_ttl_s: 60,
        ..LlmSettings::default()
    };
    (
        build_client_with(&settings, backend.clone()).unwrap(),
        backend,
    )
}

fn request() -> ChatRequest {
    ChatRequest::new("system", "question")
}

#[tokio::test(start_paused = true)]
async fn hit_miss_and_ttl_expiry() {
    let (llm, backend) = stack(FinishReason::Stop);
    let client = llm.client();
    let first = client.chat(request()).await.unwrap();
    let second = client.chat(request()).await.unwrap();
    assert_eq!((first.text.as_str(), first.from_cache), ("answer-1", false));
    assert_eq!(
        (second.text.as_str(), second.from_cache),
        ("answer-1", true)
    );
    assert_eq!(backend.calls.load(Ordering::SeqCst), 1);

    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        client.chat(request()).await.unwrap().text,
        "answer-1",
        "still fresh at 59 s"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        client.chat(request()).await.unwrap().text,
        "answer-2",
        "expired after 60 s"
    );

    let usage = llm.usage();
    assert_eq!((usage.cache.hits, usage.cache.misses), (2, 2));
    assert_eq!(usage.total.requests, 2, "hits are not provider requests");
}

#[tokio::test(start_paused = true)]
async fn bypass_gets_a_fresh_answer_and_refreshes_the_entry() {
    let (llm, backend) = stack(FinishReason::Stop);
    let client = llm.client();
    client.chat(request()).await.unwrap();
    let mut fix = request();
    fix.options.bypass_cache = true;
    assert_eq!(client.chat(fix).await.unwrap().text, "answer-2");
    assert_eq!(
        client.chat(request()).await.unwrap().text,
        "answer-2",
        "the fresh answer replaced the old one"
    );
    assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
    assert_eq!(llm.usage().cache.bypassed, 1);
}

type Variant = Box<dyn Fn(&mut ChatRequest)>;

#[tokio::test(start_paused = true)]
async fn every_answer_changing_input_is_in_the_key() {
    let (llm, backend) = stack(FinishReason::Stop);
    let client = llm.client();
    let tool = ToolDefinition {
        name: "t".into(),
        description: "d".into(),
        parameters: json!({"type": "object"}),
    };
    let variants: Vec<Variant> = vec![
        Box::new(|_| {}),
        Box::new(|r| r.options.model = Some("gpt-4o-mini".into())),
        Box::new(|r| r.system = Some("other system".into())),
        Box::new(|r| r.messages.push(agentd_llm::Message::user("more"))),
        Box::new(|r| r.options.temperature = Some(0.7)),
        Box::new(|r| r.options.max_tokens = Some(17)),
        Box::new(move |r| r.tools = vec![tool.clone()]),
        Box::new(|r| {
            r.response_format = ResponseFormat::JsonSchema {
                name: "s".into(),
                schema: json!({"type": "object"}),
                strict: false,
            }
        }),
    ];
    for variant in &variants {
        let mut r = request();
        variant(&mut r);
        client.chat(r).await.unwrap();
    }
    assert_eq!(
        backend.calls.load(Ordering::SeqCst),
        variants.len(),
        "each variant is a miss"
    );

    // What cannot change the answer does not change the key.
    let mut same = request();
    same.options.labels = CallLabels {
        agent: Some("a".into()),
        role: Some("qa".into()),
        task_id: Some("T".into()),
    };
    same.options.timeout = Some(Duration::from_secs(1));
    assert!(client.chat(same).await.unwrap().from_cache);
}

#[tokio::test(start_paused = true)]
async fn truncated_and_invalid_answers_are_not_cached() {
    let (llm, backend) = stack(FinishReason::Length);
    let client = llm.client();
    client.chat(request()).await.unwrap();
    client.chat(request()).await.unwrap();
    assert_eq!(
        backend.calls.load(Ordering::SeqCst),
        2,
        "a truncated answer is never reused"
    );

    let (llm, backend) = stack(FinishReason::Stop);
    let structured = ChatRequest {
        response_format: ResponseFormat::JsonSchema {
            name: "n".into(),
            schema: json!({"type": "integer"}),
            strict: false,
        },
        ..request()
    };
    llm.client().chat(structured.clone()).await.unwrap();
    llm.client().chat(structured).await.unwrap();
    assert_eq!(
        backend.calls.load(Ordering::SeqCst),
        2,
        "`answer-1` is not an integer: not cached"
    );
}

#[tokio::test(start_paused = true)]
async fn streams_are_cached_and_served_from_the_cache() {
    let (llm, backend) = stack(FinishReason::Stop);
    let client = llm.client();
    let first = collect_stream(client.chat_stream(request()).await.unwrap())
        .await
        .unwrap();
    let second = collect_stream(client.chat_stream(request()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(first.text, second.text);
    assert!(second.from_cache);
    assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn size_bound_evicts() {
    let backend = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        finish_reason: FinishReason::Stop,
    });
    let settings = LlmSettings {
        model: Some("gpt-4o".into()),
        cache_max_entries: 2,
        ..LlmSettings::default()
    };
    let client = build_client_with(&settings, backend.clone())
        .unwrap()
        .client();
    for _round in 0..2 {
        for i in 0..50 {
            client
                .chat(ChatRequest::new("s", format!("q{i}")))
                .await
                .unwrap();
        }
    }
    // Unbounded, the second round would be 50 hits (50 calls in all). moka enforces the
    // bound lazily, so allow some slack, but most of the second round must miss.
    let calls = backend.calls.load(Ordering::SeqCst);
    assert!(
        calls >= 65,
        "only {calls} provider calls for 100 requests over 50 questions"
    );
}

#[tokio::test]
async fn cache_ttl_zero_disables_the_cache() {
    let backend = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        finish_reason: FinishReason::Stop,
    });
    let settings = LlmSettings {
        model: Some("gpt-4o".into()),
        cache_ttl_s: 0,
        ..LlmSettings::default()
    };
    let llm = build_client_with(&settings, backend.clone()).unwrap();
    llm.client().chat(request()).await.unwrap();
    llm.client().chat(request()).await.unwrap();
    assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
    assert_eq!(llm.usage().cache.misses, 0);
}
