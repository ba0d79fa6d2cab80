//! The command line(s) for a framework and a target, and where their results will be.

use std::path::{Path, PathBuf};

use crate::error::{Result, TestRunnerError};
use crate::parse::junit::Flavor;
use crate::report::Framework;
use crate::settings::{CargoRunner, ResultFormat, TestingSettings};

/// What to run: everything, one file, or one test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestTarget {
    /// A test file, relative to the project directory.
    File(PathBuf),
    /// A test id as found in [`crate::TestCase::id`].
    Id(String),
}

impl std::fmt::Display for TestTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Id(id) => write!(f, "test {id}"),
        }
    }
}

/// Where a step's results are read from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResultRead {
    /// A JUnit file; `pytest` falls back to the console when it is missing.
    Junit { path: PathBuf, flavor: Flavor },
    /// jest's JSON file.
    Jest { path: PathBuf },
    /// `go test -json` on the console.
    GoJson,
    /// cargo test's text on the console.
    CargoText,
}

/// One child process to run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub program: String,
    pub args: Vec<String>,
    pub read: ResultRead,
    /// A doctest step whose "no library target" failure means "no doctests".
    pub optional: bool,
}

/// The steps for `framework` in `project`. Result files go to `scratch`.
pub(crate) fn steps(
    framework: Framework,
    project: &Path,
    target: Option<&TestTarget>,
    settings: &TestingSettings,
    scratch: &Path,
    nextest_installed: bool,
) -> Result<Vec<Step>> {
    let mut steps = match framework {
        Framework::Cargo => {
            let nextest = match settings.cargo_runner {
                CargoRunner::Auto => nextest_installed,
                CargoRunner::Test => false,
                CargoRunner::Nextest => true,
            };
            if nextest {
                nextest_steps(project, target, scratch)?
            } else {
                vec![cargo_test_step(project, target)?]
            }
        }
        Framework::Pytest => vec![pytest_step(project, target, scratch)],
        Framework::Jest => vec![jest_step(project, target, scratch)?],
        Framework::Go => vec![go_step(target)?],
        Framework::Custom => vec![custom_step(project, target, settings)?],
    };
    if let Some(main) = steps.first_mut().filter(|_| framework != Framework::Custom) {
        main.args.extend(settings.extra_args.iter().cloned());
    }
    Ok(steps)
}

