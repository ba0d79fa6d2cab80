#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `deployment` config section: parsing, unknown keys, defaults, and the constructor.

use std::sync::Arc;

use agentd_deploy::{
    DeployRequest, DeployerDeps, DeploymentSettings, DeploymentState, DirectTarget,
    FileDeploymentHistory, ProcessRunner,
};
use agentd_vcs::{GixVcs, VcsSettings};
use serde_json::json;

fn parse(value: serde_json::Value) -> Result<DeploymentSettings, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn direct_json() -> serde_json::Value {
    json!({
        "type": "direct",
        "host": "app.example.com",
        "user": "deploy",
        "key_path": "/etc/agentd/deploy_key",
        "known_hosts_path": "/etc/agentd/known_hosts",
        "steps": ["git -C /srv/app fetch origin", "git -C /srv/app checkout --detach {revision}"],
        "revision_command": "git -C /srv/app rev-parse HEAD",
        "health_check": { "type": "http", "url": "http://app.example.com/health" },
    })
}

async fn deps(dir: &std::path::Path) -> DeployerDeps {
    DeployerDeps {
        vcs: Arc::new(GixVcs::new(VcsSettings::default())),
        history: Arc::new(
            FileDeploymentHistory::open(dir.join("h.json"))
                .await
                .unwrap(),
        ),
        runner: Arc::new(ProcessRunner),
    }
}

#[test]
fn every_type_parses_with_defaults() {
    let DeploymentSettings::Direct(direct) = parse(direct_json()).unwrap() else {
        panic!("not direct");
    };
    assert_eq!(direct.port, 22);
    assert_eq!(direct.connect_timeout_s, 10);
    let DeploymentSettings::CiCd(ci) = parse(json!({ "type": "ci_cd" })).unwrap() else {
        panic!("not ci_cd");
    };
    assert_eq!((ci.remote.as_str(), ci.branch.as_str()), ("origin", "main"));
    assert_eq!(ci.status_field, "/state");
    let docker = parse(json!({ "type": "docker", "image": "app", "container_name": "app" }));
    assert!(
        matches!(docker, Ok(DeploymentSettings::Docker(ref d)) if d.build && d.compose_file.is_none())
    );
    assert_eq!(
        parse(json!({ "type": "none" })).unwrap(),
        DeploymentSettings::None {}
    );
    assert_eq!(DeploymentSettings::default(), DeploymentSettings::None {});
}

#[test]
fn unknown_and_missing_keys_are_named() {
    let mut typo = direct_json();
    typo["hostname"] = json!("x");
    let error = parse(typo).unwrap_err();
    assert!(error.contains("unknown field `hostname`"), "{error}");

    let mut typo_in_check = direct_json();
    typo_in_check["health_check"]["expect"] = json!(200);
    let error = parse(typo_in_check).unwrap_err();
    assert!(error.contains("unknown field `expect`"), "{error}");

    let error = parse(json!({ "type": "docker", "image": "app" })).unwrap_err();
    assert!(error.contains("missing field `container_name`"), "{error}");

    let error = parse(json!({ "type": "kubernetes" })).unwrap_err();
    assert!(error.contains("unknown variant `kubernetes`"), "{error}");

    let error = parse(json!({ "type": "none", "host": "x" })).unwrap_err();
    assert!(error.contains("host"), "{error}");
}

#[tokio::test]
async fn constructor_validates_the_section() {
    let dir = tempfile::tempdir().unwrap();
    let deps = deps(dir.path()).await;
    let mut bad_host = direct_json();
    bad_host["host"] = json!("-oProxyCommand=evil");
    let error = parse(bad_host).unwrap().build(&deps).err().unwrap();
    assert!(error.to_string().contains("deployment.host"), "{error}");

    let mut spaced = direct_json();
    spaced["known_hosts_path"] = json!("/tmp/with space/known_hosts");
    let error = parse(spaced).unwrap().build(&deps).err().unwrap();
    assert!(
        error.to_string().contains("deployment.known_hosts_path"),
        "{error}"
    );

    let error = parse(json!({ "type": "ci_cd", "status_field": "state" }))
        .unwrap()
        .build(&deps)
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("deployment.status_field"),
        "{error}"
    );

    assert_eq!(parse(direct_json()).unwrap().backend(), "direct");
    assert!(parse(direct_json()).unwrap().build(&deps).is_ok());
}

#[tokio::test]
async fn type_none_records_without_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let deployer = DeploymentSettings::None {}
        .build(&deps(dir.path()).await)
        .unwrap();
    let record = deployer
        .deploy(&DeployRequest {
            revision: "main".to_owned(),
            environment: "production".to_owned(),
            idempotency_key: "t1".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(record.state, DeploymentState::Succeeded);
    assert_eq!(record.backend, "none");
    assert!(record.steps.is_empty());
}

#[test]
fn ssh_argv_pins_keys_and_disables_agents() {
    let DeploymentSettings::Direct(settings) = parse(direct_json()).unwrap() else {
        panic!("not direct");
    };
    let target = DirectTarget::new(settings, Arc::new(ProcessRunner)).unwrap();
    insta::assert_yaml_snapshot!(target.ssh_argv("git -C /srv/app rev-parse HEAD"));
}

/// Downstream crates unit-test against `MockDeployer` (feature `mock`) as `Arc<dyn Deployer>`.
#[tokio::test]
async fn mock_deployer_stands_in_for_the_trait_object() {
    let mut mock = agentd_deploy::MockDeployer::new();
    mock.expect_history()
        .withf(|environment| environment == "staging")
        .times(1)
        .returning(|_| Ok(Vec::new()));
    let deployer: Arc<dyn agentd_deploy::Deployer> = Arc::new(mock);
    assert!(deployer.history("staging").await.unwrap().is_empty());
}
