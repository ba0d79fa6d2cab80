#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The self-correction state machine: accept, fix then accept, change approach, give up;
//! malformed answers fed back; everything journaled.

mod common;

use std::sync::Arc;

use agentd_agent_core::{
    AgentConfig, AttemptDecision, CorrectionPolicy, Role, Task, TaskOutcome, build_agent, journal,
};
use agentd_llm::{ChatResponse, FinishReason, LlmClient, MockLlmClient, Usage};
use agentd_memory::LogQuery;
use common::{Reply, ScriptedLlm, context, json, prompt_of};
use serde_json::json as j;

fn requirements(summary: &str) -> Reply {
    json(j!({
        "summary": summary,
        "requirements": ["GET /health answers 200 with body ok"],
        "acceptance_criteria": ["given the server runs, when GET /health, then 200 and body ok"],
        "out_of_scope": ["authentication"]
    }))
}

fn validation(valid: bool, score: f64, issues: &[&str]) -> Reply {
    json(j!({"valid": valid, "score": score, "issues": issues}))
}

fn task() -> Task {
    Task::new(
        "t-1",
        "Health endpoint",
        "Add GET /health for load balancers",
    )
}

fn policy(fixes: u32, approach_changes: u32) -> AgentConfig {
    AgentConfig {
        correction: CorrectionPolicy {
            max_fix_attempts: fixes,
            max_approach_changes: approach_changes,
            ..CorrectionPolicy::default()
        },
        ..AgentConfig::default()
    }
}