fn unsupported(target: &TestTarget, framework: Framework, reason: &str) -> TestRunnerError {
    TestRunnerError::UnsupportedTarget {
        target: target.to_string(),
        framework: framework.to_string(),
        reason: reason.to_owned(),
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// cargo's target selection for a file: `(manifest dir relative to project, selection args)`.
fn cargo_file_selection(project: &Path, file: &Path) -> Result<(Option<PathBuf>, Vec<String>)> {
    let target = TestTarget::File(file.to_path_buf());
    // The package is the nearest directory above the file with a Cargo.toml.
    let package_dir = file
        .ancestors()
        .skip(1)
        .find(|d| project.join(d).join("Cargo.toml").is_file())
        .ok_or_else(|| unsupported(&target, Framework::Cargo, "no Cargo.toml above this file"))?;
    let in_package = file.strip_prefix(package_dir).unwrap_or(file);
    let manifest = (!package_dir.as_os_str().is_empty()).then(|| package_dir.join("Cargo.toml"));
    let parts: Vec<String> = in_package
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let stem = in_package
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let selection = match parts.as_slice() {
        ["tests", _] => vec!["--test".to_owned(), stem],
        ["benches", _] => vec!["--bench".to_owned(), stem],
        ["examples", _] => vec!["--example".to_owned(), stem],
        ["src", "lib.rs"] => strings(&["--lib"]),
        ["src", "main.rs"] => strings(&["--bins"]),
        ["src", "bin", _] => vec!["--bin".to_owned(), stem],
        ["src", modules @ ..] => {
            let mut path: Vec<String> = modules
                .iter()
                .map(|m| m.trim_end_matches(".rs").to_owned())
                .collect();
            if path.last().is_some_and(|m| m == "mod") {
                path.pop();
            }
            vec![
                "--lib".to_owned(),
                "--".to_owned(),
                format!("{}::", path.join("::")),
            ]
        }
        _ => {
            return Err(unsupported(
                &target,
                Framework::Cargo,
                "not under src/, tests/, benches/ or examples/",
            ));
        }
    };
    Ok((manifest, selection))
}

fn is_doctest_id(id: &str) -> bool {
    id.contains(" - ") && id.contains("(line ")
}

fn cargo_test_step(project: &Path, target: Option<&TestTarget>) -> Result<Step> {
    let mut args = strings(&["test", "--no-fail-fast"]);
    match target {
        None => {}
        Some(TestTarget::File(file)) => {
            let (manifest, selection) = cargo_file_selection(project, file)?;
            if let Some(manifest) = manifest {
                args.push("--manifest-path".to_owned());
                args.push(manifest.to_string_lossy().into_owned());
            }
            args.extend(selection);
        }
        Some(TestTarget::Id(id)) => {
            if is_doctest_id(id) {
                args.push("--doc".to_owned());
            }
            args.extend(["--".to_owned(), "--exact".to_owned(), id.clone()]);
        }
    }
    Ok(Step {
        program: "cargo".to_owned(),
        args,
        read: ResultRead::CargoText,
        optional: false,
    })
}

/// The nextest profile agentd adds through a tool config file, so the project's own
/// `.config/nextest.toml` stays in force for everything else.
const NEXTEST_TOOL_CONFIG: &str =
    "[profile.agentd]\nfail-fast = false\n[profile.agentd.junit]\npath = \"junit.xml\"\n";

fn nextest_steps(project: &Path, target: Option<&TestTarget>, scratch: &Path) -> Result<Vec<Step>> {
    let store = scratch.join("nextest-store");
    let config = scratch.join("nextest.toml");
    let text = format!(
        "[store]\ndir = \"{}\"\n{NEXTEST_TOOL_CONFIG}",
        store.display()
    );
    std::fs::write(&config, text).map_err(|e| TestRunnerError::io("writing", &config, e))?;
    let mut args = vec![
        "nextest".to_owned(),
        "run".to_owned(),
        "--no-fail-fast".to_owned(),
        "--tool-config-file".to_owned(),
        format!("agentd:{}", config.display()),
        "--profile".to_owned(),
        "agentd".to_owned(),
    ];
    let mut with_doctests = false;
    match target {
        None => with_doctests = true,
        Some(TestTarget::File(file)) => {
            let (manifest, selection) = cargo_file_selection(project, file)?;
            if let Some(manifest) = manifest {
                args.push("--manifest-path".to_owned());
                args.push(manifest.to_string_lossy().into_owned());
            }
            // nextest takes the module filter positionally, without libtest's `--`.
            args.extend(selection.into_iter().filter(|a| a != "--"));
        }
        Some(TestTarget::Id(id)) if is_doctest_id(id) => {
            // nextest does not run doctests.
            return Ok(vec![cargo_test_step(project, target)?]);
        }
        Some(TestTarget::Id(id)) => {
            args.push("-E".to_owned());
            args.push(format!("test(={id})"));
        }
    }
    let mut steps = vec![Step {
        program: "cargo".to_owned(),
        args,
        read: ResultRead::Junit {
            path: store.join("agentd").join("junit.xml"),
            flavor: Flavor::Nextest,
        },
        optional: false,
    }];
    if with_doctests {
        steps.push(Step {
            program: "cargo".to_owned(),
            args: strings(&["test", "--doc", "--no-fail-fast"]),
            read: ResultRead::CargoText,
            optional: true,
        });
    }
    Ok(steps)
}

fn pytest_step(project: &Path, target: Option<&TestTarget>, scratch: &Path) -> Step {
    let junit = scratch.join("pytest-junit.xml");
    // A project virtualenv wins over whatever pytest is on the PATH.
    let venv_python = [".venv/bin/python", "venv/bin/python"]
        .iter()
        .map(|p| project.join(p))
        .find(|p| p.is_file());
    let (program, mut args) = match venv_python {
        Some(python) => (
            python.to_string_lossy().into_owned(),
            strings(&["-m", "pytest"]),
        ),
        None => ("pytest".to_owned(), Vec::new()),
    };
    // Appended after the project's `addopts`, so these two win and everything else stays.
    args.push(format!("--junitxml={}", junit.display()));
    // xunit1 adds file and line to each case; -rfEX lists xpasses, which JUnit reports as
    // plain passes.
    args.extend(strings(&["-o", "junit_family=xunit1", "-rfEX"]));
    match target {
        None => {}
        Some(TestTarget::File(file)) => args.push(file.to_string_lossy().into_owned()),
        Some(TestTarget::Id(id)) => args.push(id.clone()),
    }
    Step {
        program,
        args,
        read: ResultRead::Junit {
            path: junit,
            flavor: Flavor::Pytest,
        },
        optional: false,
    }
}

fn jest_step(project: &Path, target: Option<&TestTarget>, scratch: &Path) -> Result<Step> {
    let json = scratch.join("jest-results.json");
    let has_test_script = std::fs::read_to_string(project.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.pointer("/scripts/test").is_some_and(|s| s.is_string()));
    let local_jest = project.join("node_modules/.bin/jest");
    // The project's own `test` script (and its flags) is how the project runs its tests.
    let (program, mut args) = if has_test_script {
        ("npm".to_owned(), strings(&["test", "--"]))
    } else if local_jest.is_file() {
        (local_jest.to_string_lossy().into_owned(), Vec::new())
    } else {
        ("jest".to_owned(), Vec::new())
    };
    args.extend([
        "--json".to_owned(),
        format!("--outputFile={}", json.display()),
        "--testLocationInResults".to_owned(),
    ]);
    match target {
        None => {}
        Some(TestTarget::File(file)) => {
            args.push("--runTestsByPath".to_owned());
            args.push(file.to_string_lossy().into_owned());
        }
        Some(TestTarget::Id(id)) => {
            let Some((file, name)) = id.split_once("::") else {
                return Err(unsupported(
                    &TestTarget::Id(id.clone()),
                    Framework::Jest,
                    "jest ids look like `file::full test name`",
                ));
            };
            args.extend([
                "--runTestsByPath".to_owned(),
                file.to_owned(),
                "-t".to_owned(),
                format!("^{}$", regex_escape(name)),
            ]);
        }
    }
    Ok(Step {
        program,
        args,
        read: ResultRead::Jest { path: json },
        optional: false,
    })
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn go_step(target: Option<&TestTarget>) -> Result<Step> {
    let mut args = strings(&["test", "-json"]);
    match target {
        None => args.push("./...".to_owned()),
        Some(TestTarget::File(file)) => {
            let dir = file
                .parent()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default();
            args.push(if dir.is_empty() {
                ".".to_owned()
            } else {
                format!("./{dir}")
            });
        }
        Some(TestTarget::Id(id)) => {
            let (package, test) = id.split_once("::").unwrap_or(("./...", id));
            let pattern: Vec<String> = test
                .split('/')
                .map(|p| format!("^{}$", regex_escape(p)))
                .collect();
            args.extend(["-run".to_owned(), pattern.join("/"), package.to_owned()]);
        }
    }
    Ok(Step {
        program: "go".to_owned(),
        args,
        read: ResultRead::GoJson,
        optional: false,
    })
}

/// Checks that `framework: custom` has its command, result format and result path.
pub(crate) fn validate_custom(settings: &TestingSettings) -> Result<()> {
    custom_step(Path::new(""), None, settings).map(|_| ())
}

fn custom_step(
    project: &Path,
    target: Option<&TestTarget>,
    settings: &TestingSettings,
) -> Result<Step> {
    let command = settings
        .command
        .clone()
        .ok_or_else(|| TestRunnerError::InvalidSetting {
            key: "command".to_owned(),
            reason: "framework custom needs a command".to_owned(),
        })?;
    let format = settings
        .result_format
        .ok_or_else(|| TestRunnerError::InvalidSetting {
            key: "result_format".to_owned(),
            reason:
                "framework custom needs a result_format (junit, jest_json, go_json, cargo_text)"
                    .to_owned(),
        })?;
    let result_path = || {
        settings
            .result_path
            .as_ref()
            .map(|p| project.join(p))
            .ok_or_else(|| TestRunnerError::InvalidSetting {
                key: "result_path".to_owned(),
                reason: "result_format junit and jest_json need the file the command writes"
                    .to_owned(),
            })
    };
    let read = match format {
        ResultFormat::Junit => ResultRead::Junit {
            path: result_path()?,
            flavor: Flavor::Generic,
        },
        ResultFormat::JestJson => ResultRead::Jest {
            path: result_path()?,
        },
        ResultFormat::GoJson => ResultRead::GoJson,
        ResultFormat::CargoText => ResultRead::CargoText,
    };
    // The target reaches the command as `$1` (empty for a whole run).
    let target_arg = match target {
        None => String::new(),
        Some(TestTarget::File(file)) => file.to_string_lossy().into_owned(),
        Some(TestTarget::Id(id)) => id.clone(),
    };
    Ok(Step {
        program: "sh".to_owned(),
        args: vec![
            "-c".to_owned(),
            command,
            "agentd-test".to_owned(),
            target_arg,
        ],
        read,
        optional: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        std::fs::create_dir_all(dir.path().join("crates/sub")).unwrap();
        std::fs::write(dir.path().join("crates/sub/Cargo.toml"), "[package]").unwrap();
        dir
    }

    fn args(target: TestTarget) -> Vec<String> {
        let p = project();
        cargo_test_step(p.path(), Some(&target)).unwrap().args
    }

    #[test]
    fn cargo_files_map_to_target_selections() {
        assert_eq!(
            args(TestTarget::File("tests/api.rs".into())),
            ["test", "--no-fail-fast", "--test", "api"]
        );
        assert_eq!(
            args(TestTarget::File("src/lib.rs".into())),
            ["test", "--no-fail-fast", "--lib"]
        );
        assert_eq!(
            args(TestTarget::File("src/net/mod.rs".into())),
            ["test", "--no-fail-fast", "--lib", "--", "net::"]
        );
        assert_eq!(
            args(TestTarget::File("crates/sub/tests/it.rs".into())),
            [
                "test",
                "--no-fail-fast",
                "--manifest-path",
                "crates/sub/Cargo.toml",
                "--test",
                "it"
            ]
        );
        assert_eq!(
            args(TestTarget::Id("tests::it_works".into())),
            ["test", "--no-fail-fast", "--", "--exact", "tests::it_works"]
        );
        assert_eq!(
            args(TestTarget::Id("src/lib.rs - add (line 3)".into())),
            [
                "test",
                "--no-fail-fast",
                "--doc",
                "--",
                "--exact",
                "src/lib.rs - add (line 3)"
            ]
        );
    }

    #[test]
    fn go_ids_become_anchored_run_patterns() {
        let step = go_step(Some(&TestTarget::Id("example.com/m::TestA/case_1".into()))).unwrap();
        assert_eq!(
            step.args,
            ["test", "-json", "-run", "^TestA$/^case_1$", "example.com/m"]
        );
    }

    #[test]
    fn custom_needs_command_and_format() {
        let settings = TestingSettings::default();
        let err = custom_step(Path::new("/p"), None, &settings).unwrap_err();
        assert!(matches!(err, TestRunnerError::InvalidSetting { ref key, .. } if key == "command"));
        let settings = TestingSettings {
            command: Some("make test".into()),
            result_format: Some(ResultFormat::Junit),
            ..TestingSettings::default()
        };
        let err = custom_step(Path::new("/p"), None, &settings).unwrap_err();
        assert!(
            matches!(err, TestRunnerError::InvalidSetting { ref key, .. } if key == "result_path")
        );
    }
}
