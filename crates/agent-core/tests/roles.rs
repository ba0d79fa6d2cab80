#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Role behaviour: criteria → verdict, the CEO's planning and decisions, QA's tests-first
//! files, the Tech Lead's diff review, peer review and custom roles.

mod common;

use agentd_agent_core::{
    AgentConfig, AgentError, Criterion, Priority, Role, Task, TaskBrief, TaskKind, Verdict,
    WorkState, build_agent, journal,
};
use agentd_memory::LogQuery;
use common::*;
use serde_json::json as j;

fn proposal() -> Task {
    let mut task = Task::new(
        "p-1",
        "Adopt a hosted vector database",
        "Move embeddings to a hosted vector DB at $400/month to cut query latency by 60%.",
    );
    task.kind = TaskKind::Proposal;
    task
}

fn criteria_reply(criteria: serde_json::Value) -> Reply {
    json(j!({"criteria": criteria, "reasoning": "cost and payback matter most here"}))
}

#[tokio::test]
async fn a_reviewer_chooses_criteria_then_scores_them_into_a_weighted_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        criteria_reply(j!([
            {"name": "monthly_cost", "threshold": 6, "weight": 2},
            {"name": "payback_period", "threshold": 5, "weight": 1}
        ])),
        json(j!({
            "scores": [
                {"name": "payback_period", "score": 7, "comment": "pays back in 4 months"},
                {"name": "monthly_cost", "score": 8, "comment": "within budget"}
            ],
            "reasoning": "affordable",
            "required_changes": []
        })),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let cfo = build_agent(Role::Cfo, AgentConfig::default()).unwrap();

    let result = cfo.process_task(&proposal(), &ctx).await.unwrap();

    assert!(result.succeeded());
    let verdict = result.verdict.clone().unwrap();
    assert_eq!(verdict.role, Role::Cfo);
    assert!(verdict.approve);
    assert!(
        (verdict.score - (2.0 * 8.0 + 7.0) / 3.0).abs() < 1e-9,
        "{}",
        verdict.score
    );
    let names: Vec<_> = verdict
        .criteria
        .iter()
        .map(|c| c.criterion.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["monthly_cost", "payback_period"],
        "in the chosen order"
    );
    assert!(verdict.criteria.iter().all(|c| c.passed));
    let requests = llm.requests();
    let evaluate = prompt_of(&requests[1]);
    assert!(
        evaluate.contains("- monthly_cost (passes at 6.0, weight 2.0)"),
        "{evaluate}"
    );
    let chosen = ctx
        .memory
        .query_decisions(LogQuery {
            kind: Some(journal::decision::APPROVAL_CRITERIA.into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        chosen[0].decision_data["criteria"][0]["name"],
        "monthly_cost"
    );
    assert_eq!(chosen[0].agent_name, "cfo");
}

#[tokio::test]
async fn a_criterion_below_its_threshold_rejects_and_bad_scoring_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        criteria_reply(j!([
            {"name": "data_residency", "threshold": 8, "weight": 3},
            {"name": "vendor_lock_in", "threshold": 5, "weight": 1}
        ])),
        // Scores an unknown criterion and misses one: fed back.
        json(
            j!({"scores": [{"name": "cost", "score": 9, "comment": ""}], "reasoning": "", "required_changes": []}),
        ),
        json(j!({
            "scores": [
                {"name": "data_residency", "score": 4, "comment": "data leaves the EU"},
                {"name": "vendor_lock_in", "score": 6, "comment": "export exists"}
            ],
            "reasoning": "residency is not guaranteed",
            "required_changes": ["choose an EU region"]
        })),
        json(j!({"valid": true, "score": 9, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let legal = build_agent(Role::Legal, AgentConfig::default()).unwrap();

    let result = legal.process_task(&proposal(), &ctx).await.unwrap();

    let verdict = result.verdict.unwrap();
    assert!(!verdict.approve);
    assert!(!verdict.criteria[0].passed && verdict.criteria[1].passed);
    assert_eq!(verdict.required_changes, ["choose an EU region"]);
    let correction = format!("{:?}", llm.requests()[2].messages.last().unwrap());
    assert!(
        correction.contains("\\\"cost\\\" is not one of the criteria"),
        "{correction}"
    );
}

#[tokio::test]
async fn criteria_with_duplicate_names_or_no_weight_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        criteria_reply(
            j!([{"name": "a", "threshold": 5, "weight": 1}, {"name": "a", "threshold": 5, "weight": 1}]),
        ),
        criteria_reply(j!([{"name": "a", "threshold": 5, "weight": 0}])),
        criteria_reply(j!([{"name": "a", "threshold": 5, "weight": 1}])),
        json(
            j!({"scores": [{"name": "a", "score": 5, "comment": "ok"}], "reasoning": "ok", "required_changes": []}),
        ),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let risk = build_agent(Role::Risk, AgentConfig::default()).unwrap();
    let result = risk.process_task(&proposal(), &ctx).await.unwrap();
    assert!(result.verdict.unwrap().approve);
    let requests = llm.requests();
    assert!(format!("{:?}", requests[1].messages.last()).contains("appears twice"));
    assert!(format!("{:?}", requests[2].messages.last()).contains("weight"));
}

fn verdict(role: Role, approve: bool, score: f64) -> Verdict {
    Verdict::from_scores(
        role,
        vec![(
            Criterion {
                name: "x".into(),
                threshold: 5.0,
                weight: 1.0,
            },
            score,
            String::new(),
        )],
        format!("approve={approve}"),
        if approve {
            vec![]
        } else {
            vec!["reduce cost".into()]
        },
    )
}

#[tokio::test]
async fn the_ceo_decides_from_verdicts_and_cannot_overrule_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        json(
            j!({"approve": true, "reasoning": "worth it", "conditions": ["review cost in 3 months"]}),
        ),
        json(j!({"approve": true, "reasoning": "worth it anyway", "conditions": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let ceo = build_agent(Role::Ceo, AgentConfig::default()).unwrap();
    let all_approve = [
        verdict(Role::Cfo, true, 8.0),
        verdict(Role::Security, true, 6.0),
    ];

    let decision = ceo.decide(&proposal(), &all_approve, &ctx).await.unwrap();
    assert!(decision.approve);
    assert_eq!(decision.role, Role::Ceo);
    assert!((decision.score - 7.0).abs() < 1e-9);
    assert_eq!(decision.required_changes, ["review cost in 3 months"]);
    let prompt = prompt_of(&llm.requests()[0]);
    assert!(
        prompt.contains("### cfo: APPROVE (weighted score 8.0)"),
        "{prompt}"
    );

    let vetoed = [
        verdict(Role::Cfo, true, 8.0),
        verdict(Role::Risk, false, 3.0),
    ];
    let decision = ceo.decide(&proposal(), &vetoed, &ctx).await.unwrap();
    assert!(!decision.approve, "a reviewer's rejection is a veto");
    assert!(
        decision.reasoning.contains("rejected by risk"),
        "{}",
        decision.reasoning
    );
    assert!(
        decision
            .required_changes
            .contains(&"risk: reduce cost".to_owned())
    );
    let history = ctx
        .memory
        .query_decisions(LogQuery {
            kind: Some(journal::decision::FINAL_DECISION.into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
}

#[tokio::test]
async fn the_ceo_generates_prioritised_tasks_from_goals_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        // An unknown role is fed back.
        json(
            j!({"tasks": [{"title": "t", "description": "d", "kind": "feature", "priority": "high", "roles": ["marketing"]}], "reasoning": "r"}),
        ),
        json(j!({
            "tasks": [
                {"title": "Write docs", "description": "README usage", "kind": "chore", "priority": "low", "roles": ["developer"]},
                {"title": "Fix flaky login test", "description": "It fails 1 in 10", "kind": "bugfix", "priority": "high", "roles": ["qa", "developer"], "rationale": "blocks releases"},
                {"title": "Health endpoint", "description": "GET /health", "kind": "feature", "priority": "medium", "roles": ["product", "qa", "developer", "tech_lead"]},
                {"title": "Ops runbook", "description": "on-call", "kind": "chore", "priority": "medium", "roles": ["ops"]}
            ],
            "reasoning": "stability first"
        })),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    ctx.context
        .set_strategy(agentd_memory::Scope::Global, "Reliability before features")
        .await
        .unwrap();
    ctx.context
        .set_goals(agentd_memory::Scope::Global, &["99.9% uptime".to_owned()])
        .await
        .unwrap();
    let config = AgentConfig {
        custom_roles: vec![Role::Custom("ops".into())],
        ..AgentConfig::default()
    };
    let ceo = build_agent(Role::Ceo, config).unwrap();
    let state = WorkState {
        done: vec![TaskBrief {
            id: "1".into(),
            title: "Login page".into(),
            role: Some(Role::Developer),
            note: String::new(),
        }],
        failing: vec![TaskBrief {
            id: "2".into(),
            title: "Login test".into(),
            role: Some(Role::Qa),
            note: "flaky".into(),
        }],
        pending: vec![],
        goal: Some("ship the health endpoint".into()),
        max_tasks: 3,
    };

    let specs = ceo.generate_tasks(&state, &ctx).await.unwrap();

    let titles: Vec<_> = specs.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Fix flaky login test", "Health endpoint", "Ops runbook"],
        "most urgent first, at most 3"
    );
    assert_eq!(specs[0].priority, Priority::High);
    assert_eq!(specs[0].assigned_roles, [Role::Qa, Role::Developer]);
    assert_eq!(specs[0].payload["rationale"], "blocks releases");
    assert_eq!(specs[2].assigned_roles, [Role::Custom("ops".into())]);
    let requests = llm.requests();
    let prompt = prompt_of(&requests[0]);
    assert!(
        prompt.contains("Reliability before features") && prompt.contains("99.9% uptime"),
        "{prompt}"
    );
    assert!(prompt.contains("- [2] Login test (qa): flaky"), "{prompt}");
    assert!(prompt.contains("ship the health endpoint"), "{prompt}");
    assert!(
        requests[0]
            .system
            .as_deref()
            .unwrap()
            .contains("security, ops.")
    );
    let correction = format!("{:?}", requests[1].messages.last().unwrap());
    assert!(
        correction.contains("unknown role \\\"marketing\\\""),
        "{correction}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.options.labels.role.as_deref() == Some("ceo"))
    );
}

#[tokio::test]
async fn the_ceo_plans_a_task_into_delegated_follow_ups() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        json(j!({"summary": "two steps", "tasks": [
            {"title": "Requirements", "description": "d", "kind": "requirements", "priority": "high", "roles": ["product"]},
            {"title": "Tests", "description": "d", "kind": "tests", "priority": "medium", "roles": ["qa"]}
        ]})),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let ceo = build_agent(Role::Ceo, AgentConfig::default()).unwrap();
    let result = ceo
        .process_task(&Task::new("g-1", "Health endpoint", "plan it"), &ctx)
        .await
        .unwrap();
    assert!(result.succeeded());
    assert_eq!(result.follow_ups.len(), 2);
    assert!(
        result
            .follow_ups
            .iter()
            .all(|f| f.parent_id.as_deref() == Some("g-1"))
    );
    assert_eq!(result.follow_ups[0].assigned_roles, [Role::Product]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qa_writes_only_test_files_first_and_they_must_fail() {
    if !require_program("pytest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let vcs = python_repo(&repo).await;
    let test_file =
        "from stats import mean\n\n\ndef test_mean():\n    assert mean([1, 2, 3]) == 2\n";
    let llm = ScriptedLlm::new(vec![
        // Includes an implementation file: refused and fed back.
        json(
            j!({"summary": "s", "constraints": [], "files": [{"path": "stats.py", "content": "def mean(x): ..."}]}),
        ),
        json(
            j!({"summary": "mean() tests", "constraints": ["mean of an empty list raises ValueError"], "files": [{"path": "tests/test_stats.py", "content": test_file}]}),
        ),
        json(j!({"valid": true, "score": 8, "issues": []})),
        json(j!({"type": "test", "scope": "stats", "subject": "add tests for mean", "body": ""})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(full_workspace(&repo, vcs.clone(), true));
    let qa = build_agent(
        Role::Qa,
        AgentConfig {
            auto_commit: true,
            ..AgentConfig::default()
        },
    )
    .unwrap();

    let result = qa
        .process_task(
            &Task::new("t-qa", "Tests for mean()", "mean of a list"),
            &ctx,
        )
        .await
        .unwrap();

    assert!(result.succeeded(), "{result:#?}");
    assert!(
        !repo.join("stats.py").exists(),
        "QA never writes implementation files"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("tests/test_stats.py")).unwrap(),
        test_file
    );
    assert_eq!(result.artifacts.files_written, ["tests/test_stats.py"]);
    assert_eq!(
        result.output["constraints"][0],
        "mean of an empty list raises ValueError"
    );
    assert!(!result.artifacts.tests.unwrap().is_green());
    let correction = format!("{:?}", llm.requests()[1].messages.last().unwrap());
    assert!(
        correction.contains("QA writes only test files") && correction.contains("stats.py"),
        "{correction}"
    );
    let prompt = prompt_of(&llm.requests()[0]);
    assert!(
        prompt.contains("Test framework: pytest") && prompt.contains("- test_calc.py"),
        "{prompt}"
    );
    let log = vcs.log(&repo, None, 1).await.unwrap();
    assert_eq!(log[0].summary, "test(stats): add tests for mean");
    assert!(log[0].message.contains("Task-Id: t-qa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_that_already_pass_are_sent_back_to_qa() {
    if !require_program("pytest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let vcs = python_repo(&repo).await;
    std::fs::write(repo.join("calc.py"), FIXED_CALC).unwrap();
    let passing = "from calc import add\n\n\ndef test_zero():\n    assert add(0, 0) == 0\n";
    let llm = ScriptedLlm::new(vec![json(
        j!({"summary": "s", "constraints": [], "files": [{"path": "test_zero.py", "content": passing}]}),
    )]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(full_workspace(&repo, vcs, true));
    let mut config = AgentConfig::default();
    config.correction.max_fix_attempts = 0;
    config.correction.max_approach_changes = 0;
    let qa = build_agent(Role::Qa, config).unwrap();
    let result = qa
        .process_task(&Task::new("t-2", "Zero", "add(0,0)"), &ctx)
        .await
        .unwrap();
    assert!(!result.succeeded());
    assert!(
        result.attempts[0].issues[0].contains("already pass"),
        "{:?}",
        result.attempts[0].issues
    );
    assert_eq!(
        llm.requests().len(),
        1,
        "no model validation of objectively failed work"
    );
}

#[tokio::test]
async fn the_tech_lead_reviews_the_real_diff_and_requires_changes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let vcs = python_repo(&repo).await;
    let base = vcs.log(&repo, None, 1).await.unwrap()[0].id.clone();
    std::fs::write(
        repo.join("calc.py"),
        "def add(a, b):\n    return eval(f'{a}+{b}')\n",
    )
    .unwrap();
    let llm = ScriptedLlm::new(vec![
        json(j!({
            "scores": [
                {"name": "correctness", "score": 7, "comment": "works"},
                {"name": "tests", "score": 7, "comment": "covered"},
                {"name": "security", "score": 1, "comment": "eval on input"},
                {"name": "design", "score": 5, "comment": "odd"},
                {"name": "readability", "score": 6, "comment": "ok"}
            ],
            "reasoning": "eval is unacceptable",
            "required_changes": ["calc.py: replace eval with a + b"]
        })),
        json(j!({"valid": true, "score": 9, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(full_workspace(&repo, vcs, false));
    let mut task = Task::new("r-1", "Review add()", "review the change");
    task.kind = TaskKind::Review;
    task.payload = j!({"base": base});
    let lead = build_agent(Role::TechLead, AgentConfig::default()).unwrap();

    let result = lead.process_task(&task, &ctx).await.unwrap();

    let verdict = result.verdict.unwrap();
    assert!(!verdict.approve);
    assert_eq!(
        verdict.required_changes,
        ["calc.py: replace eval with a + b"]
    );
    let security = verdict
        .criteria
        .iter()
        .find(|c| c.criterion.name == "security")
        .unwrap();
    assert!(!security.passed);
    let prompt = prompt_of(&llm.requests()[0]);
    assert!(prompt.contains("+    return eval(f'{a}+{b}')"), "{prompt}");
    assert!(
        prompt.contains("- correctness (passes at 7.0, weight 3.0)"),
        "{prompt}"
    );
}

#[tokio::test]
async fn any_role_can_peer_review_another_roles_result() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        json(
            j!({"summary": "reqs", "requirements": ["r"], "acceptance_criteria": ["a"], "out_of_scope": []}),
        ),
        json(j!({"valid": true, "score": 8, "issues": []})),
        json(j!({"approve": true, "score": 6, "reasoning": "thin", "required_changes": []})),
        json(j!({"approve": true, "score": 9, "reasoning": "good", "required_changes": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let product = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let security = build_agent(Role::Security, AgentConfig::default()).unwrap();
    let task = Task::new("t-9", "Login", "password login");
    let result = product.process_task(&task, &ctx).await.unwrap();

    let low = security.review(&task, &result, &ctx).await.unwrap();
    assert!(
        !low.approve,
        "a score below the acceptance score is not an approval"
    );
    let high = security.review(&task, &result, &ctx).await.unwrap();
    assert!(high.approve);
    assert_eq!(high.role, Role::Security);
    let prompt = prompt_of(&llm.requests()[2]);
    assert!(
        prompt.contains("As the security, review the result another agent (product)"),
        "{prompt}"
    );
    assert_eq!(
        llm.requests()[2].options.labels.role.as_deref(),
        Some("security")
    );
}

#[tokio::test]
async fn custom_roles_need_a_description_and_work_from_it() {
    let error = build_agent(Role::Custom("ops".into()), AgentConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(&error, AgentError::Config { key, .. } if key == "agents.ops.description"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        json(
            j!({"summary": "runbook drafted", "output": {"steps": ["page on-call"]}, "follow_ups": [
                {"title": "Automate paging", "description": "d", "kind": "chore", "priority": "low", "roles": ["developer"]}
            ]}),
        ),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let config = AgentConfig {
        description: Some("Keeps production running: runbooks, alerts, on-call.".into()),
        ..AgentConfig::default()
    };
    let ops = build_agent(Role::Custom("ops".into()), config).unwrap();
    assert!(ops.system_prompt().contains("Keeps production running"));
    let result = ops
        .process_task(&Task::new("o-1", "Runbook", "write it"), &ctx)
        .await
        .unwrap();
    assert_eq!(result.output["steps"][0], "page on-call");
    assert_eq!(result.follow_ups[0].parent_id.as_deref(), Some("o-1"));
    assert_eq!(
        llm.requests()[0].options.labels.role.as_deref(),
        Some("ops")
    );
}

#[tokio::test]
async fn invalid_configs_are_refused_naming_the_setting() {
    let mut config = AgentConfig::default();
    config.correction.accept_score = 11.0;
    let error = build_agent(Role::Qa, config).err().unwrap().to_string();
    assert!(error.contains("correction.accept_score"), "{error}");
    let config: Result<AgentConfig, _> = serde_json::from_value(j!({"temprature": 0.3}));
    assert!(config.unwrap_err().to_string().contains("temprature"));
    let config: AgentConfig =
        serde_json::from_value(j!({"temperature": 0.3, "model": "m", "max_tokens": 10})).unwrap();
    assert_eq!(config.llm.model.as_deref(), Some("m"));
}

#[tokio::test]
async fn a_rejected_result_goes_back_to_its_author_with_the_required_changes() {
    let dir = tempfile::tempdir().unwrap();
    let reqs = |s: &str| {
        json(
            j!({"summary": s, "requirements": ["r"], "acceptance_criteria": ["a"], "out_of_scope": []}),
        )
    };
    let llm = ScriptedLlm::new(vec![
        reqs("v1"),
        json(j!({"valid": true, "score": 8, "issues": []})),
        json(
            j!({"approve": false, "score": 4, "reasoning": "no rate limit", "required_changes": ["limit login attempts"]}),
        ),
        reqs("v2 with rate limit"),
        json(j!({"valid": true, "score": 9, "issues": []})),
        json(j!({"approve": true, "score": 9, "reasoning": "good", "required_changes": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let product = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let security = build_agent(Role::Security, AgentConfig::default()).unwrap();
    let task = Task::new("t-7", "Login", "password login");

    let reviewed = agentd_agent_core::process_with_peer_review(
        product.as_ref(),
        security.as_ref(),
        &task,
        &ctx,
        2,
    )
    .await
    .unwrap();

    assert!(reviewed.approved);
    assert_eq!(reviewed.reviews.len(), 2);
    assert_eq!(reviewed.result.summary, "v2 with rate limit");
    let revision = prompt_of(&llm.requests()[3]);
    assert!(
        revision.contains("limit login attempts")
            && revision.contains("\"reviewer\": \"security\""),
        "{revision}"
    );
    assert_eq!(llm.remaining(), 0);
}

#[tokio::test]
async fn peer_review_revisions_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let reqs = json(
        j!({"summary": "s", "requirements": ["r"], "acceptance_criteria": ["a"], "out_of_scope": []}),
    );
    let reject = json(
        j!({"approve": false, "score": 2, "reasoning": "no", "required_changes": ["everything"]}),
    );
    let valid = json(j!({"valid": true, "score": 8, "issues": []}));
    let llm = ScriptedLlm::new(vec![
        reqs.clone(),
        valid.clone(),
        reject.clone(),
        reqs,
        valid,
        reject,
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let product = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let lead = build_agent(Role::Risk, AgentConfig::default()).unwrap();
    let reviewed = agentd_agent_core::process_with_peer_review(
        product.as_ref(),
        lead.as_ref(),
        &Task::new("t", "x", "y"),
        &ctx,
        1,
    )
    .await
    .unwrap();
    assert!(!reviewed.approved);
    assert_eq!(reviewed.reviews.len(), 2);
    assert_eq!(llm.remaining(), 0);
}

#[tokio::test]
async fn the_tech_lead_judges_a_proposal_on_criteria_it_chooses() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        criteria_reply(j!([{"name": "migration_effort", "threshold": 5, "weight": 1}])),
        json(
            j!({"scores": [{"name": "migration_effort", "score": 6, "comment": "two weeks"}], "reasoning": "feasible", "required_changes": []}),
        ),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let lead = build_agent(Role::TechLead, AgentConfig::default()).unwrap();
    let result = lead.process_task(&proposal(), &ctx).await.unwrap();
    let verdict = result.verdict.unwrap();
    assert!(verdict.approve);
    assert_eq!(verdict.role, Role::TechLead);
    assert_eq!(
        result.attempts[0].prompt,
        "reviewer/criteria.v1+reviewer/evaluate.v1"
    );
    assert!(prompt_of(&llm.requests()[0]).contains("from your point of view as tech_lead"));
}