#[tokio::test]
async fn a_valid_first_attempt_is_accepted_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        requirements("health check"),
        validation(true, 8.5, &[]),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert_eq!(result.outcome, TaskOutcome::Succeeded);
    assert_eq!(result.summary, "health check");
    assert_eq!(
        result.output["requirements"][0],
        "GET /health answers 200 with body ok"
    );
    assert_eq!(result.attempts.len(), 1);
    assert_eq!(result.attempts[0].decision, AttemptDecision::Accept);
    assert_eq!(result.attempts[0].score, Some(8.5));
    assert_eq!(result.attempts[0].prompt, "product/requirements.v1");
    assert_eq!(result.usage.calls, 2);
    assert!(result.usage.input_tokens > 0);
    assert_eq!(llm.remaining(), 0);

    let requests = llm.requests();
    for request in &requests {
        let labels = &request.options.labels;
        assert_eq!(labels.agent.as_deref(), Some("product"));
        assert_eq!(labels.role.as_deref(), Some("product"));
        assert_eq!(labels.task_id.as_deref(), Some("t-1"));
        assert!(
            !request.options.bypass_cache,
            "a first attempt may use the cache"
        );
    }
    assert_eq!(requests[0].system.as_deref(), Some(agent.system_prompt()));

    let attempts = ctx
        .memory
        .query_activities(LogQuery {
            kind: Some(journal::activity::ATTEMPT.into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].details["attempt"]["decision"], "accept");
    let decisions = ctx
        .memory
        .query_decisions(LogQuery {
            kind: Some(journal::decision::SELF_CORRECTION.into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].decision_data["attempt"]["score"], 8.5);
    let finished = ctx
        .memory
        .query_activities(LogQuery {
            kind: Some(journal::activity::FINISHED.into()),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(finished[0].details["llm"]["calls"], 2);
}

#[tokio::test]
async fn issues_are_fed_back_to_a_fix_that_bypasses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        requirements("first draft"),
        validation(false, 4.0, &["no error case for a stopped database"]),
        requirements("second draft"),
        validation(true, 7.0, &[]),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert!(result.succeeded());
    assert_eq!(result.summary, "second draft");
    let decisions: Vec<_> = result.attempts.iter().map(|a| a.decision).collect();
    assert_eq!(decisions, [AttemptDecision::Fix, AttemptDecision::Accept]);
    assert_eq!(
        result.attempts[0].issues,
        ["no error case for a stopped database"]
    );
    let requests = llm.requests();
    let fix_prompt = prompt_of(&requests[2]);
    assert!(
        fix_prompt.contains("Fix your previous attempt (this is attempt 2)"),
        "{fix_prompt}"
    );
    assert!(
        fix_prompt.contains("- no error case for a stopped database"),
        "{fix_prompt}"
    );
    assert!(
        requests[2].options.bypass_cache,
        "a fix must not get the cached wrong answer"
    );
    assert!(requests[3].options.bypass_cache, "nor its validation");
    assert_eq!(result.usage.calls, 4);
}

#[tokio::test]
async fn the_acceptance_score_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![requirements("ok"), validation(true, 6.5, &[])]);
    let ctx = context(llm.clone(), dir.path()).await;
    let mut config = AgentConfig::default();
    config.correction.accept_score = 6.0;
    let agent = build_agent(Role::Product, config).unwrap();
    assert!(agent.process_task(&task(), &ctx).await.unwrap().succeeded());

    // Valid, but below the default 7.0: a fix is asked for, naming the score.
    let llm = ScriptedLlm::new(vec![
        requirements("ok"),
        validation(true, 6.5, &[]),
        requirements("better"),
        validation(true, 9.0, &[]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let result = agent.process_task(&task(), &ctx).await.unwrap();
    assert_eq!(result.attempts[0].decision, AttemptDecision::Fix);
    assert!(
        result.attempts[0].issues[0].contains("6.5 is below the acceptance score 7"),
        "{:?}",
        result.attempts[0].issues
    );
}

#[tokio::test]
async fn exhausted_fixes_change_the_approach_with_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        requirements("approach A"),
        validation(false, 3.0, &["too vague"]),
        requirements("approach A, fixed"),
        validation(false, 5.0, &["still vague"]),
        requirements("approach B"),
        validation(true, 9.0, &[]),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, policy(1, 1)).unwrap();

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert!(result.succeeded());
    let decisions: Vec<_> = result
        .attempts
        .iter()
        .map(|a| (a.approach, a.decision))
        .collect();
    assert_eq!(
        decisions,
        [
            (0, AttemptDecision::Fix),
            (0, AttemptDecision::ChangeApproach),
            (1, AttemptDecision::Accept)
        ]
    );
    let new_approach = prompt_of(&llm.requests()[4]);
    assert!(
        new_approach.contains("Change your approach (this is approach 2, attempt 3)"),
        "{new_approach}"
    );
    assert!(
        new_approach.contains("Approach 1: approach A, fixed"),
        "{new_approach}"
    );
    assert!(new_approach.contains("- still vague"), "{new_approach}");
}

#[tokio::test]
async fn the_loop_gives_up_with_every_attempts_issues_and_makes_no_further_call() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        requirements("a1"),
        validation(false, 1.0, &["issue 1"]),
        requirements("a2"),
        validation(false, 2.0, &["issue 2"]),
        requirements("b1"),
        validation(false, 3.0, &["issue 3"]),
        requirements("b2"),
        validation(false, 4.0, &["issue 4"]),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, policy(1, 1)).unwrap();

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert!(
        matches!(&result.outcome, TaskOutcome::Failed { reason } if reason.contains("4 attempts in 2 approaches"))
    );
    let decisions: Vec<_> = result.attempts.iter().map(|a| a.decision).collect();
    assert_eq!(
        decisions,
        [
            AttemptDecision::Fix,
            AttemptDecision::ChangeApproach,
            AttemptDecision::Fix,
            AttemptDecision::GiveUp
        ]
    );
    assert_eq!(
        result.all_issues(),
        [
            "attempt 1 (approach 0): issue 1",
            "attempt 2 (approach 0): issue 2",
            "attempt 3 (approach 1): issue 3",
            "attempt 4 (approach 1): issue 4"
        ]
    );
    assert_eq!(llm.remaining(), 0);
    assert_eq!(llm.requests().len(), 8, "bounded: no call after giving up");
    let journaled = ctx
        .memory
        .query_decisions(agentd_memory::LogQuery {
            kind: Some(journal::decision::SELF_CORRECTION.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(journaled.len(), 4);
}

#[tokio::test]
async fn the_default_bounds_stop_after_twelve_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut script = Vec::new();
    for n in 0..12 {
        script.push(requirements(&format!("draft {n}")));
        script.push(validation(false, 2.0, &["not good"]));
    }
    let llm = ScriptedLlm::new(script);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let result = agent.process_task(&task(), &ctx).await.unwrap();
    assert!(!result.succeeded());
    assert_eq!(
        result.attempts.len(),
        12,
        "(1 + 3 fixes) x (1 + 2 approach changes)"
    );
    assert_eq!(llm.remaining(), 0);
}

#[tokio::test]
async fn malformed_answers_are_shown_to_the_model_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        Reply::Text("Sure! Here are the requirements: ...".into()),
        json(j!({"summary": "x", "requirements": []})),
        requirements("third time lucky"),
        validation(true, 8.0, &[]),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert!(result.succeeded());
    assert_eq!(
        result.attempts.len(),
        1,
        "corrections happen inside one attempt"
    );
    let requests = llm.requests();
    let second = &requests[1];
    assert!(second.options.bypass_cache);
    let feedback = format!("{:?}", second.messages.last().unwrap());
    assert!(feedback.contains("it is not valid JSON"), "{feedback}");
    assert_eq!(second.messages.len(), 3, "question, bad answer, correction");
    let third = format!("{:?}", requests[2].messages.last().unwrap());
    assert!(third.contains("it violates the schema"), "{third}");
    assert!(third.contains("acceptance_criteria"), "{third}");
}

