//! Budgets: every LLM call reserves its worst-case cost against the limits of its task, its
//! agent and the day before it is sent, and is settled to its real cost afterwards.
//!
//! Spend is persisted in the [`MemoryStore`] (agent name [`BUDGET_MEMORY_AGENT`], keys
//! `day/<YYYY-MM-DD>`, `agent/<name>/<YYYY-MM-DD>`, `task/<id>`) before the call goes out, so
//! a restart — even after `kill -9` in the middle of a call — never resets the day's spend:
//! at worst, an interrupted call stays counted at its reserved worst case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use agentd_llm::{
    CallLabels, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, Message, PriceTable,
    ProbeReport, StreamEvent,
};
use agentd_memory::{Clock, MemoryStore};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertKind, Alerts};
use crate::metrics::Metrics;
use crate::settings::BudgetSettings;

/// The `agent_name` under which spend records are kept in the [`MemoryStore`].
pub const BUDGET_MEMORY_AGENT: &str = "agentd.budget";

/// HTTP-like status carried by the [`LlmError`] of a denied call ("payment required").
pub const BUDGET_DENIED_STATUS: u16 = 402;

/// Which limit a call hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope")]
pub enum BudgetDenial {
    /// The task's lifetime limit (`budget.per_task_usd`).
    Task {
        /// The task.
        task_id: String,
        /// The limit in USD.
        limit_usd: f64,
        /// USD already spent or reserved.
        spent_usd: f64,
        /// The worst-case cost of the denied call.
        requested_usd: f64,
    },
    /// The agent's daily limit (`budget.per_agent_usd`).
    Agent {
        /// The agent.
        agent: String,
        /// The limit in USD.
        limit_usd: f64,
        /// USD already spent or reserved today.
        spent_usd: f64,
        /// The worst-case cost of the denied call.
        requested_usd: f64,
    },
    /// The daily limit of all agents together (`budget.per_day_usd`).
    Day {
        /// The limit in USD.
        limit_usd: f64,
        /// USD already spent or reserved today.
        spent_usd: f64,
        /// The worst-case cost of the denied call.
        requested_usd: f64,
    },
    /// The model has no price and `budget.allow_unpriced` is false.
    Unpriced {
        /// The model.
        model: String,
    },
}

impl BudgetDenial {
    /// `task`, `agent`, `day` or `unpriced`.
    pub fn scope(&self) -> &'static str {
        match self {
            Self::Task { .. } => "task",
            Self::Agent { .. } => "agent",
            Self::Day { .. } => "day",
            Self::Unpriced { .. } => "unpriced",
        }
    }
}

impl std::fmt::Display for BudgetDenial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Task {
                task_id,
                limit_usd,
                spent_usd,
                requested_usd,
            } => write!(
                f,
                "budget.per_task_usd of task {task_id} would be exceeded: ${spent_usd:.4} spent + ${requested_usd:.4} worst case > ${limit_usd:.4}"
            ),
            Self::Agent {
                agent,
                limit_usd,
                spent_usd,
                requested_usd,
            } => write!(
                f,
                "budget.per_agent_usd of agent {agent} would be exceeded today: ${spent_usd:.4} spent + ${requested_usd:.4} worst case > ${limit_usd:.4}"
            ),
            Self::Day {
                limit_usd,
                spent_usd,
                requested_usd,
            } => write!(
                f,
                "budget.per_day_usd would be exceeded: ${spent_usd:.4} spent today + ${requested_usd:.4} worst case > ${limit_usd:.4}"
            ),
            Self::Unpriced { model } => write!(
                f,
                "model {model} has no price, so its cost cannot be bounded (set llm.prices or budget.allow_unpriced)"
            ),
        }
    }
}

