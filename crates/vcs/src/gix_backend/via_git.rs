//! Operations that run the `git` program because gix cannot do them: push, fetch (for pull),
//! clone over the network, and linked worktrees.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use tracing::Instrument;

use super::merge::{self, MergeSource};
use super::{GixVcs, head_state, open_repo, refs, repo_info, resolve_commit, short_branch};
use crate::error::{Result, VcsError};
use crate::git_cli;
use crate::settings::VcsSettings;
use crate::types::{MergeApproval, MergeOutcome, RepoInfo, WorktreeInfo};

fn ensure_empty_destination(dest: &Path) -> Result<()> {
    let not_empty = dest
        .read_dir()
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if not_empty || (dest.exists() && !dest.is_dir()) {
        return Err(VcsError::DestinationNotEmpty {
            path: dest.to_path_buf(),
        });
    }
    Ok(())
}

/// Refuses remote names and URLs that the `git` program could read as options.
fn checked_remote(remote: &str) -> Result<&str> {
    if remote.is_empty() || remote.starts_with('-') {
        return Err(VcsError::InvalidRefName {
            name: remote.to_owned(),
        });
    }
    Ok(remote)
}

fn is_local(url: &str) -> bool {
    url.starts_with("file://") || Path::new(url).exists()
}

pub(crate) async fn clone_repo(vcs: &GixVcs, url: &str, dest: &Path) -> Result<RepoInfo> {
    ensure_empty_destination(dest)?;
    let url = checked_remote(url)?.to_owned();
    if is_local(&url) {
        let dest = dest.to_path_buf();
        return vcs
            .blocking(move |_| {
                let operation = format!("clone {url} into {}", dest.display());
                let interrupt = AtomicBool::new(false);
                let mut prepare = gix::prepare_clone(url.as_str(), &dest)
                    .map_err(VcsError::gix(operation.clone()))?;
                let (mut checkout, _) = prepare
                    .fetch_then_checkout(gix::progress::Discard, &interrupt)
                    .map_err(VcsError::gix(operation.clone()))?;
                let (repo, _) = checkout
                    .main_worktree(gix::progress::Discard, &interrupt)
                    .map_err(VcsError::gix(operation))?;
                repo_info(&repo)
            })
            .await;
    }
    let parent = dest
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(VcsError::io(parent))?;
    let dest_arg = dest.to_string_lossy();
    git_cli::run(vcs.settings(), parent, &["clone", "--", &url, &dest_arg]).await?;
    let dest = dest.to_path_buf();
    vcs.blocking(move |_| repo_info(&open_repo(&dest)?)).await
}

pub(crate) async fn push(
    vcs: &GixVcs,
    repo: &Path,
    remote: &str,
    branch: &str,
    approval: Option<MergeApproval>,
) -> Result<()> {
    let approved = approval.as_ref().is_some_and(MergeApproval::is_approved);
    if vcs.settings().is_protected(branch) && !approved {
        return Err(VcsError::ProtectedBranch {
            branch: branch.to_owned(),
            operation: "push",
        });
    }
    let remote = checked_remote(remote)?;
    let repo_path = repo.to_path_buf();
    let branch_owned = branch.to_owned();
    vcs.blocking(move |_| refs::branch_id(&open_repo(&repo_path)?, &branch_owned).map(|_| ()))
        .await?;
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    let span = tracing::info_span!("vcs.push", remote, branch);
    git_cli::run(vcs.settings(), repo, &["push", "--", remote, &refspec])
        .instrument(span)
        .await?;
    Ok(())
}

