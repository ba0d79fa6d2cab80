//! The offline main job: the whole TDD pipeline on a fresh workspace, without a key or a
//! network, through the `replay` provider and the cassette shipped in `examples/tdd/`.
//!
//! [`prepare`] writes a fresh run directory: a tiny dependency-free crate `calc` committed on
//! `main` (`repo/`), a bare repository as its `origin` (`remote.git/`, the ci_cd deploy
//! target) and an `agentd.yaml` that points at the cassette. [`run`] opens the
//! [`App`] on it and drains the queue once: the CEO turns [`scripted::GOAL`] into a
//! feature task, Product writes requirements, QA writes failing tests, the Developer codes
//! until they pass, the Tech Lead reviews, and the orchestrator commits on a feature branch,
//! merges into the protected `main` and pushes it to the remote. [`verify`] checks the
//! result from the outside (repository, remote, deployment history) and [`write_report`]
//! prints what happened.
//!
//! Invariants: a run directory is never reused ([`prepare`] refuses a non-empty one), so
//! reruns never collide; everything that reaches a prompt is deterministic (fixed goal,
//! one worker per role, `cargo test` as the runner, no LLM cache), so the cassette replays.
//! The same directory also drives the real binary:
//! `agentd run --once --config DIR/agentd.yaml`.

pub mod scripted;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use agentd_memory::{
    ActivityRecord, DecisionRecord, LogQuery, Page, TaskQuery, TaskRecord, TaskStatus,
};
use agentd_orchestrator::{RunLimits, RunSummary};
use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::app::App;
use crate::config::Config;

/// The cassette shipped with the repository (`examples/tdd/cassette.jsonl`).
pub fn shipped_cassette() -> PathBuf {
    workspace_root().join("examples/tdd/cassette.jsonl")
}

/// The cassette of the decision demo (`examples/decision/cassette.jsonl`).
pub fn shipped_decision_cassette() -> PathBuf {
    workspace_root().join("examples/decision/cassette.jsonl")
}

/// The workspace root of this source tree (two levels above this crate).
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// A new, unused run directory: `target/agentd-demo/run-<UTC timestamp>-<pid>`.
pub fn fresh_run_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S-%3f");
    target
        .join("agentd-demo")
        .join(format!("run-{stamp}-{}", std::process::id()))
}

/// Where the LLM answers come from.
#[derive(Debug, Clone)]
pub enum LlmSource {
    /// Offline: answers from this cassette (provider `replay`).
    Replay,
    /// The scripted backend ([`scripted::ScriptedLlm`]), recording every exchange to this
    /// cassette, which is truncated first. This is how the shipped cassette is made.
    Record(PathBuf),
    /// The provider of a user's config (its `llm` section, key included), recording every
    /// exchange to `cassette`, which then replays offline with [`LlmSource::ReplayLive`].
    Live {
        /// The user's `agentd.yaml`.
        config: PathBuf,
        /// Where to record.
        cassette: PathBuf,
    },
    /// Offline again: replays a cassette recorded by [`LlmSource::Live`] with the same
    /// config (its model and parameters, which the recorded requests carry).
    ReplayLive {
        /// The user's `agentd.yaml` the recording was made with.
        config: PathBuf,
        /// The recorded cassette.
        cassette: PathBuf,
    },
}

/// The files of a prepared run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    /// The run directory.
    pub root: PathBuf,
    /// The project repository (worktree on `main`).
    pub repo: PathBuf,
    /// The bare repository that is `origin` (the ci_cd deploy target).
    pub remote: PathBuf,
    /// agentd's data directory: the store, worktrees, logs, deployment history.
    pub data: PathBuf,
    /// The generated `agentd.yaml`.
    pub config: PathBuf,
    /// The SQLite store.
    pub store: PathBuf,
    /// The JSON-lines log.
    pub log: PathBuf,
    /// The deployment history.
    pub deployments: PathBuf,
}

