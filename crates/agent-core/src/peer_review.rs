//! Peer review before acceptance: another role reviews a result, and its required
//! changes go back to the author, a bounded number of times.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agent::Agent;
use crate::context::AgentContext;
use crate::error::Result;
use crate::model::{Task, TaskResult, Verdict};

/// A result and the peer reviews it went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewedResult {
    /// The author's last result.
    pub result: TaskResult,
    /// Every review, in order; the last one decided.
    pub reviews: Vec<Verdict>,
    /// The author succeeded and the last review approved.
    pub approved: bool,
}

/// Runs `author` on `task`, then has `reviewer` review the result before it is accepted.
/// A rejection sends the task back to the author with the reviewer's reasoning and
/// required changes in `payload.peer_review`, at most `max_revisions` times. A result
/// that failed its own self-correction is not reviewed.
///
/// # Errors
/// As [`Agent::process_task`] and [`Agent::review`].
pub async fn process_with_peer_review(
    author: &dyn Agent,
    reviewer: &dyn Agent,
    task: &Task,
    ctx: &AgentContext,
    max_revisions: u32,
) -> Result<ReviewedResult> {
    let mut current = task.clone();
    let mut reviews = Vec::new();
    let mut revision = 0;
    loop {
        let result = author.process_task(&current, ctx).await?;
        if !result.succeeded() {
            return Ok(ReviewedResult {
                result,
                reviews,
                approved: false,
            });
        }
        let verdict = reviewer.review(&current, &result, ctx).await?;
        let approved = verdict.approve;
        let feedback = json!({
            "reviewer": verdict.role,
            "reasoning": verdict.reasoning,
            "required_changes": verdict.required_changes,
        });
        reviews.push(verdict);
        if approved || revision >= max_revisions {
            return Ok(ReviewedResult {
                result,
                reviews,
                approved,
            });
        }
        revision += 1;
        current.payload = with_review(current.payload, feedback);
    }
}

/// The payload with the latest review under `peer_review` (a non-object payload is kept
/// under `input`).
fn with_review(payload: Value, review: Value) -> Value {
    let mut object = match payload {
        Value::Object(object) => object,
        Value::Null => serde_json::Map::new(),
        other => {
            let mut object = serde_json::Map::new();
            object.insert("input".into(), other);
            object
        }
    };
    object.insert("peer_review".into(), review);
    Value::Object(object)
}
