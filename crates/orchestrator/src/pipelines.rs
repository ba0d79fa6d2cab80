//! The pipelines' steps. Each step follows the same crash-safe pattern:
//!
//! 1. if the step's output is saved in the [`StepLog`], use it (the step already ran);
//! 2. otherwise do the work, whose side effects are idempotent (files in the task's own
//!    worktree, commits with a `Task-Id` trailer, a merge that is "already up to date" the
//!    second time, a deployment keyed by the pipeline root), then save the output;
//! 3. return the next steps, each with an idempotency key `<root>:<step>`; the worker
//!    enqueues them and only then completes the record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd_agent_core::{
    Agent, Role, Task, TaskKind, TaskResult, TaskSpec, TaskWorkspace, TestSummary, Verdict,
    WorkState,
};
use agentd_deploy::DeployRequest;
use agentd_fsmanager::{FileSystemSettings, Workspace};
use agentd_memory::{NewDecision, NewTask, TaskRecord};
use agentd_testrunner::{NewTests, tests_first_gate};
use agentd_vcs::{CommitRequest, MergeApproval, MergeOutcome, MergeRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::OrchestratorError;
use crate::envelope::{Envelope, Pipeline, RELEASE_QUEUE};
use crate::orchestrator::{RepoSetup, Shared, StepDone};
use crate::steplog::StepLog;

/// Review rounds (implementation → review) before a rejected change is escalated.
pub const MAX_REVIEW_ROUNDS: u32 = 3;

/// The V-team of the decision flow, in the order their verdicts are listed.
const V_TEAM: [Role; 4] = [Role::Cfo, Role::Risk, Role::Legal, Role::TechLead];

pub(crate) async fn run_step(
    shared: &Shared,
    record: &TaskRecord,
    envelope: &Envelope,
    task: &Task,
) -> Result<StepDone, OrchestratorError> {
    let step = Step {
        shared,
        record,
        envelope,
        task,
        root: envelope.root(&record.id).to_owned(),
    };
    let started = std::time::Instant::now();
    let done = match (envelope.pipeline, envelope.step.as_str()) {
        (Pipeline::Tdd, "requirements") => step.requirements().await,
        (Pipeline::Tdd, "tests") => step.tests().await,
        (Pipeline::Tdd, "implementation") => step.implementation().await,
        (Pipeline::Tdd, "review") => step.review().await,
        (Pipeline::Tdd, "release") => step.release().await,
        (Pipeline::Decision, "intake") => step.intake().await,
        (Pipeline::Decision, "verdict") => step.verdict().await,
        (Pipeline::Decision, "decide") => step.decide().await,
        (Pipeline::Single, "work") => step.work().await,
        (pipeline, other) => Err(OrchestratorError::InvalidTask {
            task_id: record.id.clone(),
            message: format!("unknown step {other} of pipeline {}", pipeline.as_str()),
        }),
    }?;
    tracing::debug!(task_id = %record.id, step = %envelope.step, elapsed_us = started.elapsed().as_micros() as u64, "step done");
    Ok(done)
}

/// What the `tests` step saves.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TestsAuthored {
    files: Vec<String>,
    summary: String,
}

/// What the `implementation` step saves once its code passed the gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Implemented {
    files: Vec<String>,
    gate_passed: bool,
    tests: TestSummary,
    commit: String,
}

struct Step<'a> {
    shared: &'a Shared,
    record: &'a TaskRecord,
    envelope: &'a Envelope,
    task: &'a Task,
    root: String,
}

