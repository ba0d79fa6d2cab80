//! `docker`: build, tag, push and run (or compose up) through the `docker` CLI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::health::HealthCheck;
use crate::record::StepOutput;
use crate::revision::Revision;
use crate::runner::{CommandRunner, CommandSpec, run_step};
use crate::target::DeployTarget;

/// The label every container started by this backend carries; its value is the revision.
pub const REVISION_LABEL: &str = "org.agentd.revision";

const fn default_true() -> bool {
    true
}
fn default_dockerfile() -> PathBuf {
    PathBuf::from("Dockerfile")
}
fn default_context() -> PathBuf {
    PathBuf::from(".")
}
const fn default_step_timeout_s() -> u64 {
    900
}

/// `deployment` keys for `type: docker`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// The image repository, e.g. `myapp` or `team/myapp`; the tag is derived from the
    /// revision (`/` and `+` become `-`).
    pub image: String,
    /// A registry host (e.g. `registry.example.com:5000`) prefixed to `image`; when set,
    /// built images are pushed there.
    #[serde(default)]
    pub registry: Option<String>,
    /// Build the image from `context` (default true); when false it is pulled.
    #[serde(default = "default_true")]
    pub build: bool,
    /// The Dockerfile, relative to the current directory (default `Dockerfile`).
    #[serde(default = "default_dockerfile")]
    pub dockerfile: PathBuf,
    /// The build context directory (default `.`).
    #[serde(default = "default_context")]
    pub context: PathBuf,
    /// A compose file; when set, `docker compose up --detach` replaces `docker run`. It
    /// must use `${AGENTD_IMAGE}` as the service image, `container_name` as its
    /// container name, and the label `org.agentd.revision: ${AGENTD_REVISION}`.
    #[serde(default)]
    pub compose_file: Option<PathBuf>,
    /// The container's name (replaced on every deploy; read back for status).
    pub container_name: String,
    /// Published ports for `docker run`, as `-p` takes them (`8080:80`).
    #[serde(default)]
    pub ports: Vec<String>,
    /// Seconds allowed per docker command (default 900: builds are slow).
    #[serde(default = "default_step_timeout_s")]
    pub step_timeout_s: u64,
    /// Checked after every deploy and rollback; a `command` check runs via `docker exec`.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
}

/// The `docker` backend. Commands are argv arrays run by the injected
/// [`CommandRunner`]; rollback re-runs the previous revision's image tag, which is
/// still present locally (or in the registry), without rebuilding.
pub struct DockerTarget {
    settings: DockerSettings,
    runner: Arc<dyn CommandRunner>,
}

impl std::fmt::Debug for DockerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerTarget")
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

fn check_word(key: &str, value: &str, allowed: &[char]) -> Result<(), DeployError> {
    let ok = !value.is_empty()
        && !value.starts_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || allowed.contains(&c));
    if ok {
        Ok(())
    } else {
        Err(config_error(
            key,
            format!(
                "{value:?} must be non-empty, not start with '-', and use only letters, digits and {allowed:?}"
            ),
        ))
    }
}

/// The image tag for a revision: docker tags allow `[A-Za-z0-9_.-]`, at most 128 long.
#[must_use]
pub fn image_tag(revision: &Revision) -> String {
    revision
        .as_str()
        .chars()
        .map(|c| if matches!(c, '/' | '+') { '-' } else { c })
        .take(128)
        .collect()
}

impl DockerTarget {
    /// Validates `settings` and builds the backend.
    ///
    /// # Errors
    /// [`DeployError::Config`] naming the key.
    pub fn new(
        settings: DockerSettings,
        runner: Arc<dyn CommandRunner>,
    ) -> Result<Self, DeployError> {
        check_word("image", &settings.image, &['.', '_', '-', '/'])?;
        if let Some(registry) = &settings.registry {
            check_word("registry", registry, &['.', '-', ':'])?;
        }
        check_word("container_name", &settings.container_name, &['.', '_', '-'])?;
        for port in &settings.ports {
            check_word("ports", port, &['.', ':', '/', '-'])?;
        }
        if settings.step_timeout_s == 0 {
            return Err(config_error("step_timeout_s", "must be at least 1"));
        }
        Ok(Self { settings, runner })
    }

    /// `registry/image:tag` (or `image:tag`) for `revision`.
    #[must_use]
    pub fn image_ref(&self, revision: &Revision) -> String {
        let repository = match &self.settings.registry {
            Some(registry) => format!("{registry}/{}", self.settings.image),
            None => self.settings.image.clone(),
        };
        format!("{repository}:{}", image_tag(revision))
    }

