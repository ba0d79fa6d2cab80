#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! History, idempotency and crash recovery of `TargetDeployer`, over a real
//! `FileDeploymentHistory` and an in-process target whose "server" is a struct.

use std::sync::{Arc, Mutex};

use agentd_deploy::{
    DeployError, DeployRequest, DeployTarget, Deployer, DeploymentAction, DeploymentHistory,
    DeploymentRecord, DeploymentState, FileDeploymentHistory, Revision, RollbackRequest,
    StepOutput, TargetDeployer,
};
use async_trait::async_trait;

/// A fake server: which revision is live, which revisions are unhealthy, and every apply.
#[derive(Default)]
struct FakeServer {
    live: Option<String>,
    unhealthy: Vec<String>,
    applied: Vec<String>,
}

#[derive(Clone, Default)]
struct FakeTarget(Arc<Mutex<FakeServer>>);

impl FakeTarget {
    fn applied(&self) -> Vec<String> {
        self.0.lock().unwrap().applied.clone()
    }
    fn live(&self) -> Option<String> {
        self.0.lock().unwrap().live.clone()
    }
    fn mark_unhealthy(&self, revision: &str) {
        self.0.lock().unwrap().unhealthy.push(revision.to_owned());
    }
    fn set_live(&self, revision: &str) {
        self.0.lock().unwrap().live = Some(revision.to_owned());
    }
}

fn step(name: &str, success: bool) -> StepOutput {
    StepOutput {
        step: name.to_owned(),
        argv: vec![name.to_owned()],
        exit_code: Some(i32::from(!success)),
        success,
        stdout: String::new(),
        stderr: String::new(),
        duration_ms: 0,
    }
}

#[async_trait]
impl DeployTarget for FakeTarget {
    fn backend(&self) -> &'static str {
        "fake"
    }
    async fn apply(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let mut server = self.0.lock().unwrap();
        server.applied.push(revision.to_string());
        server.live = Some(revision.to_string());
        steps.push(step("apply", true));
        Ok(())
    }
    async fn check_health(
        &self,
        revision: &Revision,
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let healthy = !self
            .0
            .lock()
            .unwrap()
            .unhealthy
            .contains(&revision.to_string());
        steps.push(step("health check", healthy));
        if healthy {
            Ok(())
        } else {
            Err(DeployError::HealthCheckFailed {
                check: "fake".to_owned(),
                reason: format!("{revision} is unhealthy"),
            })
        }
    }
    async fn live_revision(
        &self,
        _steps: &mut Vec<StepOutput>,
    ) -> Result<Option<String>, DeployError> {
        Ok(self.live())
    }
}

fn request(revision: &str, key: &str) -> DeployRequest {
    DeployRequest {
        revision: revision.to_owned(),
        environment: "production".to_owned(),
        idempotency_key: key.to_owned(),
    }
}

async fn deployer(path: &std::path::Path, target: &FakeTarget) -> TargetDeployer {
    let history = FileDeploymentHistory::open(path).await.unwrap();
    TargetDeployer::new(Arc::new(target.clone()), Arc::new(history))
}

#[tokio::test]
async fn repeated_request_replays_instead_of_deploying_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    let target = FakeTarget::default();
    let first = deployer(&path, &target)
        .await
        .deploy(&request("aaaa1111", "task-1"))
        .await
        .unwrap();
    assert_eq!(first.state, DeploymentState::Succeeded);

    // A new process (reopened history) gets the same record back, without an apply.
    let again = deployer(&path, &target)
        .await
        .deploy(&request("aaaa1111", "task-1"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(target.applied(), ["aaaa1111"]);

    // A different key is a new deployment.
    deployer(&path, &target)
        .await
        .deploy(&request("aaaa1111", "task-2"))
        .await
        .unwrap();
    assert_eq!(target.applied(), ["aaaa1111", "aaaa1111"]);
}

/// The crash: "started" was recorded and the steps ran, but the process died before the
/// outcome was written. The re-run re-checks the target and does not deploy again.
#[tokio::test]
async fn crash_after_steps_is_rechecked_not_redeployed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    let target = FakeTarget::default();
    let history = FileDeploymentHistory::open(&path).await.unwrap();
    let started = started_record("bbbb2222", "task-7", None);
    history.save(&started).await.unwrap();
    target.set_live("bbbb2222"); // the steps had run before the crash
    drop(history);

    let record = deployer(&path, &target)
        .await
        .deploy(&request("bbbb2222", "task-7"))
        .await
        .unwrap();
    assert_eq!(record.id, started.id);
    assert_eq!(record.state, DeploymentState::Succeeded);
    assert!(record.recovered);
    assert!(
        target.applied().is_empty(),
        "deployed twice: {:?}",
        target.applied()
    );

    // The outcome is durable: the file holds exactly one, finished record.
    let reopened = FileDeploymentHistory::open(&path).await.unwrap();
    let records = reopened.list("production").await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, DeploymentState::Succeeded);
}

