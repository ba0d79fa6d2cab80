//! Alerts: critical errors, loops, API limits, budgets and git problems, sent to the log and
//! optionally to a webhook.
//!
//! The webhook lives here rather than in the binary so that programs embedding the
//! orchestrator get the same alerts; it reuses the reqwest build agentd-llm already compiles.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::OrchestratorError;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An error the loop could not handle by retrying (a store down, a pipeline broken).
    Critical,
    /// The same task fingerprint failed again and again and was quarantined.
    Loop,
    /// The LLM provider refused or limited calls (rate limit, auth, quota).
    ApiLimit,
    /// A budget limit was reached; the work it denied is paused.
    Budget,
    /// A git operation failed (merge conflict, protected branch, push refused).
    Git,
    /// A task exhausted its attempts and was escalated.
    Escalation,
}

impl AlertKind {
    /// The snake_case name used in logs, JSON and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Loop => "loop",
            Self::ApiLimit => "api_limit",
            Self::Budget => "budget",
            Self::Git => "git",
            Self::Escalation => "escalation",
        }
    }
}

/// One alert. Serialized as the webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// One line for a human.
    pub message: String,
    /// The task concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The role concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Structured details (limits, fingerprints, errors).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// When it was raised.
    pub at: DateTime<Utc>,
}

impl Alert {
    /// An alert raised now, without task, role or details.
    pub fn new(kind: AlertKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            task_id: None,
            role: None,
            details: serde_json::Value::Null,
            at: Utc::now(),
        }
    }

    /// Names the task concerned.
    pub fn with_task(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = Some(task_id.into());
        self
    }

    /// Names the role concerned.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Where alerts go. Object-safe: `Arc<dyn AlertSink>`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait AlertSink: Send + Sync {
    /// Delivers one alert.
    ///
    /// # Errors
    /// [`OrchestratorError::Alert`] when the destination refused it or could not be reached.
    /// The orchestrator logs such errors and goes on: an alert never stops the work.
    async fn send(&self, alert: &Alert) -> Result<(), OrchestratorError>;
}

/// Writes alerts to the log (`tracing` at error level for critical, loop and budget alerts,
/// warn otherwise), as structured fields.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAlertSink;

#[async_trait::async_trait]
impl AlertSink for LogAlertSink {
    async fn send(&self, alert: &Alert) -> Result<(), OrchestratorError> {
        let task_id = alert.task_id.as_deref().unwrap_or("-");
        let role = alert.role.as_deref().unwrap_or("-");
        match alert.kind {
            AlertKind::Critical | AlertKind::Loop | AlertKind::Budget => tracing::error!(
                alert = alert.kind.as_str(), task_id, role, details = %alert.details,
                "ALERT: {}", alert.message
            ),
            _ => tracing::warn!(
                alert = alert.kind.as_str(), task_id, role, details = %alert.details,
                "ALERT: {}", alert.message
            ),
        }
        Ok(())
    }
}

/// Posts each alert as JSON (the [`Alert`] fields) to a URL, with a timeout. A non-2xx
/// answer is an error naming the status.
#[derive(Debug, Clone)]
pub struct WebhookAlertSink {
    client: reqwest::Client,
    url: String,
}

impl WebhookAlertSink {
    /// A sink posting to `url`, each request limited to `timeout`.
    ///
    /// # Errors
    /// [`OrchestratorError::Alert`] when the HTTP client cannot be built.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, OrchestratorError> {
        let url = url.into();
        // reqwest is built without a default TLS crypto provider; install ring's once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| OrchestratorError::Alert {
                sink: "webhook",
                message: format!("cannot build the HTTP client for {url}: {error}"),
            })?;
        Ok(Self { client, url })
    }
}

#[async_trait::async_trait]
impl AlertSink for WebhookAlertSink {
    async fn send(&self, alert: &Alert) -> Result<(), OrchestratorError> {
        let failed = |message: String| OrchestratorError::Alert {
            sink: "webhook",
            message,
        };
        let response = self
            .client
            .post(&self.url)
            .json(alert)
            .send()
            .await
            .map_err(|error| failed(format!("POST {}: {error}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("POST {} answered HTTP {status}", self.url)))
        }
    }
}

/// Sends every alert to several sinks; a failing sink is logged and does not stop the others.
#[derive(Clone, Default)]
pub struct Alerts {
    sinks: Vec<Arc<dyn AlertSink>>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Alerts {
    /// Alerts to the given sinks.
    pub fn new(sinks: Vec<Arc<dyn AlertSink>>) -> Self {
        Self { sinks }
    }

    /// The log sink, plus a webhook sink when `webhook` is set (10 s timeout per post).
    ///
    /// # Errors
    /// As [`WebhookAlertSink::new`].
    pub fn log_and_webhook(webhook: Option<&str>) -> Result<Self, OrchestratorError> {
        let mut sinks: Vec<Arc<dyn AlertSink>> = vec![Arc::new(LogAlertSink)];
        if let Some(url) = webhook {
            sinks.push(Arc::new(WebhookAlertSink::new(
                url,
                Duration::from_secs(10),
            )?));
        }
        Ok(Self { sinks })
    }

    /// Delivers `alert` to every sink; failures are logged, never returned.
    pub async fn raise(&self, alert: Alert) {
        for sink in &self.sinks {
            if let Err(error) = sink.send(&alert).await {
                tracing::warn!(%error, alert = alert.kind.as_str(), "alert delivery failed");
            }
        }
    }
}