/// The persisted spend of one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spend {
    /// USD spent, plus the worst case of calls in flight (or interrupted by a crash).
    pub spent_usd: f64,
    /// Calls let through.
    pub calls: u64,
    /// Calls that failed (after the client's own retries).
    pub failed_calls: u64,
    /// Calls denied by a limit.
    pub denied_calls: u64,
    /// Calls to models without a price (let through only with `allow_unpriced`).
    pub unpriced_calls: u64,
}

/// What [`BudgetBook::status`] reports for the current day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// The UTC day (`YYYY-MM-DD`).
    pub day: String,
    /// Today's spend of all agents.
    pub today: Spend,
    /// `budget.per_day_usd`, if set.
    pub day_limit_usd: Option<f64>,
    /// What is left of the daily limit (never negative), if there is one.
    pub day_remaining_usd: Option<f64>,
}

/// Defaults the client stack applies below the guard, needed to price a request that
/// does not name them itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDefaults {
    /// The model used when a request names none (`llm.model`).
    pub model: String,
    /// The output token limit used when a request sets none (`llm.max_tokens`).
    pub max_tokens: u32,
}

impl CallDefaults {
    /// The defaults the `llm` section gives the client stack: `llm.model` (or the
    /// provider's default model; empty when neither is set, which prices as unknown) and
    /// `llm.max_tokens`.
    pub fn from_llm_settings(settings: &agentd_llm::LlmSettings) -> Self {
        Self {
            model: settings
                .model
                .clone()
                .or_else(|| settings.provider.default_model().map(str::to_owned))
                .unwrap_or_default(),
            max_tokens: settings.max_tokens,
        }
    }
}

/// The shared budget ledger: limits, prices, the persisted spend per scope, and the
/// denials per task (so the orchestrator can tell a budget stop from other failures).
pub struct BudgetBook {
    settings: BudgetSettings,
    prices: PriceTable,
    store: Arc<dyn MemoryStore>,
    clock: Arc<dyn Clock>,
    alerts: Alerts,
    metrics: Metrics,
    /// Serialises check-then-reserve so concurrent calls cannot overshoot a limit together.
    book: tokio::sync::Mutex<HashMap<String, Spend>>,
    denials: Mutex<HashMap<String, BudgetDenial>>,
}

impl std::fmt::Debug for BudgetBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetBook")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A reservation made before a call, settled after it.
#[derive(Debug)]
struct Reservation {
    keys: Vec<String>,
    reserved_usd: f64,
    model: String,
    priced: bool,
}

impl BudgetBook {
    /// A book enforcing `settings` with `prices`, persisting spend in `store`.
    pub fn new(
        settings: BudgetSettings,
        prices: PriceTable,
        store: Arc<dyn MemoryStore>,
        clock: Arc<dyn Clock>,
        alerts: Alerts,
        metrics: Metrics,
    ) -> Self {
        Self {
            settings,
            prices,
            store,
            clock,
            alerts,
            metrics,
            book: tokio::sync::Mutex::new(HashMap::new()),
            denials: Mutex::new(HashMap::new()),
        }
    }

    /// Wraps `inner` (normally `LlmHandle::client()`) so that every call goes through this
    /// book. `defaults` are the model and max_tokens the stack below fills in.
    pub fn guard(
        self: &Arc<Self>,
        inner: Arc<dyn LlmClient>,
        defaults: CallDefaults,
    ) -> Arc<dyn LlmClient> {
        Arc::new(BudgetGuard {
            inner,
            book: Arc::clone(self),
            defaults,
        })
    }

    /// The current UTC day (`YYYY-MM-DD`) by the book's clock: the key of daily limits.
    pub fn today(&self) -> String {
        self.clock.now().format("%Y-%m-%d").to_string()
    }

    /// The budget denial recorded for `task_id`, if one of its calls was denied. The
    /// orchestrator uses it to pause the task instead of treating it as a plain failure.
    pub fn denial_for(&self, task_id: &str) -> Option<BudgetDenial> {
        self.denials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(task_id)
            .cloned()
    }

