//! Model prices and the cost of a response.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Usage;

/// Price of one model in USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Uncached prompt tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Prompt tokens read from the provider's prompt cache. Default: the `input` price.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Prompt tokens written to the provider's prompt cache. Default: the `input` price.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl ModelPrice {
    const fn openai(input: f64, output: f64, cached_input: f64) -> Self {
        Self {
            input,
            output,
            cached_input: Some(cached_input),
            cache_write: None,
        }
    }

    /// Anthropic bills cache reads at 0.1x and 5-minute cache writes at 1.25x the input price.
    const fn anthropic(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cached_input: Some(input * 0.1),
            cache_write: Some(input * 1.25),
        }
    }

    /// Cost in USD of `usage` at this price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_input_tokens;
        let written = usage.cache_write_tokens;
        let plain = usage
            .input_tokens
            .saturating_sub(cached.saturating_add(written));
        let per_token = |tokens: u64, usd_per_million: f64| tokens as f64 * usd_per_million / 1e6;
        per_token(plain, self.input)
            + per_token(cached, self.cached_input.unwrap_or(self.input))
            + per_token(written, self.cache_write.unwrap_or(self.input))
            + per_token(usage.output_tokens, self.output)
    }
}

/// List prices (USD per million tokens) as published by OpenAI and Anthropic in 2025.
const DEFAULT_PRICES: &[(&str, ModelPrice)] = &[
    ("gpt-5", ModelPrice::openai(1.25, 10.0, 0.125)),
    ("gpt-5-mini", ModelPrice::openai(0.25, 2.0, 0.025)),
    ("gpt-5-nano", ModelPrice::openai(0.05, 0.40, 0.005)),
    ("gpt-4.1", ModelPrice::openai(2.0, 8.0, 0.50)),
    ("gpt-4.1-mini", ModelPrice::openai(0.40, 1.60, 0.10)),
    ("gpt-4.1-nano", ModelPrice::openai(0.10, 0.40, 0.025)),
    ("gpt-4o", ModelPrice::openai(2.50, 10.0, 1.25)),
    ("gpt-4o-mini", ModelPrice::openai(0.15, 0.60, 0.075)),
    ("o3", ModelPrice::openai(2.0, 8.0, 0.50)),
    ("o3-mini", ModelPrice::openai(1.10, 4.40, 0.55)),
    ("o4-mini", ModelPrice::openai(1.10, 4.40, 0.275)),
    ("claude-opus-4-5", ModelPrice::anthropic(5.0, 25.0)),
    ("claude-opus-4-1", ModelPrice::anthropic(15.0, 75.0)),
    ("claude-opus-4", ModelPrice::anthropic(15.0, 75.0)),
    ("claude-sonnet-4-5", ModelPrice::anthropic(3.0, 15.0)),
    ("claude-sonnet-4", ModelPrice::anthropic(3.0, 15.0)),
    ("claude-haiku-4-5", ModelPrice::anthropic(1.0, 5.0)),
    ("claude-3-7-sonnet", ModelPrice::anthropic(3.0, 15.0)),
    ("claude-3-5-haiku", ModelPrice::anthropic(0.80, 4.0)),
    ("claude-3-opus", ModelPrice::anthropic(15.0, 75.0)),
];

/// Prices by model name: the built-in list, overridden and extended by `llm.prices`.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::new(&BTreeMap::new())
    }
}

impl PriceTable {
    /// The built-in prices with `overrides` applied on top.
    pub fn new(overrides: &BTreeMap<String, ModelPrice>) -> Self {
        let mut prices: BTreeMap<String, ModelPrice> = DEFAULT_PRICES
            .iter()
            .map(|(model, price)| ((*model).to_owned(), *price))
            .collect();
        prices.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        Self { prices }
    }

    /// The price of `model`: its own entry, or the entry of the model it is a dated or
    /// `-latest` variant of (`gpt-4o-2024-08-06`, `claude-haiku-4-5-20251001`,
    /// `claude-3-opus-latest`). `None` when unknown.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(price) = self.prices.get(model) {
            return Some(price);
        }
        self.prices.get(undated(model)?)
    }

    /// Cost in USD of `usage` on `model`; `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|price| price.cost(usage))
    }
}

/// The model name without a `-20251001`, `-2024-08-06` or `-latest` suffix; `None`
/// when there is no such suffix.
fn undated(model: &str) -> Option<&str> {
    if let Some(base) = model.strip_suffix("-latest") {
        return Some(base);
    }
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, suffix)) = model.rsplit_once('-')
        && suffix.len() == 8
        && is_digits(suffix)
    {
        return Some(base);
    }
    let mut parts = model.rsplitn(4, '-');
    let (day, month, year, base) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let iso_date = year.len() == 4
        && month.len() == 2
        && day.len() == 2
        && is_digits(year)
        && is_digits(month)
        && is_digits(day);
    iso_date.then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_variants_use_the_undated_price() {
        let table = PriceTable::default();
        assert_eq!(table.price("gpt-4o-2024-08-06"), table.price("gpt-4o"));
        assert_eq!(
            table.price("gpt-4o-mini-2024-07-18"),
            table.price("gpt-4o-mini")
        );
        assert_eq!(
            table.price("claude-haiku-4-5-20251001"),
            table.price("claude-haiku-4-5")
        );
        assert_eq!(
            table.price("claude-3-opus-latest"),
            table.price("claude-3-opus")
        );
        assert!(table.price("gpt-4o").is_some());
        assert!(table.price("gpt-4o-audio-preview").is_none());
        assert!(table.price("claude-sonnet-4-6").is_none());
        assert!(table.price("llama3.2").is_none());
    }

    #[test]
    fn cost_splits_cached_and_written_tokens() {
        let table = PriceTable::default();
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            cached_input_tokens: 400_000,
            cache_write_tokens: 100_000,
        };
        // claude-sonnet-4-5: 500k plain * 3 + 400k * 0.3 + 100k * 3.75 + 1M * 15
        let cost = table.cost("claude-sonnet-4-5", &usage).unwrap_or(f64::NAN);
        assert!((cost - (1.5 + 0.12 + 0.375 + 15.0)).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn overrides_replace_and_extend() {
        let mut overrides = BTreeMap::new();
        let local = ModelPrice {
            input: 0.0,
            output: 0.0,
            cached_input: None,
            cache_write: None,
        };
        overrides.insert("llama3.2".to_owned(), local);
        let table = PriceTable::new(&overrides);
        assert_eq!(table.cost("llama3.2", &Usage::default()), Some(0.0));
    }
}
