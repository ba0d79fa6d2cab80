//! The narrow, object-safe interface the agent tool layer calls.

use crate::backup::BackupInfo;
use crate::error::Result;
use crate::outline::Outline;
use crate::repo_map::{RepoMap, RepoMapOptions};
use crate::search::{FindResult, SearchQuery, SearchResult};
use crate::workspace::{DirEntry, Workspace, WriteReport};

/// File operations an agent may perform, all jailed to one workspace. Blocking: call
/// from async code through `tokio::task::spawn_blocking`. Implemented by [`Workspace`];
/// `MockFileManager` exists behind the `mock` feature.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait FileManager: Send + Sync {
    /// See [`Workspace::read`].
    fn read(&self, path: &str) -> Result<String>;
    /// See [`Workspace::write`].
    fn write(&self, path: &str, contents: &str) -> Result<WriteReport>;
    /// See [`Workspace::create`].
    fn create(&self, path: &str, contents: &str) -> Result<WriteReport>;
    /// See [`Workspace::delete`].
    fn delete(&self, path: &str) -> Result<()>;
    /// See [`Workspace::rename`].
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// See [`Workspace::list`].
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>>;
    /// See [`Workspace::find`].
    fn find(&self, pattern: &str, limit: usize) -> Result<FindResult>;
    /// See [`Workspace::search`].
    fn search(&self, query: &SearchQuery) -> Result<SearchResult>;
    /// See [`Workspace::parse_code`].
    fn parse_code(&self, path: &str) -> Result<Outline>;
    /// See [`Workspace::repo_map`].
    fn repo_map(&self, options: &RepoMapOptions) -> Result<RepoMap>;
    /// See [`Workspace::list_backups`].
    fn list_backups(&self, path: &str) -> Result<Vec<BackupInfo>>;
    /// See [`Workspace::restore_backup`].
    fn restore_backup(&self, path: &str, id: &str) -> Result<WriteReport>;
}

impl FileManager for Workspace {
    fn read(&self, path: &str) -> Result<String> {
        Workspace::read(self, path)
    }
    fn write(&self, path: &str, contents: &str) -> Result<WriteReport> {
        Workspace::write(self, path, contents)
    }
    fn create(&self, path: &str, contents: &str) -> Result<WriteReport> {
        Workspace::create(self, path, contents)
    }
    fn delete(&self, path: &str) -> Result<()> {
        Workspace::delete(self, path)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        Workspace::rename(self, from, to)
    }
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>> {
        Workspace::list(self, dir)
    }
    fn find(&self, pattern: &str, limit: usize) -> Result<FindResult> {
        Workspace::find(self, pattern, limit)
    }
    fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        Workspace::search(self, query)
    }
    fn parse_code(&self, path: &str) -> Result<Outline> {
        Workspace::parse_code(self, path)
    }
    fn repo_map(&self, options: &RepoMapOptions) -> Result<RepoMap> {
        Workspace::repo_map(self, options)
    }
    fn list_backups(&self, path: &str) -> Result<Vec<BackupInfo>> {
        Workspace::list_backups(self, path)
    }
    fn restore_backup(&self, path: &str, id: &str) -> Result<WriteReport> {
        Workspace::restore_backup(self, path, id)
    }
}
