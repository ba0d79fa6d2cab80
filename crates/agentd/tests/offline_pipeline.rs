//! The offline main job end to end: the real agents, prompts, tool loop, cargo test, git,
//! SQLite store and ci_cd deployment, with the LLM answers replayed from the cassette
//! shipped in `examples/tdd/`; and the same pipeline run by the real `agentd` binary while
//! being killed with SIGKILL at random points.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentd::demo::{self, LlmSource, RunDir};
use agentd_testrunner::{CargoRunner, LocalTestRunner, RunOptions, TestRunner, TestingSettings};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of the first sample of `metric` (any labels) in Prometheus text.
fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split(['{', ' '])
                .next()
                .is_some_and(|name| name.ends_with(metric))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs the pipeline in-process from the shipped cassette and checks everything it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_pipeline_merges_and_deploys_from_the_shipped_cassette() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = demo::prepare(&tmp.path().join("run"), &demo::shipped_cassette()).unwrap();
    let outcome = demo::run(&dir, &LlmSource::Replay).await.unwrap();
    demo::check_outcome(&outcome).unwrap();
    let verified = demo::verify(&dir).unwrap();

    // The summary of this run.
    assert_eq!(outcome.summary.generated, 1, "{:?}", outcome.summary);
    assert_eq!(outcome.summary.merged, 1);
    assert_eq!(outcome.summary.deployed, 1);
    assert_eq!(outcome.summary.dead_lettered, 0);
    assert_eq!(outcome.llm.failed_requests, 0);

    // Repository: a feature branch merged into main, one commit per step, trailers once.
    assert_eq!(verified.feature_branches.len(), 1);
    assert_eq!(verified.merged, verified.feature_branches);
    let subjects = git(&dir.repo, &["log", "--format=%s", "main"]);
    let subjects: Vec<&str> = subjects.lines().collect();
    assert_eq!(
        subjects,
        [
            "feat: Support multiplication in calc::eval",
            "test: Support multiplication in calc::eval",
            "chore: calc, a tiny expression evaluator"
        ]
    );
    assert_eq!(verified.task_ids.len(), 2, "{:?}", verified.task_ids);
    assert_ne!(verified.task_ids[0], verified.task_ids[1]);
    let roles = git(
        &dir.repo,
        &[
            "log",
            "--format=%(trailers:key=Agent-Role,valueonly)",
            "main",
        ],
    );
    let roles: Vec<&str> = roles.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(roles, ["developer", "qa"]);
    // The tests commit holds only the tests, the feature commit only the code.
    let tests_commit = git(&dir.repo, &["show", "--name-only", "--format=", "main~1"]);
    assert_eq!(tests_commit.trim(), demo::scripted::TEST_FILE);
    let code_commit = git(&dir.repo, &["show", "--name-only", "--format=", "main"]);
    assert_eq!(code_commit.trim(), demo::scripted::LIB_FILE);
    git(&dir.repo, &["fsck", "--strict", "--no-progress"]);
    git(&dir.remote, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(
        git(&dir.remote, &["rev-parse", "main"]).trim(),
        verified.main,
        "the bare remote has main at the merge"
    );
    assert_eq!(verified.deployments, 1);
    // The main worktree is clean: agentd's data stays out of the repository.
    assert_eq!(git(&dir.repo, &["status", "--porcelain"]), "");

    // Test report: the merged main passes its whole suite, new tests included.
    let runner = LocalTestRunner::new(TestingSettings {
        cargo_runner: CargoRunner::Test,
        ..TestingSettings::default()
    })
    .unwrap();
    let report = runner
        .run_tests(&dir.repo, &RunOptions::default())
        .await
        .unwrap();
    assert!(report.is_green(), "{:?}", report.counts);
    assert_eq!(report.counts.passed, 7, "{:?}", report.counts);
    // The pipeline saw the tests fail first and pass after the code.
    let (_, steps) = outcome.pipelines.first().unwrap();
    assert_ne!(steps["tests"]["red"]["outcome"], "passed", "{steps:?}");
    assert_eq!(steps["implementation/0"]["gate_passed"], true);
    assert_eq!(steps["implementation/0"]["tests"]["outcome"], "passed");
    assert_eq!(steps["review/0"]["approve"], true);

    // Store: every task completed, one per step; activities and decisions of each role.
    assert!(demo::all_tasks_completed(&outcome.tasks));
    let mut per_role: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &outcome.tasks {
        *per_role.entry(task.role.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_role,
        BTreeMap::from([
            ("developer", 1),
            ("product", 1),
            ("qa", 1),
            ("release", 1),
            ("tech_lead", 1)
        ])
    );
    let activities: Vec<(&str, &str)> = outcome
        .activities
        .iter()
        .map(|a| (a.agent_name.as_str(), a.activity.as_str()))
        .collect();
    for expected in [
        ("ceo", "generated_tasks"),
        ("product", "tdd:requirements"),
        ("qa", "tdd:tests"),
        ("developer", "tool.calls"),
        ("developer", "tdd:implementation"),
        ("tech_lead", "tdd:review"),
        ("orchestrator", "tdd:release"),
    ] {
        assert!(
            activities.contains(&expected),
            "{expected:?} missing from {activities:?}"
        );
    }
    let decisions: Vec<(&str, &str)> = outcome
        .decisions
        .iter()
        .map(|d| (d.agent_name.as_str(), d.decision_type.as_str()))
        .collect();
    for expected in [
        ("ceo", "task_generation"),
        ("qa", "self_correction"),
        ("developer", "self_correction"),
        ("tech_lead", "verdict"),
        ("orchestrator", "release"),
    ] {
        assert!(
            decisions.contains(&expected),
            "{expected:?} missing from {decisions:?}"
        );
    }

    // Metrics: the completed tasks and the LLM calls are counted.
    assert!(
        metric_sum(&outcome.metrics, "tasks_completed_total") >= 5.0,
        "{}",
        outcome.metrics
    );
    assert!(
        outcome
            .metrics
            .lines()
            .any(|line| line == "agentd_llm_requests{total=\"all\"} 11.0"),
        "{}",
        outcome.metrics
    );

    // The report names what happened and where.
    let mut text = Vec::new();
    demo::write_report(&dir, &outcome, Some(&verified), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    for needle in [
        "wrote tests first: tests/multiply.rs",
        "implemented: src/lib.rs",
        "reviewed: approved",
        "tests-first gate passed; passed: 7 passed, 0 failed of 7",
        "releases: 1 merged, 1 deployed",
        &format!("repository:  {}", dir.repo.display()),
        &format!("remote:      {}", dir.remote.display()),
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }

    // The rendered report, with ids, numbers and paths masked.
    insta::assert_snapshot!("tdd_report", agentd_llm::mask_volatile(&text));

    // Reruns never collide: a used directory is refused.
    let again = demo::prepare(&dir.root, &demo::shipped_cassette()).unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");
}

/// Records the scripted backend's run of `job` to a temporary cassette and compares it,
/// request by request, with the shipped one.
async fn assert_fresh(shipped: &Path, decision: bool, expected_calls: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let cassette = tmp.path().join("recorded.jsonl");
    let dir = demo::prepare(&tmp.path().join("run"), &cassette).unwrap();
    let source = LlmSource::Record(cassette.clone());
    let outcome = if decision {
        demo::run_decision(&dir, &source).await.unwrap()
    } else {
        demo::run(&dir, &source).await.unwrap()
    };
    demo::check_outcome(&outcome).unwrap();
    demo::verify(&dir).unwrap();
    let requests = |path: &Path| -> Vec<agentd_llm::ChatRequest> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str::<agentd_llm::CassetteEntry>(line)
                    .unwrap()
                    .request
            })
            .collect()
    };
    let key = |r: &agentd_llm::ChatRequest| agentd_llm::normalized_fingerprint(r);
    // Parallel reviewers record in any order: compare as sorted multisets, and show the
    // first request of the fresh recording that the shipped cassette lacks.
    let fresh = requests(&cassette);
    let shipped_requests = requests(shipped);
    assert_eq!(fresh.len(), expected_calls, "one call per pipeline turn");
    for now in &fresh {
        if shipped_requests.iter().any(|then| key(then) == key(now)) {
            continue;
        }
        let text = |r: &agentd_llm::ChatRequest| {
            agentd_llm::mask_volatile(&serde_json::to_string_pretty(r).unwrap())
        };
        let nearest = shipped_requests
            .iter()
            .find(|then| then.response_format == now.response_format && then.system == now.system)
            .map(text)
            .unwrap_or_default();
        let changed: Vec<String> = text(now)
            .lines()
            .zip(nearest.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("  now:     {a}\n  shipped: {b}"))
            .collect();
        panic!(
            "{} is stale: re-record it with `cargo run -p agentd --example {} -- --record`\n{}",
            shipped.display(),
            if decision {
                "decision_pipeline"
            } else {
                "tdd_pipeline"
            },
            changed.join("\n")
        );
    }
    let mut fresh: Vec<String> = fresh.iter().map(key).collect();
    let mut shipped_keys: Vec<String> = shipped_requests.iter().map(key).collect();
    fresh.sort();
    shipped_keys.sort();
    assert_eq!(
        fresh,
        shipped_keys,
        "{} has extra requests",
        shipped.display()
    );
}

