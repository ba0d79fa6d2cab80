//! End-to-end tests of the `agentd` binary: the real executable as a child process, with
//! its config in a temp dir, against an OpenAI-format server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");
const SECRET: &str = "test-key-agentd-cli-0123456789";

/// What the fake provider saw and how it should answer.
#[derive(Default)]
struct Provider {
    requests: Mutex<Vec<(HeaderMap, Value)>>,
    reject_key: bool,
}

/// A server speaking OpenAI Chat Completions on a random loopback port, on its own thread.
struct Server {
    addr: SocketAddr,
    provider: Arc<Provider>,
}

impl Server {
    fn start(reject_key: bool) -> Server {
        let provider = Arc::new(Provider {
            reject_key,
            ..Provider::default()
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(provider.clone());
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
                axum::serve(listener, app).await.unwrap();
            });
        });
        Server { addr, provider }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.provider.requests.lock().unwrap().clone()
    }
}

fn unauthorized() -> Response {
    let body = json!({"error": {"message": "Incorrect API key provided: sk-test-***. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    (
        StatusCode::UNAUTHORIZED,
        [("x-request-id", "req_cli_401")],
        axum::Json(body),
    )
        .into_response()
}

async fn models(State(provider): State<Arc<Provider>>) -> Response {
    if provider.reject_key {
        return unauthorized();
    }
    axum::Json(json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "system"}]})).into_response()
}

async fn chat(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    let body = body.0;
    provider
        .requests
        .lock()
        .unwrap()
        .push((headers, body.clone()));
    if provider.reject_key {
        return unauthorized();
    }
    if body["stream"] == json!(true) {
        let sse =
            std::fs::read_to_string(format!("{FIXTURES}/openai_chat_stream_text.sse")).unwrap();
        return ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response();
    }
    if body["messages"].to_string().contains("weather") {
        let fixture =
            std::fs::read_to_string(format!("{FIXTURES}/openai_chat_tool_calls.json")).unwrap();
        return ([(header::CONTENT_TYPE, "application/json")], fixture).into_response();
    }
    let content = if body["response_format"]["type"] == json!("json_schema") {
        json!({"risks": ["scope creep", "flaky tests"], "count": 2}).to_string()
    } else {
        "Tests first, then code.".to_owned()
    };
    axum::Json(json!({
        "id": "chatcmpl-cli-1",
        "object": "chat.completion",
        "created": 1727346165,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28},
        "system_fingerprint": "fp_cli"
    }))
    .into_response()
}

/// A temp dir holding `agentd.yaml` for a server.
fn config_for(server: &Server, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "llm:\n  provider: openai_compatible\n  base_url: {}\n  api_key: ${{CLI_TEST_KEY}}\n  model: gpt-4o-mini\n  max_retries: 0\n{extra}",
        server.base_url()
    );
    std::fs::write(dir.path().join("agentd.yaml"), yaml).unwrap();
    dir
}

fn agentd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(dir)
        .args(args)
        .env("CLI_TEST_KEY", SECRET)
        .env("RUST_LOG", "trace")
        .env_remove("AGENTD_CONFIG")
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_no_secret(output: &Output) {
    let (stdout, stderr) = text(output);
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the API key leaked:\n{stdout}\n{stderr}"
    );
}

#[test]
fn init_writes_a_config_that_loads_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("project");
    let output = agentd(dir.path(), &["init", "project"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let written = std::fs::read_to_string(target.join("agentd.yaml")).unwrap();
    assert!(written.contains("provider: openai"));

    std::fs::write(target.join("agentd.yaml"), "# mine\n").unwrap();
    let again = agentd(dir.path(), &["init", "project"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).1.contains("already exists; pass --force"));
    assert_eq!(
        std::fs::read_to_string(target.join("agentd.yaml")).unwrap(),
        "# mine\n"
    );

    let forced = agentd(dir.path(), &["init", "project", "--force"]);
    assert!(forced.status.success());
    assert_eq!(
        std::fs::read_to_string(target.join("agentd.yaml")).unwrap(),
        written
    );
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        leftovers,
        vec![target.join("agentd.yaml")],
        "no temp files left behind"
    );
}

#[test]
fn ask_prints_the_answer_and_sends_the_expected_request() {
    let server = Server::start(false);
    let dir = config_for(&server, "");
    let output = agentd(
        dir.path(),
        &["ask", "How should we work?", "--system", "Be brief."],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout, "Tests first, then code.\n");
    assert!(stderr.contains("21 in / 7 out tokens"), "{stderr}");
    assert_no_secret(&output);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    assert_eq!(
        headers["authorization"],
        format!("Bearer {SECRET}").as_str()
    );
    insta::assert_json_snapshot!("ask_request_body", body);
}