fn started_record(revision: &str, key: &str, previous: Option<&str>) -> DeploymentRecord {
    DeploymentRecord {
        id: uuid::Uuid::now_v7().to_string(),
        action: DeploymentAction::Deploy,
        backend: "fake".to_owned(),
        environment: "production".to_owned(),
        revision: revision.to_owned(),
        idempotency_key: key.to_owned(),
        state: DeploymentState::Started,
        previous_revision: previous.map(str::to_owned),
        started_at: chrono::Utc::now(),
        finished_at: None,
        steps: Vec::new(),
        error: None,
        rollback: None,
        recovered: false,
    }
}

/// The crash came before any step ran: the revision is not live, so it is deployed once.
#[tokio::test]
async fn crash_before_steps_deploys_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    let target = FakeTarget::default();
    target.set_live("0000aaaa");
    let history = FileDeploymentHistory::open(&path).await.unwrap();
    history
        .save(&started_record("cccc3333", "task-8", None))
        .await
        .unwrap();
    drop(history);

    let deployer = deployer(&path, &target).await;
    let finished = deployer
        .deploy(&request("cccc3333", "task-8"))
        .await
        .unwrap();
    assert!(finished.recovered);
    assert_eq!(target.applied(), ["cccc3333"]);
    deployer
        .deploy(&request("cccc3333", "task-8"))
        .await
        .unwrap();
    assert_eq!(target.applied(), ["cccc3333"]);
}

/// The crash came during the automatic rollback, after the previous revision was back:
/// the re-run finishes the record as rolled back without touching the target.
#[tokio::test]
async fn crash_during_rollback_finishes_without_redeploying() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    let target = FakeTarget::default();
    target.set_live("aaaa1111");
    let history = FileDeploymentHistory::open(&path).await.unwrap();
    let mut record = started_record("bbbb2222", "task-9", Some("aaaa1111"));
    record.state = DeploymentState::RollingBack;
    record.error = Some("health check failed".to_owned());
    history.save(&record).await.unwrap();
    drop(history);

    let error = deployer(&path, &target)
        .await
        .deploy(&request("bbbb2222", "task-9"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, .. } = error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(record.state, DeploymentState::RolledBack);
    assert!(record.recovered);
    assert!(target.applied().is_empty(), "{:?}", target.applied());
}

#[tokio::test]
async fn unhealthy_deploy_rolls_back_and_replays_its_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    let target = FakeTarget::default();
    let deployer = deployer(&path, &target).await;
    deployer.deploy(&request("aaaa1111", "t1")).await.unwrap();
    target.mark_unhealthy("bbbb2222");

    let error = deployer
        .deploy(&request("bbbb2222", "t2"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, cause } = &error else {
        panic!("unexpected error {error}");
    };
    assert_eq!(record.state, DeploymentState::RolledBack);
    assert_eq!(record.previous_revision.as_deref(), Some("aaaa1111"));
    assert!(matches!(**cause, DeployError::HealthCheckFailed { .. }));
    assert!(
        error.to_string().contains("rolled back to aaaa1111"),
        "{error}"
    );
    assert_eq!(target.live().as_deref(), Some("aaaa1111"));
    assert_eq!(target.applied(), ["aaaa1111", "bbbb2222", "aaaa1111"]);

    // The same key again: the recorded failure, no new attempt.
    let replayed = deployer
        .deploy(&request("bbbb2222", "t2"))
        .await
        .unwrap_err();
    assert!(matches!(
        replayed,
        DeployError::Deployment { ref cause, .. } if matches!(**cause, DeployError::EarlierAttempt { .. })
    ));
    assert_eq!(target.applied().len(), 3);

    let status = deployer.status("production").await.unwrap();
    assert_eq!(status.live_revision.as_deref(), Some("aaaa1111"));
    assert_eq!(status.expected_revision.as_deref(), Some("aaaa1111"));
    assert!(status.healthy);
    assert_eq!(
        status.last_attempt.map(|r| r.state),
        Some(DeploymentState::RolledBack)
    );
}

