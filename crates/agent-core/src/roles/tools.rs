//! The Developer's tools: what the model may call, and how each call is run.

use std::path::PathBuf;

use agentd_fsmanager::SearchQuery;
use agentd_llm::{ToolCall, ToolDefinition};
use agentd_testrunner::{RunOptions, TestReport, TestTarget};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::changes::{blocking_files, cut, describe_changes};
use crate::context::TaskWorkspace;
use crate::model::TestSummary;
use crate::roles::is_test_path;

/// Longest file content returned by `read_file`.
const MAX_READ_CHARS: usize = 20_000;
/// Longest console excerpt shown for a failed or unrunnable test run.
const MAX_TEST_OUTPUT_CHARS: usize = 3_000;
/// Longest failure message shown per failing test.
const MAX_FAILURE_CHARS: usize = 800;
/// At most this many failing tests are detailed per run.
const MAX_FAILURES_SHOWN: usize = 10;
/// Upper bound on listed or found paths.
const MAX_PATHS: usize = 200;

/// The tool definitions offered to the model.
pub(crate) fn definitions() -> Vec<ToolDefinition> {
    let path = json!({"type": "string", "description": "Path relative to the workspace root"});
    let tool = |name: &str, description: &str, properties: Value, required: Vec<&str>| {
        ToolDefinition {
            name: name.to_owned(),
            description: description.to_owned(),
            parameters: json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false}),
        }
    };
    vec![
        tool(
            "read_file",
            "Read a text file.",
            json!({"path": path}),
            vec!["path"],
        ),
        tool(
            "write_file",
            "Create or replace a file with the complete new content. Existing test files cannot be changed.",
            json!({"path": path, "content": {"type": "string"}}),
            vec!["path", "content"],
        ),
        tool(
            "list_dir",
            "List one directory (empty path for the root).",
            json!({"path": path}),
            vec![],
        ),
        tool(
            "find_files",
            "Find files by glob: with a '/' it matches the whole path (src/**/*.rs), without one the file name (*.py).",
            json!({"pattern": {"type": "string"}}),
            vec!["pattern"],
        ),
        tool(
            "search",
            "Search file contents for text or a regular expression.",
            json!({
                "pattern": {"type": "string"},
                "regex": {"type": "boolean"},
                "path_glob": {"type": "string", "description": "Only files matching this glob"}
            }),
            vec!["pattern"],
        ),
        tool(
            "outline",
            "The declarations (functions, types, classes) of a source file with their line ranges.",
            json!({"path": path}),
            vec!["path"],
        ),
        tool(
            "run_tests",
            "Run the test suite, or only one test file or test id.",
            json!({
                "file": {"type": "string", "description": "A test file to run alone"},
                "test_id": {"type": "string", "description": "A test id to run alone"}
            }),
            vec![],
        ),
        tool(
            "view_diff",
            "Show your changes so far as a diff.",
            json!({}),
            vec![],
        ),
        tool(
            "finish",
            "Call when the tests pass and the task is done.",
            json!({"summary": {"type": "string", "description": "What you changed and why"}}),
            vec!["summary"],
        ),
    ]
}

/// What running one tool call produced.
#[derive(Debug, Default)]
pub(crate) struct ToolOutcome {
    /// The text the model reads.
    pub(crate) content: String,
    /// The call failed (bad arguments, a refused path, a failed operation).
    pub(crate) is_error: bool,
    /// The call was malformed: unknown tool or arguments that do not parse.
    pub(crate) malformed: bool,
    /// The workspace changed (a file was written).
    pub(crate) wrote: Option<String>,
    /// A test run: its summary and the fingerprint of its failures (None when green).
    pub(crate) tests: Option<(TestSummary, Option<String>)>,
    /// `finish` was called with this summary.
    pub(crate) finished: Option<String>,
}

impl ToolOutcome {
    fn ok(content: impl Into<String>) -> Self {
        ToolOutcome {
            content: content.into(),
            ..ToolOutcome::default()
        }
    }

    fn error(content: impl Into<String>) -> Self {
        ToolOutcome {
            content: content.into(),
            is_error: true,
            ..ToolOutcome::default()
        }
    }