    /// Forgets the denial of `task_id` (after the orchestrator paused the task).
    pub fn clear_denial(&self, task_id: &str) {
        self.denials
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(task_id);
    }

    /// Whether today's spend has reached `budget.per_day_usd` (nothing more can be called).
    ///
    /// # Errors
    /// The store's error when the spend cannot be read.
    pub async fn day_exhausted(&self) -> Result<bool, agentd_memory::MemoryError> {
        let status = self.status().await?;
        Ok(status.day_remaining_usd.is_some_and(|left| left <= 0.0))
    }

    /// Today's spend and what is left.
    ///
    /// # Errors
    /// The store's error when the spend cannot be read.
    pub async fn status(&self) -> Result<BudgetStatus, agentd_memory::MemoryError> {
        let day = self.today();
        let key = format!("day/{day}");
        let mut book = self.book.lock().await;
        let today = self.load(&mut book, &key).await?;
        let day_remaining_usd = self
            .settings
            .per_day_usd
            .map(|limit| (limit - today.spent_usd).max(0.0));
        self.metrics
            .set_budget("day", today.spent_usd, day_remaining_usd);
        Ok(BudgetStatus {
            day,
            today,
            day_limit_usd: self.settings.per_day_usd,
            day_remaining_usd,
        })
    }

    /// The persisted spend of one task.
    ///
    /// # Errors
    /// The store's error when the spend cannot be read.
    pub async fn task_spend(&self, task_id: &str) -> Result<Spend, agentd_memory::MemoryError> {
        let mut book = self.book.lock().await;
        self.load(&mut book, &format!("task/{task_id}")).await
    }

    async fn load(
        &self,
        book: &mut HashMap<String, Spend>,
        key: &str,
    ) -> Result<Spend, agentd_memory::MemoryError> {
        if let Some(spend) = book.get(key) {
            return Ok(*spend);
        }
        let spend = match self.store.recall(BUDGET_MEMORY_AGENT, key).await? {
            // A record this build cannot read is not reset to zero silently: it is an error.
            Some(entry) => serde_json::from_value(entry.value).map_err(|error| {
                agentd_memory::MemoryError::Corrupt {
                    what: format!("budget record {key}: {error}"),
                }
            })?,
            None => Spend::default(),
        };
        book.insert(key.to_owned(), spend);
        Ok(spend)
    }

    async fn persist(
        &self,
        book: &HashMap<String, Spend>,
        keys: &[String],
    ) -> Result<(), agentd_memory::MemoryError> {
        let writes = keys.iter().filter_map(|key| {
            let spend = book.get(key)?;
            let value = serde_json::to_value(spend).ok()?;
            Some(self.store.remember(BUDGET_MEMORY_AGENT, key, value))
        });
        for result in futures::future::join_all(writes).await {
            result?;
        }
        Ok(())
    }

