//! Crash-safe replacement of a file's content: temp file in the same directory, fsync,
//! rename over the target, fsync of the directory. A reader (or a restart after
//! `kill -9`) sees the old content or the new content in full, never a mix.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use rustix::fs::RenameFlags;
use rustix::io::Errno;

use crate::path::{TEMP_PREFIX, is_reserved_name};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether the target may already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Replace whatever file is there.
    Overwrite,
    /// Fail with `AlreadyExists` if anything is there (checked atomically by the kernel).
    NoClobber,
}

/// A fresh temporary name: `.agentd-tmp.<pid>.<counter>.<nanos>`. The pid lets
/// [`remove_stale_temp_files`] tell a dead writer's litter from a live writer's file.
fn temp_name() -> String {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{TEMP_PREFIX}{}.{counter}.{nanos}", std::process::id())
}

/// Writes `bytes` to `dir/name` atomically. `name` must be a single path component.
/// New files get permission bits `mode`.
pub(crate) fn write_atomically(
    dir: &Dir,
    name: &str,
    bytes: &[u8],
    mode: u32,
    replace: Replace,
) -> io::Result<()> {
    let tmp = temp_name();
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(mode)
        .follow(FollowSymlinks::No);
    let result = (|| {
        let mut file = dir.open_with(&tmp, &options)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        match replace {
            Replace::Overwrite => dir.rename(&tmp, dir, name)?,
            Replace::NoClobber => rename_no_clobber(dir, &tmp, dir, name)?,
        }
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: the temp file may not exist if creating it was what failed.
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Flushes a directory's entries (a rename or unlink in it) to disk. Directory handles
/// are path-only (`O_PATH`), so the directory is reopened for reading to get an fd that
/// `fsync` accepts.
pub(crate) fn sync_dir(dir: &Dir) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.read(true).maybe_dir(true);
    dir.open_with(".", &options)?.sync_all()
}

/// Renames `from_dir/from` to `to_dir/to`, failing with `AlreadyExists` if `to` exists.
/// Both names are single components, so nothing outside the two handles is touched.
pub(crate) fn rename_no_clobber(
    from_dir: &Dir,
    from: &str,
    to_dir: &Dir,
    to: &str,
) -> io::Result<()> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // Filesystems without renameat2 flags: a hard link fails atomically on an
        // existing target; directories cannot be hard-linked, so they get a checked rename.
        Err(Errno::INVAL | Errno::NOSYS | Errno::NOTSUP) => {
            if from_dir.symlink_metadata(from)?.is_dir() {
                if to_dir.symlink_metadata(to).is_ok() {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                from_dir.rename(from, to_dir, to)
            } else {
                from_dir.hard_link(from, to_dir, to)?;
                from_dir.remove_file(from)
            }
        }
        Err(errno) => Err(errno.into()),
    }
}

/// Whether a temp file was left by a process that no longer runs. Files of this
/// process are never stale: a concurrent write may be using them.
fn is_stale_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
        return true;
    };
    pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes, recursively under `dir` (never entering `.git` or following symlinks),
/// temp files left by dead writers. Appends their paths (prefixed by `prefix`) to
/// `removed`.
pub(crate) fn remove_stale_temp_files(
    dir: &Dir,
    prefix: &str,
    removed: &mut Vec<String>,
) -> io::Result<()> {
    for entry in dir.entries()? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry.file_type()?;
        if file_type.is_dir() && !name.eq_ignore_ascii_case(".git") {
            let sub = entry.open_dir()?;
            remove_stale_temp_files(&sub, &path, removed)?;
        } else if is_reserved_name(&name) && is_stale_temp(&name) {
            dir.remove_file(&name)?;
            removed.push(path);
        }
    }
    Ok(())
}
