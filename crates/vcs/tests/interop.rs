//! Interop with the `git` program: what vcs writes, git reads (and `git fsck --strict`
//! accepts), and what git writes, vcs reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use agentd_vcs::{AddPaths, ChangeKind, CommitRequest, Trailer, Vcs, VcsError};
use common::*;

fn request(message: &str, paths: &[&str], task_id: Option<&str>) -> CommitRequest {
    CommitRequest {
        message: message.to_owned(),
        paths: paths.iter().map(PathBuf::from).collect(),
        task_id: task_id.map(str::to_owned),
        trailers: Vec::new(),
    }
}

#[tokio::test]
async fn init_makes_a_root_commit_that_git_accepts() {
    if !git_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vcs = vcs();
    let info = vcs.init(dir.path()).await.unwrap();
    assert_eq!(info.branch.as_deref(), Some("main"));
    assert_fsck(dir.path());
    assert_eq!(
        git(dir.path(), &["rev-parse", "HEAD"]).trim(),
        info.head.unwrap()
    );
    assert_eq!(
        git(dir.path(), &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
    assert!(vcs.status(dir.path()).await.unwrap().is_empty());
}

#[tokio::test]
async fn init_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "keep.txt", "user data\n");
    let err = vcs().init(dir.path()).await.unwrap_err();
    assert!(matches!(err, VcsError::DestinationNotEmpty { .. }), "{err}");
    assert_eq!(read(dir.path(), "keep.txt"), "user data\n");
}

#[tokio::test]
async fn commits_made_by_vcs_are_what_git_log_and_status_report() {
    if !git_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let vcs = vcs();
    vcs.init(repo).await.unwrap();
    vcs.create_branch(repo, "feature/t-1", None).await.unwrap();
    vcs.switch_branch(repo, "feature/t-1").await.unwrap();
    write(repo, "src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n");
    write(repo, "README.md", "# demo\n");
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    write(repo, "bin/run.sh", "#!/bin/sh\necho run\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            repo.join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("src/lib.rs", repo.join("lib-link")).unwrap();
    }
    let mut first = request(
        "Add library\n\nFirst version.",
        &["src", "README.md", "bin", "lib-link"],
        Some("t-1"),
    );
    first.trailers.push(Trailer::new("Agent-Role", "developer"));
    let first = vcs.commit(repo, first).await.unwrap();
    assert!(first.created);

    write(
        repo,
        "src/lib.rs",
        "pub fn one() -> u32 {\n    1\n}\n\npub fn two() -> u32 {\n    2\n}\n",
    );
    std::fs::remove_file(repo.join("README.md")).unwrap();
    let second = vcs
        .commit(
            repo,
            request(
                "Add two, drop readme",
                &["src/lib.rs", "README.md"],
                Some("t-2"),
            ),
        )
        .await
        .unwrap();

    assert_fsck(repo);
    // git and vcs agree on history.
    let git_ids: Vec<String> = git(repo, &["log", "--format=%H"])
        .lines()
        .map(str::to_owned)
        .collect();
    let vcs_log = vcs.log(repo, None, 10).await.unwrap();
    let vcs_ids: Vec<String> = vcs_log.iter().map(|c| c.id.clone()).collect();
    assert_eq!(git_ids, vcs_ids);
    assert_eq!(vcs_ids[0], second.id);
    assert_eq!(vcs_ids[1], first.id);
    assert_eq!(vcs_log[1].parents, vec![vcs_ids[2].clone()]);
    assert_eq!(vcs_log[1].summary, "Add library");
    // Author and committer come from the settings.
    assert_eq!(
        git(repo, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]).trim(),
        format!("{AUTHOR_NAME} <{AUTHOR_EMAIL}>|{AUTHOR_NAME} <{AUTHOR_EMAIL}>")
    );
    // Trailers are real git trailers.
    assert_eq!(
        git(
            repo,
            &["log", "-1", "--format=%(trailers:only,unfold)", &first.id]
        )
        .trim(),
        "Task-Id: t-1\nAgent-Role: developer"
    );
    // The index was updated: nothing is left over, for git nor for vcs.
    assert_eq!(git(repo, &["status", "--porcelain"]), "");
    assert!(vcs.status(repo).await.unwrap().is_empty());
    // Modes as git sees them.
    let tree = git(repo, &["ls-tree", "-r", "HEAD"]);
    assert!(
        tree.contains("100755 blob") && tree.contains("\tbin/run.sh"),
        "{tree}"
    );
    #[cfg(unix)]
    assert!(
        tree.contains("120000 blob") && tree.contains("\tlib-link"),
        "{tree}"
    );
    assert!(!tree.contains("README.md"), "{tree}");
}

