//! Wiring: the configuration in, a ready orchestrator over concrete backends out.
//!
//! This is the only place that names concrete types: SQLite/PostgreSQL stores, the LLM
//! stack behind the budget guard, the role agents, gix, the local test runner and the
//! configured deployer. Everything below takes traits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd_agent_core::{AgentConfig, Role, RoleLlmParams, build_agent};
use agentd_deploy::DeployerDeps;
use agentd_llm::{LlmHandle, PriceTable};
use agentd_memory::{Clock, Stores, SystemClock};
use agentd_orchestrator::{
    Alerts, BudgetBook, CallDefaults, Metrics, OrchestratorDeps, RepoSetup, TaskOrchestrator,
};
use agentd_testrunner::{LocalTestRunner, RunOptions};
use agentd_vcs::{GixVcs, Vcs, VcsSettings};
use anyhow::Context;

use crate::config::Config;

/// A wired daemon: the store, the LLM client, and the orchestrator driving them.
pub struct App {
    /// The configuration it was built from (paths resolved).
    pub config: Config,
    /// The store.
    pub stores: Stores,
    /// The LLM stack and its usage ledger.
    pub llm: LlmHandle,
    /// The orchestrator.
    pub orchestrator: Arc<TaskOrchestrator>,
}

impl App {
    /// Opens the store, builds the LLM stack, the agents and the repository side, and
    /// the orchestrator. With `with_repo`, the repository is initialised if it does not
    /// exist yet (commands that only enqueue or read pass false).
    pub async fn open(config: Config, with_repo: bool) -> anyhow::Result<App> {
        Self::open_with_backend(config, with_repo, None).await
    }

    /// [`App::open`] with an LLM backend of your own (any [`agentd_llm::LlmClient`]) in place
    /// of the configured provider. It still gets the configured stack around it: defaults,
    /// cache, recording to `llm.cassette`, retries and accounting (`build_client_with`).
    pub async fn open_with_backend(
        config: Config,
        with_repo: bool,
        backend: Option<Arc<dyn agentd_llm::LlmClient>>,
    ) -> anyhow::Result<App> {
        let backends = Backends {
            llm: backend,
            ..Backends::default()
        };
        Self::open_with(config, with_repo, backends).await
    }

    /// [`App::open`] with any of the [`Backends`] replaced by your own implementations.
    pub async fn open_with(
        config: Config,
        with_repo: bool,
        backends: Backends,
    ) -> anyhow::Result<App> {
        let backend = backends.llm;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let data_dir = data_dir(&config);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let stores = config
            .memory
            .open(Arc::clone(&clock))
            .await
            .context("cannot open the store (memory section)")?;
        let llm = match backend {
            None => agentd_llm::build_client(&config.llm),
            Some(backend) => agentd_llm::build_client_with(&config.llm, backend),
        }
        .context("cannot set up the LLM client (llm section)")?;
        let metrics = Metrics::new(Some(llm.ledger()));
        let alerts = Alerts::log_and_webhook(config.orchestrator.alert_webhook.as_deref())?;
        let budget = Arc::new(BudgetBook::new(
            config.orchestrator.budget.clone(),
            PriceTable::new(&config.llm.prices),
            Arc::clone(&stores.memory),
            clock,
            alerts.clone(),
            metrics.clone(),
        ));
        let defaults = CallDefaults {
            model: config
                .llm
                .model
                .clone()
                .or_else(|| config.llm.provider.default_model().map(str::to_owned))
                .unwrap_or_default(),
            max_tokens: config.llm.max_tokens,
        };
        let client = budget.guard(llm.client(), defaults);
        let repo = if with_repo {
            Some(repo_setup(&config, &data_dir, backends.vcs).await?)
        } else {
            None
        };
        let deps = OrchestratorDeps {
            tasks: Arc::clone(&stores.tasks),
            memory: Arc::clone(&stores.memory),
            llm: client,
            agents: agents(&config)?,
            repo,
            budget: Some(budget),
            alerts,
            metrics,
        };
        let orchestrator = TaskOrchestrator::new(config.orchestrator.clone(), deps)?;
        Ok(App {
            config,
            stores,
            llm,
            orchestrator: Arc::new(orchestrator),
        })
    }
}

/// Implementations of your own, used in place of the configured backends. `None` keeps
/// the configured one.
#[derive(Clone, Default)]
pub struct Backends {
    /// The LLM backend, wrapped in the configured stack (see [`App::open_with_backend`]).
    pub llm: Option<Arc<dyn agentd_llm::LlmClient>>,
    /// Version control for the repository, the task worktrees and the ci_cd deployer.
    pub vcs: Option<Arc<dyn Vcs>>,
}

