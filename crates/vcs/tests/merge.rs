//! Merges: fast-forward, clean three-way, conflicts that change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use agentd_vcs::{CommitRequest, MergeApproval, MergeOutcome, MergeRequest, Vcs, VcsError};
use common::*;

fn request(message: &str, paths: &[&str], task_id: Option<&str>) -> CommitRequest {
    CommitRequest {
        message: message.to_owned(),
        paths: paths.iter().map(PathBuf::from).collect(),
        task_id: task_id.map(str::to_owned),
        trailers: Vec::new(),
    }
}

fn approved_merge(source: &str, into: &str) -> MergeRequest {
    MergeRequest {
        source: source.to_owned(),
        into: into.to_owned(),
        approval: MergeApproval::approved("tech_lead"),
        message: None,
        task_id: Some("t-merge".to_owned()),
    }
}

/// `main` gets a commit from git (as another merged task would), `feature` one from vcs.
async fn diverged(main_file: (&str, &str), feature_file: (&str, &str)) -> tempfile::TempDir {
    let dir = git_repo_with_commit(&[
        ("shared.txt", "line 1\nline 2\nline 3\n"),
        ("keep.txt", "k\n"),
    ]);
    let repo = dir.path();
    git(repo, &["branch", "feature"]);
    write(repo, main_file.0, main_file.1);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "main moves on"]);
    let vcs = vcs();
    vcs.switch_branch(repo, "feature").await.unwrap();
    write(repo, feature_file.0, feature_file.1);
    vcs.commit(
        repo,
        request("feature work", &[feature_file.0], Some("t-1")),
    )
    .await
    .unwrap();
    vcs.switch_branch(repo, "main").await.unwrap();
    dir
}

#[tokio::test]
async fn fast_forward_moves_the_checked_out_branch_and_its_worktree() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let vcs = vcs();
    let main_before = git(repo, &["rev-parse", "main"]).trim().to_owned();
    vcs.create_branch(repo, "feature", None).await.unwrap();
    vcs.switch_branch(repo, "feature").await.unwrap();
    write(repo, "b.txt", "b\n");
    let commit = vcs
        .commit(repo, request("b", &["b.txt"], Some("t-1")))
        .await
        .unwrap();
    vcs.switch_branch(repo, "main").await.unwrap();
    assert!(!repo.join("b.txt").exists());
    // Someone's unrelated work in progress survives the merge.
    write(repo, "a.txt", "local edit\n");

    let outcome = vcs
        .merge(repo, approved_merge("feature", "main"))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::FastForward {
            from: main_before,
            to: commit.id.clone()
        }
    );
    assert_eq!(git(repo, &["rev-parse", "main"]).trim(), commit.id);
    assert_eq!(read(repo, "b.txt"), "b\n");
    assert_eq!(
        git_porcelain(repo),
        vec![(" M".to_owned(), "a.txt".to_owned())]
    );
    // Merging again is a no-op.
    let again = vcs
        .merge(repo, approved_merge("feature", "main"))
        .await
        .unwrap();
    assert_eq!(again, MergeOutcome::AlreadyUpToDate { head: commit.id });
    assert_fsck(repo);
}