impl Step<'_> {
    fn agent(&self, role: &Role) -> Result<Arc<dyn Agent>, OrchestratorError> {
        self.shared
            .agents
            .get(role.as_str())
            .cloned()
            .ok_or_else(|| OrchestratorError::InvalidTask {
                task_id: self.record.id.clone(),
                message: format!(
                    "step {} needs a {role} agent, and none is configured",
                    self.envelope.step
                ),
            })
    }

    fn repo(&self) -> Result<&RepoSetup, OrchestratorError> {
        self.shared
            .repo
            .as_ref()
            .ok_or_else(|| OrchestratorError::InvalidTask {
                task_id: self.record.id.clone(),
                message: "the TDD pipeline needs a repository (OrchestratorDeps::repo)".into(),
            })
    }

    fn step_failed(&self, message: impl Into<String>) -> OrchestratorError {
        OrchestratorError::Step {
            task_id: self.record.id.clone(),
            step: step_name(&self.envelope.step),
            message: message.into(),
        }
    }

    /// The next step: same root, the given queue, step and task.
    fn next(&self, queue: &str, key: &str, step: &str, round: u32, task: Task) -> NewTask {
        self.shared.step_task(
            queue,
            &self.root,
            key,
            Envelope {
                task,
                pipeline: self.envelope.pipeline,
                step: step.to_owned(),
                root_id: Some(self.root.clone()),
                round,
                escalation: self.envelope.escalation,
            },
        )
    }

    /// A copy of this task for the next step, with `payload` merged in.
    fn carry(&self, kind: TaskKind, role: Role, extra: Value) -> Task {
        let mut task = self.envelope.task.clone();
        task.kind = kind;
        task.assigned_roles = vec![role];
        let mut payload = match &self.task.payload {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        if let Value::Object(extra) = extra {
            payload.extend(extra);
        }
        task.payload = Value::Object(payload);
        task
    }

    async fn activity(&self, agent: &str, details: Value) {
        self.shared
            .log_activity(
                agent,
                &format!("{}:{}", self.envelope.pipeline.as_str(), self.envelope.step),
                json!({ "task_id": self.record.id, "root_id": self.root, "details": details }),
            )
            .await;
    }

    /// Runs `agent` on this task, failing the step when the agent's result failed.
    async fn process(
        &self,
        agent: &Arc<dyn Agent>,
        workspace: Option<TaskWorkspace>,
    ) -> Result<TaskResult, OrchestratorError> {
        let ctx = self.shared.agent_context(agent, &self.root, workspace)?;
        let result = agent.process_task(self.task, &ctx).await?;
        if !result.succeeded() {
            let issues = result.all_issues();
            return Err(self.step_failed(format!(
                "{} could not do it: {}{}",
                agent.role(),
                result.summary,
                if issues.is_empty() {
                    String::new()
                } else {
                    format!("; issues: {}", issues.join("; "))
                }
            )));
        }
        Ok(result)
    }

    // ---- TDD ----

    async fn requirements(&self) -> Result<StepDone, OrchestratorError> {
        let saved: Option<Value> = self.shared.steps.get(&self.root, "requirements").await?;
        let requirements = match saved {
            Some(saved) => saved,
            None => {
                let product = self.agent(&Role::Product)?;
                let result = self.process(&product, None).await?;
                let saved = json!({ "summary": result.summary, "output": result.output });
                self.shared
                    .steps
                    .put(&self.root, "requirements", &saved)
                    .await?;
                self.activity(product.name(), saved.clone()).await;
                saved
            }
        };
        let next_task = self.carry(
            TaskKind::Tests,
            Role::Qa,
            json!({ "requirements": requirements }),
        );
        Ok(StepDone {
            result: requirements,
            next: vec![self.next(Role::Qa.as_str(), "tests", "tests", 0, next_task)],
            merged: false,
            deployed: false,
        })
    }

    async fn tests(&self) -> Result<StepDone, OrchestratorError> {
        let repo = self.repo()?;
        let worktree = ensure_worktree(repo, &self.shared.steps, &self.root).await?;
        let authored: TestsAuthored =
            match self.shared.steps.get(&self.root, "tests/authored").await? {
                Some(saved) => saved,
                None => {
                    let qa = self.agent(&Role::Qa)?;
                    let result = self
                        .process(&qa, Some(task_workspace(repo, &worktree)?))
                        .await?;
                    if result.artifacts.files_written.is_empty() {
                        return Err(self.step_failed("QA wrote no test files"));
                    }
                    let authored = TestsAuthored {
                        files: result.artifacts.files_written.clone(),
                        summary: result.summary.clone(),
                    };
                    // Saved before the red check and the commit: a replay keeps these files.
                    self.shared
                        .steps
                        .put(&self.root, "tests/authored", &authored)
                        .await?;
                    self.activity(
                        qa.name(),
                        json!({ "files": authored.files, "summary": authored.summary }),
                    )
                    .await;
                    authored
                }
            };
        let saved: Option<Value> = self.shared.steps.get(&self.root, "tests").await?;
        let saved = match saved {
            Some(saved) => saved,
            None => {
                // Tests first: the new tests must fail before any code is written.
                let report = repo
                    .tests
                    .run_tests(&worktree, &self.test_options())
                    .await?;
                let red = TestSummary::from_report(&report);
                if report.is_green() {
                    self.shared
                        .steps
                        .forget(&self.root, "tests/authored")
                        .await?;
                    return Err(self.step_failed(format!(
                        "the new tests already pass without any code ({} passed); tests first means they must fail",
                        red.passed
                    )));
                }
                let commit = repo
                    .vcs
                    .commit(
                        &worktree,
                        CommitRequest {
                            message: format!("test: {}\n\n{}", self.task.title, authored.summary),
                            paths: authored.files.iter().map(PathBuf::from).collect(),
                            task_id: Some(self.record.id.clone()),
                            trailers: vec![agentd_vcs::Trailer::new("Agent-Role", "qa")],
                        },
                    )
                    .await?;
                let saved = json!({ "files": authored.files, "red": red, "commit": commit.id });
                self.shared.steps.put(&self.root, "tests", &saved).await?;
                saved
            }
        };
        let next_task = self.carry(
            TaskKind::Implementation,
            Role::Developer,
            json!({ "test_files": authored.files, "failing_tests": saved.get("red") }),
        );
        Ok(StepDone {
            result: saved,
            next: vec![self.next(
                Role::Developer.as_str(),
                "implementation:0",
                "implementation",
                0,
                next_task,
            )],
            merged: false,
            deployed: false,
        })
    }

    fn test_options(&self) -> agentd_testrunner::RunOptions {
        let mut options = self
            .shared
            .repo
            .as_ref()
            .map(|r| r.test_options.clone())
            .unwrap_or_default();
        options.task_id = Some(self.record.id.clone());
        options
    }

    async fn implementation(&self) -> Result<StepDone, OrchestratorError> {
        let repo = self.repo()?;
        let round = self.envelope.round;
        let worktree = ensure_worktree(repo, &self.shared.steps, &self.root).await?;
        let authored_key = format!("implementation/{round}/authored");
        let done_key = format!("implementation/{round}");
        let implemented: Implemented = match self.shared.steps.get(&self.root, &done_key).await? {
            Some(saved) => saved,
            None => {
                let developer = self.agent(&Role::Developer)?;
                let result: TaskResult = match self
                    .shared
                    .steps
                    .get(&self.root, &authored_key)
                    .await?
                {
                    Some(saved) => saved,
                    None => {
                        let result = self
                            .process(&developer, Some(task_workspace(repo, &worktree)?))
                            .await?;
                        self.shared
                            .steps
                            .put(&self.root, &authored_key, &result)
                            .await?;
                        self.activity(developer.name(), json!({ "files": result.artifacts.files_written, "summary": result.summary })).await;
                        result
                    }
                };
                let tests: TestsAuthored = self
                    .shared
                    .steps
                    .get(&self.root, "tests/authored")
                    .await?
                    .ok_or_else(|| self.step_failed("the tests step left no test files"))?;
                let base = fresh_base_worktree(repo, &self.root).await?;
                let gate = tests_first_gate(
                    repo.tests.as_ref(),
                    &base,
                    &worktree,
                    &NewTests {
                        files: tests.files.iter().map(PathBuf::from).collect(),
                        ids: Vec::new(),
                    },
                    &self.test_options(),
                )
                .await?;
                if !gate.passed {
                    // The code runs again on the next attempt, with the gate's problems.
                    self.shared.steps.forget(&self.root, &authored_key).await?;
                    return Err(self.step_failed(format!(
                        "tests-first gate failed: {}",
                        gate.problems.join("; ")
                    )));
                }
                let test_files: Vec<&String> = tests.files.iter().collect();
                let code_files: Vec<PathBuf> = result
                    .artifacts
                    .files_written
                    .iter()
                    .filter(|f| !test_files.contains(f))
                    .map(PathBuf::from)
                    .collect();
                if code_files.is_empty() {
                    self.shared.steps.forget(&self.root, &authored_key).await?;
                    return Err(self.step_failed("the developer changed no file besides the tests"));
                }
                let commit = repo
                    .vcs
                    .commit(
                        &worktree,
                        CommitRequest {
                            message: format!("feat: {}\n\n{}", self.task.title, result.summary),
                            paths: code_files.clone(),
                            task_id: Some(self.record.id.clone()),
                            trailers: vec![agentd_vcs::Trailer::new("Agent-Role", "developer")],
                        },
                    )
                    .await?;
                let report = repo
                    .tests
                    .run_tests(&worktree, &self.test_options())
                    .await?;
                let implemented = Implemented {
                    files: code_files
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect(),
                    gate_passed: gate.passed,
                    tests: TestSummary::from_report(&report),
                    commit: commit.id,
                };
                if !report.is_green() {
                    self.shared.steps.forget(&self.root, &authored_key).await?;
                    return Err(self.step_failed(format!(
                        "the suite is not green after the commit: {:?}",
                        implemented.tests
                    )));
                }
                self.shared
                    .steps
                    .put(&self.root, &done_key, &implemented)
                    .await?;
                implemented
            }
        };
        let next_task = self.carry(
            TaskKind::Review,
            Role::TechLead,
            json!({ "commit": implemented.commit, "files": implemented.files, "tests": implemented.tests }),
        );
        Ok(StepDone {
            result: serde_json::to_value(&implemented).unwrap_or_default(),
            next: vec![self.next(
                Role::TechLead.as_str(),
                &format!("review:{round}"),
                "review",
                round,
                next_task,
            )],
            merged: false,
            deployed: false,
        })
    }

    async fn review(&self) -> Result<StepDone, OrchestratorError> {
        let repo = self.repo()?;
        let round = self.envelope.round;
        let key = format!("review/{round}");
        let verdict: Verdict = match self.shared.steps.get(&self.root, &key).await? {
            Some(saved) => saved,
            None => {
                let tech_lead = self.agent(&Role::TechLead)?;
                let developer_result: TaskResult = self
                    .shared
                    .steps
                    .get(&self.root, &format!("implementation/{round}/authored"))
                    .await?
                    .ok_or_else(|| self.step_failed("no implementation to review"))?;
                let worktree = ensure_worktree(repo, &self.shared.steps, &self.root).await?;
                let mut task = self.task.clone();
                // The Tech Lead reviews the diff since `payload.base`: the fork point.
                let base = fork_point(repo, &self.root).await?;
                if let Value::Object(map) = &mut task.payload {
                    map.insert("base".into(), Value::String(base));
                }
                let ctx = self.shared.agent_context(
                    &tech_lead,
                    &self.root,
                    Some(task_workspace(repo, &worktree)?),
                )?;
                let verdict = tech_lead.review(&task, &developer_result, &ctx).await?;
                self.shared.steps.put(&self.root, &key, &verdict).await?;
                self.activity(tech_lead.name(), json!({ "approve": verdict.approve, "score": verdict.score, "required_changes": verdict.required_changes })).await;
                verdict
            }
        };
        let result = serde_json::to_value(&verdict).unwrap_or_default();
        if verdict.approve {
            let next_task = self.carry(
                TaskKind::Review,
                Role::TechLead,
                json!({ "verdict": result }),
            );
            return Ok(StepDone {
                result,
                next: vec![self.next(RELEASE_QUEUE, "release", "release", round, next_task)],
                merged: false,
                deployed: false,
            });
        }
        if round + 1 >= MAX_REVIEW_ROUNDS {
            return Err(OrchestratorError::Rejected {
                task_id: self.record.id.clone(),
                step: "review",
                message: format!(
                    "the Tech Lead rejected the change {MAX_REVIEW_ROUNDS} times; last required changes: {}",
                    verdict.required_changes.join("; ")
                ),
            });
        }
        let next_task = self.carry(
            TaskKind::Implementation,
            Role::Developer,
            json!({ "required_changes": verdict.required_changes, "review": verdict.reasoning }),
        );
        Ok(StepDone {
            result,
            next: vec![self.next(
                Role::Developer.as_str(),
                &format!("implementation:{}", round + 1),
                "implementation",
                round + 1,
                next_task,
            )],
            merged: false,
            deployed: false,
        })
    }

    async fn release(&self) -> Result<StepDone, OrchestratorError> {
        let repo = self.repo()?;
        let branch = feature_branch(&self.root);
        let saved: Option<Value> = self.shared.steps.get(&self.root, "release/merge").await?;
        let (merge, fresh_merge) = match saved {
            Some(saved) => (saved, false),
            None => {
                let round = self.envelope.round;
                let implemented: Implemented = self
                    .shared
                    .steps
                    .get(&self.root, &format!("implementation/{round}"))
                    .await?
                    .ok_or_else(|| self.step_failed("nothing implemented to release"))?;
                let verdict: Verdict = self
                    .shared
                    .steps
                    .get(&self.root, &format!("review/{round}"))
                    .await?
                    .ok_or_else(|| self.step_failed("no review to release on"))?;
                let approval = MergeApproval {
                    reviewed: verdict.approve,
                    tests_passed: implemented.gate_passed && implemented.tests.is_green(),
                    reviewer: Some(Role::TechLead.as_str().to_owned()),
                };
                let outcome = repo
                    .vcs
                    .merge(
                        &repo.repo,
                        MergeRequest {
                            source: branch.clone(),
                            into: repo.main_branch.clone(),
                            approval,
                            message: Some(format!("Merge {branch}: {}", self.task.title)),
                            task_id: Some(self.root.clone()),
                        },
                    )
                    .await?;
                let head = match &outcome {
                    MergeOutcome::AlreadyUpToDate { head } => head.clone(),
                    MergeOutcome::FastForward { to, .. } => to.clone(),
                    MergeOutcome::Merged { commit } => commit.clone(),
                };
                let merge = json!({ "branch": branch, "outcome": outcome, "head": head });
                self.shared
                    .steps
                    .put(&self.root, "release/merge", &merge)
                    .await?;
                (merge, true)
            }
        };
        let head = merge
            .get("head")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut deployed = false;
        let deployment = match &repo.deployer {
            None => Value::Null,
            Some(deployer) => match self
                .shared
                .steps
                .get::<Value>(&self.root, "release/deploy")
                .await?
            {
                Some(saved) => saved,
                None => {
                    // Deploy the protected branch's tip (normally this merge; after a crash
                    // possibly a later release's, which contains it: ci_cd deploys only a
                    // tip). The deployer's history makes this idempotent per (revision, key).
                    let tip = repo
                        .vcs
                        .log(&repo.repo, Some(repo.main_branch.clone()), 1)
                        .await?
                        .into_iter()
                        .next()
                        .map_or(head.clone(), |commit| commit.id);
                    let record = deployer
                        .deploy(&DeployRequest {
                            revision: tip,
                            environment: repo.environment.clone(),
                            idempotency_key: self.root.clone(),
                        })
                        .await?;
                    let saved = json!({ "id": record.id, "state": record.state, "revision": record.revision, "backend": record.backend });
                    self.shared
                        .steps
                        .put(&self.root, "release/deploy", &saved)
                        .await?;
                    deployed = true;
                    saved
                }
            },
        };
        let summary = json!({ "merge": merge, "deployment": deployment });
        if self
            .shared
            .steps
            .get::<Value>(&self.root, "release")
            .await?
            .is_none()
        {
            self.shared
                .steps
                .put(&self.root, "release", &summary)
                .await?;
            let decision = NewDecision {
                agent_name: "orchestrator".into(),
                decision_type: "release".into(),
                decision_data: json!({ "task_id": self.root, "title": self.task.title, "merge": summary["merge"], "deployment": summary["deployment"] }),
            };
            if let Err(error) = self.shared.memory.append_decisions(vec![decision]).await {
                tracing::warn!(%error, "release decision not recorded");
            }
            self.activity("orchestrator", summary.clone()).await;
            cleanup_worktrees(repo, &self.root).await;
        }
        Ok(StepDone {
            result: summary,
            next: Vec::new(),
            merged: fresh_merge,
            deployed,
        })
    }

    // ---- Decision ----

    async fn intake(&self) -> Result<StepDone, OrchestratorError> {
        let reviewers: Vec<Role> = match self.shared.steps.get(&self.root, "intake").await? {
            Some(saved) => saved,
            None => {
                let reviewers: Vec<Role> = V_TEAM
                    .iter()
                    .filter(|r| self.shared.has_agent(r))
                    .cloned()
                    .collect();
                if reviewers.is_empty() {
                    return Err(OrchestratorError::InvalidTask {
                        task_id: self.record.id.clone(),
                        message: "a proposal needs at least one V-team agent (cfo, risk, legal, tech_lead)".into(),
                    });
                }
                self.shared
                    .steps
                    .put(&self.root, "intake", &reviewers)
                    .await?;
                reviewers
            }
        };
        let next = reviewers
            .iter()
            .map(|role| {
                let task = self.carry(TaskKind::Proposal, role.clone(), json!({}));
                self.next(
                    role.as_str(),
                    &format!("verdict:{role}"),
                    "verdict",
                    0,
                    task,
                )
            })
            .collect();
        Ok(StepDone {
            result: json!({ "reviewers": reviewers }),
            next,
            merged: false,
            deployed: false,
        })
    }

    async fn verdict(&self) -> Result<StepDone, OrchestratorError> {
        let role: Role = self.record.role.parse()?;
        let key = format!("verdict/{role}");
        let verdict: Verdict = match self.shared.steps.get(&self.root, &key).await? {
            Some(saved) => saved,
            None => {
                let agent = self.agent(&role)?;
                let ctx = self.shared.agent_context(&agent, &self.root, None)?;
                let result = agent.process_task(self.task, &ctx).await?;
                let verdict = match result.verdict {
                    Some(verdict) => verdict,
                    None => {
                        return Err(
                            self.step_failed(format!("{role} gave no verdict: {}", result.summary))
                        );
                    }
                };
                // Saved before looking at the others: the last reviewer to save sees all.
                self.shared.steps.put(&self.root, &key, &verdict).await?;
                self.activity(agent.name(), json!({ "approve": verdict.approve, "score": verdict.score, "criteria": verdict.criteria })).await;
                verdict
            }
        };
        let reviewers: Vec<Role> = self
            .shared
            .steps
            .get(&self.root, "intake")
            .await?
            .unwrap_or_default();
        let mut all = true;
        for reviewer in &reviewers {
            if self
                .shared
                .steps
                .get::<Value>(&self.root, &format!("verdict/{reviewer}"))
                .await?
                .is_none()
            {
                all = false;
            }
        }
        let mut next = Vec::new();
        if all {
            let task = self.carry(TaskKind::Proposal, Role::Ceo, json!({}));
            next.push(self.next(Role::Ceo.as_str(), "decide", "decide", 0, task));
        }
        Ok(StepDone {
            result: serde_json::to_value(&verdict).unwrap_or_default(),
            next,
            merged: false,
            deployed: false,
        })
    }

    async fn decide(&self) -> Result<StepDone, OrchestratorError> {
        let ceo = self.agent(&Role::Ceo)?;
        let decision: Verdict = match self.shared.steps.get(&self.root, "decide").await? {
            Some(saved) => saved,
            None => {
                let reviewers: Vec<Role> = self
                    .shared
                    .steps
                    .get(&self.root, "intake")
                    .await?
                    .unwrap_or_default();
                let mut verdicts = Vec::new();
                for reviewer in &reviewers {
                    if let Some(verdict) = self
                        .shared
                        .steps
                        .get::<Verdict>(&self.root, &format!("verdict/{reviewer}"))
                        .await?
                    {
                        verdicts.push(verdict);
                    }
                }
                let ctx = self.shared.agent_context(&ceo, &self.root, None)?;
                let decision = ceo.decide(self.task, &verdicts, &ctx).await?;
                self.shared
                    .steps
                    .put(&self.root, "decide", &decision)
                    .await?;
                let record = NewDecision {
                    agent_name: ceo.name().to_owned(),
                    decision_type: "proposal".into(),
                    decision_data: json!({
                        "task_id": self.root,
                        "title": self.task.title,
                        "approve": decision.approve,
                        "score": decision.score,
                        "reasoning": decision.reasoning,
                        "verdicts": verdicts,
                    }),
                };
                if let Err(error) = self.shared.memory.append_decisions(vec![record]).await {
                    tracing::warn!(%error, "proposal decision not recorded in the decision history");
                }
                decision
            }
        };
        let mut next = Vec::new();
        if decision.approve {
            let specs: Vec<TaskSpec> =
                match self.shared.steps.get(&self.root, "decide/project").await? {
                    Some(saved) => saved,
                    None => {
                        let state = WorkState {
                            goal: Some(format!(
                                "Carry out the approved proposal: {}\n{}",
                                self.task.title, self.task.description
                            )),
                            max_tasks: u32::try_from(self.shared.settings.max_generated_tasks)
                                .unwrap_or(u32::MAX),
                            ..WorkState::default()
                        };
                        let ctx = self.shared.agent_context(&ceo, &self.root, None)?;
                        let specs = ceo.generate_tasks(&state, &ctx).await?;
                        self.shared
                            .steps
                            .put(&self.root, "decide/project", &specs)
                            .await?;
                        specs
                    }
                };
            for (index, mut spec) in specs.into_iter().enumerate() {
                spec.parent_id = Some(self.root.clone());
                next.push(
                    self.shared
                        .root_task(spec, Some(format!("{}:project:{index}", self.root))),
                );
            }
        }
        Ok(StepDone {
            result: serde_json::to_value(&decision).unwrap_or_default(),
            next,
            merged: false,
            deployed: false,
        })
    }

    // ---- Single ----

    async fn work(&self) -> Result<StepDone, OrchestratorError> {
        let role: Role = self.record.role.parse()?;
        let result: TaskResult = match self.shared.steps.get(&self.root, "work").await? {
            Some(saved) => saved,
            None => {
                let agent = self.agent(&role)?;
                let result = self.process(&agent, None).await?;
                self.shared.steps.put(&self.root, "work", &result).await?;
                self.activity(
                    agent.name(),
                    json!({ "summary": result.summary, "follow_ups": result.follow_ups.len() }),
                )
                .await;
                result
            }
        };
        let next = result
            .follow_ups
            .iter()
            .cloned()
            .enumerate()
            .map(|(index, mut spec)| {
                spec.parent_id = Some(self.record.id.clone());
                self.shared
                    .root_task(spec, Some(format!("{}:follow_up:{index}", self.record.id)))
            })
            .collect();
        Ok(StepDone {
            result: serde_json::to_value(&result).unwrap_or_default(),
            next,
            merged: false,
            deployed: false,
        })
    }
}

