//! Working-tree status: all gix.

use std::collections::BTreeMap;

use gix::bstr::BString;
use gix::status::index_worktree::Item as WorktreeItem;
use gix::status::plumbing::index_as_worktree::{Change as WorktreeChange, EntryStatus};
use gix::status::{UntrackedFiles, tree_index::TrackRenames};
use gix::worktree::IndexPersistedOrInMemory;

use crate::error::{Result, VcsError};
use crate::types::{ChangeKind, StatusEntry};

/// Status entries keyed by path; untracked entries apart, as `git status` lists a path that
/// is deleted in the index but present in the worktree twice.
#[derive(Default)]
struct Entries(BTreeMap<(String, bool), StatusEntry>);

impl Entries {
    fn record(&mut self, path: String, staged: Option<ChangeKind>, unstaged: Option<ChangeKind>) {
        let untracked = staged == Some(ChangeKind::Untracked);
        let entry = self
            .0
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
    }

    fn record_worktree(&mut self, item: WorktreeItem) {
        match item {
            WorktreeItem::Modification {
                rela_path, status, ..
            } => {
                let path = rela_path.to_string();
                match status {
                    EntryStatus::Conflict { .. } => self.record(
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
                        self.record(path, None, Some(kind));
                    }
                    EntryStatus::IntentToAdd => self.record(path, None, Some(ChangeKind::Added)),
                    // Only the stat information is stale; the content is unchanged.
                    EntryStatus::NeedsUpdate(_) => {}
                }
            }
            WorktreeItem::DirectoryContents { entry, .. } => {
                if entry.status == gix::dir::entry::Status::Untracked {
                    self.record(
                        entry.rela_path.to_string(),
                        Some(ChangeKind::Untracked),
                        Some(ChangeKind::Untracked),
                    );
                }
            }
            // Rewrite tracking is disabled, so renames arrive as deletion plus addition.
            WorktreeItem::Rewrite { .. } => {}
        }
    }

    fn record_tree_index(&mut self, change: gix::diff::index::Change) {
        use gix::diff::index::ChangeRef;
        let kind = match &change {
            ChangeRef::Addition { .. } => ChangeKind::Added,
            ChangeRef::Deletion { .. } => ChangeKind::Deleted,
            ChangeRef::Modification { .. } | ChangeRef::Rewrite { .. } => ChangeKind::Modified,
        };
        self.record(change.location().to_string(), Some(kind), None);
    }
}

/// Whether the index's cached tree says it holds exactly `head_tree` (nothing staged).
///
/// Git keeps this cache valid on every write and trusts it for `git commit` and `git status`;
/// our own index writes drop it. A valid cache lets status skip the HEAD-to-index comparison.
fn index_equals_tree(index: &gix::index::File, head_tree: gix::ObjectId) -> bool {
    index.tree().is_some_and(|root| {
        root.id == head_tree
            && root.num_entries.is_some_and(|count| {
                usize::try_from(count).is_ok_and(|count| count == index.entries().len())
            })
    })
}

/// The changed paths matching `pathspecs` (all when empty), sorted by path.
///
/// Like `git status`, a path that is deleted in the index but present in the worktree appears
/// twice: once as a staged deletion and once as untracked.
pub(crate) fn collect(repo: &gix::Repository, pathspecs: Vec<BString>) -> Result<Vec<StatusEntry>> {
    let index = repo
        .index_or_empty()
        .map_err(VcsError::gix("read the index"))?;
    let head_tree = repo
        .head_tree_id_or_empty()
        .map_err(VcsError::gix("read the HEAD tree"))?
        .detach();
    let nothing_staged = index_equals_tree(&index, head_tree);
    let platform = repo
        .status(gix::progress::Discard)
        .map_err(VcsError::gix("prepare status"))?
        .untracked_files(UntrackedFiles::Files)
        .tree_index_track_renames(TrackRenames::Disabled)
        .index_worktree_rewrites(None)
        .index(IndexPersistedOrInMemory::Persisted(index));

    let mut entries = Entries::default();
    let outcome = if nothing_staged {
        let mut iter = platform
            .into_index_worktree_iter(pathspecs)
            .map_err(VcsError::gix("start status"))?;
        for item in &mut iter {
            entries.record_worktree(item.map_err(VcsError::gix("compute status"))?);
        }
        iter.into_outcome()
    } else {
        let mut iter = platform
            .into_iter(pathspecs)
            .map_err(VcsError::gix("start status"))?;
        for item in &mut iter {
            match item.map_err(VcsError::gix("compute status"))? {
                gix::status::Item::IndexWorktree(item) => entries.record_worktree(item),
                gix::status::Item::TreeIndex(change) => entries.record_tree_index(change),
            }
        }
        iter.into_outcome()
    };
    // Like `git status`, keep refreshed stat data so the next run need not re-hash files.
    // Best effort: another process holding the index lock only costs speed.
    if let Some(mut outcome) = outcome
        && let Some(Err(err)) = outcome.write_changes()
    {
        tracing::debug!(error = %err, "could not write refreshed index stat data");
    }
    Ok(entries.0.into_values().collect())
}

pub(crate) fn status(repo: &gix::Repository) -> Result<Vec<StatusEntry>> {
    collect(repo, Vec::new())
}
