//! QA: constraints and tests, written first, as files in the workspace.

use agentd_testrunner::RunOptions;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::changes::blocking_files;
use crate::error::{AgentError, Result};
use crate::model::Task;
use crate::model::TestSummary;
use crate::roles::developer::{commit_if_configured, list_files};
use crate::roles::is_test_path;
use crate::roles::tools::{describe_report, stable_text};
use crate::runtime::{Behaviour, Draft, Feedback, Run};
use crate::schemas;

pub(crate) struct Qa;

#[derive(Debug, Deserialize)]
struct TestFile {
    path: String,
    content: String,
}

#[derive(Debug, Deserialize)]
struct TestsAnswer {
    summary: String,
    constraints: Vec<String>,
    files: Vec<TestFile>,
}

#[async_trait]
impl Behaviour for Qa {
    fn attempt_prompt(&self, _task: &Task) -> &'static str {
        "qa/write_tests.v1"
    }

    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        let ws = run
            .ctx
            .workspace
            .clone()
            .ok_or_else(|| run.missing("a workspace"))?;
        let files = list_files(&ws).await;
        let framework = match &ws.tests {
            Some(runner) => runner
                .detect_framework(&ws.root)
                .await
                .ok()
                .map(|f| f.to_string()),
            None => None,
        };
        let prompt = run.render(
            self.attempt_prompt(run.task),
            json!({"files": files, "framework": framework, "feedback": feedback}),
        )?;
        let system = run.core.system_prompt.clone();
        let answer = run
            .session
            .structured::<TestsAnswer>(&system, prompt, "qa_tests", &schemas::tests(), feedback.bypass_cache(), |answer| {
                let not_tests: Vec<&str> = answer
                    .files
                    .iter()
                    .map(|f| f.path.as_str())
                    .filter(|p| !is_test_path(p))
                    .collect();
                if not_tests.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "QA writes only test files (under tests/, test_*, *_test.*, *.test.*, *.spec.*), but these are not: {}",
                        not_tests.join(", ")
                    ))
                }
            })
            .await?;
        let mut draft = Draft {
            summary: answer.summary,
            output: json!({"constraints": answer.constraints}),
            ..Draft::default()
        };
        for file in answer.files {
            let TestFile { path, content } = file;
            let report = blocking_files(&ws.files, move |f| f.write(&path, &content))
                .await
                .map_err(|source| AgentError::Files {
                    during: format!("writing a test file for task {}", run.task.id),
                    source,
                })?;
            draft.files_written.insert(report.path);
        }
        Ok(draft)
    }

    /// Tests written first must not already pass.
    async fn objective_issues(&self, run: &mut Run<'_>, draft: &mut Draft) -> Result<Vec<String>> {
        let Some(runner) = run.ctx.workspace.as_ref().and_then(|ws| ws.tests.clone()) else {
            return Ok(Vec::new());
        };
        let Some(root) = run.ctx.workspace.as_ref().map(|ws| ws.root.clone()) else {
            return Ok(Vec::new());
        };
        let options = RunOptions {
            task_id: Some(run.task.id.clone()),
            ..RunOptions::default()
        };
        let report =
            runner
                .run_tests(&root, &options)
                .await
                .map_err(|source| AgentError::Tests {
                    during: format!("running the new tests of task {}", run.task.id),
                    source,
                })?;
        draft.tests = Some(TestSummary::from_report(&report));
        draft.evidence = stable_text(&describe_report(&report), &root);
        if report.is_green() {
            return Ok(vec![
                "the new tests already pass before any implementation exists: they do not test the new behaviour".into(),
            ]);
        }
        Ok(Vec::new())
    }

    async fn on_accept(&self, run: &mut Run<'_>, draft: &mut Draft) -> Result<()> {
        commit_if_configured(run, draft).await
    }
}
