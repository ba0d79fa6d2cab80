//! Committing exactly the task's paths, idempotently: all gix.

use gix::refs::Target;
use gix::refs::transaction::PreviousValue;

use super::stage::{WorktreeFile, changed_paths, store_worktree_file, update_index};
use super::{head_state, refs, repo_relative, short_branch, workdir};
use crate::error::{Result, VcsError};
use crate::settings::VcsSettings;
use crate::types::{CommitOutcome, CommitRequest, TASK_ID_TRAILER, Trailer};

pub(crate) fn commit(
    settings: &VcsSettings,
    repo: &gix::Repository,
    request: &CommitRequest,
) -> Result<CommitOutcome> {
    if request.paths.is_empty() {
        return Err(VcsError::NoPathsGiven);
    }
    let workdir = workdir(repo)?;
    let (branch, head_id) = head_state(repo)?;
    let branch = branch.ok_or_else(|| VcsError::DetachedHead {
        path: workdir.clone(),
    })?;
    if settings.is_protected(short_branch(&branch)) {
        return Err(VcsError::ProtectedBranch {
            branch: short_branch(&branch).to_owned(),
            operation: "commit",
        });
    }
    let relative: Vec<String> = request
        .paths
        .iter()
        .map(|path| repo_relative(&workdir, path))
        .collect::<Result<_>>()?;

    if let (Some(task_id), Some(head_id)) = (&request.task_id, head_id)
        && let Some(existing) = find_task_commit(repo, head_id, task_id)?
    {
        tracing::info!(commit = %existing, task_id, "task already committed; not committing again");
        return Ok(CommitOutcome {
            id: existing.to_string(),
            created: false,
        });
    }

    let head_tree = match head_id {
        Some(id) => repo
            .find_commit(id)
            .map_err(VcsError::gix(format!("read commit {id}")))?
            .tree_id()
            .map_err(VcsError::gix(format!("read tree of {id}")))?
            .detach(),
        None => gix::ObjectId::empty_tree(repo.object_hash()),
    };
    let mut editor = repo
        .edit_tree(head_tree)
        .map_err(VcsError::gix("start editing the HEAD tree"))?;
    let mut updates = Vec::new();
    for path in changed_paths(repo, &relative)? {
        let file = store_worktree_file(repo, &workdir, &path)?;
        match &file {
            WorktreeFile::Stored(stored) => {
                editor
                    .upsert(path.as_str(), stored.kind, stored.id)
                    .map_err(VcsError::gix(format!("add {path} to the tree")))?;
            }
            WorktreeFile::Absent => {
                editor
                    .remove(path.as_str())
                    .map_err(VcsError::gix(format!("remove {path} from the tree")))?;
            }
            WorktreeFile::Unversionable => continue,
        }
        updates.push((path, file));
    }
    let new_tree = editor
        .write()
        .map_err(VcsError::gix("write the new tree"))?
        .detach();
    if new_tree == head_tree {
        return Err(VcsError::NothingToCommit { paths: relative });
    }

    let mut trailers = Vec::new();
    if let Some(task_id) = &request.task_id {
        trailers.push(Trailer::new(TASK_ID_TRAILER, task_id.as_str()));
    }
    trailers.extend(request.trailers.iter().cloned());
    let message = compose_message(&request.message, &trailers);
    let id = write_commit(
        settings,
        repo,
        new_tree,
        head_id.into_iter().collect(),
        &message,
    )?;
    let expected = match head_id {
        Some(head) => PreviousValue::MustExistAndMatch(Target::Object(head)),
        None => PreviousValue::MustNotExist,
    };
    let branch_name = gix::refs::FullName::try_from(branch.as_str())
        .map_err(VcsError::gix(format!("name {branch}")))?;
    let summary = message.lines().next().unwrap_or_default();
    // Index first, branch second: a crash in between leaves the task's changes staged and
    // the Task-Id absent from history, so a re-run commits them; a failed branch update
    // (someone else moved it) puts the index back.
    let previous_index = update_index(repo, &updates)?;
    let moved = refs::update_ref(
        settings,
        repo,
        branch_name,
        id,
        expected,
        &format!(
            "commit{}: {summary}",
            if head_id.is_none() { " (initial)" } else { "" }
        ),
    );
    if let Err(err) = moved {
        previous_index.restore()?;
        return Err(err);
    }
    tracing::info!(commit = %id, files = updates.len(), "committed");
    Ok(CommitOutcome {
        id: id.to_string(),
        created: true,
    })
}

