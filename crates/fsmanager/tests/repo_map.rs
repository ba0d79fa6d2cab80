#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The token-budgeted repo map.

use std::time::{Duration, SystemTime};

use agentd_fsmanager::{FileSystemSettings, RepoMapOptions, Workspace, estimate_tokens};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn repo() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(FileSystemSettings::new(dir.path())).unwrap();
    ws.write("src/lib.rs", &fixture("inventory.rs")).unwrap();
    ws.write("billing/billing.py", &fixture("billing.py"))
        .unwrap();
    ws.write("web/router.js", &fixture("router.js")).unwrap();
    ws.write("web/store.ts", &fixture("store.ts")).unwrap();
    ws.write("web/ui/TodoList.tsx", &fixture("TodoList.tsx"))
        .unwrap();
    ws.write("cache/server.go", &fixture("server.go")).unwrap();
    ws.write("main.go", "package main\n\nfunc main() {}\n")
        .unwrap();
    ws.write("README.md", "# not code\n").unwrap();
    ws.write("vendor/dep.rs", "fn vendored() {}\n").unwrap();
    ws.write(".gitignore", "vendor/\n").unwrap();
    // Deterministic recency: everything old, except one file.
    let old = SystemTime::now() - Duration::from_secs(86_400);
    for path in [
        "src/lib.rs",
        "billing/billing.py",
        "web/router.js",
        "web/store.ts",
        "web/ui/TodoList.tsx",
        "cache/server.go",
        "main.go",
    ] {
        let file = std::fs::File::options()
            .write(true)
            .open(ws.root_path().join(path))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    let recent = std::fs::File::options()
        .write(true)
        .open(ws.root_path().join("web/store.ts"))
        .unwrap();
    recent.set_modified(SystemTime::now()).unwrap();
    (dir, ws)
}

#[test]
fn large_budget_includes_every_source_file() {
    let (_dir, ws) = repo();
    let map = ws
        .repo_map(&RepoMapOptions {
            token_budget: Some(100_000),
            focus: vec![],
        })
        .unwrap();
    assert!(map.omitted.is_empty());
    // Shallow first; among equals the recently modified one first.
    assert_eq!(
        map.included,
        vec![
            "main.go",
            "web/store.ts",
            "billing/billing.py",
            "cache/server.go",
            "src/lib.rs",
            "web/router.js",
            "web/ui/TodoList.tsx"
        ]
    );
    insta::assert_snapshot!(map.text);
}

#[test]
fn small_budget_is_respected_and_omissions_are_named() {
    let (_dir, ws) = repo();
    for budget in [30, 80, 150, 300] {
        let map = ws
            .repo_map(&RepoMapOptions {
                token_budget: Some(budget),
                focus: vec![],
            })
            .unwrap();
        assert!(
            map.estimated_tokens <= budget,
            "{budget}: {}",
            map.estimated_tokens
        );
        assert_eq!(map.estimated_tokens, estimate_tokens(&map.text));
        assert_eq!(map.included.len() + map.omitted.len(), 7, "{budget}");
        assert!(!map.omitted.is_empty(), "{budget}");
        assert!(
            map.text
                .contains(&format!("[{} more source files omitted", map.omitted.len())),
            "{budget}: {}",
            map.text
        );
    }
    let tiny = ws
        .repo_map(&RepoMapOptions {
            token_budget: Some(5),
            focus: vec![],
        })
        .unwrap();
    assert!(tiny.included.is_empty());
    assert!(tiny.estimated_tokens <= 5);
}

#[test]
fn focus_files_come_first() {
    let (_dir, ws) = repo();
    let map = ws
        .repo_map(&RepoMapOptions {
            token_budget: Some(120),
            focus: vec!["cache".into(), "web/ui/*.tsx".into()],
        })
        .unwrap();
    assert_eq!(
        map.included.first().map(String::as_str),
        Some("cache/server.go"),
        "{map:?}"
    );
    assert!(
        map.included.contains(&"web/ui/TodoList.tsx".to_owned())
            || map.omitted.first().map(String::as_str) == Some("web/ui/TodoList.tsx")
    );
    assert!(map.text.starts_with("cache/server.go\n"));
}

#[test]
fn default_budget_comes_from_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(FileSystemSettings {
        repo_map_tokens: 40,
        ..FileSystemSettings::new(dir.path())
    })
    .unwrap();
    for i in 0..20 {
        ws.write(&format!("m{i:02}.py"), &format!("def f{i}():\n    pass\n"))
            .unwrap();
    }
    let map = ws.repo_map(&RepoMapOptions::default()).unwrap();
    assert!(map.estimated_tokens <= 40);
    assert!(!map.omitted.is_empty());
}