    fn spec(&self, step: &str, argv: Vec<String>) -> CommandSpec {
        let mut spec = CommandSpec::new(
            step,
            argv,
            Duration::from_secs(self.settings.step_timeout_s),
        );
        // The docker CLI needs to find its daemon and registry credentials.
        spec.env = [
            "DOCKER_HOST",
            "DOCKER_CONTEXT",
            "DOCKER_CONFIG",
            "DOCKER_CERT_PATH",
            "DOCKER_TLS_VERIFY",
        ]
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
        .collect();
        spec
    }

    async fn image_present(
        &self,
        image: &str,
        steps: &mut Vec<StepOutput>,
    ) -> Result<bool, DeployError> {
        let spec = self.spec(
            "docker image inspect",
            argv(&["docker", "image", "inspect", "--format", "{{.Id}}", image]),
        );
        match run_step(self.runner.as_ref(), &spec, steps).await {
            Ok(_) => Ok(true),
            Err(DeployError::StepFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn start(
        &self,
        revision: &Revision,
        image: &str,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let s = &self.settings;
        if let Some(compose_file) = &s.compose_file {
            let mut spec = self.spec(
                "docker compose up",
                vec![
                    "docker".to_owned(),
                    "compose".to_owned(),
                    "--file".to_owned(),
                    compose_file.to_string_lossy().into_owned(),
                    "up".to_owned(),
                    "--detach".to_owned(),
                    "--remove-orphans".to_owned(),
                ],
            );
            spec.env.push(("AGENTD_IMAGE".to_owned(), image.to_owned()));
            spec.env
                .push(("AGENTD_REVISION".to_owned(), revision.as_str().to_owned()));
            run_step(self.runner.as_ref(), &spec, steps).await?;
            return Ok(());
        }
        let remove = self.spec(
            "docker rm",
            argv(&["docker", "rm", "--force", &s.container_name]),
        );
        match run_step(self.runner.as_ref(), &remove, steps).await {
            Ok(_) => {}
            // Nothing to replace on a first deploy.
            Err(DeployError::StepFailed { stderr_tail, .. })
                if stderr_tail.contains("No such container") => {}
            Err(e) => return Err(e),
        }
        let mut run = argv(&[
            "docker",
            "run",
            "--detach",
            "--name",
            &s.container_name,
            "--restart",
            "unless-stopped",
            "--label",
        ]);
        run.push(format!("{REVISION_LABEL}={revision}"));
        for port in &s.ports {
            run.push("--publish".to_owned());
            run.push(port.clone());
        }
        run.push(image.to_owned());
        run_step(self.runner.as_ref(), &self.spec("docker run", run), steps).await?;
        Ok(())
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[async_trait]
impl DeployTarget for DockerTarget {
    fn backend(&self) -> &'static str {
        "docker"
    }

    async fn apply(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let s = &self.settings;
        let image = self.image_ref(revision);
        // A rollback finds the earlier tag present and reuses it instead of rebuilding.
        if !self.image_present(&image, steps).await? {
            if s.build {
                let mut build = argv(&["docker", "build", "--file"]);
                build.push(s.dockerfile.to_string_lossy().into_owned());
                build.extend(argv(&["--tag", &image, "--label"]));
                build.push(format!("{REVISION_LABEL}={revision}"));
                build.push(s.context.to_string_lossy().into_owned());
                run_step(
                    self.runner.as_ref(),
                    &self.spec("docker build", build),
                    steps,
                )
                .await?;
                if s.registry.is_some() {
                    let push = self.spec("docker push", argv(&["docker", "push", &image]));
                    run_step(self.runner.as_ref(), &push, steps).await?;
                }
            } else {
                let pull = self.spec("docker pull", argv(&["docker", "pull", &image]));
                run_step(self.runner.as_ref(), &pull, steps).await?;
            }
        }
        self.start(revision, &image, steps).await
    }

    async fn check_health(
        &self,
        _revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let Some(check) = &self.settings.health_check else {
            return Ok(());
        };
        let wrap = |command: &[String]| {
            let mut wrapped = argv(&["docker", "exec", &self.settings.container_name]);
            wrapped.extend(command.iter().cloned());
            wrapped
        };
        check.run(self.runner.as_ref(), &wrap, steps).await
    }

    async fn live_revision(
        &self,
        steps: &mut Vec<StepOutput>,
    ) -> Result<Option<String>, DeployError> {
        let format = format!("{{{{index .Config.Labels \"{REVISION_LABEL}\"}}}}");
        let spec = self.spec(
            "docker inspect",
            argv(&[
                "docker",
                "container",
                "inspect",
                "--format",
                &format,
                &self.settings.container_name,
            ]),
        );
        match run_step(self.runner.as_ref(), &spec, steps).await {
            Ok(output) => {
                let live = output.stdout.trim();
                Ok((!live.is_empty() && live != "<no value>").then(|| live.to_owned()))
            }
            Err(DeployError::StepFailed { stderr_tail, .. })
                if stderr_tail.contains("No such container")
                    || stderr_tail.contains("No such object") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
