#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The data model: role names, priorities, serialization, weighted verdicts.

use agentd_agent_core::{Criterion, Priority, Role, Task, TaskKind, TaskSpec, Verdict};
use serde_json::json;

#[test]
fn roles_round_trip_as_snake_case_strings() {
    for role in Role::all_builtin() {
        let text = serde_json::to_string(&role).unwrap();
        assert_eq!(text, format!("\"{role}\""));
        let back: Role = serde_json::from_str(&text).unwrap();
        assert_eq!(back, role);
    }
    assert_eq!(
        serde_json::to_string(&Role::TechLead).unwrap(),
        "\"tech_lead\""
    );
    assert_eq!("Tech-Lead".parse::<Role>().unwrap(), Role::TechLead);
    assert_eq!("TechLead".parse::<Role>().unwrap(), Role::TechLead);
    let custom: Role = serde_json::from_str("\"data_scientist\"").unwrap();
    assert_eq!(custom, Role::Custom("data_scientist".into()));
    assert_eq!(
        serde_json::to_string(&custom).unwrap(),
        "\"data_scientist\""
    );
}

#[test]
fn invalid_custom_role_names_are_rejected_with_the_name() {
    for bad in ["", "Data Scientist", "évaluateur", &"x".repeat(65)] {
        let error = bad.parse::<Role>().unwrap_err().to_string();
        assert!(error.contains("invalid role name"), "{error}");
    }
    assert!(serde_json::from_str::<Role>("\"has space\"").is_err());
}

#[test]
fn priority_maps_to_and_from_queue_numbers() {
    assert_eq!(Priority::High.number(), 1);
    assert_eq!(Priority::Medium.number(), 5);
    assert_eq!(Priority::Low.number(), 10);
    for p in [Priority::High, Priority::Medium, Priority::Low] {
        assert_eq!(Priority::from_number(p.number()), p);
        assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
        let memory: agentd_memory::Priority = p.into();
        assert_eq!(Priority::from(memory), p);
    }
    assert_eq!(Priority::from_number(3), Priority::High);
    assert_eq!(Priority::from_number(7), Priority::Medium);
    assert_eq!(Priority::from_number(200), Priority::Low);
    assert!(Priority::High < Priority::Low, "high sorts first");
    assert_eq!(
        serde_json::from_value::<Priority>(json!(1)).unwrap(),
        Priority::High
    );
    assert_eq!(
        serde_json::from_value::<Priority>(json!("LOW")).unwrap(),
        Priority::Low
    );
    assert!(serde_json::from_value::<Priority>(json!("urgent")).is_err());
}

#[test]
fn a_task_survives_the_task_store_payload_round_trip() {
    let mut spec = TaskSpec::new("Add a health endpoint", "GET /health returns 200");
    spec.kind = TaskKind::Feature;
    spec.priority = Priority::High;
    spec.assigned_roles = vec![Role::Qa, Role::Developer, Role::Custom("ops".into())];
    spec.parent_id = Some("t-1".into());
    spec.payload = json!({"base": "main"});
    let mut task = Task::from_spec("t-2", spec);
    task.attempts = 2;
    let value = serde_json::to_value(&task).unwrap();
    assert_eq!(value["assigned_roles"], json!(["qa", "developer", "ops"]));
    assert_eq!(value["priority"], json!("high"));
    assert_eq!(value["kind"], json!("feature"));
    let back: Task = serde_json::from_value(value).unwrap();
    assert_eq!(back, task);
    assert_eq!(back.primary_role(), Some(&Role::Qa));

    let minimal: Task =
        serde_json::from_value(json!({"id": "t", "title": "x", "description": "y"})).unwrap();
    assert_eq!(minimal.priority, Priority::Medium);
    assert_eq!(minimal.attempts, 0);
}

fn criterion(name: &str, threshold: f64, weight: f64) -> Criterion {
    Criterion {
        name: name.into(),
        threshold,
        weight,
    }
}

#[test]
fn verdict_weights_scores_and_requires_every_threshold() {
    let verdict = Verdict::from_scores(
        Role::Cfo,
        vec![
            (criterion("cost", 6.0, 3.0), 8.0, "cheap".into()),
            (criterion("roi", 5.0, 1.0), 4.0, "unclear return".into()),
        ],
        "mostly fine",
        vec![],
    );
    assert!(
        (verdict.score - 7.0).abs() < 1e-9,
        "(3*8 + 1*4) / 4 = 7, got {}",
        verdict.score
    );
    assert!(verdict.criteria[0].passed);
    assert!(!verdict.criteria[1].passed);
    assert!(
        !verdict.approve,
        "one criterion below its threshold rejects"
    );

    let approved = Verdict::from_scores(
        Role::Cfo,
        vec![(criterion("cost", 6.0, 1.0), 42.0, String::new())],
        "",
        vec![],
    );
    assert_eq!(
        approved.criteria[0].score, 10.0,
        "scores are clamped to 0-10"
    );
    assert!(approved.approve);

    let with_changes = Verdict::from_scores(
        Role::TechLead,
        vec![(criterion("design", 5.0, 1.0), 9.0, String::new())],
        "",
        vec!["rename the module".into()],
    );
    assert!(!with_changes.approve, "required changes block approval");

    let empty = Verdict::from_scores(Role::Legal, vec![], "", vec![]);
    assert!(!empty.approve, "no criteria, no approval");
    assert_eq!(empty.score, 0.0);

    let zero_weights = Verdict::from_scores(
        Role::Risk,
        vec![(criterion("x", 1.0, f64::NAN), 5.0, String::new())],
        "",
        vec![],
    );
    assert_eq!(zero_weights.score, 0.0);
}
