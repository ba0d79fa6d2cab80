#![allow(clippy::unwrap_used, clippy::expect_used)]
//! read, write, create, delete, move, list, find, search, limits, backups, settings.

use std::path::Path;
use std::sync::Arc;

use agentd_fsmanager::{
    EntryKind, FileManager, FileSystemSettings, FsError, Language, SearchQuery, Workspace,
};

fn workspace() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(FileSystemSettings::new(dir.path().join("ws"))).unwrap();
    (dir, ws)
}

fn workspace_with(
    settings: impl FnOnce(FileSystemSettings) -> FileSystemSettings,
) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(settings(FileSystemSettings::new(dir.path().join("ws")))).unwrap();
    (dir, ws)
}

#[test]
fn workspace_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Workspace>();
    let (_dir, ws) = workspace();
    let shared: Arc<dyn FileManager> = Arc::new(ws.clone());
    std::thread::scope(|s| {
        for i in 0..4 {
            let shared = Arc::clone(&shared);
            s.spawn(move || shared.write(&format!("t{i}.txt"), "x").unwrap());
        }
    });
    assert_eq!(ws.list("").unwrap().len(), 4);
}

#[test]
fn write_then_read_creates_parents_and_reports() {
    let (_dir, ws) = workspace();
    let report = ws.write("src/deep/new.txt", "hello\n").unwrap();
    assert_eq!(report.path, "src/deep/new.txt");
    assert!(report.created);
    assert!(report.backup.is_none());
    assert_eq!(report.bytes, 6);
    assert_eq!(ws.read("./src/deep/../deep/new.txt").unwrap(), "hello\n");
    let again = ws.write("src/deep/new.txt", "bye\n").unwrap();
    assert!(!again.created);
    assert!(again.backup.is_some());
    assert_eq!(ws.read("src/deep/new.txt").unwrap(), "bye\n");
}

#[test]
fn write_keeps_permission_bits() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, ws) = workspace();
    ws.write("run.sh", "#!/bin/sh\n").unwrap();
    let path = ws.root_path().join("run.sh");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.write("run.sh", "#!/bin/sh\necho hi\n").unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o755
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4755)).unwrap();
    ws.write("run.sh", "#!/bin/sh\n").unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o755,
        "setuid is dropped"
    );
}

#[test]
fn create_fails_if_anything_exists() {
    let (_dir, ws) = workspace();
    ws.create("a.txt", "one").unwrap();
    assert!(matches!(
        ws.create("a.txt", "two"),
        Err(FsError::AlreadyExists { .. })
    ));
    assert_eq!(ws.read("a.txt").unwrap(), "one");
    ws.write("d/x", "x").unwrap();
    assert!(matches!(
        ws.create("d", "x"),
        Err(FsError::AlreadyExists { .. })
    ));
    assert!(matches!(
        ws.write("d", "x"),
        Err(FsError::IsDirectory { .. })
    ));
}

#[test]
fn read_limits_and_binary_detection() {
    let (_dir, ws) = workspace_with(|s| FileSystemSettings {
        max_read_bytes: 10,
        max_write_bytes: 20,
        ..s
    });
    ws.write("small.txt", "0123456789").unwrap();
    assert_eq!(ws.read("small.txt").unwrap(), "0123456789");
    ws.write("big.txt", "0123456789X").unwrap();
    assert!(matches!(
        ws.read("big.txt"),
        Err(FsError::TooLarge {
            size: 11,
            limit: 10,
            ..
        })
    ));
    assert!(matches!(
        ws.write("huge.txt", &"x".repeat(21)),
        Err(FsError::TooLarge { limit: 20, .. })
    ));
    std::fs::write(ws.root_path().join("nul.bin"), b"ab\0cd").unwrap();
    assert!(matches!(ws.read("nul.bin"), Err(FsError::Binary { .. })));
    std::fs::write(ws.root_path().join("latin1.txt"), b"caf\xe9").unwrap();
    assert!(matches!(ws.read("latin1.txt"), Err(FsError::Binary { .. })));
    assert!(matches!(
        ws.read("missing.txt"),
        Err(FsError::NotFound { .. })
    ));
    assert!(matches!(ws.read("."), Err(FsError::IsDirectory { .. })));
    ws.write("dir/f", "x").unwrap();
    assert!(matches!(ws.read("dir"), Err(FsError::IsDirectory { .. })));
    assert!(matches!(
        ws.read("dir/f/g"),
        Err(FsError::NotDirectory { .. })
    ));
}