/// The shipped cassettes are what the scripted backend records with today's prompts: a
/// prompt or schema change that was not re-recorded fails here, naming the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_cassettes_match_a_fresh_recording() {
    assert_fresh(&demo::shipped_cassette(), false, 11).await;
    assert_fresh(&demo::shipped_decision_cassette(), true, 24).await;
}

/// The decision flow from the shipped cassette: four verdicts, the CEO's approval, and the
/// project task it created built test-first, merged and deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_pipeline_approves_and_builds_the_project_from_the_shipped_cassette() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = demo::prepare(&tmp.path().join("run"), &demo::shipped_decision_cassette()).unwrap();
    let outcome = demo::run_decision(&dir, &LlmSource::Replay).await.unwrap();
    demo::check_outcome(&outcome).unwrap();
    let verified = demo::verify(&dir).unwrap();
    assert_eq!(verified.task_ids.len(), 2);
    assert_eq!(outcome.summary.merged, 1);
    assert_eq!(outcome.summary.deployed, 1);
    let mut verdicts: Vec<&str> = outcome
        .activities
        .iter()
        .filter(|a| a.activity == "decision:verdict")
        .inspect(|a| assert_eq!(a.details["details"]["approve"], true, "{a:?}"))
        .map(|a| a.agent_name.as_str())
        .collect();
    verdicts.sort_unstable();
    assert_eq!(verdicts, ["cfo", "legal", "risk", "tech_lead"]);
    let decision = outcome
        .decisions
        .iter()
        .find(|d| d.decision_type == "proposal")
        .expect("the CEO's decision is recorded");
    assert_eq!(decision.agent_name, "ceo");
    assert_eq!(decision.decision_data["approve"], true);
    assert_eq!(
        decision.decision_data["verdicts"].as_array().map(Vec::len),
        Some(4)
    );
    // The approval created the project's task as a child of the proposal, and it ran
    // through the TDD pipeline.
    let proposal = outcome
        .tasks
        .iter()
        .find(|t| t.idempotency_key.as_deref() == Some("demo:proposal"))
        .expect("the proposal task");
    let project = outcome
        .tasks
        .iter()
        .find(|t| t.parent_id.as_deref() == Some(proposal.id.as_str()) && t.role == "product")
        .expect("the project task created by the approval");
    let (_, steps) = outcome
        .pipelines
        .iter()
        .find(|(root, _)| *root == project.id)
        .expect("the project's TDD pipeline");
    assert!(steps.contains_key("release"), "{steps:?}");
}

