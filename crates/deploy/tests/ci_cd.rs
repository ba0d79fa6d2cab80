#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `ci_cd` against a real local bare remote through the real `vcs` backend, with CI
//! status polling against a loopback axum server.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use agentd_deploy::{
    DeployError, DeployRequest, DeployerDeps, DeploymentSettings, DeploymentState,
    FileDeploymentHistory, ProcessRunner, RollbackRequest,
};
use agentd_vcs::{GixVcs, VcsSettings};
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::routing::get;

/// Per commit id, the states CI reports in turn (the last one repeats).
type CiStates = Arc<Mutex<HashMap<String, Vec<&'static str>>>>;

async fn ci_server(states: CiStates) -> String {
    let router = axum::Router::new()
        .route(
            "/ci/{sha}",
            get(
                |State(states): State<CiStates>, UrlPath(sha): UrlPath<String>| async move {
                    let mut states = states.lock().unwrap();
                    let queue = states.entry(sha).or_default();
                    let state = if queue.len() > 1 {
                        queue.remove(0)
                    } else {
                        queue.first().copied().unwrap_or("unknown")
                    };
                    Json(serde_json::json!({ "data": { "status": state } }))
                },
            ),
        )
        .with_state(states);
    let addr = common::serve(router).await;
    format!("http://{addr}/ci/{{revision}}")
}

fn remote_head(remote: &Path) -> String {
    common::git(remote, &["rev-parse", "refs/heads/main"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_bare_remote_and_follows_ci_status() {
    if common::require_program("git", "apt-get install -y git").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    std::fs::create_dir_all(&remote).unwrap();
    common::git(
        &remote,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    let work = dir.path().join("work");
    let commits = common::repo_with_commits(&work, &["one"]);
    common::git(
        &work,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );

    let states: CiStates = Arc::default();
    let status_url = ci_server(states.clone()).await;
    let settings: DeploymentSettings = serde_json::from_value(serde_json::json!({
        "type": "ci_cd",
        "remote": "origin",
        "branch": "main",
        "repo_path": work,
        "status_url": status_url,
        "status_field": "/data/status",
        "success_values": ["passed"],
        "failure_values": ["failed"],
        "status_timeout_s": 10,
        "status_interval_ms": 20,
    }))
    .unwrap();
    let deps = DeployerDeps {
        vcs: Arc::new(GixVcs::new(VcsSettings::default())),
        history: Arc::new(
            FileDeploymentHistory::open(dir.path().join("deployments.json"))
                .await
                .unwrap(),
        ),
        runner: Arc::new(ProcessRunner),
    };
    let deployer = settings.build(&deps).unwrap();
    let request = |revision: &str, key: &str| DeployRequest {
        revision: revision.to_owned(),
        environment: "production".to_owned(),
        idempotency_key: key.to_owned(),
    };

    // 1. CI is pending twice, then passes: the deploy waits for it and succeeds.
    states
        .lock()
        .unwrap()
        .insert(commits[0].clone(), vec!["queued", "running", "passed"]);
    let record = deployer.deploy(&request("main", "task-1")).await.unwrap();
    assert_eq!(record.state, DeploymentState::Succeeded);
    assert_eq!(remote_head(&remote), commits[0]);
    let ci_step = record.steps.iter().find(|s| s.step == "ci status").unwrap();
    assert!(
        ci_step.stdout.contains("\"passed\" (attempt 3)"),
        "{ci_step:?}"
    );
    assert_eq!(record.steps[0].step, "git push");

    // 2. A new commit whose CI fails: recorded as failed, no automatic rollback
    //    (ci_cd cannot move the remote branch back).
    std::fs::write(work.join("status"), "two").unwrap();
    common::git(&work, &["commit", "--quiet", "-am", "release two"]);
    let second = common::git(&work, &["rev-parse", "HEAD"]);
    states
        .lock()
        .unwrap()
        .insert(second.clone(), vec!["running", "failed"]);
    let error = deployer
        .deploy(&request(&second, "task-2"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, cause } = &error else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(record.state, DeploymentState::Failed);
    assert!(record.rollback.is_none());
    assert!(
        matches!(&**cause, DeployError::CiStatus { url, reason }
            if url.ends_with(&second) && reason.contains("\"failed\"")),
        "{cause}"
    );
    assert_eq!(remote_head(&remote), second);

    // 3. A revision that is not the branch tip is refused before pushing.
    let error = deployer
        .deploy(&request(&commits[0], "task-3"))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("is not the tip of branch main"),
        "{error}"
    );
    assert_eq!(remote_head(&remote), second);

    // 4. Status reads the remote branch; history says the last good one was the first.
    let status = deployer.status("production").await.unwrap();
    assert_eq!(status.live_revision.as_deref(), Some(second.as_str()));
    assert_eq!(status.expected_revision.as_deref(), Some("main"));
    assert!(!status.healthy, "CI failed for the live revision");

    // 5. Rollback is refused with a reason.
    let error = deployer
        .rollback(&RollbackRequest {
            environment: "production".to_owned(),
            idempotency_key: "r1".to_owned(),
        })
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        DeployError::RollbackUnsupported { backend: "ci_cd" }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_that_never_finishes_times_out_with_the_last_state() {
    if common::require_program("git", "apt-get install -y git").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    std::fs::create_dir_all(&remote).unwrap();
    common::git(
        &remote,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    let work = dir.path().join("work");
    let commits = common::repo_with_commits(&work, &["one"]);
    let states: CiStates = Arc::default();
    states
        .lock()
        .unwrap()
        .insert(commits[0].clone(), vec!["running"]);
    let settings: DeploymentSettings = serde_json::from_value(serde_json::json!({
        "type": "ci_cd",
        // A URL instead of a remote name, as the offline pipeline uses.
        "remote": remote,
        "repo_path": work,
        "status_url": ci_server(states).await,
        "status_field": "/data/status",
        "status_timeout_s": 1,
        "status_interval_ms": 20,
    }))
    .unwrap();
    let deps = DeployerDeps {
        vcs: Arc::new(GixVcs::new(VcsSettings::default())),
        history: Arc::new(
            FileDeploymentHistory::open(dir.path().join("h.json"))
                .await
                .unwrap(),
        ),
        runner: Arc::new(ProcessRunner),
    };
    let error = settings
        .build(&deps)
        .unwrap()
        .deploy(&DeployRequest {
            revision: commits[0].clone(),
            environment: "staging".to_owned(),
            idempotency_key: "task-1".to_owned(),
        })
        .await
        .unwrap_err();
    let DeployError::Deployment { cause, .. } = &error else {
        panic!("unexpected error: {error}");
    };
    assert!(
        matches!(&**cause, DeployError::CiStatus { reason, .. }
            if reason.contains("no final state within 1s") && reason.contains("\"running\"")),
        "{cause}"
    );
    assert_eq!(remote_head(&remote), commits[0]);
}