#[test]
fn delete_files_links_and_empty_dirs() {
    let (_dir, ws) = workspace();
    ws.write("d/f.txt", "content").unwrap();
    assert!(matches!(
        ws.delete("d"),
        Err(FsError::DirectoryNotEmpty { .. })
    ));
    ws.delete("d/f.txt").unwrap();
    assert!(matches!(ws.read("d/f.txt"), Err(FsError::NotFound { .. })));
    // The deleted content is restorable.
    let backups = ws.list_backups("d/f.txt").unwrap();
    assert_eq!(backups.len(), 1);
    ws.restore_backup("d/f.txt", &backups[0].id).unwrap();
    assert_eq!(ws.read("d/f.txt").unwrap(), "content");
    ws.delete("d/f.txt").unwrap();
    ws.delete("d").unwrap();
    assert!(ws.list("").unwrap().is_empty());
    assert!(matches!(
        ws.delete("nothing"),
        Err(FsError::NotFound { .. })
    ));
}

#[test]
fn rename_never_clobbers() {
    let (_dir, ws) = workspace();
    ws.write("a.txt", "a").unwrap();
    ws.write("b.txt", "b").unwrap();
    assert!(matches!(
        ws.rename("a.txt", "b.txt"),
        Err(FsError::AlreadyExists { .. })
    ));
    assert_eq!(ws.read("b.txt").unwrap(), "b");
    ws.rename("a.txt", "moved/into/c.txt").unwrap();
    assert_eq!(ws.read("moved/into/c.txt").unwrap(), "a");
    ws.rename("moved", "renamed_dir").unwrap();
    assert_eq!(ws.read("renamed_dir/into/c.txt").unwrap(), "a");
    assert!(matches!(
        ws.rename("nope", "x"),
        Err(FsError::NotFound { .. })
    ));
}

#[test]
fn list_hides_reserved_entries() {
    let (_dir, ws) = workspace();
    ws.write("b.txt", "bb").unwrap();
    ws.write("a/x.rs", "fn x() {}").unwrap();
    std::fs::create_dir(ws.root_path().join(".git")).unwrap();
    std::fs::write(ws.root_path().join(".agentd-tmp.1.2.3"), "tmp").unwrap();
    std::os::unix::fs::symlink("b.txt", ws.root_path().join("link")).unwrap();
    let entries = ws.list(".").unwrap();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.size))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", EntryKind::Directory, None),
            ("b.txt", EntryKind::File, Some(2)),
            ("link", EntryKind::Symlink, None)
        ]
    );
    assert_eq!(ws.list("a").unwrap()[0].path, "a/x.rs");
    assert!(matches!(
        ws.list("b.txt"),
        Err(FsError::NotDirectory { .. })
    ));
}

#[test]
fn find_honours_gitignore() {
    let (_dir, ws) = workspace();
    ws.write(".gitignore", "target/\n*.log\n").unwrap();
    ws.write("src/main.rs", "").unwrap();
    ws.write("src/util/mod.rs", "").unwrap();
    ws.write("target/debug/build.rs", "").unwrap();
    ws.write("app.log", "").unwrap();
    ws.write("sub/.gitignore", "generated.rs\n").unwrap();
    ws.write("sub/generated.rs", "").unwrap();
    ws.write("sub/kept.rs", "").unwrap();
    let found = ws.find("*.rs", 100).unwrap();
    assert_eq!(
        found.paths,
        vec!["src/main.rs", "src/util/mod.rs", "sub/kept.rs"]
    );
    assert!(!found.truncated);
    assert_eq!(ws.find("src/*.rs", 100).unwrap().paths, vec!["src/main.rs"]);
    assert_eq!(
        ws.find("src/**/*.rs", 100).unwrap().paths,
        vec!["src/main.rs", "src/util/mod.rs"]
    );
    let limited = ws.find("*.rs", 2).unwrap();
    assert_eq!(limited.paths.len(), 2);
    assert!(limited.truncated);
    assert!(matches!(
        ws.find("[", 10),
        Err(FsError::InvalidPattern { .. })
    ));
    // Backups and temp files never show up.
    assert!(
        ws.find("*", 100)
            .unwrap()
            .paths
            .iter()
            .all(|p| !p.starts_with(".agentd"))
    );
}

