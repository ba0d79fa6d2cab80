#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! agent-core's real role agents (prompts, schemas, self-validation, the Developer's tool
//! loop) driven by the orchestrator, with an LLM that answers each structured request and
//! tool turn from a script: the idle CEO plans a feature, and it goes all the way through
//! QA, the tests-first gate, the Developer, the Tech Lead, the merge and the deployment.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentd_agent_core::{AgentConfig, Role, build_agent};
use agentd_llm::{
    ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, Message, ProbeReport,
    ResponseFormat, ToolCall, Usage,
};
use agentd_memory::{SystemClock, TaskQuery, TaskStatus, TaskStore};
use agentd_orchestrator::RunLimits;
use async_trait::async_trait;
use common::*;
use serde_json::{Value, json};

/// Answers by the requested schema's name; drives the Developer's tool loop.
#[derive(Default)]
struct ScriptedByschema {
    planned: AtomicBool,
}

impl ScriptedByschema {
    fn answer(&self, request: &ChatRequest) -> Result<(String, Vec<ToolCall>), LlmError> {
        if !request.tools.is_empty() {
            let wrote = request
                .messages
                .iter()
                .any(|m| matches!(m, Message::Tool { .. }));
            let call = if wrote {
                ToolCall {
                    id: "call-2".into(),
                    name: "finish".into(),
                    arguments: json!({ "summary": "added add()" }).to_string(),
                }
            } else {
                ToolCall {
                    id: "call-1".into(),
                    name: "write_file".into(),
                    arguments: json!({ "path": "src/lib.rs", "content": LIB_CODE }).to_string(),
                }
            };
            return Ok((String::new(), vec![call]));
        }
        let ResponseFormat::JsonSchema { name, .. } = &request.response_format else {
            return Ok(("ok".into(), Vec::new()));
        };
        let value: Value = match name.as_str() {
            "self_validation" => json!({ "valid": true, "score": 9, "issues": [] }),
            "requirements" => json!({
                "summary": "calc::add adds two integers",
                "requirements": ["add(a, b) returns a + b"],
                "acceptance_criteria": ["add(2, 3) == 5"],
                "out_of_scope": []
            }),
            "qa_tests" => json!({
                "summary": "a failing test for add",
                "constraints": ["pure function"],
                "files": [{ "path": TEST_FILE, "content": TEST_CODE }]
            }),
            "code_review" => {
                let scores: Vec<Value> =
                    ["correctness", "tests", "security", "design", "readability"]
                        .iter()
                        .map(|c| json!({ "name": c, "score": 9, "comment": "fine" }))
                        .collect();
                json!({ "scores": scores, "reasoning": "small and tested", "required_changes": [] })
            }
            "generated_tasks" => {
                let tasks = if self.planned.swap(true, Ordering::SeqCst) {
                    json!([])
                } else {
                    json!([{
                        "title": "Add numbers",
                        "description": "Add `pub fn add(a: i32, b: i32) -> i32` to the calc crate",
                        "kind": "feature",
                        "priority": "high",
                        "roles": ["developer"]
                    }])
                };
                json!({ "tasks": tasks, "reasoning": "the goal needs it" })
            }
            other => {
                return Err(LlmError::Config {
                    key: "model",
                    message: format!("the script has no answer for schema {other}"),
                });
            }
        };
        Ok((value.to_string(), Vec::new()))
    }
}

#[async_trait]
impl LlmClient for ScriptedByschema {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let (text, tool_calls) = self.answer(&request)?;
        Ok(ChatResponse {
            finish_reason: if tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            },
            text,
            tool_calls,
            usage: Usage {
                input_tokens: 200,
                output_tokens: 80,
                ..Usage::default()
            },
            model: request.model().to_owned(),
            latency_ms: 0,
            request_id: None,
            from_cache: false,
        })
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        Ok(self.chat(request).await?.into_stream())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        Ok(ProbeReport {
            provider: "script".into(),
            endpoint: "-".into(),
            detail: "ok".into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_ceo_plans_a_feature_that_real_agents_take_to_deployed_main() {
    if !require("git") || !require("cargo") {
        return;
    }
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let roster = [
        Role::Ceo,
        Role::Product,
        Role::Qa,
        Role::Developer,
        Role::TechLead,
    ]
    .into_iter()
    .map(|role| build_agent(role, AgentConfig::default()).unwrap())
    .collect();
    let (orchestrator, _, _) = world
        .orchestrator_with_llm(
            &store,
            roster,
            settings(),
            Arc::new(ScriptedByschema::default()),
        )
        .await;

    let summary = orchestrator
        .run_once(RunLimits {
            max_tasks: None,
            goal: Some("a calculator crate".into()),
        })
        .await
        .unwrap();

    assert_eq!(summary.generated, 1, "{summary:?}");
    assert_eq!(
        (summary.completed, summary.merged, summary.deployed),
        (5, 1, 1),
        "{summary:?}"
    );
    let records = store.query(TaskQuery::default()).await.unwrap();
    assert!(
        records.iter().all(|r| r.status == TaskStatus::Completed),
        "{records:#?}"
    );
    let lib = git(&world.work, &["show", "main:src/lib.rs"]);
    assert!(lib.contains("pub fn add"), "{lib}");
    assert!(git(&world.work, &["show", "main:tests/add.rs"]).contains("calc::add(2, 3)"));
    assert_eq!(
        git(&world.remote, &["rev-parse", "main"]),
        git(&world.work, &["rev-parse", "main"])
    );
    git(&world.work, &["fsck", "--strict"]);
}
