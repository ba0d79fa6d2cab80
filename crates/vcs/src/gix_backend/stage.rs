//! Reading worktree files into the object database and updating index entries: all gix.

use std::collections::HashSet;
use std::path::Path;

use gix::index::entry::{Flags, Mode, Stat};
use gix::object::tree::EntryKind;

use super::{literal_pathspecs, repo_relative, status, workdir};
use crate::error::{Result, VcsError};
use crate::types::AddPaths;

/// A worktree file whose content is now in the object database.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) id: gix::ObjectId,
    pub(crate) kind: EntryKind,
    pub(crate) stat: Stat,
}

impl StoredFile {
    fn index_mode(&self) -> Mode {
        match self.kind {
            EntryKind::BlobExecutable => Mode::FILE_EXECUTABLE,
            EntryKind::Link => Mode::SYMLINK,
            _ => Mode::FILE,
        }
    }
}

/// What the worktree holds at a repository-relative path.
#[derive(Debug, Clone)]
pub(crate) enum WorktreeFile {
    /// A file or symlink, stored as a blob.
    Stored(StoredFile),
    /// Nothing: the path was deleted.
    Absent,
    /// A directory (nested repository, submodule) or special file: not versioned by us.
    Unversionable,
}

/// Stores the file at `rela_path` as a blob and reports its mode and stat data.
///
/// The stat data is taken before the content is read, so a concurrent write makes the index
/// entry look stale (and the next status re-hash the file) rather than falsely clean.
pub(crate) fn store_worktree_file(
    repo: &gix::Repository,
    workdir: &Path,
    rela_path: &str,
) -> Result<WorktreeFile> {
    let full_path = workdir.join(rela_path);
    let metadata = match std::fs::symlink_metadata(&full_path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(WorktreeFile::Absent),
        // A parent that became a file reports "not a directory": the path is gone as well.
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
            return Ok(WorktreeFile::Absent);
        }
        Err(err) => return Err(VcsError::io(full_path)(err)),
    };
    let stat_of = |path: &Path| -> Result<Stat> {
        let fs_metadata =
            gix::index::fs::Metadata::from_path_no_follow(path).map_err(VcsError::io(path))?;
        Stat::from_fs(&fs_metadata).map_err(VcsError::gix(format!("stat {}", path.display())))
    };
    let file_type = metadata.file_type();
    let (kind, stat, bytes) = if file_type.is_symlink() {
        let stat = stat_of(&full_path)?;
        let target = std::fs::read_link(&full_path).map_err(VcsError::io(&full_path))?;
        let target = gix::path::into_bstr(target)
            .map_err(VcsError::gix(format!("read link {rela_path}")))?
            .into_owned();
        (EntryKind::Link, stat, Vec::from(target))
    } else if file_type.is_file() {
        let stat = stat_of(&full_path)?;
        let bytes = std::fs::read(&full_path).map_err(VcsError::io(&full_path))?;
        (executable_or_plain(&metadata), stat, bytes)
    } else {
        return Ok(WorktreeFile::Unversionable);
    };
    let id = repo
        .write_blob(&bytes)
        .map_err(VcsError::gix(format!("write blob for {rela_path}")))?
        .detach();
    Ok(WorktreeFile::Stored(StoredFile { id, kind, stat }))
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

/// The index as it was before [`update_index`] changed it, to put back if a later step fails.
pub(crate) struct PreviousIndex(Option<gix::index::File>);

impl PreviousIndex {
    /// Writes the previous index back.
    pub(crate) fn restore(self) -> Result<()> {
        if let Some(mut index) = self.0 {
            index
                .write(gix::index::write::Options::default())
                .map_err(VcsError::gix("restore the index"))?;
        }
        Ok(())
    }
}

/// Sets the index entries of the given paths to the stored files (removing any conflict stages)
/// or removes them (`Absent`). Entries of every other path stay exactly as they were.
pub(crate) fn update_index(
    repo: &gix::Repository,
    updates: &[(String, WorktreeFile)],
) -> Result<PreviousIndex> {
    if updates.is_empty() {
        return Ok(PreviousIndex(None));
    }
    let index_path = repo.index_path();
    let mut index = if index_path.exists() {
        repo.open_index().map_err(VcsError::gix("open the index"))?
    } else {
        gix::index::File::from_state(gix::index::State::new(repo.object_hash()), index_path)
    };
    let previous = PreviousIndex(Some(index.clone()));
    let touched: HashSet<&str> = updates
        .iter()
        .filter(|(_, file)| !matches!(file, WorktreeFile::Unversionable))
        .map(|(path, _)| path.as_str())
        .collect();
    index.remove_entries(|_, path, _| {
        std::str::from_utf8(path).is_ok_and(|path| touched.contains(path))
    });
    for (path, file) in updates {
        if let WorktreeFile::Stored(stored) = file {
            index.dangerously_push_entry(
                stored.stat,
                stored.id,
                Flags::empty(),
                stored.index_mode(),
                path.as_str().into(),
            );
        }
    }
    index.sort_entries();
    // The cached tree and resolve-undo data describe the old entries; git rebuilds them.
    index.remove_tree();
    index.remove_resolve_undo();
    index
        .write(gix::index::write::Options::default())
        .map_err(VcsError::gix("write the index"))?;
    Ok(previous)
}

/// Repository-relative paths that differ anywhere (HEAD, index, worktree) under `paths`.
pub(crate) fn changed_paths(
    repo: &gix::Repository,
    relative_paths: &[String],
) -> Result<Vec<String>> {
    let mut paths: Vec<String> = status::collect(repo, literal_pathspecs(relative_paths))?
        .into_iter()
        .map(|entry| entry.path)
        .collect();
    paths.dedup();
    Ok(paths)
}

pub(crate) fn add(repo: &gix::Repository, paths: &AddPaths) -> Result<()> {
    let workdir = workdir(repo)?;
    let relative: Vec<String> = match paths {
        AddPaths::All => Vec::new(),
        AddPaths::Paths(paths) => {
            if paths.is_empty() {
                return Ok(());
            }
            paths
                .iter()
                .map(|path| repo_relative(&workdir, path))
                .collect::<Result<_>>()?
        }
    };
    let mut updates = Vec::new();
    for path in changed_paths(repo, &relative)? {
        let file = store_worktree_file(repo, &workdir, &path)?;
        updates.push((path, file));
    }
    update_index(repo, &updates).map(|_| ())
}
