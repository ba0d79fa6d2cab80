//! Walking the workspace (honouring `.gitignore`), glob find and text search.
//!
//! The walk runs on host paths (the `ignore` crate), so every entry it yields is
//! re-checked through the root handle before use, and file contents are only ever read
//! through the jail: a directory swapped for a symlink mid-walk yields nothing from
//! outside.

use std::time::SystemTime;

use globset::{Glob, GlobBuilder, GlobMatcher};
use ignore::WalkBuilder;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{FsError, Result};
use crate::path::{AGENTD_DIR, is_reserved_name};
use crate::workspace::Workspace;

/// Longest line excerpt returned with a search match, in characters.
const MAX_EXCERPT_CHARS: usize = 240;

/// A regular file found by the walk, already re-validated through the jail.
#[derive(Debug, Clone)]
pub(crate) struct WalkedFile {
    /// Workspace-relative, `/`-separated.
    pub(crate) path: String,
    /// Number of `/`-separated components minus one (0 for a file at the root).
    pub(crate) depth: usize,
    pub(crate) size: u64,
    pub(crate) modified: Option<SystemTime>,
}

/// The result of [`Workspace::find`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindResult {
    /// Matching files, sorted, workspace-relative.
    pub paths: Vec<String>,
    /// Whether more files matched than the limit allowed.
    pub truncated: bool,
}

/// A text search request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The text or regular expression (Rust `regex` syntax: linear time, no backtracking).
    pub pattern: String,
    /// Whether `pattern` is a regular expression; otherwise it is literal text.
    #[serde(default)]
    pub regex: bool,
    /// Whether case is ignored.
    #[serde(default)]
    pub case_insensitive: bool,
    /// Only files matching this glob (same rules as [`Workspace::find`]).
    #[serde(default)]
    pub path_glob: Option<String>,
    /// At most this many matches (capped by `search_max_results`).
    #[serde(default)]
    pub max_results: Option<usize>,
}

impl SearchQuery {
    /// A case-sensitive literal search over all files.
    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            pattern: text.into(),
            regex: false,
            case_insensitive: false,
            path_glob: None,
            max_results: None,
        }
    }

    /// A case-sensitive regular-expression search over all files.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self {
            regex: true,
            ..Self::literal(pattern)
        }
    }
}

/// One matching place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchMatch {
    /// Workspace-relative path.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters (not bytes), of the match start.
    pub column: usize,
    /// The line, cut to 240 characters.
    pub text: String,
}

/// The result of [`Workspace::search`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Matches in path, line, column order.
    pub matches: Vec<SearchMatch>,
    /// Whether the search stopped at the match limit.
    pub truncated: bool,
    /// Text files searched.
    pub files_searched: usize,
    /// Files skipped as binary, too large or unreadable.
    pub files_skipped: usize,
}

/// Compiles a find glob: with a `/` it matches the whole path, without one the file name.
fn path_matcher(pattern: &str) -> Result<(GlobMatcher, bool)> {
    let glob: Glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| FsError::InvalidPattern {
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })?;
    Ok((glob.compile_matcher(), pattern.contains('/')))
}

fn glob_matches((matcher, whole_path): &(GlobMatcher, bool), path: &str) -> bool {
    if *whole_path {
        matcher.is_match(path)
    } else {
        matcher.is_match(path.rsplit('/').next().unwrap_or(path))
    }
}

impl Workspace {
    /// Every regular file not ignored by `.gitignore`/`.ignore` (nested ones too; the
    /// user's global excludes are not read), sorted by path.
    pub(crate) fn walk_files(&self) -> Vec<WalkedFile> {
        let root = self.root_path().to_path_buf();
        let walker = WalkBuilder::new(&root)
            .hidden(false)
            .parents(false)
            .git_global(false)
            .require_git(false)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|entry| {
                let name = entry.file_name().to_string_lossy();
                let agentd_dir = entry.depth() == 1 && name.eq_ignore_ascii_case(AGENTD_DIR);
                !(agentd_dir || is_reserved_name(&name))
            })
            .build();
        let mut out = Vec::new();
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    // Unreadable directories or bad ignore files: skip, do not fail the walk.
                    tracing::debug!(error = %e, "walk entry skipped");
                    continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&root) else {
                continue;
            };
            let Some(path) = relative.to_str().map(str::to_owned) else {
                tracing::debug!(path = %relative.display(), "skipping a non-UTF-8 path");
                continue;
            };
            // The walk used host paths; confirm through the jail that this is still a
            // regular file beneath the root.
            let Ok(meta) = self.root_dir().symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            out.push(WalkedFile {
                depth: path.matches('/').count(),
                size: meta.len(),
                modified: meta.modified().ok().map(|t| t.into_std()),
                path,
            });
        }
        out
    }

    /// Files whose path matches `pattern`, honouring `.gitignore`. A pattern with a `/`
    /// matches the whole relative path (`src/**/*.rs`); one without matches the file
    /// name anywhere (`*.rs`). At most `limit` paths are returned.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn find(&self, pattern: &str, limit: usize) -> Result<FindResult> {
        let matcher = path_matcher(pattern)?;
        let mut paths = Vec::new();
        let mut truncated = false;
        for file in self.walk_files() {
            if glob_matches(&matcher, &file.path) {
                if paths.len() == limit {
                    truncated = true;
                    break;
                }
                paths.push(file.path);
            }
        }
        Ok(FindResult { paths, truncated })
    }

    /// Searches text files (honouring `.gitignore`) for a literal or a regex, line by
    /// line. Binary and over-limit files are skipped and counted.
    #[tracing::instrument(level = "debug", skip(self), fields(pattern = %query.pattern))]
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        let cap = self.settings().search_max_results;
        let limit = query.max_results.map_or(cap, |n| n.min(cap));
        let source = if query.regex {
            query.pattern.clone()
        } else {
            regex::escape(&query.pattern)
        };
        let regex: Regex = RegexBuilder::new(&source)
            .case_insensitive(query.case_insensitive)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| FsError::InvalidPattern {
                pattern: query.pattern.clone(),
                message: e.to_string(),
            })?;
        let filter = query.path_glob.as_deref().map(path_matcher).transpose()?;
        let mut result = SearchResult {
            matches: Vec::new(),
            truncated: false,
            files_searched: 0,
            files_skipped: 0,
        };
        for file in self.walk_files() {
            if filter
                .as_ref()
                .is_some_and(|m| !glob_matches(m, &file.path))
            {
                continue;
            }
            let Ok(text) = self.read(&file.path) else {
                result.files_skipped += 1;
                continue;
            };
            result.files_searched += 1;
            for (index, line) in text.lines().enumerate() {
                for found in regex.find_iter(line) {
                    if result.matches.len() == limit {
                        result.truncated = true;
                        return Ok(result);
                    }
                    let before = line.get(..found.start()).unwrap_or_default();
                    result.matches.push(SearchMatch {
                        path: file.path.clone(),
                        line: index + 1,
                        column: before.chars().count() + 1,
                        text: line.chars().take(MAX_EXCERPT_CHARS).collect(),
                    });
                }
            }
        }
        Ok(result)
    }
}
