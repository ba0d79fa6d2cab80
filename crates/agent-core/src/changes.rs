//! Looking at a task's changes (for reviews and commit messages) and committing them.

use std::path::PathBuf;
use std::sync::Arc;

use agentd_fsmanager::{FileManager, FsError};
use agentd_vcs::{ChangeKind, CommitOutcome, CommitRequest, Trailer};
use serde::Deserialize;
use serde_json::json;

use crate::context::{AgentContext, RoleLlmParams, TaskWorkspace};
use crate::error::{AgentError, Result};
use crate::journal::{self, activity};
use crate::model::{Role, Task};
use crate::prompts::render_prompt;
use crate::schemas;
use crate::session::Session;

/// Longest diff text given to a prompt; the rest is cut with a note.
pub(crate) const MAX_DIFF_CHARS: usize = 30_000;
/// Longest excerpt of one new (untracked) file shown with a diff.
const MAX_NEW_FILE_CHARS: usize = 4_000;

/// Runs a blocking file operation off the async runtime.
pub(crate) async fn blocking_files<T, F>(
    files: &Arc<dyn FileManager>,
    op: F,
) -> std::result::Result<T, FsError>
where
    T: Send + 'static,
    F: FnOnce(&dyn FileManager) -> std::result::Result<T, FsError> + Send + 'static,
{
    let files = Arc::clone(files);
    match tokio::task::spawn_blocking(move || op(files.as_ref())).await {
        Ok(result) => result,
        Err(join) => Err(FsError::Io {
            op: "run a blocking file operation",
            path: String::new(),
            source: std::io::Error::other(join.to_string()),
        }),
    }
}

/// The diff of the task's work: committed changes since `base` (when given), changes in
/// the worktree, and the content of new untracked files. Empty without version control.
pub(crate) async fn describe_changes(ws: &TaskWorkspace, base: Option<&str>) -> Result<String> {
    let Some(vcs) = &ws.vcs else {
        return Ok(String::new());
    };
    let vcs_error = |during: &str| {
        let during = during.to_owned();
        move |source| AgentError::Vcs { during, source }
    };
    let mut text = String::new();
    if let Some(base) = base {
        text.push_str(
            &vcs.diff_revisions(&ws.root, base, "HEAD")
                .await
                .map_err(vcs_error(&format!("diffing {base}..HEAD")))?,
        );
    }
    text.push_str(
        &vcs.diff_worktree(&ws.root)
            .await
            .map_err(vcs_error("diffing the worktree"))?,
    );
    let status = vcs
        .status(&ws.root)
        .await
        .map_err(vcs_error("reading the status"))?;
    for entry in status {
        let untracked = entry.unstaged == Some(ChangeKind::Untracked);
        if !untracked {
            continue;
        }
        let path = entry.path.clone();
        let content = blocking_files(&ws.files, move |f| f.read(&path)).await;
        text.push_str(&format!("\nnew file {}\n", entry.path));
        match content {
            Ok(content) => {
                for line in cut(&content, MAX_NEW_FILE_CHARS).lines() {
                    text.push('+');
                    text.push_str(line);
                    text.push('\n');
                }
            }
            Err(error) => text.push_str(&format!("(unreadable: {error})\n")),
        }
    }
    Ok(cut(&text, MAX_DIFF_CHARS))
}

