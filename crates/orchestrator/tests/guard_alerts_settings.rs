#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The budget guard in detail, the webhook alert sink against a loopback HTTP server, the
//! metrics text, and the settings contract.

mod common;

use std::sync::{Arc, Mutex};

use agentd_llm::{ChatRequest, LlmClient, LlmError, MockLlmClient, collect_stream};
use agentd_memory::SystemClock;
use agentd_orchestrator::{
    Alert, AlertKind, AlertSink, Alerts, BudgetBook, BudgetSettings, CallDefaults, Metrics,
    OrchestratorSettings, WebhookAlertSink,
};
use common::*;

async fn book(world: &World, settings: BudgetSettings) -> (Arc<BudgetBook>, Metrics) {
    let store = world.store(Arc::new(SystemClock)).await;
    let metrics = Metrics::default();
    let book = Arc::new(BudgetBook::new(
        settings,
        agentd_llm::PriceTable::default(),
        Arc::new(store),
        Arc::new(SystemClock),
        Alerts::default(),
        metrics.clone(),
    ));
    (book, metrics)
}

fn defaults() -> CallDefaults {
    CallDefaults {
        model: MODEL.into(),
        max_tokens: 1000,
    }
}

fn labelled(task: &str) -> ChatRequest {
    let mut request = ChatRequest::new("system", "user");
    request.options.labels.task_id = Some(task.into());
    request.options.labels.agent = Some("developer".into());
    request
}

#[tokio::test]
async fn reservation_is_settled_to_the_real_cost_and_failures_are_counted() {
    let world = World::new();
    let (book, metrics) = book(
        &world,
        BudgetSettings {
            per_day_usd: Some(1.0),
            ..BudgetSettings::default()
        },
    )
    .await;
    let guarded = book.guard(Arc::new(InstantLlm), defaults());
    guarded.chat(labelled("t1")).await.unwrap();
    let spend = book.task_spend("t1").await.unwrap();
    // 100 input tokens at $0.15/M + 50 output tokens at $0.60/M.
    assert!((spend.spent_usd - 0.000045).abs() < 1e-12, "{spend:?}");
    assert_eq!((spend.calls, spend.failed_calls), (1, 0));

    let mut failing = MockLlmClient::new();
    failing.expect_chat().returning(|_| {
        Err(LlmError::Connect {
            provider: "openai",
            url: "http://127.0.0.1:9".into(),
            message: "refused".into(),
        })
    });
    let guarded = book.guard(Arc::new(failing), defaults());
    assert!(guarded.chat(labelled("t1")).await.is_err());
    let spend = book.task_spend("t1").await.unwrap();
    assert!(
        (spend.spent_usd - 0.000045).abs() < 1e-12,
        "a failed call costs nothing: {spend:?}"
    );
    assert_eq!((spend.calls, spend.failed_calls), (2, 1));
    let status = book.status().await.unwrap();
    assert!((status.day_remaining_usd.unwrap() - (1.0 - 0.000045)).abs() < 1e-9);
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("agentd_budget_remaining_usd{scope=\"day\"} 0.99995"),
        "{text}"
    );
}

#[tokio::test]
async fn streamed_calls_are_settled_when_the_stream_ends() {
    let world = World::new();
    let (book, _) = book(&world, BudgetSettings::default()).await;
    let guarded = book.guard(Arc::new(InstantLlm), defaults());
    let stream = guarded.chat_stream(labelled("s1")).await.unwrap();
    let response = collect_stream(stream).await.unwrap();
    assert_eq!(response.text, "ok");
    let spend = book.task_spend("s1").await.unwrap();
    assert!((spend.spent_usd - 0.000045).abs() < 1e-12, "{spend:?}");
}

