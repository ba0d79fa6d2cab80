//! The commit rules agents depend on: protected branches, idempotent `Task-Id` commits, and
//! committing only the task's paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use agentd_vcs::{CommitRequest, MergeApproval, MergeRequest, Vcs, VcsError};
use common::*;

fn request(message: &str, paths: &[&str], task_id: Option<&str>) -> CommitRequest {
    CommitRequest {
        message: message.to_owned(),
        paths: paths.iter().map(PathBuf::from).collect(),
        task_id: task_id.map(str::to_owned),
        trailers: Vec::new(),
    }
}

/// A git-made repository on branch `feature` (off `main`).
fn feature_repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = git_repo_with_commit(files);
    git(dir.path(), &["checkout", "-q", "-b", "feature"]);
    dir
}

#[tokio::test]
async fn commit_and_push_to_a_protected_branch_are_refused() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let vcs = vcs();
    write(repo, "a.txt", "changed on main\n");
    let before = snapshot(repo);

    let err = vcs
        .commit(repo, request("direct to main", &["a.txt"], Some("t-1")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VcsError::ProtectedBranch { branch, operation: "commit" } if branch == "main"),
        "{err}"
    );
    let remote_url = remote.path().to_str().unwrap();
    let err = vcs.push(repo, remote_url, "main", None).await.unwrap_err();
    assert!(
        matches!(
            &err,
            VcsError::ProtectedBranch {
                operation: "push",
                ..
            }
        ),
        "{err}"
    );
    let half_approved = MergeApproval {
        reviewed: true,
        tests_passed: false,
        reviewer: Some("tech_lead".into()),
    };
    let err = vcs
        .push(repo, remote_url, "main", Some(half_approved))
        .await
        .unwrap_err();
    assert!(matches!(&err, VcsError::ProtectedBranch { .. }), "{err}");
    let err = vcs.delete_branch(repo, "main").await.unwrap_err();
    assert!(
        matches!(
            &err,
            VcsError::ProtectedBranch {
                operation: "delete",
                ..
            }
        ),
        "{err}"
    );

    assert_eq!(snapshot(repo), before);
    assert_eq!(
        git(remote.path(), &["for-each-ref"]),
        "",
        "nothing reached the remote"
    );

    // With review and tests, the push goes through.
    vcs.push(
        repo,
        remote_url,
        "main",
        Some(MergeApproval::approved("tech_lead")),
    )
    .await
    .unwrap();
    assert_eq!(
        git(remote.path(), &["rev-parse", "main"]),
        git(repo, &["rev-parse", "main"])
    );
}