#[test]
fn ask_shows_tool_calls_when_the_answer_has_no_text() {
    let server = Server::start(false);
    let dir = config_for(&server, "");
    let output = agentd(dir.path(), &["ask", "What is the weather in Edinburgh?"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "tool call GetWeatherArgs({\"city\":\"Edinburgh\",\"country\":\"UK\",\"units\":\"c\"})\n"
    );
    assert!(stderr.contains("76 in / 24 out tokens"), "{stderr}");
}

#[test]
fn ask_streams_the_fixture() {
    let server = Server::start(false);
    let dir = config_for(&server, "");
    let output = agentd(dir.path(), &["ask", "Say something", "--stream"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let sse = std::fs::read_to_string(format!("{FIXTURES}/openai_chat_stream_text.sse")).unwrap();
    let expected: String = sse
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(stdout.trim_end(), expected);
    assert_eq!(server.requests()[0].1["stream"], json!(true));
}

#[test]
fn ask_with_a_json_schema_validates_and_prints_json() {
    let server = Server::start(false);
    let dir = config_for(&server, "");
    let schema = json!({
        "type": "object",
        "properties": {"risks": {"type": "array", "items": {"type": "string"}}, "count": {"type": "integer"}},
        "required": ["risks", "count"]
    });
    std::fs::write(dir.path().join("risks.json"), schema.to_string()).unwrap();
    let output = agentd(
        dir.path(),
        &["ask", "List risks", "--json-schema", "risks.json"],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["count"], 2);
    let sent = &server.requests()[0].1;
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["schema"], schema);

    let strict = json!({"type": "object", "properties": {"count": {"type": "string"}}, "required": ["count"]});
    std::fs::write(dir.path().join("strict.json"), strict.to_string()).unwrap();
    let violation = agentd(
        dir.path(),
        &[
            "ask",
            "List risks",
            "--json-schema",
            "strict.json",
            "--no-cache",
        ],
    );
    assert_eq!(violation.status.code(), Some(1));
    assert!(
        text(&violation).1.contains("schema"),
        "{:?}",
        text(&violation)
    );

    let missing = agentd(dir.path(), &["ask", "x", "--json-schema", "nope.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing)
            .1
            .contains("cannot read JSON Schema file nope.json")
    );
}

#[test]
fn bad_config_is_a_usage_error_naming_key_and_file() {
    let server = Server::start(false);
    let dir = config_for(&server, "  temprature: 0.3\n");
    let output = agentd(dir.path(), &["ask", "hi"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("agentd.yaml"), "{stderr}");
    assert!(stderr.contains("key `llm.temprature`"), "{stderr}");
    assert!(
        server.requests().is_empty(),
        "no call is made with a bad config"
    );

    let no_file = agentd(dir.path(), &["--config", "missing.yaml", "ask", "hi"]);
    assert_eq!(no_file.status.code(), Some(2));
    assert!(text(&no_file).1.contains("missing.yaml") && text(&no_file).1.contains("agentd init"));
}

#[test]
fn provider_errors_show_the_providers_message_and_never_the_key() {
    let server = Server::start(true);
    let dir = config_for(&server, "");
    let output = agentd(dir.path(), &["ask", "hi"]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Incorrect API key provided"), "{stderr}");
    assert!(
        stderr.contains("req_cli_401"),
        "the request id is shown: {stderr}"
    );
    assert_eq!(server.requests().len(), 1, "401 is not retried");
    assert_no_secret(&output);
}

#[test]
fn doctor_reports_each_check() {
    let good = Server::start(false);
    let dir = config_for(&good, "");
    let output = agentd(dir.path(), &["doctor"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ok   config"), "{stdout}");
    assert!(stdout.contains("ok   llm"), "{stdout}");
    assert!(
        stdout.contains("warn git") && stdout.contains("not a git repository"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warn tests") && stdout.contains("set testing.framework"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warn store") && stdout.contains("does not exist yet"),
        "{stdout}"
    );
    assert!(
        !dir.path().join(".agentd").exists(),
        "doctor creates no store"
    );
    assert!(good.requests().is_empty(), "doctor generates no tokens");

    // A real repository and a cargo project turn the warnings into passes.
    cargo_project(dir.path());
    let init = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(init.success());
    let output = agentd(dir.path(), &["doctor"]);
    let (stdout, _) = text(&output);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok   git") && stdout.contains("on main at (no commits)"),
        "{stdout}"
    );
    assert!(stdout.contains("ok   tests    cargo in ."), "{stdout}");

    let bad = Server::start(true);
    let dir = config_for(&bad, "");
    let output = agentd(dir.path(), &["doctor"]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("FAIL llm"), "{stdout}");
    assert!(stdout.contains("Incorrect API key"), "{stdout}");
    assert_no_secret(&output);
}

#[test]
fn help_is_available_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["init", "--help"],
        &["ask", "--help"],
        &["doctor", "--help"],
    ] {
        let output = agentd(dir.path(), args);
        assert!(output.status.success(), "{args:?}");
        assert!(text(&output).0.contains("Usage:"), "{args:?}");
    }
}

/// The README's first command: an offline answer from the shipped cassette.
#[test]
fn readme_offline_example_replays_the_shipped_cassette() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(&root)
        .args([
            "--config",
            "examples/replay/agentd.yaml",
            "ask",
            "Write a haiku about tests",
        ])
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let cassette =
        std::fs::read_to_string(root.join("examples/replay/cassettes/ask.jsonl")).unwrap();
    let entry: Value = serde_json::from_str(cassette.lines().next().unwrap()).unwrap();
    assert_eq!(
        stdout.trim_end(),
        entry["response"]["text"].as_str().unwrap()
    );

    let miss = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(&root)
        .args([
            "--config",
            "examples/replay/agentd.yaml",
            "ask",
            "Something never recorded",
        ])
        .output()
        .unwrap();
    assert_eq!(miss.status.code(), Some(1));
    assert!(
        text(&miss).1.contains("nearest recorded request"),
        "{:?}",
        text(&miss)
    );
}

/// A dependency-free cargo crate with one passing and one failing test.
fn cargo_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(2, 2), 4); }\n    #[test]\n    fn subtracts() { assert_eq!(super::add(2, -1), 3, \"two minus one\"); }\n}\n",
    )
    .unwrap();
}

