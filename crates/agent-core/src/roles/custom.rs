//! A user-defined role: a generic agent driven by its configured description.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Result;
use crate::model::Role;
use crate::model::Task;
use crate::roles::{ProposedTask, check_roles, into_specs};
use crate::runtime::{Behaviour, Draft, Feedback, Run};
use crate::schemas;

pub(crate) struct Custom {
    /// Roles follow-ups may be delegated to besides the built-in ones.
    pub(crate) known_custom: Vec<Role>,
}

#[derive(Debug, Deserialize)]
struct CustomAnswer {
    summary: String,
    output: Value,
    follow_ups: Vec<ProposedTask>,
}

#[async_trait]
impl Behaviour for Custom {
    fn attempt_prompt(&self, _task: &Task) -> &'static str {
        "custom/process.v1"
    }

    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        let prompt = run.render(self.attempt_prompt(run.task), json!({"feedback": feedback}))?;
        let system = run.core.system_prompt.clone();
        let known = self.known_custom.clone();
        let answer = run
            .session
            .structured::<CustomAnswer>(
                &system,
                prompt,
                "custom_result",
                &schemas::custom_result(),
                feedback.bypass_cache(),
                |a| check_roles(&a.follow_ups, &known),
            )
            .await?;
        Ok(Draft {
            summary: answer.summary,
            output: answer.output,
            follow_ups: into_specs(answer.follow_ups, Some(&run.task.id)),
            ..Draft::default()
        })
    }
}
