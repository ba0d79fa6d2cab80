//! Unified diffs in `git diff` format: all gix (imara-diff through `gix::diff::blob`).

use gix::diff::blob::unified_diff::{ConsumeHunk, ContextSize, DiffLineKind, HunkHeader};
use gix::diff::blob::{Algorithm, Diff, InternedInput, UnifiedDiff};
use gix::object::tree::EntryKind;

use super::{resolve_commit, status, workdir};
use crate::error::{Result, VcsError};
use crate::types::ChangeKind;

/// One side of a file diff.
struct Side {
    id: gix::ObjectId,
    kind: EntryKind,
    data: Vec<u8>,
}

/// Like `git diff HEAD`: tracked files in the worktree against `HEAD` (untracked files are not shown).
pub(crate) fn worktree_vs_head(repo: &gix::Repository) -> Result<String> {
    let workdir = workdir(repo)?;
    let head_tree = match super::head_state(repo)?.1 {
        Some(id) => Some(
            repo.find_commit(id)
                .map_err(VcsError::gix(format!("read commit {id}")))?
                .tree()
                .map_err(VcsError::gix(format!("read tree of {id}")))?,
        ),
        None => None,
    };
    let mut out = String::new();
    for entry in status::collect(repo, Vec::new())? {
        if entry.staged == Some(ChangeKind::Untracked) {
            continue;
        }
        let old = match &head_tree {
            Some(tree) => match tree
                .lookup_entry_by_path(&entry.path)
                .map_err(VcsError::gix(format!("look up {} in HEAD", entry.path)))?
            {
                Some(tree_entry) if tree_entry.mode().is_blob_or_symlink() => Some(read_blob(
                    repo,
                    tree_entry.object_id(),
                    tree_entry.mode().kind(),
                )?),
                _ => None,
            },
            None => None,
        };
        let new = read_worktree(repo, &workdir.join(&entry.path))?;
        render_file(&mut out, &entry.path, old.as_ref(), new.as_ref());
    }
    Ok(out)
}

/// Like `git diff --no-renames from to`.
pub(crate) fn between_revisions(repo: &gix::Repository, from: &str, to: &str) -> Result<String> {
    let tree_of = |rev: &str| -> Result<gix::Tree<'_>> {
        let id = resolve_commit(repo, rev)?;
        repo.find_commit(id)
            .map_err(VcsError::gix(format!("read commit {id}")))?
            .tree()
            .map_err(VcsError::gix(format!("read tree of {rev}")))
    };
    let (old_tree, new_tree) = (tree_of(from)?, tree_of(to)?);
    let changes = repo
        .diff_tree_to_tree(
            Some(&old_tree),
            Some(&new_tree),
            gix::diff::Options::default(),
        )
        .map_err(VcsError::gix(format!("diff {from} {to}")))?;
    let mut files: Vec<(String, Option<Side>, Option<Side>)> = Vec::new();
    for change in changes {
        use gix::object::tree::diff::ChangeDetached as Change;
        let blob = |mode: gix::object::tree::EntryMode, id| -> Result<Option<Side>> {
            if mode.is_blob_or_symlink() {
                read_blob(repo, id, mode.kind()).map(Some)
            } else {
                Ok(None)
            }
        };
        let (path, old, new) = match change {
            Change::Addition {
                location,
                entry_mode,
                id,
                ..
            } => (location, None, blob(entry_mode, id)?),
            Change::Deletion {
                location,
                entry_mode,
                id,
                ..
            } => (location, blob(entry_mode, id)?, None),
            Change::Modification {
                location,
                previous_entry_mode,
                previous_id,
                entry_mode,
                id,
            } => (
                location,
                blob(previous_entry_mode, previous_id)?,
                blob(entry_mode, id)?,
            ),
            // Rewrite tracking is off in `gix::diff::Options::default()`.
            Change::Rewrite { .. } => continue,
        };
        if old.is_some() || new.is_some() {
            files.push((path.to_string(), old, new));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (path, old, new) in &files {
        render_file(&mut out, path, old.as_ref(), new.as_ref());
    }
    Ok(out)
}

fn read_blob(repo: &gix::Repository, id: gix::ObjectId, kind: EntryKind) -> Result<Side> {
    let blob = repo
        .find_blob(id)
        .map_err(VcsError::gix(format!("read blob {id}")))?;
    Ok(Side {
        id,
        kind,
        data: blob.data.clone(),
    })
}

fn read_worktree(repo: &gix::Repository, path: &std::path::Path) -> Result<Option<Side>> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(VcsError::io(path)(err)),
    };
    let (kind, data) = if metadata.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(VcsError::io(path))?;
        (
            EntryKind::Link,
            Vec::from(
                gix::path::into_bstr(target)
                    .map_err(VcsError::gix(format!("read link {}", path.display())))?
                    .into_owned(),
            ),
        )
    } else if metadata.is_file() {
        let data = std::fs::read(path).map_err(VcsError::io(path))?;
        (executable_or_plain(&metadata), data)
    } else {
        return Ok(None);
    };
    let id = gix::objs::compute_hash(repo.object_hash(), gix::object::Kind::Blob, &data)
        .map_err(VcsError::gix(format!("hash {}", path.display())))?;
    Ok(Some(Side { id, kind, data }))
}

#[cfg(unix)]
fn executable_or_plain(metadata: &std::fs::Metadata) -> EntryKind {
    use std::os::unix::fs::PermissionsExt;
    if metadata.permissions().mode() & 0o111 != 0 {
        EntryKind::BlobExecutable
    } else {
        EntryKind::Blob
    }
}

