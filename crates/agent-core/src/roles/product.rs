//! Product: requirements and acceptance criteria.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Result;
use crate::model::Task;
use crate::runtime::{Behaviour, Draft, Feedback, Run};
use crate::schemas;

pub(crate) struct Product;

#[derive(Debug, Deserialize, Serialize)]
struct Requirements {
    summary: String,
    requirements: Vec<String>,
    acceptance_criteria: Vec<String>,
    out_of_scope: Vec<String>,
}

#[async_trait]
impl Behaviour for Product {
    fn attempt_prompt(&self, _task: &Task) -> &'static str {
        "product/requirements.v1"
    }

    async fn attempt(&self, run: &mut Run<'_>, feedback: &Feedback) -> Result<Draft> {
        let prompt = run.render(self.attempt_prompt(run.task), json!({"feedback": feedback}))?;
        let system = run.core.system_prompt.clone();
        let answer = run
            .session
            .structured::<Requirements>(
                &system,
                prompt,
                "requirements",
                &schemas::requirements(),
                feedback.bypass_cache(),
                |_| Ok(()),
            )
            .await?;
        Ok(Draft {
            summary: answer.summary.clone(),
            output: json!(answer),
            ..Draft::default()
        })
    }
}