fn step_name(step: &str) -> &'static str {
    match step {
        "requirements" => "requirements",
        "tests" => "tests",
        "implementation" => "implementation",
        "review" => "review",
        "release" => "release",
        "intake" => "intake",
        "verdict" => "verdict",
        "decide" => "decide",
        _ => "work",
    }
}

/// The feature branch of pipeline `root`.
pub fn feature_branch(root: &str) -> String {
    format!("feature/task-{root}")
}

fn worktree_path(repo: &RepoSetup, root: &str) -> PathBuf {
    repo.worktrees.join(root)
}

fn base_path(repo: &RepoSetup, root: &str) -> PathBuf {
    repo.worktrees.join(format!("{root}-base"))
}

/// The task's linked worktree on its feature branch, created on first use from the
/// protected branch's tip and reused as it is after a restart. Its readiness is saved
/// (step `worktree`) once `add_worktree` returned: a directory without that record is a
/// creation a crash interrupted (maybe a partial checkout), and is rebuilt.
async fn ensure_worktree(
    repo: &RepoSetup,
    steps: &StepLog,
    root: &str,
) -> Result<PathBuf, OrchestratorError> {
    let path = worktree_path(repo, root);
    let ready = steps.get::<Value>(root, "worktree").await?.is_some();
    if ready && path.join(".git").exists() {
        return Ok(path);
    }
    tokio::fs::create_dir_all(&repo.worktrees)
        .await
        .map_err(|error| OrchestratorError::InvalidTask {
            task_id: root.to_owned(),
            message: format!(
                "cannot create the worktree directory {}: {error}",
                repo.worktrees.display()
            ),
        })?;
    remove_worktree_dir(repo, &path, root).await?;
    let info = repo
        .vcs
        .add_worktree(
            &repo.repo,
            &path,
            &feature_branch(root),
            Some(repo.main_branch.clone()),
        )
        .await?;
    steps
        .put(
            root,
            "worktree",
            &json!({ "branch": info.branch, "base": info.head }),
        )
        .await?;
    Ok(path)
}

