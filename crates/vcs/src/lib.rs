//! Version control for agentd.
//!
//! The [`Vcs`] trait is what the orchestrator and agents use to put a task's work into git:
//! status, staging, commits with `Task-Id:` trailers, branches, diffs, log, merges, tags, push
//! and pull, and one linked worktree per task. [`GixVcs`] implements it on
//! [gix](https://docs.rs/gix); the few operations gix cannot do run the `git` program with a
//! timeout and a scrubbed environment (each method's documentation says which). `MockVcs`
//! (feature `mock`) is a mockall mock of the trait for unit tests of higher layers.
//!
//! Main types: [`Vcs`], [`GixVcs`], [`GitSettings`] (the config file's `git` section),
//! [`VcsSettings`], [`CommitRequest`], [`MergeRequest`], [`MergeApproval`], [`VcsError`].
//!
//! # Invariants
//!
//! - **Protected branches** ([`VcsSettings::protected_branches`], default `main`): a commit or a
//!   push to one is refused with [`VcsError::ProtectedBranch`]; only [`Vcs::merge`] with a
//!   [`MergeApproval`] that is both reviewed and tested may move one (and a pull only by
//!   fast-forward).
//! - **Idempotent commits**: a commit whose `Task-Id` already appears as a trailer on the
//!   branch's history is not made again; the existing commit id is returned.
//! - **Only the task's paths**: [`Vcs::commit`] commits exactly the listed paths, read from the
//!   worktree; any other pending change, staged or not, stays pending.
//! - **Conflicts change nothing**: a merge is computed in memory; on conflict,
//!   [`VcsError::MergeConflict`] lists the files and worktree, index and references are as before.
//! - Every repository path is repository-relative; `..` and absolute paths outside the
//!   worktree are refused with [`VcsError::InvalidPath`].
//! - A commit updates the index before it moves the branch (compare-and-swap on the old tip):
//!   after a crash in between, the task's changes are still staged and its `Task-Id` is not in
//!   history, so a re-run commits them once.
//! - The `git` program runs with a timeout and a scrubbed environment (see [`VcsSettings`]);
//!   credentials in URLs never appear in errors or logs.
//!
//! # Limitations
//!
//! Commits store worktree bytes as they are: clean/smudge filters, `core.autocrlf` and Git LFS
//! are not applied. Renames are reported as a deletion plus an addition. Submodules and nested
//! repositories are never committed. Diffs use Myers with git's line heuristics and match
//! `git diff --no-renames` on ordinary text; pathological inputs may pick other hunks.

mod error;
mod git_cli;
mod gix_backend;
mod settings;
mod types;

use std::path::Path;

pub use error::{Result, VcsError};
pub use gix_backend::GixVcs;
pub use settings::{GitSettings, VcsSettings};
pub use types::{
    AddPaths, BranchInfo, ChangeKind, CommitInfo, CommitOutcome, CommitRequest, MergeApproval,
    MergeOutcome, MergeRequest, RepoInfo, StatusEntry, TASK_ID_TRAILER, Trailer, WorktreeInfo,
};