    async fn reserve(
        &self,
        labels: &CallLabels,
        model: &str,
        request: &ChatRequest,
        max_tokens: u32,
    ) -> Result<Reservation, LlmError> {
        let day = self.today();
        let mut scopes: Vec<(String, Option<f64>, ScopeName)> = vec![(
            format!("day/{day}"),
            self.settings.per_day_usd,
            ScopeName::Day,
        )];
        if let Some(agent) = &labels.agent {
            scopes.push((
                format!("agent/{agent}/{day}"),
                self.settings.per_agent_usd,
                ScopeName::Agent(agent.clone()),
            ));
        }
        if let Some(task) = &labels.task_id {
            scopes.push((
                format!("task/{task}"),
                self.settings.per_task_usd,
                ScopeName::Task(task.clone()),
            ));
        }
        let keys: Vec<String> = scopes.iter().map(|(key, _, _)| key.clone()).collect();
        let price = self.prices.price(model).copied();
        let worst = price.map(|price| {
            let input = estimate_input_tokens(request) as f64;
            (input * price.input + f64::from(max_tokens) * price.output) / 1e6
        });

        let mut book = self.book.lock().await;
        for key in &keys {
            self.load(&mut book, key).await.map_err(store_failure)?;
        }
        let denial = match worst {
            None if !self.settings.allow_unpriced => Some(BudgetDenial::Unpriced {
                model: model.to_owned(),
            }),
            None => None,
            Some(worst) => scopes.iter().find_map(|(key, limit, scope)| {
                let limit = (*limit)?;
                let spent = book.get(key).map_or(0.0, |s| s.spent_usd);
                (spent + worst > limit).then(|| scope.denial(limit, spent, worst))
            }),
        };
        if let Some(denial) = denial {
            for key in &keys {
                book.entry(key.clone()).or_default().denied_calls += 1;
            }
            self.persist(&book, &keys).await.map_err(store_failure)?;
            drop(book);
            self.deny(labels, &denial).await;
            return Err(LlmError::Http {
                provider: "budget",
                status: BUDGET_DENIED_STATUS,
                message: denial.to_string(),
                request_id: None,
                retry_after: None,
                should_retry: Some(false),
            });
        }
        let reserved_usd = worst.unwrap_or(0.0);
        for key in &keys {
            let spend = book.entry(key.clone()).or_default();
            spend.spent_usd += reserved_usd;
            spend.calls += 1;
            if worst.is_none() {
                spend.unpriced_calls += 1;
            }
        }
        // Durable before the call leaves: a crash during the call keeps the worst case counted.
        self.persist(&book, &keys).await.map_err(store_failure)?;
        Ok(Reservation {
            keys,
            reserved_usd,
            model: model.to_owned(),
            priced: worst.is_some(),
        })
    }

    async fn settle(&self, reservation: Reservation, outcome: Result<&ChatResponse, ()>) {
        let actual = match outcome {
            Ok(response) if reservation.priced => {
                // The answering model may be a dated variant; fall back to the requested one.
                self.prices
                    .cost(&response.model, &response.usage)
                    .or_else(|| self.prices.cost(&reservation.model, &response.usage))
                    .unwrap_or(reservation.reserved_usd)
            }
            _ => 0.0,
        };
        let mut book = self.book.lock().await;
        for key in &reservation.keys {
            let spend = book.entry(key.clone()).or_default();
            spend.spent_usd = (spend.spent_usd - reservation.reserved_usd + actual).max(0.0);
            if outcome.is_err() {
                spend.failed_calls += 1;
            }
            if key.starts_with("day/") {
                let remaining = self
                    .settings
                    .per_day_usd
                    .map(|limit| (limit - spend.spent_usd).max(0.0));
                self.metrics.set_budget("day", spend.spent_usd, remaining);
            }
        }
        if let Err(error) = self.persist(&book, &reservation.keys).await {
            // The reservation (the worst case) stays persisted: spend is over-, never under-counted.
            tracing::warn!(%error, "could not persist the settled LLM cost; the reserved worst case stays counted");
        }
    }

    async fn deny(&self, labels: &CallLabels, denial: &BudgetDenial) {
        self.metrics.budget_denied(denial.scope());
        self.metrics.alert(AlertKind::Budget.as_str());
        if let Some(task) = &labels.task_id {
            self.denials
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(task.clone(), denial.clone());
        }
        let mut alert = Alert::new(AlertKind::Budget, format!("LLM call denied: {denial}"))
            .with_details(serde_json::to_value(denial).unwrap_or_default());
        if let Some(task) = &labels.task_id {
            alert = alert.with_task(task.clone());
        }
        if let Some(role) = &labels.role {
            alert = alert.with_role(role.clone());
        }
        self.alerts.raise(alert).await;
    }
}

enum ScopeName {
    Day,
    Agent(String),
    Task(String),
}

