#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Path-escape attempts, as an attacker would make them. Every case also checks that
//! nothing outside the workspace changed.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentd_fsmanager::{FileSystemSettings, FsError, SpecialKind, Workspace};

const SECRET: &str = "SECRET-OUTSIDE";

struct Jail {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    ws: Workspace,
}

fn jail() -> Jail {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    std::fs::create_dir_all(root.join("real")).unwrap();
    std::fs::write(root.join("real/f.txt"), "inside").unwrap();
    std::fs::write(root.join("f.txt"), "inside").unwrap();
    let ws = Workspace::open(FileSystemSettings::new(&root)).unwrap();
    Jail {
        _dir: dir,
        root,
        outside,
        ws,
    }
}

/// Every path under `dir` with its content (or link target).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_symlink() {
                out.insert(
                    key,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(key, "<dir>".into());
                stack.push(path);
            } else {
                out.insert(key, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Read,
    Write,
    Create,
    Delete,
    List,
    RenameFrom,
    RenameTo,
    ParseCode,
}

type Setup = fn(&Jail) -> bool;
type Check = fn(&Jail, &Result<String, FsError>) -> bool;

struct Case {
    name: &'static str,
    setup: Setup,
    op: Op,
    path: String,
    expect: Check,
}

fn no_setup(_: &Jail) -> bool {
    true
}

fn run(jail: &Jail, op: Op, path: &str) -> Result<String, FsError> {
    let ws = &jail.ws;
    match op {
        Op::Read => ws.read(path),
        Op::Write => ws.write(path, "pwned").map(|r| r.path),
        Op::Create => ws.create(path, "pwned").map(|r| r.path),
        Op::Delete => ws.delete(path).map(|()| String::new()),
        Op::List => ws.list(path).map(|e| format!("{e:?}")),
        Op::RenameFrom => ws.rename(path, "stolen").map(|()| String::new()),
        Op::RenameTo => ws.rename("f.txt", path).map(|()| String::new()),
        Op::ParseCode => ws.parse_code(path).map(|o| format!("{o:?}")),
    }
}

macro_rules! expect {
    ($pattern:pat) => {
        |_: &Jail, r: &Result<String, FsError>| matches!(r, $pattern)
    };
}

fn written_inside(path: &'static str) -> Check {
    // A closure cannot capture here (fn pointer), so each case names its literal path.
    match path {
        "%2e%2e/%2e%2e/pwned" => |j, r| r.is_ok() && j.root.join("%2e%2e/%2e%2e/pwned").is_file(),
        "~" => |j, r| r.is_ok() && j.root.join("~").is_file(),
        "\u{2024}\u{2024}/x" => |j, r| r.is_ok() && j.root.join("\u{2024}\u{2024}/x").is_file(),
        "..." => |j, r| r.is_ok() && j.root.join("...").is_file(),
        "a/./b/../c" => |j, r| r.is_ok() && j.root.join("a/c").is_file(),
        _ => unreachable!("unknown inside path {path}"),
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "parent dir",
            setup: no_setup,
            op: Op::Read,
            path: "../outside/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "parent dir write",
            setup: no_setup,
            op: Op::Write,
            path: "../outside/pwned".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "climb after descending",
            setup: no_setup,
            op: Op::Read,
            path: "a/../../outside/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "deep climb write",
            setup: no_setup,
            op: Op::Write,
            path: "a/b/../../../x".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "dot slash climb",
            setup: no_setup,
            op: Op::Read,
            path: "./../outside/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "double slashes climb",
            setup: no_setup,
            op: Op::Read,
            path: "a//..//..//outside/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "absolute",
            setup: no_setup,
            op: Op::Read,
            path: "/etc/passwd".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "absolute double slash",
            setup: no_setup,
            op: Op::Write,
            path: "//tmp/pwned".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "percent-encoded dots read",
            setup: no_setup,
            op: Op::Read,
            path: "%2e%2e/outside/secret.txt".into(),
            expect: expect!(Err(FsError::NotFound { .. })),
        },
        Case {
            name: "percent-encoded dots write stays literal",
            setup: no_setup,
            op: Op::Write,
            path: "%2e%2e/%2e%2e/pwned".into(),
            expect: written_inside("%2e%2e/%2e%2e/pwned"),
        },
        Case {
            name: "tilde is not home",
            setup: no_setup,
            op: Op::Read,
            path: "~/.bashrc".into(),
            expect: expect!(Err(FsError::NotFound { .. })),
        },
        Case {
            name: "tilde write stays literal",
            setup: no_setup,
            op: Op::Write,
            path: "~".into(),
            expect: written_inside("~"),
        },
        Case {
            name: "three dots is a name",
            setup: no_setup,
            op: Op::Write,
            path: "...".into(),
            expect: written_inside("..."),
        },
        Case {
            name: "inner dots normalise inside",
            setup: no_setup,
            op: Op::Write,
            path: "a/./b/../c".into(),
            expect: written_inside("a/./b/../c"),
        },
        Case {
            name: "NUL byte",
            setup: no_setup,
            op: Op::Read,
            path: "f.txt\0../../etc/passwd".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "backslash climb",
            setup: no_setup,
            op: Op::Write,
            path: "..\\outside\\pwned".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "backslash absolute",
            setup: no_setup,
            op: Op::Read,
            path: "\\etc\\passwd".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "newline in name",
            setup: no_setup,
            op: Op::Write,
            path: "a\nb".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "bidi override",
            setup: no_setup,
            op: Op::Write,
            path: "invoice\u{202E}fdp.exe".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "zero-width char hiding .git",
            setup: no_setup,
            op: Op::Write,
            path: ".g\u{200B}it/config".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "fullwidth dots are names",
            setup: no_setup,
            op: Op::Read,
            path: "\u{FF0E}\u{FF0E}/outside/secret.txt".into(),
            expect: expect!(Err(FsError::NotFound { .. })),
        },
        Case {
            name: "one-dot leaders are names",
            setup: no_setup,
            op: Op::Write,
            path: "\u{2024}\u{2024}/x".into(),
            expect: written_inside("\u{2024}\u{2024}/x"),
        },
        Case {
            name: "very long path",
            setup: no_setup,
            op: Op::Write,
            path: "a/".repeat(3000),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: "very long component",
            setup: no_setup,
            op: Op::Write,
            path: "x".repeat(300),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
        Case {
            name: ".git config",
            setup: no_setup,
            op: Op::Write,
            path: ".git/config".into(),
            expect: expect!(Err(FsError::Reserved { .. })),
        },
        Case {
            name: "nested .GIT hook",
            setup: no_setup,
            op: Op::Write,
            path: "sub/.GIT/hooks/pre-commit".into(),
            expect: expect!(Err(FsError::Reserved { .. })),
        },
        Case {
            name: "backup dir",
            setup: no_setup,
            op: Op::Read,
            path: ".agentd/backups".into(),
            expect: expect!(Err(FsError::Reserved { .. })),
        },
        Case {
            name: "backup dir via climb",
            setup: no_setup,
            op: Op::List,
            path: "real/../.agentd".into(),
            expect: expect!(Err(FsError::Reserved { .. })),
        },
        Case {
            name: "list parent",
            setup: no_setup,
            op: Op::List,
            path: "..".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "rename to outside",
            setup: no_setup,
            op: Op::RenameTo,
            path: "../outside/stolen".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "delete outside",
            setup: no_setup,
            op: Op::Delete,
            path: "../outside/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "delete root",
            setup: no_setup,
            op: Op::Delete,
            path: ".".into(),
            expect: expect!(Err(FsError::InvalidPath { .. })),
        },
    ];
    let symlink_cases = vec![
        Case {
            name: "absolute symlink dir",
            setup: |j| symlink(&j.outside, j.root.join("out")).is_ok(),
            op: Op::Read,
            path: "out/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "absolute symlink dir write",
            setup: |j| symlink(&j.outside, j.root.join("out")).is_ok(),
            op: Op::Write,
            path: "out/pwned".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "symlink dir, deeper new dirs",
            setup: |j| symlink(&j.outside, j.root.join("out")).is_ok(),
            op: Op::Write,
            path: "out/dir/new/pwned".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "relative symlink dir",
            setup: |j| symlink("../outside", j.root.join("rel")).is_ok(),
            op: Op::Read,
            path: "rel/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "intermediate symlink deep",
            setup: |j| symlink("../../outside", j.root.join("real/up")).is_ok(),
            op: Op::Write,
            path: "real/up/dir/pwned".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "chained symlinks",
            setup: |j| {
                symlink("hop2", j.root.join("hop1")).is_ok()
                    && symlink(&j.outside, j.root.join("hop2")).is_ok()
            },
            op: Op::Read,
            path: "hop1/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "symlink file to outside read",
            setup: |j| symlink(j.outside.join("secret.txt"), j.root.join("link")).is_ok(),
            op: Op::Read,
            path: "link".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "symlink file to outside write",
            setup: |j| symlink(j.outside.join("secret.txt"), j.root.join("link")).is_ok(),
            op: Op::Write,
            path: "link".into(),
            expect: expect!(Err(FsError::Symlink { .. })),
        },
        Case {
            name: "symlink file to outside create",
            setup: |j| symlink(j.outside.join("secret.txt"), j.root.join("link")).is_ok(),
            op: Op::Create,
            path: "link".into(),
            expect: expect!(Err(FsError::AlreadyExists { .. })),
        },
        Case {
            name: "dangling symlink to outside create",
            setup: |j| symlink(j.outside.join("new.txt"), j.root.join("link")).is_ok(),
            op: Op::Create,
            path: "link".into(),
            expect: expect!(Err(FsError::AlreadyExists { .. })),
        },
        Case {
            name: "delete symlink removes only the link",
            setup: |j| symlink(j.outside.join("secret.txt"), j.root.join("link")).is_ok(),
            op: Op::Delete,
            path: "link".into(),
            expect: |j, r| r.is_ok() && std::fs::symlink_metadata(j.root.join("link")).is_err(),
        },
        Case {
            name: "rename through symlink dir",
            setup: |j| symlink(&j.outside, j.root.join("out")).is_ok(),
            op: Op::RenameFrom,
            path: "out/secret.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "rename into symlink dir",
            setup: |j| symlink(&j.outside, j.root.join("out")).is_ok(),
            op: Op::RenameTo,
            path: "out/stolen".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "list symlink dir",
            setup: |j| symlink(&j.outside, j.root.join("out")).is_ok(),
            op: Op::List,
            path: "out".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "parse_code through symlink",
            setup: |j| {
                std::fs::write(j.outside.join("x.rs"), "fn x() {}").is_ok()
                    && symlink(&j.outside, j.root.join("out")).is_ok()
            },
            op: Op::ParseCode,
            path: "out/x.rs".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "symlink to /dev/null",
            setup: |j| symlink("/dev/null", j.root.join("null")).is_ok(),
            op: Op::Read,
            path: "null".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "symlink to /proc/self/root",
            setup: |j| symlink("/proc/self/root", j.root.join("proc")).is_ok(),
            op: Op::Read,
            path: "proc/etc/passwd".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "symlink inside stays usable",
            setup: |j| symlink("real", j.root.join("alias")).is_ok(),
            op: Op::Read,
            path: "alias/f.txt".into(),
            expect: |_, r| r.as_deref().ok() == Some("inside"),
        },
        Case {
            name: "symlink climbing then re-entering",
            setup: |j| symlink("../root/real", j.root.join("loop")).is_ok(),
            op: Op::Read,
            path: "loop/f.txt".into(),
            expect: expect!(Err(FsError::Escape { .. })),
        },
        Case {
            name: "hard link to outside file read",
            setup: |j| {
                std::fs::hard_link(j.outside.join("secret.txt"), j.root.join("hard")).is_ok()
            },
            op: Op::Read,
            path: "hard".into(),
            expect: expect!(Err(FsError::HardLinked { links: 2, .. })),
        },
        Case {
            name: "hard link to outside file write replaces the name",
            setup: |j| {
                std::fs::hard_link(j.outside.join("secret.txt"), j.root.join("hard")).is_ok()
            },
            op: Op::Write,
            path: "hard".into(),
            expect: |j, r| {
                r.is_ok() && std::fs::read_to_string(j.root.join("hard")).unwrap() == "pwned"
            },
        },
    ];
    let special_cases = vec![
        Case {
            name: "fifo read does not block",
            setup: |j| mkfifo(&j.root.join("pipe")),
            op: Op::Read,
            path: "pipe".into(),
            expect: expect!(Err(FsError::SpecialFile {
                kind: SpecialKind::Fifo,
                ..
            })),
        },
        Case {
            name: "fifo write",
            setup: |j| mkfifo(&j.root.join("pipe")),
            op: Op::Write,
            path: "pipe".into(),
            expect: expect!(Err(FsError::SpecialFile {
                kind: SpecialKind::Fifo,
                ..
            })),
        },
        Case {
            name: "fifo through inside symlink",
            setup: |j| {
                mkfifo(&j.root.join("pipe")) && symlink("pipe", j.root.join("to_pipe")).is_ok()
            },
            op: Op::Read,
            path: "to_pipe".into(),
            expect: expect!(Err(FsError::SpecialFile {
                kind: SpecialKind::Fifo,
                ..
            })),
        },
        Case {
            name: "fifo delete",
            setup: |j| mkfifo(&j.root.join("pipe")),
            op: Op::Delete,
            path: "pipe".into(),
            expect: expect!(Err(FsError::SpecialFile { .. })),
        },
        Case {
            name: "socket",
            setup: |j| {
                std::os::unix::net::UnixListener::bind(j.root.join("sock"))
                    .map(std::mem::forget)
                    .is_ok()
            },
            op: Op::Read,
            path: "sock".into(),
            expect: expect!(Err(FsError::SpecialFile {
                kind: SpecialKind::Socket,
                ..
            })),
        },
        Case {
            name: "character device",
            setup: |j| mknod_null(&j.root.join("devnull")),
            op: Op::Read,
            path: "devnull".into(),
            expect: expect!(Err(FsError::SpecialFile {
                kind: SpecialKind::CharDevice,
                ..
            })),
        },
        Case {
            name: "character device write",
            setup: |j| mknod_null(&j.root.join("devnull")),
            op: Op::Write,
            path: "devnull".into(),
            expect: expect!(Err(FsError::SpecialFile {
                kind: SpecialKind::CharDevice,
                ..
            })),
        },
    ];
    cases.extend(symlink_cases);
    cases.extend(special_cases);
    cases
}

fn require_all() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A real device node needs root; skipped (with a note) otherwise.
fn mknod_null(path: &Path) -> bool {
    std::process::Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn escape_table() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for case in &cases {
        let jail = jail();
        if !(case.setup)(&jail) {
            skipped.push(case.name);
            continue;
        }
        let outside_before = tree(&jail.outside);
        let result = run(&jail, case.op, &case.path);
        let outside_after = tree(&jail.outside);
        if outside_before != outside_after {
            failures.push(format!(
                "{}: OUTSIDE CHANGED {outside_before:?} -> {outside_after:?}",
                case.name
            ));
        }
        if result.as_deref().is_ok_and(|text| text.contains(SECRET)) {
            failures.push(format!("{}: SECRET LEAKED", case.name));
        }
        if !(case.expect)(&jail, &result) {
            failures.push(format!(
                "{} ({:?} {:?}): unexpected {result:?}",
                case.name,
                case.op,
                case.path.chars().take(60).collect::<String>()
            ));
        }
    }
    if !skipped.is_empty() {
        println!("skipped (setup not possible here, e.g. mknod needs root): {skipped:?}");
        assert!(
            !require_all(),
            "setup failed under CI/AGENTD_REQUIRE_ALL: {skipped:?}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One thread keeps swapping a directory for a symlink to outside (and back) while
/// another writes and reads through it: nothing may ever land outside or leak.
#[test]
fn directory_swapped_for_symlink_during_writes() {
    let jail = jail();
    std::fs::create_dir(jail.root.join("dir")).unwrap();
    std::fs::write(jail.outside.join("dir/secret.txt"), SECRET).unwrap();
    let outside_before = tree(&jail.outside);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let root = jail.root.clone();
        let target = jail.outside.join("dir");
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // The writer may recreate `dir` (as a real directory, inside) in any gap,
                // so every step tolerates losing the race.
                if std::fs::rename(root.join("dir"), root.join("parked")).is_err() {
                    continue;
                }
                if symlink(&target, root.join("dir")).is_ok() {
                    let _ = std::fs::remove_file(root.join("dir"));
                }
                while std::fs::rename(root.join("parked"), root.join("dir")).is_err() {
                    let _ = std::fs::remove_dir_all(root.join("dir"));
                }
                swaps += 1;
            }
            swaps
        })
    };
    let mut ok_writes = 0;
    let mut refused = 0;
    let mut refusals = BTreeMap::<String, u32>::new();
    for i in 0..3000 {
        match jail.ws.write("dir/pwned.txt", &format!("write {i}")) {
            Ok(_) => ok_writes += 1,
            // Losing the race is fine (the directory was away or was a symlink); where
            // bytes land is what is checked below.
            Err(e) => {
                *refusals
                    .entry(
                        format!("{e:?}")
                            .split([' ', '{', '('])
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                    .or_insert(0) += 1;
                refused += 1;
            }
        }
        if let Ok(text) = jail.ws.read("dir/secret.txt") {
            panic!("read leaked outside content: {text}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(
        tree(&jail.outside),
        outside_before,
        "a write landed outside"
    );
    assert!(swaps > 0 && ok_writes + refused == 3000);
    println!("swaps={swaps} ok_writes={ok_writes} refused={refused} {refusals:?}");
}

/// A repository that ships `.agentd` as a symlink to somewhere outside must not get
/// backups written there: opening the workspace fails closed.
#[test]
fn planted_agentd_symlink_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    symlink(&outside, root.join(".agentd")).unwrap();
    let result = Workspace::open(FileSystemSettings::new(&root));
    assert!(matches!(result, Err(FsError::Root { .. })), "{result:?}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// `find` and `search` never report or read through a symlinked directory.
#[test]
fn walks_do_not_follow_symlinks_out() {
    let jail = jail();
    symlink(&jail.outside, jail.root.join("out")).unwrap();
    let found = jail.ws.find("*", 1000).unwrap();
    assert!(
        found.paths.iter().all(|p| !p.starts_with("out")),
        "{found:?}"
    );
    let hits = jail
        .ws
        .search(&agentd_fsmanager::SearchQuery::literal(SECRET))
        .unwrap();
    assert!(hits.matches.is_empty(), "{hits:?}");
    let map = jail
        .ws
        .repo_map(&agentd_fsmanager::RepoMapOptions::default())
        .unwrap();
    assert!(!map.text.contains("out/"));
}

/// A file swapped for a symlink to an outside file (and back) while it is read and
/// overwritten: reads never return the outside content, writes never modify it.
#[test]
fn file_swapped_for_symlink_during_reads_and_writes() {
    let jail = jail();
    let outside_before = tree(&jail.outside);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let root = jail.root.clone();
        let secret = jail.outside.join("secret.txt");
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = symlink(&secret, root.join("swap.tmp"));
                // Atomically replace the file with the symlink, then put a file back.
                let _ = std::fs::rename(root.join("swap.tmp"), root.join("f.txt"));
                let _ = std::fs::write(root.join("file.tmp"), "inside");
                let _ = std::fs::rename(root.join("file.tmp"), root.join("f.txt"));
                swaps += 1;
            }
            swaps
        })
    };
    let mut reads_ok = 0;
    for i in 0..2000 {
        if let Ok(text) = jail.ws.read("f.txt") {
            assert!(!text.contains(SECRET), "read leaked outside content");
            reads_ok += 1;
        }
        let _ = jail.ws.write("f.txt", &format!("agent {i}"));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(tree(&jail.outside), outside_before, "outside file modified");
    println!("swaps={swaps} reads_ok={reads_ok}");
}
