//! `MockLlmClient` (feature `mock`) stands in for a client, conveniences included.
#![cfg(feature = "mock")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use agentd_llm::{
    CallOptions, ChatResponse, FinishReason, LlmClient, LlmClientExt, Message, MockLlmClient, Usage,
};

#[tokio::test]
async fn the_mock_answers_the_conveniences_through_chat() {
    let mut mock = MockLlmClient::new();
    mock.expect_chat()
        .withf(|request| {
            request.system.as_deref() == Some("judge")
                && request.response_format != Default::default()
        })
        .times(1)
        .returning(|_| {
            Ok(ChatResponse {
                text: r#"{"ok": true}"#.into(),
                tool_calls: Vec::new(),
                usage: Usage::default(),
                model: "mock".into(),
                finish_reason: FinishReason::Stop,
                latency_ms: 0,
                request_id: None,
                from_cache: false,
            })
        });
    let client: Arc<dyn LlmClient> = Arc::new(mock);
    let schema = serde_json::json!({"type": "object", "required": ["ok"]});
    let answer = client
        .generate_structured(
            "judge",
            vec![Message::user("x")],
            "verdict",
            schema,
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(answer.value["ok"], true);
}
