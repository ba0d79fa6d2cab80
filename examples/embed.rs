//! Embedding agentd's crates in your own program, with an LLM client and a version-control
//! backend you write yourself.
//!
//! ```text
//! cargo run -p agentd --example embed
//! ```
//!
//! `GatewayClient` is the part you would write: any type implementing
//! [`agentd_llm::LlmClient`] (one `chat`, one `chat_stream`, one `probe`). Here it stands for
//! a company gateway in front of the model: it logs and counts every call, then forwards
//! it. The model behind it is the demo's rule-based one, so the example runs offline; put
//! your HTTP call there instead. [`App::open_with_backend`] wraps the client in the
//! configured stack (defaults, cache, recording, retries, usage accounting and budgets),
//! so a custom backend gets the same guarantees as the built-in providers.
//!
//! `AuditedVcs` is the other part you would write: any type implementing
//! [`agentd_vcs::Vcs`]. Here it keeps an audit trail of every repository operation the
//! agents and the release step perform, and forwards to gix; [`App::open_with`] puts it
//! under the repository, the task worktrees and the ci_cd deployer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::path::Path;
use std::sync::Mutex;

use agentd::app::{App, Backends};
use agentd::config::Config;
use agentd::demo::{self, scripted::ScriptedLlm};
use agentd_agent_core::{TaskKind, TaskSpec};
use agentd_llm::{ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, ProbeReport};
use agentd_orchestrator::RunLimits;
use agentd_vcs::{
    AddPaths, BranchInfo, CommitInfo, CommitOutcome, CommitRequest, GixVcs, MergeApproval,
    MergeOutcome, MergeRequest, RepoInfo, StatusEntry, Vcs, VcsSettings, WorktreeInfo,
};
use async_trait::async_trait;

/// Your client: counts and logs each call, then forwards it to the model behind it.
struct GatewayClient {
    model: Arc<dyn LlmClient>,
    calls: AtomicU64,
}

#[async_trait]
impl LlmClient for GatewayClient {
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let role = request.options.labels.role.clone().unwrap_or_default();
        let response = self.model.chat(request).await?;
        println!(
            "  gateway call {n:>2} ({role}): {} tokens in, {} out, {} tool call(s)",
            response.usage.input_tokens,
            response.usage.output_tokens,
            response.tool_calls.len()
        );
        Ok(response)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        Ok(self.chat(request).await?.into_stream())
    }

    async fn probe(&self) -> Result<ProbeReport, LlmError> {
        self.model.probe().await
    }
}

/// Your version control: records each operation in an audit trail, then forwards to gix.
struct AuditedVcs {
    inner: GixVcs,
    trail: Mutex<Vec<String>>,
}

impl AuditedVcs {
    fn note(&self, entry: String) {
        self.trail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry);
    }
}

