//! Logging: human lines or JSON lines on stderr, and JSON lines in a log file rotated by
//! size and age.
//!
//! The file gets every event as one JSON object per line, with the fields of the spans it
//! happened in (the orchestrator's spans carry `task_id` and `role`), so `jq` can follow a
//! task across agents. The file is rotated when it passes [`Rotation::max_bytes`]
//! (100 MB), and rotated files older than [`Rotation::max_age`] (7 days) are deleted. The
//! writer runs on its own thread (`tracing_appender::non_blocking`), so a slow disk never
//! stalls an agent; keep the returned [`LogGuard`] alive until exit to flush it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use file_rotate::compression::Compression;
use file_rotate::suffix::{AppendTimestamp, FileLimit};
use file_rotate::{ContentLimit, FileRotate};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on a terminal, JSON lines otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// When the log file is rotated and when rotated files are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the current file has passed this many bytes.
    pub max_bytes: usize,
    /// Delete rotated files older than this.
    pub max_age: Duration,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_bytes: 100 * 1024 * 1024,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Where and how to log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The stderr format.
    pub format: LogFormat,
    /// `-v` count: 0 warn, 1 info, 2 debug, 3+ trace. `RUST_LOG` overrides it.
    pub verbosity: u8,
    /// The log file (JSON lines), if any.
    pub file: Option<PathBuf>,
    /// Its rotation.
    pub rotation: Rotation,
}

/// Flushes the log file's writer thread when dropped.
#[must_use = "dropping the guard stops writing the log file"]
pub struct LogGuard(
    // Held only for its Drop, which flushes the writer thread.
    #[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>,
);

/// The log file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open log file {path}: {source}")]
pub struct LogFileError {
    /// The log file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Installs the global subscriber. A second call (tests running commands in-process) keeps
/// the first subscriber.
pub fn init(options: &LogOptions) -> Result<LogGuard, LogFileError> {
    let (subscriber, guard) = build(options)?;
    let _ = subscriber.try_init();
    Ok(guard)
}

/// The subscriber [`init`] installs, for callers that scope it (`tracing::subscriber::with_default`).
pub fn build(
    options: &LogOptions,
) -> Result<(impl tracing::Subscriber + Send + Sync + 'static, LogGuard), LogFileError> {
    let level = match options.verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json_on_stderr = match options.format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let stderr = if json_on_stderr {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    let (file_layer, guard) = match &options.file {
        None => (None, None),
        Some(path) => {
            let writer = rotating_file(path, options.rotation)?;
            let (writer, guard) = tracing_appender::non_blocking(writer);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                );
            (Some(layer), Some(guard))
        }
    };
    let subscriber = Registry::default().with(stderr).with(file_layer);
    Ok((subscriber, LogGuard(guard)))
}

/// Opens the rotating file. The directory and file are created and opened here first, so
/// that a bad path is an error instead of file-rotate's panic.
fn rotating_file(
    path: &Path,
    rotation: Rotation,
) -> Result<FileRotate<AppendTimestamp>, LogFileError> {
    let error = |source| LogFileError {
        path: path.to_owned(),
        source,
    };
    let path = std::path::absolute(path).map_err(error)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(error)?;
    let max_age = chrono::Duration::from_std(rotation.max_age).unwrap_or(chrono::Duration::days(7));
    Ok(FileRotate::new(
        &path,
        AppendTimestamp::default(FileLimit::Age(max_age)),
        ContentLimit::BytesSurpassed(rotation.max_bytes.max(1)),
        Compression::None,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_are_json_with_span_fields_and_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("logs/agentd.log");
        let options = LogOptions {
            format: LogFormat::Text,
            verbosity: 0,
            file: Some(file.clone()),
            rotation: Rotation {
                max_bytes: 2_000,
                max_age: Duration::from_secs(3600),
            },
        };
        let (subscriber, guard) = build(&options).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("task", task_id = "t-42", role = "developer");
            let _entered = span.enter();
            for i in 0..60 {
                tracing::info!(step = i, "tool call finished");
            }
        });
        drop(guard); // flushes the writer thread

        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 2, "rotated at 2 kB: {files:?}");
        let mut steps = Vec::new();
        for path in &files {
            for line in std::fs::read_to_string(path).unwrap().lines() {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(event["span"]["task_id"], "t-42", "{line}");
                assert_eq!(event["span"]["role"], "developer", "{line}");
                assert_eq!(event["fields"]["message"], "tool call finished");
                steps.push(event["fields"]["step"].as_u64().unwrap());
            }
        }
        steps.sort_unstable();
        assert_eq!(
            steps,
            (0..60).collect::<Vec<_>>(),
            "no line lost across rotations"
        );
    }

    #[test]
    fn an_unusable_path_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "x").unwrap();
        let options = LogOptions {
            format: LogFormat::Text,
            verbosity: 0,
            file: Some(blocker.join("agentd.log")),
            rotation: Rotation::default(),
        };
        let err = build(&options)
            .err()
            .expect("a file cannot hold a directory");
        assert!(err.to_string().contains("not-a-dir/agentd.log"), "{err}");
    }
}