/// Removes a worktree directory and its registration, whatever state a crash left it in.
async fn remove_worktree_dir(
    repo: &RepoSetup,
    path: &Path,
    root: &str,
) -> Result<(), OrchestratorError> {
    if path.exists() {
        if let Err(error) = repo.vcs.remove_worktree(&repo.repo, path, true).await {
            tracing::debug!(%error, path = %path.display(), "not a registered worktree; removing the directory");
        }
        if path.exists() {
            tokio::fs::remove_dir_all(path).await.map_err(|error| {
                OrchestratorError::InvalidTask {
                    task_id: root.to_owned(),
                    message: format!(
                        "cannot remove the stale worktree {}: {error}",
                        path.display()
                    ),
                }
            })?;
        }
    }
    Ok(())
}

/// A fresh second worktree at the commit the feature branch started from, for the gate's
/// base. The gate uses the base as scratch space (it lays the new tests on top and puts
/// them back), so a gate interrupted by a crash may leave it dirty: it is rebuilt each time.
async fn fresh_base_worktree(repo: &RepoSetup, root: &str) -> Result<PathBuf, OrchestratorError> {
    let path = base_path(repo, root);
    remove_worktree_dir(repo, &path, root).await?;
    let base = fork_point(repo, root).await?;
    repo.vcs
        .add_worktree(
            &repo.repo,
            &path,
            &format!("agentd/base-{root}"),
            Some(base),
        )
        .await?;
    Ok(path)
}