#[test]
fn test_command_runs_a_real_suite_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    cargo_project(&project);
    let output = agentd(dir.path(), &["test", "demo"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("cargo: 1 passed, 1 failed (2 total)"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("FAIL  tests::subtracts (src/lib.rs:"),
        "{stdout}"
    );

    let json = agentd(
        dir.path(),
        &["test", "demo", "--json", "--test", "tests::adds"],
    );
    let (stdout, stderr) = text(&json);
    assert!(json.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outcome"]["outcome"], "passed");
    assert_eq!(report["counts"]["passed"], 1);
    assert_eq!(report["counts"]["failed"], 0);
    let ran: Vec<&str> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "passed")
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["tests::adds"]);
}

#[test]
fn tasks_and_task_read_the_store() {
    use agentd_memory::{BackendKind, MemorySettings, NewTask, SystemClock};

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agentd.yaml"),
        "memory:\n  path: data/agentd.db\n",
    )
    .unwrap();
    let none = agentd(dir.path(), &["tasks"]);
    assert!(none.status.success());
    assert!(
        text(&none).0.contains("does not exist yet"),
        "{:?}",
        text(&none)
    );
    assert!(
        !dir.path().join("data").exists(),
        "a read-only command creates no store"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (root, child) = runtime.block_on(async {
        let settings = MemorySettings {
            backend: BackendKind::Sqlite,
            path: dir.path().join("data/agentd.db"),
            ..MemorySettings::default()
        };
        let stores = settings.open(Arc::new(SystemClock)).await.unwrap();
        let payload = json!({"task": {"title": "Add a greeting"}, "step": "requirements"});
        let root = stores
            .tasks
            .enqueue_one(NewTask::new("product", payload))
            .await
            .unwrap()
            .id;
        let claimed = stores
            .tasks
            .claim("product", "w1", std::time::Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        stores
            .tasks
            .complete(&root, claimed.token, json!({"summary": "done"}))
            .await
            .unwrap();
        let mut child = NewTask::new(
            "qa",
            json!({"task": {"title": "Write tests for the greeting"}, "step": "tests"}),
        );
        child.parent_id = Some(root.clone());
        let child = stores.tasks.enqueue_one(child).await.unwrap().id;
        (root, child)
    });

    let list = agentd(dir.path(), &["tasks"]);
    let (stdout, stderr) = text(&list);
    assert!(list.status.success(), "{stderr}");
    assert!(
        stdout.contains(&root) && stdout.contains("completed") && stdout.contains("Add a greeting"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&child) && stdout.contains("pending") && stdout.contains("tests"),
        "{stdout}"
    );

    let pending = agentd(dir.path(), &["tasks", "--status", "pending", "--json"]);
    let rows: Value = serde_json::from_str(&text(&pending).0).unwrap();
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [child.as_str()]);

    let bad = agentd(dir.path(), &["tasks", "--status", "finished"]);
    assert_eq!(bad.status.code(), Some(2), "clap rejects an unknown status");

    let show = agentd(dir.path(), &["task", &root]);
    let (stdout, stderr) = text(&show);
    assert!(show.status.success(), "{stderr}");
    assert!(stdout.contains("status   completed after 1 of"), "{stdout}");
    assert!(
        stdout.contains("pending -> running"),
        "history is shown: {stdout}"
    );
    assert!(stdout.contains(&child), "follow-ups are shown: {stdout}");
    assert!(stdout.contains("\"summary\": \"done\""), "{stdout}");

    let missing = agentd(dir.path(), &["task", "no-such-id"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("no task with id no-such-id"));
}

/// A config answering from the shipped one-entry cassette, so every agent call misses:
/// what the daemon does when its LLM fails.
fn failing_llm_config(dir: &Path) {
    let cassette =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/replay/cassettes/ask.jsonl");
    std::fs::write(
        dir.join("agentd.yaml"),
        format!(
            "llm:\n  provider: replay\n  model: gpt-4o-mini\n  cassette: {}\nfile_system:\n  workspace_path: repo\norchestrator:\n  check_interval: 0.2\n",
            cassette.display()
        ),
    )
    .unwrap();
}

#[test]
fn submit_status_and_a_drain_that_survives_a_failing_llm() {
    let dir = tempfile::tempdir().unwrap();
    failing_llm_config(dir.path());

    let status = agentd(dir.path(), &["status"]);
    assert!(status.status.success());
    assert!(
        text(&status).0.contains("no store yet"),
        "{:?}",
        text(&status)
    );

    let submitted = agentd(
        dir.path(),
        &[
            "submit",
            "Add a greeting function\nIt returns hello.",
            "--priority",
            "high",
        ],
    );
    let (stdout, stderr) = text(&submitted);
    assert!(submitted.status.success(), "{stderr}");
    let id = stdout.trim().to_owned();
    let again = agentd(
        dir.path(),
        &[
            "submit",
            "Add a greeting function",
            "--idempotency-key",
            "greet",
        ],
    );
    let same = agentd(
        dir.path(),
        &[
            "submit",
            "Add a greeting function",
            "--idempotency-key",
            "greet",
        ],
    );
    assert_eq!(
        text(&again).0,
        text(&same).0,
        "one task per idempotency key"
    );
    let bad_kind = agentd(dir.path(), &["submit", "x", "--kind", "party"]);
    assert_eq!(bad_kind.status.code(), Some(1));
    assert!(text(&bad_kind).1.contains("unknown --kind \"party\""));

    let status = agentd(dir.path(), &["status", "--json"]);
    let value: Value = serde_json::from_str(&text(&status).0).unwrap();
    assert_eq!(value["queues"]["product"]["pending"], 2, "{value}");
    assert!(
        value["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "developer")
    );

    let run = agentd(dir.path(), &["run", "--once"]);
    let (stdout, stderr) = text(&run);
    assert_eq!(
        run.status.code(),
        Some(1),
        "dead-lettered work is not success:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("dead-lettered"), "{stdout}");
    assert!(
        stdout.contains("llm: ") && stdout.contains("failed"),
        "{stdout}"
    );
    assert!(
        dir.path().join(".agentd/logs/agentd.log").exists(),
        "the daemon keeps a log file"
    );
    assert!(
        dir.path().join("repo/.git").exists(),
        "an empty workspace is initialised"
    );

    let show = agentd(dir.path(), &["task", &id]);
    assert!(
        text(&show).0.contains("status   dead_letter"),
        "{:?}",
        text(&show)
    );
    let status = agentd(dir.path(), &["status"]);
    let (stdout, _) = text(&status);
    assert!(stdout.contains("failures ("), "{stdout}");
    assert!(
        stdout.contains("daemon   pid") && stdout.contains("stopped"),
        "{stdout}"
    );
}

#[test]
fn the_daemon_serves_metrics_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read};

    let dir = tempfile::tempdir().unwrap();
    failing_llm_config(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .current_dir(dir.path())
        .args(["run", "--metrics-addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("metrics: ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();

    let get = |url: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let url: String = url.to_owned();
            let addr = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            let path = format!(
                "/{}",
                url.trim_start_matches("http://").split_once('/').unwrap().1
            );
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        })
    };
    let metrics = get(&url);
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("# TYPE"), "Prometheus text: {metrics}");
    let status = get(&url.replace("/metrics", "/status"));
    assert!(status.contains("\"running\":true"), "{status}");
    assert!(get(&url.replace("/metrics", "/healthz")).ends_with("ok\n"));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        exit.code().is_some(),
        "exited by itself, not killed by the signal: {exit:?}\n{stderr}"
    );
    assert!(stderr.contains("stopping"), "{stderr}");
    assert!(
        rest.contains("tasks: "),
        "the summary is printed on the way out: {rest}"
    );
}