impl RunDir {
    /// The layout under `root` (nothing is created).
    pub fn at(root: &Path) -> RunDir {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let data = root.join(".agentd");
        RunDir {
            repo: root.join("repo"),
            remote: root.join("remote.git"),
            config: root.join("agentd.yaml"),
            store: data.join("memory.db"),
            log: data.join("logs/agentd.log"),
            deployments: data.join("deployments.json"),
            data,
            root,
        }
    }
}

/// `[workspace]` makes the seed its own workspace: run directories may lie inside another
/// one (the default is under this repository's `target/`).
const SEED_MANIFEST: &str = "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n\n[workspace]\n";
const SEED_LOCK: &str = "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"calc\"\nversion = \"0.1.0\"\n";
const SEED_GITIGNORE: &str = "/target\n";
/// One test thread: libtest then reports tests in the same order every run, and the
/// order reaches the prompts (failing test lists).
const SEED_CARGO_CONFIG: &str = "[env]\nRUST_TEST_THREADS = \"1\"\n";

/// Writes a fresh run directory at `root`: the seed crate committed on `main`, the bare
/// remote, and an `agentd.yaml` replaying `cassette`.
///
/// # Errors
/// When `root` exists and is not empty, or a file or `git` command fails.
pub fn prepare(root: &Path, cassette: &Path) -> anyhow::Result<RunDir> {
    let dir = RunDir::at(root);
    if dir.root.exists() {
        let empty = std::fs::read_dir(&dir.root)
            .with_context(|| format!("cannot read {}", dir.root.display()))?
            .next()
            .is_none();
        ensure!(
            empty,
            "{} is not empty: every run needs a fresh directory",
            dir.root.display()
        );
    }
    for sub in ["src", ".cargo"] {
        std::fs::create_dir_all(dir.repo.join(sub))
            .with_context(|| format!("cannot create {}", dir.repo.display()))?;
    }
    for (path, text) in [
        ("Cargo.toml", SEED_MANIFEST),
        ("Cargo.lock", SEED_LOCK),
        (".gitignore", SEED_GITIGNORE),
        (".cargo/config.toml", SEED_CARGO_CONFIG),
        ("src/lib.rs", scripted::SEED_LIB),
    ] {
        let file = dir.repo.join(path);
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    git(
        &dir.root,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "remote.git",
        ],
    )?;
    git(&dir.repo, &["init", "--quiet", "--initial-branch=main"])?;
    git(&dir.repo, &["add", "--all"])?;
    git(
        &dir.repo,
        &[
            "-c",
            "user.name=agentd demo",
            "-c",
            "user.email=demo@agentd.invalid",
            "commit",
            "--quiet",
            "-m",
            "chore: calc, a tiny expression evaluator",
        ],
    )?;
    let remote = dir.remote.to_string_lossy().into_owned();
    git(&dir.repo, &["remote", "add", "origin", &remote])?;
    git(&dir.repo, &["push", "--quiet", "origin", "main"])?;
    std::fs::write(&dir.config, config_yaml(&dir, cassette))
        .with_context(|| format!("cannot write {}", dir.config.display()))?;
    Ok(dir)
}

