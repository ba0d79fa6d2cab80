//! The Developer: writes code until the tests pass, through an LLM tool-calling loop.

use std::collections::{BTreeSet, HashMap};

use agentd_llm::{Message, ResponseFormat};
use agentd_testrunner::RunOptions;
use async_trait::async_trait;
use serde_json::json;

use crate::changes::{self, blocking_files, describe_changes};
use crate::error::{AgentError, Result};
use crate::journal::{self, activity};
use crate::model::Task;
use crate::model::TestSummary;
use crate::roles::is_test_path;
use crate::roles::tools::{self, ToolBox, call_fingerprint, describe_report, stable_text};
use crate::runtime::{Behaviour, Draft, Feedback, Run};

/// Upper bound on files listed in the implement prompt.
const MAX_LISTED_FILES: usize = 200;
/// At most this many failing tests are reported as issues of an attempt.
const MAX_FAILURE_ISSUES: usize = 10;

pub(crate) struct Developer;

#[async_trait]
impl Behaviour for Developer {
    fn attempt_prompt(&self, _task: &Task) -> &'static str {
        "developer/implement.v1"
    }

    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        let mut calls = Vec::new();
        let outcome = self.tool_loop(run, feedback, &mut calls).await;
        // One activity per attempt, not per call: the log feeds later prompts' context.
        journal::activity(
            run.ctx.memory.as_ref(),
            &run.core.name,
            activity::TOOL_CALLS,
            json!({"task_id": run.task.id, "attempt": feedback.attempt, "calls": calls}),
        )
        .await?;
        outcome
    }

    /// The whole suite must pass; its failures are the attempt's issues.
    async fn objective_issues(&self, run: &mut Run<'_>, draft: &mut Draft) -> Result<Vec<String>> {
        let Some(ws) = run.ctx.workspace.clone() else {
            return Ok(Vec::new());
        };
        draft.evidence = describe_changes(&ws, None).await?;
        let Some(runner) = &ws.tests else {
            return Ok(Vec::new());
        };
        let report = run_suite(runner.as_ref(), &ws.root, &run.task.id).await?;
        draft.tests = Some(TestSummary::from_report(&report));
        if report.is_green() {
            return Ok(Vec::new());
        }
        let description = stable_text(&describe_report(&report), &ws.root);
        let mut issues = vec![format!(
            "the test suite is not green: {}",
            first_line(&description)
        )];
        issues.extend(report.failures().take(MAX_FAILURE_ISSUES).map(|t| {
            let message = stable_text(t.message.as_deref().unwrap_or("no message"), &ws.root);
            format!("failing test {}: {}", t.id, changes::cut(&message, 300))
        }));
        Ok(issues)
    }

    async fn on_accept(&self, run: &mut Run<'_>, draft: &mut Draft) -> Result<()> {
        commit_if_configured(run, draft).await
    }
}

