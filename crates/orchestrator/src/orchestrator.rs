//! The `TaskOrchestrator`: queues, workers, the main loop, escalation and loop detection.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agentd_agent_core::{Agent, Role, Task, TaskBrief, TaskKind, TaskSpec, WorkState};
use agentd_deploy::Deployer;
use agentd_llm::LlmClient;
use agentd_memory::{
    ClaimedTask, FailureKind, MemoryError, MemoryStore, NewActivity, NewTask, Page, TaskQuery,
    TaskRecord, TaskStatus, TaskStore,
};
use agentd_testrunner::{RunOptions, TestRunner};
use agentd_vcs::Vcs;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

use crate::OrchestratorError;
use crate::alert::{Alert, AlertKind, Alerts};
use crate::budget::{BudgetBook, BudgetDenial};
use crate::envelope::{Envelope, Pipeline, RELEASE_QUEUE, fingerprint, route};
use crate::metrics::Metrics;
use crate::settings::OrchestratorSettings;
use crate::steplog::StepLog;

/// Time limit of one store operation.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest lease taken on a task; heartbeats renew it while the work runs, so after a
/// crash a task is reclaimed within this time even when `task_timeout` is long.
const MAX_LEASE: Duration = Duration::from_secs(30);
/// Claims a record gets beyond `max_task_attempts` for crashes: a lease that expired
/// because the process died does not use up one of the task's attempts, but a task that
/// kills the process every time still ends in the dead-letter queue.
pub const CRASH_ALLOWANCE: u32 = 10;
/// The `agent_name` of loop-detection records in the memory store (key: the fingerprint).
pub const LOOP_MEMORY_AGENT: &str = "agentd.loops";

/// The repository side of the TDD pipeline.
#[derive(Clone)]
pub struct RepoSetup {
    /// Version control.
    pub vcs: Arc<dyn Vcs>,
    /// The main worktree, with `main_branch` checked out; merges land here.
    pub repo: PathBuf,
    /// The protected branch that only approved merges move (e.g. `main`).
    pub main_branch: String,
    /// Directory for the per-task linked worktrees (created if missing).
    pub worktrees: PathBuf,
    /// Runs the project's tests (the red check after QA, the tests-first gate).
    pub tests: Arc<dyn TestRunner>,
    /// Extra options of every test run (e.g. `CARGO_TARGET_DIR`).
    pub test_options: RunOptions,
    /// Deploys the merged revision; `None`: no deploy step.
    pub deployer: Option<Arc<dyn Deployer>>,
    /// The environment name deployments are recorded under (e.g. `production`).
    pub environment: String,
}

impl std::fmt::Debug for RepoSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSetup")
            .field("repo", &self.repo)
            .field("main_branch", &self.main_branch)
            .field("worktrees", &self.worktrees)
            .finish_non_exhaustive()
    }
}

/// Everything the orchestrator drives. The binary builds it from the config.
#[derive(Clone)]
pub struct OrchestratorDeps {
    /// The durable queue.
    pub tasks: Arc<dyn TaskStore>,
    /// Activity log, decisions, pipeline progress, budget and loop records.
    pub memory: Arc<dyn MemoryStore>,
    /// The LLM client handed to agents; wrap it with [`BudgetBook::guard`] for budgets.
    pub llm: Arc<dyn LlmClient>,
    /// One agent per role; its role names its queue.
    pub agents: Vec<Arc<dyn Agent>>,
    /// Repository, tests and deployment for the TDD pipeline; without it code tasks fail.
    pub repo: Option<RepoSetup>,
    /// The budget ledger behind the guard, to tell budget stops from other failures.
    pub budget: Option<Arc<BudgetBook>>,
    /// Alert destinations.
    pub alerts: Alerts,
    /// Metrics registry.
    pub metrics: Metrics,
}

impl std::fmt::Debug for OrchestratorDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorDeps")
            .field("agents", &self.agents.len())
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

/// Options of [`TaskOrchestrator::run_once`] and [`TaskOrchestrator::run`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Stop claiming after this many task records were processed.
    pub max_tasks: Option<u64>,
    /// The CEO's goal for this run (`--goal`), overriding `orchestrator.goal`.
    pub goal: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Task records completed (each pipeline step is one record).
    pub completed: u64,
    /// Failed attempts (retried or dead-lettered).
    pub failed: u64,
    /// Tasks dead-lettered.
    pub dead_lettered: u64,
    /// Escalation tasks created.
    pub escalated: u64,
    /// Tasks cancelled because their fingerprint is quarantined.
    pub quarantined: u64,
    /// Tasks the CEO generated.
    pub generated: u64,
    /// Releases (merge into the protected branch) done.
    pub merged: u64,
    /// Deployments done.
    pub deployed: u64,
    /// Budget denials that paused work, in order.
    pub budget_stops: Vec<BudgetDenial>,
    /// Whether the run stopped because the daily budget is used up.
    pub stopped_by_budget: bool,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// A task being worked on right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningTask {
    /// The task record.
    pub task_id: String,
    /// Its queue.
    pub role: String,
    /// The pipeline step.
    pub step: String,
    /// Title.
    pub title: String,
    /// The worker.
    pub worker: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A snapshot for `agentd status` and the progress display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrchestratorStatus {
    /// Tasks per queue and status.
    pub queues: BTreeMap<String, BTreeMap<String, u64>>,
    /// Tasks in progress in this process.
    pub running: Vec<RunningTask>,
    /// Today's spend and what is left, when budgets are on.
    pub budget: Option<crate::budget::BudgetStatus>,
    /// Whether claiming is paused by the daily budget.
    pub paused_by_budget: bool,
    /// The totals of this process so far.
    pub summary: RunSummary,
}