/// A live run (here the scripted backend behind a real OpenAI-compatible HTTP server on
/// 127.0.0.1) records a cassette, which then replays offline in a fresh directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_records_a_cassette_that_replays_offline() {
    let provider = scripted_provider();
    let tmp = tempfile::tempdir().unwrap();
    let user_config = tmp.path().join("my-agentd.yaml");
    std::fs::write(
        &user_config,
        format!(
            "llm:\n  provider: openai_compatible\n  base_url: http://{provider}\n  \
             model: gpt-4o-mini\n  temperature: 0.3\n  max_tokens: 2000\n"
        ),
    )
    .unwrap();
    let cassette = tmp.path().join("live.cassette.jsonl");
    let live = demo::prepare(&tmp.path().join("live"), &demo::shipped_cassette()).unwrap();
    let outcome = demo::run(
        &live,
        &LlmSource::Live {
            config: user_config.clone(),
            cassette: cassette.clone(),
        },
    )
    .await
    .unwrap();
    demo::check_outcome(&outcome).unwrap();
    demo::verify(&live).unwrap();
    let recorded = std::fs::read_to_string(&cassette).unwrap();
    assert_eq!(recorded.lines().count(), 11, "every call is recorded");
    assert!(
        recorded.contains("\"temperature\":0.3"),
        "the live settings are recorded"
    );

    let offline = demo::prepare(&tmp.path().join("offline"), &demo::shipped_cassette()).unwrap();
    let outcome = demo::run(
        &offline,
        &LlmSource::ReplayLive {
            config: user_config,
            cassette,
        },
    )
    .await
    .unwrap();
    demo::check_outcome(&outcome).unwrap();
    assert_eq!(outcome.llm.failed_requests, 0);
    demo::verify(&offline).unwrap();
}