/// Writes a commit object (author and committer from the settings) without moving any reference.
pub(crate) fn write_commit(
    settings: &VcsSettings,
    repo: &gix::Repository,
    tree: gix::ObjectId,
    parents: Vec<gix::ObjectId>,
    message: &str,
) -> Result<gix::ObjectId> {
    let signature = refs::signature(settings);
    let commit = gix::objs::Commit {
        message: message.into(),
        tree,
        author: signature.clone(),
        committer: signature,
        encoding: None,
        parents: parents.into_iter().collect(),
        extra_headers: Vec::new(),
    };
    Ok(repo
        .write_object(&commit)
        .map_err(VcsError::gix("write the commit"))?
        .detach())
}

/// `message` followed by a blank line and one `Key: value` line per trailer.
/// Line breaks inside trailer values are replaced by spaces so a value cannot forge trailers.
pub(crate) fn compose_message(message: &str, trailers: &[Trailer]) -> String {
    let mut composed = message.trim_end().to_owned();
    if !trailers.is_empty() {
        composed.push_str("\n\n");
        for trailer in trailers {
            let key = one_line(&trailer.key);
            let value = one_line(&trailer.value);
            composed.push_str(&format!("{key}: {value}\n"));
        }
    } else {
        composed.push('\n');
    }
    composed
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The newest commit reachable from `tip` whose trailers contain `Task-Id: task_id`.
pub(crate) fn find_task_commit(
    repo: &gix::Repository,
    tip: gix::ObjectId,
    task_id: &str,
) -> Result<Option<gix::ObjectId>> {
    let wanted = one_line(task_id);
    let walk = repo
        .rev_walk([tip])
        .all()
        .map_err(VcsError::gix("walk history for Task-Id"))?;
    for info in walk {
        let info = info.map_err(VcsError::gix("walk history for Task-Id"))?;
        let commit = info
            .object()
            .map_err(VcsError::gix(format!("read commit {}", info.id)))?;
        let message = commit
            .message_raw()
            .map_err(VcsError::gix(format!("read message of {}", info.id)))?;
        if trailer_values(&message.to_string(), TASK_ID_TRAILER).any(|value| value == wanted) {
            return Ok(Some(info.id));
        }
    }
    Ok(None)
}

/// Values of trailer `key` (case-insensitive) in the last paragraph of `message`.
fn trailer_values<'a>(message: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let last_paragraph = message.trim_end().rsplit("\n\n").next().unwrap_or_default();
    last_paragraph.lines().filter_map(move |line| {
        let (line_key, value) = line.split_once(':')?;
        line_key
            .trim()
            .eq_ignore_ascii_case(key)
            .then_some(value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_appended_after_a_blank_line() {
        let message = compose_message(
            "Add parser\n\nBody text.\n",
            &[
                Trailer::new("Task-Id", "t-1"),
                Trailer::new("Role", "developer"),
            ],
        );
        assert_eq!(
            message,
            "Add parser\n\nBody text.\n\nTask-Id: t-1\nRole: developer\n"
        );
    }

    #[test]
    fn trailer_values_cannot_inject_lines() {
        let message = compose_message("x", &[Trailer::new("Task-Id", "a\nTask-Id: b")]);
        assert_eq!(message, "x\n\nTask-Id: a Task-Id: b\n");
        assert_eq!(
            trailer_values(&message, "task-id").collect::<Vec<_>>(),
            ["a Task-Id: b"]
        );
    }

    #[test]
    fn only_the_last_paragraph_holds_trailers() {
        let message = "Subject\n\nTask-Id: in-body\n\nSigned-off-by: x\n";
        assert_eq!(trailer_values(message, "Task-Id").count(), 0);
    }
}