#[tokio::test]
async fn merges_into_a_protected_branch_need_review_and_tests() {
    if !git_available() {
        return;
    }
    let dir = feature_repo(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let vcs = vcs();
    write(repo, "b.txt", "b\n");
    vcs.commit(repo, request("add b", &["b.txt"], Some("t-1")))
        .await
        .unwrap();
    let before = snapshot(repo);
    for (reviewed, tests_passed) in [(false, false), (true, false), (false, true)] {
        let err = vcs
            .merge(
                repo,
                MergeRequest {
                    source: "feature".into(),
                    into: "main".into(),
                    approval: MergeApproval {
                        reviewed,
                        tests_passed,
                        reviewer: None,
                    },
                    message: None,
                    task_id: None,
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, VcsError::MergeNotApproved { branch, reviewed: r, tests_passed: t }
                if branch == "main" && *r == reviewed && *t == tests_passed),
            "{err}"
        );
        assert_eq!(snapshot(repo), before);
    }
}

#[tokio::test]
async fn recommitting_the_same_task_id_is_a_no_op() {
    if !git_available() {
        return;
    }
    let dir = feature_repo(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let vcs = vcs();
    write(repo, "a.txt", "task work\n");
    let first = vcs
        .commit(repo, request("Do task 7", &["a.txt"], Some("task-7")))
        .await
        .unwrap();
    assert!(first.created);

    // A re-run after a crash: same task, maybe slightly different output.
    write(repo, "a.txt", "task work, re-run\n");
    let again = vcs
        .commit(repo, request("Do task 7", &["a.txt"], Some("task-7")))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert!(!again.created);
    assert_eq!(git(repo, &["rev-parse", "HEAD"]).trim(), first.id);
    assert_eq!(
        git(repo, &["log", "--format=%H", "--grep=^Task-Id: task-7$"])
            .lines()
            .count(),
        1
    );
    // The re-run's change is left pending, not lost.
    assert_eq!(
        git_porcelain(repo),
        vec![(" M".to_owned(), "a.txt".to_owned())]
    );

    // Another task id commits normally, and the id survives further commits on top.
    let other = vcs
        .commit(repo, request("Task 8", &["a.txt"], Some("task-8")))
        .await
        .unwrap();
    assert!(other.created);
    let again = vcs
        .commit(repo, request("Do task 7", &["a.txt"], Some("task-7")))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(git(repo, &["rev-list", "--count", "HEAD"]).trim(), "3");
    assert_fsck(repo);
}

#[tokio::test]
async fn unrelated_pending_changes_are_not_swept_into_the_commit() {
    if !git_available() {
        return;
    }
    let dir = feature_repo(&[
        ("task/a.rs", "a\n"),
        ("staged.txt", "s\n"),
        ("unstaged.txt", "u\n"),
        ("gone.txt", "g\n"),
    ]);
    let repo = dir.path();
    // Someone else's work in progress: staged, unstaged, untracked and a staged deletion.
    write(repo, "staged.txt", "staged change\n");
    git(repo, &["add", "staged.txt"]);
    write(repo, "unstaged.txt", "unstaged change\n");
    write(repo, "untracked.txt", "untracked\n");
    git(repo, &["rm", "-q", "gone.txt"]);
    // The task's work.
    write(repo, "task/a.rs", "a changed by task\n");
    write(repo, "task/b.rs", "b new\n");
    let others_before: Vec<(String, String)> = git_porcelain(repo)
        .into_iter()
        .filter(|(_, path)| !path.starts_with("task/"))
        .collect();

    let vcs = vcs();
    let outcome = vcs
        .commit(repo, request("Task work", &["task"], Some("t-1")))
        .await
        .unwrap();

    assert_eq!(
        git(repo, &["show", "--format=", "--name-status", &outcome.id]),
        "M\ttask/a.rs\nA\ttask/b.rs\n"
    );
    assert_eq!(
        git_porcelain(repo),
        others_before,
        "other changes stay pending, as they were"
    );
    assert_eq!(
        git(repo, &["show", ":staged.txt"]),
        "staged change\n",
        "staged content kept"
    );
    assert_eq!(git(repo, &["show", "HEAD:staged.txt"]), "s\n");
    assert_fsck(repo);
}

#[tokio::test]
async fn a_task_path_that_was_staged_is_committed_from_the_worktree() {
    if !git_available() {
        return;
    }
    let dir = feature_repo(&[("f.txt", "v1\n")]);
    let repo = dir.path();
    write(repo, "f.txt", "v2 staged\n");
    git(repo, &["add", "f.txt"]);
    write(repo, "f.txt", "v3 in worktree\n");
    let outcome = vcs()
        .commit(repo, request("f", &["f.txt"], None))
        .await
        .unwrap();
    assert_eq!(
        git(repo, &["show", &format!("{}:f.txt", outcome.id)]),
        "v3 in worktree\n"
    );
    assert_eq!(git(repo, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn deletions_and_nested_paths_are_committed() {
    if !git_available() {
        return;
    }
    let dir = feature_repo(&[
        ("src/a/one.rs", "1\n"),
        ("src/a/two.rs", "2\n"),
        ("docs/x.md", "x\n"),
    ]);
    let repo = dir.path();
    std::fs::remove_dir_all(repo.join("src/a")).unwrap();
    write(repo, "src/b/three.rs", "3\n");
    write(repo, "docs/x.md", "not part of the task\n");
    let outcome = vcs()
        .commit(repo, request("restructure", &["src"], None))
        .await
        .unwrap();
    assert_eq!(
        git(repo, &["show", "--format=", "--name-status", &outcome.id]),
        "D\tsrc/a/one.rs\nD\tsrc/a/two.rs\nA\tsrc/b/three.rs\n"
    );
    assert_eq!(
        git_porcelain(repo),
        vec![(" M".to_owned(), "docs/x.md".to_owned())]
    );
    assert_fsck(repo);
}

#[tokio::test]
async fn bad_requests_are_typed_errors() {
    if !git_available() {
        return;
    }
    let dir = feature_repo(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let vcs = vcs();
    let before = snapshot(repo);
    let err = vcs
        .commit(repo, request("nothing", &["a.txt"], None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VcsError::NothingToCommit { paths } if paths == &["a.txt"]),
        "{err}"
    );
    let err = vcs
        .commit(repo, request("none", &[], None))
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::NoPathsGiven), "{err}");
    for escaping in [
        "../outside.txt",
        "/etc/passwd",
        "src/../../x",
        ".git/config",
    ] {
        let err = vcs
            .commit(repo, request("escape", &[escaping], None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, VcsError::InvalidPath { .. }),
            "{escaping}: {err}"
        );
    }
    // An absolute path inside the worktree is fine.
    write(repo, "a.txt", "b\n");
    let absolute = repo.join("a.txt");
    vcs.commit(repo, request("abs", &[absolute.to_str().unwrap()], None))
        .await
        .unwrap();
    assert_ne!(snapshot(repo).refs, before.refs);
}
