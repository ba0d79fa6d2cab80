//! Push, pull and clone against a local bare remote; one linked worktree per task.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use agentd_vcs::{CommitRequest, MergeApproval, MergeOutcome, Vcs, VcsError};
use common::*;

fn request(message: &str, paths: &[&str], task_id: Option<&str>) -> CommitRequest {
    CommitRequest {
        message: message.to_owned(),
        paths: paths.iter().map(PathBuf::from).collect(),
        task_id: task_id.map(str::to_owned),
        trailers: Vec::new(),
    }
}

/// A bare remote whose `main` has one commit, made by git.
fn bare_remote() -> (tempfile::TempDir, String) {
    let seed = git_repo_with_commit(&[("README.md", "# project\n")]);
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare", "-b", "main"]);
    let url = remote.path().to_str().unwrap().to_owned();
    git(seed.path(), &["push", "-q", &url, "main"]);
    (remote, url)
}

#[tokio::test]
async fn clone_push_and_pull_through_a_bare_remote() {
    if !git_available() {
        return;
    }
    let (remote, url) = bare_remote();
    let vcs = vcs();
    let workspace = tempfile::tempdir().unwrap();
    let alice = workspace.path().join("alice");
    let bob = workspace.path().join("bob");

    let info = vcs.clone_repo(&url, &alice).await.unwrap();
    assert_eq!(info.branch.as_deref(), Some("main"));
    assert_eq!(read(&alice, "README.md"), "# project\n");
    assert!(vcs.status(&alice).await.unwrap().is_empty());
    assert_fsck(&alice);
    // file:// URLs clone too.
    vcs.clone_repo(&format!("file://{url}"), &bob)
        .await
        .unwrap();
    assert_eq!(
        git(&bob, &["remote", "get-url", "origin"]).trim(),
        format!("file://{url}")
    );

    // Alice pushes a feature branch and, once approved, main.
    vcs.create_branch(&alice, "feature/t-1", None)
        .await
        .unwrap();
    vcs.switch_branch(&alice, "feature/t-1").await.unwrap();
    write(&alice, "src/lib.rs", "pub fn f() {}\n");
    let commit = vcs
        .commit(&alice, request("add f", &["src"], Some("t-1")))
        .await
        .unwrap();
    vcs.push(&alice, "origin", "feature/t-1", None)
        .await
        .unwrap();
    assert_eq!(
        git(remote.path(), &["rev-parse", "feature/t-1"]).trim(),
        commit.id
    );
    vcs.switch_branch(&alice, "main").await.unwrap();
    vcs.merge(
        &alice,
        agentd_vcs::MergeRequest {
            source: "feature/t-1".into(),
            into: "main".into(),
            approval: MergeApproval::approved("tech_lead"),
            message: None,
            task_id: Some("t-1".into()),
        },
    )
    .await
    .unwrap();
    vcs.push(
        &alice,
        "origin",
        "main",
        Some(MergeApproval::approved("tech_lead")),
    )
    .await
    .unwrap();
    assert_eq!(git(remote.path(), &["rev-parse", "main"]).trim(), commit.id);
    assert_fsck(remote.path());

    // Bob pulls: a fast-forward of his protected main is allowed.
    let before = git(&bob, &["rev-parse", "main"]).trim().to_owned();
    let pulled = vcs.pull(&bob, "origin", "main").await.unwrap();
    assert_eq!(
        pulled,
        MergeOutcome::FastForward {
            from: before,
            to: commit.id.clone()
        }
    );
    assert_eq!(read(&bob, "src/lib.rs"), "pub fn f() {}\n");
    assert_eq!(git(&bob, &["status", "--porcelain"]), "");
    let again = vcs.pull(&bob, "origin", "main").await.unwrap();
    assert_eq!(again, MergeOutcome::AlreadyUpToDate { head: commit.id });
}