/// The demo's `agentd.yaml`. Every choice here keeps the prompts identical between the
/// recording and any replay: no LLM cache, one worker per role, `cargo test` whether or
/// not nextest is installed, and a fixed goal.
fn config_yaml(dir: &RunDir, cassette: &Path) -> String {
    let quote = |path: &Path| serde_json::to_string(&path.to_string_lossy()).unwrap_or_default();
    format!(
        "# Generated by the agentd demo (crates/agentd/src/demo.rs). Run it again with:\n\
         #   agentd run --once --config {config}\n\
         llm:\n  provider: replay\n  model: gpt-4o-mini\n  temperature: 0.2\n  max_tokens: 4096\n  \
         cache_ttl_s: 0\n  cassette: {cassette}\n\
         orchestrator:\n  check_interval: 1\n  max_task_attempts: 3\n  task_timeout: 300\n  \
         max_generated_tasks: 1\n  goal: {goal}\n  budget: {{ per_task_usd: 1.0, per_day_usd: 5.0 }}\n\
         agents:\n  developer:\n    temperature: 0.1\n  tech_lead:\n    temperature: 0.0\n\
         git:\n  branch: main\n  auto_commit: true\n  auto_push: false\n  protected_branches: [main]\n  \
         author_name: agentd\n  author_email: agentd@localhost\n\
         file_system:\n  workspace_path: repo\n\
         testing:\n  framework: cargo\n  cargo_runner: test\n  auto_run: true\n  timeout: 300\n\
         deployment:\n  type: ci_cd\n  remote: origin\n  branch: main\n  repo_path: {repo}\n\
         memory:\n  backend: sqlite\n  path: {store}\n",
        config = dir.config.display(),
        cassette = quote(cassette),
        goal = serde_json::to_string(scripted::GOAL).unwrap_or_default(),
        repo = quote(&dir.repo),
        store = quote(&dir.store),
    )
}

/// Runs `git` in `dir`, failing with its stderr.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    ensure!(
        output.status.success(),
        "git {} in {} failed: {}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What a run did, read back from the store and the orchestrator.
#[derive(Debug)]
pub struct Outcome {
    /// The orchestrator's summary of this run.
    pub summary: RunSummary,
    /// LLM calls, tokens and cost of this run.
    pub llm: agentd_llm::UsageTotals,
    /// Every task record, oldest first.
    pub tasks: Vec<TaskRecord>,
    /// The activity log, oldest first.
    pub activities: Vec<ActivityRecord>,
    /// The decision history, oldest first.
    pub decisions: Vec<DecisionRecord>,
    /// The saved pipeline steps of each root task (`requirements`, `tests`, ...).
    pub pipelines: Vec<(String, std::collections::BTreeMap<String, Value>)>,
    /// The Prometheus metrics text at the end.
    pub metrics: String,
}

/// Opens the app on a prepared run directory and drains the queue once: the idle CEO
/// plans towards [`scripted::GOAL`] and the task runs through the TDD pipeline.
///
/// # Errors
/// When the config, the store, the LLM source or the orchestrator cannot be set up, or
/// the store cannot be read back.
pub async fn run(dir: &RunDir, source: &LlmSource) -> anyhow::Result<Outcome> {
    run_job(dir, source, None).await
}

/// The decision demo: submits [`scripted::PROPOSAL`] and drains the queue once. The V-team
/// (CFO, Risk, Legal, Tech Lead) gives verdicts, the CEO decides, and the approved
/// project's task runs through the TDD pipeline to a deployed merge.
///
/// # Errors
/// As [`run`].
pub async fn run_decision(dir: &RunDir, source: &LlmSource) -> anyhow::Result<Outcome> {
    let mut proposal =
        agentd_agent_core::TaskSpec::new(scripted::PROPOSAL_TITLE, scripted::PROPOSAL);
    proposal.kind = agentd_agent_core::TaskKind::Proposal;
    proposal.priority = agentd_agent_core::Priority::High;
    run_job(dir, source, Some(proposal)).await
}

