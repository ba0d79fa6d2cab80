//! Prometheus metrics owned by the orchestrator; the binary serves [`Metrics::encode`] at
//! `--metrics-addr`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agentd_llm::{UsageLedger, UsageTotals};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::OrchestratorError;

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn duration_histogram() -> Histogram {
    // 10 ms .. ~1.5 h: a step that only routes, up to a long developer run.
    Histogram::new(exponential_buckets(0.01, 3.0, 12))
}

/// Every metric the orchestrator records. Cheap to clone; clones share the values.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    ledger: Option<Arc<UsageLedger>>,
    tasks_completed: Family<Labels, Counter>,
    tasks_failed: Family<Labels, Counter>,
    task_duration: Family<Labels, Histogram, fn() -> Histogram>,
    step_duration: Family<Labels, Histogram, fn() -> Histogram>,
    success_rate: FloatGauge,
    completed_total: AtomicU64,
    failed_total: AtomicU64,
    errors: Family<Labels, Counter>,
    alerts: Family<Labels, Counter>,
    queue_depth: Family<Labels, Gauge>,
    budget_spent: Family<Labels, FloatGauge>,
    budget_remaining: Family<Labels, FloatGauge>,
    budget_denials: Family<Labels, Counter>,
    llm_requests: Family<Labels, FloatGauge>,
    llm_failed: Family<Labels, FloatGauge>,
    llm_tokens: Family<Labels, FloatGauge>,
    llm_cost: Family<Labels, FloatGauge>,
    llm_cache: Family<Labels, FloatGauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// A fresh registry. With `ledger`, the LLM usage (requests, tokens, cost per role and
    /// model, cache hits) is read from it at each [`Metrics::encode`].
    pub fn new(ledger: Option<Arc<UsageLedger>>) -> Self {
        let mut registry = Registry::with_prefix("agentd");
        let inner = Inner {
            tasks_completed: Family::default(),
            tasks_failed: Family::default(),
            task_duration: Family::new_with_constructor(duration_histogram),
            step_duration: Family::new_with_constructor(duration_histogram),
            success_rate: FloatGauge::default(),
            completed_total: AtomicU64::new(0),
            failed_total: AtomicU64::new(0),
            errors: Family::default(),
            alerts: Family::default(),
            queue_depth: Family::default(),
            budget_spent: Family::default(),
            budget_remaining: Family::default(),
            budget_denials: Family::default(),
            llm_requests: Family::default(),
            llm_failed: Family::default(),
            llm_tokens: Family::default(),
            llm_cost: Family::default(),
            llm_cache: Family::default(),
            registry: Registry::default(),
            ledger,
        };
        registry.register(
            "tasks_completed",
            "Tasks completed, per role",
            inner.tasks_completed.clone(),
        );
        registry.register(
            "tasks_failed",
            "Task attempts that failed, per role",
            inner.tasks_failed.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Wall time of one task attempt, per role",
            inner.task_duration.clone(),
        );
        registry.register(
            "pipeline_step_duration_seconds",
            "Wall time of one pipeline step, per pipeline and step",
            inner.step_duration.clone(),
        );
        registry.register(
            "task_success_rate",
            "Completed / (completed + failed) task attempts since start",
            inner.success_rate.clone(),
        );
        registry.register(
            "errors",
            "Errors handled by the orchestrator, per kind",
            inner.errors.clone(),
        );
        registry.register("alerts", "Alerts raised, per kind", inner.alerts.clone());
        registry.register(
            "queue_depth",
            "Tasks per role and status",
            inner.queue_depth.clone(),
        );
        registry.register(
            "budget_spent_usd",
            "USD spent (reserved worst cases included) per budget scope",
            inner.budget_spent.clone(),
        );
        registry.register(
            "budget_remaining_usd",
            "USD left per limited budget scope",
            inner.budget_remaining.clone(),
        );
        registry.register(
            "budget_denials",
            "LLM calls denied by a budget, per scope",
            inner.budget_denials.clone(),
        );
        registry.register(
            "llm_requests",
            "LLM provider attempts, per role or model",
            inner.llm_requests.clone(),
        );
        registry.register(
            "llm_failed_requests",
            "Failed LLM provider attempts, per role or model",
            inner.llm_failed.clone(),
        );
        registry.register(
            "llm_tokens",
            "LLM tokens, per direction and role or model",
            inner.llm_tokens.clone(),
        );
        registry.register(
            "llm_cost_usd",
            "LLM cost in USD, per role or model",
            inner.llm_cost.clone(),
        );
        registry.register(
            "llm_cache",
            "LLM response cache lookups, per outcome",
            inner.llm_cache.clone(),
        );
        Self {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }

    /// A task attempt of `role` finished, successfully or not, after `elapsed`.
    pub fn task_finished(&self, role: &str, succeeded: bool, elapsed: Duration) {
        let labels = vec![("role", role.to_owned())];
        if succeeded {
            self.inner.tasks_completed.get_or_create(&labels).inc();
        } else {
            self.inner.tasks_failed.get_or_create(&labels).inc();
        }
        self.inner
            .task_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let counter = if succeeded {
            &self.inner.completed_total
        } else {
            &self.inner.failed_total
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let completed = self.inner.completed_total.load(Ordering::Relaxed);
        let total = completed + self.inner.failed_total.load(Ordering::Relaxed);
        if total > 0 {
            self.inner.success_rate.set(completed as f64 / total as f64);
        }
    }

    /// A pipeline step took `elapsed`.
    pub fn step_finished(&self, pipeline: &str, step: &str, elapsed: Duration) {
        self.inner
            .step_duration
            .get_or_create(&vec![
                ("pipeline", pipeline.to_owned()),
                ("step", step.to_owned()),
            ])
            .observe(elapsed.as_secs_f64());
    }

    /// The orchestrator handled an error of `kind` (e.g. `store`, `agent`, `timeout`).
    pub fn error(&self, kind: &str) {
        self.inner
            .errors
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    /// An alert of `kind` was raised.
    pub fn alert(&self, kind: &str) {
        self.inner
            .alerts
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    /// Sets the number of tasks of `role` in `status`.
    pub fn set_queue_depth(&self, role: &str, status: &str, count: u64) {
        self.inner
            .queue_depth
            .get_or_create(&vec![
                ("role", role.to_owned()),
                ("status", status.to_owned()),
            ])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets the spend and (when limited) the remaining USD of a budget scope
    /// (`day`, `agent:<name>`, `task:<id>`).
    pub fn set_budget(&self, scope: &str, spent: f64, remaining: Option<f64>) {
        let labels = vec![("scope", scope.to_owned())];
        self.inner.budget_spent.get_or_create(&labels).set(spent);
        if let Some(remaining) = remaining {
            self.inner
                .budget_remaining
                .get_or_create(&labels)
                .set(remaining);
        }
    }

    /// A call was denied by the budget of `scope` (`task`, `agent`, `day`, `unpriced`).
    pub fn budget_denied(&self, scope: &str) {
        self.inner
            .budget_denials
            .get_or_create(&vec![("scope", scope.to_owned())])
            .inc();
    }

    /// The registry in the Prometheus text format, with the LLM usage refreshed from the
    /// ledger first.
    ///
    /// # Errors
    /// [`OrchestratorError::Metrics`] if encoding fails (it only does on a formatter error).
    pub fn encode(&self) -> Result<String, OrchestratorError> {
        self.refresh_llm_usage();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry).map_err(
            |error| OrchestratorError::Metrics {
                message: error.to_string(),
            },
        )?;
        Ok(text)
    }

    fn refresh_llm_usage(&self) {
        let Some(ledger) = &self.inner.ledger else {
            return;
        };
        let usage = ledger.snapshot();
        let groups = [("role", &usage.by_role), ("model", &usage.by_model)];
        for (dimension, totals) in groups {
            for (name, totals) in totals {
                self.set_usage(dimension, name, totals);
            }
        }
        self.set_usage("total", "all", &usage.total);
        for (outcome, count) in [
            ("hit", usage.cache.hits),
            ("miss", usage.cache.misses),
            ("bypassed", usage.cache.bypassed),
        ] {
            self.inner
                .llm_cache
                .get_or_create(&vec![("outcome", outcome.to_owned())])
                .set(count as f64);
        }
    }

    fn set_usage(&self, dimension: &'static str, name: &str, totals: &UsageTotals) {
        let labels = vec![(dimension, name.to_owned())];
        self.inner
            .llm_requests
            .get_or_create(&labels)
            .set(totals.requests as f64);
        self.inner
            .llm_failed
            .get_or_create(&labels)
            .set(totals.failed_requests as f64);
        self.inner
            .llm_cost
            .get_or_create(&labels)
            .set(totals.cost_usd);
        for (direction, tokens) in [
            ("input", totals.input_tokens),
            ("output", totals.output_tokens),
            ("cached_input", totals.cached_input_tokens),
        ] {
            let mut labels = labels.clone();
            labels.push(("direction", direction.to_owned()));
            self.inner
                .llm_tokens
                .get_or_create(&labels)
                .set(tokens as f64);
        }
    }
}