/// Running a finished directory again does nothing: the CEO sees the task done and plans
/// no new work; nothing is committed, merged or deployed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_a_finished_directory_again_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cassette = tmp.path().join("recorded.jsonl");
    let dir = demo::prepare(&tmp.path().join("run"), &cassette).unwrap();
    let source = LlmSource::Record(cassette);
    demo::check_outcome(&demo::run(&dir, &source).await.unwrap()).unwrap();
    let first = demo::verify(&dir).unwrap();
    let again = demo::run(&dir, &source).await.unwrap();
    assert_eq!(again.summary.generated, 0, "{:?}", again.summary);
    assert_eq!((again.summary.merged, again.summary.deployed), (0, 0));
    demo::check_outcome(&again).unwrap();
    assert_eq!(demo::verify(&dir).unwrap(), first);
}

/// The README's other form: the real binary on a prepared directory, offline.
#[test]
fn the_agentd_binary_replays_the_pipeline_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = demo::prepare(&tmp.path().join("run"), &demo::shipped_cassette()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args(["--log-format", "json", "run", "--once", "--config"])
        .arg(&dir.config)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("releases: 1 merged, 1 deployed"),
        "{stdout}"
    );
    let verified = demo::verify(&dir).unwrap();
    assert_eq!(verified.task_ids.len(), 2);
    assert!(dir.log.exists(), "the daemon logs to {}", dir.log.display());
}

/// What must be the same after any number of crashes as after an uninterrupted run.
#[derive(Debug, PartialEq, Eq)]
struct FinalState {
    /// `main`'s tree (content-addressed: same files, same bytes).
    main_tree: String,
    /// Subjects of `main`'s commits, newest first.
    subjects: Vec<String>,
    /// How many commits carry each Task-Id trailer (must all be 1).
    trailer_counts: Vec<usize>,
    /// The remote's main tree.
    remote_tree: String,
    /// Successful deployments, and all deployment records.
    deployments: (usize, usize),
    /// (queue, status) of every task, sorted.
    tasks: Vec<(String, String)>,
    /// Decisions of the orchestrator's release (one per released pipeline).
    releases: usize,
}

/// `PRAGMA integrity_check` of the SQLite store, on a read-only connection.
fn integrity_check(db: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

async fn final_state(dir: &RunDir) -> FinalState {
    let verified = demo::verify(dir).unwrap();
    let subjects = git(&dir.repo, &["log", "--format=%s", "main"])
        .lines()
        .map(str::to_owned)
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in &verified.task_ids {
        *counts.entry(id.clone()).or_default() += 1;
    }
    git(&dir.repo, &["fsck", "--strict", "--no-progress"]);
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dir.deployments).unwrap()).unwrap();
    let records = history["records"].as_array().unwrap();
    let succeeded = records.iter().filter(|r| r["state"] == "succeeded").count();
    let config = agentd::config::Config::load(&dir.config).unwrap();
    let app = agentd::app::App::open(config, false).await.unwrap();
    let outcome = demo::read_outcome(&app, Default::default()).await.unwrap();
    let mut tasks: Vec<(String, String)> = outcome
        .tasks
        .iter()
        .map(|t| (t.role.clone(), t.status.as_str().to_owned()))
        .collect();
    tasks.sort();
    let releases = outcome
        .decisions
        .iter()
        .filter(|d| d.decision_type == "release")
        .count();
    FinalState {
        main_tree: git(&dir.repo, &["rev-parse", "main^{tree}"]).trim().into(),
        subjects,
        trailer_counts: counts.into_values().collect(),
        remote_tree: git(&dir.remote, &["rev-parse", "main^{tree}"])
            .trim()
            .into(),
        deployments: (succeeded, records.len()),
        tasks,
        releases,
    }
}

