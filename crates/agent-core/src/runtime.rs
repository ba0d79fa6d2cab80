//! The one `Agent` implementation: role behaviour plugged into the self-correction loop.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::agent::Agent;
use crate::context::{AgentConfig, AgentContext};
use crate::error::{AgentError, Result};
use crate::journal::{self, activity, decision};
use crate::model::{
    Artifacts, AttemptDecision, AttemptRecord, Criterion, Role, Task, TaskOutcome, TaskResult,
    TaskSpec, TestSummary, Validation, Verdict, WorkState, clamp_score,
};
use crate::prompts::render_prompt;
use crate::session::Session;
use crate::{changes, schemas};

/// Characters of assembled memory context given to a prompt.
const CONTEXT_BUDGET_CHARS: usize = 6_000;

/// What every agent is, whatever its role.
#[derive(Debug)]
pub(crate) struct AgentCore {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) config: AgentConfig,
    pub(crate) system_prompt: String,
}

/// One task run of one agent: the task, its context, and the LLM session.
pub(crate) struct Run<'a> {
    pub(crate) core: &'a AgentCore,
    pub(crate) task: &'a Task,
    pub(crate) ctx: &'a AgentContext,
    pub(crate) session: Session,
    /// Strategy, goals, facts, memory and recent activity, assembled for this task.
    pub(crate) context_text: String,
}

impl<'a> Run<'a> {
    pub(crate) async fn start(
        core: &'a AgentCore,
        task: &'a Task,
        ctx: &'a AgentContext,
    ) -> Result<Self> {
        let query = format!("{}\n{}", task.title, task.description);
        let context_text = ctx
            .context
            .assemble(&core.name, &query, CONTEXT_BUDGET_CHARS)
            .await
            .map_err(|source| AgentError::Memory {
                during: format!("assembling context for task {}", task.id),
                source,
            })?
            .text;
        Ok(Run {
            session: Session::new(
                ctx.llm.clone(),
                &core.name,
                &core.role,
                &task.id,
                core.config.llm.clone(),
                core.config.correction.max_malformed_retries,
            ),
            core,
            task,
            ctx,
            context_text,
        })
    }

    /// The variables every prompt gets: role, agent, task, context.
    pub(crate) fn base_values(&self) -> serde_json::Map<String, Value> {
        let mut values = serde_json::Map::new();
        values.insert("role".into(), json!(self.core.role));
        values.insert("agent".into(), json!(self.core.name));
        values.insert("task".into(), json!(self.task));
        values.insert("context".into(), json!(self.context_text));
        values
    }

    /// Renders a prompt with the base values plus `extra`.
    pub(crate) fn render(&self, template: &str, extra: Value) -> Result<String> {
        let mut values = self.base_values();
        if let Value::Object(extra) = extra {
            values.extend(extra);
        }
        render_prompt(template, Value::Object(values))
    }

    pub(crate) fn missing(&self, what: &'static str) -> AgentError {
        AgentError::MissingCapability {
            role: self.core.role.clone(),
            task_id: self.task.id.clone(),
            what,
        }
    }
}

/// Why an attempt is being made: the first try, a fix, or a new approach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FeedbackMode {
    First,
    Fix,
    NewApproach,
}

/// What an attempt is told about earlier attempts; rendered by `common/feedback.v1`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Feedback {
    pub(crate) mode: FeedbackMode,
    pub(crate) attempt: u32,
    pub(crate) approach: u32,
    /// The previous attempt's issues (for a fix).
    pub(crate) issues: Vec<String>,
    /// Each abandoned approach's last summary and issues (for a new approach).
    pub(crate) previous_approaches: Vec<AbandonedApproach>,
}

impl Feedback {
    pub(crate) fn first() -> Self {
        Feedback {
            mode: FeedbackMode::First,
            attempt: 1,
            approach: 0,
            issues: Vec::new(),
            previous_approaches: Vec::new(),
        }
    }

    /// Whether this attempt must bypass the LLM cache (every retry does).
    pub(crate) fn bypass_cache(&self) -> bool {
        self.mode != FeedbackMode::First
    }
}

/// An approach that was given up, as the next approach is told about it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AbandonedApproach {
    pub(crate) approach: u32,
    pub(crate) summary: String,
    pub(crate) issues: Vec<String>,
}

/// The product of one attempt, before it is judged.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub(crate) summary: String,
    pub(crate) output: Value,
    pub(crate) files_written: BTreeSet<String>,
    pub(crate) tests: Option<TestSummary>,
    pub(crate) commit: Option<String>,
    pub(crate) verdict: Option<Verdict>,
    pub(crate) follow_ups: Vec<TaskSpec>,
    /// Set when the attempt ended because the agent was stuck (loop, step limit): the
    /// loop changes approach at once.
    pub(crate) stuck: Option<String>,
    /// Material the validator needs besides the result (e.g. the diff).
    pub(crate) evidence: String,
}

