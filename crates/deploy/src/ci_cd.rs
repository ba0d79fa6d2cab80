//! `ci_cd`: push the branch to the remote through the `vcs` crate; CI takes it from there.
//! Optionally poll a CI status URL until it reports success or failure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_vcs::{MergeApproval, Vcs};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::health::{HealthCheck, http_client};
use crate::record::StepOutput;
use crate::revision::Revision;
use crate::runner::{CommandRunner, CommandSpec, run_step};
use crate::target::DeployTarget;

fn default_remote() -> String {
    "origin".to_owned()
}
fn default_branch() -> String {
    "main".to_owned()
}
fn default_repo_path() -> PathBuf {
    PathBuf::from(".")
}
fn default_status_field() -> String {
    "/state".to_owned()
}
fn default_success_values() -> Vec<String> {
    vec!["success".to_owned()]
}
fn default_failure_values() -> Vec<String> {
    ["failure", "error", "cancelled"]
        .map(str::to_owned)
        .to_vec()
}
const fn default_status_timeout_s() -> u64 {
    1800
}
const fn default_status_interval_ms() -> u64 {
    10_000
}
const fn default_push_timeout_s() -> u64 {
    300
}

/// `deployment` keys for `type: ci_cd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiCdSettings {
    /// The remote to push to: a remote name of the repository or a URL (default `origin`).
    #[serde(default = "default_remote")]
    pub remote: String,
    /// The local branch that is pushed to the same branch on the remote (default `main`).
    /// The deployed revision must be this branch's tip.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The local repository's worktree (default `.`).
    #[serde(default = "default_repo_path")]
    pub repo_path: PathBuf,
    /// Seconds allowed for reading the remote branch with `git ls-remote` (default 300).
    #[serde(default = "default_push_timeout_s")]
    pub remote_timeout_s: u64,
    /// A CI status URL polled after the push (HTTP GET returning JSON); `{revision}` is
    /// replaced by the pushed commit id. No polling when absent.
    #[serde(default)]
    pub status_url: Option<String>,
    /// JSON pointer (RFC 6901) to the state in the status response (default `/state`).
    #[serde(default = "default_status_field")]
    pub status_field: String,
    /// States meaning CI succeeded (default `[success]`).
    #[serde(default = "default_success_values")]
    pub success_values: Vec<String>,
    /// States meaning CI failed (default `[failure, error, cancelled]`); any other state
    /// means "still running".
    #[serde(default = "default_failure_values")]
    pub failure_values: Vec<String>,
    /// Seconds to wait for a final state (default 1800).
    #[serde(default = "default_status_timeout_s")]
    pub status_timeout_s: u64,
    /// Milliseconds between polls (default 10000).
    #[serde(default = "default_status_interval_ms")]
    pub status_interval_ms: u64,
    /// An extra health check after CI succeeded (a `command` check runs locally).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
}

/// The `ci_cd` backend.
///
/// It pushes only a commit that already is the local branch's tip, which on a protected
/// branch only an approved merge can have put there; so it pushes with a
/// [`MergeApproval`] from reviewer `agentd-deploy`. It cannot roll back (the remote branch
/// only moves forward): deploy a revert instead.
pub struct CiCdTarget {
    settings: CiCdSettings,
    vcs: Arc<dyn Vcs>,
    runner: Arc<dyn CommandRunner>,
}

impl std::fmt::Debug for CiCdTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiCdTarget")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl CiCdTarget {
    /// Validates `settings` and builds the backend; `vcs` does the push, `runner` reads
    /// the remote branch (`git ls-remote`).
    ///
    /// # Errors
    /// [`DeployError::Config`] naming the key.
    pub fn new(
        settings: CiCdSettings,
        vcs: Arc<dyn Vcs>,
        runner: Arc<dyn CommandRunner>,
    ) -> Result<Self, DeployError> {
        let config_error = |key: &str, reason: String| DeployError::Config {
            key: format!("deployment.{key}"),
            reason,
        };
        Revision::parse(&settings.branch).map_err(|e| config_error("branch", e.to_string()))?;
        if settings.remote.is_empty() || settings.remote.starts_with('-') {
            return Err(config_error(
                "remote",
                format!(
                    "{:?} must be non-empty and not start with '-'",
                    settings.remote
                ),
            ));
        }
        if !(settings.status_field.is_empty() || settings.status_field.starts_with('/')) {
            return Err(config_error(
                "status_field",
                format!(
                    "{:?} is not a JSON pointer (e.g. /state or /data/status)",
                    settings.status_field
                ),
            ));
        }
        if settings.success_values.is_empty() {
            return Err(config_error(
                "success_values",
                "at least one value is required".to_owned(),
            ));
        }
        Ok(Self {
            settings,
            vcs,
            runner,
        })
    }

    async fn commit_id(&self, rev: &str) -> Result<String, DeployError> {
        let commits = self
            .vcs
            .log(&self.settings.repo_path, Some(rev.to_owned()), 1)
            .await
            .map_err(|e| DeployError::Vcs(format!("resolving {rev}: {e}")))?;
        commits
            .into_iter()
            .next()
            .map(|commit| commit.id)
            .ok_or_else(|| DeployError::Vcs(format!("{rev} has no commit")))
    }

    async fn poll_status(
        &self,
        url_template: &str,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let s = &self.settings;
        let url = url_template.replace("{revision}", revision.as_str());
        let started = Instant::now();
        let result = poll_ci_status(&url, s).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (success, stdout, stderr) = match &result {
            Ok(summary) => (true, summary.clone(), String::new()),
            Err(e) => (false, String::new(), e.to_string()),
        };
        tracing::info!(step = "ci status", %url, success, %stdout, %stderr, duration_ms, "deploy step finished");
        steps.push(StepOutput {
            step: "ci status".to_owned(),
            argv: vec!["GET".to_owned(), url],
            exit_code: None,
            success,
            stdout,
            stderr,
            duration_ms,
        });
        result.map(|_summary| ())
    }
}

