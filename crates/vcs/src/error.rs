//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in a version-control operation.
///
/// Variants name the path, branch, revision or command that failed so that callers (and
/// agents reading the message) can act on it without guessing.
#[derive(Debug, thiserror::Error)]
pub enum VcsError {
    /// A gix operation failed; `operation` says what was attempted and where.
    #[error("git operation failed: {operation}: {source}")]
    Gix {
        /// What was attempted, e.g. `open repository /tmp/x` or `write blob src/lib.rs`.
        operation: String,
        /// The underlying gix error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The `git` program exited unsuccessfully.
    #[error("`git {args}` in {dir} exited with {status}: {stderr}")]
    GitCommand {
        /// The arguments passed to `git` (never contains secrets: URLs are passed as given by the caller).
        args: String,
        /// The directory the command ran in.
        dir: PathBuf,
        /// The exit status, as text (`exit status: 128`, `signal: 9`).
        status: String,
        /// The tail of the program's standard error.
        stderr: String,
    },
    /// The `git` program did not finish in time and was killed.
    #[error("`git {args}` in {dir} timed out after {timeout_s} s and was killed")]
    GitTimeout {
        /// The arguments passed to `git`.
        args: String,
        /// The directory the command ran in.
        dir: PathBuf,
        /// The timeout that expired, in seconds.
        timeout_s: u64,
    },
    /// A file-system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path that was read, written or inspected.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory is not a git repository (or worktree).
    #[error("{path} is not a git repository")]
    NotARepository {
        /// The directory that was opened.
        path: PathBuf,
    },
    /// The target directory of `init`/`clone`/`add_worktree` exists and is not empty.
    #[error("{path} already exists and is not empty")]
    DestinationNotEmpty {
        /// The directory that was to be created.
        path: PathBuf,
    },
    /// A path given by the caller is absolute outside the worktree, contains `..`, or is otherwise
    /// not a plain repository-relative path.
    #[error("invalid repository path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path, as given.
        path: PathBuf,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A branch, tag or revision name could not be resolved.
    #[error("revision {rev:?} not found")]
    RevisionNotFound {
        /// The name or expression that did not resolve.
        rev: String,
    },
    /// A branch name is not a valid git reference name.
    #[error("invalid branch or tag name {name:?}")]
    InvalidRefName {
        /// The refused name.
        name: String,
    },
    /// The branch (or tag) to create exists already.
    #[error("reference {name} already exists")]
    AlreadyExists {
        /// The full reference name, e.g. `refs/heads/feature`.
        name: String,
    },
    /// The operation needs a checked-out branch but `HEAD` is detached.
    #[error("HEAD is detached in {path}; check out a branch first")]
    DetachedHead {
        /// The worktree whose `HEAD` is detached.
        path: PathBuf,
    },
    /// A commit or push to a protected branch was refused.
    #[error(
        "branch {branch:?} is protected: {operation} refused (only an approved merge may move it)"
    )]
    ProtectedBranch {
        /// The protected branch.
        branch: String,
        /// The refused operation (`commit`, `push`, `delete`, `non-fast-forward pull`).
        operation: &'static str,
    },
    /// A merge into a protected branch lacked review or passing tests.
    #[error(
        "merge into protected branch {branch:?} refused: reviewed={reviewed}, tests_passed={tests_passed}"
    )]
    MergeNotApproved {
        /// The protected target branch.
        branch: String,
        /// Whether the caller marked the change as reviewed.
        reviewed: bool,
        /// Whether the caller marked the tests as passed.
        tests_passed: bool,
    },
    /// A three-way merge had conflicts. Worktree, index and references are untouched.
    #[error("merging {source_rev} into {into} conflicts in: {}", paths_list(.files))]
    MergeConflict {
        /// The branch or revision being merged.
        source_rev: String,
        /// The branch merged into.
        into: String,
        /// The conflicting files, repository-relative, sorted.
        files: Vec<String>,
    },
    /// The histories of the two sides have no common ancestor.
    #[error("{source_rev} and {into} have no common history")]
    UnrelatedHistories {
        /// The branch or revision being merged.
        source_rev: String,
        /// The branch merged into.
        into: String,
    },
    /// The selected paths contain no change relative to `HEAD`.
    #[error("nothing to commit in the selected paths: {}", paths_list(.paths))]
    NothingToCommit {
        /// The paths the caller selected.
        paths: Vec<String>,
    },
    /// A commit request named no path at all (committing "everything" must be explicit).
    #[error("commit request names no paths; pass the paths the task changed")]
    NoPathsGiven,
    /// A branch that is checked out (here or in a linked worktree) cannot be deleted.
    #[error("branch {branch:?} is checked out at {worktree}")]
    BranchCheckedOut {
        /// The branch.
        branch: String,
        /// The worktree that has it checked out.
        worktree: PathBuf,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background git task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn paths_list(paths: &[String]) -> String {
    paths.join(", ")
}

/// The crate's result type.
pub type Result<T, E = VcsError> = std::result::Result<T, E>;

impl VcsError {
    /// Wraps a gix error with a description of the operation that failed.
    pub(crate) fn gix<E>(operation: impl Into<String>) -> impl FnOnce(E) -> VcsError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let operation = operation.into();
        move |source| VcsError::Gix {
            operation,
            source: Box::new(source),
        }
    }

    /// Wraps an I/O error with the path it concerned.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> VcsError {
        let path = path.into();
        move |source| VcsError::Io { path, source }
    }
}
