//! The Tech Lead: reviews the diff and gives a verdict with required changes.

use agentd_testrunner::RunOptions;
use async_trait::async_trait;
use serde_json::json;

use crate::changes::describe_changes;
use crate::error::{AgentError, Result};
use crate::model::{Criterion, Role, Task, TaskKind, TaskResult, TestSummary, Verdict};
use crate::roles::reviewer::{Evaluation, Reviewer, check_scores, scored};
use crate::runtime::{Behaviour, Draft, Feedback, Run, base_revision};
use crate::schemas;

pub(crate) struct TechLead;

/// What every code review judges, with its pass mark and weight.
fn review_criteria() -> Vec<Criterion> {
    [
        ("correctness", 7.0, 3.0),
        ("tests", 7.0, 2.0),
        ("security", 7.0, 2.0),
        ("design", 6.0, 1.5),
        ("readability", 6.0, 1.0),
    ]
    .into_iter()
    .map(|(name, threshold, weight)| Criterion {
        name: name.to_owned(),
        threshold,
        weight,
    })
    .collect()
}

async fn review_change(
    run: &mut Run<'_>,
    author: Option<&Role>,
    tests: Option<TestSummary>,
    feedback: &Feedback,
) -> Result<(Verdict, String)> {
    let diff = match &run.ctx.workspace {
        Some(ws) => describe_changes(ws, base_revision(run.task)).await?,
        None => String::new(),
    };
    let criteria = review_criteria();
    let prompt = run.render(
        "tech_lead/review.v1",
        json!({"author": author, "diff": diff, "tests": tests, "criteria": criteria, "feedback": feedback}),
    )?;
    let system = run.core.system_prompt.clone();
    let evaluation = run
        .session
        .structured::<Evaluation>(
            &system,
            prompt,
            "code_review",
            &schemas::code_review(),
            feedback.bypass_cache(),
            |e| check_scores(&criteria, e),
        )
        .await?;
    let (pairs, reasoning, required_changes) = scored(&criteria, evaluation);
    Ok((
        Verdict::from_scores(run.core.role.clone(), pairs, reasoning, required_changes),
        diff,
    ))
}

#[async_trait]
impl Behaviour for TechLead {
    fn attempt_prompt(&self, task: &Task) -> &'static str {
        if task.kind == TaskKind::Proposal {
            Reviewer.attempt_prompt(task)
        } else {
            "tech_lead/review.v1"
        }
    }

    /// A change gets a code review; a proposal (the Tech Lead on the decision flow's
    /// review team) is judged like the other reviewers, on criteria chosen for it.
    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        if run.task.kind == TaskKind::Proposal {
            return Reviewer.attempt(run, feedback).await;
        }
        let tests = match run
            .ctx
            .workspace
            .as_ref()
            .and_then(|ws| ws.tests.clone().map(|t| (t, ws.root.clone())))
        {
            Some((runner, root)) => {
                let options = RunOptions {
                    task_id: Some(run.task.id.clone()),
                    ..RunOptions::default()
                };
                let report = runner.run_tests(&root, &options).await.map_err(|source| {
                    AgentError::Tests {
                        during: format!("running the suite to review task {}", run.task.id),
                        source,
                    }
                })?;
                Some(TestSummary::from_report(&report))
            }
            None => None,
        };
        let (verdict, diff) = review_change(run, None, tests.clone(), feedback).await?;
        Ok(Draft {
            summary: format!(
                "review: {} with weighted score {:.2}, {} required changes",
                if verdict.approve {
                    "approve"
                } else {
                    "changes requested"
                },
                verdict.score,
                verdict.required_changes.len()
            ),
            output: json!({"required_changes": verdict.required_changes}),
            tests,
            verdict: Some(verdict),
            evidence: diff,
            ..Draft::default()
        })
    }

    async fn review(&self, run: &mut Run<'_>, result: &TaskResult) -> Result<Verdict> {
        let feedback = Feedback::first();
        let (verdict, _) = review_change(
            run,
            Some(&result.role),
            result.artifacts.tests.clone(),
            &feedback,
        )
        .await?;
        Ok(verdict)
    }
}
