#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `docker`: the exact argv lists it runs (snapshotted, through a recording runner that
//! plays a Docker engine), and a real run where a Docker engine answers `docker info`.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use agentd_deploy::{
    CommandOutput, CommandRunner, CommandSpec, DeployError, DeployRequest, Deployer,
    DeploymentState, DockerSettings, DockerTarget, FileDeploymentHistory, HealthCheck,
    ProcessRunner, REVISION_LABEL, RollbackRequest, TargetDeployer,
};
use async_trait::async_trait;
use serde::Serialize;

/// One recorded invocation, as snapshotted.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Call {
    step: String,
    argv: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<(String, String)>,
}

/// A fake engine: images present, the container's revision label, unhealthy revisions.
#[derive(Default)]
struct Engine {
    calls: Vec<Call>,
    images: HashSet<String>,
    container: Option<String>,
    unhealthy: HashSet<String>,
}

#[derive(Clone, Default)]
struct RecordingRunner(Arc<Mutex<Engine>>);

fn out(code: i32, stdout: &str, stderr: &str) -> CommandOutput {
    CommandOutput {
        exit_code: Some(code),
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
    }
}

#[async_trait]
impl CommandRunner for RecordingRunner {
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, DeployError> {
        let mut engine = self.0.lock().unwrap();
        engine.calls.push(Call {
            step: spec.step.clone(),
            argv: spec.argv.clone(),
            // The parent's DOCKER_* variables vary by machine; ours are fixed.
            env: spec
                .env
                .iter()
                .filter(|(k, _)| k.starts_with("AGENTD_"))
                .cloned()
                .collect(),
        });
        let argv: Vec<&str> = spec.argv.iter().map(String::as_str).collect();
        let label = |argv: &[&str]| {
            argv.iter()
                .find_map(|a| a.strip_prefix(&format!("{REVISION_LABEL}=")))
                .map(str::to_owned)
        };
        Ok(match argv.as_slice() {
            ["docker", "image", "inspect", .., image] => {
                if engine.images.contains(*image) {
                    out(0, "sha256:1234\n", "")
                } else {
                    out(1, "", &format!("Error: No such image: {image}\n"))
                }
            }
            ["docker", "build", .., "--tag", image, "--label", _, _] => {
                engine.images.insert((*image).to_owned());
                out(0, "built\n", "")
            }
            ["docker", "push", _] => out(0, "pushed\n", ""),
            ["docker", "rm", "--force", name] => {
                if engine.container.take().is_some() {
                    out(0, &format!("{name}\n"), "")
                } else {
                    out(
                        1,
                        "",
                        &format!("Error response from daemon: No such container: {name}\n"),
                    )
                }
            }
            ["docker", "run", ..] => {
                engine.container = label(&argv);
                out(0, "c0ffee\n", "")
            }
            ["docker", "compose", ..] => {
                engine.container = spec
                    .env
                    .iter()
                    .find(|(k, _)| k == "AGENTD_REVISION")
                    .map(|(_, v)| v.clone());
                out(0, "", "")
            }
            ["docker", "container", "inspect", ..] => match &engine.container {
                Some(revision) => out(0, &format!("{revision}\n"), ""),
                None => out(1, "", "Error: No such object: app\n"),
            },
            ["docker", "exec", ..] => match &engine.container {
                Some(revision) if !engine.unhealthy.contains(revision) => out(0, "ok\n", ""),
                _ => out(1, "", "unhealthy\n"),
            },
            _ => out(127, "", "unexpected command\n"),
        })
    }
}

impl RecordingRunner {
    /// The calls so far, with consecutive identical ones (health-check polling) collapsed.
    fn take_calls(&self) -> Vec<Call> {
        let mut calls = std::mem::take(&mut self.0.lock().unwrap().calls);
        calls.dedup();
        calls
    }
}

fn settings(compose: bool) -> DockerSettings {
    DockerSettings {
        image: "team/app".to_owned(),
        registry: (!compose).then(|| "registry.local:5000".to_owned()),
        build: true,
        dockerfile: "deploy/Dockerfile".into(),
        context: ".".into(),
        compose_file: compose.then(|| "deploy/compose.yaml".into()),
        container_name: "app".to_owned(),
        ports: vec!["8080:80".to_owned()],
        step_timeout_s: 900,
        health_check: Some(HealthCheck::Command {
            argv: vec![
                "wget".into(),
                "-q".into(),
                "-O-".into(),
                "http://127.0.0.1/health".into(),
            ],
            timeout_s: 1,
            interval_ms: 10,
        }),
    }
}

