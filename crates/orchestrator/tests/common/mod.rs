//! Shared test fixtures: a scripted LLM, scripted role agents that really write files and
//! call the LLM through the context they are given, a real git repository with a bare
//! remote, a real SQLite store and a real test runner on a tiny cargo crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use agentd_agent_core::{
    Agent, AgentContext, AgentError, Artifacts, Criterion, Role, Task, TaskKind, TaskOutcome,
    TaskResult, TaskSpec, Validation, Verdict, WorkState,
};
use agentd_llm::{
    ChatRequest, ChatResponse, ChatStream, FinishReason, LlmClient, LlmError, LlmHandle,
    LlmSettings, ProbeReport, Usage, build_client_with,
};
use agentd_memory::{Clock, SqliteOptions, SqliteStore, SystemClock};
use agentd_orchestrator::{
    Alert, AlertSink, Alerts, BudgetBook, BudgetSettings, CallDefaults, LogAlertSink, Metrics,
    OrchestratorDeps, OrchestratorError, OrchestratorSettings, RepoSetup, TaskOrchestrator,
};
use async_trait::async_trait;

pub const MODEL: &str = "gpt-4o-mini";

/// An LLM that answers at once with a fixed text and usage (100 tokens in, 50 out).
pub struct InstantLlm;

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
        Ok(ProbeReport {
            provider: "instant".into(),
            endpoint: "-".into(),
            detail: "ok".into(),
        })
    }
}

/// The standard client stack (defaults, metering) over [`InstantLlm`].
pub fn llm_handle() -> LlmHandle {
    llm_handle_with(Arc::new(InstantLlm))
}

/// The standard client stack (defaults, metering) over `backend`.
pub fn llm_handle_with(backend: Arc<dyn LlmClient>) -> LlmHandle {
    let settings = LlmSettings {
        model: Some(MODEL.into()),
        cache_ttl_s: 0,
        max_retries: 0,
        max_tokens: 1000,
        ..LlmSettings::default()
    };
    build_client_with(&settings, backend).unwrap()
}

/// Collects alerts for assertions.
#[derive(Default)]
pub struct RecordingSink {
    pub alerts: Mutex<Vec<Alert>>,
}

#[async_trait]
impl AlertSink for RecordingSink {
    async fn send(&self, alert: &Alert) -> Result<(), OrchestratorError> {
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

impl RecordingSink {
    pub fn kinds(&self) -> Vec<&'static str> {
        self.alerts
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.kind.as_str())
            .collect()
    }
}

/// A role agent with scripted behaviour. Every method makes one LLM call through the
/// context's client (so budgets, labels and metrics see it), then acts.
pub struct ScriptedAgent {
    pub role: Role,
    pub name: String,
    /// Process calls so far.
    pub calls: AtomicU32,
    /// Titles for which `process_task` fails (loop detection).
    pub fail_titles: Vec<String>,
    /// What the CEO generates when idle (taken once).
    pub plan: Mutex<Vec<TaskSpec>>,
    /// Whether V-team reviewers approve.
    pub approve: bool,
}

impl ScriptedAgent {
    pub fn new(role: Role) -> Self {
        Self {
            name: role.as_str().to_owned(),
            role,
            calls: AtomicU32::new(0),
            fail_titles: Vec::new(),
            plan: Mutex::new(Vec::new()),
            approve: true,
        }
    }

    pub fn with_plan(self, plan: Vec<TaskSpec>) -> Self {
        *self.plan.lock().unwrap() = plan;
        self
    }

    pub fn failing(mut self, title: &str) -> Self {
        self.fail_titles.push(title.to_owned());
        self
    }

    fn result(&self, task: &Task, summary: &str) -> TaskResult {
        TaskResult {
            task_id: task.id.clone(),
            role: self.role.clone(),
            agent: self.name.clone(),
            outcome: TaskOutcome::Succeeded,
            summary: summary.to_owned(),
            output: serde_json::Value::Null,
            artifacts: Artifacts::default(),
            verdict: None,
            follow_ups: Vec::new(),
            attempts: Vec::new(),
            usage: Default::default(),
        }
    }

