//! Merges: planned in memory with gix, applied with a compare-and-swap ref edit, or with
//! `git merge --ff-only` where the target branch is checked out.

use std::collections::BTreeSet;
use std::path::Path;

use gix::merge::tree::TreatAsUnresolved;
use gix::refs::Target;
use gix::refs::transaction::PreviousValue;

use super::commit::{compose_message, write_commit};
use super::{GixVcs, open_repo, refs, resolve_commit, via_git};
use crate::error::{Result, VcsError};
use crate::git_cli;
use crate::settings::VcsSettings;
use crate::types::{MergeOutcome, MergeRequest, TASK_ID_TRAILER, Trailer};

/// What a merge will do, decided before anything visible changes.
#[derive(Debug)]
pub(crate) enum MergePlan {
    /// `into` already contains the source.
    UpToDate { head: gix::ObjectId },
    /// Move `into` from `from` to `to` (the source for a fast-forward, else a new merge commit).
    Move {
        from: gix::ObjectId,
        to: gix::ObjectId,
        outcome: MergeOutcome,
    },
}

/// How the source side of a merge is named in messages and errors.
pub(crate) struct MergeSource<'a> {
    /// Revision to resolve (branch, tag, commit id).
    pub(crate) rev: &'a str,
    /// Human-readable name for the merge commit message.
    pub(crate) label: &'a str,
}

/// Decides fast-forward, up-to-date or three-way; for three-way, writes the merge commit object
/// (no reference moves). A conflict is an error and leaves nothing but unreferenced objects.
pub(crate) fn plan(
    settings: &VcsSettings,
    repo: &gix::Repository,
    source: &MergeSource<'_>,
    into: &str,
    allow_merge_commit: bool,
    message: Option<&str>,
    trailers: &[Trailer],
) -> Result<MergePlan> {
    let into_id = refs::branch_id(repo, into)?;
    let source_id = resolve_commit(repo, source.rev)?;
    if source_id == into_id {
        return Ok(MergePlan::UpToDate { head: into_id });
    }
    let unrelated = || VcsError::UnrelatedHistories {
        source_rev: source.label.to_owned(),
        into: into.to_owned(),
    };
    let base = repo
        .merge_base(into_id, source_id)
        .map_err(VcsError::gix(format!(
            "find the merge base of {} and {into}",
            source.label
        )))?
        .ok_or_else(unrelated)?
        .detach();
    if base == source_id {
        return Ok(MergePlan::UpToDate { head: into_id });
    }
    if base == into_id {
        return Ok(MergePlan::Move {
            from: into_id,
            to: source_id,
            outcome: MergeOutcome::FastForward {
                from: into_id.to_string(),
                to: source_id.to_string(),
            },
        });
    }
    if !allow_merge_commit {
        return Err(VcsError::ProtectedBranch {
            branch: into.to_owned(),
            operation: "non-fast-forward pull",
        });
    }

    let options = repo
        .tree_merge_options()
        .map_err(VcsError::gix("read merge options"))?;
    let labels = gix::merge::blob::builtin_driver::text::Labels {
        ancestor: None,
        current: Some(into.into()),
        other: Some(source.label.into()),
    };
    let mut outcome = repo
        .merge_commits(into_id, source_id, labels, options.into())
        .map_err(VcsError::gix(format!("merge {} into {into}", source.label)))?;
    let how = TreatAsUnresolved::git();
    if outcome.tree_merge.has_unresolved_conflicts(how) {
        let files: BTreeSet<String> = outcome
            .tree_merge
            .conflicts
            .iter()
            .filter(|conflict| conflict.is_unresolved(how))
            .flat_map(|conflict| {
                let (ours, theirs) = conflict.changes_in_resolution();
                [ours.location().to_string(), theirs.location().to_string()]
            })
            .collect();
        return Err(VcsError::MergeConflict {
            source_rev: source.label.to_owned(),
            into: into.to_owned(),
            files: files.into_iter().collect(),
        });
    }
    let tree = outcome
        .tree_merge
        .tree
        .write()
        .map_err(VcsError::gix("write the merged tree"))?
        .detach();
    let default_message = format!("Merge branch '{}' into {into}", source.label);
    let message = compose_message(message.unwrap_or(&default_message), trailers);
    let commit = write_commit(settings, repo, tree, vec![into_id, source_id], &message)?;
    Ok(MergePlan::Move {
        from: into_id,
        to: commit,
        outcome: MergeOutcome::Merged {
            commit: commit.to_string(),
        },
    })
}

/// Makes the plan visible: the branch moves, and so does a worktree that has it checked out.
pub(crate) async fn apply(
    vcs: &GixVcs,
    repo: &Path,
    into: &str,
    plan: MergePlan,
) -> Result<MergeOutcome> {
    let (from, to, outcome) = match plan {
        MergePlan::UpToDate { head } => {
            return Ok(MergeOutcome::AlreadyUpToDate {
                head: head.to_string(),
            });
        }
        MergePlan::Move { from, to, outcome } => (from, to, outcome),
    };
    match via_git::worktree_with_branch(vcs.settings(), repo, into).await? {
        Some(worktree) => {
            let to_hex = to.to_string();
            git_cli::run(
                vcs.settings(),
                &worktree,
                &["merge", "--ff-only", "--no-edit", &to_hex],
            )
            .await?;
        }
        None => {
            let repo = repo.to_path_buf();
            let into = into.to_owned();
            vcs.blocking(move |settings| {
                let repo = open_repo(&repo)?;
                refs::update_ref(
                    settings,
                    &repo,
                    refs::branch_ref_name(&into)?,
                    to,
                    PreviousValue::MustExistAndMatch(Target::Object(from)),
                    &format!("merge: {to}"),
                )
            })
            .await?;
        }
    }
    tracing::info!(?outcome, "merged");
    Ok(outcome)
}

pub(crate) async fn merge(
    vcs: &GixVcs,
    repo: &Path,
    request: MergeRequest,
) -> Result<MergeOutcome> {
    if vcs.settings().is_protected(&request.into) && !request.approval.is_approved() {
        return Err(VcsError::MergeNotApproved {
            branch: request.into.clone(),
            reviewed: request.approval.reviewed,
            tests_passed: request.approval.tests_passed,
        });
    }
    let mut trailers = Vec::new();
    if let Some(task_id) = &request.task_id {
        trailers.push(Trailer::new(TASK_ID_TRAILER, task_id.as_str()));
    }
    if let Some(reviewer) = &request.approval.reviewer {
        trailers.push(Trailer::new("Reviewed-by", reviewer.as_str()));
    }
    if request.approval.tests_passed {
        trailers.push(Trailer::new("Tests", "passed"));
    }
    let repo_path = repo.to_path_buf();
    let into = request.into.clone();
    let plan = vcs
        .blocking(move |settings| {
            let repo = open_repo(&repo_path)?;
            let source = MergeSource {
                rev: &request.source,
                label: &request.source,
            };
            plan(
                settings,
                &repo,
                &source,
                &request.into,
                true,
                request.message.as_deref(),
                &trailers,
            )
        })
        .await?;
    apply(vcs, repo, &into, plan).await
}
