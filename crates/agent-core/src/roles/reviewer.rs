//! CFO, Risk, Legal and Security: approval criteria chosen per task, then a verdict.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::error::Result;
use crate::journal::{self, decision};
use crate::model::Task;
use crate::model::{Criterion, Verdict};
use crate::runtime::{Behaviour, Draft, Feedback, Run};
use crate::schemas;

pub(crate) struct Reviewer;

/// `{criteria: [{name, threshold, weight}], reasoning}`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub(crate) struct ApprovalCriteria {
    pub(crate) criteria: Vec<Criterion>,
    pub(crate) reasoning: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CriterionScore {
    pub(crate) name: String,
    pub(crate) score: f64,
    pub(crate) comment: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Evaluation {
    pub(crate) scores: Vec<CriterionScore>,
    pub(crate) reasoning: String,
    pub(crate) required_changes: Vec<String>,
}

/// Every criterion scored exactly once, by its exact name, and nothing else.
pub(crate) fn check_scores(
    criteria: &[Criterion],
    evaluation: &Evaluation,
) -> std::result::Result<(), String> {
    let expected: BTreeSet<&str> = criteria.iter().map(|c| c.name.as_str()).collect();
    let mut seen = BTreeSet::new();
    for score in &evaluation.scores {
        if !expected.contains(score.name.as_str()) {
            return Err(format!(
                "{:?} is not one of the criteria ({})",
                score.name,
                expected.iter().copied().collect::<Vec<_>>().join(", ")
            ));
        }
        if !seen.insert(score.name.as_str()) {
            return Err(format!("the criterion {:?} is scored twice", score.name));
        }
    }
    let missing: Vec<&str> = expected.difference(&seen).copied().collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "these criteria have no score: {}",
            missing.join(", ")
        ))
    }
}

/// Pairs each criterion with its score, in the criteria's order.
pub(crate) fn scored(
    criteria: &[Criterion],
    evaluation: Evaluation,
) -> (Vec<(Criterion, f64, String)>, String, Vec<String>) {
    let mut scores = evaluation.scores;
    let pairs = criteria
        .iter()
        .map(|criterion| {
            let position = scores.iter().position(|s| s.name == criterion.name);
            let (score, comment) = match position {
                Some(index) => {
                    let s = scores.swap_remove(index);
                    (s.score, s.comment)
                }
                None => (0.0, "not scored".to_owned()),
            };
            (criterion.clone(), score, comment)
        })
        .collect();
    (pairs, evaluation.reasoning, evaluation.required_changes)
}

/// Asks the reviewer which criteria matter for this task.
async fn determine_approval_criteria(
    run: &mut Run<'_>,
    feedback: &Feedback,
) -> Result<ApprovalCriteria> {
    let prompt = run.render("reviewer/criteria.v1", json!({"feedback": feedback}))?;
    let system = run.core.system_prompt.clone();
    let answer = run
        .session
        .structured::<ApprovalCriteria>(
            &system,
            prompt,
            "approval_criteria",
            &schemas::criteria(),
            feedback.bypass_cache(),
            |answer| {
                let mut names = BTreeSet::new();
                for c in &answer.criteria {
                    if c.name.trim().is_empty() {
                        return Err("a criterion has an empty name".into());
                    }
                    if !names.insert(c.name.as_str()) {
                        return Err(format!("the criterion {:?} appears twice", c.name));
                    }
                    if !(c.weight.is_finite() && c.weight > 0.0) {
                        return Err(format!(
                            "the weight of {:?} must be a positive number",
                            c.name
                        ));
                    }
                }
                Ok(())
            },
        )
        .await?;
    journal::decision(
        run.ctx.memory.as_ref(),
        &run.core.name,
        decision::APPROVAL_CRITERIA,
        json!({"task_id": run.task.id, "role": run.core.role, "criteria": answer.criteria, "reasoning": answer.reasoning}),
    )
    .await?;
    Ok(answer)
}

#[async_trait]
impl Behaviour for Reviewer {
    fn attempt_prompt(&self, _task: &Task) -> &'static str {
        "reviewer/criteria.v1+reviewer/evaluate.v1"
    }

    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        let chosen = determine_approval_criteria(run, feedback).await?;
        let prompt = run.render(
            "reviewer/evaluate.v1",
            json!({"criteria": chosen.criteria, "criteria_reasoning": chosen.reasoning, "feedback": feedback}),
        )?;
        let system = run.core.system_prompt.clone();
        let criteria = chosen.criteria.clone();
        let evaluation = run
            .session
            .structured::<Evaluation>(
                &system,
                prompt,
                "evaluation",
                &schemas::evaluation(),
                feedback.bypass_cache(),
                |e| check_scores(&criteria, e),
            )
            .await?;
        let (pairs, reasoning, required_changes) = scored(&chosen.criteria, evaluation);
        let verdict =
            Verdict::from_scores(run.core.role.clone(), pairs, reasoning, required_changes);
        journal::decision(
            run.ctx.memory.as_ref(),
            &run.core.name,
            decision::VERDICT,
            json!({"task_id": run.task.id, "verdict": verdict}),
        )
        .await?;
        Ok(Draft {
            summary: format!(
                "{}: {} with weighted score {:.2}",
                run.core.role,
                if verdict.approve { "approve" } else { "reject" },
                verdict.score
            ),
            output: json!({"criteria_reasoning": chosen.reasoning}),
            verdict: Some(verdict),
            ..Draft::default()
        })
    }
}