impl Developer {
    /// One attempt's tool loop; `calls` collects what was called, for the activity log.
    async fn tool_loop(
        &self,
        run: &mut Run<'_>,
        feedback: &Feedback,
        calls: &mut Vec<serde_json::Value>,
    ) -> Result<Draft> {
        let ws = run
            .ctx
            .workspace
            .clone()
            .ok_or_else(|| run.missing("a workspace"))?;
        let files = list_files(&ws).await;
        let protected_tests: BTreeSet<String> =
            files.iter().filter(|p| is_test_path(p)).cloned().collect();
        let framework = match &ws.tests {
            Some(runner) => runner
                .detect_framework(&ws.root)
                .await
                .ok()
                .map(|f| f.to_string()),
            None => None,
        };
        // Where the suite stands before this attempt: often the model needs no tool step to
        // learn which tests fail.
        let current_tests = match &ws.tests {
            Some(runner) => Some(TestSummary::from_report(
                &run_suite(runner.as_ref(), &ws.root, &run.task.id).await?,
            )),
            None => None,
        };
        let policy = run.core.config.correction.clone();
        let prompt = run.render(
            self.attempt_prompt(run.task),
            json!({
                "files": files,
                "framework": framework,
                "tests": current_tests,
                "feedback": feedback,
                "max_steps": policy.max_tool_steps,
            }),
        )?;
        let system = run.core.system_prompt.clone();
        let toolbox = ToolBox {
            ws: &ws,
            task_id: &run.task.id,
            protected_tests: &protected_tests,
        };
        let definitions = tools::definitions();
        let mut messages = vec![Message::user(prompt)];
        let mut draft = Draft::default();
        // Identical calls are only "repeats" while the workspace is unchanged.
        let mut workspace_version = 0u32;
        let mut repeated_calls: HashMap<String, u32> = HashMap::new();
        let mut repeated_failures: HashMap<String, u32> = HashMap::new();
        let mut consecutive_malformed = 0u32;
        let mut finished = None;

        for step in 1..=policy.max_tool_steps {
            let response = run
                .session
                .chat(
                    &system,
                    messages.clone(),
                    definitions.clone(),
                    ResponseFormat::Text,
                    feedback.bypass_cache(),
                    "the developer tool loop",
                )
                .await?;
            messages.push(response.to_message());
            if response.tool_calls.is_empty() {
                consecutive_malformed += 1;
                if consecutive_malformed > run.session.max_malformed_retries() {
                    return Err(AgentError::MalformedOutput {
                        role: run.core.role.clone(),
                        what: "a tool call".into(),
                        attempts: consecutive_malformed,
                        last_problem: "the answer called no tool".into(),
                    });
                }
                messages.push(Message::user(
                    "You answered without calling a tool. Work through the tools, and call `finish` when the tests pass.",
                ));
                continue;
            }
            for call in &response.tool_calls {
                let fingerprint = format!("{workspace_version}:{}", call_fingerprint(call));
                let seen = repeated_calls.entry(fingerprint).or_insert(0);
                *seen += 1;
                if *seen >= policy.loop_repeat_limit {
                    draft.stuck = Some(format!(
                        "the same call {} was made {} times without any change in between",
                        call_fingerprint(call),
                        seen
                    ));
                    draft.summary = format!("stuck after {step} steps");
                    return Ok(draft);
                }
                let outcome = toolbox.run(call).await;
                calls.push(json!({"step": step, "tool": call.name, "ok": !outcome.is_error}));
                if outcome.malformed {
                    consecutive_malformed += 1;
                    if consecutive_malformed > run.session.max_malformed_retries() {
                        return Err(AgentError::MalformedOutput {
                            role: run.core.role.clone(),
                            what: format!("the tool call {}", call.name),
                            attempts: consecutive_malformed,
                            last_problem: outcome.content,
                        });
                    }
                } else {
                    consecutive_malformed = 0;
                }
                if let Some(path) = &outcome.wrote {
                    workspace_version += 1;
                    draft.files_written.insert(path.clone());
                }
                if let Some((summary, failure)) = &outcome.tests {
                    draft.tests = Some(summary.clone());
                    if let Some(failure) = failure {
                        let seen = repeated_failures.entry(failure.clone()).or_insert(0);
                        *seen += 1;
                        if *seen >= policy.loop_repeat_limit {
                            draft.stuck = Some(format!(
                                "the same tests failed the same way {seen} times: {}",
                                summary.failing.join(", ")
                            ));
                            draft.summary = format!("stuck after {step} steps");
                            return Ok(draft);
                        }
                    }
                }
                if let Some(summary) = &outcome.finished {
                    finished = Some(summary.clone());
                }
                messages.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content: outcome.content,
                    is_error: outcome.is_error,
                });
            }
            if let Some(summary) = finished.take() {
                draft.summary = summary;
                return Ok(draft);
            }
        }
        draft.stuck = Some(format!(
            "the step limit of {} was reached before `finish`",
            policy.max_tool_steps
        ));
        draft.summary = "ran out of steps".into();
        Ok(draft)
    }
}

/// Runs the whole suite of the task's workspace.
async fn run_suite(
    runner: &dyn agentd_testrunner::TestRunner,
    root: &std::path::Path,
    task_id: &str,
) -> Result<agentd_testrunner::TestReport> {
    let options = RunOptions {
        task_id: Some(task_id.to_owned()),
        ..RunOptions::default()
    };
    runner
        .run_tests(root, &options)
        .await
        .map_err(|source| AgentError::Tests {
            during: format!("running the suite for task {task_id}"),
            source,
        })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Every file of the workspace (bounded), for the prompt. A listing failure leaves it empty:
/// the model can still list directories itself.
pub(crate) async fn list_files(ws: &crate::context::TaskWorkspace) -> Vec<String> {
    match blocking_files(&ws.files, |f| f.find("*", MAX_LISTED_FILES)).await {
        Ok(found) => found.paths,
        Err(error) => {
            tracing::warn!(%error, "cannot list the workspace");
            Vec::new()
        }
    }
}

/// Commits the files written, when the agent is configured to and the workspace has VCS.
pub(crate) async fn commit_if_configured(run: &mut Run<'_>, draft: &mut Draft) -> Result<()> {
    if !run.core.config.auto_commit || draft.files_written.is_empty() {
        return Ok(());
    }
    let Some(ws) = run.ctx.workspace.clone() else {
        return Ok(());
    };
    let paths: Vec<String> = draft.files_written.iter().cloned().collect();
    let outcome = changes::commit_paths(
        &mut run.session,
        &ws,
        run.task,
        &run.core.name,
        paths,
        run.ctx.memory.as_ref(),
    )
    .await?;
    draft.commit = outcome.map(|o| o.id);
    Ok(())
}