    async fn think(&self, ctx: &AgentContext, task_id: &str) -> Result<(), AgentError> {
        let mut request = ChatRequest::new("scripted", format!("work on {task_id}"));
        request.options.labels.task_id = Some(task_id.to_owned());
        ctx.llm
            .chat(request)
            .await
            .map_err(|source| AgentError::Llm {
                role: self.role.clone(),
                during: format!("task {task_id}"),
                source: Box::new(source),
            })?;
        Ok(())
    }

    fn verdict(&self, approve: bool) -> Verdict {
        Verdict::from_scores(
            self.role.clone(),
            vec![(
                Criterion {
                    name: format!("{}_ok", self.role),
                    threshold: 5.0,
                    weight: 1.0,
                },
                if approve { 8.0 } else { 2.0 },
                "scripted".into(),
            )],
            "scripted judgement",
            Vec::new(),
        )
    }
}

fn write(ctx: &AgentContext, path: &str, contents: &str) {
    let workspace = ctx.workspace.as_ref().expect("a workspace for this role");
    workspace.files.write(path, contents).unwrap();
}

pub const TEST_FILE: &str = "tests/add.rs";
pub const TEST_CODE: &str = "#[test]\nfn adds() {\n    assert_eq!(calc::add(2, 3), 5);\n}\n";
pub const LIB_CODE: &str = "pub fn zero() -> i32 {\n    0\n}\n\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn zero_is_zero() {\n        assert_eq!(super::zero(), 0);\n    }\n}\n";

#[async_trait]
impl Agent for ScriptedAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn role(&self) -> &Role {
        &self.role
    }

    fn system_prompt(&self) -> &str {
        "scripted"
    }

    async fn process_task(
        &self,
        task: &Task,
        ctx: &AgentContext,
    ) -> Result<TaskResult, AgentError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.think(ctx, &task.id).await?;
        assert!(
            !task.title.starts_with("Boom"),
            "scripted panic in {}",
            task.title
        );
        if self
            .fail_titles
            .iter()
            .any(|t| task.title.starts_with(t.as_str()))
        {
            let mut result = self.result(task, "scripted failure");
            result.outcome = TaskOutcome::Failed {
                reason: "scripted".into(),
            };
            return Ok(result);
        }
        let mut result = self.result(task, &format!("{} did {}", self.role, task.title));
        match self.role {
            Role::Qa => {
                write(ctx, TEST_FILE, TEST_CODE);
                result.artifacts.files_written = vec![TEST_FILE.into()];
            }
            Role::Developer => {
                write(ctx, "src/lib.rs", LIB_CODE);
                result.artifacts.files_written = vec!["src/lib.rs".into()];
            }
            Role::Product => {
                result.output = serde_json::json!({ "requirements": ["add two numbers"] });
            }
            Role::Cfo | Role::Risk | Role::Legal | Role::TechLead | Role::Security => {
                result.verdict = Some(self.verdict(self.approve));
            }
            _ => {}
        }
        Ok(result)
    }

    async fn validate_result(
        &self,
        _task: &Task,
        _result: &TaskResult,
        _ctx: &AgentContext,
    ) -> Result<Validation, AgentError> {
        Ok(Validation {
            valid: true,
            score: 9.0,
            issues: Vec::new(),
        })
    }

    async fn generate_tasks(
        &self,
        _state: &WorkState,
        ctx: &AgentContext,
    ) -> Result<Vec<TaskSpec>, AgentError> {
        self.think(ctx, "planning").await?;
        Ok(std::mem::take(&mut *self.plan.lock().unwrap()))
    }

    async fn review(
        &self,
        task: &Task,
        _result: &TaskResult,
        ctx: &AgentContext,
    ) -> Result<Verdict, AgentError> {
        self.think(ctx, &task.id).await?;
        Ok(self.verdict(true))
    }

    async fn decide(
        &self,
        task: &Task,
        verdicts: &[Verdict],
        ctx: &AgentContext,
    ) -> Result<Verdict, AgentError> {
        self.think(ctx, &task.id).await?;
        Ok(self.verdict(!verdicts.is_empty() && verdicts.iter().all(|v| v.approve)))
    }
}

