//! Building agents by role.

use std::sync::Arc;

use serde_json::json;

use crate::agent::Agent;
use crate::context::AgentConfig;
use crate::error::{AgentError, Result};
use crate::model::Role;
use crate::prompts::render_prompt;
use crate::roles::{ceo, custom, developer, product, qa, reviewer, tech_lead};
use crate::runtime::{AgentCore, Behaviour, RoleAgent};

/// The system prompt template of a role.
pub fn system_prompt_template(role: &Role) -> &'static str {
    match role {
        Role::Ceo => "ceo/system.v1",
        Role::Cfo => "cfo/system.v1",
        Role::Product => "product/system.v1",
        Role::Qa => "qa/system.v1",
        Role::Developer => "developer/system.v1",
        Role::TechLead => "tech_lead/system.v1",
        Role::Risk => "risk/system.v1",
        Role::Legal => "legal/system.v1",
        Role::Security => "security/system.v1",
        Role::Custom(_) => "custom/system.v1",
    }
}

/// Builds the agent for `role`: a built-in role's agent, or for a [`Role::Custom`] role a
/// generic agent driven by `config.description` (required for custom roles).
///
/// # Errors
/// [`AgentError::Config`] for an invalid config or a custom role without a description;
/// [`AgentError::Prompt`] if the role's system prompt does not render.
pub fn build_agent(role: Role, config: AgentConfig) -> Result<Arc<dyn Agent>> {
    config.validate()?;
    let name = config.name.clone().unwrap_or_else(|| role.to_string());
    let description = config
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if matches!(role, Role::Custom(_)) && description.is_none() {
        return Err(AgentError::Config {
            key: format!("agents.{role}.description"),
            message: "a custom role needs a description of what it is responsible for".into(),
        });
    }
    let system_prompt = render_prompt(
        system_prompt_template(&role),
        json!({
            "role": role,
            "agent": name,
            "description": description,
            "custom_roles": config.custom_roles,
        }),
    )?;
    let known_custom = config.custom_roles.clone();
    let behaviour: Box<dyn Behaviour> = match &role {
        Role::Ceo => Box::new(ceo::Ceo { known_custom }),
        Role::Cfo | Role::Risk | Role::Legal | Role::Security => Box::new(reviewer::Reviewer),
        Role::Product => Box::new(product::Product),
        Role::Qa => Box::new(qa::Qa),
        Role::Developer => Box::new(developer::Developer),
        Role::TechLead => Box::new(tech_lead::TechLead),
        Role::Custom(_) => Box::new(custom::Custom { known_custom }),
    };
    Ok(Arc::new(RoleAgent {
        core: AgentCore {
            name,
            role,
            config,
            system_prompt,
        },
        behaviour,
    }))
}