/// Version control over repositories on disk.
///
/// Object-safe: use it as `Arc<dyn Vcs>`. Every method takes the worktree directory it acts on,
/// so one instance serves the main checkout and every task's linked worktree.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait Vcs: Send + Sync {
    /// Creates a new repository with a worktree at `path` (created if missing, must be empty),
    /// with `HEAD` on the configured initial branch, which gets a root commit (empty tree,
    /// message `Initialize repository`) so that feature branches can start from it at once,
    /// even though the initial branch is usually protected.
    async fn init(&self, path: &Path) -> Result<RepoInfo>;

    /// Opens the repository whose worktree is `path` and reports its state.
    async fn open(&self, path: &Path) -> Result<RepoInfo>;

    /// Clones `url` into `dest` (created, must be empty) and checks out the remote's default branch.
    async fn clone_repo(&self, url: &str, dest: &Path) -> Result<RepoInfo>;

    /// Lists changed, staged, untracked and conflicted files (ignored files are not listed),
    /// sorted by path, like `git status --porcelain --untracked-files=all`.
    async fn status(&self, repo: &Path) -> Result<Vec<StatusEntry>>;

    /// Stages the given paths (or everything) from the worktree into the index, including
    /// deletions and untracked, not ignored, files.
    async fn add(&self, repo: &Path, paths: AddPaths) -> Result<()>;

    /// Commits exactly `request.paths` (as they are in the worktree) on the checked-out branch.
    ///
    /// Refused on a protected branch or a detached `HEAD`. A no-op returning the existing commit
    /// when the branch already has a commit with the same `Task-Id` trailer.
    async fn commit(&self, repo: &Path, request: CommitRequest) -> Result<CommitOutcome>;

    /// The checked-out branch, `None` when `HEAD` is detached.
    async fn current_branch(&self, repo: &Path) -> Result<Option<String>>;

    /// Creates branch `name` at `start` (a revision; `None` means `HEAD`) without switching to it.
    async fn create_branch(&self, repo: &Path, name: &str, start: Option<String>) -> Result<()>;

    /// Switches the worktree to the existing local branch `name`.
    async fn switch_branch(&self, repo: &Path, name: &str) -> Result<()>;

    /// Lists local branches, sorted by name.
    async fn list_branches(&self, repo: &Path) -> Result<Vec<BranchInfo>>;

    /// Deletes the local branch `name`; refused for protected branches and checked-out ones.
    async fn delete_branch(&self, repo: &Path, name: &str) -> Result<()>;

    /// Checks out `rev`: a local branch name switches to it, anything else detaches `HEAD` there.
    async fn checkout(&self, repo: &Path, rev: &str) -> Result<()>;

    /// Unified diff of the worktree against `HEAD` for tracked files (like `git diff HEAD`).
    async fn diff_worktree(&self, repo: &Path) -> Result<String>;

    /// Unified diff between two revisions (like `git diff from to`).
    async fn diff_revisions(&self, repo: &Path, from: &str, to: &str) -> Result<String>;

    /// Up to `limit` commits reachable from `rev` (`None` means `HEAD`), newest first.
    async fn log(&self, repo: &Path, rev: Option<String>, limit: usize) -> Result<Vec<CommitInfo>>;

    /// The best common ancestor of revisions `a` and `b` (like `git merge-base a b`), `None`
    /// when their histories are unrelated.
    async fn merge_base(&self, repo: &Path, a: &str, b: &str) -> Result<Option<String>>;

    /// Merges `request.source` into the local branch `request.into`: fast-forward when possible,
    /// otherwise a three-way merge commit. Protected targets need an approved [`MergeApproval`].
    async fn merge(&self, repo: &Path, request: MergeRequest) -> Result<MergeOutcome>;

    /// Creates tag `name` at `rev`: annotated when `message` is given, lightweight otherwise.
    /// Returns the id the tag reference points to.
    async fn tag(
        &self,
        repo: &Path,
        name: &str,
        rev: &str,
        message: Option<String>,
    ) -> Result<String>;

    /// Pushes local `branch` to the same branch on `remote` (a remote name or URL).
    /// A protected branch is pushed only with an approved [`MergeApproval`].
    async fn push(
        &self,
        repo: &Path,
        remote: &str,
        branch: &str,
        approval: Option<MergeApproval>,
    ) -> Result<()>;

    /// Fetches `branch` from `remote` and merges it into the checked-out branch.
    async fn pull(&self, repo: &Path, remote: &str, branch: &str) -> Result<MergeOutcome>;

    /// Adds a linked worktree at `path` with `branch` checked out; the branch is created at
    /// `start` (`None` means `HEAD`) if it does not exist.
    async fn add_worktree(
        &self,
        repo: &Path,
        path: &Path,
        branch: &str,
        start: Option<String>,
    ) -> Result<WorktreeInfo>;

    /// Removes the linked worktree at `path` (its branch stays). `force` discards its changes.
    async fn remove_worktree(&self, repo: &Path, path: &Path, force: bool) -> Result<()>;
}