#[tokio::test]
async fn status_agrees_with_git_status_porcelain() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("c.txt", "c\n"),
        ("d/e.txt", "e\n"),
        (".gitignore", "*.log\nbuild/\n"),
    ]);
    let repo = dir.path();
    write(repo, "a.txt", "a changed, not staged\n");
    write(repo, "b.txt", "b changed and staged\n");
    git(repo, &["add", "b.txt"]);
    write(repo, "b.txt", "b changed again\n");
    std::fs::remove_file(repo.join("c.txt")).unwrap();
    git(repo, &["rm", "-q", "--cached", "d/e.txt"]);
    write(repo, "new/deep/file.txt", "untracked\n");
    write(repo, "staged-new.txt", "new\n");
    git(repo, &["add", "staged-new.txt"]);
    write(repo, "debug.log", "ignored\n");
    write(repo, "build/out.bin", "ignored\n");

    let expected = git_porcelain(repo);
    let actual: Vec<(String, String)> = vcs()
        .status(repo)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| (entry.porcelain_code(), entry.path))
        .collect();
    assert_eq!(actual, expected);
    // Sanity: the scenario covers every kind of change.
    let codes: Vec<&str> = expected.iter().map(|(code, _)| code.as_str()).collect();
    for code in [" M", "MM", " D", "D ", "??", "A "] {
        assert!(codes.contains(&code), "{code} missing in {expected:?}");
    }
}

#[tokio::test]
async fn status_agrees_with_git_whether_or_not_something_is_staged() {
    if !git_available() {
        return;
    }
    // Right after `git commit` the index caches HEAD's tree, and vcs skips comparing
    // HEAD with the index; after `git add` that cache is invalid and vcs compares.
    let dir = git_repo_with_commit(&[("a.txt", "a\n"), ("d/b.txt", "b\n")]);
    let repo = dir.path();
    let vcs = vcs();
    write(repo, "a.txt", "a2\n");
    write(repo, "d/new.txt", "n\n");
    let status = |entries: Vec<agentd_vcs::StatusEntry>| -> Vec<(String, String)> {
        entries
            .into_iter()
            .map(|e| (e.porcelain_code(), e.path))
            .collect()
    };
    assert_eq!(status(vcs.status(repo).await.unwrap()), git_porcelain(repo));
    git(repo, &["add", "d/new.txt"]);
    assert_eq!(status(vcs.status(repo).await.unwrap()), git_porcelain(repo));
    // A commit made by git with a different tree than the cached one.
    git(repo, &["commit", "-q", "-m", "new"]);
    git(repo, &["rm", "-q", "--cached", "d/b.txt"]);
    assert_eq!(status(vcs.status(repo).await.unwrap()), git_porcelain(repo));
    assert_eq!(git_porcelain(repo).len(), 3);
}

#[tokio::test]
async fn add_stages_like_git_add() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        (".gitignore", "*.log\n"),
    ]);
    let repo = dir.path();
    let vcs = vcs();
    write(repo, "a.txt", "a2\n");
    std::fs::remove_file(repo.join("b.txt")).unwrap();
    write(repo, "n/new.txt", "new\n");
    write(repo, "x.log", "ignored\n");

    vcs.add(repo, AddPaths::Paths(vec!["a.txt".into()]))
        .await
        .unwrap();
    assert_eq!(
        git_porcelain(repo),
        vec![
            ("M ".to_owned(), "a.txt".to_owned()),
            (" D".to_owned(), "b.txt".to_owned()),
            ("??".to_owned(), "n/new.txt".to_owned())
        ]
    );
    vcs.add(repo, AddPaths::All).await.unwrap();
    assert_eq!(
        git_porcelain(repo),
        vec![
            ("M ".to_owned(), "a.txt".to_owned()),
            ("D ".to_owned(), "b.txt".to_owned()),
            ("A ".to_owned(), "n/new.txt".to_owned())
        ]
    );
    assert_eq!(
        git(repo, &["diff", "--cached", "--name-only"]),
        "a.txt\nb.txt\nn/new.txt\n"
    );
    // git can commit what vcs staged, and the result is sound.
    git(repo, &["commit", "-q", "-m", "staged by vcs"]);
    assert_fsck(repo);
    assert_eq!(git(repo, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn repositories_made_by_git_are_read_correctly() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("src/main.rs", "fn main() {}\n")]);
    let repo = dir.path();
    git(repo, &["checkout", "-q", "-b", "topic"]);
    write(repo, "src/main.rs", "fn main() {\n    run();\n}\n");
    git(
        repo,
        &["commit", "-q", "-am", "topic work\n\nTask-Id: from-git"],
    );
    git(repo, &["tag", "v1"]);
    git(repo, &["checkout", "-q", "main"]);
    // Pack everything so vcs reads packs and packed-refs, not just loose files.
    git(repo, &["gc", "-q"]);

    let vcs = vcs();
    let info = vcs.open(repo).await.unwrap();
    assert_eq!(info.branch.as_deref(), Some("main"));
    assert_eq!(info.head.unwrap(), git(repo, &["rev-parse", "HEAD"]).trim());
    let branches = vcs.list_branches(repo).await.unwrap();
    let names: Vec<(&str, bool)> = branches
        .iter()
        .map(|b| (b.name.as_str(), b.is_current))
        .collect();
    assert_eq!(names, vec![("main", true), ("topic", false)]);
    assert_eq!(branches[1].head, git(repo, &["rev-parse", "topic"]).trim());
    let log = vcs.log(repo, Some("v1".to_owned()), 5).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].summary, "topic work");
    assert_eq!(log[0].author_email, "git@example.test");
    assert!(log[0].message.contains("Task-Id: from-git"));
    assert_eq!(
        vcs.diff_revisions(repo, "main", "topic").await.unwrap(),
        git(repo, &["diff", "--no-renames", "main", "topic"])
    );
    assert!(vcs.status(repo).await.unwrap().is_empty());
}

