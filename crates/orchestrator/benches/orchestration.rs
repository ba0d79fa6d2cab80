//! Orchestration overhead with instant agents and an instant LLM (through the real client
//! stack and the budget guard): tasks per second through the full loop (claim, step,
//! saved output, follow-up enqueue, complete), and the cost of one pipeline step, on an
//! SQLite file on disk and on tmpfs (`/dev/shm`, the in-memory case).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_agent_core::{
    Agent, AgentContext, AgentError, Artifacts, Criterion as ApprovalCriterion, Role, Task,
    TaskKind, TaskOutcome, TaskResult, TaskSpec, Validation, Verdict, WorkState,
};
use agentd_llm::{
    ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, LlmSettings,
    ProbeReport, Usage, build_client_with,
};
use agentd_memory::{SqliteOptions, SqliteStore, SystemClock};
use agentd_orchestrator::{
    Alerts, BudgetBook, BudgetSettings, CallDefaults, Metrics, OrchestratorDeps,
    OrchestratorSettings, RunLimits, TaskOrchestrator,
};
use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct InstantLlm;

#[async_trait]
impl LlmClient for InstantLlm {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        Ok(ChatResponse {
            text: "ok".into(),
            tool_calls: Vec::new(),
            usage: Usage {
                input_tokens: 100,
                output_tokens: 50,
                ..Usage::default()
            },
            model: request.model().to_owned(),
            finish_reason: FinishReason::Stop,
            latency_ms: 0,
            request_id: None,
            from_cache: false,
        })
    }
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        Ok(self.chat(request).await?.into_stream())
    }
    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        Err(LlmError::Config {
            key: "provider",
            message: "bench".into(),
        })
    }
}

/// Makes one LLM call per task, then succeeds (reviewers with an approving verdict).
struct InstantAgent(Role);

#[async_trait]
impl Agent for InstantAgent {
    fn name(&self) -> &str {
        self.0.as_str()
    }
    fn role(&self) -> &Role {
        &self.0
    }
    fn system_prompt(&self) -> &str {
        "bench"
    }
    async fn process_task(
        &self,
        task: &Task,
        ctx: &AgentContext,
    ) -> Result<TaskResult, AgentError> {
        ctx.llm
            .chat(ChatRequest::new("bench", task.title.clone()))
            .await
            .map_err(|source| AgentError::Llm {
                role: self.0.clone(),
                during: "bench".into(),
                source: Box::new(source),
            })?;
        let verdict = self.0.is_criteria_reviewer() || self.0 == Role::TechLead;
        Ok(TaskResult {
            task_id: task.id.clone(),
            role: self.0.clone(),
            agent: self.0.as_str().into(),
            outcome: TaskOutcome::Succeeded,
            summary: "done".into(),
            output: serde_json::Value::Null,
            artifacts: Artifacts::default(),
            verdict: verdict.then(|| self.verdict()),
            follow_ups: Vec::new(),
            attempts: Vec::new(),
            usage: Default::default(),
        })
    }
    async fn validate_result(
        &self,
        _: &Task,
        _: &TaskResult,
        _: &AgentContext,
    ) -> Result<Validation, AgentError> {
        Ok(Validation {
            valid: true,
            score: 9.0,
            issues: Vec::new(),
        })
    }
    async fn generate_tasks(
        &self,
        _: &WorkState,
        _: &AgentContext,
    ) -> Result<Vec<TaskSpec>, AgentError> {
        Ok(Vec::new())
    }
    async fn review(
        &self,
        _: &Task,
        _: &TaskResult,
        _: &AgentContext,
    ) -> Result<Verdict, AgentError> {
        Ok(self.verdict())
    }
    async fn decide(
        &self,
        _: &Task,
        _: &[Verdict],
        _: &AgentContext,
    ) -> Result<Verdict, AgentError> {
        Ok(self.verdict())
    }
}

