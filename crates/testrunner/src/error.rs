//! The crate's one error type.
//!
//! An error means agentd itself could not do its part (a missing directory, a bad setting, an
//! unreadable file). A test suite that could not run — a compile error, a missing runner, a
//! timeout — is not an error: it is a [`crate::Outcome::CouldNotRun`] inside a report.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum TestRunnerError {
    /// The project directory does not exist or is not a directory.
    #[error("project directory {path} does not exist or is not a directory")]
    ProjectDirMissing {
        /// The directory that was given.
        path: PathBuf,
    },

    /// `testing.framework` is `auto` and nothing in the directory names a framework.
    #[error(
        "no test framework detected in {path} (looked for Cargo.toml, go.mod, package.json with jest, pytest config or test_*.py); set testing.framework"
    )]
    NoFrameworkDetected {
        /// The project directory.
        path: PathBuf,
    },

    /// A `testing` setting is missing or contradicts another one.
    #[error("invalid setting testing.{key}: {reason}")]
    InvalidSetting {
        /// The key under `testing`, e.g. `command`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An environment variable that looks like a secret was asked to reach a child process.
    #[error(
        "environment variable {name} looks like a secret (key, token, password) and is never passed to tests"
    )]
    SecretInEnvironment {
        /// The variable's name (never its value).
        name: String,
    },

    /// A test target (file or id) cannot be expressed for this framework.
    #[error("cannot run {target} with {framework}: {reason}")]
    UnsupportedTarget {
        /// The requested file or test id.
        target: String,
        /// The framework in use.
        framework: String,
        /// Why it cannot be run.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "reading".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Starting or supervising the child process failed for a reason other than a missing
    /// program (which is a [`crate::CouldNotRunKind::RunnerMissing`] outcome).
    #[error("running {program}: {source}")]
    Spawn {
        /// The program that was run.
        program: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = TestRunnerError> = std::result::Result<T, E>;

impl TestRunnerError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
