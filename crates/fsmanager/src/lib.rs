//! File operations jailed to a workspace, for agents that edit real repositories
//! unattended.
//!
//! # Main types
//! - [`Workspace`]: a directory no operation can leave. `read`, `write` (atomic, with a
//!   backup of the previous content and a syntax report), `create` (fails if the path
//!   exists), `delete`, `rename`, `list`, `find` (glob, honouring `.gitignore`),
//!   `search` (literal or regex, file/line/column), `parse_code` (outline),
//!   `repo_map` (token-budgeted map for prompts), `list_backups`/`restore_backup`,
//!   `recover` (clean up after a killed writer). Cheap to clone, `Send + Sync`, blocking.
//! - [`FileManager`]: the object-safe trait the agent tool layer holds as
//!   `Arc<dyn FileManager>` (`MockFileManager` behind the `mock` feature).
//! - [`FileSystemSettings`]: the config file's `file_system` section.
//! - [`FsError`]: every failure, typed (`Escape`, `Reserved`, `SpecialFile`, `TooLarge`,
//!   `Binary`, ...), naming the path.
//!
//! # What is guaranteed
//! - **No escape.** Paths are checked lexically first (no absolute paths, no `..` above
//!   the root, no NUL, backslash, control or invisible formatting characters, no
//!   component over 255 bytes). Then every operation resolves its path beneath an open
//!   handle of the root with `openat`-style semantics (cap-std: `openat2` with
//!   `RESOLVE_BENEATH` on Linux, component-by-component resolution elsewhere), so a
//!   symlink — final or intermediate, present at check time or swapped in afterwards —
//!   that leads outside fails with [`FsError::Escape`] at the moment of the system call.
//!   Symlinks that stay inside are followed for reads. There is no separate "check then
//!   use" window for the resolution itself.
//! - **Writes land inside.** A write opens its parent directory beneath the root, then
//!   creates a temp file and renames it *relative to that directory handle*. If the
//!   directory is swapped for a symlink after it was opened, the write lands in the
//!   original directory (still inside), never in the symlink's target. A final
//!   component that is (or becomes) a symlink is replaced by the rename, never written
//!   through; writes to an existing symlink are refused with [`FsError::Symlink`].
//! - **Special files** (fifos, sockets, devices) are refused with
//!   [`FsError::SpecialFile`]: checked before opening, opened non-blocking, and checked
//!   again on the open handle. Regular files with more than one hard link are refused
//!   for reading ([`FsError::HardLinked`]): their content may be that of a file outside.
//!   Writing replaces the name, so the other link is never modified.
//! - **Reserved names**: `.git` (any depth, any case: hooks and config there execute
//!   code) and `.agentd` at the root (backups) cannot be addressed, and are not listed.
//! - **Atomic writes**: temp file in the same directory, `fsync`, `rename` (or
//!   `renameat2(RENAME_NOREPLACE)` for `create`), `fsync` of the directory. After a
//!   crash the target holds the old or the new content in full; temp files of dead
//!   writers are removed by [`Workspace::recover`].
//! - **Backups** before every overwrite, delete and restore: bounded per file
//!   (`backup_count`), per content (`backup_max_file_bytes`) and in total
//!   (`backup_max_total_bytes`, oldest evicted first), stored in `.agentd/backups`
//!   (with a `.gitignore` of `*`) or in `backup_path`.
//! - **Syntax check on write** for Rust, Python, JavaScript, TypeScript/TSX and Go:
//!   errors (line/column) are reported in [`WriteReport`], the content is saved anyway.
//!
//! Not guaranteed: listings (`find`, `search`, `repo_map`) walk host paths and may miss
//! or skip entries that change during the walk; every entry is re-checked through the
//! root handle before it is returned or read, so nothing outside is ever reported or
//! read. Another process with write access to the workspace can still change files
//! between two calls.

mod atomic;
mod backup;
mod error;
mod manager;
mod outline;
mod path;
mod repo_map;
mod search;
mod settings;
mod workspace;

pub use backup::BackupInfo;
pub use error::{FsError, Result, SpecialKind};
pub use manager::FileManager;
#[cfg(feature = "mock")]
pub use manager::MockFileManager;
pub use outline::{
    ItemKind, Language, Outline, OutlineItem, SyntaxError, outline_source, syntax_errors,
};
pub use repo_map::{RepoMap, RepoMapOptions, estimate_tokens};
pub use search::{FindResult, SearchMatch, SearchQuery, SearchResult};
pub use settings::FileSystemSettings;
pub use workspace::{DirEntry, EntryKind, RecoveryReport, Workspace, WriteReport};
