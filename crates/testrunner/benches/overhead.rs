//! Overhead of running a suite through the test runner versus running the runner directly:
//! the same prebuilt cargo crate (and a pytest suite when pytest is installed), one run per
//! iteration. Compare the `direct` and `testrunner` times of each group for the ratio.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agentd_testrunner::{
    CargoRunner, FrameworkChoice, LocalTestRunner, RunOptions, TestRunner, TestingSettings,
};
use criterion::{Criterion, criterion_group, criterion_main};

const LIB: &str = r#"
pub fn add(a: i32, b: i32) -> i32 { a + b }

#[cfg(test)]
mod tests {
    use super::*;
    #[test] fn one() { assert_eq!(add(1, 1), 2); }
    #[test] fn two() { assert_eq!(add(2, 2), 4); }
    #[test] fn three() { assert_eq!(add(3, 3), 6); }
}
"#;

const PYTEST: &str =
    "def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    assert 2 * 2 == 4\n";

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(path, text).ok();
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn bench(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let crate_dir = dir.path().join("crate");
    let target = dir.path().join("target");
    write(
        &crate_dir,
        "Cargo.toml",
        "[package]\nname = \"bench_demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(&crate_dir, "src/lib.rs", LIB);
    let direct_cargo = || {
        Command::new("cargo")
            .args(["test", "--no-fail-fast"])
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .map(|o| o.status.success())
    };
    // Build once, so both sides time only the test run.
    if !matches!(direct_cargo(), Ok(true)) {
        eprintln!("cargo test failed in the bench crate; skipping");
        return;
    }
    let runner = |framework| {
        LocalTestRunner::new(TestingSettings {
            framework,
            cargo_runner: CargoRunner::Test,
            ..TestingSettings::default()
        })
    };
    let Ok(cargo_runner) = runner(FrameworkChoice::Cargo) else {
        return;
    };
    let options = RunOptions {
        env: BTreeMap::from([("CARGO_TARGET_DIR".to_owned(), target.display().to_string())]),
        ..RunOptions::default()
    };

    // Both sides must run the same green suite, or the comparison means nothing.
    if !matches!(rt.block_on(cargo_runner.run_tests(&crate_dir, &options)), Ok(r) if r.is_green() && r.counts.passed == 3)
    {
        eprintln!("the test runner did not report the bench crate green; skipping");
        return;
    }
    let mut group = c.benchmark_group("cargo_test_suite");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("direct", |b| b.iter(direct_cargo));
    group.bench_function("testrunner", |b| {
        b.iter(|| {
            rt.block_on(cargo_runner.run_tests(&crate_dir, &options))
                .map(|r| r.is_green())
        })
    });
    group.finish();

    if !on_path("pytest") {
        eprintln!("pytest is not installed; skipping the pytest group");
        return;
    }
    let py_dir = dir.path().join("py");
    write(&py_dir, "test_bench.py", PYTEST);
    let Ok(pytest_runner) = runner(FrameworkChoice::Pytest) else {
        return;
    };
    if !matches!(rt.block_on(pytest_runner.run_tests(&py_dir, &RunOptions::default())), Ok(r) if r.is_green() && r.counts.passed == 2)
    {
        eprintln!("the test runner did not report the pytest suite green; skipping");
        return;
    }
    let mut group = c.benchmark_group("pytest_suite");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("direct", |b| {
        b.iter(|| {
            Command::new("pytest")
                .arg("-q")
                .current_dir(&py_dir)
                .output()
                .map(|o| o.status.success())
        })
    });
    group.bench_function("testrunner", |b| {
        b.iter(|| {
            rt.block_on(pytest_runner.run_tests(&py_dir, &RunOptions::default()))
                .map(|r| r.is_green())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
