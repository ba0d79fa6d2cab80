//! The usage and cost ledger: every provider attempt and every cache lookup, totalled
//! overall and per agent, role and model.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::pricing::PriceTable;
use crate::{CallLabels, Usage};

/// Totals over a set of provider attempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Provider attempts made, failed ones included (a retried call counts each attempt).
    pub requests: u64,
    /// Attempts that ended in an error (HTTP error, timeout, cut-off stream, ...).
    pub failed_requests: u64,
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// Cost in USD of the attempts whose model has a price.
    pub cost_usd: f64,
    /// Successful attempts whose model has no price: their cost is unknown and NOT in
    /// `cost_usd`. When this is non-zero, `cost_usd` is a lower bound.
    pub unpriced_requests: u64,
}

impl UsageTotals {
    fn add(&mut self, usage: Option<&Usage>, cost: Option<f64>) {
        self.requests = self.requests.saturating_add(1);
        match usage {
            None => self.failed_requests = self.failed_requests.saturating_add(1),
            Some(usage) => {
                self.input_tokens = self.input_tokens.saturating_add(usage.input_tokens);
                self.output_tokens = self.output_tokens.saturating_add(usage.output_tokens);
                self.cached_input_tokens = self
                    .cached_input_tokens
                    .saturating_add(usage.cached_input_tokens);
                self.cache_write_tokens = self
                    .cache_write_tokens
                    .saturating_add(usage.cache_write_tokens);
                match cost {
                    Some(cost) => self.cost_usd += cost,
                    None => self.unpriced_requests = self.unpriced_requests.saturating_add(1),
                }
            }
        }
    }
}

/// Hits and misses of the client's response cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCounters {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that looked in the cache and went to the provider.
    pub misses: u64,
    /// Calls that skipped the lookup (`bypass_cache`).
    pub bypassed: u64,
}

/// A point-in-time copy of the ledger, for `agentd status` and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// All attempts.
    pub total: UsageTotals,
    /// Per `CallLabels::agent` (`-` when unlabelled).
    pub by_agent: BTreeMap<String, UsageTotals>,
    /// Per `CallLabels::role` (`-` when unlabelled).
    pub by_role: BTreeMap<String, UsageTotals>,
    /// Per model as the provider named it.
    pub by_model: BTreeMap<String, UsageTotals>,
    /// Models that answered but have no price.
    pub unpriced_models: BTreeSet<String>,
    /// Response cache counters.
    pub cache: CacheCounters,
}

/// Thread-safe running totals. One ledger is shared by every layer of one client.
#[derive(Debug, Default)]
pub struct UsageLedger {
    prices: PriceTable,
    state: Mutex<UsageSnapshot>,
}

const UNLABELLED: &str = "-";

impl UsageLedger {
    /// An empty ledger pricing with `prices`.
    pub fn new(prices: PriceTable) -> Self {
        Self {
            prices,
            state: Mutex::default(),
        }
    }

    /// The price table used for costs.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    fn state(&self) -> MutexGuard<'_, UsageSnapshot> {
        // A panic elsewhere while holding the lock cannot leave the counters inconsistent
        // (each update is a few additions), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one provider attempt: `usage` is `None` for a failed attempt.
    /// Returns the attempt's cost when the model has a price.
    pub fn record_attempt(
        &self,
        labels: &CallLabels,
        model: &str,
        usage: Option<&Usage>,
    ) -> Option<f64> {
        let cost = usage.and_then(|usage| self.prices.cost(model, usage));
        let mut state = self.state();
        state.total.add(usage, cost);
        let agent = labels.agent.as_deref().unwrap_or(UNLABELLED);
        let role = labels.role.as_deref().unwrap_or(UNLABELLED);
        state
            .by_agent
            .entry(agent.to_owned())
            .or_default()
            .add(usage, cost);
        state
            .by_role
            .entry(role.to_owned())
            .or_default()
            .add(usage, cost);
        state
            .by_model
            .entry(model.to_owned())
            .or_default()
            .add(usage, cost);
        if usage.is_some() && cost.is_none() {
            state.unpriced_models.insert(model.to_owned());
        }
        cost
    }

    /// Records a cache lookup.
    pub fn record_cache(&self, outcome: CacheOutcome) {
        let mut state = self.state();
        match outcome {
            CacheOutcome::Hit => state.cache.hits += 1,
            CacheOutcome::Miss => state.cache.misses += 1,
            CacheOutcome::Bypassed => state.cache.bypassed += 1,
        }
    }

    /// A copy of the current totals.
    pub fn snapshot(&self) -> UsageSnapshot {
        self.state().clone()
    }
}

/// Result of a cache lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Answered from the cache.
    Hit,
    /// Not in the cache (or expired).
    Miss,
    /// Lookup skipped on the caller's request.
    Bypassed,
}
