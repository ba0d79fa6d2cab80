//! agentd's orchestrator (work in progress).

mod alert;
mod budget;
mod envelope;
mod error;
mod metrics;
mod orchestrator;
mod pipelines;
mod settings;
mod steplog;

#[cfg(feature = "mock")]
pub use alert::MockAlertSink;
pub use alert::{Alert, AlertKind, AlertSink, Alerts, LogAlertSink, WebhookAlertSink};
pub use budget::{
    BUDGET_DENIED_STATUS, BUDGET_MEMORY_AGENT, BudgetBook, BudgetDenial, BudgetStatus,
    CallDefaults, Spend, estimate_input_tokens,
};
pub use envelope::{Envelope, Pipeline, RELEASE_QUEUE, Route, fingerprint, role_for_kind, route};
pub use error::OrchestratorError;
pub use metrics::Metrics;
pub use orchestrator::{
    LOOP_MEMORY_AGENT, OrchestratorDeps, OrchestratorStatus, RepoSetup, RunLimits, RunSummary,
    RunningTask, TaskOrchestrator,
};
pub use pipelines::{MAX_REVIEW_ROUNDS, feature_branch};
pub use settings::{BudgetSettings, OrchestratorSettings};
pub use steplog::PIPELINE_MEMORY_AGENT;