#[test]
fn search_literal_and_regex_with_positions() {
    let (_dir, ws) = workspace_with(|s| FileSystemSettings {
        search_max_results: 3,
        ..s
    });
    ws.write("a.txt", "needle here\nno\n  héé needle\n")
        .unwrap();
    ws.write("b.rs", "fn needle() {}\n").unwrap();
    ws.write("ignored/x.txt", "needle").unwrap();
    ws.write(".gitignore", "ignored/\n").unwrap();
    std::fs::write(ws.root_path().join("bin.dat"), b"needle\0").unwrap();
    let result = ws
        .search(&SearchQuery {
            max_results: Some(10),
            ..SearchQuery::literal("needle")
        })
        .unwrap();
    let places: Vec<_> = result
        .matches
        .iter()
        .map(|m| (m.path.as_str(), m.line, m.column))
        .collect();
    // The cap from the settings (3) wins over the query's 10.
    assert_eq!(
        places,
        vec![("a.txt", 1, 1), ("a.txt", 3, 7), ("b.rs", 1, 4)]
    );
    assert!(!result.truncated);
    assert_eq!(result.files_skipped, 1);
    assert_eq!(result.matches[1].text, "  héé needle");

    let regex = ws
        .search(&SearchQuery {
            path_glob: Some("*.rs".into()),
            ..SearchQuery::regex(r"fn \w+\(")
        })
        .unwrap();
    assert_eq!(regex.matches.len(), 1);
    let insensitive = ws
        .search(&SearchQuery {
            case_insensitive: true,
            ..SearchQuery::literal("NEEDLE")
        })
        .unwrap();
    assert_eq!(insensitive.matches.len(), 3);
    let truncated = ws
        .search(&SearchQuery {
            max_results: Some(1),
            ..SearchQuery::literal("needle")
        })
        .unwrap();
    assert!(truncated.truncated);
    // Literal mode escapes regex syntax.
    ws.write("c.txt", "a.b a+b").unwrap();
    let literal = ws.search(&SearchQuery::literal("a+b")).unwrap();
    assert_eq!((literal.matches.len(), literal.matches[0].column), (1, 5));
    assert!(matches!(
        ws.search(&SearchQuery::regex("(")),
        Err(FsError::InvalidPattern { .. })
    ));
}

