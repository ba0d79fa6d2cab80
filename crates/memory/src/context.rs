//! `ContextManager`: per-agent and global context (strategy, goals, project facts) kept in a
//! [`MemoryStore`], and the assembly of a prompt's context within a size budget.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{LogQuery, MemoryStore, Page, Result};

/// The `agent_name` under which the global context is stored.
pub const GLOBAL_SCOPE: &str = "__global__";
const STRATEGY_KEY: &str = "context.strategy";
const GOALS_KEY: &str = "context.goals";
const FACT_PREFIX: &str = "context.fact.";
/// Longest single line taken into an assembled context; longer ones are cut.
const MAX_LINE_CHARS: usize = 1_000;
/// How many entries of each kind are considered for an assembled context.
const CANDIDATES: u32 = 200;

/// Whose context: everyone's, or one agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Shared by all agents.
    Global,
    /// One agent's (by its name).
    Agent(&'a str),
}

impl Scope<'_> {
    fn agent_name(self) -> String {
        match self {
            Scope::Global => GLOBAL_SCOPE.to_owned(),
            Scope::Agent(name) => name.to_owned(),
        }
    }
}

/// The stored context of one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeContext {
    /// The strategy, if set.
    pub strategy: Option<String>,
    /// The goals, in order.
    pub goals: Vec<String>,
    /// Project facts as (name, text), most recently updated first.
    pub facts: Vec<(String, String)>,
}

/// A context assembled for a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledContext {
    /// Markdown sections, at most the budget's number of characters.
    pub text: String,
    /// Items included.
    pub included: usize,
    /// Items left out for lack of room.
    pub omitted: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Strategy,
    Goals,
    Facts,
    Memory,
    Activity,
    Decisions,
}

impl Section {
    fn heading(self) -> &'static str {
        match self {
            Self::Strategy => "## Strategy",
            Self::Goals => "## Goals",
            Self::Facts => "## Project facts",
            Self::Memory => "## Memory",
            Self::Activity => "## Recent activity",
            Self::Decisions => "## Recent decisions",
        }
    }
}

#[derive(Debug)]
struct Item {
    section: Section,
    line: String,
    relevance: usize,
    at: DateTime<Utc>,
}

/// Keeps strategy, goals and facts per scope, and assembles prompt context.
///
/// Assembly order: strategies and goals always come first (cut to fit if need be); then facts,
/// agent memory, the agent's recent activities and decisions, ranked by relevance to the
/// prompt (shared words), then by recency; whatever does not fit the budget is left out whole.
#[derive(Clone)]
pub struct ContextManager {
    store: Arc<dyn MemoryStore>,
}

impl std::fmt::Debug for ContextManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextManager").finish_non_exhaustive()
    }
}

impl ContextManager {
    /// A manager over `store`.
    pub fn new(store: Arc<dyn MemoryStore>) -> Self {
        Self { store }
    }

    /// Sets the scope's strategy.
    pub async fn set_strategy(&self, scope: Scope<'_>, strategy: &str) -> Result<()> {
        self.store
            .remember(&scope.agent_name(), STRATEGY_KEY, Value::from(strategy))
            .await
            .map(drop)
    }

    /// Replaces the scope's goals.
    pub async fn set_goals(&self, scope: Scope<'_>, goals: &[String]) -> Result<()> {
        self.store
            .remember(&scope.agent_name(), GOALS_KEY, Value::from(goals.to_vec()))
            .await
            .map(drop)
    }

    /// Sets the project fact `name`.
    pub async fn set_fact(&self, scope: Scope<'_>, name: &str, fact: &str) -> Result<()> {
        self.store
            .remember(
                &scope.agent_name(),
                &format!("{FACT_PREFIX}{name}"),
                Value::from(fact),
            )
            .await
            .map(drop)
    }

    /// Removes the project fact `name`; `true` if it existed.
    pub async fn remove_fact(&self, scope: Scope<'_>, name: &str) -> Result<bool> {
        self.store
            .forget(&scope.agent_name(), &format!("{FACT_PREFIX}{name}"))
            .await
    }

    /// The scope's stored strategy, goals and facts (the newest 200 facts).
    pub async fn scope_context(&self, scope: Scope<'_>) -> Result<ScopeContext> {
        let agent_name = scope.agent_name();
        let strategy = self.store.recall(&agent_name, STRATEGY_KEY).await?;
        let goals = self.store.recall(&agent_name, GOALS_KEY).await?;
        let facts = self
            .store
            .list_prefix(&agent_name, FACT_PREFIX, Page::first(CANDIDATES))
            .await?;
        Ok(ScopeContext {
            strategy: strategy.map(|entry| plain_text(&entry.value)),
            goals: goals
                .map(|entry| goal_list(&entry.value))
                .unwrap_or_default(),
            facts: facts
                .into_iter()
                .filter_map(|entry| {
                    let name = entry.key.strip_prefix(FACT_PREFIX)?.to_owned();
                    Some((name, plain_text(&entry.value)))
                })
                .collect(),
        })
    }

