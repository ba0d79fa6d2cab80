//! Test harness: a scripted LLM, a real SQLite memory store, real workspaces.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use agentd_agent_core::{AgentContext, TaskWorkspace};
use agentd_llm::{
    CallLabels, ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, Message,
    ProbeReport, ToolCall, Usage,
};
use agentd_memory::{ManualClock, MemoryStore, SqliteOptions, SqliteStore};
use chrono::TimeZone;
use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Plain text (or JSON text for structured requests).
    Text(String),
    /// Tool calls: (tool name, raw arguments).
    Tools(Vec<(String, String)>),
}

/// A JSON answer.
pub fn json(value: Value) -> Reply {
    Reply::Text(value.to_string())
}

/// One tool call with JSON arguments.
pub fn tool(name: &str, args: Value) -> Reply {
    Reply::Tools(vec![(name.to_owned(), args.to_string())])
}

/// An `LlmClient` that answers from a queue and records every request. Usage is
/// estimated at four characters per token from the real request and answer, so the
/// spend measured in tests follows the real prompt sizes.
pub struct ScriptedLlm {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedLlm {
    pub fn new(replies: Vec<Reply>) -> Arc<Self> {
        Arc::new(ScriptedLlm {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
        })
    }

    pub fn push(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn remaining(&self) -> usize {
        self.replies.lock().unwrap().len()
    }
}

pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

pub fn request_chars(request: &ChatRequest) -> String {
    let mut text = request.system.clone().unwrap_or_default();
    text.push_str(&serde_json::to_string(&request.messages).unwrap());
    text.push_str(&serde_json::to_string(&request.tools).unwrap());
    text
}

#[async_trait::async_trait]
impl LlmClient for ScriptedLlm {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let number = {
            let mut requests = self.requests.lock().unwrap();
            requests.push(request.clone());
            requests.len()
        };
        let Some(reply) = self.replies.lock().unwrap().pop_front() else {
            let last = request
                .messages
                .last()
                .map(|m| format!("{m:?}"))
                .unwrap_or_default();
            return Err(LlmError::Config {
                key: "script",
                message: format!(
                    "no scripted answer left for request {number}: {}",
                    last.chars().take(300).collect::<String>()
                ),
            });
        };
        let (text, tool_calls, finish_reason) = match reply {
            Reply::Text(text) => (text, Vec::new(), FinishReason::Stop),
            Reply::Tools(calls) => (
                String::new(),
                calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, arguments))| ToolCall {
                        id: format!("call_{number}_{i}"),
                        name,
                        arguments,
                    })
                    .collect(),
                FinishReason::ToolCalls,
            ),
        };
        let output = format!("{text}{}", serde_json::to_string(&tool_calls).unwrap());
        Ok(ChatResponse {
            usage: Usage {
                input_tokens: estimate_tokens(&request_chars(&request)),
                output_tokens: estimate_tokens(&output),
                ..Usage::default()
            },
            text,
            tool_calls,
            model: "scripted".into(),
            finish_reason,
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
            provider: "scripted".into(),
            endpoint: "memory".into(),
            detail: "scripted answers".into(),
        })
    }
}

/// The text of the first user message of a request (the rendered step prompt).
pub fn prompt_of(request: &ChatRequest) -> String {
    match request.messages.first() {
        Some(Message::User { content }) => content.clone(),
        other => panic!("first message is not a user message: {other:?}"),
    }
}

pub fn labels(request: &ChatRequest) -> &CallLabels {
    &request.options.labels
}

/// A real SQLite store in `dir`, on a fixed manual clock (deterministic prompts).
pub async fn memory_in(dir: &Path) -> Arc<dyn MemoryStore> {
    let clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    ));
    Arc::new(
        SqliteStore::open(dir.join("memory.db"), SqliteOptions::default(), clock)
            .await
            .unwrap(),
    )
}

/// A context over a scripted LLM and a fresh store, without workspace.
pub async fn context(llm: Arc<dyn LlmClient>, dir: &Path) -> AgentContext {
    AgentContext::new(llm, memory_in(dir).await)
}

/// A jailed workspace on `root`.
pub fn workspace(root: &Path) -> TaskWorkspace {
    let settings = agentd_fsmanager::FileSystemSettings::new(root);
    TaskWorkspace::new(agentd_fsmanager::Workspace::open(settings).unwrap())
}

/// Whether an external program is available; when it is not, tests that need it skip,
/// unless `CI=true` or `AGENTD_REQUIRE_ALL=1`, where they fail.
pub fn require_program(program: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{program} is required (CI=true or AGENTD_REQUIRE_ALL=1) but not installed"
        );
        eprintln!("skipping: {program} is not installed");
    }
    found
}

/// A real git repository on a feature branch with a buggy `calc.py` and its pytest
/// tests committed, plus a `.gitignore` for Python caches.
pub async fn python_repo(root: &Path) -> Arc<dyn agentd_vcs::Vcs> {
    let vcs: Arc<dyn agentd_vcs::Vcs> =
        Arc::new(agentd_vcs::GixVcs::new(agentd_vcs::VcsSettings::default()));
    vcs.init(root).await.unwrap();
    vcs.create_branch(root, "feature/t-1", None).await.unwrap();
    vcs.switch_branch(root, "feature/t-1").await.unwrap();
    std::fs::write(root.join(".gitignore"), "__pycache__/\n.pytest_cache/\n").unwrap();
    std::fs::write(root.join("calc.py"), BUGGY_CALC).unwrap();
    std::fs::write(root.join("test_calc.py"), CALC_TESTS).unwrap();
    vcs.commit(
        root,
        agentd_vcs::CommitRequest {
            message: "test: add calc tests".into(),
            paths: vec![".gitignore".into(), "calc.py".into(), "test_calc.py".into()],
            task_id: Some("setup".into()),
            trailers: vec![],
        },
    )
    .await
    .unwrap();
    vcs
}

pub const BUGGY_CALC: &str = "def add(a, b):\n    return a - b\n";
pub const FIXED_CALC: &str = "def add(a, b):\n    return a + b\n";
pub const CALC_TESTS: &str = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_add_negative():\n    assert add(-1, 1) == 0\n";

/// A workspace with real VCS and, when asked, the real test runner.
pub fn full_workspace(
    root: &Path,
    vcs: Arc<dyn agentd_vcs::Vcs>,
    with_tests: bool,
) -> TaskWorkspace {
    let ws = workspace(root).with_vcs(vcs);
    if with_tests {
        let runner = agentd_testrunner::LocalTestRunner::new(agentd_testrunner::TestingSettings {
            timeout: 120,
            ..Default::default()
        })
        .unwrap();
        ws.with_tests(Arc::new(runner))
    } else {
        ws
    }
}
