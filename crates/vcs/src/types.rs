//! Plain data exchanged through the [`Vcs`](crate::Vcs) trait.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What [`Vcs::open`](crate::Vcs::open), `init` and `clone_repo` report about a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// The worktree directory (for a linked worktree: that worktree, not the main one).
    pub workdir: PathBuf,
    /// The checked-out branch (short name), `None` when `HEAD` is detached.
    pub branch: Option<String>,
    /// The commit `HEAD` points to, `None` in a repository without commits.
    pub head: Option<String>,
}

/// How a file differs, on one side of a [`StatusEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// New file.
    Added,
    /// Content or executable bit changed.
    Modified,
    /// File removed.
    Deleted,
    /// Changed between file, symlink and submodule.
    TypeChanged,
    /// Not tracked and not ignored.
    Untracked,
    /// Unmerged (conflict stages in the index).
    Conflicted,
}

/// One changed path, as `git status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusEntry {
    /// Repository-relative path with `/` separators.
    pub path: String,
    /// Change between `HEAD` and the index (what is staged).
    pub staged: Option<ChangeKind>,
    /// Change between the index and the worktree (what is not staged).
    pub unstaged: Option<ChangeKind>,
}

impl StatusEntry {
    /// The two-letter code `git status --porcelain` prints for this entry (`"M "`, `" D"`, `"??"`…).
    pub fn porcelain_code(&self) -> String {
        fn letter(kind: Option<ChangeKind>) -> char {
            match kind {
                None => ' ',
                Some(ChangeKind::Added) => 'A',
                Some(ChangeKind::Modified) => 'M',
                Some(ChangeKind::Deleted) => 'D',
                Some(ChangeKind::TypeChanged) => 'T',
                Some(ChangeKind::Untracked) => '?',
                Some(ChangeKind::Conflicted) => 'U',
            }
        }
        format!("{}{}", letter(self.staged), letter(self.unstaged))
    }
}

/// Which paths [`Vcs::add`](crate::Vcs::add) stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddPaths {
    /// Every change in the worktree, including untracked (not ignored) files and deletions.
    All,
    /// Only these repository-relative files or directories (a directory means everything under it).
    Paths(Vec<PathBuf>),
}

/// A `Key: value` line appended to a commit message (git "trailer").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// Trailer key, e.g. `Task-Id`, `Co-authored-by`.
    pub key: String,
    /// Trailer value.
    pub value: String,
}

impl Trailer {
    /// A trailer `key: value`.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Trailer {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The key of the trailer that makes commits idempotent.
pub const TASK_ID_TRAILER: &str = "Task-Id";

/// A request to commit the changes a task made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    /// Commit message (subject, optionally a blank line and a body). Trailers are appended.
    pub message: String,
    /// The files or directories (everything under them) the task changed, repository-relative.
    /// Only these are committed, taken from the worktree; other pending changes, staged or not,
    /// stay pending.
    pub paths: Vec<PathBuf>,
    /// The task's id: written as a `Task-Id:` trailer and used for idempotency.
    pub task_id: Option<String>,
    /// Further trailers, written after `Task-Id`.
    pub trailers: Vec<Trailer>,
}

/// The result of [`Vcs::commit`](crate::Vcs::commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOutcome {
    /// The commit id (hex).
    pub id: String,
    /// `false` when a commit with the same `Task-Id` already existed on the branch and was
    /// returned instead of committing again.
    pub created: bool,
}

/// One commit, as [`Vcs::log`](crate::Vcs::log) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Commit id (hex).
    pub id: String,
    /// Parent ids (hex), first parent first.
    pub parents: Vec<String>,
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
    /// Committer time, seconds since the Unix epoch.
    pub time: i64,
    /// First line of the message.
    pub summary: String,
    /// The full message, trailers included.
    pub message: String,
}

/// A local branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchInfo {
    /// Short name, e.g. `feature/task-7`.
    pub name: String,
    /// Commit id (hex) the branch points to.
    pub head: String,
    /// Whether this worktree has it checked out.
    pub is_current: bool,
}

/// The caller's statement that a change may land on a protected branch.
///
/// Only a merge (or a push) carrying an approval with both flags set may move a protected
/// branch. The text fields end up in the merge commit's trailers, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MergeApproval {
    /// The change was reviewed and accepted.
    pub reviewed: bool,
    /// The test suite passed on the change.
    pub tests_passed: bool,
    /// Who reviewed (e.g. `tech_lead`); written as a `Reviewed-by:` trailer when set.
    pub reviewer: Option<String>,
}

impl MergeApproval {
    /// Both reviewed and tested.
    pub fn approved(reviewer: impl Into<String>) -> Self {
        MergeApproval {
            reviewed: true,
            tests_passed: true,
            reviewer: Some(reviewer.into()),
        }
    }

    /// Whether this approval allows moving a protected branch.
    pub fn is_approved(&self) -> bool {
        self.reviewed && self.tests_passed
    }
}

/// A request to merge `source` into the branch `into`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRequest {
    /// Branch name or revision to merge.
    pub source: String,
    /// Local branch (short name) that receives the merge.
    pub into: String,
    /// Review and test status; required (both `true`) when `into` is protected.
    pub approval: MergeApproval,
    /// Message of a merge commit; `None` gives `Merge branch '<source>' into <into>`.
    pub message: Option<String>,
    /// Task id written as `Task-Id:` trailer on a merge commit.
    pub task_id: Option<String>,
}

/// How a merge or pull ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MergeOutcome {
    /// `into` already contained `source`; nothing changed.
    AlreadyUpToDate {
        /// The unchanged tip (hex).
        head: String,
    },
    /// `into` was moved forward to `source`.
    FastForward {
        /// Previous tip (hex).
        from: String,
        /// New tip (hex), equal to the source commit.
        to: String,
    },
    /// A merge commit with two parents was created.
    Merged {
        /// The merge commit (hex).
        commit: String,
    },
}

/// A linked worktree made by [`Vcs::add_worktree`](crate::Vcs::add_worktree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorktreeInfo {
    /// The worktree directory.
    pub path: PathBuf,
    /// The branch checked out there.
    pub branch: String,
    /// The commit checked out (hex).
    pub head: String,
}