pub fn feature(title: &str) -> TaskSpec {
    let mut spec = TaskSpec::new(title, "Add an `add` function to the calc crate");
    spec.kind = TaskKind::Feature;
    spec
}

/// Runs git in `dir`, panicking with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "setup")
        .env("GIT_AUTHOR_EMAIL", "setup@example.com")
        .env("GIT_COMMITTER_NAME", "setup")
        .env("GIT_COMMITTER_EMAIL", "setup@example.com")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Whether a program is on PATH; prints why a test is skipped, or fails under CI.
pub fn require(program: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let strict = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1");
        assert!(
            !strict,
            "{program} is required (CI=true / AGENTD_REQUIRE_ALL=1)"
        );
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// Everything a test orchestrator runs on, in one temp directory.
pub struct World {
    pub dir: PathBuf,
    _guard: Option<tempfile::TempDir>,
    pub work: PathBuf,
    pub remote: PathBuf,
    pub db: PathBuf,
    pub sink: Arc<RecordingSink>,
}

impl World {
    /// The world another process created at `dir` (for crash tests' child processes).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            _guard: None,
            work: dir.join("work"),
            remote: dir.join("remote.git"),
            db: dir.join("state/agentd.db"),
            sink: Arc::new(RecordingSink::default()),
        }
    }

    /// A tiny cargo crate `calc` committed on `main`, with a bare remote `origin`.
    pub fn new() -> Self {
        let guard = tempfile::tempdir().unwrap();
        let dir = guard.path().to_path_buf();
        let remote = dir.join("remote.git");
        std::fs::create_dir_all(&remote).unwrap();
        git(
            &remote,
            &["init", "--quiet", "--bare", "--initial-branch=main"],
        );
        let work = dir.join("work");
        std::fs::create_dir_all(work.join("src")).unwrap();
        git(&work, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(
            work.join("Cargo.toml"),
            "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(
            work.join("src/lib.rs"),
            "pub fn zero() -> i32 {\n    0\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn zero_is_zero() {\n        assert_eq!(super::zero(), 0);\n    }\n}\n",
        )
        .unwrap();
        std::fs::write(work.join(".gitignore"), "target/\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "--quiet", "-m", "calc: initial crate"]);
        git(
            &work,
            &["remote", "add", "origin", remote.to_str().unwrap()],
        );
        git(&work, &["push", "--quiet", "origin", "main"]);
        let db = dir.join("state/agentd.db");
        Self {
            dir,
            _guard: Some(guard),
            work,
            remote,
            db,
            sink: Arc::new(RecordingSink::default()),
        }
    }

    pub async fn store(&self, clock: Arc<dyn Clock>) -> SqliteStore {
        SqliteStore::open(&self.db, SqliteOptions::default(), clock)
            .await
            .unwrap()
    }

    pub async fn repo(&self) -> RepoSetup {
        let vcs: Arc<dyn agentd_vcs::Vcs> =
            Arc::new(agentd_vcs::GixVcs::new(agentd_vcs::VcsSettings {
                protected_branches: vec!["main".into()],
                ..agentd_vcs::VcsSettings::default()
            }));
        let deploy: agentd_deploy::DeploymentSettings = serde_json::from_value(
            serde_json::json!({ "type": "ci_cd", "remote": "origin", "branch": "main", "repo_path": self.work }),
        )
        .unwrap();
        let deps = agentd_deploy::DeployerDeps::with_file_history(
            Arc::clone(&vcs),
            self.dir.as_path().join("state/deployments.json"),
        )
        .await
        .unwrap();
        let tests =
            agentd_testrunner::LocalTestRunner::new(agentd_testrunner::TestingSettings::default())
                .unwrap();
        let mut test_options = agentd_testrunner::RunOptions::default();
        test_options.env.insert(
            "CARGO_TARGET_DIR".into(),
            self.dir.join("target").to_string_lossy().into_owned(),
        );
        RepoSetup {
            vcs,
            repo: self.work.clone(),
            main_branch: "main".into(),
            worktrees: self.dir.as_path().join("worktrees"),
            tests: Arc::new(tests),
            test_options,
            deployer: Some(deploy.build(&deps).unwrap()),
            environment: "production".into(),
        }
    }

    /// An orchestrator over this world with the given agents and budget.
    pub async fn orchestrator(
        &self,
        store: &SqliteStore,
        agents: Vec<Arc<dyn Agent>>,
        settings: OrchestratorSettings,
        with_repo: bool,
    ) -> (TaskOrchestrator, LlmHandle, Arc<BudgetBook>) {
        self.build(store, agents, settings, with_repo, Arc::new(InstantLlm))
            .await
    }

    /// An orchestrator over this world (with the repository) whose LLM stack wraps `backend`.
    pub async fn orchestrator_with_llm(
        &self,
        store: &SqliteStore,
        agents: Vec<Arc<dyn Agent>>,
        settings: OrchestratorSettings,
        backend: Arc<dyn LlmClient>,
    ) -> (TaskOrchestrator, LlmHandle, Arc<BudgetBook>) {
        self.build(store, agents, settings, true, backend).await
    }

    async fn build(
        &self,
        store: &SqliteStore,
        agents: Vec<Arc<dyn Agent>>,
        settings: OrchestratorSettings,
        with_repo: bool,
        backend: Arc<dyn LlmClient>,
    ) -> (TaskOrchestrator, LlmHandle, Arc<BudgetBook>) {
        let handle = llm_handle_with(backend);
        let metrics = Metrics::new(Some(handle.ledger()));
        let alerts = Alerts::new(vec![
            Arc::new(LogAlertSink),
            Arc::clone(&self.sink) as Arc<dyn AlertSink>,
        ]);
        let book = Arc::new(BudgetBook::new(
            settings.budget.clone(),
            handle.ledger().prices().clone(),
            Arc::new(store.clone()),
            Arc::new(SystemClock),
            alerts.clone(),
            metrics.clone(),
        ));
        let llm = book.guard(
            handle.client(),
            CallDefaults {
                model: MODEL.into(),
                max_tokens: 1000,
            },
        );
        let repo = if with_repo {
            Some(self.repo().await)
        } else {
            None
        };
        let orchestrator = TaskOrchestrator::new(
            settings,
            OrchestratorDeps {
                tasks: Arc::new(store.clone()),
                memory: Arc::new(store.clone()),
                llm,
                agents,
                repo,
                budget: Some(Arc::clone(&book)),
                alerts,
                metrics,
            },
        )
        .unwrap();
        (orchestrator, handle, book)
    }
}

/// Fast loop settings for tests.
pub fn settings() -> OrchestratorSettings {
    OrchestratorSettings {
        check_interval: 0.05,
        task_timeout: 600.0,
        budget: BudgetSettings::default(),
        ..OrchestratorSettings::default()
    }
}

/// One scripted agent per role given.
pub fn agents(roles: &[Role]) -> Vec<Arc<dyn Agent>> {
    roles
        .iter()
        .map(|role| Arc::new(ScriptedAgent::new(role.clone())) as Arc<dyn Agent>)
        .collect()
}

pub const TDD_ROLES: [Role; 5] = [
    Role::Ceo,
    Role::Product,
    Role::Qa,
    Role::Developer,
    Role::TechLead,
];