pub(crate) async fn pull(
    vcs: &GixVcs,
    repo: &Path,
    remote: &str,
    branch: &str,
) -> Result<MergeOutcome> {
    let remote = checked_remote(remote)?;
    refs::branch_ref_name(branch)?;
    let refspec = format!("refs/heads/{branch}");
    git_cli::run(vcs.settings(), repo, &["fetch", "--", remote, &refspec]).await?;
    let fetched = git_cli::run(
        vcs.settings(),
        repo,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            "FETCH_HEAD^{commit}",
        ],
    )
    .await?
    .trim()
    .to_owned();
    let repo_path = repo.to_path_buf();
    let label = format!("{remote}/{branch}");
    let (into, plan) = vcs
        .blocking(move |settings| {
            let repo = open_repo(&repo_path)?;
            let current = head_state(&repo)?.0.ok_or_else(|| VcsError::DetachedHead {
                path: repo_path.clone(),
            })?;
            let into = short_branch(&current).to_owned();
            let allow_merge_commit = !settings.is_protected(&into);
            let source = MergeSource {
                rev: &fetched,
                label: &label,
            };
            let plan = merge::plan(
                settings,
                &repo,
                &source,
                &into,
                allow_merge_commit,
                None,
                &[],
            )?;
            Ok((into, plan))
        })
        .await?;
    merge::apply(vcs, repo, &into, plan).await
}

/// The worktree (main or linked) that has `branch` checked out, from `git worktree list`.
pub(crate) async fn worktree_with_branch(
    settings: &VcsSettings,
    repo: &Path,
    branch: &str,
) -> Result<Option<PathBuf>> {
    let listing = git_cli::run(settings, repo, &["worktree", "list", "--porcelain", "-z"]).await?;
    let wanted = format!("branch refs/heads/{branch}");
    let mut current_path: Option<&str> = None;
    for field in listing.split('\0') {
        if let Some(path) = field.strip_prefix("worktree ") {
            current_path = Some(path);
        } else if field == wanted {
            return Ok(current_path.map(PathBuf::from));
        }
    }
    Ok(None)
}

pub(crate) async fn add_worktree(
    vcs: &GixVcs,
    repo: &Path,
    path: &Path,
    branch: &str,
    start: Option<String>,
) -> Result<WorktreeInfo> {
    ensure_empty_destination(path)?;
    refs::branch_ref_name(branch)?;
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        repo.join(path)
    };
    let repo_path = repo.to_path_buf();
    let branch_owned = branch.to_owned();
    let (exists, start_id) = vcs
        .blocking(move |_| {
            let repo = open_repo(&repo_path)?;
            let exists = refs::branch_id(&repo, &branch_owned).is_ok();
            let start_id = resolve_commit(&repo, start.as_deref().unwrap_or("HEAD"))?;
            Ok((exists, start_id.to_string()))
        })
        .await?;
    let path_arg = path.to_string_lossy();
    if !path.exists() {
        // A `git worktree add` interrupted by a crash leaves the worktree registered, locked
        // ("initializing") and missing, and every later add of that path fails. Clearing
        // it makes the add idempotent; prune only drops registrations whose directory is gone.
        let _not_locked =
            git_cli::run(vcs.settings(), repo, &["worktree", "unlock", &path_arg]).await;
        git_cli::run(vcs.settings(), repo, &["worktree", "prune"]).await?;
    }
    let args: Vec<&str> = if exists {
        vec!["worktree", "add", "--", &path_arg, branch]
    } else {
        vec!["worktree", "add", "-b", branch, "--", &path_arg, &start_id]
    };
    git_cli::run(vcs.settings(), repo, &args).await?;
    let info_path = path.clone();
    let info = vcs
        .blocking(move |_| repo_info(&open_repo(&info_path)?))
        .await?;
    Ok(WorktreeInfo {
        path,
        branch: branch.to_owned(),
        head: info.head.unwrap_or_default(),
    })
}

pub(crate) async fn remove_worktree(
    vcs: &GixVcs,
    repo: &Path,
    path: &Path,
    force: bool,
) -> Result<()> {
    let path_arg = path.to_string_lossy();
    let mut args = vec!["worktree", "remove"];
    if force {
        args.push("--force");
    }
    args.extend(["--", &path_arg]);
    git_cli::run(vcs.settings(), repo, &args).await.map(|_| ())
}
