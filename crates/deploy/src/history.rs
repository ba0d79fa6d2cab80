//! Where deployment records are kept: the [`DeploymentHistory`] trait and a file backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::DeployError;
use crate::record::DeploymentRecord;

/// Durable storage of deployment records. Saving must be durable when it returns: the
/// deployer writes `started` before touching the target and relies on it after a crash.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait DeploymentHistory: Send + Sync {
    /// Inserts `record`, or replaces the record with the same `id` in place.
    ///
    /// # Errors
    /// [`DeployError::History`] when the store cannot be written.
    async fn save(&self, record: &DeploymentRecord) -> Result<(), DeployError>;

    /// Every record of `environment`, in the order they were first saved.
    ///
    /// # Errors
    /// [`DeployError::History`] when the store cannot be read.
    async fn list(&self, environment: &str) -> Result<Vec<DeploymentRecord>, DeployError>;
}

/// The on-disk layout; `version` lets a later format be told apart.
#[derive(Debug, Serialize, Deserialize)]
struct HistoryFile {
    version: u32,
    records: Vec<DeploymentRecord>,
}

const FORMAT_VERSION: u32 = 1;

/// A [`DeploymentHistory`] in one JSON file, rewritten atomically on every save
/// (temporary file in the same directory, fsync, rename, fsync of the directory), so a
/// crash leaves either the old or the new file, never a torn one. One process owns a
/// file at a time.
#[derive(Debug, Clone)]
pub struct FileDeploymentHistory {
    path: Arc<PathBuf>,
    records: Arc<Mutex<Vec<DeploymentRecord>>>,
}

impl FileDeploymentHistory {
    /// Opens the history at `path`, creating the parent directory; a missing file is an
    /// empty history.
    ///
    /// # Errors
    /// [`DeployError::History`] naming the path when it cannot be read or parsed.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, DeployError> {
        let path = path.into();
        let error = |reason: String| DeployError::History {
            path: path.clone(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| error(format!("cannot create directory: {e}")))?;
        }
        let records = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let file: HistoryFile = serde_json::from_slice(&bytes)
                    .map_err(|e| error(format!("not a valid history file: {e}")))?;
                if file.version != FORMAT_VERSION {
                    return Err(error(format!(
                        "unsupported format version {} (expected {FORMAT_VERSION})",
                        file.version
                    )));
                }
                file.records
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(error(format!("cannot read: {e}"))),
        };
        Ok(Self {
            path: Arc::new(path),
            records: Arc::new(Mutex::new(records)),
        })
    }

    /// The file this history lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl DeploymentHistory for FileDeploymentHistory {
    async fn save(&self, record: &DeploymentRecord) -> Result<(), DeployError> {
        let mut records = self.records.lock().await;
        let mut updated = records.clone();
        match updated.iter_mut().find(|r| r.id == record.id) {
            Some(existing) => *existing = record.clone(),
            None => updated.push(record.clone()),
        }
        let bytes = serde_json::to_vec_pretty(&HistoryFile {
            version: FORMAT_VERSION,
            records: updated.clone(),
        })
        .map_err(|e| DeployError::History {
            path: self.path.to_path_buf(),
            reason: format!("cannot serialize: {e}"),
        })?;
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| DeployError::History {
                path: self.path.to_path_buf(),
                reason: format!("writer task failed: {e}"),
            })??;
        // Only after the file is durable does memory move on: a failed write changes nothing.
        *records = updated;
        Ok(())
    }

    async fn list(&self, environment: &str) -> Result<Vec<DeploymentRecord>, DeployError> {
        Ok(self
            .records
            .lock()
            .await
            .iter()
            .filter(|r| r.environment == environment)
            .cloned()
            .collect())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DeployError> {
    let error = |what: &str, e: std::io::Error| DeployError::History {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "history".to_owned());
    let temp = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp).map_err(|e| error("create temp file", e))?;
        file.write_all(bytes)
            .map_err(|e| error("write temp file", e))?;
        file.sync_all().map_err(|e| error("fsync temp file", e))?;
        std::fs::rename(&temp, path).map_err(|e| error("rename temp file", e))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| error("fsync directory", e))
    })();
    if result.is_err() {
        let _ignored = std::fs::remove_file(&temp);
    }
    result
}