/// What a role does inside the shared machinery.
#[async_trait]
pub(crate) trait Behaviour: Send + Sync {
    /// The template of an attempt (recorded with each attempt).
    fn attempt_prompt(&self, _task: &Task) -> &'static str;

    /// One attempt at the task.
    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft>;

    /// Checks that need no model (tests ran green, files exist). Non-empty issues make
    /// the attempt invalid without asking the model.
    async fn objective_issues(
        &self,
        _run: &mut Run<'_>,
        _draft: &mut Draft,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Runs once the result is accepted (e.g. commit the files).
    async fn on_accept(&self, _run: &mut Run<'_>, _draft: &mut Draft) -> Result<()> {
        Ok(())
    }

    /// The CEO's planning.
    async fn generate_tasks(
        &self,
        core: &AgentCore,
        _state: &WorkState,
        _ctx: &AgentContext,
    ) -> Result<Vec<TaskSpec>> {
        Err(AgentError::Unsupported {
            role: core.role.clone(),
            operation: "generate_tasks",
        })
    }

    /// The CEO's final decision.
    async fn decide(&self, run: &mut Run<'_>, _verdicts: &[Verdict]) -> Result<Verdict> {
        Err(AgentError::Unsupported {
            role: run.core.role.clone(),
            operation: "decide",
        })
    }

    /// Peer review of another agent's result; the Tech Lead reviews its own way.
    async fn review(&self, run: &mut Run<'_>, result: &TaskResult) -> Result<Verdict> {
        peer_review(run, result).await
    }
}

/// An agent: its identity plus its role's behaviour.
pub(crate) struct RoleAgent {
    pub(crate) core: AgentCore,
    pub(crate) behaviour: Box<dyn Behaviour>,
}

#[async_trait]
impl Agent for RoleAgent {
    fn name(&self) -> &str {
        &self.core.name
    }

    fn role(&self) -> &Role {
        &self.core.role
    }

    fn system_prompt(&self) -> &str {
        &self.core.system_prompt
    }

    async fn process_task(&self, task: &Task, ctx: &AgentContext) -> Result<TaskResult> {
        let span = tracing::info_span!("agent.process_task", task_id = %task.id, role = %self.core.role, agent = %self.core.name);
        async {
            let mut run = Run::start(&self.core, task, ctx).await?;
            let result = self_correct(self.behaviour.as_ref(), &mut run).await?;
            journal::activity(
                ctx.memory.as_ref(),
                &self.core.name,
                activity::FINISHED,
                json!({
                    "task_id": task.id,
                    "role": self.core.role,
                    "outcome": result.outcome,
                    "attempts": result.attempts.len(),
                    "llm": result.usage,
                }),
            )
            .await?;
            Ok(result)
        }
        .instrument(span)
        .await
    }

    async fn validate_result(
        &self,
        task: &Task,
        result: &TaskResult,
        ctx: &AgentContext,
    ) -> Result<Validation> {
        let span = tracing::info_span!("agent.validate_result", task_id = %task.id, role = %self.core.role);
        async {
            let mut run = Run::start(&self.core, task, ctx).await?;
            let evidence = String::new();
            self_validate(&mut run, result, &evidence, false).await
        }
        .instrument(span)
        .await
    }

    async fn generate_tasks(&self, state: &WorkState, ctx: &AgentContext) -> Result<Vec<TaskSpec>> {
        let span = tracing::info_span!("agent.generate_tasks", role = %self.core.role);
        self.behaviour
            .generate_tasks(&self.core, state, ctx)
            .instrument(span)
            .await
    }

    async fn review(
        &self,
        task: &Task,
        result: &TaskResult,
        ctx: &AgentContext,
    ) -> Result<Verdict> {
        let span = tracing::info_span!("agent.review", task_id = %task.id, role = %self.core.role, author = %result.role);
        async {
            let mut run = Run::start(&self.core, task, ctx).await?;
            let verdict = self.behaviour.review(&mut run, result).await?;
            journal::decision(
                ctx.memory.as_ref(),
                &self.core.name,
                decision::VERDICT,
                json!({"task_id": task.id, "reviewed_role": result.role, "verdict": verdict, "llm": run.session.spend}),
            )
            .await?;
            Ok(verdict)
        }
        .instrument(span)
        .await
    }