#[cfg(not(unix))]
fn executable_or_plain(_metadata: &std::fs::Metadata) -> EntryKind {
    EntryKind::Blob
}

fn mode_str(kind: EntryKind) -> String {
    format!("{:06o}", kind as u16)
}

fn abbrev(id: &gix::ObjectId) -> String {
    id.to_hex_with_len(7).to_string()
}

/// Git's test for binary content: a NUL byte in the first 8000 bytes.
fn is_binary(data: &[u8]) -> bool {
    data.iter().take(8000).any(|&byte| byte == 0)
}

/// Appends the `git diff` rendering of one file to `out`.
fn render_file(out: &mut String, path: &str, old: Option<&Side>, new: Option<&Side>) {
    let null = "0000000".to_owned();
    if let (Some(old), Some(new)) = (old, new)
        && old.id == new.id
        && old.kind == new.kind
    {
        return;
    }
    out.push_str(&format!("diff --git a/{path} b/{path}\n"));
    match (old, new) {
        (None, Some(new)) => {
            out.push_str(&format!("new file mode {}\n", mode_str(new.kind)));
            out.push_str(&format!("index {null}..{}\n", abbrev(&new.id)));
        }
        (Some(old), None) => {
            out.push_str(&format!("deleted file mode {}\n", mode_str(old.kind)));
            out.push_str(&format!("index {}..{null}\n", abbrev(&old.id)));
        }
        (Some(old), Some(new)) => {
            if old.kind != new.kind {
                out.push_str(&format!("old mode {}\n", mode_str(old.kind)));
                out.push_str(&format!("new mode {}\n", mode_str(new.kind)));
                if old.id != new.id {
                    out.push_str(&format!("index {}..{}\n", abbrev(&old.id), abbrev(&new.id)));
                }
            } else {
                out.push_str(&format!(
                    "index {}..{} {}\n",
                    abbrev(&old.id),
                    abbrev(&new.id),
                    mode_str(new.kind)
                ));
            }
        }
        (None, None) => return,
    }
    let old_data = old.map(|side| side.data.as_slice()).unwrap_or_default();
    let new_data = new.map(|side| side.data.as_slice()).unwrap_or_default();
    if old.map(|s| s.id) == new.map(|s| s.id) || (old_data.is_empty() && new_data.is_empty()) {
        return;
    }
    let old_name = old.map_or("/dev/null".to_owned(), |_| format!("a/{path}"));
    let new_name = new.map_or("/dev/null".to_owned(), |_| format!("b/{path}"));
    if is_binary(old_data) || is_binary(new_data) {
        out.push_str(&format!("Binary files {old_name} and {new_name} differ\n"));
        return;
    }
    out.push_str(&format!("--- {old_name}\n+++ {new_name}\n"));
    out.push_str(&unified_hunks(old_data, new_data));
}

/// The hunks of a line diff with three lines of context, as git prints them.
fn unified_hunks(old: &[u8], new: &[u8]) -> String {
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_lines(&input);
    let old_lines: Vec<&[u8]> = gix::diff::blob::sources::byte_lines(old).collect();
    let renderer = HunkRenderer {
        out: String::new(),
        old_lines,
    };
    UnifiedDiff::new(&diff, &input, renderer, ContextSize::symmetrical(3))
        .consume()
        // The renderer never fails: it writes into a String.
        .unwrap_or_default()
}

struct HunkRenderer<'a> {
    out: String,
    old_lines: Vec<&'a [u8]>,
}

impl HunkRenderer<'_> {
    /// Git's default hunk-header context: the nearest line above the hunk that starts with a
    /// letter, `_` or `$`, trimmed of trailing whitespace and cut to 80 bytes.
    fn function_context(&self, before_start: u32) -> Option<String> {
        let first_line_index = usize::try_from(before_start).ok()?.checked_sub(1)?;
        self.old_lines
            .get(..first_line_index)?
            .iter()
            .rev()
            .find(|line| {
                line.first()
                    .is_some_and(|&byte| byte.is_ascii_alphabetic() || byte == b'_' || byte == b'$')
            })
            .map(|line| {
                let cut = line.get(..80).unwrap_or(line);
                String::from_utf8_lossy(cut).trim_end().to_owned()
            })
    }
}

fn hunk_range(start: u32, len: u32) -> String {
    match len {
        // Git names the line *before* an empty range.
        0 => format!("{},0", start.saturating_sub(1)),
        1 => format!("{start}"),
        _ => format!("{start},{len}"),
    }
}

impl ConsumeHunk for HunkRenderer<'_> {
    type Out = String;

    fn consume_hunk(
        &mut self,
        header: HunkHeader,
        lines: &[(DiffLineKind, &[u8])],
    ) -> std::io::Result<()> {
        let mut header_line = format!(
            "@@ -{} +{} @@",
            hunk_range(header.before_hunk_start, header.before_hunk_len),
            hunk_range(header.after_hunk_start, header.after_hunk_len)
        );
        if let Some(context) = self.function_context(header.before_hunk_start) {
            header_line.push(' ');
            header_line.push_str(&context);
        }
        self.out.push_str(&header_line);
        self.out.push('\n');
        for (kind, content) in lines {
            self.out.push(kind.to_prefix());
            self.out.push_str(&String::from_utf8_lossy(content));
            if !content.ends_with(b"\n") {
                self.out.push_str("\n\\ No newline at end of file\n");
            }
        }
        Ok(())
    }

    fn finish(self) -> Self::Out {
        self.out
    }
}
