//! `agentd doctor`: check each part the daemon depends on and say what is wrong.
//!
//! Doctor generates no tokens (the LLM check lists models, or reads the cassette),
//! creates no store and initialises no repository; an existing store is opened, which
//! applies pending schema migrations.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use agentd_testrunner::{LocalTestRunner, TestRunner};
use agentd_vcs::{GixVcs, Vcs, VcsSettings};

use crate::config::Config;

/// How one check came out. A warning does not fail `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// The outcome of one check.
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

impl Check {
    fn new(name: &'static str, result: Result<String, String>) -> Self {
        match result {
            Ok(detail) => Check {
                name,
                status: Status::Ok,
                detail,
            },
            Err(detail) => Check {
                name,
                status: Status::Fail,
                detail,
            },
        }
    }

    fn warn(name: &'static str, detail: String) -> Self {
        Check {
            name,
            status: Status::Warn,
            detail,
        }
    }
}

/// Runs every check, prints one line each, and returns whether none failed.
pub async fn run(config_path: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut checks = Vec::new();
    match Config::load(config_path) {
        Err(err) => checks.push(Check::new("config", Err(format!("{err:#}")))),
        Ok(config) => {
            checks.push(Check::new(
                "config",
                Ok(describe_config(config_path, &config)),
            ));
            checks.push(check_llm(&config).await);
            checks.push(check_git(&config).await);
            checks.push(check_tests(&config).await);
            checks.push(check_store(&config).await);
        }
    }
    for check in &checks {
        let mark = match check.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        writeln!(out, "{mark} {:<8} {}", check.name, check.detail)?;
    }
    Ok(checks.iter().all(|check| check.status != Status::Fail))
}

fn describe_config(path: &Path, config: &Config) -> String {
    let model = config
        .llm
        .model
        .as_deref()
        .or(config.llm.provider.default_model())
        .unwrap_or("unset");
    format!(
        "{} (provider {}, model {model})",
        path.display(),
        config.llm.provider
    )
}

async fn check_llm(config: &Config) -> Check {
    let result = match agentd_llm::build_client(&config.llm) {
        Err(err) => Err(err.to_string()),
        Ok(llm) => match llm.client().probe().await {
            Ok(report) => Ok(format!(
                "{} at {}: {}",
                report.provider, report.endpoint, report.detail
            )),
            Err(err) => Err(err.to_string()),
        },
    };
    Check::new("llm", result)
}

async fn check_git(config: &Config) -> Check {
    let program = tokio::process::Command::new("git")
        .arg("--version")
        .output()
        .await;
    let version = match program {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => {
            return Check::new(
                "git",
                Err("the `git` program is not installed (push, pull and worktrees need it)".into()),
            );
        }
    };
    let repo = config.file_system.git_repo_path();
    let vcs = GixVcs::new(VcsSettings::from(&config.git));
    match vcs.open(repo).await {
        Ok(info) => Check::new(
            "git",
            Ok(format!(
                "{version}; {} on {} at {}",
                repo.display(),
                info.branch.as_deref().unwrap_or("(detached HEAD)"),
                info.head
                    .as_deref()
                    .map(|h| h.get(..12).unwrap_or(h))
                    .unwrap_or("(no commits)"),
            )),
        ),
        Err(err) => Check::warn(
            "git",
            format!("{version}; {} is not usable yet: {err}", repo.display()),
        ),
    }
}

async fn check_tests(config: &Config) -> Check {
    let runner = match LocalTestRunner::new(config.testing.clone()) {
        Ok(runner) => runner,
        Err(err) => return Check::new("tests", Err(err.to_string())),
    };
    let workspace = &config.file_system.workspace_path;
    match runner.detect_framework(workspace).await {
        Ok(framework) => Check::new(
            "tests",
            Ok(format!("{framework} in {}", workspace.display())),
        ),
        Err(err) => Check::warn(
            "tests",
            format!("no test framework found in {}: {err}", workspace.display()),
        ),
    }
}

async fn check_store(config: &Config) -> Check {
    let settings = &config.memory;
    if settings.backend == agentd_memory::BackendKind::Sqlite && !settings.path.exists() {
        return Check::warn(
            "store",
            format!(
                "sqlite {} does not exist yet (created by the first `agentd run`)",
                settings.path.display()
            ),
        );
    }
    let result = match settings.open(Arc::new(agentd_memory::SystemClock)).await {
        Ok(_) => Ok(format!("{:?} store opened and migrated", settings.backend).to_lowercase()),
        Err(err) => Err(err.to_string()),
    };
    Check::new("store", result)
}