    async fn decide(
        &self,
        task: &Task,
        verdicts: &[Verdict],
        ctx: &AgentContext,
    ) -> Result<Verdict> {
        let span = tracing::info_span!("agent.decide", task_id = %task.id, role = %self.core.role);
        async {
            let mut run = Run::start(&self.core, task, ctx).await?;
            self.behaviour.decide(&mut run, verdicts).await
        }
        .instrument(span)
        .await
    }
}

/// The bounded self-correction loop (see the crate docs for the state machine).
async fn self_correct(behaviour: &dyn Behaviour, run: &mut Run<'_>) -> Result<TaskResult> {
    let policy = run.core.config.correction.clone();
    let mut attempts: Vec<AttemptRecord> = Vec::new();
    let mut abandoned: Vec<AbandonedApproach> = Vec::new();
    let mut number = 0;
    let mut last_draft = Draft::default();
    for approach in 0..=policy.max_approach_changes {
        let mut issues: Vec<String> = Vec::new();
        let mut last_summary = String::new();
        for fix in 0..=policy.max_fix_attempts {
            number += 1;
            let feedback = Feedback {
                mode: match (approach, fix) {
                    (0, 0) => FeedbackMode::First,
                    (_, 0) => FeedbackMode::NewApproach,
                    _ => FeedbackMode::Fix,
                },
                attempt: number,
                approach,
                issues: issues.clone(),
                previous_approaches: abandoned.clone(),
            };
            let (draft, validation) = attempt_and_judge(behaviour, run, &feedback).await?;
            let valid = validation.as_ref().is_some_and(|v| v.valid);
            let score = validation.as_ref().and_then(|v| v.score_if_judged());
            issues = match (&draft.stuck, &validation) {
                (Some(reason), _) => vec![format!("stuck: {reason}")],
                (None, Some(v)) => v.issues.clone(),
                (None, None) => Vec::new(),
            };
            let accepted =
                draft.stuck.is_none() && valid && score.is_some_and(|s| s >= policy.accept_score);
            let decision = if accepted {
                AttemptDecision::Accept
            } else if draft.stuck.is_none() && fix < policy.max_fix_attempts {
                AttemptDecision::Fix
            } else if approach < policy.max_approach_changes {
                AttemptDecision::ChangeApproach
            } else {
                AttemptDecision::GiveUp
            };
            if !accepted && issues.is_empty() {
                issues.push(format!(
                    "the self-validation score {} is below the acceptance score {}",
                    score.unwrap_or(0.0),
                    policy.accept_score
                ));
            }
            let record = AttemptRecord {
                number,
                approach,
                score,
                valid,
                issues: issues.clone(),
                stuck: draft.stuck.clone(),
                decision,
                prompt: behaviour.attempt_prompt(run.task).to_owned(),
            };
            record_attempt(run, &record).await?;
            attempts.push(record);
            last_summary.clone_from(&draft.summary);
            last_draft = draft;
            match decision {
                AttemptDecision::Accept => {
                    behaviour.on_accept(run, &mut last_draft).await?;
                    return Ok(finish(run, last_draft, TaskOutcome::Succeeded, attempts));
                }
                AttemptDecision::Fix => {}
                AttemptDecision::ChangeApproach | AttemptDecision::GiveUp => break,
            }
        }
        abandoned.push(AbandonedApproach {
            approach,
            summary: last_summary,
            issues,
        });
    }
    let reason = format!(
        "no acceptable result after {} attempts in {} approaches",
        attempts.len(),
        policy.max_approach_changes + 1
    );
    Ok(finish(
        run,
        last_draft,
        TaskOutcome::Failed { reason },
        attempts,
    ))
}

impl Validation {
    /// The score when the model judged the work (objective failures carry none).
    fn score_if_judged(&self) -> Option<f64> {
        self.score.is_finite().then_some(self.score)
    }
}

/// One attempt and its judgement. `None` validation: the attempt was stuck. A malformed
/// answer that survived every correction is an issue of the attempt, not an error.
async fn attempt_and_judge(
    behaviour: &dyn Behaviour,
    run: &mut Run<'_>,
    feedback: &Feedback,
) -> Result<(Draft, Option<Validation>)> {
    let mut draft = match behaviour.attempt(run, feedback).await {
        Ok(draft) => draft,
        Err(AgentError::MalformedOutput {
            what,
            attempts,
            last_problem,
            ..
        }) => {
            let issue = format!(
                "the answer for {what} was malformed {attempts} times; last: {last_problem}"
            );
            return Ok((Draft::default(), Some(objective_failure(vec![issue]))));
        }
        Err(other) => return Err(other),
    };
    if draft.stuck.is_some() {
        return Ok((draft, None));
    }
    let objective = behaviour.objective_issues(run, &mut draft).await?;
    if !objective.is_empty() {
        return Ok((draft, Some(objective_failure(objective))));
    }
    let provisional = provisional_result(run, &draft);
    let validation =
        match self_validate(run, &provisional, &draft.evidence, feedback.bypass_cache()).await {
            Ok(validation) => validation,
            Err(AgentError::MalformedOutput { last_problem, .. }) => {
                objective_failure(vec![format!(
                    "self-validation gave no usable answer: {last_problem}"
                )])
            }
            Err(other) => return Err(other),
        };
    Ok((draft, Some(validation)))
}

/// A validation that failed before the model was asked; it has no score.
fn objective_failure(issues: Vec<String>) -> Validation {
    Validation {
        valid: false,
        score: f64::NAN,
        issues,
    }
}

/// Asks the agent's model to judge a result: `{valid, score, issues}`.
pub(crate) async fn self_validate(
    run: &mut Run<'_>,
    result: &TaskResult,
    evidence: &str,
    bypass_cache: bool,
) -> Result<Validation> {
    let prompt = run.render(
        "common/validate.v1",
        json!({"result": result, "evidence": evidence, "accept_score": run.core.config.correction.accept_score}),
    )?;
    let system = run.core.system_prompt.clone();
    let answer = run
        .session
        .structured::<Validation>(
            &system,
            prompt,
            "self_validation",
            &schemas::validation(),
            bypass_cache,
            |_| Ok(()),
        )
        .await?;
    let mut validation = answer;
    validation.score = clamp_score(validation.score);
    if !validation.valid && validation.issues.is_empty() {
        validation
            .issues
            .push("the self-validation found the work invalid without naming an issue".into());
    }
    Ok(validation)
}

fn provisional_result(run: &Run<'_>, draft: &Draft) -> TaskResult {
    TaskResult {
        task_id: run.task.id.clone(),
        role: run.core.role.clone(),
        agent: run.core.name.clone(),
        outcome: TaskOutcome::Succeeded,
        summary: draft.summary.clone(),
        output: draft.output.clone(),
        artifacts: Artifacts {
            files_written: draft.files_written.iter().cloned().collect(),
            tests: draft.tests.clone(),
            commit: draft.commit.clone(),
        },
        verdict: draft.verdict.clone(),
        follow_ups: draft.follow_ups.clone(),
        attempts: Vec::new(),
        usage: run.session.spend,
    }
}

fn finish(
    run: &Run<'_>,
    draft: Draft,
    outcome: TaskOutcome,
    attempts: Vec<AttemptRecord>,
) -> TaskResult {
    let mut result = provisional_result(run, &draft);
    result.outcome = outcome;
    result.attempts = attempts;
    result.usage = run.session.spend;
    result
}

async fn record_attempt(run: &Run<'_>, record: &AttemptRecord) -> Result<()> {
    let details = json!({
        "task_id": run.task.id,
        "role": run.core.role,
        "attempt": record,
        "llm_so_far": run.session.spend,
    });
    tracing::info!(
        attempt = record.number,
        approach = record.approach,
        score = record.score,
        decision = ?record.decision,
        issues = record.issues.len(),
        "attempt judged"
    );
    journal::activity(
        run.ctx.memory.as_ref(),
        &run.core.name,
        activity::ATTEMPT,
        details.clone(),
    )
    .await?;
    journal::decision(
        run.ctx.memory.as_ref(),
        &run.core.name,
        decision::SELF_CORRECTION,
        details,
    )
    .await
}

/// The reply of a peer review.
#[derive(Debug, serde::Deserialize)]
struct PeerReviewAnswer {
    approve: bool,
    score: f64,
    reasoning: String,
    #[serde(default)]
    required_changes: Vec<String>,
}

/// Reviews another agent's result from this agent's role: one overall criterion whose
/// threshold is the acceptance score; approval needs the model's approval, the score and
/// no required change.
async fn peer_review(run: &mut Run<'_>, result: &TaskResult) -> Result<Verdict> {
    let diff = match &run.ctx.workspace {
        Some(ws) => changes::describe_changes(ws, base_revision(run.task)).await?,
        None => String::new(),
    };
    let prompt = run.render(
        "common/peer_review.v1",
        json!({"result": result, "diff": diff}),
    )?;
    let system = run.core.system_prompt.clone();
    let answer = run
        .session
        .structured::<PeerReviewAnswer>(
            &system,
            prompt,
            "peer_review",
            &schemas::peer_review(),
            false,
            |_| Ok(()),
        )
        .await?;
    let criterion = Criterion {
        name: "overall".into(),
        threshold: run.core.config.correction.accept_score,
        weight: 1.0,
    };
    let mut verdict = Verdict::from_scores(
        run.core.role.clone(),
        vec![(criterion, answer.score, answer.reasoning.clone())],
        answer.reasoning,
        answer.required_changes,
    );
    verdict.approve &= answer.approve;
    Ok(verdict)
}

/// The revision a review compares against: `payload.base` when the orchestrator set it.
pub(crate) fn base_revision(task: &Task) -> Option<&str> {
    task.payload.get("base").and_then(Value::as_str)
}
