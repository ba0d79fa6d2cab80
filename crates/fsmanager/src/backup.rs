//! Bounded, restorable backups of previous file contents ("backup before change").
//!
//! Layout: `<backup dir>/<first 32 hex of sha256(path)>/PATH` holds the workspace path;
//! `<id>.bak` files hold previous contents. Ids are `<20-digit unix nanos>-<6-digit
//! sequence>`, so lexical order is age order. Bounds: `backup_count` per file,
//! `backup_max_file_bytes` per content, `backup_max_total_bytes` overall (oldest first).

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::{Replace, write_atomically};
use crate::error::{FsError, Result};

static BACKUP_SEQ: AtomicU64 = AtomicU64::new(0);
const PATH_FILE: &str = "PATH";
const SUFFIX: &str = ".bak";

/// One stored previous version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// Opaque id, pass it to `restore_backup`. Sorts by age.
    pub id: String,
    /// The workspace path the content belonged to.
    pub path: String,
    /// Size of the stored content in bytes.
    pub size: u64,
    /// When the backup was taken, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
}

/// Limits applied on every save.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackupLimits {
    pub(crate) count: usize,
    pub(crate) max_file_bytes: u64,
    pub(crate) max_total_bytes: u64,
}

/// The backup directory handle and its limits.
#[derive(Debug)]
pub(crate) struct BackupStore {
    dir: Dir,
    limits: BackupLimits,
}

fn key_dir(path: &str) -> String {
    let digest = Sha256::digest(path.as_bytes());
    hex::encode(digest).chars().take(32).collect()
}

fn is_valid_id(id: &str) -> bool {
    id.len() == 27
        && id.bytes().enumerate().all(|(i, b)| {
            if i == 20 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

fn created_ms(id: &str) -> u64 {
    id.get(..20)
        .and_then(|n| n.parse::<u128>().ok())
        .map(|nanos| u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

fn io_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |e| FsError::Io {
        op,
        path: path.to_owned(),
        source: e,
    }
}

impl BackupStore {
    pub(crate) fn new(dir: Dir, limits: BackupLimits) -> Self {
        Self { dir, limits }
    }

    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Stores `content` as the newest backup of `path`, then enforces the bounds.
    /// Returns `None` when backups are off or the content is over the per-file limit.
    pub(crate) fn save(&self, path: &str, content: &[u8]) -> Result<Option<BackupInfo>> {
        if self.limits.count == 0 {
            return Ok(None);
        }
        let size = content.len() as u64;
        if size > self.limits.max_file_bytes {
            tracing::warn!(
                path,
                size,
                limit = self.limits.max_file_bytes,
                "previous content too large to back up"
            );
            return Ok(None);
        }
        let key = key_dir(path);
        self.dir
            .create_dir_all(&key)
            .map_err(io_err("create backup dir for", path))?;
        let sub = self
            .dir
            .open_dir(&key)
            .map_err(io_err("open backup dir for", path))?;
        if !sub.exists(PATH_FILE) {
            write_atomically(&sub, PATH_FILE, path.as_bytes(), 0o600, Replace::Overwrite)
                .map_err(io_err("record backup path of", path))?;
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seq = BACKUP_SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        let id = format!("{nanos:020}-{seq:06}");
        write_atomically(
            &sub,
            &format!("{id}{SUFFIX}"),
            content,
            0o600,
            Replace::NoClobber,
        )
        .map_err(io_err("back up", path))?;
        let info = BackupInfo {
            created_unix_ms: created_ms(&id),
            id,
            path: path.to_owned(),
            size,
        };
        self.prune_file(&sub, path)?;
        self.prune_total()?;
        Ok(Some(info))
    }

    /// Backups of `path`, newest first.
    pub(crate) fn list(&self, path: &str) -> Result<Vec<BackupInfo>> {
        let sub = match self.dir.open_dir(key_dir(path)) {
            Ok(sub) => sub,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("open backups of", path)(e)),
        };
        let mut infos: Vec<BackupInfo> = versions(&sub)
            .map_err(io_err("list backups of", path))?
            .into_iter()
            .map(|(id, size)| BackupInfo {
                created_unix_ms: created_ms(&id),
                id,
                path: path.to_owned(),
                size,
            })
            .collect();
        infos.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(infos)
    }

    /// The content of backup `id` of `path`.
    pub(crate) fn load(&self, path: &str, id: &str) -> Result<Vec<u8>> {
        let not_found = || FsError::BackupNotFound {
            path: path.to_owned(),
            id: id.to_owned(),
        };
        if !is_valid_id(id) {
            return Err(not_found());
        }
        let sub = self.dir.open_dir(key_dir(path)).map_err(|_| not_found())?;
        let mut file = sub.open(format!("{id}{SUFFIX}")).map_err(|_| not_found())?;
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .map_err(io_err("read backup of", path))?;
        Ok(content)
    }

    fn prune_file(&self, sub: &Dir, path: &str) -> Result<()> {
        let mut ids = versions(sub).map_err(io_err("list backups of", path))?;
        ids.sort();
        let excess = ids.len().saturating_sub(self.limits.count);
        for (id, _) in ids.iter().take(excess) {
            sub.remove_file(format!("{id}{SUFFIX}"))
                .map_err(io_err("prune backup of", path))?;
        }
        Ok(())
    }

    fn prune_total(&self) -> Result<()> {
        let root = "<backup dir>";
        let mut all: Vec<(String, String, u64)> = Vec::new();
        for entry in self.dir.entries().map_err(io_err("list", root))? {
            let entry = entry.map_err(io_err("list", root))?;
            let Ok(key) = entry.file_name().into_string() else {
                continue;
            };
            if !entry.file_type().map_err(io_err("stat", root))?.is_dir() {
                continue;
            }
            let sub = entry.open_dir().map_err(io_err("open", root))?;
            for (id, size) in versions(&sub).map_err(io_err("list", root))? {
                all.push((id, key.clone(), size));
            }
        }
        let mut total: u64 = all.iter().map(|(_, _, size)| size).sum();
        if total <= self.limits.max_total_bytes {
            return Ok(());
        }
        all.sort();
        for (id, key, size) in all {
            if total <= self.limits.max_total_bytes {
                break;
            }
            self.dir
                .remove_file(format!("{key}/{id}{SUFFIX}"))
                .map_err(io_err("evict backup", root))?;
            total = total.saturating_sub(size);
        }
        Ok(())
    }
}

/// `(id, size)` of every version in one file's backup directory.
fn versions(sub: &Dir) -> std::io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for entry in sub.entries()? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(id) = name.strip_suffix(SUFFIX).filter(|id| is_valid_id(id)) {
            out.push((id.to_owned(), entry.metadata()?.len()));
        }
    }
    Ok(out)
}
