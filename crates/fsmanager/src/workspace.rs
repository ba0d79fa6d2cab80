//! The jailed [`Workspace`]: every path is resolved beneath one directory handle.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt, OpenOptionsSyncExt};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, FileType, Metadata, MetadataExt, OpenOptions, PermissionsExt};
use serde::{Deserialize, Serialize};

use crate::atomic::{
    Replace, remove_stale_temp_files, rename_no_clobber, sync_dir, write_atomically,
};
use crate::backup::{BackupInfo, BackupLimits, BackupStore};
use crate::error::{FsError, Result, SpecialKind};
use crate::outline::{Language, SyntaxError, syntax_errors};
use crate::path::{AGENTD_DIR, RelPath, is_reserved_name};
use crate::settings::FileSystemSettings;

/// Mode of files created by `write`/`create` when no previous file gives one.
const NEW_FILE_MODE: u32 = 0o644;
/// Bytes inspected for NUL when deciding whether content is binary (git's heuristic).
const BINARY_SNIFF_BYTES: usize = 8000;

/// A directory tree that no operation can leave. Cheap to clone (one `Arc`), `Send + Sync`.
///
/// See the crate documentation for what is guaranteed against escapes and races.
#[derive(Debug, Clone)]
pub struct Workspace {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: Dir,
    root_path: PathBuf,
    settings: FileSystemSettings,
    backups: BackupStore,
}

/// What a directory entry is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (not followed).
    Symlink,
    /// A fifo, socket or device.
    Special,
}

/// One entry of [`Workspace::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// Workspace-relative path, `/`-separated.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Size in bytes for regular files.
    pub size: Option<u64>,
}

/// What a successful `write`, `create` or `restore_backup` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// The normalised workspace-relative path written.
    pub path: String,
    /// Bytes written.
    pub bytes: u64,
    /// Whether the file did not exist before.
    pub created: bool,
    /// The backup taken of the previous content, if any.
    pub backup: Option<BackupInfo>,
    /// The language of the file, if it is one that is syntax-checked.
    pub language: Option<Language>,
    /// Syntax errors of the new content (empty when clean or not checked). The content is
    /// saved regardless, so that work in progress is never lost.
    pub syntax_errors: Vec<SyntaxError>,
}

/// What [`Workspace::recover`] cleaned up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Temp files of dead writers that were removed (workspace-relative, or prefixed
    /// with `<backups>/` for the backup directory).
    pub removed_temp_files: Vec<String>,
}

fn special_kind(file_type: &FileType) -> Option<SpecialKind> {
    use cap_std::fs::FileTypeExt;
    if file_type.is_file() || file_type.is_dir() || file_type.is_symlink() {
        None
    } else if file_type.is_fifo() {
        Some(SpecialKind::Fifo)
    } else if file_type.is_socket() {
        Some(SpecialKind::Socket)
    } else if file_type.is_char_device() {
        Some(SpecialKind::CharDevice)
    } else if file_type.is_block_device() {
        Some(SpecialKind::BlockDevice)
    } else {
        Some(SpecialKind::Unknown)
    }
}

/// Refuses anything but a regular file with a single link.
fn require_plain_file(path: &str, meta: &Metadata) -> Result<()> {
    let file_type = meta.file_type();
    if file_type.is_dir() {
        return Err(FsError::IsDirectory {
            path: path.to_owned(),
        });
    }
    if let Some(kind) = special_kind(&file_type) {
        return Err(FsError::SpecialFile {
            path: path.to_owned(),
            kind,
        });
    }
    if meta.nlink() > 1 {
        return Err(FsError::HardLinked {
            path: path.to_owned(),
            links: meta.nlink(),
        });
    }
    Ok(())
}

/// Text check: no NUL in the first bytes, valid UTF-8 throughout.
fn into_text(path: &str, bytes: Vec<u8>) -> Result<String> {
    let sniff = bytes.get(..BINARY_SNIFF_BYTES).unwrap_or(&bytes);
    if sniff.contains(&0) {
        return Err(FsError::Binary {
            path: path.to_owned(),
        });
    }
    String::from_utf8(bytes).map_err(|_| FsError::Binary {
        path: path.to_owned(),
    })
}

fn root_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FsError {
    let path = path.to_path_buf();
    move |source| FsError::Root { what, path, source }
}