/// How a worker's task ended, for the summary.
pub(crate) struct StepDone {
    /// Stored as the record's result.
    pub(crate) result: serde_json::Value,
    /// Follow-up records to enqueue (idempotency keys set) before completing.
    pub(crate) next: Vec<NewTask>,
    /// Side effects worth counting.
    pub(crate) merged: bool,
    pub(crate) deployed: bool,
}

pub(crate) struct Shared {
    pub(crate) settings: OrchestratorSettings,
    pub(crate) tasks: Arc<dyn TaskStore>,
    pub(crate) memory: Arc<dyn MemoryStore>,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) agents: HashMap<String, Arc<dyn Agent>>,
    pub(crate) repo: Option<RepoSetup>,
    pub(crate) budget: Option<Arc<BudgetBook>>,
    pub(crate) alerts: Alerts,
    pub(crate) metrics: Metrics,
    pub(crate) steps: StepLog,
    task_timeout: Duration,
    check_interval: Duration,
    work_added: Notify,
    running: Mutex<HashMap<String, RunningTask>>,
    summary: Mutex<RunSummary>,
    paused_by_budget: AtomicBool,
    pause_day: Mutex<Option<String>>,
    /// Queues whose agent used up its daily budget, with the UTC day.
    paused_queues: Mutex<BTreeMap<String, String>>,
    processed: AtomicU64,
    goal: Mutex<Option<String>>,
}

/// The orchestrator. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct TaskOrchestrator {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for TaskOrchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskOrchestrator")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