fn request(revision: &str, key: &str) -> DeployRequest {
    DeployRequest {
        revision: revision.to_owned(),
        environment: "production".to_owned(),
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test]
async fn docker_run_commands_with_health_failure_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let runner = RecordingRunner::default();
    let target = DockerTarget::new(settings(false), Arc::new(runner.clone())).unwrap();
    let history = FileDeploymentHistory::open(dir.path().join("h.json"))
        .await
        .unwrap();
    let deployer = TargetDeployer::new(Arc::new(target), Arc::new(history));

    deployer.deploy(&request("release/v1", "t1")).await.unwrap();
    insta::assert_yaml_snapshot!("docker_first_deploy", runner.take_calls());

    runner
        .0
        .lock()
        .unwrap()
        .unhealthy
        .insert("release/v2".to_owned());
    let error = deployer
        .deploy(&request("release/v2", "t2"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, .. } = &error else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(record.state, DeploymentState::RolledBack);
    // The rollback reuses the v1 image: no build, no push.
    insta::assert_yaml_snapshot!("docker_failed_deploy_and_rollback", runner.take_calls());

    let status = deployer.status("production").await.unwrap();
    assert_eq!(status.live_revision.as_deref(), Some("release/v1"));
    assert!(status.healthy);

    deployer.deploy(&request("release/v3", "t3")).await.unwrap();
    runner.take_calls();
    let rollback = deployer
        .rollback(&RollbackRequest {
            environment: "production".to_owned(),
            idempotency_key: "r1".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(rollback.revision, "release/v1");
    insta::assert_yaml_snapshot!("docker_explicit_rollback", runner.take_calls());
}

#[tokio::test]
async fn docker_compose_commands() {
    let dir = tempfile::tempdir().unwrap();
    let runner = RecordingRunner::default();
    let target = DockerTarget::new(settings(true), Arc::new(runner.clone())).unwrap();
    let history = FileDeploymentHistory::open(dir.path().join("h.json"))
        .await
        .unwrap();
    let deployer = TargetDeployer::new(Arc::new(target), Arc::new(history));
    deployer.deploy(&request("0123abcd", "t1")).await.unwrap();
    insta::assert_yaml_snapshot!("docker_compose_deploy", runner.take_calls());
}

#[test]
fn settings_with_option_like_values_are_refused() {
    let mut bad = settings(false);
    bad.container_name = "--privileged".to_owned();
    let error = DockerTarget::new(bad, Arc::new(ProcessRunner)).unwrap_err();
    assert!(
        error.to_string().contains("deployment.container_name"),
        "{error}"
    );
}

/// A real deploy, unhealthy deploy and automatic rollback where a Docker engine answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_docker_engine_deploy_and_rollback() {
    if common::find_program("docker").is_none() {
        eprintln!(
            "SKIPPED: the docker CLI is not installed (no Docker engine can run on these machines either)"
        );
        return;
    }
    let engine_answers = std::process::Command::new("docker")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !engine_answers {
        // Deliberately not a failure under CI=true: no Docker engine can run on these machines.
        eprintln!(
            "SKIPPED: no Docker engine answers `docker info` (none can run on these machines); \
             the argv snapshots cover the docker backend here"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    let name = format!("agentd-deploy-test-{}", uuid::Uuid::new_v4().simple());
    let settings = DockerSettings {
        image: name.clone(),
        registry: None,
        build: true,
        dockerfile: context.join("Dockerfile"),
        context: context.clone(),
        compose_file: None,
        container_name: name.clone(),
        ports: Vec::new(),
        step_timeout_s: 600,
        health_check: Some(HealthCheck::Command {
            argv: vec!["cat".into(), "/health".into()],
            timeout_s: 20,
            interval_ms: 200,
        }),
    };
    let deployer = TargetDeployer::new(
        Arc::new(DockerTarget::new(settings, Arc::new(ProcessRunner)).unwrap()),
        Arc::new(
            FileDeploymentHistory::open(dir.path().join("h.json"))
                .await
                .unwrap(),
        ),
    );
    let dockerfile = |health_line: &str| {
        std::fs::write(
            context.join("Dockerfile"),
            format!("FROM busybox:1.36\n{health_line}\nCMD [\"sleep\", \"3600\"]\n"),
        )
        .unwrap();
    };
    dockerfile("RUN echo ok > /health");
    let first = deployer.deploy(&request("v1", "t1")).await;
    dockerfile("RUN true");
    let second = deployer.deploy(&request("v2", "t2")).await;
    let status = deployer.status("production").await;
    for args in [
        vec!["rm", "--force", name.as_str()],
        vec![
            "image",
            "rm",
            "--force",
            &format!("{name}:v1"),
            &format!("{name}:v2"),
        ],
    ] {
        let _ = std::process::Command::new("docker").args(args).output();
    }
    assert_eq!(first.unwrap().state, DeploymentState::Succeeded);
    let DeployError::Deployment { record, .. } = second.unwrap_err() else {
        panic!("v2 should fail its health check");
    };
    assert_eq!(record.state, DeploymentState::RolledBack);
    assert_eq!(status.unwrap().live_revision.as_deref(), Some("v1"));
}