    /// Assembles `agent`'s context for a prompt about `query`, at most `budget_chars` characters
    /// (about four characters per token).
    #[tracing::instrument(level = "debug", skip(self, query))]
    pub async fn assemble(
        &self,
        agent: &str,
        query: &str,
        budget_chars: usize,
    ) -> Result<AssembledContext> {
        let global = self.scope_context(Scope::Global).await?;
        let own = self.scope_context(Scope::Agent(agent)).await?;
        let mut pinned = Vec::new();
        for strategy in [global.strategy, own.strategy].into_iter().flatten() {
            pinned.push((Section::Strategy, strategy));
        }
        for goal in global.goals.into_iter().chain(own.goals) {
            pinned.push((Section::Goals, format!("- {goal}")));
        }

        let words = words(query);
        // Facts carry no log time; among equally relevant lines they come before the logs.
        let facts_at = DateTime::<Utc>::MAX_UTC;
        let mut ranked = Vec::new();
        let mut push = |section, line: String, at| {
            let relevance = words.intersection(&self::words(&line)).count();
            ranked.push(Item {
                section,
                line: cut(&line, MAX_LINE_CHARS),
                relevance,
                at,
            });
        };
        for (name, fact) in global.facts.into_iter().chain(own.facts) {
            push(Section::Facts, format!("- {name}: {fact}"), facts_at);
        }
        for entry in self.store.list(agent, Page::first(CANDIDATES)).await? {
            if !entry.key.starts_with("context.") {
                push(
                    Section::Memory,
                    format!("- {}: {}", entry.key, plain_text(&entry.value)),
                    entry.updated_at,
                );
            }
        }
        let recent = LogQuery {
            agent_name: Some(agent.to_owned()),
            page: Page::first(50),
            ..LogQuery::default()
        };
        for activity in self.store.query_activities(recent.clone()).await? {
            let line = format!(
                "- {} {}: {}",
                activity.timestamp.format("%Y-%m-%d %H:%M"),
                activity.activity,
                activity.details
            );
            push(Section::Activity, line, activity.timestamp);
        }
        for decision in self.store.query_decisions(recent).await? {
            let line = format!(
                "- {} {}: {}",
                decision.timestamp.format("%Y-%m-%d %H:%M"),
                decision.decision_type,
                decision.decision_data
            );
            push(Section::Decisions, line, decision.timestamp);
        }
        ranked.sort_by(|a, b| b.relevance.cmp(&a.relevance).then(b.at.cmp(&a.at)));
        Ok(fill(pinned, ranked, budget_chars))
    }
}

/// Greedy fill: pinned lines first (cut to fit), then ranked lines that fit whole.
fn fill(pinned: Vec<(Section, String)>, ranked: Vec<Item>, budget: usize) -> AssembledContext {
    let mut chosen: Vec<(Section, usize, String)> = Vec::new();
    let mut used_sections = BTreeSet::new();
    let mut used = 0usize;
    let mut omitted = 0usize;
    // Cost of a line: itself and its newline, plus its section's heading and a blank separator
    // line the first time the section appears.
    let overhead = |section: Section, sections: &BTreeSet<Section>| {
        if sections.contains(&section) {
            0
        } else {
            section.heading().chars().count() + 2
        }
    };
    for (order, (section, line)) in pinned.into_iter().enumerate() {
        let room = budget.saturating_sub(used + overhead(section, &used_sections) + 1);
        if room == 0 {
            omitted += 1;
            continue;
        }
        let line = cut(&line, room);
        used += overhead(section, &used_sections) + line.chars().count() + 1;
        used_sections.insert(section);
        chosen.push((section, order, line));
    }
    for (order, item) in ranked.into_iter().enumerate() {
        let cost = overhead(item.section, &used_sections) + item.line.chars().count() + 1;
        if used + cost > budget {
            omitted += 1;
            continue;
        }
        used += cost;
        used_sections.insert(item.section);
        chosen.push((item.section, usize::MAX / 2 + order, item.line));
    }
    chosen.sort_by_key(|a| (a.0, a.1));
    let included = chosen.len();
    let mut text = String::new();
    let mut current = None;
    for (section, _, line) in chosen {
        if current != Some(section) {
            if current.is_some() {
                text.push('\n');
            }
            text.push_str(section.heading());
            text.push('\n');
            current = Some(section);
        }
        text.push_str(&line);
        text.push('\n');
    }
    AssembledContext {
        text,
        included,
        omitted,
    }
}

/// Lower-cased words of three letters or more: the unit of relevance.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

/// At most `max` characters, ending in `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A JSON value as prose: strings without quotes, anything else as compact JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn goal_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(goals) => goals.iter().map(plain_text).collect(),
        other => vec![plain_text(other)],
    }
}
