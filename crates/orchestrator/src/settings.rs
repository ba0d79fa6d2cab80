//! The config file's `orchestrator` section.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::OrchestratorError;

/// The `orchestrator` section of `agentd.yaml`.
///
/// ```yaml
/// orchestrator:
///   check_interval: 5        # seconds between passes of the main loop
///   max_task_attempts: 3     # claims per task before it is dead-lettered and escalated
///   task_timeout: 1800       # seconds a task may run before its lease expires
///   concurrency: { developer: 2 }   # workers per role (default 1 each)
///   goal: "Build a CLI calculator"  # what the CEO plans towards when the queue is empty
///   loop_threshold: 3        # failures of one task fingerprint before it is quarantined
///   budget: { per_task_usd: 1.0, per_agent_usd: 5.0, per_day_usd: 20.0, allow_unpriced: false }
///   alert_webhook: https://hooks.example.com/agentd
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrchestratorSettings {
    /// Seconds between two passes of the main loop (health, idle CEO, stuck-task sweep,
    /// escalation). Default 5.
    pub check_interval: f64,
    /// How many times a task is claimed before it is dead-lettered and escalated. Default 3.
    pub max_task_attempts: u32,
    /// Seconds a task may run before its lease expires and it is reclaimed; also the time
    /// limit of one task's work. Default 1800.
    pub task_timeout: f64,
    /// Workers per role, e.g. `{ developer: 2, qa: 1 }`. Roles not listed get one worker.
    pub concurrency: BTreeMap<String, usize>,
    /// The goal the CEO plans towards when nothing is pending or running. `agentd run
    /// --goal` overrides it. Default: keep improving the repository's quality and tests.
    pub goal: Option<String>,
    /// How many times one task fingerprint (role, kind and normalised title) may fail
    /// before further tasks with it are quarantined (cancelled and alerted) instead of
    /// retried. Default 3.
    pub loop_threshold: u32,
    /// Spending limits, enforced before each LLM call.
    pub budget: BudgetSettings,
    /// URL that receives every alert as a JSON POST (in addition to the log). None: log only.
    pub alert_webhook: Option<String>,
    /// Most tasks the CEO creates in one planning round. Default 5.
    pub max_generated_tasks: usize,
}

impl Default for OrchestratorSettings {
    fn default() -> Self {
        Self {
            check_interval: 5.0,
            max_task_attempts: 3,
            task_timeout: 1800.0,
            concurrency: BTreeMap::new(),
            goal: None,
            loop_threshold: 3,
            budget: BudgetSettings::default(),
            alert_webhook: None,
            max_generated_tasks: 5,
        }
    }
}

/// The `orchestrator.budget` section: USD limits checked before every LLM call against a
/// reservation of the call's worst-case cost. Unset limits are unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSettings {
    /// Most USD one task may spend over its whole life (all attempts, all roles).
    pub per_task_usd: Option<f64>,
    /// Most USD one agent (e.g. `developer-1`) may spend per UTC day.
    pub per_agent_usd: Option<f64>,
    /// Most USD all agents together may spend per UTC day.
    pub per_day_usd: Option<f64>,
    /// Whether calls to a model without a known price are allowed (they then count as
    /// free). Default false: such calls are denied, since their cost cannot be bounded.
    pub allow_unpriced: bool,
}

impl OrchestratorSettings {
    /// `check_interval` as a duration.
    ///
    /// # Errors
    /// [`OrchestratorError::Config`] when it is not a positive number of seconds.
    pub fn check_interval(&self) -> Result<Duration, OrchestratorError> {
        positive_seconds("check_interval", self.check_interval)
    }

    /// `task_timeout` as a duration.
    ///
    /// # Errors
    /// [`OrchestratorError::Config`] when it is not a positive number of seconds.
    pub fn task_timeout(&self) -> Result<Duration, OrchestratorError> {
        positive_seconds("task_timeout", self.task_timeout)
    }

    /// Workers for `role` (at least 1).
    pub fn workers_for(&self, role: &str) -> usize {
        self.concurrency.get(role).copied().unwrap_or(1).max(1)
    }

    /// Checks every value, naming the first bad key.
    ///
    /// # Errors
    /// [`OrchestratorError::Config`] naming the key.
    pub fn validate(&self) -> Result<(), OrchestratorError> {
        self.check_interval()?;
        self.task_timeout()?;
        if self.max_task_attempts == 0 {
            return Err(config("max_task_attempts", "must be at least 1"));
        }
        if self.loop_threshold == 0 {
            return Err(config("loop_threshold", "must be at least 1"));
        }
        for (key, limit) in [
            ("budget.per_task_usd", self.budget.per_task_usd),
            ("budget.per_agent_usd", self.budget.per_agent_usd),
            ("budget.per_day_usd", self.budget.per_day_usd),
        ] {
            if let Some(limit) = limit
                && !(limit.is_finite() && limit >= 0.0)
            {
                return Err(config(key, "must be a non-negative number of USD"));
            }
        }
        if let Some(url) = &self.alert_webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(config(
                "alert_webhook",
                "must be an http:// or https:// URL",
            ));
        }
        Ok(())
    }
}

fn config(key: &str, message: &str) -> OrchestratorError {
    OrchestratorError::Config {
        key: format!("orchestrator.{key}"),
        message: message.to_owned(),
    }
}

fn positive_seconds(key: &str, seconds: f64) -> Result<Duration, OrchestratorError> {
    if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(config(
            key,
            &format!("must be a positive number of seconds, got {seconds}"),
        ))
    }
}