impl ScopeName {
    fn denial(&self, limit_usd: f64, spent_usd: f64, requested_usd: f64) -> BudgetDenial {
        match self {
            Self::Day => BudgetDenial::Day {
                limit_usd,
                spent_usd,
                requested_usd,
            },
            Self::Agent(agent) => BudgetDenial::Agent {
                agent: agent.clone(),
                limit_usd,
                spent_usd,
                requested_usd,
            },
            Self::Task(task_id) => BudgetDenial::Task {
                task_id: task_id.clone(),
                limit_usd,
                spent_usd,
                requested_usd,
            },
        }
    }
}

fn store_failure(error: agentd_memory::MemoryError) -> LlmError {
    LlmError::Http {
        provider: "budget",
        status: 503,
        message: format!(
            "the budget ledger cannot be read or written, so the call is not sent: {error}"
        ),
        request_id: None,
        retry_after: None,
        should_retry: Some(false),
    }
}

/// A generous estimate of the prompt's tokens: one per three bytes of everything sent
/// (system prompt, messages, tool definitions, schema), plus a per-message overhead.
/// Over-estimating only makes the reservation safer; settling corrects it.
pub fn estimate_input_tokens(request: &ChatRequest) -> u64 {
    let mut bytes = request.system.as_ref().map_or(0, String::len);
    for message in &request.messages {
        bytes += 16
            + match message {
                Message::User { content } => content.len(),
                Message::Assistant {
                    content,
                    tool_calls,
                } => {
                    content.len()
                        + tool_calls
                            .iter()
                            .map(|call| call.name.len() + call.arguments.len())
                            .sum::<usize>()
                }
                Message::Tool { content, .. } => content.len(),
            };
    }
    for tool in &request.tools {
        bytes += tool.name.len() + tool.description.len() + tool.parameters.to_string().len();
    }
    if let agentd_llm::ResponseFormat::JsonSchema { schema, .. } = &request.response_format {
        bytes += schema.to_string().len();
    }
    (bytes as u64).div_ceil(3) + 16
}

/// The [`LlmClient`] decorator built by [`BudgetBook::guard`].
struct BudgetGuard {
    inner: Arc<dyn LlmClient>,
    book: Arc<BudgetBook>,
    defaults: CallDefaults,
}

impl BudgetGuard {
    fn priced_as(&self, request: &ChatRequest) -> (String, u32) {
        let model = request
            .options
            .model
            .clone()
            .unwrap_or_else(|| self.defaults.model.clone());
        let max_tokens = request
            .options
            .max_tokens
            .unwrap_or(self.defaults.max_tokens);
        (model, max_tokens)
    }
}

#[async_trait::async_trait]
impl LlmClient for BudgetGuard {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let (model, max_tokens) = self.priced_as(&request);
        let labels = request.options.labels.clone();
        let reservation = self
            .book
            .reserve(&labels, &model, &request, max_tokens)
            .await?;
        let result = self.inner.chat(request).await;
        self.book
            .settle(reservation, result.as_ref().map_err(|_| ()))
            .await;
        result
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let (model, max_tokens) = self.priced_as(&request);
        let labels = request.options.labels.clone();
        let reservation = self
            .book
            .reserve(&labels, &model, &request, max_tokens)
            .await?;
        let stream = match self.inner.chat_stream(request).await {
            Ok(stream) => stream,
            Err(error) => {
                self.book.settle(reservation, Err(())).await;
                return Err(error);
            }
        };
        // Settle when the final event arrives; a stream dropped early keeps the worst case.
        let book = Arc::clone(&self.book);
        let mut reservation = Some(reservation);
        let settled = stream.then(move |event| {
            let book = Arc::clone(&book);
            let pending = match &event {
                Ok(StreamEvent::Done(_)) | Err(_) => reservation.take(),
                _ => None,
            };
            async move {
                if let Some(pending) = pending {
                    match &event {
                        Ok(StreamEvent::Done(response)) => book.settle(pending, Ok(response)).await,
                        _ => book.settle(pending, Err(())).await,
                    }
                }
                event
            }
        });
        Ok(Box::pin(settled))
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.inner.probe().await
    }
}
