//! `direct`: run the configured steps on a server over the system `ssh` client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::health::HealthCheck;
use crate::record::StepOutput;
use crate::revision::{Revision, shell_quote, substitute_revision};
use crate::runner::{CommandRunner, CommandSpec, run_step};
use crate::target::DeployTarget;

const fn default_port() -> u16 {
    22
}
const fn default_connect_timeout_s() -> u64 {
    10
}
const fn default_step_timeout_s() -> u64 {
    600
}

/// `deployment` keys for `type: direct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectSettings {
    /// The server's host name or IP address.
    pub host: String,
    /// The SSH port (default 22).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The remote user to log in as.
    pub user: String,
    /// The private key file (`IdentityFile`); no agent and no other key is used.
    pub key_path: PathBuf,
    /// The known_hosts file holding the server's host key (`StrictHostKeyChecking=yes`:
    /// an unknown or changed key fails the step).
    pub known_hosts_path: PathBuf,
    /// Seconds allowed to establish the connection (default 10).
    #[serde(default = "default_connect_timeout_s")]
    pub connect_timeout_s: u64,
    /// Total seconds allowed per step, connection included (default 600).
    #[serde(default = "default_step_timeout_s")]
    pub step_timeout_s: u64,
    /// Remote shell commands run in order, each over its own connection, e.g.
    /// `git -C /srv/app fetch origin`, `git -C /srv/app checkout --detach {revision}`,
    /// `systemctl restart app`. `{revision}` is replaced by the validated, shell-quoted revision.
    pub steps: Vec<String>,
    /// A remote command printing the live revision (e.g. `git -C /srv/app rev-parse HEAD`),
    /// or nothing when none is deployed. Status and crash recovery compare it with the
    /// requested revision (equal, or the full id of an abbreviated one).
    pub revision_command: String,
    /// Checked after every deploy and rollback; none configured means "healthy".
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
}

/// The `direct` backend. Every remote command runs as
/// `ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes ... -- HOST COMMAND`
/// with the scrubbed environment of [`crate::ProcessRunner`] (no `SSH_AUTH_SOCK`).
pub struct DirectTarget {
    settings: DirectSettings,
    runner: Arc<dyn CommandRunner>,
}

impl std::fmt::Debug for DirectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectTarget")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn config_error(key: &str, reason: impl Into<String>) -> DeployError {
    DeployError::Config {
        key: format!("deployment.{key}"),
        reason: reason.into(),
    }
}

/// ssh parses `-o` values as config lines: whitespace, quotes and `%` tokens would change
/// their meaning, so such paths are refused rather than escaped.
fn check_option_path(key: &str, path: &Path) -> Result<String, DeployError> {
    let text = path
        .to_str()
        .ok_or_else(|| config_error(key, "path is not valid UTF-8"))?;
    if text.is_empty() {
        return Err(config_error(key, "must not be empty"));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '%' | '\\'))
    {
        return Err(config_error(
            key,
            format!("path {text:?} must not contain whitespace, quotes, '%' or '\\'"),
        ));
    }
    Ok(text.to_owned())
}

fn check_name(key: &str, value: &str, extra: &[char]) -> Result<(), DeployError> {
    let ok = !value.is_empty()
        && !value.starts_with('-')
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || extra.contains(&c)
        });
    if ok {
        Ok(())
    } else {
        Err(config_error(
            key,
            format!("{value:?} must be non-empty, not start with '-', and use only [A-Za-z0-9._-]"),
        ))
    }
}

impl DirectTarget {
    /// Validates `settings` and builds the backend.
    ///
    /// # Errors
    /// [`DeployError::Config`] naming the key: bad host/user, unusable paths, no steps,
    /// zero timeouts.
    pub fn new(
        settings: DirectSettings,
        runner: Arc<dyn CommandRunner>,
    ) -> Result<Self, DeployError> {
        check_name("host", &settings.host, &[':'])?;
        check_name("user", &settings.user, &[])?;
        check_option_path("key_path", &settings.key_path)?;
        check_option_path("known_hosts_path", &settings.known_hosts_path)?;
        if settings.steps.is_empty() {
            return Err(config_error("steps", "at least one step is required"));
        }
        if settings.revision_command.trim().is_empty() {
            return Err(config_error("revision_command", "must not be empty"));
        }
        if settings.connect_timeout_s == 0 || settings.step_timeout_s == 0 {
            return Err(config_error(
                "step_timeout_s",
                "connect_timeout_s and step_timeout_s must be at least 1",
            ));
        }
        Ok(Self { settings, runner })
    }

    /// The full `ssh` argv that runs `remote_command` on the server.
    #[must_use]
    pub fn ssh_argv(&self, remote_command: &str) -> Vec<String> {
        let s = &self.settings;
        // Paths were checked in `new`; lossy conversion cannot change them.
        let key = s.key_path.to_string_lossy();
        let known_hosts = s.known_hosts_path.to_string_lossy();
        let options = [
            "BatchMode=yes".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("UserKnownHostsFile={known_hosts}"),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            format!("IdentityFile={key}"),
            "IdentitiesOnly=yes".to_owned(),
            "IdentityAgent=none".to_owned(),
            "ForwardAgent=no".to_owned(),
            "ForwardX11=no".to_owned(),
            "ClearAllForwardings=yes".to_owned(),
            "PasswordAuthentication=no".to_owned(),
            "KbdInteractiveAuthentication=no".to_owned(),
            "UpdateHostKeys=no".to_owned(),
            format!("ConnectTimeout={}", s.connect_timeout_s),
            "ServerAliveInterval=15".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
            "LogLevel=ERROR".to_owned(),
        ];
        let mut argv = vec![
            "ssh".to_owned(),
            // Ignore ~/.ssh/config and /etc/ssh/ssh_config: only what is configured here counts.
            "-F".to_owned(),
            "/dev/null".to_owned(),
            "-T".to_owned(),
        ];
        for option in options {
            argv.push("-o".to_owned());
            argv.push(option);
        }
        argv.extend([
            "-p".to_owned(),
            s.port.to_string(),
            "-l".to_owned(),
            s.user.clone(),
            "--".to_owned(),
            s.host.clone(),
            remote_command.to_owned(),
        ]);
        argv
    }

    fn spec(&self, step: String, remote_command: &str) -> CommandSpec {
        CommandSpec::new(
            step,
            self.ssh_argv(remote_command),
            Duration::from_secs(self.settings.step_timeout_s),
        )
    }
}

#[async_trait]
impl DeployTarget for DirectTarget {
    fn backend(&self) -> &'static str {
        "direct"
    }

    async fn apply(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let total = self.settings.steps.len();
        for (index, template) in self.settings.steps.iter().enumerate() {
            let command = substitute_revision(template, revision);
            let spec = self.spec(format!("remote step {}/{total}", index + 1), &command);
            run_step(self.runner.as_ref(), &spec, steps).await?;
        }
        Ok(())
    }

    async fn check_health(
        &self,
        _revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let Some(check) = &self.settings.health_check else {
            return Ok(());
        };
        let wrap = |argv: &[String]| {
            let remote: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            self.ssh_argv(&remote.join(" "))
        };
        check.run(self.runner.as_ref(), &wrap, steps).await
    }

    async fn live_revision(
        &self,
        steps: &mut Vec<StepOutput>,
    ) -> Result<Option<String>, DeployError> {
        let spec = self.spec(
            "read live revision".to_owned(),
            &self.settings.revision_command,
        );
        let output = run_step(self.runner.as_ref(), &spec, steps).await?;
        let live = output.stdout.trim();
        Ok((!live.is_empty()).then(|| live.to_owned()))
    }
}
