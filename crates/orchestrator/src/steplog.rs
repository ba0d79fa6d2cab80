//! Durable pipeline progress: the output of every finished step, written before the step's
//! record is completed and before its follow-up steps are enqueued.

use std::sync::Arc;

use agentd_llm::{ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, ProbeReport};
use agentd_memory::MemoryStore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::OrchestratorError;

/// The `agent_name` under which step outputs are kept in the [`MemoryStore`]; the key is
/// `<root task id>/<step>` (e.g. `0193…/implementation/0/authored`).
pub const PIPELINE_MEMORY_AGENT: &str = "agentd.pipeline";

/// Step outputs of the pipelines, in the memory store.
#[derive(Clone)]
pub(crate) struct StepLog {
    memory: Arc<dyn MemoryStore>,
}

impl StepLog {
    pub(crate) fn new(memory: Arc<dyn MemoryStore>) -> Self {
        Self { memory }
    }

    fn key(root: &str, step: &str) -> String {
        format!("{root}/{step}")
    }

    /// The saved output of `step` of pipeline `root`, if the step finished.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        root: &str,
        step: &str,
    ) -> Result<Option<T>, OrchestratorError> {
        let key = Self::key(root, step);
        match self.memory.recall(PIPELINE_MEMORY_AGENT, &key).await? {
            None => Ok(None),
            Some(entry) => serde_json::from_value(entry.value)
                .map(Some)
                .map_err(|error| OrchestratorError::InvalidTask {
                    task_id: root.to_owned(),
                    message: format!("saved output of step {step} is unreadable: {error}"),
                }),
        }
    }

    /// Saves the output of `step`; durable when this returns.
    pub(crate) async fn put<T: Serialize>(
        &self,
        root: &str,
        step: &str,
        output: &T,
    ) -> Result<(), OrchestratorError> {
        let value =
            serde_json::to_value(output).map_err(|error| OrchestratorError::InvalidTask {
                task_id: root.to_owned(),
                message: format!("output of step {step} cannot be saved: {error}"),
            })?;
        self.memory
            .remember(PIPELINE_MEMORY_AGENT, &Self::key(root, step), value)
            .await?;
        Ok(())
    }

    /// Forgets the output of `step` so it runs again (e.g. code that failed the gate).
    pub(crate) async fn forget(&self, root: &str, step: &str) -> Result<(), OrchestratorError> {
        self.memory
            .forget(PIPELINE_MEMORY_AGENT, &Self::key(root, step))
            .await?;
        Ok(())
    }

    /// Every saved step of pipeline `root`, as `(step, output)`.
    pub(crate) async fn all(&self, root: &str) -> Result<Vec<(String, Value)>, OrchestratorError> {
        let prefix = format!("{root}/");
        let mut out = Vec::new();
        let mut page = agentd_memory::Page::first(500);
        loop {
            let entries = self
                .memory
                .list_prefix(PIPELINE_MEMORY_AGENT, &prefix, page)
                .await?;
            let done = entries.len() < page.limit as usize;
            out.extend(entries.into_iter().filter_map(|entry| {
                entry
                    .key
                    .strip_prefix(&prefix)
                    .map(|step| (step.to_owned(), entry.value))
            }));
            if done {
                return Ok(out);
            }
            page = page.next();
        }
    }
}

/// Attributes every call made for one task to its pipeline root (for the per-task budget)
/// and to the agent and role, when the agent did not label the call itself.
pub(crate) struct TaskLabels {
    pub(crate) inner: Arc<dyn LlmClient>,
    pub(crate) root_id: String,
    pub(crate) agent: String,
    pub(crate) role: String,
}

impl TaskLabels {
    fn label(&self, mut request: ChatRequest) -> ChatRequest {
        let labels = &mut request.options.labels;
        labels.task_id = Some(self.root_id.clone());
        labels.agent.get_or_insert_with(|| self.agent.clone());
        labels.role.get_or_insert_with(|| self.role.clone());
        request
    }
}

#[async_trait::async_trait]
impl LlmClient for TaskLabels {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        self.inner.chat(self.label(request)).await
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        self.inner.chat_stream(self.label(request)).await
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await
    }
}
