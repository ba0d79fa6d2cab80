//! JSON Schemas of the structured answers the agents ask for.

use serde_json::{Value, json};

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn score() -> Value {
    json!({"type": "number", "minimum": 0, "maximum": 10})
}

/// `{valid, score, issues}`: self-validation.
pub(crate) fn validation() -> Value {
    json!({
        "type": "object",
        "properties": {"valid": {"type": "boolean"}, "score": score(), "issues": strings()},
        "required": ["valid", "score", "issues"]
    })
}

/// A peer review's verdict.
pub(crate) fn peer_review() -> Value {
    json!({
        "type": "object",
        "properties": {
            "approve": {"type": "boolean"},
            "score": score(),
            "reasoning": {"type": "string"},
            "required_changes": strings()
        },
        "required": ["approve", "score", "reasoning", "required_changes"]
    })
}

/// `{criteria: [{name, threshold, weight}], reasoning}`: a reviewer's approval criteria.
pub(crate) fn criteria() -> Value {
    json!({
        "type": "object",
        "properties": {
            "criteria": {
                "type": "array",
                "minItems": 1,
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "threshold": score(),
                        "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 10}
                    },
                    "required": ["name", "threshold", "weight"]
                }
            },
            "reasoning": {"type": "string"}
        },
        "required": ["criteria", "reasoning"]
    })
}

/// Scores against chosen criteria.
pub(crate) fn evaluation() -> Value {
    json!({
        "type": "object",
        "properties": {
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "score": score(),
                        "comment": {"type": "string"}
                    },
                    "required": ["name", "score", "comment"]
                }
            },
            "reasoning": {"type": "string"},
            "required_changes": strings()
        },
        "required": ["scores", "reasoning", "required_changes"]
    })
}

fn task_spec() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1},
            "description": {"type": "string", "minLength": 1},
            "kind": {"enum": ["feature", "bugfix", "refactor", "requirements", "tests", "implementation", "review", "proposal", "planning", "research", "chore"]},
            "priority": {"enum": ["high", "medium", "low"]},
            "roles": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "rationale": {"type": "string"}
        },
        "required": ["title", "description", "kind", "priority", "roles"]
    })
}

/// The CEO's new tasks.
pub(crate) fn generated_tasks() -> Value {
    json!({
        "type": "object",
        "properties": {
            "tasks": {"type": "array", "items": task_spec()},
            "reasoning": {"type": "string"}
        },
        "required": ["tasks", "reasoning"]
    })
}

/// The CEO's plan for a task: a summary and delegated follow-ups.
pub(crate) fn plan() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "tasks": {"type": "array", "items": task_spec()}
        },
        "required": ["summary", "tasks"]
    })
}

/// The CEO's final decision.
pub(crate) fn decision() -> Value {
    json!({
        "type": "object",
        "properties": {
            "approve": {"type": "boolean"},
            "reasoning": {"type": "string"},
            "conditions": strings()
        },
        "required": ["approve", "reasoning", "conditions"]
    })
}

/// Product requirements.
pub(crate) fn requirements() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "requirements": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "acceptance_criteria": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "out_of_scope": strings()
        },
        "required": ["summary", "requirements", "acceptance_criteria", "out_of_scope"]
    })
}

/// QA's constraints and test files.
pub(crate) fn tests() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "constraints": strings(),
            "files": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "minLength": 1},
                        "content": {"type": "string", "minLength": 1}
                    },
                    "required": ["path", "content"]
                }
            }
        },
        "required": ["summary", "constraints", "files"]
    })
}

/// The Tech Lead's review against its fixed criteria.
pub(crate) fn code_review() -> Value {
    evaluation()
}

/// A Conventional Commits message.
pub(crate) fn commit_message() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {"enum": ["feat", "fix", "test", "refactor", "docs", "chore", "perf", "build", "ci", "style"]},
            "scope": {"type": ["string", "null"], "pattern": "^[a-z0-9_-]{0,30}$"},
            "subject": {"type": "string", "minLength": 1, "maxLength": 72},
            "body": {"type": "string"}
        },
        "required": ["type", "subject", "body"]
    })
}

/// A custom role's result.
pub(crate) fn custom_result() -> Value {
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "output": {"type": "object"},
            "follow_ups": {"type": "array", "items": task_spec()}
        },
        "required": ["summary", "output", "follow_ups"]
    })
}