#[tokio::test]
async fn output_that_stays_malformed_fails_the_attempt_not_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut script: Vec<Reply> = (0..3).map(|_| Reply::Text("{not json".into())).collect();
    script.push(requirements("recovered"));
    script.push(validation(true, 8.0, &[]));
    let llm = ScriptedLlm::new(script);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();

    let result = agent.process_task(&task(), &ctx).await.unwrap();

    assert!(result.succeeded());
    assert_eq!(result.attempts[0].decision, AttemptDecision::Fix);
    assert!(
        result.attempts[0].issues[0].contains("malformed 3 times"),
        "{:?}",
        result.attempts[0].issues
    );
    assert_eq!(result.attempts[0].score, None, "no validation ran");
}

#[tokio::test]
async fn provider_errors_propagate_as_errors_naming_the_step() {
    let mut mock = MockLlmClient::new();
    mock.expect_chat().times(1).returning(|_| {
        Err(agentd_llm::LlmError::Http {
            provider: "openai",
            status: 401,
            message: "invalid api key".into(),
            request_id: None,
            retry_after: None,
            should_retry: None,
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(Arc::new(mock), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let error = agent
        .process_task(&task(), &ctx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("product agent: LLM call failed while requirements"),
        "{error}"
    );
    assert!(error.contains("401"), "{error}");
}

#[tokio::test]
async fn a_mocked_client_sees_the_role_parameters_on_every_call() {
    let mut mock = MockLlmClient::new();
    let answers = [
        r#"{"summary":"s","requirements":["r"],"acceptance_criteria":["a"],"out_of_scope":[]}"#,
        r#"{"valid":true,"score":10,"issues":[]}"#,
    ];
    let mut seq = mockall::Sequence::new();
    for answer in answers {
        mock.expect_chat()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|request| {
                request.options.model.as_deref() == Some("small-model")
                    && request.options.temperature == Some(0.2)
                    && request.options.max_tokens == Some(900)
                    && request.options.labels.role.as_deref() == Some("product")
            })
            .returning(move |_| {
                Ok(ChatResponse {
                    text: answer.into(),
                    tool_calls: vec![],
                    usage: Usage {
                        input_tokens: 100,
                        output_tokens: 10,
                        ..Usage::default()
                    },
                    model: "small-model".into(),
                    finish_reason: FinishReason::Stop,
                    latency_ms: 1,
                    request_id: None,
                    from_cache: false,
                })
            });
    }
    let llm: Arc<dyn LlmClient> = Arc::new(mock);
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(llm, dir.path()).await;
    let mut config = AgentConfig::default();
    config.llm.model = Some("small-model".into());
    config.llm.temperature = Some(0.2);
    config.llm.max_tokens = Some(900);
    let agent = build_agent(Role::Product, config).unwrap();
    let result = agent.process_task(&task(), &ctx).await.unwrap();
    assert!(result.succeeded());
    assert_eq!(result.usage.input_tokens, 200);
    assert_eq!(result.usage.output_tokens, 20);
}

#[tokio::test]
async fn validate_result_is_callable_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![
        requirements("x"),
        validation(true, 9.0, &[]),
        validation(false, 2.0, &[]),
    ]);
    let ctx = context(llm.clone(), dir.path()).await;
    let agent = build_agent(Role::Product, AgentConfig::default()).unwrap();
    let result = agent.process_task(&task(), &ctx).await.unwrap();
    let again = agent.validate_result(&task(), &result, &ctx).await.unwrap();
    assert!(!again.valid);
    assert_eq!(
        again.issues.len(),
        1,
        "an invalid verdict always names an issue: {:?}",
        again.issues
    );
    let prompt = prompt_of(&llm.requests()[2]);
    assert!(prompt.contains("Summary: x"), "{prompt}");
}

#[tokio::test]
async fn unsupported_operations_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let llm = ScriptedLlm::new(vec![]);
    let ctx = context(llm.clone(), dir.path()).await;
    let qa = build_agent(Role::Qa, AgentConfig::default()).unwrap();
    let error = qa
        .generate_tasks(&Default::default(), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        agentd_agent_core::AgentError::Unsupported {
            operation: "generate_tasks",
            ..
        }
    ));
    let error = qa.decide(&task(), &[], &ctx).await.unwrap_err();
    assert!(matches!(
        error,
        agentd_agent_core::AgentError::Unsupported {
            operation: "decide",
            ..
        }
    ));
    let error = qa.process_task(&task(), &ctx).await.unwrap_err();
    assert!(
        error.to_string().contains("needs a workspace for task t-1"),
        "{error}"
    );
    assert_eq!(llm.requests().len(), 0);
}