async fn run_job(
    dir: &RunDir,
    source: &LlmSource,
    submit: Option<agentd_agent_core::TaskSpec>,
) -> anyhow::Result<Outcome> {
    let mut config = Config::load(&dir.config)?;
    let backend: Option<Arc<dyn agentd_llm::LlmClient>> = match source {
        LlmSource::Replay => None,
        LlmSource::Record(cassette) => {
            if cassette.exists() {
                std::fs::remove_file(cassette)
                    .with_context(|| format!("cannot truncate {}", cassette.display()))?;
            }
            // Any provider but replay turns recording on; the scripted backend answers.
            config.llm.provider = agentd_llm::ProviderKind::Openai;
            config.llm.cassette = Some(cassette.clone());
            Some(Arc::new(scripted::ScriptedLlm))
        }
        LlmSource::Live {
            config: user,
            cassette,
        } => {
            let user = Config::load(user)?;
            ensure!(
                user.llm.provider != agentd_llm::ProviderKind::Replay,
                "--live needs a config whose llm.provider is a real provider, not replay"
            );
            config.llm = user.llm;
            config.llm.cassette = Some(cassette.clone());
            config.llm.cache_ttl_s = 0;
            None
        }
        LlmSource::ReplayLive {
            config: user,
            cassette,
        } => {
            config.llm = Config::load(user)?.llm;
            config.llm.provider = agentd_llm::ProviderKind::Replay;
            config.llm.cassette = Some(cassette.clone());
            config.llm.cache_ttl_s = 0;
            None
        }
    };
    let app = App::open_with_backend(config, true, backend).await?;
    if let Some(spec) = submit {
        // Keyed, so that running this directory again submits nothing twice.
        app.orchestrator
            .submit(spec, Some("demo:proposal".to_owned()))
            .await?;
    }
    let summary = app
        .orchestrator
        .run_once(RunLimits {
            max_tasks: None,
            goal: None,
        })
        .await?;
    read_outcome(&app, summary).await
}

/// Reads back what the store holds after a run.
///
/// # Errors
/// The store's error.
pub async fn read_outcome(app: &App, summary: RunSummary) -> anyhow::Result<Outcome> {
    let mut tasks = app
        .stores
        .tasks
        .query(TaskQuery {
            page: Page::first(1000),
            ..TaskQuery::default()
        })
        .await?;
    tasks.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let log = LogQuery {
        page: Page::first(10_000),
        ..LogQuery::default()
    };
    let mut activities = app.stores.memory.query_activities(log.clone()).await?;
    activities.reverse();
    let mut decisions = app.stores.memory.query_decisions(log).await?;
    decisions.reverse();
    // Steps are saved under each pipeline's root: a root task, or a task an approved
    // proposal created (whose parent is the proposal).
    let mut pipelines = Vec::new();
    for task in &tasks {
        let steps = app.orchestrator.pipeline_progress(&task.id).await?;
        if !steps.is_empty() {
            pipelines.push((task.id.clone(), steps));
        }
    }
    Ok(Outcome {
        summary,
        llm: app.llm.usage().total,
        tasks,
        activities,
        decisions,
        pipelines,
        metrics: app.orchestrator.metrics().encode()?,
    })
}

/// The repository side of a finished run, checked from the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `main`'s tip.
    pub main: String,
    /// The merge commit's parents (`main` before, the feature branch's tip); empty when
    /// the merge was a fast-forward (`main` had not moved since the branch started).
    pub merge_parents: Vec<String>,
    /// The feature branches merged into `main`.
    pub merged: Vec<String>,
    /// The feature branches.
    pub feature_branches: Vec<String>,
    /// The `Task-Id` trailers on `main`'s history, one per commit, oldest first.
    pub task_ids: Vec<String>,
    /// Successful deployments recorded in `deployments.json`.
    pub deployments: usize,
    /// `git log --graph --oneline --all`.
    pub graph: String,
}