async fn timed<T, E: Into<OrchestratorError>>(
    operation: &str,
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, OrchestratorError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(OrchestratorError::Timeout {
            operation: operation.to_owned(),
            after: limit,
        }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TaskOrchestrator {
    /// Builds an orchestrator.
    ///
    /// # Errors
    /// [`OrchestratorError::Config`] for unusable settings or two agents with the same role.
    pub fn new(
        settings: OrchestratorSettings,
        deps: OrchestratorDeps,
    ) -> Result<Self, OrchestratorError> {
        settings.validate()?;
        let mut agents = HashMap::new();
        for agent in deps.agents {
            let role = agent.role().as_str().to_owned();
            if agents.insert(role.clone(), agent).is_some() {
                return Err(OrchestratorError::Config {
                    key: "agents".into(),
                    message: format!("two agents play role {role}; give each role one agent"),
                });
            }
        }
        let goal = settings.goal.clone();
        Ok(Self {
            shared: Arc::new(Shared {
                task_timeout: settings.task_timeout()?,
                check_interval: settings.check_interval()?,
                steps: StepLog::new(Arc::clone(&deps.memory)),
                settings,
                tasks: deps.tasks,
                memory: deps.memory,
                llm: deps.llm,
                agents,
                repo: deps.repo,
                budget: deps.budget,
                alerts: deps.alerts,
                metrics: deps.metrics,
                work_added: Notify::new(),
                running: Mutex::new(HashMap::new()),
                summary: Mutex::new(RunSummary::default()),
                paused_by_budget: AtomicBool::new(false),
                pause_day: Mutex::new(None),
                paused_queues: Mutex::new(BTreeMap::new()),
                processed: AtomicU64::new(0),
                goal: Mutex::new(goal),
            }),
        })
    }

    /// The metrics registry (serve [`Metrics::encode`] at `--metrics-addr`).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The queues workers are started for: every agent's role, plus `release` when a
    /// repository is set up.
    pub fn queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self.shared.agents.keys().cloned().collect();
        if self.shared.repo.is_some() {
            queues.push(RELEASE_QUEUE.to_owned());
        }
        queues.sort();
        queues
    }

    /// Enqueues a new task (a root of its pipeline, routed by kind and roles) and returns
    /// its id. With `idempotency_key`, submitting the same key again returns the first id.
    ///
    /// # Errors
    /// The store's error.
    pub async fn submit(
        &self,
        spec: TaskSpec,
        idempotency_key: Option<String>,
    ) -> Result<String, OrchestratorError> {
        let new = self.shared.root_task(spec, idempotency_key);
        let enqueued = timed(
            "enqueue a task",
            STORE_TIMEOUT,
            self.shared.tasks.enqueue(vec![new]),
        )
        .await?;
        self.shared.work_added.notify_waiters();
        enqueued.into_iter().next().map(|e| e.id).ok_or_else(|| {
            OrchestratorError::Store(MemoryError::Corrupt {
                what: "enqueueing one task returned no id".into(),
            })
        })
    }

    /// The saved progress of pipeline `root_id`: every finished step and its output, by
    /// step name (`requirements`, `tests`, `implementation/0`, `review/0`, `release`, ...),
    /// for `agentd task ID`.
    ///
    /// # Errors
    /// The store's error.
    pub async fn pipeline_progress(
        &self,
        root_id: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>, OrchestratorError> {
        Ok(self.shared.steps.all(root_id).await?.into_iter().collect())
    }

    /// Queue depths, tasks in progress, budget and totals.
    ///
    /// # Errors
    /// The store's error.
    pub async fn status(&self) -> Result<OrchestratorStatus, OrchestratorError> {
        let counts = timed("count tasks", STORE_TIMEOUT, self.shared.tasks.counts()).await?;
        let mut queues: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for count in counts {
            queues
                .entry(count.role)
                .or_default()
                .insert(count.status.as_str().to_owned(), count.count);
        }
        let budget = match &self.shared.budget {
            Some(book) => Some(book.status().await?),
            None => None,
        };
        let mut running: Vec<RunningTask> = lock(&self.shared.running).values().cloned().collect();
        running.sort_by_key(|a| a.since);
        Ok(OrchestratorStatus {
            queues,
            running,
            budget,
            paused_by_budget: self.shared.paused_by_budget.load(Ordering::Relaxed),
            summary: lock(&self.shared.summary).clone(),
        })
    }

    /// Drain mode (`agentd run --once`): processes until nothing is pending, running or
    /// retrying; if that happens before any work was done, lets the CEO generate tasks once
    /// and drains those too. Returns what was done.
    ///
    /// # Errors
    /// Only when the store cannot be read at all at the start; later errors are logged,
    /// counted and survived.
    pub async fn run_once(&self, options: RunLimits) -> Result<RunSummary, OrchestratorError> {
        let (_keep, shutdown) = watch::channel(false);
        self.engine(options, shutdown, true).await
    }

    /// Daemon mode: workers per queue and the main loop every `check_interval`, until
    /// `shutdown` becomes true. Then no new task is claimed and the steps in progress are
    /// finished (each is bounded by `task_timeout`) before this returns. A caller that
    /// cannot wait that long may drop the future: the abandoned records' leases (at most
    /// 30 s) expire and the next start reclaims them; saved step outputs make the replay
    /// cheap and free of repeated side effects.
    ///
    /// # Errors
    /// Only when the store cannot be read at all at the start.
    pub async fn run(
        &self,
        options: RunLimits,
        shutdown: watch::Receiver<bool>,
    ) -> Result<RunSummary, OrchestratorError> {
        self.engine(options, shutdown, false).await
    }

    async fn engine(
        &self,
        options: RunLimits,
        mut shutdown: watch::Receiver<bool>,
        drain: bool,
    ) -> Result<RunSummary, OrchestratorError> {
        let started = Instant::now();
        let shared = &self.shared;
        if let Some(goal) = options.goal.clone() {
            *lock(&shared.goal) = Some(goal);
        }
        // Fail fast if the store is unusable; afterwards every error is survived.
        timed("count tasks", STORE_TIMEOUT, shared.tasks.counts()).await?;
        *lock(&shared.summary) = RunSummary::default();
        shared.processed.store(0, Ordering::Relaxed);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for queue in self.queues() {
            let count = if queue == RELEASE_QUEUE {
                1
            } else {
                shared.settings.workers_for(&queue)
            };
            for n in 1..=count {
                let worker = Worker {
                    shared: Arc::clone(shared),
                    queue: queue.clone(),
                    name: format!("{queue}-{n}"),
                    stop: stop_rx.clone(),
                    max_tasks: options.max_tasks,
                    poll: if drain {
                        Duration::from_millis(20)
                    } else {
                        shared.check_interval.min(Duration::from_secs(1))
                    },
                };
                workers.spawn(worker.run());
            }
        }
        let tick = if drain {
            Duration::from_millis(10)
        } else {
            shared.check_interval
        };
        let mut ceo_asked = false;
        let mut idle_passes = 0u32;
        let mut failed_passes = 0u32;
        loop {
            let pass = shared.main_loop_pass(drain, &mut ceo_asked).await;
            let mut wait = tick;
            if pass.is_ok() {
                failed_passes = 0;
            }
            match pass {
                Ok(PassOutcome::Idle) if drain => break,
                Ok(PassOutcome::Idle) => idle_passes += 1,
                Ok(PassOutcome::Busy) => idle_passes = 0,
                Err(error) => {
                    shared.metrics.error("main_loop");
                    failed_passes += 1;
                    tracing::warn!(%error, failed_passes, "main loop pass failed; backing off");
                    if failed_passes == 3 {
                        shared
                            .raise(Alert::new(
                                AlertKind::Critical,
                                format!("the main loop failed 3 times in a row: {error}"),
                            ))
                            .await;
                    }
                    wait = shared.check_interval * failed_passes.min(12);
                }
            }
            // In daemon mode an idle CEO is asked again every ten idle passes.
            if !drain && idle_passes >= 10 {
                ceo_asked = false;
                idle_passes = 0;
            }
            if let Some(max) = options.max_tasks
                && shared.processed.load(Ordering::Relaxed) >= max
                && lock(&shared.running).is_empty()
            {
                break;
            }
            if drain
                && shared.paused_by_budget.load(Ordering::Relaxed)
                && lock(&shared.running).is_empty()
            {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
            if *shutdown.borrow() {
                break;
            }
        }
        let _ = stop_tx.send(true);
        while workers.join_next().await.is_some() {}
        let mut summary = lock(&shared.summary).clone();
        summary.stopped_by_budget = shared.paused_by_budget.load(Ordering::Relaxed);
        summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(summary)
    }

    /// One pass of the main loop (health, stuck-task sweep, idle CEO), as the daemon runs
    /// it every `check_interval`. Exposed for embedding programs with their own scheduler.
    ///
    /// # Errors
    /// The store's error.
    pub async fn tick(&self) -> Result<(), OrchestratorError> {
        let mut ceo_asked = false;
        self.shared
            .main_loop_pass(false, &mut ceo_asked)
            .await
            .map(|_| ())
    }
}

enum PassOutcome {
    /// Nothing pending, running or retrying, and the CEO had nothing (more) to add.
    Idle,
    Busy,
}

impl Shared {
    /// The store's attempt limit: the task's failures plus the crash allowance.
    fn claim_limit(&self) -> u32 {
        self.settings
            .max_task_attempts
            .saturating_add(CRASH_ALLOWANCE)
    }

    /// Failures recorded so far (transitions to retrying; expired leases go to pending and
    /// do not count).
    async fn failures_so_far(&self, id: &str) -> u32 {
        match self.tasks.history(id).await {
            Ok(history) => {
                let count = history
                    .iter()
                    .filter(|t| t.to == TaskStatus::Retrying)
                    .count();
                u32::try_from(count).unwrap_or(u32::MAX)
            }
            Err(error) => {
                tracing::warn!(%error, task_id = id, "task history unavailable; counting claims instead");
                u32::MAX
            }
        }
    }

    /// Stops claiming until the UTC day after `day`.
    pub(crate) fn pause_for_budget(&self, day: &str) {
        *lock(&self.pause_day) = Some(day.to_owned());
        self.paused_by_budget.store(true, Ordering::Relaxed);
    }

    /// Whether `queue`'s agent is paused by its daily budget today (by the budget's clock).
    fn queue_paused(&self, queue: &str) -> bool {
        let Some(book) = &self.budget else {
            return false;
        };
        let mut paused = lock(&self.paused_queues);
        match paused.get(queue) {
            Some(day) if *day == book.today() => true,
            Some(_) => {
                paused.remove(queue);
                false
            }
            None => false,
        }
    }

    pub(crate) fn has_agent(&self, role: &Role) -> bool {
        self.agents.contains_key(role.as_str())
    }

    /// A root task record for `spec`, routed.
    pub(crate) fn root_task(&self, spec: TaskSpec, idempotency_key: Option<String>) -> NewTask {
        let route = route(&spec, |role| self.has_agent(role));
        let priority = spec.priority;
        let deadline = spec.deadline;
        let parent = spec.parent_id.clone();
        let envelope = Envelope {
            task: Task::from_spec(String::new(), spec),
            pipeline: route.pipeline,
            step: route.step.to_owned(),
            root_id: None,
            round: 0,
            escalation: false,
        };
        let mut new = NewTask::new(
            route.queue,
            serde_json::to_value(&envelope).unwrap_or_default(),
        )
        .with_priority(priority.into())
        .with_max_attempts(self.claim_limit());
        if let Some(deadline) = deadline {
            new = new.with_deadline(deadline);
        }
        if let Some(parent) = parent {
            new = new.with_parent(parent);
        }
        if let Some(key) = idempotency_key {
            new = new.with_idempotency_key(key);
        }
        new
    }

    /// A record for the next step of a pipeline, keyed `<root>:<key>` so that a replayed
    /// step enqueues nothing twice.
    pub(crate) fn step_task(
        &self,
        queue: &str,
        root: &str,
        key: &str,
        envelope: Envelope,
    ) -> NewTask {
        let mut new = NewTask::new(queue, serde_json::to_value(&envelope).unwrap_or_default())
            .with_priority(envelope.task.priority.into())
            .with_parent(root)
            .with_idempotency_key(format!("{root}:{key}"))
            .with_max_attempts(self.claim_limit());
        if let Some(deadline) = envelope.task.deadline {
            new = new.with_deadline(deadline);
        }
        new
    }

    async fn main_loop_pass(
        &self,
        drain: bool,
        ceo_asked: &mut bool,
    ) -> Result<PassOutcome, OrchestratorError> {
        // Stuck tasks: expired leases go back to the queue (or dead-letter).
        let moved = timed(
            "requeue expired leases",
            STORE_TIMEOUT,
            self.tasks.requeue_expired(),
        )
        .await?;
        for id in moved {
            if let Some(record) = self.tasks.get(&id).await?
                && record.status == TaskStatus::DeadLetter
            {
                let reason = record
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "lease expired".into());
                self.on_dead_letter(&record, &reason).await;
            }
        }
        // Health: queue depths and budget.
        let counts = timed("count tasks", STORE_TIMEOUT, self.tasks.counts()).await?;
        let mut active = 0;
        // The store lists only non-zero counts: every status of every role seen is set, so
        // a queue that emptied reads 0 instead of its last depth.
        let roles: std::collections::BTreeSet<&str> =
            counts.iter().map(|c| c.role.as_str()).collect();
        for role in roles {
            for status in TaskStatus::ALL {
                let count = counts
                    .iter()
                    .find(|c| c.role == role && c.status == status)
                    .map_or(0, |c| c.count);
                self.metrics.set_queue_depth(role, status.as_str(), count);
            }
        }
        for count in &counts {
            let waiting = matches!(count.status, TaskStatus::Pending | TaskStatus::Retrying);
            // Work waiting for an agent paused by its budget does not keep a drain going.
            if count.status == TaskStatus::Running || (waiting && !self.queue_paused(&count.role)) {
                active += count.count;
            }
        }
        if let Some(book) = &self.budget {
            let status = book.status().await?;
            let exhausted = status.day_remaining_usd.is_some_and(|left| left <= 0.0);
            let paused_today = lock(&self.pause_day).as_deref() == Some(status.day.as_str());
            let was = self.paused_by_budget.load(Ordering::Relaxed);
            if exhausted {
                self.pause_for_budget(&status.day);
            } else if was && !paused_today {
                // A new day: the daily limits start over.
                self.paused_by_budget.store(false, Ordering::Relaxed);
            }
            if exhausted && !was {
                self.raise(Alert::new(
                    AlertKind::Budget,
                    "budget.per_day_usd is used up: no task is claimed until the next UTC day",
                ))
                .await;
            }
        }
        let busy = active > 0 || !lock(&self.running).is_empty();
        if busy {
            return Ok(PassOutcome::Busy);
        }
        if self.paused_by_budget.load(Ordering::Relaxed) {
            return Ok(PassOutcome::Idle);
        }
        // Drain mode asks the CEO only when it found nothing to do: it empties the queue it
        // was given, or plans once from an idle start.
        if *ceo_asked || (drain && self.processed.load(Ordering::Relaxed) > 0) {
            return Ok(PassOutcome::Idle);
        }
        *ceo_asked = true;
        let generated = self.ceo_generate().await?;
        if generated == 0 {
            return Ok(PassOutcome::Idle);
        }
        Ok(PassOutcome::Busy)
    }

    /// The idle loop: the CEO plans new root tasks from the goal and the state of the work.
    async fn ceo_generate(&self) -> Result<u64, OrchestratorError> {
        let Some(ceo) = self.agents.get(Role::Ceo.as_str()).cloned() else {
            return Ok(0);
        };
        let since = Utc::now() - chrono::TimeDelta::days(1);
        let brief = |record: &TaskRecord| {
            let envelope: Option<Envelope> = serde_json::from_value(record.payload.clone()).ok();
            TaskBrief {
                id: record.id.clone(),
                title: envelope
                    .as_ref()
                    .map(|e| e.task.title.clone())
                    .unwrap_or_default(),
                role: record.role.parse().ok(),
                note: record.last_error.clone().unwrap_or_default(),
            }
        };
        let query = |status| TaskQuery {
            status: Some(status),
            created_after: Some(since),
            page: Page::first(50),
            ..TaskQuery::default()
        };
        let done = self.tasks.query(query(TaskStatus::Completed)).await?;
        let failing = self.tasks.query(query(TaskStatus::DeadLetter)).await?;
        let state = WorkState {
            done: done
                .iter()
                .filter(|r| r.parent_id.is_none())
                .map(brief)
                .collect(),
            failing: failing.iter().map(brief).collect(),
            pending: Vec::new(),
            goal: lock(&self.goal).clone(),
            max_tasks: u32::try_from(self.settings.max_generated_tasks).unwrap_or(u32::MAX),
        };
        let ctx = self.agent_context(&ceo, "ceo-planning", None)?;
        let specs = timed("CEO task generation", self.task_timeout, async {
            ceo.generate_tasks(&state, &ctx)
                .await
                .map_err(OrchestratorError::from)
        })
        .await?;
        let specs: Vec<TaskSpec> = specs
            .into_iter()
            .take(self.settings.max_generated_tasks)
            .collect();
        let count = specs.len() as u64;
        if count == 0 {
            return Ok(0);
        }
        let new: Vec<NewTask> = specs
            .into_iter()
            .map(|spec| self.root_task(spec, None))
            .collect();
        timed(
            "enqueue generated tasks",
            STORE_TIMEOUT,
            self.tasks.enqueue(new),
        )
        .await?;
        self.work_added.notify_waiters();
        lock(&self.summary).generated += count;
        self.log_activity(
            "ceo",
            "generated_tasks",
            serde_json::json!({ "count": count, "goal": state.goal }),
        )
        .await;
        Ok(count)
    }

    /// The context an agent works with for one task: the LLM labelled with the pipeline
    /// root (for budgets), memory, and optionally a workspace.
    pub(crate) fn agent_context(
        &self,
        agent: &Arc<dyn Agent>,
        root_id: &str,
        workspace: Option<agentd_agent_core::TaskWorkspace>,
    ) -> Result<agentd_agent_core::AgentContext, OrchestratorError> {
        let llm: Arc<dyn LlmClient> = Arc::new(crate::steplog::TaskLabels {
            inner: Arc::clone(&self.llm),
            root_id: root_id.to_owned(),
            agent: agent.name().to_owned(),
            role: agent.role().as_str().to_owned(),
        });
        let mut ctx = agentd_agent_core::AgentContext::new(llm, Arc::clone(&self.memory));
        if let Some(workspace) = workspace {
            ctx = ctx.with_workspace(workspace);
        }
        Ok(ctx)
    }

    pub(crate) async fn raise(&self, alert: Alert) {
        self.metrics.alert(alert.kind.as_str());
        self.alerts.raise(alert).await;
    }

    pub(crate) async fn log_activity(
        &self,
        agent: &str,
        activity: &str,
        details: serde_json::Value,
    ) {
        let entry = NewActivity {
            agent_name: agent.to_owned(),
            activity: activity.to_owned(),
            details,
        };
        if let Err(error) = self.memory.append_activities(vec![entry]).await {
            self.metrics.error("activity_log");
            tracing::warn!(%error, "could not append to the activity log");
        }
    }

    /// Loop detection and escalation for a task that failed for good.
    async fn on_dead_letter(&self, record: &TaskRecord, reason: &str) {
        lock(&self.summary).dead_lettered += 1;
        let Ok(envelope) = serde_json::from_value::<Envelope>(record.payload.clone()) else {
            return;
        };
        let fp = fingerprint(&record.role, &envelope.task);
        match self.count_loop_failure(&fp, &record.id).await {
            Ok(true) => {
                self.raise(
                    Alert::new(
                        AlertKind::Loop,
                        format!(
                            "task fingerprint {fp} ({}) failed {} times: quarantined, no more retries or escalations",
                            envelope.task.title, self.settings.loop_threshold
                        ),
                    )
                    .with_task(record.id.clone())
                    .with_role(record.role.clone())
                    .with_details(serde_json::json!({ "fingerprint": fp, "last_error": reason })),
                )
                .await;
                return;
            }
            Ok(false) => {}
            Err(error) => {
                self.metrics.error("loop_detection");
                tracing::warn!(%error, task_id = %record.id, "loop detection record not updated");
            }
        }
        if envelope.escalation {
            return;
        }
        if let Err(error) = self.escalate(record, &envelope, reason).await {
            self.metrics.error("escalation");
            tracing::warn!(%error, task_id = %record.id, "escalation failed");
        }
    }

    /// Counts a final failure of fingerprint `fp`; true when it reaches the threshold now.
    async fn count_loop_failure(&self, fp: &str, task_id: &str) -> Result<bool, OrchestratorError> {
        let mut record: LoopRecord = match self.memory.recall(LOOP_MEMORY_AGENT, fp).await? {
            Some(entry) => serde_json::from_value(entry.value).unwrap_or_default(),
            None => LoopRecord::default(),
        };
        if record.task_ids.iter().any(|id| id == task_id) {
            return Ok(false);
        }
        record.task_ids.push(task_id.to_owned());
        let newly =
            !record.quarantined && record.task_ids.len() >= self.settings.loop_threshold as usize;
        record.quarantined |= newly;
        let value = serde_json::to_value(&record).unwrap_or_default();
        self.memory.remember(LOOP_MEMORY_AGENT, fp, value).await?;
        Ok(newly)
    }

    async fn is_quarantined(&self, fp: &str) -> Result<bool, OrchestratorError> {
        Ok(match self.memory.recall(LOOP_MEMORY_AGENT, fp).await? {
            Some(entry) => serde_json::from_value::<LoopRecord>(entry.value)
                .map(|r| r.quarantined)
                .unwrap_or(false),
            None => false,
        })
    }

    /// Hands a failed task to the Tech Lead (code steps) or the CEO (everything else), with
    /// the issues of every attempt from the task's history.
    async fn escalate(
        &self,
        record: &TaskRecord,
        envelope: &Envelope,
        reason: &str,
    ) -> Result<(), OrchestratorError> {
        // The CEO re-plans (its process_task turns a task into delegated follow-ups); without
        // a CEO, code steps go to the Tech Lead.
        let code_step = matches!(record.role.as_str(), "developer" | "qa" | RELEASE_QUEUE);
        let (role, kind) = if self.has_agent(&Role::Ceo) {
            (Role::Ceo, TaskKind::Planning)
        } else if code_step && self.has_agent(&Role::TechLead) {
            (Role::TechLead, TaskKind::Review)
        } else {
            return Ok(());
        };
        let history = self.tasks.history(&record.id).await?;
        let mut issues: Vec<String> = history
            .iter()
            .filter(|t| matches!(t.to, TaskStatus::Retrying | TaskStatus::DeadLetter))
            .map(|t| t.reason.clone())
            .collect();
        if issues.last().map(String::as_str) != Some(reason) {
            issues.push(reason.to_owned());
        }
        let mut spec = TaskSpec::new(
            format!("Escalation: {}", envelope.task.title),
            format!(
                "Task {} ({} step {}) failed {} times. Decide what to do next.\nIssues of every attempt:\n- {}",
                record.id,
                record.role,
                envelope.step,
                record.attempts,
                issues.join("\n- ")
            ),
        );
        spec.kind = kind;
        spec.priority = agentd_agent_core::Priority::High;
        spec.assigned_roles = vec![role.clone()];
        spec.parent_id = Some(record.id.clone());
        spec.payload = serde_json::json!({
            "escalated_from": record.id,
            "step": envelope.step,
            "issues": issues,
        });
        let escalation = Envelope {
            task: Task::from_spec(String::new(), spec),
            pipeline: Pipeline::Single,
            step: "work".into(),
            root_id: None,
            round: 0,
            escalation: true,
        };
        let new = NewTask::new(
            role.as_str(),
            serde_json::to_value(&escalation).unwrap_or_default(),
        )
        .with_priority(agentd_memory::Priority::HIGH)
        .with_parent(record.id.clone())
        .with_idempotency_key(format!("{}:escalation", record.id))
        .with_max_attempts(self.claim_limit());
        let enqueued = self.tasks.enqueue(vec![new]).await?;
        self.work_added.notify_waiters();
        if enqueued.iter().any(|e| e.created) {
            lock(&self.summary).escalated += 1;
            self.raise(
                Alert::new(
                    AlertKind::Escalation,
                    format!("task {} escalated to {role}: {reason}", record.id),
                )
                .with_task(record.id.clone())
                .with_role(record.role.clone()),
            )
            .await;
        }
        Ok(())
    }
}

/// Loop-detection state of one fingerprint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LoopRecord {
    /// Tasks with this fingerprint that failed for good.
    task_ids: Vec<String>,
    /// Whether new tasks with it are cancelled on sight.
    quarantined: bool,
}

struct Worker {
    shared: Arc<Shared>,
    queue: String,
    name: String,
    stop: watch::Receiver<bool>,
    max_tasks: Option<u64>,
    poll: Duration,
}

impl Worker {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let over_limit = self
                .max_tasks
                .is_some_and(|max| self.shared.processed.load(Ordering::Relaxed) >= max);
            if over_limit
                || self.shared.paused_by_budget.load(Ordering::Relaxed)
                || self.shared.queue_paused(&self.queue)
            {
                self.idle().await;
                continue;
            }
            let lease = self.shared.task_timeout.min(MAX_LEASE);
            let claimed = timed(
                "claim a task",
                STORE_TIMEOUT,
                self.shared.tasks.claim(&self.queue, &self.name, lease),
            )
            .await;
            match claimed {
                Ok(Some(claimed)) => {
                    backoff = Duration::from_millis(100);
                    self.shared.processed.fetch_add(1, Ordering::Relaxed);
                    let span = tracing::info_span!(
                        "task",
                        task_id = %claimed.task.id,
                        role = %self.queue,
                        worker = %self.name
                    );
                    self.process(claimed, lease).instrument(span).await;
                }
                Ok(None) => self.idle().await,
                Err(error) => {
                    self.shared.metrics.error("store");
                    tracing::warn!(%error, queue = %self.queue, worker = %self.name, "claim failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn idle(&mut self) {
        let notified = self.shared.work_added.notified();
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(self.poll) => {}
            _ = self.stop.changed() => {}
        }
    }

    async fn process(&self, claimed: ClaimedTask, lease: Duration) {
        let ClaimedTask {
            task: record,
            token,
        } = claimed;
        let started = Instant::now();
        let envelope: Envelope = match serde_json::from_value(record.payload.clone()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let message = format!("payload is not an orchestrator task: {error}");
                self.finish_failed(&record, token, &message, Failure::Permanent, started)
                    .await;
                return;
            }
        };
        let mut task = envelope.task.clone();
        task.id = record.id.clone();
        task.attempts = record.attempts.saturating_sub(1);
        task.parent_id = record.parent_id.clone().or(task.parent_id);
        let fp = fingerprint(&record.role, &task);
        match self.shared.is_quarantined(&fp).await {
            Ok(true) => {
                let reason = format!("fingerprint {fp} is quarantined after repeated failures");
                if let Err(error) = self.shared.tasks.cancel(&record.id, &reason).await {
                    tracing::warn!(%error, task_id = %record.id, "could not cancel a quarantined task");
                }
                lock(&self.shared.summary).quarantined += 1;
                self.shared
                    .raise(
                        Alert::new(
                            AlertKind::Loop,
                            format!("task {} cancelled: {reason}", record.id),
                        )
                        .with_task(record.id.clone())
                        .with_role(self.queue.clone()),
                    )
                    .await;
                return;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "loop detection unavailable"),
        }
        lock(&self.shared.running).insert(
            record.id.clone(),
            RunningTask {
                task_id: record.id.clone(),
                role: self.queue.clone(),
                step: envelope.step.clone(),
                title: task.title.clone(),
                worker: self.name.clone(),
                since: Utc::now(),
            },
        );
        // A panicking agent must not take the worker down with it: the panic becomes the
        // attempt's error.
        let work = async {
            std::panic::AssertUnwindSafe(crate::pipelines::run_step(
                &self.shared,
                &record,
                &envelope,
                &task,
            ))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(OrchestratorError::Step {
                    task_id: record.id.clone(),
                    step: "panic",
                    message: format!("the step panicked: {message}"),
                })
            })
        };
        let outcome = tokio::select! {
            result = tokio::time::timeout(self.shared.task_timeout, work) => match result {
                Ok(result) => Some(result),
                Err(_) => Some(Err(OrchestratorError::Timeout {
                    operation: format!("task {} step {}", record.id, envelope.step),
                    after: self.shared.task_timeout,
                })),
            },
            lost = self.keep_lease(&record.id, token, lease) => {
                tracing::warn!(task_id = %record.id, error = %lost, "lease lost; the work is dropped");
                None
            }
        };
        lock(&self.shared.running).remove(&record.id);
        let root = envelope.root(&record.id).to_owned();
        match outcome {
            None => self.shared.metrics.error("lease_lost"),
            Some(Ok(done)) => {
                self.finish_done(&record, token, done, started, &envelope)
                    .await
            }
            Some(Err(error)) => {
                let denial = self.shared.budget.as_ref().and_then(|b| {
                    let denial = b.denial_for(&root);
                    if denial.is_some() {
                        b.clear_denial(&root);
                    }
                    denial
                });
                if let Some(denial) = denial {
                    let message = OrchestratorError::BudgetExceeded {
                        task_id: root.clone(),
                        denial: denial.clone(),
                    }
                    .to_string();
                    if let Some(book) = &self.shared.budget {
                        match &denial {
                            BudgetDenial::Day { .. } => self.shared.pause_for_budget(&book.today()),
                            BudgetDenial::Agent { agent, .. } => {
                                // Every queue this agent serves waits for the next UTC day.
                                let mut paused = lock(&self.shared.paused_queues);
                                for (queue, served_by) in &self.shared.agents {
                                    if served_by.name() == agent {
                                        paused.insert(queue.clone(), book.today());
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    lock(&self.shared.summary).budget_stops.push(denial);
                    // Dead-lettered without escalation: asking another agent would spend more.
                    self.finish_failed(&record, token, &message, Failure::Budget, started)
                        .await;
                    return;
                }
                self.shared.metrics.error(error_kind(&error));
                let kind = if matches!(
                    error,
                    OrchestratorError::Rejected { .. } | OrchestratorError::InvalidTask { .. }
                ) {
                    Failure::Permanent
                } else {
                    Failure::Transient
                };
                if matches!(error, OrchestratorError::Vcs(_)) {
                    self.shared
                        .raise(
                            Alert::new(
                                AlertKind::Git,
                                format!("git problem in task {}: {error}", record.id),
                            )
                            .with_task(record.id.clone())
                            .with_role(self.queue.clone()),
                        )
                        .await;
                }
                if is_api_limit(&error) {
                    self.shared
                        .raise(
                            Alert::new(
                                AlertKind::ApiLimit,
                                format!("LLM provider limit in task {}: {error}", record.id),
                            )
                            .with_task(record.id.clone())
                            .with_role(self.queue.clone()),
                        )
                        .await;
                }
                self.finish_failed(&record, token, &error.to_string(), kind, started)
                    .await;
            }
        }
    }

    /// Renews the lease every third of its length; returns only when it is lost.
    async fn keep_lease(&self, id: &str, token: u64, lease: Duration) -> OrchestratorError {
        let mut failures = 0;
        loop {
            tokio::time::sleep(lease / 3).await;
            match timed(
                "heartbeat",
                STORE_TIMEOUT,
                self.shared.tasks.heartbeat(id, token, lease),
            )
            .await
            {
                Ok(_) => failures = 0,
                Err(error @ OrchestratorError::Store(MemoryError::StaleLease { .. })) => {
                    return error;
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, task_id = id, "heartbeat failed");
                    if failures >= 3 {
                        return error;
                    }
                }
            }
        }
    }

    async fn finish_done(
        &self,
        record: &TaskRecord,
        token: u64,
        done: StepDone,
        started: Instant,
        envelope: &Envelope,
    ) {
        let shared = &self.shared;
        if !done.next.is_empty() {
            // Enqueued before completing: a crash in between replays the step, whose saved
            // output and idempotency keys make the replay enqueue nothing twice.
            if let Err(error) = timed(
                "enqueue next steps",
                STORE_TIMEOUT,
                shared.tasks.enqueue(done.next),
            )
            .await
            {
                shared.metrics.error("store");
                tracing::warn!(%error, task_id = %record.id, "next steps not enqueued; the step will be replayed");
                return;
            }
            shared.work_added.notify_waiters();
        }
        match timed(
            "complete a task",
            STORE_TIMEOUT,
            shared.tasks.complete(&record.id, token, done.result),
        )
        .await
        {
            Ok(_) => {
                shared
                    .metrics
                    .task_finished(&self.queue, true, started.elapsed());
                shared.metrics.step_finished(
                    envelope.pipeline.as_str(),
                    &envelope.step,
                    started.elapsed(),
                );
                let mut summary = lock(&shared.summary);
                summary.completed += 1;
                summary.merged += u64::from(done.merged);
                summary.deployed += u64::from(done.deployed);
            }
            Err(error) => {
                shared.metrics.error("store");
                tracing::warn!(%error, task_id = %record.id, "could not complete the task; it will be replayed");
            }
        }
    }

    async fn finish_failed(
        &self,
        record: &TaskRecord,
        token: u64,
        message: &str,
        failure: Failure,
        started: Instant,
    ) {
        let shared = &self.shared;
        let kind = match failure {
            Failure::Transient => FailureKind::Transient,
            Failure::Permanent | Failure::Budget => FailureKind::Permanent,
        };
        shared
            .metrics
            .task_finished(&self.queue, false, started.elapsed());
        lock(&shared.summary).failed += 1;
        tracing::warn!(task_id = %record.id, role = %self.queue, error = message, "task attempt failed");
        // `max_task_attempts` counts failures, not claims (see CRASH_ALLOWANCE).
        let kind = if shared.failures_so_far(&record.id).await.saturating_add(1)
            >= shared.settings.max_task_attempts
        {
            FailureKind::Permanent
        } else {
            kind
        };
        match timed(
            "fail a task",
            STORE_TIMEOUT,
            shared.tasks.fail(&record.id, token, message, kind),
        )
        .await
        {
            Ok(updated) if updated.status == TaskStatus::DeadLetter => {
                if failure == Failure::Budget {
                    // Not escalated: asking another agent would spend more.
                    lock(&shared.summary).dead_lettered += 1;
                } else {
                    shared.on_dead_letter(&updated, message).await;
                }
            }
            Ok(_) => {}
            Err(error) => {
                shared.metrics.error("store");
                tracing::warn!(%error, task_id = %record.id, "could not record the failure; the lease will expire");
            }
        }
    }
}

/// How a failed attempt is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Retried while attempts remain.
    Transient,
    /// Dead-lettered and escalated at once.
    Permanent,
    /// Dead-lettered without escalation: a budget stopped it.
    Budget,
}

fn error_kind(error: &OrchestratorError) -> &'static str {
    match error {
        OrchestratorError::Store(_) => "store",
        OrchestratorError::Llm(_) => "llm",
        OrchestratorError::Agent(_) => "agent",
        OrchestratorError::Vcs(_) => "git",
        OrchestratorError::Tests(_) => "tests",
        OrchestratorError::Deploy(_) => "deploy",
        OrchestratorError::Timeout { .. } => "timeout",
        OrchestratorError::Files(_) => "files",
        _ => "step",
    }
}

fn is_api_limit(error: &OrchestratorError) -> bool {
    let text = error.to_string();
    [
        "HTTP 429",
        "HTTP 401",
        "HTTP 403",
        "HTTP 529",
        "rate limit",
        "quota",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}
