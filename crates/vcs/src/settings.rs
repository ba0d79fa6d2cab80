//! Configuration: the `git` section of `agentd.yaml` and the backend's runtime settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `git` section of the configuration file (`agentd.yaml`), field for field.
///
/// Unknown keys are an error, so a typo such as `protected_branch` is reported instead of being
/// silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSettings {
    /// URL of the upstream repository to clone from and push to (e.g. a path to a local bare
    /// repository, `https://…` or `git@host:org/repo.git`). `None` (the default) means the
    /// workspace repository has no upstream: nothing is cloned or pushed.
    #[serde(default)]
    pub repository_url: Option<String>,
    /// The integration branch that feature branches are merged into. Default `"main"`.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Whether finished tasks are committed automatically. Default `true`.
    #[serde(default = "default_true")]
    pub auto_commit: bool,
    /// Whether merged work is pushed to `repository_url` automatically. Default `false`.
    #[serde(default)]
    pub auto_push: bool,
    /// Branches that no commit or push may move; only a merge marked as reviewed and tested
    /// may. Default `["main"]`.
    #[serde(default = "default_protected")]
    pub protected_branches: Vec<String>,
    /// Name used as author and committer of every commit agentd makes. Default `"agentd"`.
    #[serde(default = "default_author_name")]
    pub author_name: String,
    /// E-mail used as author and committer of every commit agentd makes.
    /// Default `"agentd@localhost"`.
    #[serde(default = "default_author_email")]
    pub author_email: String,
}

fn default_branch() -> String {
    "main".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_protected() -> Vec<String> {
    vec!["main".to_owned()]
}
fn default_author_name() -> String {
    "agentd".to_owned()
}
fn default_author_email() -> String {
    "agentd@localhost".to_owned()
}

impl Default for GitSettings {
    fn default() -> Self {
        GitSettings {
            repository_url: None,
            branch: default_branch(),
            auto_commit: true,
            auto_push: false,
            protected_branches: default_protected(),
            author_name: default_author_name(),
            author_email: default_author_email(),
        }
    }
}

/// What the [`GixVcs`](crate::GixVcs) backend needs at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcsSettings {
    /// Author and committer name of every commit.
    pub author_name: String,
    /// Author and committer e-mail of every commit.
    pub author_email: String,
    /// Branch names (without `refs/heads/`) that commits and pushes may not move.
    pub protected_branches: Vec<String>,
    /// Initial branch of repositories made by [`Vcs::init`](crate::Vcs::init).
    pub initial_branch: String,
    /// Upper bound for each run of the `git` program (push, fetch, switch, worktree).
    pub git_timeout: Duration,
}

impl Default for VcsSettings {
    fn default() -> Self {
        VcsSettings::from(&GitSettings::default())
    }
}

impl From<&GitSettings> for VcsSettings {
    fn from(git: &GitSettings) -> Self {
        VcsSettings {
            author_name: git.author_name.clone(),
            author_email: git.author_email.clone(),
            protected_branches: git.protected_branches.clone(),
            initial_branch: git.branch.clone(),
            git_timeout: Duration::from_secs(120),
        }
    }
}

impl VcsSettings {
    /// Whether `branch` (short name, e.g. `main`) is protected.
    pub fn is_protected(&self, branch: &str) -> bool {
        let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        self.protected_branches.iter().any(|p| p == short)
    }
}