#[tokio::test]
async fn open_refuses_a_plain_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = vcs().open(dir.path()).await.unwrap_err();
    assert!(matches!(err, VcsError::NotARepository { .. }), "{err}");
}

/// A realistic edit of a Rust file: git's default hunk-header context, additions, removals.
const LIB_BEFORE: &str = "use std::fmt;\n\npub struct Point {\n    x: i32,\n    y: i32,\n}\n\nimpl Point {\n    pub fn new(x: i32, y: i32) -> Self {\n        Point { x, y }\n    }\n\n    pub fn norm(&self) -> i32 {\n        self.x.abs() + self.y.abs()\n    }\n}\n\nimpl fmt::Display for Point {\n    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {\n        write!(f, \"({}, {})\", self.x, self.y)\n    }\n}\n";
const LIB_AFTER: &str = "use std::fmt;\n\npub struct Point {\n    x: i32,\n    y: i32,\n}\n\nimpl Point {\n    pub fn new(x: i32, y: i32) -> Self {\n        Point { x, y }\n    }\n\n    pub fn manhattan(&self) -> i32 {\n        self.x.abs() + self.y.abs()\n    }\n}\n\nimpl fmt::Display for Point {\n    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {\n        write!(f, \"<{}, {}>\", self.x, self.y)\n    }\n}\n";

