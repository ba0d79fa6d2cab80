//! The `git` config section, and the trait's object safety (with the mock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use agentd_vcs::{GitSettings, GixVcs, Vcs, VcsSettings};

#[test]
fn git_section_defaults() {
    let parsed: GitSettings = serde_norway::from_str("{}").unwrap();
    assert_eq!(parsed, GitSettings::default());
    assert_eq!(parsed.branch, "main");
    assert_eq!(parsed.protected_branches, vec!["main"]);
    assert!(parsed.auto_commit);
    assert!(!parsed.auto_push);
    assert_eq!(parsed.repository_url, None);
    assert_eq!(
        (parsed.author_name.as_str(), parsed.author_email.as_str()),
        ("agentd", "agentd@localhost")
    );
}

#[test]
fn git_section_full() {
    let yaml = "repository_url: /srv/git/app.git\nbranch: trunk\nauto_commit: false\nauto_push: true\nprotected_branches: [trunk, release]\nauthor_name: Bot\nauthor_email: bot@example.test\n";
    let parsed: GitSettings = serde_norway::from_str(yaml).unwrap();
    assert_eq!(parsed.repository_url.as_deref(), Some("/srv/git/app.git"));
    let runtime = VcsSettings::from(&parsed);
    assert_eq!(runtime.initial_branch, "trunk");
    assert!(runtime.is_protected("release"));
    assert!(runtime.is_protected("refs/heads/trunk"));
    assert!(!runtime.is_protected("main"));
    assert_eq!(runtime.author_email, "bot@example.test");
}

#[test]
fn unknown_git_keys_are_errors_that_name_the_key() {
    let err = serde_norway::from_str::<GitSettings>("protected_branch: [main]\n").unwrap_err();
    assert!(err.to_string().contains("protected_branch"), "{err}");
    let err = serde_norway::from_str::<GitSettings>("auto_push: sometimes\n").unwrap_err();
    assert!(err.to_string().contains("auto_push"), "{err}");
}

#[test]
fn the_backend_is_usable_as_a_trait_object() {
    let vcs: Arc<dyn Vcs> = Arc::new(GixVcs::new(VcsSettings::default()));
    drop(vcs);
}

#[cfg(feature = "mock")]
#[tokio::test]
async fn the_mock_stands_in_for_the_trait() {
    use agentd_vcs::{CommitOutcome, MockVcs};
    let mut mock = MockVcs::new();
    mock.expect_commit().times(1).returning(|_, request| {
        Ok(CommitOutcome {
            id: format!("id-for-{}", request.task_id.unwrap_or_default()),
            created: true,
        })
    });
    let vcs: Arc<dyn Vcs> = Arc::new(mock);
    let outcome = vcs
        .commit(
            std::path::Path::new("/repo"),
            agentd_vcs::CommitRequest {
                message: "m".into(),
                paths: vec!["a".into()],
                task_id: Some("t-9".into()),
                trailers: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome.id, "id-for-t-9");
}
