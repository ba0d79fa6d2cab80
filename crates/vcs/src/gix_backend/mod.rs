//! The [`Vcs`] implementation on gix, with the `git` program for the gaps.

mod commit;
mod diff;
mod merge;
mod refs;
mod stage;
mod status;
mod via_git;

use std::path::{Component, Path, PathBuf};

use gix::bstr::BString;
use tracing::Instrument;

use crate::error::{Result, VcsError};
use crate::settings::VcsSettings;
use crate::types::{
    AddPaths, BranchInfo, CommitInfo, CommitOutcome, CommitRequest, MergeApproval, MergeOutcome,
    MergeRequest, RepoInfo, StatusEntry, WorktreeInfo,
};
use crate::{Vcs, git_cli};

/// The gix-backed [`Vcs`].
///
/// Stateless apart from its [`VcsSettings`]: every call opens the repository afresh, so
/// changes made by other processes (or the `git` program) are always seen. Make one with
/// `GixVcs::new(VcsSettings::from(&git_settings))` and share it as `Arc<dyn Vcs>`.
///
/// gix does the work (status, add, commit, branches, tags, log, diffs, merge computation,
/// local clones). The `git` program runs, with a timeout and a scrubbed environment, only
/// where gix cannot: `push`, the fetch of `pull`, `clone_repo` of non-local URLs,
/// `switch_branch` and `checkout` (updating an existing worktree), moving a checked-out
/// branch's worktree after `merge` (`git merge --ff-only` to the commit gix made),
/// `add_worktree`/`remove_worktree`, and finding which worktree has a branch checked out.
#[derive(Debug, Clone, Default)]
pub struct GixVcs {
    settings: VcsSettings,
}

impl GixVcs {
    /// A backend that commits as `settings.author_*` and protects `settings.protected_branches`.
    pub fn new(settings: VcsSettings) -> Self {
        GixVcs { settings }
    }

    /// The settings this backend was made with.
    pub fn settings(&self) -> &VcsSettings {
        &self.settings
    }

    /// Runs blocking gix work off the async executor.
    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&VcsSettings) -> Result<T> + Send + 'static,
    {
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || work(&settings)).await?
    }
}

/// Opens the repository whose worktree (or git dir) is `path`, without searching parents.
pub(crate) fn open_repo(path: &Path) -> Result<gix::Repository> {
    if !path.exists() {
        return Err(VcsError::NotARepository {
            path: path.to_path_buf(),
        });
    }
    gix::open(path).map_err(|_| VcsError::NotARepository {
        path: path.to_path_buf(),
    })
}

/// The worktree directory of `repo`; bare repositories have none.
pub(crate) fn workdir(repo: &gix::Repository) -> Result<PathBuf> {
    repo.workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| VcsError::NotARepository {
            path: repo.git_dir().to_path_buf(),
        })
}

/// Turns a caller's path into a repository-relative, `/`-separated path.
///
/// Absolute paths must lie inside `workdir`. `..`, and anything that would leave the worktree
/// or point into `.git`, is refused. The worktree root itself becomes the empty string.
pub(crate) fn repo_relative(workdir: &Path, path: &Path) -> Result<String> {
    let invalid = |reason| VcsError::InvalidPath {
        path: path.to_path_buf(),
        reason,
    };
    let relative = if path.is_absolute() {
        path.strip_prefix(workdir)
            .map_err(|_| invalid("absolute path outside the worktree"))?
    } else {
        path
    };
    let mut parts: Vec<&str> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str().ok_or_else(|| invalid("not valid UTF-8"))?;
                if parts.is_empty() && part == ".git" {
                    return Err(invalid("points into the .git directory"));
                }
                parts.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid("absolute path outside the worktree"));
            }
        }
    }
    Ok(parts.join("/"))
}

/// Literal pathspecs for repository-relative paths; an empty list (or the root) means "all".
pub(crate) fn literal_pathspecs(relative_paths: &[String]) -> Vec<BString> {
    if relative_paths.iter().any(String::is_empty) {
        return Vec::new();
    }
    relative_paths
        .iter()
        .map(|path| BString::from(format!(":(literal){path}")))
        .collect()
}

/// Where `HEAD` points: the branch's full name (if any) and the commit (if any).
pub(crate) fn head_state(
    repo: &gix::Repository,
) -> Result<(Option<String>, Option<gix::ObjectId>)> {
    let head = repo.head().map_err(VcsError::gix("read HEAD"))?;
    let branch = head.referent_name().map(|name| name.as_bstr().to_string());
    Ok((branch, head.id().map(|id| id.detach())))
}

pub(crate) fn short_branch(full_name: &str) -> &str {
    full_name.strip_prefix("refs/heads/").unwrap_or(full_name)
}

fn repo_info(repo: &gix::Repository) -> Result<RepoInfo> {
    let (branch, head) = head_state(repo)?;
    Ok(RepoInfo {
        workdir: workdir(repo)?,
        branch: branch.map(|name| short_branch(&name).to_owned()),
        head: head.map(|id| id.to_string()),
    })
}