/// An LLM that blocks until released, so that many calls hold reservations at once.
struct GatedLlm {
    gate: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl LlmClient for GatedLlm {
    async fn chat(&self, request: ChatRequest) -> Result<agentd_llm::ChatResponse, LlmError> {
        let mut gate = self.gate.clone();
        gate.wait_for(|open| *open).await.unwrap();
        InstantLlm.chat(request).await
    }
    async fn chat_stream(&self, request: ChatRequest) -> Result<agentd_llm::ChatStream, LlmError> {
        InstantLlm.chat_stream(request).await
    }
    async fn probe(&self) -> Result<agentd_llm::ProbeReport, LlmError> {
        InstantLlm.probe().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_cannot_overshoot_a_limit_together() {
    let world = World::new();
    // Each call's worst case is a little over $0.0006: three fit in $0.002, not four.
    let (book, _) = book(
        &world,
        BudgetSettings {
            per_agent_usd: Some(0.002),
            ..BudgetSettings::default()
        },
    )
    .await;
    let (open, gate) = tokio::sync::watch::channel(false);
    let guarded = book.guard(Arc::new(GatedLlm { gate }), defaults());
    let calls: Vec<_> = (0..10)
        .map(|n| {
            let guarded = Arc::clone(&guarded);
            tokio::spawn(async move { guarded.chat(labelled(&format!("c{n}"))).await })
        })
        .collect();
    // Every call either holds a reservation (blocked in the gate) or was denied.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = book.status().await.unwrap();
        if status.today.calls + status.today.denied_calls == 10 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        tokio::task::yield_now().await;
    }
    open.send(true).unwrap();
    let mut admitted = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(error) => assert!(
                error
                    .to_string()
                    .contains("per_agent_usd of agent developer"),
                "{error}"
            ),
        }
    }
    assert_eq!(admitted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_each_alert_as_json() {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(received): axum::extract::State<
                    Arc<Mutex<Vec<serde_json::Value>>>,
                >,
                 axum::Json(body): axum::Json<serde_json::Value>| async move {
                    received.lock().unwrap().push(body);
                    "ok"
                },
            ),
        )
        .route(
            "/broken",
            axum::routing::post(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no") }),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let alert = Alert::new(AlertKind::Loop, "fingerprint abc failed 3 times")
        .with_task("t-1")
        .with_role("developer")
        .with_details(serde_json::json!({ "fingerprint": "abc" }));
    let sink = WebhookAlertSink::new(
        format!("http://{addr}/hook"),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    sink.send(&alert).await.unwrap();
    let body = received.lock().unwrap().pop().unwrap();
    insta::assert_json_snapshot!("webhook_alert_body", body, { ".at" => "[time]" });

    let broken = WebhookAlertSink::new(
        format!("http://{addr}/broken"),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let error = broken.send(&alert).await.unwrap_err().to_string();
    assert!(
        error.contains("HTTP 500") && error.contains("/broken"),
        "{error}"
    );
    // Fan-out survives a failing sink.
    let recording = Arc::new(RecordingSink::default());
    Alerts::new(vec![Arc::new(broken), recording.clone()])
        .raise(alert)
        .await;
    assert_eq!(recording.kinds(), vec!["loop"]);
}

#[test]
fn call_defaults_follow_the_llm_section() {
    let mut llm = agentd_llm::LlmSettings::default();
    assert_eq!(
        CallDefaults::from_llm_settings(&llm),
        CallDefaults {
            model: "gpt-4o-mini".into(),
            max_tokens: 4096
        }
    );
    llm.model = Some("claude-haiku-4-5".into());
    llm.max_tokens = 512;
    assert_eq!(
        CallDefaults::from_llm_settings(&llm),
        CallDefaults {
            model: "claude-haiku-4-5".into(),
            max_tokens: 512
        }
    );
}

#[test]
fn settings_keep_the_seed_keys_and_reject_unknown_ones() {
    let defaults: OrchestratorSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(
        (
            defaults.check_interval,
            defaults.max_task_attempts,
            defaults.task_timeout
        ),
        (5.0, 3, 1800.0)
    );
    assert_eq!(defaults, OrchestratorSettings::default());
    let full: OrchestratorSettings = serde_json::from_value(serde_json::json!({
        "check_interval": 2, "max_task_attempts": 5, "task_timeout": 60,
        "concurrency": { "developer": 3 }, "goal": "ship", "loop_threshold": 4,
        "budget": { "per_task_usd": 1.0, "per_agent_usd": 2.0, "per_day_usd": 3.0, "allow_unpriced": true },
        "alert_webhook": "https://hooks.example.com/x", "max_generated_tasks": 2
    }))
    .unwrap();
    full.validate().unwrap();
    assert_eq!(
        (full.workers_for("developer"), full.workers_for("qa")),
        (3, 1)
    );
    let error = serde_json::from_value::<OrchestratorSettings>(
        serde_json::json!({ "budget": { "per_month_usd": 1 } }),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("per_month_usd"), "{error}");
    for (bad, key) in [
        (
            serde_json::json!({ "task_timeout": 0 }),
            "orchestrator.task_timeout",
        ),
        (
            serde_json::json!({ "check_interval": -1 }),
            "orchestrator.check_interval",
        ),
        (
            serde_json::json!({ "budget": { "per_day_usd": -1 } }),
            "orchestrator.budget.per_day_usd",
        ),
        (
            serde_json::json!({ "alert_webhook": "ftp://x" }),
            "orchestrator.alert_webhook",
        ),
    ] {
        let settings: OrchestratorSettings = serde_json::from_value(bad).unwrap();
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains(key), "{error}");
    }
}
