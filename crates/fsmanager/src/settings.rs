//! The `file_system` section of `agentd.yaml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Mirrors the `file_system` section of the config file. Unknown keys are an error.
///
/// Only `workspace_path` is required; every other field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSystemSettings {
    /// Root of the jail: no workspace operation reads or writes outside this directory.
    /// It is created if missing.
    pub workspace_path: PathBuf,
    /// The git repository the `vcs` crate works on. Usually the same directory as
    /// `workspace_path`, which is what an absent value means (see
    /// [`FileSystemSettings::git_repo_path`]). fsmanager itself never touches `.git`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_repo_path: Option<PathBuf>,
    /// Largest file, in bytes, that `read` returns; larger files fail with `TooLarge`
    /// and are skipped by search and the repo map. Default 1 MiB.
    #[serde(default = "default_max_read_bytes")]
    pub max_read_bytes: u64,
    /// Largest content, in bytes, that `write`/`create` accept. Default 8 MiB.
    #[serde(default = "default_max_write_bytes")]
    pub max_write_bytes: u64,
    /// How many previous versions are kept per file; the oldest go first. 0 turns
    /// backups off. Default 10.
    #[serde(default = "default_backup_count")]
    pub backup_count: usize,
    /// Previous contents larger than this many bytes are not backed up (a warning is
    /// logged). Default 4 MiB.
    #[serde(default = "default_backup_max_file_bytes")]
    pub backup_max_file_bytes: u64,
    /// Upper bound on the bytes of all backups together; the oldest backups of any file
    /// are evicted first. Default 256 MiB.
    #[serde(default = "default_backup_max_total_bytes")]
    pub backup_max_total_bytes: u64,
    /// Where backups are stored. Absent means `<workspace_path>/.agentd/backups`, which
    /// the workspace API cannot address and which carries a `.gitignore` of `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<PathBuf>,
    /// Whether `write`/`create` of a Rust, Python, JavaScript, TypeScript or Go file
    /// report syntax errors of the new content. Broken code is still saved. Default true.
    #[serde(default = "default_true")]
    pub syntax_check_on_write: bool,
    /// Upper bound on matches one text search returns. Default 200.
    #[serde(default = "default_search_max_results")]
    pub search_max_results: usize,
    /// Token budget of the repo map when the caller gives none. Default 2048.
    #[serde(default = "default_repo_map_tokens")]
    pub repo_map_tokens: usize,
}

fn default_max_read_bytes() -> u64 {
    1 << 20
}
fn default_max_write_bytes() -> u64 {
    8 << 20
}
fn default_backup_count() -> usize {
    10
}
fn default_backup_max_file_bytes() -> u64 {
    4 << 20
}
fn default_backup_max_total_bytes() -> u64 {
    256 << 20
}
fn default_true() -> bool {
    true
}
fn default_search_max_results() -> usize {
    200
}
fn default_repo_map_tokens() -> usize {
    2048
}

impl FileSystemSettings {
    /// Settings for a workspace at `workspace_path` with every other field at its default.
    pub fn new(workspace_path: impl Into<PathBuf>) -> Self {
        Self {
            workspace_path: workspace_path.into(),
            git_repo_path: None,
            max_read_bytes: default_max_read_bytes(),
            max_write_bytes: default_max_write_bytes(),
            backup_count: default_backup_count(),
            backup_max_file_bytes: default_backup_max_file_bytes(),
            backup_max_total_bytes: default_backup_max_total_bytes(),
            backup_path: None,
            syntax_check_on_write: default_true(),
            search_max_results: default_search_max_results(),
            repo_map_tokens: default_repo_map_tokens(),
        }
    }

    /// The git repository path: `git_repo_path` if set, else `workspace_path`.
    pub fn git_repo_path(&self) -> &Path {
        self.git_repo_path
            .as_deref()
            .unwrap_or(&self.workspace_path)
    }
}
