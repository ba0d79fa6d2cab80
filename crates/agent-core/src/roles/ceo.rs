//! The CEO: plans work, generates tasks when the queue runs dry, decides from verdicts.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::context::AgentContext;
use crate::error::Result;
use crate::journal::{self, activity, decision};
use crate::model::{
    Criterion, CriterionResult, Role, Task, TaskKind, TaskSpec, Verdict, WorkState,
};
use crate::roles::{ProposedTask, check_roles, into_specs};
use crate::runtime::{AgentCore, Behaviour, Draft, Feedback, Run};
use crate::schemas;

/// Tasks generated per round when [`WorkState::max_tasks`] is 0.
pub(crate) const DEFAULT_MAX_TASKS: u32 = 5;

pub(crate) struct Ceo {
    /// Custom roles tasks may be delegated to.
    pub(crate) known_custom: Vec<Role>,
}

#[derive(Debug, Deserialize)]
struct PlanAnswer {
    summary: String,
    tasks: Vec<ProposedTask>,
}

#[derive(Debug, Deserialize)]
struct GeneratedAnswer {
    tasks: Vec<ProposedTask>,
    reasoning: String,
}

#[derive(Debug, Deserialize)]
struct DecisionAnswer {
    approve: bool,
    reasoning: String,
    conditions: Vec<String>,
}

/// The id of a planning round: derived from the state planned from, so that the same
/// state gives the same prompts (and a recorded run replays).
fn planning_round_id(state: &WorkState) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(state).unwrap_or_default());
    let hex = hex::encode(digest);
    format!("planning-{}", hex.get(..12).unwrap_or(&hex))
}

#[async_trait]
impl Behaviour for Ceo {
    fn attempt_prompt(&self, _task: &Task) -> &'static str {
        "ceo/plan.v1"
    }

    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        let prompt = run.render(self.attempt_prompt(run.task), json!({"feedback": feedback}))?;
        let system = run.core.system_prompt.clone();
        let known = self.known_custom.clone();
        let answer = run
            .session
            .structured::<PlanAnswer>(
                &system,
                prompt,
                "plan",
                &schemas::plan(),
                feedback.bypass_cache(),
                |a| check_roles(&a.tasks, &known),
            )
            .await?;
        let follow_ups = into_specs(answer.tasks, Some(&run.task.id));
        Ok(Draft {
            summary: answer.summary,
            output: json!({"delegated": follow_ups.len()}),
            follow_ups,
            ..Draft::default()
        })
    }

    async fn generate_tasks(
        &self,
        core: &AgentCore,
        state: &WorkState,
        ctx: &AgentContext,
    ) -> Result<Vec<TaskSpec>> {
        let max_tasks = if state.max_tasks == 0 {
            DEFAULT_MAX_TASKS
        } else {
            state.max_tasks
        };
        let round = Task {
            kind: TaskKind::Planning,
            ..Task::new(
                planning_round_id(state),
                "Generate the next tasks",
                state
                    .goal
                    .clone()
                    .unwrap_or_else(|| "Advance the strategy and goals.".into()),
            )
        };
        let mut run = Run::start(core, &round, ctx).await?;
        let prompt = run.render(
            "ceo/generate_tasks.v1",
            json!({
                "goal": state.goal,
                "done": state.done,
                "failing": state.failing,
                "pending": state.pending,
                "max_tasks": max_tasks,
            }),
        )?;
        let system = core.system_prompt.clone();
        let known = self.known_custom.clone();
        let answer = run
            .session
            .structured::<GeneratedAnswer>(
                &system,
                prompt,
                "generated_tasks",
                &schemas::generated_tasks(),
                false,
                |a| check_roles(&a.tasks, &known),
            )
            .await?;
        let mut specs = into_specs(answer.tasks, None);
        specs.truncate(usize::try_from(max_tasks).unwrap_or(usize::MAX));
        journal::decision(
            ctx.memory.as_ref(),
            &core.name,
            decision::TASK_GENERATION,
            json!({"round": round.id, "tasks": specs, "reasoning": answer.reasoning}),
        )
        .await?;
        journal::activity(
            ctx.memory.as_ref(),
            &core.name,
            activity::TASKS_GENERATED,
            json!({"round": round.id, "count": specs.len(), "llm": run.session.spend}),
        )
        .await?;
        Ok(specs)
    }

    async fn decide(&self, run: &mut Run<'_>, verdicts: &[Verdict]) -> Result<Verdict> {
        let prompt = run.render("ceo/decide.v1", json!({"verdicts": verdicts}))?;
        let system = run.core.system_prompt.clone();
        let answer = run
            .session
            .structured::<DecisionAnswer>(
                &system,
                prompt,
                "decision",
                &schemas::decision(),
                false,
                |_| Ok(()),
            )
            .await?;
        let vetoes: Vec<String> = verdicts
            .iter()
            .filter(|v| !v.approve)
            .map(|v| v.role.to_string())
            .collect();
        let approve = answer.approve && !verdicts.is_empty() && vetoes.is_empty();
        let mut reasoning = answer.reasoning;
        if answer.approve && !approve {
            let why = if verdicts.is_empty() {
                "no reviewer gave a verdict".to_owned()
            } else {
                format!("rejected by {}", vetoes.join(", "))
            };
            reasoning.push_str(&format!(" (not approved: {why})"));
        }
        let criteria: Vec<CriterionResult> = verdicts
            .iter()
            .map(|v| CriterionResult {
                criterion: Criterion {
                    name: v.role.to_string(),
                    threshold: 0.0,
                    weight: 1.0,
                },
                score: v.score,
                passed: v.approve,
                comment: v.reasoning.clone(),
            })
            .collect();
        let score = if criteria.is_empty() {
            0.0
        } else {
            criteria.iter().map(|c| c.score).sum::<f64>() / criteria.len() as f64
        };
        let mut required_changes = answer.conditions;
        for v in verdicts {
            required_changes.extend(
                v.required_changes
                    .iter()
                    .map(|c| format!("{}: {c}", v.role)),
            );
        }
        let verdict = Verdict {
            role: run.core.role.clone(),
            approve,
            score,
            criteria,
            reasoning,
            required_changes,
        };
        journal::decision(
            run.ctx.memory.as_ref(),
            &run.core.name,
            decision::FINAL_DECISION,
            json!({"task_id": run.task.id, "decision": verdict, "llm": run.session.spend}),
        )
        .await?;
        Ok(verdict)
    }
}