async fn diff_scenario() -> (tempfile::TempDir, String) {
    let dir = git_repo_with_commit(&[
        ("src/lib.rs", LIB_BEFORE),
        ("notes.txt", "one\ntwo"),
        ("old.txt", "to be deleted\n"),
        ("script.sh", "echo hi\n"),
    ]);
    let repo = dir.path();
    let base = git(repo, &["rev-parse", "HEAD"]).trim().to_owned();
    write(repo, "src/lib.rs", LIB_AFTER);
    write(repo, "notes.txt", "one\ntwo\nthree\n");
    std::fs::remove_file(repo.join("old.txt")).unwrap();
    write(repo, "added.txt", "brand new\n");
    git(repo, &["add", "added.txt"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            repo.join("script.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    (dir, base)
}

#[tokio::test]
async fn worktree_diff_is_byte_identical_to_git_diff_head() {
    if !git_available() {
        return;
    }
    let (dir, _) = diff_scenario().await;
    let repo = dir.path();
    let ours = vcs().diff_worktree(repo).await.unwrap();
    let theirs = git(repo, &["diff", "--no-renames", "--no-color", "HEAD"]);
    assert_eq!(ours, theirs);
    insta::assert_snapshot!("worktree_diff", ours);
}

#[tokio::test]
async fn revision_diff_is_byte_identical_to_git_diff() {
    if !git_available() {
        return;
    }
    let (dir, base) = diff_scenario().await;
    let repo = dir.path();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "change"]);
    let ours = vcs().diff_revisions(repo, &base, "HEAD").await.unwrap();
    let theirs = git(repo, &["diff", "--no-renames", "--no-color", &base, "HEAD"]);
    assert_eq!(ours, theirs);
    insta::assert_snapshot!("revision_diff", ours);
    // The reverse direction, too.
    assert_eq!(
        vcs().diff_revisions(repo, "HEAD", &base).await.unwrap(),
        git(repo, &["diff", "--no-renames", "--no-color", "HEAD", &base])
    );
}

#[tokio::test]
async fn branches_tags_and_checkout() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("a.txt", "a\n")]);
    let repo = dir.path();
    let vcs = vcs();
    let seed = git(repo, &["rev-parse", "HEAD"]).trim().to_owned();
    vcs.create_branch(repo, "feature", None).await.unwrap();
    let err = vcs.create_branch(repo, "feature", None).await.unwrap_err();
    assert!(matches!(err, VcsError::AlreadyExists { .. }), "{err}");
    let err = vcs.create_branch(repo, "-evil", None).await.unwrap_err();
    assert!(matches!(err, VcsError::InvalidRefName { .. }), "{err}");
    let err = vcs
        .create_branch(repo, "x", Some("no-such-rev".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::RevisionNotFound { .. }), "{err}");

    vcs.switch_branch(repo, "feature").await.unwrap();
    assert_eq!(
        vcs.current_branch(repo).await.unwrap().as_deref(),
        Some("feature")
    );
    write(repo, "b.txt", "b\n");
    let commit = vcs
        .commit(repo, request("add b", &["b.txt"], None))
        .await
        .unwrap();

    // Annotated and lightweight tags, as git sees them.
    vcs.tag(repo, "v1.0", "feature", Some("Release 1.0".into()))
        .await
        .unwrap();
    let light = vcs.tag(repo, "seed", &seed, None).await.unwrap();
    assert_eq!(light, seed);
    assert_eq!(git(repo, &["cat-file", "-t", "v1.0"]).trim(), "tag");
    assert_eq!(git(repo, &["rev-parse", "v1.0^{commit}"]).trim(), commit.id);
    assert_eq!(
        git(repo, &["tag", "-l", "--format=%(contents)", "v1.0"]).trim(),
        "Release 1.0"
    );
    assert!(matches!(
        vcs.tag(repo, "seed", "HEAD", None).await.unwrap_err(),
        VcsError::AlreadyExists { .. }
    ));

    // Checking out a tag detaches HEAD; a branch name attaches it again.
    vcs.checkout(repo, "seed").await.unwrap();
    assert_eq!(vcs.current_branch(repo).await.unwrap(), None);
    assert!(!repo.join("b.txt").exists());
    let err = vcs
        .commit(repo, request("detached", &["a.txt"], None))
        .await
        .unwrap_err();
    assert!(matches!(err, VcsError::DetachedHead { .. }), "{err}");
    vcs.checkout(repo, "feature").await.unwrap();
    assert_eq!(
        vcs.current_branch(repo).await.unwrap().as_deref(),
        Some("feature")
    );
    assert_eq!(read(repo, "b.txt"), "b\n");

    // Deleting: not the checked-out branch, fine otherwise.
    vcs.create_branch(repo, "scratch", Some(seed.clone()))
        .await
        .unwrap();
    let err = vcs.delete_branch(repo, "feature").await.unwrap_err();
    assert!(matches!(err, VcsError::BranchCheckedOut { .. }), "{err}");
    vcs.delete_branch(repo, "scratch").await.unwrap();
    let names: Vec<String> = vcs
        .list_branches(repo)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["feature", "main"]);
    assert_eq!(
        git(repo, &["branch", "--format=%(refname:short)"]),
        "feature\nmain\n"
    );
    assert_fsck(repo);
}

#[tokio::test]
async fn status_reports_conflicts_and_git_agrees() {
    if !git_available() {
        return;
    }
    let dir = git_repo_with_commit(&[("f.txt", "base\n")]);
    let repo = dir.path();
    git(repo, &["checkout", "-q", "-b", "other"]);
    write(repo, "f.txt", "other\n");
    git(repo, &["commit", "-q", "-am", "other"]);
    git(repo, &["checkout", "-q", "main"]);
    write(repo, "f.txt", "main\n");
    git(repo, &["commit", "-q", "-am", "main"]);
    assert!(!git_ok(repo, &["merge", "-q", "other"]));
    let status = vcs().status(repo).await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].staged, Some(ChangeKind::Conflicted));
    assert_eq!(
        git_porcelain(repo),
        vec![("UU".to_owned(), "f.txt".to_owned())]
    );
    assert_eq!(status[0].porcelain_code(), "UU");
}