#[tokio::test]
async fn pull_merges_diverged_feature_branches_but_not_protected_ones() {
    if !git_available() {
        return;
    }
    let (remote, url) = bare_remote();
    let vcs = vcs();
    let workspace = tempfile::tempdir().unwrap();
    let alice = workspace.path().join("alice");
    let bob = workspace.path().join("bob");
    vcs.clone_repo(&url, &alice).await.unwrap();
    vcs.clone_repo(&url, &bob).await.unwrap();
    for (who, file) in [(&alice, "a.txt"), (&bob, "b.txt")] {
        vcs.create_branch(who, "shared", None).await.unwrap();
        vcs.switch_branch(who, "shared").await.unwrap();
        write(who, file, "x\n");
        vcs.commit(who, request(file, &[file], None)).await.unwrap();
    }
    vcs.push(&alice, "origin", "shared", None).await.unwrap();
    let outcome = vcs.pull(&bob, "origin", "shared").await.unwrap();
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert!(bob.join("a.txt").exists() && bob.join("b.txt").exists());
    assert_fsck(&bob);

    // Diverged protected main: refused, nothing changes.
    git(&alice, &["checkout", "-q", "main"]);
    write(&alice, "m1.txt", "1\n");
    git(&alice, &["add", "m1.txt"]);
    git(&alice, &["commit", "-q", "-m", "m1"]);
    git(&alice, &["push", "-q", "origin", "main"]);
    git(&bob, &["checkout", "-q", "main"]);
    write(&bob, "m2.txt", "2\n");
    git(&bob, &["add", "m2.txt"]);
    git(&bob, &["commit", "-q", "-m", "m2"]);
    let before = snapshot(&bob);
    let local_branches = || {
        git(
            &bob,
            &[
                "for-each-ref",
                "refs/heads",
                "--format=%(refname) %(objectname)",
            ],
        )
    };
    let branches_before = local_branches();
    let err = vcs.pull(&bob, "origin", "main").await.unwrap_err();
    assert!(matches!(err, VcsError::ProtectedBranch { .. }), "{err}");
    // The fetch may update remote-tracking refs (as `git fetch` does); nothing local moves.
    let after = snapshot(&bob);
    assert_eq!(local_branches(), branches_before);
    assert_eq!(
        (after.head, after.index, after.status, after.files),
        (before.head, before.index, before.status, before.files)
    );
    drop(remote);
}

#[tokio::test]
async fn push_failures_are_typed_and_name_the_command() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    git(repo, &["branch", "feature"]);
    let vcs = vcs();
    let missing = repo.join("no-such-remote");
    let err = vcs
        .push(repo, missing.to_str().unwrap(), "feature", None)
        .await
        .unwrap_err();
    match &err {
        VcsError::GitCommand { args, stderr, .. } => {
            assert!(args.starts_with("push"), "{args}");
            assert!(!stderr.is_empty());
        }
        other => panic!("expected a git failure, got {other}"),
    }
    let err = vcs
        .push(repo, "--upload-pack=evil", "feature", None)
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::InvalidRefName { .. }), "{err}");
    let err = vcs
        .push(repo, "origin", "no-such-branch", None)
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::RevisionNotFound { .. }), "{err}");
}

/// The state a crash during `git worktree add` leaves: registered, locked, directory gone.
#[tokio::test]
async fn a_worktree_add_interrupted_by_a_crash_can_be_redone() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let trees = tempfile::tempdir().unwrap();
    let path = trees.path().join("task-1");
    let path_arg = path.to_str().unwrap();
    git(repo, &["worktree", "add", "-b", "task/1", path_arg]);
    git(
        repo,
        &["worktree", "lock", "--reason", "initializing", path_arg],
    );
    std::fs::remove_dir_all(&path).unwrap();
    assert!(git(repo, &["worktree", "list", "--porcelain"]).contains("locked"));

    let info = vcs()
        .add_worktree(repo, &path, "task/1", None)
        .await
        .unwrap();
    assert_eq!(info.branch, "task/1");
    assert!(path.join("a.txt").exists());
    assert!(!git(repo, &["worktree", "list", "--porcelain"]).contains("locked"));
}

