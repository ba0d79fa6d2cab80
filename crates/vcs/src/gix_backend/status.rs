//! Working-tree status: all gix.

use std::collections::BTreeMap;

use gix::bstr::BString;
use gix::status::index_worktree::Item as WorktreeItem;
use gix::status::plumbing::index_as_worktree::{Change as WorktreeChange, EntryStatus};
use gix::status::{UntrackedFiles, tree_index::TrackRenames};

use crate::error::{Result, VcsError};
use crate::types::{ChangeKind, StatusEntry};

/// The changed paths matching `pathspecs` (all when empty), sorted by path.
///
/// Like `git status`, a path that is deleted in the index but present in the worktree appears
/// twice: once as a staged deletion and once as untracked.
pub(crate) fn collect(repo: &gix::Repository, pathspecs: Vec<BString>) -> Result<Vec<StatusEntry>> {
    let mut iter = repo
        .status(gix::progress::Discard)
        .map_err(VcsError::gix("prepare status"))?
        .untracked_files(UntrackedFiles::Files)
        .tree_index_track_renames(TrackRenames::Disabled)
        .index_worktree_rewrites(None)
        .into_iter(pathspecs)
        .map_err(VcsError::gix("start status"))?;

    let mut entries: BTreeMap<(String, bool), StatusEntry> = BTreeMap::new();
    let mut record = |path: String, staged: Option<ChangeKind>, unstaged: Option<ChangeKind>| {
        let untracked = staged == Some(ChangeKind::Untracked);
        let entry = entries
            .entry((path.clone(), untracked))
            .or_insert(StatusEntry {
                path,
                staged: None,
                unstaged: None,
            });
        if entry.staged != Some(ChangeKind::Conflicted) {
            entry.staged = staged.or(entry.staged);
            entry.unstaged = unstaged.or(entry.unstaged);
        }
    };
    for item in &mut iter {
        let item = item.map_err(VcsError::gix("compute status"))?;
        match item {
            gix::status::Item::IndexWorktree(WorktreeItem::Modification {
                rela_path,
                status,
                ..
            }) => {
                let path = rela_path.to_string();
                match status {
                    EntryStatus::Conflict { .. } => record(
                        path,
                        Some(ChangeKind::Conflicted),
                        Some(ChangeKind::Conflicted),
                    ),
                    EntryStatus::Change(change) => {
                        let kind = match change {
                            WorktreeChange::Removed => ChangeKind::Deleted,
                            WorktreeChange::Type { .. } => ChangeKind::TypeChanged,
                            WorktreeChange::Modification { .. }
                            | WorktreeChange::SubmoduleModification(_) => ChangeKind::Modified,
                        };
                        record(path, None, Some(kind));
                    }
                    EntryStatus::IntentToAdd => record(path, None, Some(ChangeKind::Added)),
                    // Only the stat information is stale; the content is unchanged.
                    EntryStatus::NeedsUpdate(_) => {}
                }
            }
            gix::status::Item::IndexWorktree(WorktreeItem::DirectoryContents { entry, .. }) => {
                if entry.status == gix::dir::entry::Status::Untracked {
                    record(
                        entry.rela_path.to_string(),
                        Some(ChangeKind::Untracked),
                        Some(ChangeKind::Untracked),
                    );
                }
            }
            // Rewrite tracking is disabled above, so renames arrive as deletion plus addition.
            gix::status::Item::IndexWorktree(WorktreeItem::Rewrite { .. }) => {}
            gix::status::Item::TreeIndex(change) => {
                use gix::diff::index::ChangeRef;
                let kind = match &change {
                    ChangeRef::Addition { .. } => ChangeKind::Added,
                    ChangeRef::Deletion { .. } => ChangeKind::Deleted,
                    ChangeRef::Modification { .. } | ChangeRef::Rewrite { .. } => {
                        ChangeKind::Modified
                    }
                };
                record(change.location().to_string(), Some(kind), None);
            }
        }
    }
    // Like `git status`, keep refreshed stat data so the next run need not re-hash files.
    // Best effort: another process holding the index lock only costs speed.
    if let Some(mut outcome) = iter.into_outcome()
        && let Some(Err(err)) = outcome.write_changes()
    {
        tracing::debug!(error = %err, "could not write refreshed index stat data");
    }
    Ok(entries.into_values().collect())
}

pub(crate) fn status(repo: &gix::Repository) -> Result<Vec<StatusEntry>> {
    collect(repo, Vec::new())
}
