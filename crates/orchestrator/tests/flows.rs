#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The decision flow, the CEO idle loop, budgets, loop detection and escalation, on a real
//! SQLite store with scripted agents and LLM.

mod common;

use std::sync::Arc;

use agentd_agent_core::{Agent, Role, TaskKind, TaskSpec};
use agentd_memory::{LogQuery, MemoryStore, SystemClock, TaskQuery, TaskStatus, TaskStore};
use agentd_orchestrator::{
    BUDGET_MEMORY_AGENT, BudgetBook, BudgetDenial, BudgetSettings, Metrics, RunLimits, Spend,
};
use common::*;

fn research(title: &str) -> TaskSpec {
    let mut spec = TaskSpec::new(title, "Look into it and report");
    spec.kind = TaskKind::Research;
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposal_gets_parallel_verdicts_then_ceo_decision_creates_project_tasks() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let project = vec![research("Survey the market"), research("Draft the pricing")];
    let ceo = Arc::new(ScriptedAgent::new(Role::Ceo).with_plan(project));
    let mut roster: Vec<Arc<dyn Agent>> = vec![ceo];
    roster.extend(agents(&[
        Role::Cfo,
        Role::Risk,
        Role::Legal,
        Role::TechLead,
        Role::Product,
    ]));
    let (orchestrator, _, _) = world.orchestrator(&store, roster, settings(), false).await;
    let mut idea = TaskSpec::new("Offer a paid tier", "Charge teams for hosted agents");
    idea.kind = TaskKind::Proposal;
    let root = orchestrator.submit(idea, None).await.unwrap();

    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();

    // intake + 4 verdicts + decide + 2 project tasks.
    assert_eq!(summary.completed, 8, "{summary:?}");
    let progress = orchestrator.pipeline_progress(&root).await.unwrap();
    for role in ["cfo", "risk", "legal", "tech_lead"] {
        let verdict = &progress[&format!("verdict/{role}")];
        assert_eq!(verdict["approve"], true, "{role}: {verdict}");
        assert_eq!(
            verdict["criteria"][0]["criterion"]["name"],
            format!("{role}_ok")
        );
    }
    assert_eq!(progress["decide"]["approve"], true);
    let decisions = store.query_decisions(LogQuery::default()).await.unwrap();
    let decision = decisions
        .iter()
        .find(|d| d.decision_type == "proposal")
        .unwrap();
    assert_eq!(decision.agent_name, "ceo");
    assert_eq!(
        decision.decision_data["verdicts"].as_array().unwrap().len(),
        4
    );
    let children = store
        .query(TaskQuery {
            parent_id: Some(root.clone()),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    let project: Vec<_> = children.iter().filter(|r| r.role == "product").collect();
    assert_eq!(project.len(), 2, "{children:#?}");
    assert!(project.iter().all(|r| r.status == TaskStatus::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_proposal_creates_nothing() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let ceo = Arc::new(ScriptedAgent::new(Role::Ceo).with_plan(vec![research("Never")]));
    let mut risk = ScriptedAgent::new(Role::Risk);
    risk.approve = false;
    let roster: Vec<Arc<dyn Agent>> =
        vec![ceo, Arc::new(risk), Arc::new(ScriptedAgent::new(Role::Cfo))];
    let (orchestrator, _, _) = world.orchestrator(&store, roster, settings(), false).await;
    let mut idea = TaskSpec::new("Risky idea", "Ship without tests");
    idea.kind = TaskKind::Proposal;
    let root = orchestrator.submit(idea, None).await.unwrap();
    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();
    assert_eq!(
        summary.completed, 4,
        "intake, 2 verdicts, decide: {summary:?}"
    );
    let progress = orchestrator.pipeline_progress(&root).await.unwrap();
    assert_eq!(progress["decide"]["approve"], false);
    assert!(!progress.contains_key("decide/project"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_ceo_generates_work_once_in_drain_mode() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let ceo = Arc::new(
        ScriptedAgent::new(Role::Ceo)
            .with_plan(vec![research("Study users"), research("Study rivals")]),
    );
    let roster: Vec<Arc<dyn Agent>> =
        vec![ceo.clone(), Arc::new(ScriptedAgent::new(Role::Product))];
    let (orchestrator, _, _) = world.orchestrator(&store, roster, settings(), false).await;

    let summary = orchestrator
        .run_once(RunLimits {
            max_tasks: None,
            goal: Some("understand the market".into()),
        })
        .await
        .unwrap();

    assert_eq!(
        (summary.generated, summary.completed),
        (2, 2),
        "{summary:?}"
    );
    let records = store.query(TaskQuery::default()).await.unwrap();
    assert_eq!(records.len(), 2);
    let activities = store.query_activities(LogQuery::default()).await.unwrap();
    let planning = activities
        .iter()
        .find(|a| a.activity == "generated_tasks")
        .unwrap();
    assert_eq!(planning.details["goal"], "understand the market");
    // Idle again with nothing more planned: the next drain returns at once.
    let again = orchestrator.run_once(RunLimits::default()).await.unwrap();
    assert_eq!((again.generated, again.completed), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_task_budget_stops_before_the_first_call_and_says_so() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let mut settings = settings();
    // Worst case of one call: 1000 output tokens at $0.60/M = $0.0006 > $0.0001.
    settings.budget.per_task_usd = Some(0.0001);
    let (orchestrator, handle, book) = world
        .orchestrator(&store, agents(&[Role::Product]), settings, false)
        .await;
    let id = orchestrator
        .submit(research("Expensive research"), None)
        .await
        .unwrap();

    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();

    assert_eq!(
        handle.usage().total.requests,
        0,
        "no call reached the provider"
    );
    assert!(
        matches!(summary.budget_stops.as_slice(), [BudgetDenial::Task { limit_usd, .. }] if *limit_usd == 0.0001),
        "{summary:?}"
    );
    let record = store.get(&id).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::DeadLetter);
    let error = record.last_error.unwrap();
    assert!(
        error.contains("paused by its budget") && error.contains("per_task_usd"),
        "{error}"
    );
    assert!(world.sink.kinds().contains(&"budget"));
    assert!(book.task_spend(&id).await.unwrap().spent_usd <= 0.0001);
    assert_eq!(
        summary.escalated, 0,
        "a budget stop is not escalated (that would spend more)"
    );
    let metrics = orchestrator.metrics().encode().unwrap();
    assert!(
        metrics.contains("agentd_budget_denials_total{scope=\"task\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_budget_pauses_the_run_and_survives_a_restart() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let mut settings = settings();
    // Each call reserves ~$0.000616 and settles at $0.000045: room for a few calls only.
    settings.budget.per_day_usd = Some(0.0008);
    let (orchestrator, handle, _) = world
        .orchestrator(&store, agents(&[Role::Product]), settings.clone(), false)
        .await;
    for n in 0..6 {
        orchestrator
            .submit(research(&format!("Research {n}")), None)
            .await
            .unwrap();
    }
    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();
    assert!(summary.stopped_by_budget, "{summary:?}");
    assert_eq!(summary.completed, 5, "{summary:?}");
    assert!(
        matches!(summary.budget_stops.as_slice(), [BudgetDenial::Day { .. }]),
        "{summary:?}"
    );
    assert!(handle.usage().total.cost_usd <= 0.0008);
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let saved: Spend = serde_json::from_value(
        store
            .recall(BUDGET_MEMORY_AGENT, &format!("day/{day}"))
            .await
            .unwrap()
            .unwrap()
            .value,
    )
    .unwrap();
    assert!(
        saved.spent_usd > 0.0 && saved.spent_usd <= 0.0008,
        "{saved:?}"
    );
    assert!(saved.denied_calls >= 1);

    // A new book over the same store starts from the persisted spend, not from zero.
    let book = BudgetBook::new(
        settings.budget.clone(),
        handle.ledger().prices().clone(),
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        agentd_orchestrator::Alerts::default(),
        Metrics::default(),
    );
    let status = book.status().await.unwrap();
    assert_eq!(status.today.spent_usd, saved.spent_usd);
    // The restarted orchestrator denies what a fresh day's budget would have allowed.
    let (restarted, _, _) = world
        .orchestrator(&store, agents(&[Role::Product]), settings, false)
        .await;
    restarted
        .submit(research("After the restart"), None)
        .await
        .unwrap();
    let again = restarted.run_once(RunLimits::default()).await.unwrap();
    assert_eq!(again.completed, 0, "{again:?}");
    assert!(
        again.stopped_by_budget
            && matches!(again.budget_stops.as_slice(), [BudgetDenial::Day { .. }]),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpriced_model_is_denied_unless_allowed() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let handle = llm_handle();
    let prices = handle.ledger().prices().clone();
    for allow in [false, true] {
        let book = Arc::new(BudgetBook::new(
            BudgetSettings {
                allow_unpriced: allow,
                ..BudgetSettings::default()
            },
            prices.clone(),
            Arc::new(store.clone()),
            Arc::new(SystemClock),
            agentd_orchestrator::Alerts::default(),
            Metrics::default(),
        ));
        let guarded = book.guard(
            handle.client(),
            agentd_orchestrator::CallDefaults {
                model: "my-local-model".into(),
                max_tokens: 100,
            },
        );
        let result = guarded.chat(agentd_llm::ChatRequest::new("s", "u")).await;
        if allow {
            assert!(result.is_ok());
        } else {
            let error = result.unwrap_err().to_string();
            assert!(
                error.contains("HTTP 402") && error.contains("my-local-model has no price"),
                "{error}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_escalate_then_quarantine_the_fingerprint() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let mut settings = settings();
    settings.max_task_attempts = 1;
    settings.loop_threshold = 2;
    let product = Arc::new(ScriptedAgent::new(Role::Product).failing("Impossible"));
    let roster: Vec<Arc<dyn Agent>> =
        vec![product.clone(), Arc::new(ScriptedAgent::new(Role::Ceo))];
    let (orchestrator, _, _) = world.orchestrator(&store, roster, settings, false).await;
    let first = orchestrator
        .submit(research("Impossible task 1"), None)
        .await
        .unwrap();
    orchestrator.run_once(RunLimits::default()).await.unwrap();
    let second = orchestrator
        .submit(research("Impossible task 2"), None)
        .await
        .unwrap();
    orchestrator.run_once(RunLimits::default()).await.unwrap();
    let third = orchestrator
        .submit(research("impossible TASK 3!"), None)
        .await
        .unwrap();
    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();

    for id in [&first, &second] {
        assert_eq!(
            store.get(id).await.unwrap().unwrap().status,
            TaskStatus::DeadLetter
        );
    }
    // The first failure was escalated to the CEO with its issues; the second hit the threshold.
    let escalations = store
        .query(TaskQuery {
            role: Some("ceo".into()),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(escalations.len(), 1, "{escalations:#?}");
    assert_eq!(escalations[0].parent_id.as_deref(), Some(first.as_str()));
    assert!(
        escalations[0].payload["task"]["description"]
            .as_str()
            .unwrap()
            .contains("scripted failure")
    );
    assert_eq!(
        store.get(&third).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );
    assert_eq!(summary.quarantined, 1);
    assert_eq!(
        product.calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the third never ran"
    );
    let kinds = world.sink.kinds();
    assert!(
        kinds.contains(&"escalation") && kinds.contains(&"loop"),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_stops_gracefully_on_shutdown() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let (orchestrator, _, _) = world
        .orchestrator(&store, agents(&[Role::Product]), settings(), false)
        .await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn({
        let orchestrator = orchestrator.clone();
        async move { orchestrator.run(RunLimits::default(), shutdown).await }
    });
    let id = orchestrator
        .submit(research("While running"), None)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.get(&id).await.unwrap().unwrap().status != TaskStatus::Completed {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never completed the task"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let status = orchestrator.status().await.unwrap();
    assert_eq!(status.queues["product"]["completed"], 1);
    // The metrics follow the queue: pending went back to 0 after the pass that saw it empty.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let metrics = orchestrator.metrics().encode().unwrap();
        if metrics.contains("agentd_queue_depth{role=\"product\",status=\"completed\"} 1")
            && metrics.contains("agentd_queue_depth{role=\"product\",status=\"pending\"} 0")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    let summary = tokio::time::timeout(std::time::Duration::from_secs(10), daemon)
        .await
        .expect("stops promptly")
        .unwrap()
        .unwrap();
    assert_eq!(summary.completed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_survives_a_failing_store_and_raises_a_critical_alert() {
    let world = World::new();
    let memory = world.store(Arc::new(SystemClock)).await;
    let mut tasks = agentd_memory::MockTaskStore::new();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    // Healthy at start, then every sweep and count fails.
    tasks.expect_counts().returning(move || {
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Ok(Vec::new())
        } else {
            Err(agentd_memory::MemoryError::Worker {
                message: "disk gone".into(),
            })
        }
    });
    tasks.expect_requeue_expired().returning(|| {
        Err(agentd_memory::MemoryError::Worker {
            message: "disk gone".into(),
        })
    });
    tasks.expect_claim().returning(|_, _, _| {
        Err(agentd_memory::MemoryError::Worker {
            message: "disk gone".into(),
        })
    });
    let sink = Arc::new(RecordingSink::default());
    let orchestrator = agentd_orchestrator::TaskOrchestrator::new(
        settings(),
        agentd_orchestrator::OrchestratorDeps {
            tasks: Arc::new(tasks),
            memory: Arc::new(memory),
            llm: llm_handle().client(),
            agents: agents(&[Role::Product]),
            repo: None,
            budget: None,
            alerts: agentd_orchestrator::Alerts::new(vec![sink.clone()]),
            metrics: Metrics::default(),
        },
    )
    .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn({
        let orchestrator = orchestrator.clone();
        async move { orchestrator.run(RunLimits::default(), shutdown).await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sink.kinds().contains(&"critical") {
        assert!(
            std::time::Instant::now() < deadline,
            "no critical alert: {:?}",
            sink.kinds()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!daemon.is_finished(), "the loop must keep going");
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), daemon)
        .await
        .expect("stops promptly despite the failing store")
        .unwrap()
        .unwrap();
    let metrics = orchestrator.metrics().encode().unwrap();
    assert!(
        metrics.contains("agentd_errors_total{kind=\"main_loop\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agentd_errors_total{kind=\"store\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_agent_fails_its_task_and_the_worker_goes_on() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let mut settings = settings();
    settings.max_task_attempts = 1;
    let (orchestrator, _, _) = world
        .orchestrator(&store, agents(&[Role::Product]), settings, false)
        .await;
    let boom = orchestrator.submit(research("Boom"), None).await.unwrap();
    let fine = orchestrator.submit(research("Fine"), None).await.unwrap();
    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();
    assert_eq!(
        (summary.completed, summary.dead_lettered),
        (1, 1),
        "{summary:?}"
    );
    let failed = store.get(&boom).await.unwrap().unwrap();
    assert_eq!(failed.status, TaskStatus::DeadLetter);
    assert!(
        failed
            .last_error
            .unwrap()
            .contains("panicked: scripted panic in Boom")
    );
    assert_eq!(
        store.get(&fine).await.unwrap().unwrap().status,
        TaskStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_budget_pauses_only_that_agents_queue() {
    let world = World::new();
    let store = world.store(Arc::new(SystemClock)).await;
    let mut settings = settings();
    // Room for one Product call (worst case ~$0.000606, settled at $0.000045), not two.
    settings.budget.per_agent_usd = Some(0.00062);
    let (orchestrator, _, _) = world
        .orchestrator(
            &store,
            agents(&[Role::Product, Role::Security]),
            settings,
            false,
        )
        .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            orchestrator
                .submit(research(&format!("Research {n}")), None)
                .await
                .unwrap(),
        );
    }
    let mut audit = research("Audit");
    audit.assigned_roles = vec![Role::Security];
    let audit = orchestrator.submit(audit, None).await.unwrap();

    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();

    assert!(
        matches!(summary.budget_stops.as_slice(), [BudgetDenial::Agent { agent, .. }] if agent == "product"),
        "{summary:?}"
    );
    let statuses: Vec<TaskStatus> = futures_status(&store, &ids).await;
    assert_eq!(
        statuses,
        [
            TaskStatus::Completed,
            TaskStatus::DeadLetter,
            TaskStatus::Pending
        ]
    );
    assert_eq!(
        store.get(&audit).await.unwrap().unwrap().status,
        TaskStatus::Completed,
        "security has its own budget"
    );
    assert!(
        !summary.stopped_by_budget,
        "only the product agent is paused"
    );
}

async fn futures_status(store: &agentd_memory::SqliteStore, ids: &[String]) -> Vec<TaskStatus> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.get(id).await.unwrap().unwrap().status);
    }
    out
}