/// The commit the feature branch of `root` started from: the newest commit of the feature
/// branch that the protected branch also has.
async fn fork_point(repo: &RepoSetup, root: &str) -> Result<String, OrchestratorError> {
    let feature = worktree_path(repo, root);
    let log = repo.vcs.log(&feature, None, 1000).await?;
    let main_log = repo
        .vcs
        .log(&repo.repo, Some(repo.main_branch.clone()), 1000)
        .await?;
    Ok(log
        .iter()
        .find(|c| main_log.iter().any(|m| m.id == c.id))
        .map(|c| c.id.clone())
        .unwrap_or_else(|| repo.main_branch.clone()))
}

async fn cleanup_worktrees(repo: &RepoSetup, root: &str) {
    for path in [worktree_path(repo, root), base_path(repo, root)] {
        if path.exists()
            && let Err(error) = repo.vcs.remove_worktree(&repo.repo, &path, true).await
        {
            tracing::warn!(%error, path = %path.display(), "worktree not removed");
        }
    }
}

fn task_workspace(repo: &RepoSetup, worktree: &Path) -> Result<TaskWorkspace, OrchestratorError> {
    let workspace = Workspace::open(FileSystemSettings::new(worktree))?;
    Ok(TaskWorkspace::new(workspace)
        .with_vcs(Arc::clone(&repo.vcs))
        .with_tests(Arc::clone(&repo.tests)))
}
