#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Snapshots of every prompt template and every role's system prompt; strict rendering.

use agentd_agent_core::{AgentConfig, AgentError, Role, build_agent, prompt_names, render_prompt};
use serde_json::{Value, json};

fn role_for(template: &str) -> &'static str {
    match template.split('/').next().unwrap() {
        "ceo" => "ceo",
        "cfo" | "reviewer" => "cfo",
        "risk" => "risk",
        "legal" => "legal",
        "security" => "security",
        "product" => "product",
        "qa" => "qa",
        "tech_lead" => "tech_lead",
        "custom" => "ops",
        _ => "developer",
    }
}

fn result() -> Value {
    json!({
        "task_id": "42", "role": "developer", "agent": "developer",
        "outcome": {"status": "succeeded"},
        "summary": "add() now adds",
        "output": {"note": "one-line fix"},
        "artifacts": {"files_written": ["calc.py"], "tests": {"outcome": "passed", "passed": 2, "failed": 0, "total": 2, "failing": []}},
        "verdict": {"role": "cfo", "approve": false, "score": 6.25, "criteria": [], "reasoning": "too expensive", "required_changes": ["halve the cost"]},
        "follow_ups": [], "attempts": [], "usage": {"calls": 3, "input_tokens": 900, "output_tokens": 120}
    })
}

/// Every variable any template uses, with realistic values.
fn fixture(template: &str, mode: &str) -> Value {
    let feedback = match mode {
        "fix" => {
            json!({"mode": "fix", "attempt": 2, "approach": 0, "issues": ["test_add fails: assert -1 == 5"], "previous_approaches": []})
        }
        "new_approach" => {
            json!({"mode": "new_approach", "attempt": 5, "approach": 1, "issues": [], "previous_approaches": [
                {"approach": 0, "summary": "patched the operator", "issues": ["stuck: the same tests failed the same way 3 times: test_add"]}
            ]})
        }
        _ => {
            json!({"mode": "first", "attempt": 1, "approach": 0, "issues": [], "previous_approaches": []})
        }
    };
    json!({
        "role": role_for(template),
        "agent": role_for(template),
        "description": if template.starts_with("custom/") { json!("Keeps production running: runbooks, alerts, on-call.") } else { Value::Null },
        "custom_roles": ["ops"],
        "task": {
            "id": "42", "title": "Fix add()", "description": "calc.add(2, 3) must return 5.",
            "kind": "bugfix", "priority": "high", "deadline": "2026-12-01T00:00:00Z",
            "assigned_roles": ["qa", "developer"], "parent_id": "7",
            "payload": {"requirements": ["add returns the sum"]}, "attempts": 0
        },
        "context": "## Strategy\nReliability before features\n\n## Goals\n- 99.9% uptime\n",
        "feedback": feedback,
        "files": ["calc.py", "test_calc.py"],
        "framework": "pytest",
        "tests": {"outcome": "failed", "passed": 0, "failed": 2, "total": 2, "failing": ["test_calc.py::test_add"]},
        "max_steps": 30,
        "result": result(),
        "evidence": "diff --git a/calc.py b/calc.py\n-    return a - b\n+    return a + b",
        "accept_score": 7.0,
        "diff": "diff --git a/calc.py b/calc.py\n-    return a - b\n+    return a + b",
        "author": "developer",
        "verdicts": [
            {"role": "cfo", "approve": true, "score": 7.5, "criteria": [
                {"criterion": {"name": "monthly_cost", "threshold": 6.0, "weight": 2.0}, "score": 8.0, "passed": true, "comment": "within budget"}
            ], "reasoning": "affordable", "required_changes": []},
            {"role": "risk", "approve": false, "score": 4.0, "criteria": [], "reasoning": "vendor lock-in", "required_changes": ["plan an exit"]}
        ],
        "criteria": [
            {"name": "monthly_cost", "threshold": 6.0, "weight": 2.0},
            {"name": "payback_period", "threshold": 5.0, "weight": 1.0}
        ],
        "criteria_reasoning": "cost and payback matter most here",
        "goal": "ship the health endpoint",
        "done": [{"id": "1", "title": "Login page", "role": "developer", "note": ""}],
        "failing": [{"id": "2", "title": "Login test", "role": "qa", "note": "flaky"}],
        "pending": [],
        "max_tasks": 5,
    })
}

#[test]
fn every_template_renders_and_matches_its_snapshot() {
    let names: Vec<&str> = prompt_names().collect();
    assert!(names.len() >= 25, "{names:?}");
    for name in names {
        let (dir, file) = name.split_once('/').unwrap();
        assert!(
            file.rsplit_once(".v")
                .is_some_and(|(_, v)| v.parse::<u32>().is_ok()),
            "{name} is not <role>/<step>.v<N>"
        );
        // The feedback partial is empty for a first attempt by design.
        let mode = if name == "common/feedback.v1" {
            "fix"
        } else {
            "first"
        };
        let rendered = render_prompt(name, fixture(name, mode)).unwrap();
        assert!(!rendered.is_empty(), "{name}");
        insta::assert_snapshot!(format!("{dir}__{file}"), rendered);
    }
}

#[test]
fn feedback_variants_match_their_snapshots() {
    for mode in ["fix", "new_approach"] {
        let rendered = render_prompt(
            "developer/implement.v1",
            fixture("developer/implement.v1", mode),
        )
        .unwrap();
        insta::assert_snapshot!(format!("developer__implement.v1__{mode}"), rendered);
    }
}

#[test]
fn every_roles_system_prompt_matches_its_snapshot() {
    let mut roles: Vec<Role> = Role::all_builtin().to_vec();
    roles.push(Role::Custom("ops".into()));
    for role in roles {
        let config = AgentConfig {
            description: matches!(role, Role::Custom(_))
                .then(|| "Keeps production running: runbooks, alerts, on-call.".to_owned()),
            custom_roles: vec![Role::Custom("ops".into())],
            ..AgentConfig::default()
        };
        let agent = build_agent(role.clone(), config).unwrap();
        assert_eq!(agent.role(), &role);
        assert_eq!(agent.name(), role.as_str());
        insta::assert_snapshot!(format!("system__{role}"), agent.system_prompt());
    }
}

#[test]
fn a_description_is_appended_to_a_built_in_roles_system_prompt() {
    let config = AgentConfig {
        description: Some("Prefer the standard library.".into()),
        ..AgentConfig::default()
    };
    let agent = build_agent(Role::Developer, config).unwrap();
    assert!(
        agent
            .system_prompt()
            .ends_with("Prefer the standard library.")
    );
}

#[test]
fn an_undefined_variable_is_an_error_naming_the_template() {
    let mut values = fixture("developer/implement.v1", "first");
    values.as_object_mut().unwrap().remove("max_steps");
    let error = render_prompt("developer/implement.v1", values).unwrap_err();
    match error {
        AgentError::Prompt { template, message } => {
            assert_eq!(template, "developer/implement.v1");
            assert!(message.contains("max_steps"), "{message}");
        }
        other => panic!("unexpected error {other}"),
    }
    let missing = render_prompt("developer/implement.v9", json!({}))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("developer/implement.v9"), "{missing}");
}