/// Where agentd keeps its own files (worktrees, deployment history): the directory of
/// the SQLite store, or `.agentd` beside the workspace for PostgreSQL.
pub fn data_dir(config: &Config) -> PathBuf {
    match config.memory.backend {
        agentd_memory::BackendKind::Sqlite => config
            .memory
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        agentd_memory::BackendKind::Postgres => config.file_system.workspace_path.join(".agentd"),
    }
}

/// One agent per built-in role, plus one per custom role named in `agents`.
fn agents(config: &Config) -> anyhow::Result<Vec<Arc<dyn agentd_agent_core::Agent>>> {
    let builtin = Role::all_builtin();
    let custom: Vec<Role> = config
        .agents
        .keys()
        .filter_map(|name| name.parse::<Role>().ok())
        .filter(|role| matches!(role, Role::Custom(_)))
        .collect();
    let mut agents = Vec::new();
    for role in builtin.iter().cloned().chain(custom.iter().cloned()) {
        let settings = config
            .agents
            .get(role.as_str())
            .cloned()
            .unwrap_or_default();
        let agent_config = AgentConfig {
            llm: RoleLlmParams {
                model: settings.model,
                temperature: settings.temperature,
                max_tokens: settings.max_tokens,
            },
            description: settings.description,
            custom_roles: custom.clone(),
            ..AgentConfig::default()
        };
        let agent = build_agent(role.clone(), agent_config)
            .with_context(|| format!("cannot build the {role} agent (agents.{role})"))?;
        agents.push(agent);
    }
    Ok(agents)
}

/// The repository side of the TDD pipeline: opens (or initialises) the repository, keeps
/// agentd's data directory out of `git status`, and builds the test runner and deployer.
async fn repo_setup(
    config: &Config,
    data_dir: &Path,
    vcs: Option<Arc<dyn Vcs>>,
) -> anyhow::Result<RepoSetup> {
    let vcs: Arc<dyn Vcs> =
        vcs.unwrap_or_else(|| Arc::new(GixVcs::new(VcsSettings::from(&config.git))));
    let repo = config.file_system.git_repo_path().to_path_buf();
    std::fs::create_dir_all(&repo).with_context(|| format!("cannot create {}", repo.display()))?;
    if let Err(open_error) = vcs.open(&repo).await {
        let empty = std::fs::read_dir(&repo)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        anyhow::ensure!(
            empty,
            "{} is not a usable git repository ({open_error}); agentd initialises only an empty \
             directory: run `git init` there and commit, or point file_system.workspace_path at \
             an empty directory",
            repo.display()
        );
        vcs.init(&repo)
            .await
            .with_context(|| format!("cannot initialise a git repository in {}", repo.display()))?;
    }
    exclude_from_git(&repo, data_dir)?;
    let tests = Arc::new(LocalTestRunner::new(config.testing.clone()).context("testing section")?);
    let deployer = match &config.deployment {
        agentd_deploy::DeploymentSettings::None {} => None,
        settings => {
            let deps = DeployerDeps::with_file_history(
                Arc::clone(&vcs),
                data_dir.join("deployments.json"),
            )
            .await?;
            Some(settings.build(&deps).context("deployment section")?)
        }
    };
    Ok(RepoSetup {
        vcs,
        repo,
        main_branch: config.git.branch.clone(),
        worktrees: data_dir.join("worktrees"),
        tests,
        test_options: RunOptions::default(),
        deployer,
        environment: "production".to_owned(),
    })
}

/// Adds the data directory to `.git/info/exclude` when it lies inside the repository, so
/// worktrees and the store never show up as untracked files (and never get committed).
fn exclude_from_git(repo: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let repo_abs = std::path::absolute(repo)?;
    let data_abs = std::path::absolute(data_dir)?;
    let Ok(relative) = data_abs.strip_prefix(&repo_abs) else {
        return Ok(());
    };
    let pattern = format!("/{}/", relative.display());
    if relative.as_os_str().is_empty() {
        return Ok(());
    }
    let exclude = repo_abs.join(".git/info/exclude");
    let existing = std::fs::read_to_string(&exclude).unwrap_or_default();
    if existing.lines().any(|line| line.trim() == pattern) {
        return Ok(());
    }
    if let Some(dir) = exclude.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&pattern);
    text.push('\n');
    std::fs::write(&exclude, text)
        .with_context(|| format!("cannot write {}", exclude.display()))?;
    Ok(())
}