/// Resolves a revision expression to a commit id.
pub(crate) fn resolve_commit(repo: &gix::Repository, rev: &str) -> Result<gix::ObjectId> {
    let not_found = || VcsError::RevisionNotFound {
        rev: rev.to_owned(),
    };
    let id = repo
        .rev_parse_single(rev)
        .map_err(|_| not_found())?
        .object()
        .map_err(|_| not_found())?
        .peel_to_commit()
        .map_err(|_| not_found())?
        .id;
    Ok(id)
}

#[async_trait::async_trait]
impl Vcs for GixVcs {
    /// gix only.
    async fn init(&self, path: &Path) -> Result<RepoInfo> {
        let path = path.to_path_buf();
        self.blocking(move |settings| refs::init(settings, &path))
            .await
    }

    /// gix only.
    async fn open(&self, path: &Path) -> Result<RepoInfo> {
        let path = path.to_path_buf();
        self.blocking(move |_| repo_info(&open_repo(&path)?)).await
    }

    /// Local paths and `file://` URLs are cloned with gix (which runs `git upload-pack` as the
    /// other end of the local transport). Other URLs (`https://`, `ssh://`, `git@…`) run
    /// `git clone`, so that the user's credential helpers and SSH agent authenticate.
    async fn clone_repo(&self, url: &str, dest: &Path) -> Result<RepoInfo> {
        via_git::clone_repo(self, url, dest).await
    }

    /// gix only (`status` with untracked files listed one by one, renames not tracked).
    async fn status(&self, repo: &Path) -> Result<Vec<StatusEntry>> {
        let repo = repo.to_path_buf();
        self.blocking(move |_| status::status(&open_repo(&repo)?))
            .await
    }

    /// gix only: blobs are written and the index is updated by gix.
    async fn add(&self, repo: &Path, paths: AddPaths) -> Result<()> {
        let repo = repo.to_path_buf();
        self.blocking(move |_| stage::add(&open_repo(&repo)?, &paths))
            .await
    }

    /// gix only: the tree is built from `HEAD`'s tree plus the listed paths, the commit is
    /// written with gix, the branch is moved with a compare-and-swap reference edit, and the
    /// index entries of exactly those paths are updated.
    async fn commit(&self, repo: &Path, request: CommitRequest) -> Result<CommitOutcome> {
        let repo = repo.to_path_buf();
        let span = tracing::info_span!("vcs.commit", repo = %repo.display(), task_id = request.task_id.as_deref().unwrap_or(""));
        self.blocking(move |settings| commit::commit(settings, &open_repo(&repo)?, &request))
            .instrument(span)
            .await
    }

    /// gix only.
    async fn current_branch(&self, repo: &Path) -> Result<Option<String>> {
        let repo = repo.to_path_buf();
        self.blocking(move |_| Ok(repo_info(&open_repo(&repo)?)?.branch))
            .await
    }

    /// gix only.
    async fn create_branch(&self, repo: &Path, name: &str, start: Option<String>) -> Result<()> {
        let repo = repo.to_path_buf();
        let name = name.to_owned();
        self.blocking(move |settings| {
            refs::create_branch(settings, &open_repo(&repo)?, &name, start.as_deref())
        })
        .await
    }

    /// Runs `git switch`: gix cannot update an existing worktree. Local changes that would be
    /// overwritten make it fail without changing anything.
    async fn switch_branch(&self, repo: &Path, name: &str) -> Result<()> {
        let name_owned = name.to_owned();
        let repo_owned = repo.to_path_buf();
        self.blocking(move |_| {
            let repo = open_repo(&repo_owned)?;
            refs::branch_id(&repo, &name_owned).map(|_| ())
        })
        .await?;
        git_cli::run(&self.settings, repo, &["switch", "--no-guess", "--", name])
            .await
            .map(|_| ())
    }

    /// gix only.
    async fn list_branches(&self, repo: &Path) -> Result<Vec<BranchInfo>> {
        let repo = repo.to_path_buf();
        self.blocking(move |_| refs::list_branches(&open_repo(&repo)?))
            .await
    }

    /// gix for the reference deletion; `git worktree list` to refuse deleting a branch that a
    /// linked worktree has checked out.
    async fn delete_branch(&self, repo: &Path, name: &str) -> Result<()> {
        if self.settings.is_protected(name) {
            return Err(VcsError::ProtectedBranch {
                branch: name.to_owned(),
                operation: "delete",
            });
        }
        if let Some(worktree) = via_git::worktree_with_branch(&self.settings, repo, name).await? {
            return Err(VcsError::BranchCheckedOut {
                branch: name.to_owned(),
                worktree,
            });
        }
        let repo = repo.to_path_buf();
        let name = name.to_owned();
        self.blocking(move |_| refs::delete_branch(&open_repo(&repo)?, &name))
            .await
    }