#[async_trait]
impl Vcs for AuditedVcs {
    async fn init(&self, path: &Path) -> agentd_vcs::Result<RepoInfo> {
        self.note(format!("init {}", path.display()));
        self.inner.init(path).await
    }
    async fn open(&self, path: &Path) -> agentd_vcs::Result<RepoInfo> {
        self.inner.open(path).await
    }
    async fn clone_repo(&self, url: &str, dest: &Path) -> agentd_vcs::Result<RepoInfo> {
        self.note(format!("clone {url}"));
        self.inner.clone_repo(url, dest).await
    }
    async fn status(&self, repo: &Path) -> agentd_vcs::Result<Vec<StatusEntry>> {
        self.inner.status(repo).await
    }
    async fn add(&self, repo: &Path, paths: AddPaths) -> agentd_vcs::Result<()> {
        self.inner.add(repo, paths).await
    }
    async fn commit(
        &self,
        repo: &Path,
        request: CommitRequest,
    ) -> agentd_vcs::Result<CommitOutcome> {
        let summary = request
            .message
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let outcome = self.inner.commit(repo, request).await?;
        let state = if outcome.created {
            "new"
        } else {
            "already there"
        };
        self.note(format!(
            "commit {} ({state}): {summary}",
            short(&outcome.id)
        ));
        Ok(outcome)
    }
    async fn current_branch(&self, repo: &Path) -> agentd_vcs::Result<Option<String>> {
        self.inner.current_branch(repo).await
    }
    async fn create_branch(
        &self,
        repo: &Path,
        name: &str,
        start: Option<String>,
    ) -> agentd_vcs::Result<()> {
        self.note(format!("create branch {name}"));
        self.inner.create_branch(repo, name, start).await
    }
    async fn switch_branch(&self, repo: &Path, name: &str) -> agentd_vcs::Result<()> {
        self.inner.switch_branch(repo, name).await
    }
    async fn list_branches(&self, repo: &Path) -> agentd_vcs::Result<Vec<BranchInfo>> {
        self.inner.list_branches(repo).await
    }
    async fn delete_branch(&self, repo: &Path, name: &str) -> agentd_vcs::Result<()> {
        self.note(format!("delete branch {name}"));
        self.inner.delete_branch(repo, name).await
    }
    async fn checkout(&self, repo: &Path, rev: &str) -> agentd_vcs::Result<()> {
        self.inner.checkout(repo, rev).await
    }
    async fn diff_worktree(&self, repo: &Path) -> agentd_vcs::Result<String> {
        self.inner.diff_worktree(repo).await
    }
    async fn diff_revisions(
        &self,
        repo: &Path,
        from: &str,
        to: &str,
    ) -> agentd_vcs::Result<String> {
        self.inner.diff_revisions(repo, from, to).await
    }
    async fn log(
        &self,
        repo: &Path,
        rev: Option<String>,
        limit: usize,
    ) -> agentd_vcs::Result<Vec<CommitInfo>> {
        self.inner.log(repo, rev, limit).await
    }
    async fn merge_base(
        &self,
        repo: &Path,
        a: &str,
        b: &str,
    ) -> agentd_vcs::Result<Option<String>> {
        self.inner.merge_base(repo, a, b).await
    }
    async fn merge(&self, repo: &Path, request: MergeRequest) -> agentd_vcs::Result<MergeOutcome> {
        let what = format!("merge {} into {}", request.source, request.into);
        let outcome = self.inner.merge(repo, request).await?;
        self.note(format!("{what}: {outcome:?}"));
        Ok(outcome)
    }
    async fn tag(
        &self,
        repo: &Path,
        name: &str,
        rev: &str,
        message: Option<String>,
    ) -> agentd_vcs::Result<String> {
        self.note(format!("tag {name} at {rev}"));
        self.inner.tag(repo, name, rev, message).await
    }
    async fn push(
        &self,
        repo: &Path,
        remote: &str,
        branch: &str,
        approval: Option<MergeApproval>,
    ) -> agentd_vcs::Result<()> {
        self.note(format!("push {branch} to {remote}"));
        self.inner.push(repo, remote, branch, approval).await
    }
    async fn pull(
        &self,
        repo: &Path,
        remote: &str,
        branch: &str,
    ) -> agentd_vcs::Result<MergeOutcome> {
        self.note(format!("pull {branch} from {remote}"));
        self.inner.pull(repo, remote, branch).await
    }
    async fn add_worktree(
        &self,
        repo: &Path,
        path: &Path,
        branch: &str,
        start: Option<String>,
    ) -> agentd_vcs::Result<WorktreeInfo> {
        self.note(format!("worktree for {branch}"));
        self.inner.add_worktree(repo, path, branch, start).await
    }
    async fn remove_worktree(
        &self,
        repo: &Path,
        path: &Path,
        force: bool,
    ) -> agentd_vcs::Result<()> {
        self.inner.remove_worktree(repo, path, force).await
    }
}

fn short(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A workspace to work on: the demo's seed crate with a bare `origin` to deploy to.
    let dir = demo::prepare(&demo::fresh_run_dir(), &demo::shipped_cassette())?;
    let mut config = Config::load(&dir.config)?;
    // The backend replaces the provider; nothing is replayed or recorded.
    config.llm.provider = agentd_llm::ProviderKind::OpenaiCompatible;
    config.llm.cassette = None;

    let gateway = Arc::new(GatewayClient {
        model: Arc::new(ScriptedLlm),
        calls: AtomicU64::new(0),
    });
    let vcs = Arc::new(AuditedVcs {
        inner: GixVcs::new(VcsSettings::from(&config.git)),
        trail: Mutex::new(Vec::new()),
    });
    let backends = Backends {
        llm: Some(gateway.clone()),
        vcs: Some(vcs.clone()),
    };
    let app = App::open_with(config, true, backends).await?;

    // Submit work directly instead of letting the CEO plan it.
    let mut task = TaskSpec::new("Support multiplication in calc::eval", demo::scripted::GOAL);
    task.kind = TaskKind::Feature;
    let id = app
        .orchestrator
        .submit(task, Some("embed-example".into()))
        .await?;
    println!("submitted task {id}; running the TDD pipeline:");
    let summary = app
        .orchestrator
        .run_once(RunLimits {
            max_tasks: None,
            goal: None,
        })
        .await?;
    let verified = demo::verify(&dir)?;
    println!(
        "\n{} tasks completed, {} merged, {} deployed; {} gateway calls, ${:.4} accounted",
        summary.completed,
        summary.merged,
        summary.deployed,
        gateway.calls.load(Ordering::Relaxed),
        app.llm.usage().total.cost_usd
    );
    println!("\nrepository operations recorded by AuditedVcs:");
    for entry in vcs
        .trail
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        println!("  {entry}");
    }
    println!("{}", verified.graph.trim_end());
    println!("repository: {}", dir.repo.display());
    anyhow::ensure!(
        summary.dead_lettered == 0,
        "a task failed; see {}",
        dir.log.display()
    );
    Ok(())
}