/// `text` cut to at most `max` characters, with a note of what was dropped.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((byte, _)) => {
            let dropped = text.len() - byte;
            format!(
                "{}\n... ({dropped} more bytes cut)",
                text.get(..byte).unwrap_or(text)
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct CommitMessageAnswer {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    scope: Option<String>,
    subject: String,
    #[serde(default)]
    body: String,
}

impl CommitMessageAnswer {
    fn message(&self) -> String {
        let scope = match self.scope.as_deref().map(str::trim) {
            Some(scope) if !scope.is_empty() => format!("({scope})"),
            _ => String::new(),
        };
        let subject = self.subject.lines().next().unwrap_or_default().trim();
        let body = self.body.trim();
        if body.is_empty() {
            format!("{}{scope}: {subject}", self.kind)
        } else {
            format!("{}{scope}: {subject}\n\n{body}", self.kind)
        }
    }
}

/// Asks the model for a Conventional Commits message for `diff`.
pub(crate) async fn write_commit_message(
    session: &mut Session,
    task: &Task,
    diff: &str,
) -> Result<String> {
    let prompt = render_prompt(
        "common/commit_message.v1",
        json!({"task": task, "role": session.role(), "diff": diff}),
    )?;
    let system = "You write git commit messages in the Conventional Commits style.";
    let answer = session
        .structured::<CommitMessageAnswer>(
            system,
            prompt,
            "commit_message",
            &schemas::commit_message(),
            false,
            |answer| {
                if answer.subject.trim().is_empty() {
                    Err("the subject is empty".into())
                } else {
                    Ok(())
                }
            },
        )
        .await?;
    Ok(answer.message())
}

/// Commits `paths` of the task's workspace with an LLM-written message, on the checked-out
/// (feature) branch, with the `Task-Id` trailer (idempotent: a second commit for the same
/// task returns the first) and an `Agent-Role` trailer.
pub(crate) async fn commit_paths(
    session: &mut Session,
    ws: &TaskWorkspace,
    task: &Task,
    agent: &str,
    paths: Vec<String>,
    memory: &dyn agentd_memory::MemoryStore,
) -> Result<Option<CommitOutcome>> {
    let Some(vcs) = &ws.vcs else {
        return Ok(None);
    };
    if paths.is_empty() {
        return Ok(None);
    }
    let diff = describe_changes(ws, None).await?;
    let message = write_commit_message(session, task, &diff).await?;
    let outcome = vcs
        .commit(
            &ws.root,
            CommitRequest {
                message,
                paths: paths.iter().map(PathBuf::from).collect(),
                task_id: Some(task.id.clone()),
                trailers: vec![Trailer::new("Agent-Role", session.role().as_str())],
            },
        )
        .await
        .map_err(|source| AgentError::Vcs {
            during: format!("committing task {}", task.id),
            source,
        })?;
    journal::activity(
        memory,
        agent,
        activity::COMMIT,
        json!({"task_id": task.id, "commit": outcome.id, "created": outcome.created, "paths": paths}),
    )
    .await?;
    Ok(Some(outcome))
}

/// Commits the files a task changed, for callers outside an agent (e.g. the orchestrator
/// after a review): an LLM-written Conventional Commits message from the diff, the
/// `Task-Id: <task.id>` trailer (a re-run never commits twice), and an `Agent-Role`
/// trailer naming `role`. Returns `None` when the context has no version control or
/// `paths` is empty.
///
/// # Errors
/// [`AgentError::Vcs`] (e.g. a protected branch is checked out), LLM and memory errors.
pub async fn commit_task_changes(
    ctx: &AgentContext,
    task: &Task,
    role: &Role,
    params: RoleLlmParams,
    paths: Vec<String>,
) -> Result<Option<CommitOutcome>> {
    let Some(ws) = &ctx.workspace else {
        return Ok(None);
    };
    let mut session = Session::new(ctx.llm.clone(), role.as_str(), role, &task.id, params, 2);
    commit_paths(
        &mut session,
        ws,
        task,
        role.as_str(),
        paths,
        ctx.memory.as_ref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters_and_says_what_was_dropped() {
        assert_eq!(cut("héllo", 10), "héllo");
        assert_eq!(cut("héllo", 2), "hé\n... (3 more bytes cut)");
    }

    #[test]
    fn commit_messages_follow_conventional_commits() {
        let answer = |scope: Option<&str>, body: &str| CommitMessageAnswer {
            kind: "feat".into(),
            scope: scope.map(str::to_owned),
            subject: "add mean()\nsecond line is dropped".into(),
            body: body.into(),
        };
        assert_eq!(
            answer(Some("stats"), "").message(),
            "feat(stats): add mean()"
        );
        assert_eq!(
            answer(Some(" "), " why \n").message(),
            "feat: add mean()\n\nwhy"
        );
        assert_eq!(answer(None, "").message(), "feat: add mean()");
    }
}