    fn malformed(content: impl Into<String>) -> Self {
        ToolOutcome {
            content: content.into(),
            is_error: true,
            malformed: true,
            ..ToolOutcome::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathArgs {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindArgs {
    pattern: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    pattern: String,
    #[serde(default)]
    regex: bool,
    #[serde(default)]
    path_glob: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunTestsArgs {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    test_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArgs {
    summary: String,
}

/// A stable text for a call: its name and its arguments with keys sorted.
pub(crate) fn call_fingerprint(call: &ToolCall) -> String {
    let args = serde_json::from_str::<Value>(&call.arguments)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| call.arguments.clone());
    format!("{}({args})", call.name)
}

/// Runs tool calls against one task workspace.
pub(crate) struct ToolBox<'a> {
    pub(crate) ws: &'a TaskWorkspace,
    pub(crate) task_id: &'a str,
    /// Test files that existed before the attempt: the Developer may not change them.
    pub(crate) protected_tests: &'a std::collections::BTreeSet<String>,
}

impl ToolBox<'_> {
    /// Runs one call. Host paths of the workspace are replaced by `.` in what the model
    /// reads: they leak the host layout and would make prompts differ between runs.
    pub(crate) async fn run(&self, call: &ToolCall) -> ToolOutcome {
        let mut outcome = self.dispatch(call).await;
        outcome.content = stable_text(&outcome.content, &self.ws.root);
        outcome
    }

    async fn dispatch(&self, call: &ToolCall) -> ToolOutcome {
        match call.name.as_str() {
            "read_file" => match parse::<PathArgs>(call) {
                Ok(args) => self.read(args.path).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "write_file" => match parse::<WriteArgs>(call) {
                Ok(args) => self.write(args).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "list_dir" => match parse::<PathArgs>(call) {
                Ok(args) => self.list(args.path).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "find_files" => match parse::<FindArgs>(call) {
                Ok(args) => self.find(args.pattern).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "search" => match parse::<SearchArgs>(call) {
                Ok(args) => self.search(args).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "outline" => match parse::<PathArgs>(call) {
                Ok(args) => self.outline(args.path).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "run_tests" => match parse::<RunTestsArgs>(call) {
                Ok(args) => self.run_tests(args).await,
                Err(problem) => ToolOutcome::malformed(problem),
            },
            "view_diff" => match describe_changes(self.ws, None).await {
                Ok(diff) if diff.trim().is_empty() => ToolOutcome::ok("No changes yet."),
                Ok(diff) => ToolOutcome::ok(diff),
                Err(error) => ToolOutcome::error(error.to_string()),
            },
            "finish" => match parse::<FinishArgs>(call) {
                Ok(args) => ToolOutcome {
                    content: "Finished; the suite will now be run to confirm.".into(),
                    finished: Some(args.summary),
                    ..ToolOutcome::default()
                },
                Err(problem) => ToolOutcome::malformed(problem),
            },
            unknown => ToolOutcome::malformed(format!(
                "Unknown tool {unknown:?}. Available tools: {}.",
                definitions()
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    async fn read(&self, path: String) -> ToolOutcome {
        match blocking_files(&self.ws.files, move |f| f.read(&path)).await {
            Ok(content) => ToolOutcome::ok(cut(&content, MAX_READ_CHARS)),
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }

    async fn write(&self, args: WriteArgs) -> ToolOutcome {
        let normalized = args.path.trim_start_matches("./").to_owned();
        if is_test_path(&normalized) && self.protected_tests.contains(&normalized) {
            return ToolOutcome::error(format!(
                "{normalized} is an existing test file: the Developer changes the implementation, never the tests"
            ));
        }
        let WriteArgs { path, content } = args;
        match blocking_files(&self.ws.files, move |f| f.write(&path, &content)).await {
            Ok(report) => {
                let mut text = format!("Wrote {} bytes to {}.", report.bytes, report.path);
                if !report.syntax_errors.is_empty() {
                    text.push_str(" Syntax errors in the new content:");
                    for error in &report.syntax_errors {
                        text.push_str(&format!(
                            "\n- line {}, column {}: {}",
                            error.line, error.column, error.message
                        ));
                    }
                }
                ToolOutcome {
                    content: text,
                    wrote: Some(report.path),
                    ..ToolOutcome::default()
                }
            }
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }

    async fn list(&self, path: String) -> ToolOutcome {
        match blocking_files(&self.ws.files, move |f| f.list(&path)).await {
            Ok(entries) if entries.is_empty() => ToolOutcome::ok("(empty directory)"),
            Ok(entries) => ToolOutcome::ok(
                entries
                    .iter()
                    .take(MAX_PATHS)
                    .map(|e| match e.kind {
                        agentd_fsmanager::EntryKind::Directory => format!("{}/", e.path),
                        _ => e.path.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }

    async fn find(&self, pattern: String) -> ToolOutcome {
        match blocking_files(&self.ws.files, move |f| f.find(&pattern, MAX_PATHS)).await {
            Ok(found) if found.paths.is_empty() => ToolOutcome::ok("No file matches."),
            Ok(found) => {
                let mut text = found.paths.join("\n");
                if found.truncated {
                    text.push_str("\n(more files matched)");
                }
                ToolOutcome::ok(text)
            }
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }

    async fn search(&self, args: SearchArgs) -> ToolOutcome {
        let mut query = if args.regex {
            SearchQuery::regex(args.pattern)
        } else {
            SearchQuery::literal(args.pattern)
        };
        query.path_glob = args.path_glob;
        query.max_results = Some(50);
        match blocking_files(&self.ws.files, move |f| f.search(&query)).await {
            Ok(found) if found.matches.is_empty() => ToolOutcome::ok("No match."),
            Ok(found) => {
                let mut text = found
                    .matches
                    .iter()
                    .map(|m| format!("{}:{}:{}: {}", m.path, m.line, m.column, m.text))
                    .collect::<Vec<_>>()
                    .join("\n");
                if found.truncated {
                    text.push_str("\n(more matches)");
                }
                ToolOutcome::ok(text)
            }
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }

    async fn outline(&self, path: String) -> ToolOutcome {
        match blocking_files(&self.ws.files, move |f| f.parse_code(&path)).await {
            Ok(outline) => {
                let mut lines = Vec::new();
                fn walk(
                    items: &[agentd_fsmanager::OutlineItem],
                    depth: usize,
                    lines: &mut Vec<String>,
                ) {
                    for item in items {
                        lines.push(format!(
                            "{}{} {} (lines {}-{})",
                            "  ".repeat(depth),
                            item.kind.keyword(),
                            item.name,
                            item.start_line,
                            item.end_line
                        ));
                        walk(&item.children, depth + 1, lines);
                    }
                }
                walk(&outline.items, 0, &mut lines);
                if lines.is_empty() {
                    lines.push("(no declarations)".into());
                }
                ToolOutcome::ok(lines.join("\n"))
            }
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }

    async fn run_tests(&self, args: RunTestsArgs) -> ToolOutcome {
        let Some(runner) = &self.ws.tests else {
            return ToolOutcome::error("No test runner is configured for this workspace.");
        };
        let options = RunOptions {
            task_id: Some(self.task_id.to_owned()),
            ..RunOptions::default()
        };
        let target = match (args.file, args.test_id) {
            (Some(file), _) => Some(TestTarget::File(PathBuf::from(file))),
            (None, Some(id)) => Some(TestTarget::Id(id)),
            (None, None) => None,
        };
        let report = match &target {
            Some(target) => {
                runner
                    .run_specific_test(&self.ws.root, target, &options)
                    .await
            }
            None => runner.run_tests(&self.ws.root, &options).await,
        };
        match report {
            Ok(report) => {
                let summary = TestSummary::from_report(&report);
                let fingerprint = failure_fingerprint(&report);
                ToolOutcome {
                    content: describe_report(&report),
                    tests: Some((summary, fingerprint)),
                    ..ToolOutcome::default()
                }
            }
            Err(error) => ToolOutcome::error(error.to_string()),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(call: &ToolCall) -> Result<T, String> {
    let raw = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    serde_json::from_str(raw).map_err(|error| {
        format!(
            "The arguments of {} are invalid ({error}); you sent: {}. Call it again with arguments matching its schema.",
            call.name,
            cut(&call.arguments, 500)
        )
    })
}

/// `text` with the workspace's host path replaced by `.`, and run times (`0.12s`,
/// `35ms`) by `<time>`: both change from run to run, and prompts must not, or a recorded
/// run would not replay.
pub(crate) fn stable_text(text: &str, root: &std::path::Path) -> String {
    static DURATION: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\b\d+(\.\d+)?(ms|s)\b").ok());
    let root = root.to_string_lossy();
    // cargo prints these only when another cargo holds a lock: machine load, not the
    // project. Left in, they make a prompt differ between two runs of the same work.
    let text: String = text
        .split_inclusive('\n')
        .filter(|line| {
            !line
                .trim_start()
                .starts_with("Blocking waiting for file lock")
        })
        .collect();
    let text = if root.is_empty() {
        text
    } else {
        text.replace(root.as_ref(), ".")
    };
    match DURATION.as_ref() {
        Some(duration) => duration.replace_all(&text, "<time>").into_owned(),
        None => text,
    }
}

/// A fingerprint of what failed: same failing tests with the same messages, same print.
/// `None` when the run was green.
pub(crate) fn failure_fingerprint(report: &TestReport) -> Option<String> {
    if report.is_green() {
        return None;
    }
    let mut lines: Vec<String> = report
        .failures()
        .map(|t| {
            format!(
                "{}|{}",
                t.id,
                t.message
                    .as_deref()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
            )
        })
        .collect();
    if let Some((kind, reason)) = report.could_not_run() {
        lines.push(format!("could not run: {kind:?}: {reason}"));
    }
    lines.sort();
    let digest = Sha256::digest(lines.join("\n").as_bytes());
    Some(hex::encode(digest))
}

/// A test report as the model reads it: outcome, counts, each failure, console excerpt.
pub(crate) fn describe_report(report: &TestReport) -> String {
    let c = &report.counts;
    let mut text = match report.could_not_run() {
        Some((kind, reason)) => format!("The tests could not run ({kind:?}): {reason}"),
        None if report.is_green() => format!(
            "All tests passed ({} passed, {} skipped).",
            c.passed, c.skipped
        ),
        None => format!(
            "Tests failed: {} passed, {} failed, {} errors.",
            c.passed, c.failed, c.errors
        ),
    };
    for test in report.failures().take(MAX_FAILURES_SHOWN) {
        text.push_str(&format!("\n\nFAILED {}", test.id));
        if let Some(file) = &test.file {
            text.push_str(&format!(
                " ({file}{})",
                test.line.map(|l| format!(":{l}")).unwrap_or_default()
            ));
        }
        if let Some(message) = &test.message {
            text.push_str(&format!("\n{}", cut(message, MAX_FAILURE_CHARS)));
        }
        if let Some(output) = &test.output {
            text.push_str(&format!("\n{}", cut(output, MAX_FAILURE_CHARS)));
        }
    }
    if !report.is_green()
        && (report.could_not_run().is_some() || report.failures().next().is_none())
    {
        let tail: String = {
            let chars: Vec<char> = report.output.chars().collect();
            let start = chars.len().saturating_sub(MAX_TEST_OUTPUT_CHARS);
            chars
                .get(start..)
                .map(|s| s.iter().collect())
                .unwrap_or_default()
        };
        text.push_str(&format!("\n\nConsole (end):\n{tail}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_text_hides_the_host_path_and_run_times() {
        let root = std::path::Path::new("/tmp/.tmpAbC/repo");
        let console =
            "/tmp/.tmpAbC/repo/test_calc.py:4: AssertionError\n1 failed in 0.12s (35ms setup)";
        assert_eq!(
            stable_text(console, root),
            "./test_calc.py:4: AssertionError\n1 failed in <time> (<time> setup)"
        );
        assert_eq!(stable_text("assert 15 == 5", root), "assert 15 == 5");
        let busy = "    Blocking waiting for file lock on package cache\n   Compiling calc v0.1.0\nerror[E0425]\n";
        assert_eq!(
            stable_text(busy, root),
            "   Compiling calc v0.1.0\nerror[E0425]\n"
        );
        assert_eq!(
            stable_text("a\n\nb\n", root),
            "a\n\nb\n",
            "other text is kept byte for byte"
        );
    }

    #[test]
    fn call_fingerprints_ignore_argument_order_and_spacing() {
        let call = |args: &str| ToolCall {
            id: "x".into(),
            name: "search".into(),
            arguments: args.into(),
        };
        assert_eq!(
            call_fingerprint(&call(r#"{"pattern": "add", "regex": false}"#)),
            call_fingerprint(&call(r#"{"regex":false,"pattern":"add"}"#))
        );
        assert_eq!(call_fingerprint(&call("{broken")), "search({broken)");
    }
}