/// Checks that the run merged a feature branch into `main` (by a merge commit, or by a
/// fast-forward when `main` had not moved, as the VCS layer does), that `main` carries the
/// tests and the code, that the remote's `main` is the merge (deployed), and that the
/// deployment history records it.
///
/// # Errors
/// Names the first thing that is not as it should be.
pub fn verify(dir: &RunDir) -> anyhow::Result<Verified> {
    let main = git(&dir.repo, &["rev-parse", "refs/heads/main"])?
        .trim()
        .to_owned();
    let parents: Vec<String> = git(&dir.repo, &["rev-list", "--parents", "-n", "1", &main])?
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let feature_branches: Vec<String> = git(
        &dir.repo,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/feature/",
        ],
    )?
    .lines()
    .map(str::to_owned)
    .collect();
    ensure!(
        !feature_branches.is_empty(),
        "no feature branch was created"
    );
    let mut merged = Vec::new();
    for branch in &feature_branches {
        let tip = git(&dir.repo, &["rev-parse", &format!("refs/heads/{branch}")])?
            .trim()
            .to_owned();
        if tip == main || (parents.len() == 2 && parents.contains(&tip)) {
            merged.push(branch.clone());
        }
    }
    ensure!(
        !merged.is_empty(),
        "main ({main}) is neither a feature branch's tip (fast-forward) nor a merge of one: \
         the pipeline did not merge"
    );
    let fast_forward = parents.len() < 2;
    let root = git(&dir.repo, &["rev-list", "--max-parents=0", "main"])?;
    let changed = git(&dir.repo, &["diff", "--name-only", root.trim(), &main])?;
    ensure!(
        changed.lines().any(|path| path.starts_with("tests/"))
            && changed.lines().any(|path| path.starts_with("src/")),
        "main does not carry both new tests and code since the seed commit (changed: {})",
        changed.lines().collect::<Vec<_>>().join(", ")
    );
    let task_ids: Vec<String> = git(
        &dir.repo,
        &[
            "log",
            "--reverse",
            "--format=%(trailers:key=Task-Id,valueonly,separator=%x2C)",
            "main",
        ],
    )?
    .lines()
    .map(str::trim)
    .filter(|line| !line.is_empty())
    .map(str::to_owned)
    .collect();
    let remote_main = git(&dir.remote, &["rev-parse", "refs/heads/main"])?
        .trim()
        .to_owned();
    ensure!(
        remote_main == main,
        "the remote's main is {remote_main}, not the merge {main}: not deployed"
    );
    let history = std::fs::read_to_string(&dir.deployments)
        .with_context(|| format!("no deployment history at {}", dir.deployments.display()))?;
    let deployments = count_successful_deployments(&history, &main);
    ensure!(
        deployments >= 1,
        "{} records no successful deployment of {main}",
        dir.deployments.display()
    );
    let graph = git(&dir.repo, &["log", "--graph", "--oneline", "--all"])?;
    Ok(Verified {
        main,
        merge_parents: if fast_forward { Vec::new() } else { parents },
        merged,
        feature_branches,
        task_ids,
        deployments,
        graph,
    })
}

