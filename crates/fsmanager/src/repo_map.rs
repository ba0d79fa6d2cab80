//! A compact map of the repository (each source file's top-level items) that fits a
//! token budget, for prompts.

use std::fmt::Write as _;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{FsError, Result};
use crate::outline::{Language, OutlineItem, outline_source};
use crate::search::WalkedFile;
use crate::workspace::Workspace;

/// Tokens kept back for the closing "omitted" line.
const FOOTER_RESERVE_TOKENS: usize = 24;
/// After this many files in a row did not fit, the rest are omitted without parsing:
/// the budget is as good as spent, and parsing a thousand files to confirm it is slow.
const MAX_CONSECUTIVE_MISSES: usize = 32;

/// What to put in a repo map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoMapOptions {
    /// Token budget (estimated as characters / 4, rounded up). `None` uses
    /// `repo_map_tokens` from the settings.
    #[serde(default)]
    pub token_budget: Option<usize>,
    /// Files the caller cares about most: globs (`src/api/**`), file paths or directory
    /// paths. Matching files come first.
    #[serde(default)]
    pub focus: Vec<String>,
}

/// A rendered repo map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoMap {
    /// The map, one block per file, ending with a line naming how many files were left out.
    pub text: String,
    /// Estimated tokens of `text` (never above the budget).
    pub estimated_tokens: usize,
    /// Files included, in the order they appear.
    pub included: Vec<String>,
    /// Source files left out (over budget, unreadable or unparsable), in priority order.
    pub omitted: Vec<String>,
}

/// The token estimate used for budgets: characters / 4, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

fn focus_set(focus: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for entry in focus {
        let trimmed = entry.trim_end_matches('/');
        let invalid = |e: globset::Error| FsError::InvalidPattern {
            pattern: entry.clone(),
            message: e.kind().to_string(),
        };
        builder.add(Glob::new(trimmed).map_err(invalid)?);
        // A plain directory path covers everything below it.
        builder.add(Glob::new(&format!("{trimmed}/**")).map_err(invalid)?);
    }
    builder.build().map_err(|e| FsError::InvalidPattern {
        pattern: focus.join(", "),
        message: e.kind().to_string(),
    })
}

fn render_file(path: &str, items: &[OutlineItem]) -> String {
    let mut block = format!("{path}\n");
    for item in items {
        let _ = write!(
            block,
            "  {} {} [{}-{}]",
            item.kind.keyword(),
            item.name,
            item.start_line,
            item.end_line
        );
        if !item.children.is_empty() {
            let names: Vec<&str> = item.children.iter().map(|c| c.name.as_str()).collect();
            let _ = write!(block, ": {}", names.join(", "));
        }
        block.push('\n');
    }
    block
}

impl Workspace {
    /// A map of every supported source file (honouring `.gitignore`) with its top-level
    /// items, most relevant first: files matching `focus`, then shallower paths, then
    /// recently modified ones. Files that do not fit the budget are skipped (a smaller
    /// one later may still fit) and listed in `omitted`; after 32 misses in a row the
    /// rest are omitted without being parsed.
    #[tracing::instrument(level = "debug", skip(self, options))]
    pub fn repo_map(&self, options: &RepoMapOptions) -> Result<RepoMap> {
        let budget = options
            .token_budget
            .unwrap_or(self.settings().repo_map_tokens);
        let focus = focus_set(&options.focus)?;
        let mut files: Vec<(WalkedFile, Language)> = self
            .walk_files()
            .into_iter()
            .filter_map(|f| Language::from_path(&f.path).map(|l| (f, l)))
            .collect();
        files.sort_by(|(a, _), (b, _)| {
            let focused = |f: &WalkedFile| !focus.is_match(&f.path);
            focused(a)
                .cmp(&focused(b))
                .then(a.depth.cmp(&b.depth))
                .then(b.modified.cmp(&a.modified))
                .then(a.path.cmp(&b.path))
        });
        let body_budget = budget.saturating_sub(FOOTER_RESERVE_TOKENS);
        let mut text = String::new();
        let mut used = 0usize;
        let mut included = Vec::new();
        let mut omitted = Vec::new();
        let mut misses = 0usize;
        for (file, language) in files {
            // The smallest possible block is the path line; skip parsing what cannot fit.
            let path_tokens = estimate_tokens(&file.path) + 1;
            if misses >= MAX_CONSECUTIVE_MISSES
                || used + path_tokens > body_budget
                || file.size > self.settings().max_read_bytes
            {
                omitted.push(file.path);
                continue;
            }
            let outline = self
                .read(&file.path)
                .and_then(|source| outline_source(language, &source));
            let Ok(outline) = outline else {
                omitted.push(file.path);
                continue;
            };
            let block = render_file(&file.path, &outline.items);
            let tokens = estimate_tokens(&block);
            if used + tokens > body_budget {
                misses += 1;
                omitted.push(file.path);
                continue;
            }
            misses = 0;
            used += tokens;
            text.push_str(&block);
            included.push(file.path);
        }
        if !omitted.is_empty() {
            let footer = format!(
                "[{} more source files omitted to fit the budget]\n",
                omitted.len()
            );
            if estimate_tokens(&text) + estimate_tokens(&footer) <= budget {
                text.push_str(&footer);
            }
        }
        Ok(RepoMap {
            estimated_tokens: estimate_tokens(&text),
            text,
            included,
            omitted,
        })
    }
}
