//! Outline of a 5,000-line file per language, and the repo map of a 1,000-file tree.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use agentd_fsmanager::{FileSystemSettings, Language, RepoMapOptions, Workspace, outline_source};
use criterion::{Criterion, criterion_group, criterion_main};

const FIXTURES: &[(&str, Language)] = &[
    ("inventory.rs", Language::Rust),
    ("billing.py", Language::Python),
    ("router.js", Language::JavaScript),
    ("store.ts", Language::TypeScript),
    ("TodoList.tsx", Language::Tsx),
    ("server.go", Language::Go),
];

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The fixture repeated until it has at least `lines` lines (Go keeps one package clause).
fn grown(name: &str, lines: usize) -> String {
    let base = fixture(name);
    let body: String = base
        .lines()
        .filter(|l| !l.starts_with("package "))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = if name.ends_with(".go") {
        "package cache\n".to_owned()
    } else {
        String::new()
    };
    while out.lines().count() < lines {
        out.push_str(if name.ends_with(".go") { &body } else { &base });
    }
    out
}

fn outline_5000_lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("outline_5000_lines");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for &(name, language) in FIXTURES {
        let source = grown(name, 5000);
        group.bench_function(format!("{language:?}"), |b| {
            b.iter(|| {
                outline_source(language, black_box(&source))
                    .map(|o| o.items.len())
                    .unwrap_or_default()
            })
        });
    }
    group.finish();
}

fn repo_map_1000_files(c: &mut Criterion) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(ws) = Workspace::open(FileSystemSettings::new(dir.path())) else {
        return;
    };
    for i in 0..1000 {
        let (name, _) = FIXTURES[i % FIXTURES.len()];
        let ext = name.rsplit('.').next().unwrap_or("rs");
        let path = format!("pkg{}/sub{}/file{i}.{ext}", i % 10, i % 7);
        if ws.write(&path, &fixture(name)).is_err() {
            return;
        }
    }
    let mut group = c.benchmark_group("repo_map_1000_files");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(500));
    for budget in [2_048, 100_000] {
        let options = RepoMapOptions {
            token_budget: Some(budget),
            focus: vec!["pkg3".into()],
        };
        group.bench_function(format!("budget_{budget}"), |b| {
            b.iter(|| {
                ws.repo_map(black_box(&options))
                    .map(|m| m.included.len())
                    .unwrap_or_default()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, outline_5000_lines, repo_map_1000_files);
criterion_main!(benches);
