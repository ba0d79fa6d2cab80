//! What the orchestrator stores as a task record's payload, and how a task is routed.

use agentd_agent_core::{Role, Task, TaskKind, TaskSpec};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The queue of the release step (merge and deploy). It has no agent: the orchestrator
/// runs it itself, with one worker, so merges into the protected branch are serialised.
pub const RELEASE_QUEUE: &str = "release";

/// Which flow a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pipeline {
    /// Requirements → tests first → code → review → merge → deploy.
    Tdd,
    /// V-team verdicts in parallel → the CEO decides → the project's tasks.
    Decision,
    /// One role does the task; its follow-ups become child tasks.
    Single,
}

impl Pipeline {
    /// `tdd`, `decision` or `single`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tdd => "tdd",
            Self::Decision => "decision",
            Self::Single => "single",
        }
    }
}

/// The JSON payload of every task record the orchestrator enqueues: the agent-level task
/// and where it stands in its pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The task as the agents see it (its `id` is filled from the record on claim).
    pub task: Task,
    /// The flow.
    pub pipeline: Pipeline,
    /// The step this record performs (`requirements`, `tests`, `implementation`, `review`,
    /// `release`, `intake`, `verdict`, `decide`, `work`).
    pub step: String,
    /// The pipeline's root task (the submitted or generated task); `None` for the root itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    /// Review round of an `implementation` or `review` step (0 first).
    #[serde(default)]
    pub round: u32,
    /// True for escalation tasks, which are not escalated again when they fail.
    #[serde(default)]
    pub escalation: bool,
}

impl Envelope {
    /// The root task's id: `root_id`, or the record's own id for a root.
    pub fn root<'a>(&'a self, record_id: &'a str) -> &'a str {
        self.root_id.as_deref().unwrap_or(record_id)
    }
}

/// Where a new root task goes: its pipeline, first step and queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The flow.
    pub pipeline: Pipeline,
    /// The first step.
    pub step: &'static str,
    /// The queue (role) of the first step.
    pub queue: String,
}

/// Routes a new task: proposals go to the decision flow (the CEO's intake), code-changing
/// kinds to the TDD flow (Product's requirements, or QA's tests when there is no Product
/// agent), everything else to its first assigned role, or the role its kind implies.
pub fn route(task: &TaskSpec, has_role: impl Fn(&Role) -> bool) -> Route {
    match task.kind {
        TaskKind::Proposal => Route {
            pipeline: Pipeline::Decision,
            step: "intake",
            queue: Role::Ceo.as_str().to_owned(),
        },
        TaskKind::Feature
        | TaskKind::Bugfix
        | TaskKind::Refactor
        | TaskKind::Implementation
        | TaskKind::Tests => {
            if has_role(&Role::Product) {
                Route {
                    pipeline: Pipeline::Tdd,
                    step: "requirements",
                    queue: Role::Product.as_str().to_owned(),
                }
            } else {
                Route {
                    pipeline: Pipeline::Tdd,
                    step: "tests",
                    queue: Role::Qa.as_str().to_owned(),
                }
            }
        }
        _ => {
            let role = task
                .assigned_roles
                .first()
                .cloned()
                .unwrap_or_else(|| role_for_kind(&task.kind));
            Route {
                pipeline: Pipeline::Single,
                step: "work",
                queue: role.as_str().to_owned(),
            }
        }
    }
}

/// The role a single-step task of `kind` goes to when it names none.
pub fn role_for_kind(kind: &TaskKind) -> Role {
    match kind {
        TaskKind::Requirements => Role::Product,
        TaskKind::Tests => Role::Qa,
        TaskKind::Implementation => Role::Developer,
        TaskKind::Review => Role::TechLead,
        TaskKind::Research => Role::Product,
        TaskKind::Chore => Role::Developer,
        _ => Role::Ceo,
    }
}

/// The fingerprint of a task for loop detection: the queue, the kind and the title
/// lower-cased with digits and punctuation dropped, so "Fix test 3" and "fix test 4!"
/// are the same work.
pub fn fingerprint(queue: &str, task: &Task) -> String {
    let title: String = task
        .title
        .chars()
        .filter(|c| c.is_alphabetic() || c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let kind = serde_json::to_string(&task.kind).unwrap_or_default();
    let digest = Sha256::digest(format!("{queue}\n{kind}\n{title}").as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_numbers_case_and_punctuation() {
        let a = Task::new("1", "Fix test 3", "x");
        let b = Task::new("2", "fix  TEST 4!", "y");
        let c = Task::new("3", "Write docs", "x");
        assert_eq!(fingerprint("developer", &a), fingerprint("developer", &b));
        assert_ne!(fingerprint("developer", &a), fingerprint("developer", &c));
        assert_ne!(fingerprint("developer", &a), fingerprint("qa", &a));
    }

    #[test]
    fn routing_by_kind_and_roles() {
        let mut spec = TaskSpec::new("t", "d");
        assert_eq!(route(&spec, |_| true).queue, "product");
        assert_eq!(route(&spec, |r| *r != Role::Product).step, "tests");
        spec.kind = TaskKind::Proposal;
        assert_eq!(route(&spec, |_| true).pipeline, Pipeline::Decision);
        spec.kind = TaskKind::Research;
        assert_eq!(route(&spec, |_| true).queue, "product");
        spec.assigned_roles = vec![Role::Security];
        assert_eq!(route(&spec, |_| true).queue, "security");
    }
}