/// Runs `agentd run --once` on `dir`; with `kill_after`, SIGKILLs it then (if still
/// running). Returns whether it exited by itself with success, and how long it ran.
fn run_binary(dir: &RunDir, kill_after: Option<Duration>) -> (bool, bool, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args(["--log-format", "json", "run", "--once", "--config"])
        .arg(&dir.config)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.root.join("last-run.out")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = kill_after.map(|d| started + d);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.success(), false, started.elapsed());
        }
        if let Some(deadline) = deadline
            && Instant::now() >= deadline
        {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            let status = child.wait().unwrap();
            // It may have finished in the same instant.
            return (status.success(), !status.success(), started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "agentd run --once did not finish in 120 s ({})",
            dir.log.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Serves the scripted backend as an OpenAI-compatible provider on 127.0.0.1 (random
/// port), on a runtime of its own, for the lifetime of the test process.
fn scripted_provider() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            demo::scripted::serve_openai_compatible(listener)
                .await
                .unwrap();
        });
    });
    addr
}

/// A prepared run directory for the crash test. Two changes to the demo's config:
/// - the LLM is the scripted backend over HTTP (`openai_compatible`), recording to a
///   cassette in the run directory. A cassette cannot serve a resumed run: after a kill,
///   the prompts of the interrupted step carry what it logged before (tool calls,
///   attempts), which no recording contains; the scripted rules answer any state.
/// - leases are short (`task_timeout: 4`), so that a task held by a killed process is
///   reclaimed within seconds (the lease is `task_timeout`, at most 30 s).
fn crash_dir(root: &Path, provider: std::net::SocketAddr) -> RunDir {
    let dir = demo::prepare(root, &root.join("llm.cassette.jsonl")).unwrap();
    let yaml = std::fs::read_to_string(&dir.config).unwrap();
    assert!(yaml.contains("task_timeout: 300") && yaml.contains("  provider: replay\n"));
    let yaml = yaml
        .replace("task_timeout: 300", "task_timeout: 4")
        .replace(
            "  provider: replay\n",
            &format!("  provider: openai_compatible\n  base_url: http://{provider}\n"),
        );
    std::fs::write(&dir.config, yaml).unwrap();
    dir
}

/// A small deterministic pseudo-random sequence (xorshift), seeded per run and printed,
/// so that a failing schedule can be replayed with `AGENTD_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_repeats_nothing() {
    const KILLS: u32 = 20;
    let tmp = tempfile::tempdir().unwrap();
    let seed = std::env::var("AGENTD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::from(std::process::id())
                ^ u64::try_from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                        % 1_000_000_007,
                )
                .unwrap()
        })
        | 1;
    println!("crash schedule seed {seed} (AGENTD_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);

    // The reference: one uninterrupted run of the real binary.
    let provider = scripted_provider();
    let reference_dir = crash_dir(&tmp.path().join("reference"), provider);
    let (ok, _, took) = run_binary(&reference_dir, None);
    assert!(
        ok,
        "the uninterrupted run failed; see {}",
        reference_dir.log.display()
    );
    let reference = final_state(&reference_dir).await;
    assert_eq!(reference.deployments, (1, 1));
    assert!(reference.trailer_counts.iter().all(|&n| n == 1));
    let span_ms = u64::try_from(took.as_millis()).unwrap().max(200);

    // Crashes: each scenario kills a run after a random delay within the uninterrupted
    // run's duration, up to three times in a row, then lets the last run finish.
    let mut kills = 0;
    let mut scenario = 0;
    let mut restarts = 0;
    while kills < KILLS {
        scenario += 1;
        let dir = crash_dir(&tmp.path().join(format!("crash-{scenario}")), provider);
        let mut killed_here = 0;
        loop {
            let kill_after = (killed_here < 3 && kills < KILLS)
                .then(|| Duration::from_millis(rng.below(span_ms)));
            let (ok, killed, _) = run_binary(&dir, kill_after);
            if killed {
                kills += 1;
                killed_here += 1;
                continue;
            }
            restarts += 1;
            if ok {
                break;
            }
            let log = std::fs::read_to_string(&dir.log).unwrap_or_default();
            let problems: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\""))
                .collect();
            let stdout = std::fs::read_to_string(dir.root.join("last-run.out")).unwrap_or_default();
            panic!(
                "scenario {scenario} (seed {seed}): a restarted run failed after {killed_here} kills:\n{stdout}\n{}",
                problems[problems.len().saturating_sub(15)..].join("\n")
            );
        }
        let state = final_state(&dir).await;
        assert_eq!(
            state, reference,
            "scenario {scenario} (seed {seed}, {killed_here} kills) differs from the uninterrupted run"
        );
        assert_eq!(
            integrity_check(&dir.store),
            "ok",
            "store of scenario {scenario}"
        );
    }
    println!(
        "{kills} SIGKILLs in {scenario} scenarios, {restarts} completing runs; uninterrupted run {took:?}"
    );
}
