//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// What kind of non-regular file an operation ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialKind {
    /// A named pipe; opening one can block forever.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device such as `/dev/null` or a tty.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Anything else the OS reports that is neither file, directory nor symlink.
    Unknown,
}

impl std::fmt::Display for SpecialKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpecialKind::Fifo => "fifo",
            SpecialKind::Socket => "socket",
            SpecialKind::CharDevice => "character device",
            SpecialKind::BlockDevice => "block device",
            SpecialKind::Unknown => "special file",
        })
    }
}

/// Every failure of this crate. Paths in variants are workspace-relative as the caller
/// gave them (or as normalised), never absolute host paths, except for [`FsError::Root`].
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The path is malformed (empty, NUL byte, backslash, control character, too long).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The path is absolute, climbs above the root with `..`, or resolves (through a
    /// symlink, possibly an intermediate one) to a place outside the workspace.
    #[error("path {path:?} leads outside the workspace")]
    Escape {
        /// The path as given.
        path: String,
    },
    /// The path names a reserved location (`.git` anywhere, `.agentd` at the root).
    #[error("path {path:?} is reserved and cannot be accessed through the workspace")]
    Reserved {
        /// The path as given.
        path: String,
    },
    /// The path is a fifo, socket or device.
    #[error("path {path:?} is a {kind}, which is refused")]
    SpecialFile {
        /// The path as given.
        path: String,
        /// What the file is.
        kind: SpecialKind,
    },
    /// The target of a write is itself a symlink (or became one during the operation).
    #[error("path {path:?} is a symlink; write to its target path instead")]
    Symlink {
        /// The path as given.
        path: String,
    },
    /// A regular file with more than one hard link; its content may live outside.
    #[error(
        "path {path:?} has {links} hard links and is refused (its content may be shared with a file outside the workspace)"
    )]
    HardLinked {
        /// The path as given.
        path: String,
        /// The link count.
        links: u64,
    },
    /// Nothing exists at the path.
    #[error("path {path:?} does not exist")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// Something already exists at the path (create, move).
    #[error("path {path:?} already exists")]
    AlreadyExists {
        /// The path as given.
        path: String,
    },
    /// A file operation was aimed at a directory.
    #[error("path {path:?} is a directory")]
    IsDirectory {
        /// The path as given.
        path: String,
    },
    /// A directory operation was aimed at a file, or a path goes through a file.
    #[error("path {path:?} is not a directory")]
    NotDirectory {
        /// The path as given.
        path: String,
    },
    /// Deleting a directory that still has entries.
    #[error("directory {path:?} is not empty")]
    DirectoryNotEmpty {
        /// The path as given.
        path: String,
    },
    /// A read or write is larger than the configured limit.
    #[error("file {path:?} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The path as given.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text (contains NUL bytes or invalid UTF-8).
    #[error("file {path:?} is binary (not UTF-8 text)")]
    Binary {
        /// The path as given.
        path: String,
    },
    /// A glob or regular expression did not compile.
    #[error("invalid pattern {pattern:?}: {message}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// `parse_code` on a file whose extension names no supported language.
    #[error(
        "no supported language for {path:?} (supported: .rs .py .js .jsx .mjs .cjs .ts .mts .cts .tsx .go)"
    )]
    UnsupportedLanguage {
        /// The path as given.
        path: String,
    },
    /// The tree-sitter grammar could not be loaded or the parser gave up.
    #[error("cannot parse {language:?}: {message}")]
    Parser {
        /// The language being parsed.
        language: crate::outline::Language,
        /// What tree-sitter said.
        message: String,
    },
    /// No backup with that id exists for that path.
    #[error("no backup {id:?} for path {path:?}")]
    BackupNotFound {
        /// The path as given.
        path: String,
        /// The backup id as given.
        id: String,
    },
    /// The OS refused the operation for lack of permission.
    #[error("permission denied: {op} {path:?}")]
    PermissionDenied {
        /// What was being done.
        op: &'static str,
        /// The path as given.
        path: String,
    },
    /// The workspace root (or backup directory) could not be opened or created.
    #[error("cannot open {what} {path:?}: {source}")]
    Root {
        /// `workspace root` or `backup directory`.
        what: &'static str,
        /// The host path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Any other I/O failure.
    #[error("{op} {path:?} failed: {source}")]
    Io {
        /// What was being done (`read`, `write`, `rename`, ...).
        op: &'static str,
        /// The path as given.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

impl FsError {
    /// Maps an I/O error from a jailed operation on `path` to the most precise variant.
    ///
    /// cap-std reports an escape (through `..` or a symlink) as a `PermissionDenied`
    /// error that carries no OS error code; a real `EACCES` carries one.
    pub(crate) fn from_io(op: &'static str, path: &str, source: io::Error) -> Self {
        let path = path.to_owned();
        match source.kind() {
            io::ErrorKind::PermissionDenied if source.raw_os_error().is_none() => {
                FsError::Escape { path }
            }
            io::ErrorKind::PermissionDenied => FsError::PermissionDenied { op, path },
            io::ErrorKind::NotFound => FsError::NotFound { path },
            io::ErrorKind::AlreadyExists => FsError::AlreadyExists { path },
            io::ErrorKind::IsADirectory => FsError::IsDirectory { path },
            io::ErrorKind::NotADirectory => FsError::NotDirectory { path },
            io::ErrorKind::DirectoryNotEmpty => FsError::DirectoryNotEmpty { path },
            io::ErrorKind::InvalidFilename => FsError::InvalidPath {
                path,
                reason: "name too long for the filesystem",
            },
            // ELOOP: an O_NOFOLLOW open met a symlink (swapped in after the check).
            _ if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                FsError::Symlink { path }
            }
            _ => FsError::Io { op, path, source },
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = FsError> = std::result::Result<T, E>;
