//! Framework detection from a project's files.

use std::path::Path;

use crate::report::Framework;

/// Detects the test framework of the project at `dir`, or `None`.
///
/// Order (first match wins, so a Rust crate with a Python helper is a cargo project):
/// `Cargo.toml` → cargo; `go.mod` → go; `package.json` that mentions jest (dependency,
/// `jest` key, or the `test` script) or a `jest.config.*` → jest; pytest markers
/// (`pytest.ini`, `[tool.pytest...]` in `pyproject.toml`, `[tool:pytest]` in `setup.cfg`,
/// `[pytest]` in `tox.ini`, `conftest.py`, `test_*.py` / `*_test.py` at the top or in
/// `tests/`) → pytest.
pub fn detect_framework(dir: &Path) -> Option<Framework> {
    if dir.join("Cargo.toml").is_file() {
        return Some(Framework::Cargo);
    }
    if dir.join("go.mod").is_file() {
        return Some(Framework::Go);
    }
    if is_jest_project(dir) {
        return Some(Framework::Jest);
    }
    if is_pytest_project(dir) {
        return Some(Framework::Pytest);
    }
    None
}

fn is_jest_project(dir: &Path) -> bool {
    let has_config = ["js", "cjs", "mjs", "ts", "json"]
        .iter()
        .any(|ext| dir.join(format!("jest.config.{ext}")).is_file());
    if has_config {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("package.json")) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let in_deps = ["dependencies", "devDependencies"]
        .iter()
        .any(|section| json.get(section).and_then(|d| d.get("jest")).is_some());
    let test_script = json
        .pointer("/scripts/test")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    in_deps || json.get("jest").is_some() || test_script.contains("jest")
}

fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle))
}

fn is_pytest_project(dir: &Path) -> bool {
    if dir.join("pytest.ini").is_file()
        || dir.join("conftest.py").is_file()
        || file_contains(&dir.join("pyproject.toml"), "[tool.pytest")
        || file_contains(&dir.join("setup.cfg"), "[tool:pytest]")
        || file_contains(&dir.join("tox.ini"), "[pytest]")
    {
        return true;
    }
    [dir.to_path_buf(), dir.join("tests")]
        .iter()
        .any(|d| has_python_test_file(d))
}

fn has_python_test_file(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn detects_each_framework_from_its_marker() {
        type Files = &'static [(&'static str, &'static str)];
        let cases: &[(Files, Option<Framework>)] = &[
            (&[("Cargo.toml", "[package]")], Some(Framework::Cargo)),
            (&[("go.mod", "module x")], Some(Framework::Go)),
            (
                &[("package.json", r#"{"devDependencies":{"jest":"29"}}"#)],
                Some(Framework::Jest),
            ),
            (
                &[("package.json", r#"{"scripts":{"test":"jest --ci"}}"#)],
                Some(Framework::Jest),
            ),
            (&[("jest.config.js", "")], Some(Framework::Jest)),
            (&[("package.json", r#"{"scripts":{"test":"mocha"}}"#)], None),
            (&[("pytest.ini", "[pytest]")], Some(Framework::Pytest)),
            (
                &[("pyproject.toml", "[tool.pytest.ini_options]\n")],
                Some(Framework::Pytest),
            ),
            (&[("setup.cfg", "[tool:pytest]\n")], Some(Framework::Pytest)),
            (&[("tests/test_x.py", "")], Some(Framework::Pytest)),
            (&[("calc_test.py", "")], Some(Framework::Pytest)),
            (&[("README.md", "")], None),
            (
                &[("Cargo.toml", ""), ("pyproject.toml", "[tool.pytest]")],
                Some(Framework::Cargo),
            ),
        ];
        for (files, expected) in cases {
            let dir = project(files);
            assert_eq!(detect_framework(dir.path()), *expected, "{files:?}");
        }
    }
}