#[tokio::test]
async fn first_deploy_failing_has_nothing_to_roll_back_to() {
    let dir = tempfile::tempdir().unwrap();
    let target = FakeTarget::default();
    target.mark_unhealthy("aaaa1111");
    let deployer = deployer(&dir.path().join("h.json"), &target).await;
    let error = deployer
        .deploy(&request("aaaa1111", "t1"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, .. } = error else {
        panic!("unexpected error");
    };
    assert_eq!(record.state, DeploymentState::Failed);
    assert!(record.rollback.is_none());
}

#[tokio::test]
async fn explicit_rollback_walks_back_through_good_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let target = FakeTarget::default();
    let deployer = deployer(&dir.path().join("h.json"), &target).await;
    for (revision, key) in [("aaaa1111", "t1"), ("bbbb2222", "t2"), ("cccc3333", "t3")] {
        deployer.deploy(&request(revision, key)).await.unwrap();
    }
    let rollback = |key: &str| RollbackRequest {
        environment: "production".to_owned(),
        idempotency_key: key.to_owned(),
    };
    let first = deployer.rollback(&rollback("r1")).await.unwrap();
    assert_eq!(first.revision, "bbbb2222");
    assert_eq!(first.previous_revision.as_deref(), Some("cccc3333"));
    // Idempotent: the same key does not roll back further.
    assert_eq!(deployer.rollback(&rollback("r1")).await.unwrap(), first);
    let second = deployer.rollback(&rollback("r2")).await.unwrap();
    assert_eq!(second.revision, "aaaa1111");
    assert_eq!(target.live().as_deref(), Some("aaaa1111"));
    assert!(matches!(
        deployer.rollback(&rollback("r3")).await.unwrap_err(),
        DeployError::NothingToRollBackTo { .. }
    ));
    let history = deployer.history("production").await.unwrap();
    assert_eq!(history.len(), 5);
    assert!(
        history
            .iter()
            .all(|r| r.state == DeploymentState::Succeeded)
    );
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let target = FakeTarget::default();
    let deployer = deployer(&dir.path().join("h.json"), &target).await;
    let error = deployer
        .deploy(&request("main; rm -rf /", "t1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DeployError::InvalidRevision { .. }),
        "{error}"
    );
    let mut bad_env = request("main", "t1");
    bad_env.environment = "prod/../x".to_owned();
    assert!(matches!(
        deployer.deploy(&bad_env).await.unwrap_err(),
        DeployError::InvalidInput {
            field: "environment",
            ..
        }
    ));
    assert!(target.applied().is_empty());
    assert!(deployer.history("production").await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_history_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    std::fs::write(&path, b"{not json").unwrap();
    let error = FileDeploymentHistory::open(&path).await.unwrap_err();
    assert!(error.to_string().contains("deployments.json"), "{error}");
}

#[tokio::test]
async fn history_file_is_replaced_atomically_and_lists_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("deployments.json");
    let target = FakeTarget::default();
    let deployer = deployer(&path, &target).await;
    deployer.deploy(&request("aaaa1111", "t1")).await.unwrap();
    let mut staging = request("bbbb2222", "t2");
    staging.environment = "staging".to_owned();
    deployer.deploy(&staging).await.unwrap();
    // No temporary files are left behind next to the history.
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["deployments.json"]);
    assert_eq!(deployer.history("production").await.unwrap().len(), 1);
    assert_eq!(deployer.history("staging").await.unwrap().len(), 1);
}