/// Polls until a success or failure state, or the timeout. Transport errors, non-2xx
/// answers and unreadable bodies count as "still running" until the deadline.
async fn poll_ci_status(url: &str, s: &CiCdSettings) -> Result<String, DeployError> {
    let failed = |reason: String| DeployError::CiStatus {
        url: url.to_owned(),
        reason,
    };
    let client = http_client(Duration::from_secs(30))
        .map_err(|e| failed(format!("cannot build HTTP client: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(s.status_timeout_s);
    let interval = Duration::from_millis(s.status_interval_ms.max(10));
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        let last = match fetch_state(&client, url, &s.status_field).await {
            Ok(state) if s.success_values.contains(&state) => {
                return Ok(format!("state {state:?} (attempt {attempts})"));
            }
            Ok(state) if s.failure_values.contains(&state) => {
                return Err(failed(format!("CI reported state {state:?}")));
            }
            Ok(state) => format!("state {state:?}"),
            Err(observation) => observation,
        };
        if Instant::now() + interval >= deadline {
            return Err(failed(format!(
                "no final state within {}s ({attempts} attempts); last: {last}",
                s.status_timeout_s
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

async fn fetch_state(client: &reqwest::Client, url: &str, pointer: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("body is not JSON: {e}"))?;
    match body.pointer(pointer) {
        Some(serde_json::Value::String(state)) => Ok(state.clone()),
        Some(serde_json::Value::Null) | None => Err(format!("no value at {pointer}")),
        Some(other) => Ok(other.to_string()),
    }
}

#[async_trait]
impl DeployTarget for CiCdTarget {
    fn backend(&self) -> &'static str {
        "ci_cd"
    }

    fn can_restore(&self) -> bool {
        false
    }

    async fn apply(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let s = &self.settings;
        let started = Instant::now();
        let result = async {
            let wanted = self.commit_id(revision.as_str()).await?;
            let tip = self.commit_id(&s.branch).await?;
            if wanted != tip {
                return Err(DeployError::Vcs(format!(
                    "revision {revision} ({wanted}) is not the tip of branch {} ({tip}); merge it first",
                    s.branch
                )));
            }
            self.vcs
                .push(
                    &s.repo_path,
                    &s.remote,
                    &s.branch,
                    Some(MergeApproval::approved("agentd-deploy")),
                )
                .await
                .map_err(|e| DeployError::Vcs(format!("push {} to {}: {e}", s.branch, s.remote)))?;
            Ok(tip)
        }
        .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (success, stdout, stderr) = match &result {
            Ok(tip) => (true, format!("pushed {tip}"), String::new()),
            Err(e) => (false, String::new(), e.to_string()),
        };
        tracing::info!(step = "git push", remote = %s.remote, branch = %s.branch, success, %stdout, %stderr, duration_ms, "deploy step finished");
        steps.push(StepOutput {
            step: "git push".to_owned(),
            argv: vec!["push".to_owned(), s.remote.clone(), s.branch.clone()],
            exit_code: None,
            success,
            stdout,
            stderr,
            duration_ms,
        });
        result.map(|_tip| ())
    }

    async fn check_health(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        if let Some(url) = &self.settings.status_url {
            let commit = self.commit_id(revision.as_str()).await?;
            let commit = Revision::parse(&commit)?;
            self.poll_status(url, &commit, steps).await?;
        }
        if let Some(check) = &self.settings.health_check {
            let local = |argv: &[String]| argv.to_vec();
            check.run(self.runner.as_ref(), &local, steps).await?;
        }
        Ok(())
    }

    async fn live_revision(
        &self,
        steps: &mut Vec<StepOutput>,
    ) -> Result<Option<String>, DeployError> {
        let s = &self.settings;
        let mut spec = CommandSpec::new(
            "git ls-remote",
            vec![
                "git".to_owned(),
                "ls-remote".to_owned(),
                "--".to_owned(),
                s.remote.clone(),
                format!("refs/heads/{}", s.branch),
            ],
            Duration::from_secs(s.remote_timeout_s.max(1)),
        );
        spec.cwd = Some(s.repo_path.clone());
        // Reading the remote needs the same credentials as pushing to it.
        spec.env = ["SSH_AUTH_SOCK", "GIT_SSH_COMMAND"]
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
            .collect();
        let output = run_step(self.runner.as_ref(), &spec, steps).await?;
        Ok(output.stdout.split_whitespace().next().map(str::to_owned))
    }
}