#[test]
fn search_query_deserialises_from_tool_json() {
    let query: SearchQuery = serde_json::from_str(r#"{"pattern": "x", "regex": true}"#).unwrap();
    assert_eq!(query, SearchQuery::regex("x"));
    assert!(serde_json::from_str::<SearchQuery>(r#"{"pattern": "x", "bogus": 1}"#).is_err());
}

#[test]
fn backups_are_bounded_per_file_and_restorable() {
    let (_dir, ws) = workspace_with(|s| FileSystemSettings {
        backup_count: 3,
        ..s
    });
    for i in 0..6 {
        ws.write("f.txt", &format!("version {i}")).unwrap();
    }
    let backups = ws.list_backups("f.txt").unwrap();
    assert_eq!(backups.len(), 3);
    // Newest first: the previous contents of writes 5, 4 and 3 ("version 4" .. "version 2").
    assert!(
        backups
            .windows(2)
            .all(|w| w[0].id > w[1].id && w[0].created_unix_ms >= w[1].created_unix_ms)
    );
    assert!(backups.iter().all(|b| b.size == 9 && b.path == "f.txt"));
    ws.restore_backup("f.txt", &backups[2].id).unwrap();
    assert_eq!(ws.read("f.txt").unwrap(), "version 2");
    ws.restore_backup("f.txt", &backups[0].id).unwrap();
    assert_eq!(ws.read("f.txt").unwrap(), "version 4");
    assert!(matches!(
        ws.restore_backup("f.txt", "../../etc/passwd"),
        Err(FsError::BackupNotFound { .. })
    ));
    assert!(matches!(
        ws.restore_backup("f.txt", "00000000000000000000-000000"),
        Err(FsError::BackupNotFound { .. })
    ));
    assert!(ws.list_backups("other.txt").unwrap().is_empty());
    // Backups live where agents cannot address them, and git ignores them.
    assert!(matches!(
        ws.read(".agentd/backups"),
        Err(FsError::Reserved { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(ws.root_path().join(".agentd/.gitignore")).unwrap(),
        "*\n"
    );
}

#[test]
fn backups_are_bounded_in_total_and_per_content() {
    let (_dir, ws) = workspace_with(|s| FileSystemSettings {
        backup_count: 10,
        backup_max_total_bytes: 25,
        backup_max_file_bytes: 12,
        ..s
    });
    for name in ["a", "b", "c"] {
        ws.write(name, "0123456789").unwrap();
        ws.write(name, "next").unwrap();
    }
    // 3 backups of 10 bytes exceed 25: the oldest (of `a`) was evicted.
    assert!(ws.list_backups("a").unwrap().is_empty());
    assert_eq!(ws.list_backups("b").unwrap().len(), 1);
    assert_eq!(ws.list_backups("c").unwrap().len(), 1);
    ws.write("big", "0123456789abc").unwrap();
    let report = ws.write("big", "small").unwrap();
    assert!(
        report.backup.is_none(),
        "13 bytes are over the per-content limit of 12"
    );
}

#[test]
fn backups_can_live_outside_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let settings = FileSystemSettings {
        backup_path: Some(dir.path().join("backups")),
        ..FileSystemSettings::new(dir.path().join("ws"))
    };
    let ws = Workspace::open(settings).unwrap();
    ws.write("f", "1").unwrap();
    ws.write("f", "2").unwrap();
    assert_eq!(ws.list_backups("f").unwrap().len(), 1);
    assert!(!dir.path().join("ws/.agentd").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn syntax_errors_are_reported_but_the_write_is_kept() {
    let (_dir, ws) = workspace();
    let report = ws
        .write("src/lib.rs", "fn main() {\n    let x = ;\n}\n")
        .unwrap();
    assert_eq!(report.language, Some(Language::Rust));
    assert_eq!(report.syntax_errors.len(), 1);
    let error = &report.syntax_errors[0];
    assert_eq!(
        (error.line, error.column, error.message.as_str()),
        (2, 11, "unexpected \"=\"")
    );
    assert_eq!(
        ws.read("src/lib.rs").unwrap(),
        "fn main() {\n    let x = ;\n}\n"
    );
    let clean = ws.write("app.py", "def f():\n    return 1\n").unwrap();
    assert!(clean.syntax_errors.is_empty());
    let text = ws.write("notes.md", "fn (").unwrap();
    assert_eq!(text.language, None);

    let (_dir, quiet) = workspace_with(|s| FileSystemSettings {
        syntax_check_on_write: false,
        ..s
    });
    assert!(
        quiet
            .write("x.rs", "fn (")
            .unwrap()
            .syntax_errors
            .is_empty()
    );
}

#[test]
fn settings_defaults_and_strictness() {
    let settings: FileSystemSettings = serde_json::from_str(r#"{"workspace_path": "/w"}"#).unwrap();
    assert_eq!(settings, FileSystemSettings::new("/w"));
    assert_eq!(settings.git_repo_path(), Path::new("/w"));
    assert_eq!(settings.max_read_bytes, 1 << 20);
    assert_eq!(settings.backup_count, 10);
    let with_repo: FileSystemSettings = serde_json::from_str(
        r#"{"workspace_path": "/w", "git_repo_path": "/r", "backup_count": 2}"#,
    )
    .unwrap();
    assert_eq!(with_repo.git_repo_path(), Path::new("/r"));
    let unknown =
        serde_json::from_str::<FileSystemSettings>(r#"{"workspace_path": "/w", "max_reads": 1}"#);
    assert!(unknown.unwrap_err().to_string().contains("max_reads"));
    let missing = serde_json::from_str::<FileSystemSettings>("{}");
    assert!(missing.unwrap_err().to_string().contains("workspace_path"));
}

#[test]
fn errors_name_the_path() {
    let (_dir, ws) = workspace();
    let message = ws.read("src/missing.rs").unwrap_err().to_string();
    assert_eq!(message, "path \"src/missing.rs\" does not exist");
    let message = ws.write("../x", "").unwrap_err().to_string();
    assert_eq!(message, "path \"../x\" leads outside the workspace");
}
