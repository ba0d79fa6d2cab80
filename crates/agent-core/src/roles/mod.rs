//! The built-in roles' behaviour.

pub(crate) mod ceo;
pub(crate) mod custom;
pub(crate) mod developer;
pub(crate) mod product;
pub(crate) mod qa;
pub(crate) mod reviewer;
pub(crate) mod tech_lead;
pub(crate) mod tools;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{Priority, Role, TaskKind, TaskSpec};

/// Whether a workspace path names a test file by the usual conventions: under a `tests`
/// or `test` directory, `test_*`, `*_test.*`, `*.test.*`, `*.spec.*`, `conftest.py`.
pub(crate) fn is_test_path(path: &str) -> bool {
    let path = path.trim_start_matches("./");
    let mut components = path.split('/').collect::<Vec<_>>();
    let Some(file) = components.pop() else {
        return false;
    };
    if components
        .iter()
        .any(|dir| matches!(*dir, "tests" | "test" | "__tests__" | "spec"))
    {
        return true;
    }
    let stem = file.split('.').next().unwrap_or_default();
    file == "conftest.py"
        || stem.starts_with("test_")
        || stem.ends_with("_test")
        || file.contains(".test.")
        || file.contains(".spec.")
}

/// A task as a model proposes it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProposedTask {
    title: String,
    description: String,
    kind: TaskKind,
    priority: Priority,
    roles: Vec<String>,
    #[serde(default)]
    rationale: Option<String>,
}

/// Checks that every proposed role exists (built-in, or one of `known_custom`).
pub(crate) fn check_roles(tasks: &[ProposedTask], known_custom: &[Role]) -> Result<(), String> {
    for task in tasks {
        for name in &task.roles {
            match name.parse::<Role>() {
                Ok(Role::Custom(_)) | Err(_)
                    if !known_custom.iter().any(|r| r.as_str() == name) =>
                {
                    let mut valid: Vec<String> = Role::all_builtin()
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    valid.extend(known_custom.iter().map(ToString::to_string));
                    return Err(format!(
                        "task {:?} names the unknown role {name:?}; roles are: {}",
                        task.title,
                        valid.join(", ")
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Turns checked proposals into specs under `parent`, most urgent first.
pub(crate) fn into_specs(tasks: Vec<ProposedTask>, parent: Option<&str>) -> Vec<TaskSpec> {
    let mut specs: Vec<TaskSpec> = tasks
        .into_iter()
        .map(|t| TaskSpec {
            title: t.title,
            description: t.description,
            kind: t.kind,
            priority: t.priority,
            deadline: None,
            assigned_roles: t.roles.iter().filter_map(|r| r.parse().ok()).collect(),
            parent_id: parent.map(str::to_owned),
            payload: match t.rationale {
                Some(rationale) => serde_json::json!({ "rationale": rationale }),
                None => Value::Null,
            },
        })
        .collect();
    specs.sort_by_key(|s| s.priority);
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_paths_follow_the_usual_conventions() {
        for path in [
            "tests/test_stats.py",
            "test_calc.py",
            "./test_calc.py",
            "pkg/calc_test.go",
            "src/app.test.ts",
            "src/app.spec.js",
            "conftest.py",
            "crate/tests/integration.rs",
            "web/__tests__/button.jsx",
        ] {
            assert!(is_test_path(path), "{path}");
        }
        for path in [
            "calc.py",
            "src/lib.rs",
            "testing.py",
            "contest.py",
            "docs/test.md.bak/x.rs",
            "latest_results.py",
        ] {
            assert!(!is_test_path(path), "{path}");
        }
    }
}