/// Opens (creating if needed) the backup directory: `backup_path`, or `.agentd/backups`
/// beneath the root (so a planted `.agentd` symlink fails closed).
fn open_backup_dir(root: &Dir, root_path: &Path, settings: &FileSystemSettings) -> Result<Dir> {
    const WHAT: &str = "backup directory";
    if let Some(path) = &settings.backup_path {
        Dir::create_ambient_dir_all(path, ambient_authority()).map_err(root_err(WHAT, path))?;
        return Dir::open_ambient_dir(path, ambient_authority()).map_err(root_err(WHAT, path));
    }
    let inside = Path::new(AGENTD_DIR).join("backups");
    let host_path = root_path.join(&inside);
    root.create_dir_all(&inside)
        .map_err(root_err(WHAT, &host_path))?;
    // Keeps backups out of `git status` and out of commits.
    let ignore = Path::new(AGENTD_DIR).join(".gitignore");
    if !root.exists(&ignore) {
        root.write(&ignore, "*\n")
            .map_err(root_err(WHAT, &root_path.join(&ignore)))?;
    }
    root.open_dir(&inside).map_err(root_err(WHAT, &host_path))
}

impl Workspace {
    /// Opens (creating if needed) the workspace at `settings.workspace_path` and its
    /// backup directory.
    pub fn open(settings: FileSystemSettings) -> Result<Self> {
        let given = settings.workspace_path.clone();
        std::fs::create_dir_all(&given).map_err(root_err("workspace root", &given))?;
        let root_path = given
            .canonicalize()
            .map_err(root_err("workspace root", &given))?;
        let root = Dir::open_ambient_dir(&root_path, ambient_authority())
            .map_err(root_err("workspace root", &root_path))?;
        let backup_dir = open_backup_dir(&root, &root_path, &settings)?;
        let limits = BackupLimits {
            count: settings.backup_count,
            max_file_bytes: settings.backup_max_file_bytes,
            max_total_bytes: settings.backup_max_total_bytes,
        };
        tracing::debug!(root = %root_path.display(), "workspace opened");
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                root_path,
                settings,
                backups: BackupStore::new(backup_dir, limits),
            }),
        })
    }

    /// The canonical host path of the root.
    pub fn root_path(&self) -> &Path {
        &self.inner.root_path
    }

    /// The settings the workspace was opened with.
    pub fn settings(&self) -> &FileSystemSettings {
        &self.inner.settings
    }

    pub(crate) fn root_dir(&self) -> &Dir {
        &self.inner.root
    }

    /// Opens directory `rel` beneath the root (the root itself when empty).
    fn open_dir(&self, given: &str, rel: &RelPath, create: bool) -> Result<Dir> {
        let root = &self.inner.root;
        if rel.is_root() {
            return root
                .try_clone()
                .map_err(|e| FsError::from_io("open", given, e));
        }
        let slash = rel.to_slash();
        match root.open_dir(&slash) {
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                root.create_dir_all(&slash)
                    .map_err(|e| FsError::from_io("create directories for", given, e))?;
                root.open_dir(&slash)
            }
            other => other,
        }
        .map_err(|e| FsError::from_io("open directory", given, e))
    }

    fn split_file<'a>(given: &str, rel: &'a RelPath) -> Result<(RelPath, &'a str)> {
        rel.split_last().ok_or_else(|| FsError::IsDirectory {
            path: given.to_owned(),
        })
    }

    /// Opens a regular file for reading beneath `dir`, without blocking on fifos and
    /// re-checking the type on the open handle (the name may have been swapped).
    fn open_plain(
        dir: &Dir,
        given: &str,
        name: &str,
        follow: FollowSymlinks,
    ) -> Result<(File, Metadata)> {
        let pre = match follow {
            FollowSymlinks::Yes => dir.metadata(name),
            FollowSymlinks::No => dir.symlink_metadata(name),
        }
        .map_err(|e| FsError::from_io("stat", given, e))?;
        if pre.file_type().is_symlink() {
            return Err(FsError::Symlink {
                path: given.to_owned(),
            });
        }
        require_plain_file(given, &pre)?;
        let mut options = OpenOptions::new();
        options.read(true).nonblock(true).follow(follow);
        let file = dir
            .open_with(name, &options)
            .map_err(|e| FsError::from_io("open", given, e))?;
        let meta = file
            .metadata()
            .map_err(|e| FsError::from_io("stat", given, e))?;
        require_plain_file(given, &meta)?;
        Ok((file, meta))
    }

    fn read_limited(given: &str, file: File, limit: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| FsError::from_io("read", given, e))?;
        if bytes.len() as u64 > limit {
            return Err(FsError::TooLarge {
                path: given.to_owned(),
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(bytes)
    }

    /// Reads a UTF-8 text file. Symlinks are followed only while they stay inside.
    /// Fails on directories, special files, hard-linked files, files over
    /// `max_read_bytes`, and binary content.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn read(&self, path: &str) -> Result<String> {
        let limit = self.inner.settings.max_read_bytes;
        let rel = RelPath::parse(path)?;
        let (parent, name) = Self::split_file(path, &rel)?;
        let dir = self.open_dir(path, &parent, false)?;
        let (file, meta) = Self::open_plain(&dir, path, name, FollowSymlinks::Yes)?;
        if meta.len() > limit {
            return Err(FsError::TooLarge {
                path: path.to_owned(),
                size: meta.len(),
                limit,
            });
        }
        into_text(path, Self::read_limited(path, file, limit)?)
    }

    /// Replaces (or creates) a file atomically, backing up the previous content.
    /// Parent directories are created. Syntax errors are reported, not refused.
    #[tracing::instrument(level = "debug", skip(self, contents), fields(bytes = contents.len()))]
    pub fn write(&self, path: &str, contents: &str) -> Result<WriteReport> {
        self.write_bytes(path, contents.as_bytes(), Replace::Overwrite)
    }

    /// Creates a new file atomically; fails with `AlreadyExists` if anything is there.
    #[tracing::instrument(level = "debug", skip(self, contents), fields(bytes = contents.len()))]
    pub fn create(&self, path: &str, contents: &str) -> Result<WriteReport> {
        self.write_bytes(path, contents.as_bytes(), Replace::NoClobber)
    }

    fn write_bytes(&self, path: &str, contents: &[u8], replace: Replace) -> Result<WriteReport> {
        let settings = &self.inner.settings;
        let rel = RelPath::parse(path)?;
        let (parent, name) = Self::split_file(path, &rel)?;
        let size = contents.len() as u64;
        if size > settings.max_write_bytes {
            return Err(FsError::TooLarge {
                path: path.to_owned(),
                size,
                limit: settings.max_write_bytes,
            });
        }
        let dir = self.open_dir(path, &parent, true)?;
        let previous = match dir.symlink_metadata(name) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(FsError::from_io("stat", path, e)),
        };
        let slash = rel.to_slash();
        let mut mode = NEW_FILE_MODE;
        let mut backup = None;
        if let Some(meta) = &previous {
            if replace == Replace::NoClobber {
                return Err(FsError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
            if meta.file_type().is_symlink() {
                return Err(FsError::Symlink {
                    path: path.to_owned(),
                });
            }
            let file_type = meta.file_type();
            if file_type.is_dir() {
                return Err(FsError::IsDirectory {
                    path: path.to_owned(),
                });
            }
            if let Some(kind) = special_kind(&file_type) {
                return Err(FsError::SpecialFile {
                    path: path.to_owned(),
                    kind,
                });
            }
            // Keep rwx bits (an executable script stays executable), never setuid/setgid.
            mode = meta.permissions().mode() & 0o777;
            backup = self.back_up(&dir, path, &slash, name)?;
        }
        write_atomically(&dir, name, contents, mode, replace)
            .map_err(|e| FsError::from_io("write", path, e))?;
        let language = Language::from_path(&slash);
        let syntax_errors = match (language, settings.syntax_check_on_write) {
            (Some(language), true) => match std::str::from_utf8(contents) {
                Ok(text) => syntax_errors(language, text)?,
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        };
        tracing::info!(path = %slash, bytes = size, backed_up = backup.is_some(), syntax_errors = syntax_errors.len(), "file written");
        Ok(WriteReport {
            path: slash,
            bytes: size,
            created: previous.is_none(),
            backup,
            language,
            syntax_errors,
        })
    }

    /// Backs up `dir/name` (a regular file) unless it is hard-linked, whose content may
    /// belong to a file outside and must not be copied in.
    fn back_up(
        &self,
        dir: &Dir,
        given: &str,
        slash: &str,
        name: &str,
    ) -> Result<Option<BackupInfo>> {
        let limit = self.inner.settings.backup_max_file_bytes;
        if self.inner.settings.backup_count == 0 {
            return Ok(None);
        }
        let (file, meta) = match Self::open_plain(dir, given, name, FollowSymlinks::No) {
            Ok(opened) => opened,
            Err(FsError::HardLinked { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if meta.len() > limit {
            tracing::warn!(
                path = slash,
                size = meta.len(),
                limit,
                "previous content too large to back up"
            );
            return Ok(None);
        }
        let old = Self::read_limited(given, file, limit)?;
        self.inner.backups.save(slash, &old)
    }

    /// Deletes a file (backing it up first), a symlink (not its target) or an empty
    /// directory.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn delete(&self, path: &str) -> Result<()> {
        let rel = RelPath::parse(path)?;
        let Some((parent, name)) = rel.split_last() else {
            return Err(FsError::InvalidPath {
                path: path.to_owned(),
                reason: "cannot delete the workspace root",
            });
        };
        let dir = self.open_dir(path, &parent, false)?;
        let meta = dir
            .symlink_metadata(name)
            .map_err(|e| FsError::from_io("stat", path, e))?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            dir.remove_dir(name)
                .map_err(|e| FsError::from_io("delete", path, e))?;
        } else if file_type.is_symlink() {
            dir.remove_file(name)
                .map_err(|e| FsError::from_io("delete", path, e))?;
        } else if let Some(kind) = special_kind(&file_type) {
            return Err(FsError::SpecialFile {
                path: path.to_owned(),
                kind,
            });
        } else {
            self.back_up(&dir, path, &rel.to_slash(), name)?;
            dir.remove_file(name)
                .map_err(|e| FsError::from_io("delete", path, e))?;
        }
        sync_dir(&dir).map_err(|e| FsError::from_io("sync directory of", path, e))?;
        tracing::info!(path = %rel.to_slash(), "deleted");
        Ok(())
    }

    /// Moves a file, symlink or directory; fails with `AlreadyExists` if `to` exists.
    /// Parent directories of `to` are created.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let from_rel = RelPath::parse(from)?;
        let to_rel = RelPath::parse(to)?;
        let (from_parent, from_name) =
            from_rel.split_last().ok_or_else(|| FsError::InvalidPath {
                path: from.to_owned(),
                reason: "cannot move the workspace root",
            })?;
        let (to_parent, to_name) = Self::split_file(to, &to_rel)?;
        let from_dir = self.open_dir(from, &from_parent, false)?;
        let meta = from_dir
            .symlink_metadata(from_name)
            .map_err(|e| FsError::from_io("stat", from, e))?;
        if let Some(kind) = special_kind(&meta.file_type()) {
            return Err(FsError::SpecialFile {
                path: from.to_owned(),
                kind,
            });
        }
        let to_dir = self.open_dir(to, &to_parent, true)?;
        rename_no_clobber(&from_dir, from_name, &to_dir, to_name).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => FsError::AlreadyExists {
                path: to.to_owned(),
            },
            _ => FsError::from_io("move", from, e),
        })?;
        for (dir, given) in [(&from_dir, from), (&to_dir, to)] {
            sync_dir(dir).map_err(|e| FsError::from_io("sync directory of", given, e))?;
        }
        tracing::info!(from = %from_rel.to_slash(), to = %to_rel.to_slash(), "moved");
        Ok(())
    }

    /// Entries of one directory (`""` or `"."` for the root), sorted by path, without
    /// `.git`, the backup directory and temp files. Symlinks are reported, not followed.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn list(&self, dir: &str) -> Result<Vec<DirEntry>> {
        let rel = RelPath::parse(dir)?;
        let handle = self.open_dir(dir, &rel, false)?;
        let mut out = Vec::new();
        let entries = handle
            .entries()
            .map_err(|e| FsError::from_io("list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| FsError::from_io("list", dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::debug!(dir, "skipping a non-UTF-8 name");
                continue;
            };
            if is_reserved_name(&name) || (rel.is_root() && name.eq_ignore_ascii_case(AGENTD_DIR)) {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(|e| FsError::from_io("list", dir, e))?;
            let (kind, size) = if file_type.is_dir() {
                (EntryKind::Directory, None)
            } else if file_type.is_symlink() {
                (EntryKind::Symlink, None)
            } else if file_type.is_file() {
                let len = entry.metadata().map(|m| m.len()).ok();
                (EntryKind::File, len)
            } else {
                (EntryKind::Special, None)
            };
            let path = if rel.is_root() {
                name
            } else {
                format!("{}/{name}", rel.to_slash())
            };
            out.push(DirEntry { path, kind, size });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Backups of `path`, newest first.
    pub fn list_backups(&self, path: &str) -> Result<Vec<BackupInfo>> {
        let rel = RelPath::parse(path)?;
        self.inner.backups.list(&rel.to_slash())
    }

    /// Writes backup `id` of `path` back (atomically, backing up the current content
    /// first, so a restore can itself be undone).
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn restore_backup(&self, path: &str, id: &str) -> Result<WriteReport> {
        let rel = RelPath::parse(path)?;
        let content = self.inner.backups.load(&rel.to_slash(), id)?;
        self.write_bytes(path, &content, Replace::Overwrite)
    }

    /// Removes temp files left by writers that died mid-write (e.g. `kill -9`), in the
    /// workspace and the backup directory. Call it at startup; temp files of live
    /// processes, including this one, are left alone.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn recover(&self) -> Result<RecoveryReport> {
        let mut removed = Vec::new();
        remove_stale_temp_files(&self.inner.root, "", &mut removed)
            .map_err(|e| FsError::from_io("clean temp files in", ".", e))?;
        let mut in_backups = Vec::new();
        remove_stale_temp_files(self.inner.backups.dir(), "", &mut in_backups)
            .map_err(|e| FsError::from_io("clean temp files in", "<backups>", e))?;
        removed.extend(in_backups.into_iter().map(|p| format!("<backups>/{p}")));
        if !removed.is_empty() {
            tracing::warn!(
                count = removed.len(),
                "removed temp files of interrupted writes"
            );
        }
        Ok(RecoveryReport {
            removed_temp_files: removed,
        })
    }
}