#[tokio::test]
async fn clean_three_way_merge_creates_a_merge_commit() {
    if !git_available() {
        return;
    }
    // Both sides edit the same file in different places, plus separate files.
    let dir = diverged(
        ("shared.txt", "line 1 from main\nline 2\nline 3\n"),
        ("shared.txt", "line 1\nline 2\nline 3 from feature\n"),
    )
    .await;
    let repo = dir.path();
    let main_before = git(repo, &["rev-parse", "main"]).trim().to_owned();
    let feature = git(repo, &["rev-parse", "feature"]).trim().to_owned();
    let vcs = vcs();
    assert_eq!(
        vcs.merge_base(repo, "main", "feature")
            .await
            .unwrap()
            .unwrap(),
        git(repo, &["merge-base", "main", "feature"]).trim()
    );

    let outcome = vcs
        .merge(repo, approved_merge("feature", "main"))
        .await
        .unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("expected a merge commit, got {outcome:?}");
    };
    assert_eq!(git(repo, &["rev-parse", "main"]).trim(), commit);
    assert_eq!(
        git(repo, &["log", "-1", "--format=%P"]).trim(),
        format!("{main_before} {feature}")
    );
    assert_eq!(
        read(repo, "shared.txt"),
        "line 1 from main\nline 2\nline 3 from feature\n"
    );
    assert_eq!(
        git(repo, &["show", "HEAD:shared.txt"]),
        read(repo, "shared.txt")
    );
    assert_eq!(git(repo, &["status", "--porcelain"]), "");
    let message = git(repo, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Merge branch 'feature' into main\n"),
        "{message}"
    );
    assert_eq!(
        git(repo, &["log", "-1", "--format=%(trailers:only,unfold)"]).trim(),
        "Task-Id: t-merge\nReviewed-by: tech_lead\nTests: passed"
    );
    assert_fsck(repo);
}

#[tokio::test]
async fn merge_into_a_branch_that_is_not_checked_out_moves_only_the_ref() {
    if !git_available() {
        return;
    }
    let dir = diverged(("main.txt", "m\n"), ("feature.txt", "f\n")).await;
    let repo = dir.path();
    let vcs = vcs();
    git(repo, &["branch", "release", "main"]);
    let before_worktree = snapshot(repo).files;
    let outcome = vcs
        .merge(repo, approved_merge("feature", "release"))
        .await
        .unwrap();
    let MergeOutcome::Merged { commit } = outcome else {
        panic!("expected a merge commit, got {outcome:?}");
    };
    assert_eq!(git(repo, &["rev-parse", "release"]).trim(), commit);
    assert_eq!(
        git(repo, &["ls-tree", "--name-only", "release"]),
        "feature.txt\nkeep.txt\nmain.txt\nshared.txt\n"
    );
    assert_eq!(
        snapshot(repo).files,
        before_worktree,
        "the checked-out worktree is untouched"
    );
    assert_fsck(repo);
}

#[tokio::test]
async fn a_conflict_names_the_files_and_changes_nothing() {
    if !git_available() {
        return;
    }
    let dir = diverged(
        ("shared.txt", "line 1\nline 2 from main\nline 3\n"),
        ("shared.txt", "line 1\nline 2 from feature\nline 3\n"),
    )
    .await;
    let repo = dir.path();
    // Pending work of someone else must survive too.
    write(repo, "keep.txt", "uncommitted\n");
    write(repo, "scratch.txt", "untracked\n");
    write(repo, "shared.txt", "line 1\nline 2 from main\nline 3\n");
    let before = snapshot(repo);

    let err = vcs()
        .merge(repo, approved_merge("feature", "main"))
        .await
        .unwrap_err();
    match &err {
        VcsError::MergeConflict {
            source_rev,
            into,
            files,
        } => {
            assert_eq!(source_rev, "feature");
            assert_eq!(into, "main");
            assert_eq!(files, &["shared.txt"]);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        snapshot(repo),
        before,
        "status, index bytes, HEAD, refs and files unchanged"
    );
    assert!(!repo.join(".git/MERGE_HEAD").exists());
    assert_fsck(repo);
}

#[tokio::test]
async fn merging_unrelated_histories_is_refused() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    git(repo, &["checkout", "-q", "--orphan", "other"]);
    git(repo, &["rm", "-q", "-rf", "."]);
    write(repo, "b.txt", "b\n");
    git(repo, &["add", "b.txt"]);
    git(repo, &["commit", "-q", "-m", "orphan"]);
    git(repo, &["checkout", "-q", "main"]);
    assert_eq!(vcs().merge_base(repo, "main", "other").await.unwrap(), None);
    let before = snapshot(repo);
    let err = vcs()
        .merge(repo, approved_merge("other", "main"))
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::UnrelatedHistories { .. }), "{err}");
    assert_eq!(snapshot(repo), before);
}