    /// Runs `git switch` (branch) or `git switch --detach` (any other revision): gix cannot
    /// update an existing worktree.
    async fn checkout(&self, repo: &Path, rev: &str) -> Result<()> {
        let repo_owned = repo.to_path_buf();
        let rev_owned = rev.to_owned();
        let (is_branch, id) = self
            .blocking(move |_| {
                let repo = open_repo(&repo_owned)?;
                let is_branch = refs::branch_id(&repo, &rev_owned).is_ok();
                Ok((is_branch, resolve_commit(&repo, &rev_owned)?))
            })
            .await?;
        let id = id.to_string();
        let args: Vec<&str> = if is_branch {
            vec!["switch", "--no-guess", "--", rev]
        } else {
            vec!["switch", "--detach", &id]
        };
        git_cli::run(&self.settings, repo, &args).await.map(|_| ())
    }

    /// gix only.
    async fn diff_worktree(&self, repo: &Path) -> Result<String> {
        let repo = repo.to_path_buf();
        self.blocking(move |_| diff::worktree_vs_head(&open_repo(&repo)?))
            .await
    }

    /// gix only.
    async fn diff_revisions(&self, repo: &Path, from: &str, to: &str) -> Result<String> {
        let repo = repo.to_path_buf();
        let (from, to) = (from.to_owned(), to.to_owned());
        self.blocking(move |_| diff::between_revisions(&open_repo(&repo)?, &from, &to))
            .await
    }

    /// gix only.
    async fn log(&self, repo: &Path, rev: Option<String>, limit: usize) -> Result<Vec<CommitInfo>> {
        let repo = repo.to_path_buf();
        self.blocking(move |_| refs::log(&open_repo(&repo)?, rev.as_deref(), limit))
            .await
    }

    /// gix only.
    async fn merge_base(&self, repo: &Path, a: &str, b: &str) -> Result<Option<String>> {
        let repo = repo.to_path_buf();
        let (a, b) = (a.to_owned(), b.to_owned());
        self.blocking(move |_| {
            let repo = open_repo(&repo)?;
            let (a_id, b_id) = (resolve_commit(&repo, &a)?, resolve_commit(&repo, &b)?);
            let base = repo
                .merge_base(a_id, b_id)
                .map_err(VcsError::gix(format!("find the merge base of {a} and {b}")))?;
            Ok(base.map(|id| id.to_string()))
        })
        .await
    }

    /// The merge is computed by gix (`merge_commits`, in memory) and the merge commit written
    /// by gix. If `into` is checked out in a worktree, that worktree is moved to the result with
    /// `git merge --ff-only <result>` (gix cannot update an existing worktree; git refuses if
    /// local changes would be overwritten, changing nothing). Otherwise gix moves the branch
    /// with a compare-and-swap reference edit.
    async fn merge(&self, repo: &Path, request: MergeRequest) -> Result<MergeOutcome> {
        let span = tracing::info_span!("vcs.merge", repo = %repo.display(), source = %request.source, into = %request.into, task_id = request.task_id.as_deref().unwrap_or(""));
        merge::merge(self, repo, request).instrument(span).await
    }

    /// gix only.
    async fn tag(
        &self,
        repo: &Path,
        name: &str,
        rev: &str,
        message: Option<String>,
    ) -> Result<String> {
        let repo = repo.to_path_buf();
        let (name, rev) = (name.to_owned(), rev.to_owned());
        self.blocking(move |settings| {
            refs::tag(
                settings,
                &open_repo(&repo)?,
                &name,
                &rev,
                message.as_deref(),
            )
        })
        .await
    }

    /// Runs `git push <remote> refs/heads/<branch>:refs/heads/<branch>`: gix cannot push.
    async fn push(
        &self,
        repo: &Path,
        remote: &str,
        branch: &str,
        approval: Option<MergeApproval>,
    ) -> Result<()> {
        via_git::push(self, repo, remote, branch, approval).await
    }

    /// Runs `git fetch <remote> <branch>` (authenticated fetch is the `git` program's job),
    /// then merges the fetched commit like [`Vcs::merge`]. Into a protected branch only a
    /// fast-forward is allowed.
    async fn pull(&self, repo: &Path, remote: &str, branch: &str) -> Result<MergeOutcome> {
        via_git::pull(self, repo, remote, branch).await
    }

    /// Runs `git worktree add` (gix cannot create linked worktrees).
    async fn add_worktree(
        &self,
        repo: &Path,
        path: &Path,
        branch: &str,
        start: Option<String>,
    ) -> Result<WorktreeInfo> {
        via_git::add_worktree(self, repo, path, branch, start).await
    }

    /// Runs `git worktree remove` (gix cannot remove linked worktrees).
    async fn remove_worktree(&self, repo: &Path, path: &Path, force: bool) -> Result<()> {
        via_git::remove_worktree(self, repo, path, force).await
    }
}