#[tokio::test]
async fn each_task_works_in_its_own_linked_worktree() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let vcs = vcs();
    let trees = tempfile::tempdir().unwrap();
    let t1 = trees.path().join("task-1");
    let t2 = trees.path().join("task-2");

    let info = vcs.add_worktree(repo, &t1, "task/1", None).await.unwrap();
    assert_eq!(info.branch, "task/1");
    assert_eq!(info.head, git(repo, &["rev-parse", "main"]).trim());
    vcs.add_worktree(repo, &t2, "task/2", Some("main".into()))
        .await
        .unwrap();
    assert_eq!(
        vcs.current_branch(&t1).await.unwrap().as_deref(),
        Some("task/1")
    );

    // Work in both at once; neither sees the other's changes.
    write(&t1, "one.txt", "1\n");
    write(&t2, "two.txt", "2\n");
    let (c1, c2) = tokio::join!(
        vcs.commit(&t1, request("one", &["one.txt"], Some("t-1"))),
        vcs.commit(&t2, request("two", &["two.txt"], Some("t-2")))
    );
    let (c1, c2) = (c1.unwrap(), c2.unwrap());
    assert!(vcs.status(&t1).await.unwrap().is_empty());
    assert!(!t1.join("two.txt").exists());
    assert_eq!(git(repo, &["rev-parse", "task/1"]).trim(), c1.id);
    assert_eq!(git(repo, &["rev-parse", "task/2"]).trim(), c2.id);
    assert!(
        vcs.status(repo).await.unwrap().is_empty(),
        "main checkout untouched"
    );

    // A branch checked out in a worktree cannot be deleted; merging into it updates that worktree.
    let err = vcs.delete_branch(repo, "task/1").await.unwrap_err();
    assert!(
        matches!(&err, VcsError::BranchCheckedOut { worktree, .. } if worktree == &t1),
        "{err}"
    );
    let merged = vcs
        .merge(
            repo,
            agentd_vcs::MergeRequest {
                source: "task/2".into(),
                into: "task/1".into(),
                approval: MergeApproval::default(),
                message: None,
                task_id: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    assert_eq!(read(&t1, "two.txt"), "2\n");
    assert_eq!(git(&t1, &["status", "--porcelain"]), "");

    // Removing: a dirty worktree needs force; the branch stays.
    write(&t2, "dirty.txt", "x\n");
    assert!(vcs.remove_worktree(repo, &t2, false).await.is_err());
    vcs.remove_worktree(repo, &t2, true).await.unwrap();
    assert!(!t2.exists());
    vcs.remove_worktree(repo, &t1, false).await.unwrap();
    assert_eq!(
        git(repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert_eq!(git(repo, &["rev-parse", "task/2"]).trim(), c2.id);
    vcs.delete_branch(repo, "task/2").await.unwrap();
    assert_fsck(repo);
}

#[cfg(unix)]
#[tokio::test]
async fn git_runs_with_a_scrubbed_environment() {
    if !git_available() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // cargo sets CARGO_* variables in the test process; none may reach git or its hooks.
    assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    git(repo, &["branch", "feature"]);
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let env_file = repo.join("hook-env.txt");
    let hook = repo.join(".git/hooks/pre-push");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\nenv > '{}'\n", env_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    vcs()
        .push(repo, remote.path().to_str().unwrap(), "feature", None)
        .await
        .unwrap();
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env.lines().any(|line| line == "GIT_TERMINAL_PROMPT=0"),
        "{env}"
    );
    assert!(!env.contains("CARGO"), "{env}");
    assert!(!env.contains("RUST_"), "{env}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_hung_git_is_killed_with_its_hooks_at_the_timeout() {
    if !git_available() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    git(repo, &["branch", "feature"]);
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    // A hook that never finishes, like a credential helper waiting for input.
    let pid_file = repo.join("hook.pid");
    let hook = repo.join(".git/hooks/pre-push");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 300\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vcs = agentd_vcs::GixVcs::new(agentd_vcs::VcsSettings {
        git_timeout: std::time::Duration::from_millis(500),
        ..settings()
    });

    let started = std::time::Instant::now();
    let err = vcs
        .push(repo, remote.path().to_str().unwrap(), "feature", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VcsError::GitTimeout { args, .. } if args.starts_with("push")),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(
        git(remote.path(), &["for-each-ref"]),
        "",
        "nothing was pushed"
    );

    // The hook's process dies with git (poll: the kernel reaps asynchronously).
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .split(") ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with('Z'))
        });
        if !alive {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hook process {pid} survived the timeout"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
