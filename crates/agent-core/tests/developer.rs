#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Developer's tool loop on a real repository (real files, git, pytest): a failing
//! test made to pass and committed; loop detection; malformed tool calls; guarded tests.

mod common;

use agentd_agent_core::{AgentConfig, AttemptDecision, CorrectionPolicy, Role, Task, build_agent};
use agentd_llm::Message;
use common::*;
use serde_json::json as j;

fn task() -> Task {
    Task::new(
        "t-1",
        "Fix add()",
        "calc.add must return the sum; the tests in test_calc.py define it",
    )
}

fn developer(config: AgentConfig) -> std::sync::Arc<dyn agentd_agent_core::Agent> {
    build_agent(Role::Developer, config).unwrap()
}

fn bounded(approach_changes: u32) -> AgentConfig {
    AgentConfig {
        correction: CorrectionPolicy {
            max_fix_attempts: 0,
            max_approach_changes: approach_changes,
            ..CorrectionPolicy::default()
        },
        ..AgentConfig::default()
    }
}

fn tool_results(request: &agentd_llm::ChatRequest) -> Vec<(String, bool)> {
    request
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::Tool {
                content, is_error, ..
            } => Some((content.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_developer_makes_a_failing_test_pass_and_commits_it() {
    if !require_program("pytest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let vcs = python_repo(&repo).await;
    let llm = ScriptedLlm::new(vec![
        tool("read_file", j!({"path": "test_calc.py"})),
        tool("run_tests", j!({})),
        tool("write_file", j!({"path": "calc.py", "content": FIXED_CALC})),
        tool("run_tests", j!({"file": "test_calc.py"})),
        tool("finish", j!({"summary": "add() now adds"})),
        json(j!({"valid": true, "score": 9, "issues": []})),
        json(
            j!({"type": "fix", "scope": "calc", "subject": "make add return the sum", "body": "add() subtracted."}),
        ),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(full_workspace(&repo, vcs.clone(), true));
    let agent = developer(AgentConfig {
        auto_commit: true,
        ..AgentConfig::default()
    });

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert!(result.succeeded(), "{result:#?}");
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        FIXED_CALC
    );
    assert_eq!(result.artifacts.files_written, ["calc.py"]);
    let tests = result.artifacts.tests.clone().unwrap();
    assert!(tests.is_green(), "{tests:?}");
    assert_eq!(tests.passed, 2);

    let requests = llm.requests();
    let after_first_run = tool_results(&requests[2]);
    let (report, is_error) = &after_first_run[1];
    assert!(!is_error);
    assert!(report.contains("Tests failed"), "{report}");
    assert!(report.contains("test_add"), "{report}");
    let after_second_run = tool_results(&requests[4]);
    assert!(
        after_second_run[3].0.contains("All tests passed (2 passed"),
        "{:?}",
        after_second_run[3]
    );
    let host = repo.to_string_lossy().into_owned();
    for request in &requests {
        let text = serde_json::to_string(request).unwrap();
        assert!(!text.contains(&host), "a prompt leaks the host path {host}");
        assert_eq!(request.options.labels.task_id.as_deref(), Some("t-1"));
    }
    assert_eq!(requests[0].tools.len(), 9);
    let first = prompt_of(&requests[0]);
    assert!(
        first.contains("Last test run: failed (0 passed, 2 failed of 2)"),
        "{first}"
    );
    assert!(
        first.contains("- failing: test_calc.py::test_add"),
        "{first}"
    );

    let tool_log = ctx
        .memory
        .query_activities(agentd_memory::LogQuery {
            kind: Some(agentd_agent_core::journal::activity::TOOL_CALLS.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tool_log.len(), 1, "one activity per attempt");
    let tools: Vec<&str> = tool_log[0].details["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tool"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "read_file",
            "run_tests",
            "write_file",
            "run_tests",
            "finish"
        ]
    );

    let commit = result.artifacts.commit.clone().expect("committed");
    let log = vcs.log(&repo, None, 1).await.unwrap();
    assert_eq!(log[0].id, commit);
    assert_eq!(log[0].summary, "fix(calc): make add return the sum");
    assert!(
        log[0].message.contains("Task-Id: t-1"),
        "{}",
        log[0].message
    );
    assert!(
        log[0].message.contains("Agent-Role: developer"),
        "{}",
        log[0].message
    );
    let validation_prompt = prompt_of(&requests[5]);
    assert!(
        validation_prompt.contains("-    return a - b"),
        "the validator sees the diff: {validation_prompt}"
    );
    assert!(
        validation_prompt.contains("Tests: passed (2 passed, 0 failed of 2)"),
        "{validation_prompt}"
    );
}

#[tokio::test]
async fn the_same_call_in_an_unchanged_workspace_means_stuck() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), BUGGY_CALC).unwrap();
    let llm = ScriptedLlm::new(vec![
        tool("read_file", j!({"path": "calc.py"})),
        tool("read_file", j!({"path": "calc.py"})),
        tool("read_file", j!({"path": "calc.py"})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(workspace(dir.path()));

    let result = developer(bounded(0))
        .process_task(&task(), &ctx)
        .await
        .unwrap();

    assert!(!result.succeeded());
    let attempt = &result.attempts[0];
    assert_eq!(attempt.decision, AttemptDecision::GiveUp);
    let stuck = attempt.stuck.clone().unwrap();
    assert!(
        stuck.contains(r#"read_file({"path":"calc.py"})"#) && stuck.contains("3 times"),
        "{stuck}"
    );
    assert_eq!(llm.requests().len(), 3, "no validation of a stuck attempt");
}

#[tokio::test]
async fn a_write_in_between_is_progress_and_stuck_changes_the_approach() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), BUGGY_CALC).unwrap();
    let read = || tool("read_file", j!({"path": "calc.py"}));
    let llm = ScriptedLlm::new(vec![
        // Approach 1: reads, writes, reads again (not a repeat), then loops.
        read(),
        read(),
        tool("write_file", j!({"path": "calc.py", "content": FIXED_CALC})),
        read(),
        read(),
        read(),
        // Approach 2: told why, finishes.
        tool("finish", j!({"summary": "fixed"})),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(workspace(dir.path()));

    let result = developer(bounded(1))
        .process_task(&task(), &ctx)
        .await
        .unwrap();

    assert!(result.succeeded(), "{result:#?}");
    let decisions: Vec<_> = result.attempts.iter().map(|a| a.decision).collect();
    assert_eq!(
        decisions,
        [AttemptDecision::ChangeApproach, AttemptDecision::Accept]
    );
    let second_approach = prompt_of(&llm.requests()[6]);
    assert!(
        second_approach.contains("Change your approach"),
        "{second_approach}"
    );
    assert!(
        second_approach.contains("stuck: the same call read_file"),
        "{second_approach}"
    );
    assert!(llm.requests()[6].options.bypass_cache);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_failing_tests_three_times_means_stuck() {
    if !require_program("pytest") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let vcs = python_repo(&repo).await;
    let mut script = Vec::new();
    for n in 0..3 {
        let content = format!("def add(a, b):\n    # try {n}\n    return a - b\n");
        script.push(tool(
            "write_file",
            j!({"path": "calc.py", "content": content}),
        ));
        script.push(tool("run_tests", j!({})));
    }
    let llm = ScriptedLlm::new(script);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(full_workspace(&repo, vcs, true));

    let result = developer(bounded(0))
        .process_task(&task(), &ctx)
        .await
        .unwrap();

    let stuck = result.attempts[0].stuck.clone().unwrap();
    assert!(
        stuck.contains("the same tests failed the same way 3 times"),
        "{stuck}"
    );
    assert!(stuck.contains("test_add"), "{stuck}");
    assert_eq!(result.artifacts.tests.as_ref().unwrap().failed, 2);
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments_are_reported_back_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("calc.py"), BUGGY_CALC).unwrap();
    let llm = ScriptedLlm::new(vec![
        tool("rm_rf", j!({"path": "/"})),
        Reply::Tools(vec![("read_file".into(), "{\"path\": ".into())]),
        tool("read_file", j!({"file": "calc.py"})),
        Reply::Text("I think I am done.".into()),
        tool("write_file", j!({"path": "../escape.py", "content": "x"})),
        tool("finish", j!({"summary": "done"})),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(workspace(dir.path()));
    let mut config = bounded(0);
    config.correction.max_malformed_retries = 4;

    let result = developer(config).process_task(&task(), &ctx).await.unwrap();

    assert!(result.succeeded(), "{result:#?}");
    let requests = llm.requests();
    let results = tool_results(&requests[3]);
    assert!(
        results[0].1 && results[0].0.contains("Unknown tool \"rm_rf\""),
        "{:?}",
        results[0]
    );
    assert!(
        results[0].0.contains("read_file, write_file"),
        "{:?}",
        results[0]
    );
    assert!(
        results[1].1
            && results[1]
                .0
                .contains("The arguments of read_file are invalid"),
        "{:?}",
        results[1]
    );
    assert!(
        results[2].1 && results[2].0.contains("unknown field `file`"),
        "{:?}",
        results[2]
    );
    let nudge = format!("{:?}", requests[4].messages.last().unwrap());
    assert!(nudge.contains("without calling a tool"), "{nudge}");
    let escape = tool_results(&requests[5]);
    assert!(
        escape[3].1,
        "a path outside the workspace is refused: {:?}",
        escape[3]
    );
    assert!(!dir.path().parent().unwrap().join("escape.py").exists());
}

#[tokio::test]
async fn a_model_that_keeps_calling_unknown_tools_fails_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        tool("nope", j!({})),
        tool("nope2", j!({})),
        tool("nope3", j!({})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(workspace(dir.path()));
    let result = developer(bounded(0))
        .process_task(&task(), &ctx)
        .await
        .unwrap();
    assert!(!result.succeeded());
    let issue = &result.attempts[0].issues[0];
    assert!(
        issue.contains("malformed 3 times") && issue.contains("nope3"),
        "{issue}"
    );
}

#[tokio::test]
async fn existing_tests_are_read_only_for_the_developer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_calc.py"), CALC_TESTS).unwrap();
    let llm = ScriptedLlm::new(vec![
        tool(
            "write_file",
            j!({"path": "test_calc.py", "content": "def test_add():\n    pass\n"}),
        ),
        tool("finish", j!({"summary": "done"})),
        json(j!({"valid": true, "score": 8, "issues": []})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(workspace(dir.path()));
    developer(bounded(0))
        .process_task(&task(), &ctx)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("test_calc.py")).unwrap(),
        CALC_TESTS
    );
    let refused = tool_results(&llm.requests()[1]);
    assert!(
        refused[0].1 && refused[0].0.contains("never the tests"),
        "{:?}",
        refused[0]
    );
}

#[tokio::test]
async fn the_step_limit_ends_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        tool("list_dir", j!({"path": ""})),
        tool("find_files", j!({"pattern": "*.py"})),
    ]);
    let ctx = context(llm.clone(), dir.path())
        .await
        .with_workspace(workspace(dir.path()));
    let mut config = bounded(0);
    config.correction.max_tool_steps = 2;
    let result = developer(config).process_task(&task(), &ctx).await.unwrap();
    let stuck = result.attempts[0].stuck.clone().unwrap();
    assert!(stuck.contains("step limit of 2"), "{stuck}");
    assert_eq!(llm.requests().len(), 2);
}