/// Successful deployments of `revision` in a deployment history file (JSON).
fn count_successful_deployments(history: &str, revision: &str) -> usize {
    let Ok(value) = serde_json::from_str::<Value>(history) else {
        return 0;
    };
    let records = match &value {
        Value::Array(records) => records.clone(),
        Value::Object(map) => map
            .get("deployments")
            .or_else(|| map.get("records"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    records
        .iter()
        .filter(|r| r.get("revision").and_then(Value::as_str) == Some(revision))
        .filter(|r| {
            r.get("state")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("succeeded") || s == "success")
        })
        .count()
}

/// Prints what each agent did, the test results, the commits and where everything is.
///
/// # Errors
/// Writing to `out`.
pub fn write_report(
    dir: &RunDir,
    outcome: &Outcome,
    verified: Option<&Verified>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "== What each agent did")?;
    for activity in &outcome.activities {
        if let Some(line) = describe_activity(activity) {
            writeln!(out, "  {:<12} {line}", activity.agent_name)?;
        }
    }
    writeln!(out, "\n== Decisions")?;
    for decision in &outcome.decisions {
        if let Some(line) = describe_decision(decision) {
            writeln!(out, "  {:<12} {line}", decision.agent_name)?;
        }
    }
    writeln!(out, "\n== Tests")?;
    for (root, steps) in &outcome.pipelines {
        if !steps.contains_key("tests") {
            continue;
        }
        writeln!(out, "  task {root}")?;
        if let Some(red) = steps.get("tests").and_then(|s| s.get("red")) {
            writeln!(
                out,
                "    before the code (must fail): {}",
                describe_tests(red)
            )?;
        }
        for (name, step) in steps
            .iter()
            .filter(|(n, _)| n.starts_with("implementation/"))
        {
            if let Some(tests) = step.get("tests") {
                let gate = if step.get("gate_passed").and_then(Value::as_bool) == Some(true) {
                    "tests-first gate passed; "
                } else {
                    ""
                };
                writeln!(
                    out,
                    "    after the code ({name}): {gate}{}",
                    describe_tests(tests)
                )?;
            }
        }
    }
    writeln!(out, "\n== Run")?;
    crate::commands::run::write_summary(&outcome.summary, &outcome.llm, out)?;
    if let Some(verified) = verified {
        writeln!(out, "\n== Repository (git log --graph --oneline --all)")?;
        for line in verified.graph.lines() {
            writeln!(out, "  {line}")?;
        }
        let how = if verified.merge_parents.is_empty() {
            "fast-forward".to_owned()
        } else {
            format!(
                "merge commit of {}",
                verified
                    .merge_parents
                    .iter()
                    .map(|p| short(p))
                    .collect::<Vec<_>>()
                    .join(" + ")
            )
        };
        writeln!(
            out,
            "  main {} <- {} ({how}); deployed to origin ({} deployment recorded)",
            short(&verified.main),
            verified.merged.join(", "),
            verified.deployments
        )?;
    }
    writeln!(out, "\n== Where")?;
    writeln!(out, "  repository:  {}", dir.repo.display())?;
    writeln!(out, "  remote:      {}", dir.remote.display())?;
    writeln!(out, "  store:       {}", dir.store.display())?;
    writeln!(out, "  log:         {}", dir.log.display())?;
    writeln!(out, "  config:      {}", dir.config.display())?;
    Ok(())
}

fn short(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

fn describe_tests(tests: &Value) -> String {
    let number = |key: &str| tests.get(key).and_then(Value::as_u64).unwrap_or(0);
    let outcome = tests
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let mut text = format!(
        "{outcome}: {} passed, {} failed of {}",
        number("passed"),
        number("failed"),
        number("total")
    );
    if let Some(failing) = tests.get("failing").and_then(Value::as_array)
        && !failing.is_empty()
    {
        let names: Vec<&str> = failing.iter().filter_map(Value::as_str).collect();
        text.push_str(&format!(" (failing: {})", names.join(", ")));
    }
    text
}

fn text_of<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// One line for the activities worth showing; tool calls and attempts are summarised.
fn describe_activity(activity: &ActivityRecord) -> Option<String> {
    let d = &activity.details;
    let line = match activity.activity.as_str() {
        "generated_tasks" => format!(
            "planned {} task(s) towards the goal",
            d.get("count").and_then(Value::as_u64).unwrap_or(0)
        ),
        "tdd:requirements" => format!("requirements: {}", text_of(d, "/details/summary")),
        "tdd:tests" => format!(
            "wrote tests first: {} ({})",
            list(d.pointer("/details/files")),
            text_of(d, "/details/summary")
        ),
        "tdd:implementation" => format!(
            "implemented: {} ({})",
            list(d.pointer("/details/files")),
            text_of(d, "/details/summary")
        ),
        "tdd:review" => format!(
            "reviewed: {} with score {:.1}",
            if d.pointer("/details/approve").and_then(Value::as_bool) == Some(true) {
                "approved"
            } else {
                "changes requested"
            },
            d.pointer("/details/score")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
        ),
        "tdd:release" => format!(
            "released: merge {}, deployment {}",
            d.pointer("/details/merge")
                .map_or_else(String::new, compact),
            d.pointer("/details/deployment")
                .map_or_else(String::new, compact)
        ),
        "decision:verdict" => format!(
            "verdict on the proposal: {} with score {:.1} ({})",
            if d.pointer("/details/approve").and_then(Value::as_bool) == Some(true) {
                "approve"
            } else {
                "reject"
            },
            d.pointer("/details/score")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            d.pointer("/details/criteria")
                .and_then(Value::as_array)
                .map(|criteria| criteria
                    .iter()
                    .map(|c| text_of(c, "/criterion/name").to_owned())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        "tool.calls" => format!(
            "tool calls of attempt {}: {}",
            d.get("attempt").and_then(Value::as_u64).unwrap_or(0),
            d.get("calls")
                .and_then(Value::as_array)
                .map(|calls| calls
                    .iter()
                    .map(|c| {
                        let ok = c.get("ok").and_then(Value::as_bool) != Some(false);
                        format!(
                            "{}{}",
                            text_of(c, "/tool"),
                            if ok { "" } else { " (failed)" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        _ => return None,
    };
    Some(line)
}

fn describe_decision(decision: &DecisionRecord) -> Option<String> {
    let d = &decision.decision_data;
    let line = match decision.decision_type.as_str() {
        "task_generation" => format!(
            "task generation: {}",
            d.get("tasks")
                .and_then(Value::as_array)
                .map(|tasks| tasks
                    .iter()
                    .map(|t| text_of(t, "/title").to_owned())
                    .collect::<Vec<_>>()
                    .join("; "))
                .unwrap_or_default()
        ),
        "self_correction" => format!(
            "self-check of attempt {}: {}, score {}",
            d.pointer("/attempt/number")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            text_of(d, "/attempt/decision"),
            d.pointer("/attempt/score").cloned().unwrap_or(Value::Null)
        ),
        "verdict" => {
            let verdict = if d.pointer("/verdict/approve").and_then(Value::as_bool) == Some(true) {
                "approve"
            } else {
                "reject"
            };
            match text_of(d, "/reviewed_role") {
                "" => format!("verdict: {verdict}"),
                author => format!("verdict on {author}'s work: {verdict}"),
            }
        }
        "final_decision" => return None,
        "release" => format!("release of {:?}", text_of(d, "/title")),
        "proposal" => format!(
            "decided on {:?}: {} ({})",
            text_of(d, "/title"),
            if d.get("approve").and_then(Value::as_bool) == Some(true) {
                "approved"
            } else {
                "rejected"
            },
            text_of(d, "/reasoning")
        ),
        "approval_criteria" => format!(
            "criteria: {}",
            d.get("criteria")
                .and_then(Value::as_array)
                .map(|criteria| criteria
                    .iter()
                    .map(|c| text_of(c, "/name").to_owned())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        other => other.to_owned(),
    };
    Some(line)
}

fn list(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn compact(value: &Value) -> String {
    match value {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, v)| match (k.as_str(), v.as_str()) {
                ("head" | "revision" | "base" | "commit" | "id", Some(id)) => {
                    format!("{k}={}", short(id))
                }
                (_, Some(text)) => format!("{k}={text}"),
                (_, None) => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// Whether the run's tasks all completed (none dead-lettered, failed for good or pending).
pub fn all_tasks_completed(tasks: &[TaskRecord]) -> bool {
    !tasks.is_empty() && tasks.iter().all(|t| t.status == TaskStatus::Completed)
}

/// Fails unless the outcome shows a finished pipeline: all tasks completed and something
/// merged and deployed (by this run or a run before it in the same directory).
///
/// # Errors
/// Names what is missing.
pub fn check_outcome(outcome: &Outcome) -> anyhow::Result<()> {
    if !all_tasks_completed(&outcome.tasks) {
        let open: Vec<String> = outcome
            .tasks
            .iter()
            .filter(|t| t.status != TaskStatus::Completed)
            .map(|t| {
                format!(
                    "{} ({}, {:?}{})",
                    t.id,
                    t.role,
                    t.status,
                    t.last_error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        bail!("not every task completed: {}", open.join("; "));
    }
    ensure!(
        outcome
            .pipelines
            .iter()
            .any(|(_, steps)| steps.contains_key("release")),
        "no pipeline reached its release step"
    );
    Ok(())
}