impl InstantAgent {
    fn verdict(&self) -> Verdict {
        Verdict::from_scores(
            self.0.clone(),
            vec![(
                ApprovalCriterion {
                    name: "ok".into(),
                    threshold: 5.0,
                    weight: 1.0,
                },
                8.0,
                String::new(),
            )],
            "fine",
            Vec::new(),
        )
    }
}

async fn orchestrator(db: &Path) -> TaskOrchestrator {
    let store = SqliteStore::open(db, SqliteOptions::default(), Arc::new(SystemClock))
        .await
        .unwrap();
    let llm = build_client_with(
        &LlmSettings {
            model: Some("gpt-4o-mini".into()),
            cache_ttl_s: 0,
            max_retries: 0,
            ..LlmSettings::default()
        },
        Arc::new(InstantLlm),
    )
    .unwrap();
    let metrics = Metrics::new(Some(llm.ledger()));
    let book = Arc::new(BudgetBook::new(
        BudgetSettings {
            per_day_usd: Some(1e9),
            per_task_usd: Some(1e9),
            ..BudgetSettings::default()
        },
        llm.ledger().prices().clone(),
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        Alerts::default(),
        metrics.clone(),
    ));
    let agents: Vec<Arc<dyn Agent>> = [
        Role::Ceo,
        Role::Product,
        Role::Cfo,
        Role::Risk,
        Role::Legal,
        Role::TechLead,
    ]
    .into_iter()
    .map(|role| Arc::new(InstantAgent(role)) as Arc<dyn Agent>)
    .collect();
    TaskOrchestrator::new(
        OrchestratorSettings {
            check_interval: 0.01,
            ..OrchestratorSettings::default()
        },
        OrchestratorDeps {
            tasks: Arc::new(store.clone()),
            memory: Arc::new(store),
            llm: book.guard(
                llm.client(),
                CallDefaults {
                    model: "gpt-4o-mini".into(),
                    max_tokens: 1000,
                },
            ),
            agents,
            repo: None,
            budget: Some(book),
            alerts: Alerts::default(),
            metrics,
        },
    )
    .unwrap()
}

fn spec(kind: TaskKind, n: u64) -> TaskSpec {
    let mut spec = TaskSpec::new(format!("task {n}"), "bench");
    spec.kind = kind;
    spec
}

const BATCH: u64 = 100;

fn databases() -> Vec<(&'static str, tempfile::TempDir)> {
    let mut dirs = vec![("sqlite_disk", tempfile::tempdir().unwrap())];
    if Path::new("/dev/shm").is_dir() {
        dirs.push(("sqlite_tmpfs", tempfile::tempdir_in("/dev/shm").unwrap()));
    }
    dirs
}

/// Runs `BATCH` tasks of `kind` through drain mode; returns (elapsed, records completed).
async fn drain(
    orchestrator: &TaskOrchestrator,
    kind: TaskKind,
    round: &mut u64,
) -> (Duration, u64) {
    for _ in 0..BATCH {
        *round += 1;
        orchestrator
            .submit(spec(kind.clone(), *round), None)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let summary = orchestrator.run_once(RunLimits::default()).await.unwrap();
    (started.elapsed(), summary.completed)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("orchestration");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    for (name, dir) in databases() {
        let db: PathBuf = dir.path().join("agentd.db");
        let orchestrator = runtime.block_on(orchestrator(&db));
        let mut round = 0;
        // Single-step tasks: tasks per second through the whole loop.
        group.throughput(Throughput::Elements(BATCH));
        group.bench_function(format!("single_step_tasks/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += runtime
                        .block_on(drain(&orchestrator, TaskKind::Research, &mut round))
                        .0;
                }
                total
            })
        });
        // Decision flow: 6 steps per proposal (intake, 4 parallel verdicts, decide); per step.
        group.throughput(Throughput::Elements(BATCH * 6));
        group.bench_function(format!("decision_flow_steps/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (elapsed, completed) =
                        runtime.block_on(drain(&orchestrator, TaskKind::Proposal, &mut round));
                    assert_eq!(completed, BATCH * 6);
                    total += elapsed;
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
