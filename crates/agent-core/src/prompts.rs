//! Versioned prompt templates, embedded in the binary and rendered with minijinja.
//!
//! Each template is one file `prompts/<role>/<step>.v<N>.j2`, registered under the name
//! `<role>/<step>.v<N>`. A changed prompt is a new file with the next version; the old one
//! stays until nothing refers to it, so a result's [`crate::AttemptRecord::prompt`] always
//! names the text that produced it. Rendering is strict: an undefined variable is an error,
//! never an empty string.

use std::sync::LazyLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{AgentError, Result};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        /// Every template: (name, source).
        pub(crate) const TEMPLATES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../prompts/", $name, ".j2")))),*
        ];
    };
}

templates!(
    "common/task.v1",
    "common/feedback.v1",
    "common/validate.v1",
    "common/peer_review.v1",
    "common/commit_message.v1",
    "ceo/system.v1",
    "ceo/generate_tasks.v1",
    "ceo/plan.v1",
    "ceo/decide.v1",
    "cfo/system.v1",
    "risk/system.v1",
    "legal/system.v1",
    "security/system.v1",
    "reviewer/criteria.v1",
    "reviewer/evaluate.v1",
    "product/system.v1",
    "product/requirements.v1",
    "qa/system.v1",
    "qa/write_tests.v1",
    "developer/system.v1",
    "developer/implement.v1",
    "tech_lead/system.v1",
    "tech_lead/review.v1",
    "custom/system.v1",
    "custom/process.v1",
);

/// The names of every embedded prompt template, e.g. `developer/implement.v1`.
pub fn prompt_names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(name, _)| *name)
}

static ENVIRONMENT: LazyLock<std::result::Result<Environment<'static>, String>> =
    LazyLock::new(build_environment);

fn build_environment() -> std::result::Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| e.to_string())?;
    env.set_syntax(syntax);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(env)
}

/// Renders the template `name` with `values` (any serializable value, usually a
/// `serde_json::json!` object).
///
/// # Errors
/// [`AgentError::Prompt`] when the template does not exist, does not parse, or refers to
/// a variable that `values` does not define.
pub fn render_prompt<S: Serialize>(name: &str, values: S) -> Result<String> {
    let env = ENVIRONMENT.as_ref().map_err(|message| AgentError::Prompt {
        template: name.to_owned(),
        message: format!("the prompt templates did not load: {message}"),
    })?;
    let prompt_error = |e: minijinja::Error| AgentError::Prompt {
        template: name.to_owned(),
        message: format!("{e:#}"),
    };
    let template = env.get_template(name).map_err(prompt_error)?;
    let rendered = template
        .render(minijinja::value::Serde(&values))
        .map_err(prompt_error)?;
    Ok(rendered.trim().to_owned())
}
