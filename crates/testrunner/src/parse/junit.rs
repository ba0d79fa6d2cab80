//! JUnit XML (pytest `--junitxml`, nextest, custom commands).

use std::path::Path;

use super::{Parsed, file_line_prefix, first_line, panic_location, panic_message};
use crate::report::{CouldNotRunKind, TestCase, TestStatus};

/// Who wrote the XML: ids and locations are read differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// pytest: ids are node ids (`tests/test_x.py::TestA::test_b`), `pytest.xfail` skips
    /// are expected failures, collection errors are `<error>` cases.
    Pytest,
    /// nextest: one suite per test binary, ids are libtest test paths, locations and
    /// messages come from the panic.
    Nextest,
    /// Anything else: `classname.name` ids.
    Generic,
}

/// Parses a JUnit document. `project` resolves pytest class names to files.
pub(crate) fn parse(xml: &str, flavor: Flavor, project: &Path) -> Result<Parsed, String> {
    let tests = read_cases(xml)?
        .iter()
        .map(|case| convert(case, flavor, project))
        .collect();
    let mut parsed = Parsed::from_tests(tests);
    if flavor == Flavor::Pytest {
        parsed.problem = parsed
            .tests
            .iter()
            .find(|t| {
                t.status == TestStatus::Error && t.message.as_deref() == Some("collection failure")
            })
            .map(|t| {
                let cause = t
                    .output
                    .as_deref()
                    .and_then(|o| o.lines().rev().find(|l| l.starts_with("E ")))
                    .map(|l| format!(": {}", l.trim_start_matches('E').trim()))
                    .unwrap_or_default();
                (
                    CouldNotRunKind::CollectionError,
                    format!("pytest could not collect {}{cause}", t.id),
                )
            });
    }
    Ok(parsed)
}

/// How a `<testcase>` ended, from its child element.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum CaseEnd {
    #[default]
    Success,
    Failure,
    Error,
    Skipped,
}

/// One `<testcase>` as written.
#[derive(Debug, Default)]
struct RawCase {
    name: String,
    classname: String,
    time: f64,
    file: Option<String>,
    end: CaseEnd,
    end_type: String,
    message: String,
    text: String,
    system_out: String,
    system_err: String,
}

/// Which text of the current case the reader is inside.
#[derive(Clone, Copy)]
enum TextTarget {
    Outcome,
    Out,
    Err,
}

/// Reads every `<testcase>` at any depth. Written on quick-xml directly because text with
/// entity references (`&apos;`, `&gt;`, `&#10;`) must come out whole.
fn read_cases(xml: &str) -> Result<Vec<RawCase>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut current: Option<RawCase> = None;
    let mut target: Option<TextTarget> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "invalid JUnit XML at byte {}: {e}",
                reader.buffer_position()
            )
        })?;
        let (start, self_closing) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let attrs = attributes(e)?;
            let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let name = e.name().as_ref().to_owned();
            match name.as_str() {
                "testcase" => {
                    let case = RawCase {
                        name: get("name").unwrap_or_default(),
                        classname: get("classname").unwrap_or_default(),
                        time: get("time").and_then(|t| t.parse().ok()).unwrap_or(0.0),
                        file: get("file"),
                        ..RawCase::default()
                    };
                    if self_closing {
                        cases.push(case);
                    } else {
                        current = Some(case);
                    }
                }
                tag @ ("failure" | "error" | "skipped") => {
                    if let Some(case) = current.as_mut() {
                        case.end = match tag {
                            "failure" => CaseEnd::Failure,
                            "error" => CaseEnd::Error,
                            _ => CaseEnd::Skipped,
                        };
                        // Several failures (subtests): the first message leads.
                        if case.message.is_empty() {
                            case.message = get("message").unwrap_or_default();
                        }
                        case.end_type = get("type").unwrap_or_default();
                        target = (!self_closing).then_some(TextTarget::Outcome);
                    }
                }
                "system-out" if current.is_some() && !self_closing => {
                    target = Some(TextTarget::Out);
                }
                "system-err" if current.is_some() && !self_closing => {
                    target = Some(TextTarget::Err);
                }
                _ => target = None,
            }
            continue;
        }
        match event {
            Event::End(e) => {
                if e.name().as_ref() == "testcase" {
                    cases.extend(current.take());
                }
                target = None;
            }
            Event::Text(t) => push_text(&mut current, target, &t.xml10_content()),
            Event::CData(t) => push_text(&mut current, target, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&r)
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("&{};", &*r)),
                };
                push_text(&mut current, target, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(cases)
}

fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    e.attributes()
        .map(|a| {
            let a = a.map_err(|err| format!("invalid JUnit attribute: {err}"))?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| format!("invalid JUnit attribute value: {err}"))?;
            Ok((a.key.as_ref().to_owned(), value.into_owned()))
        })
        .collect()
}

fn push_text(current: &mut Option<RawCase>, target: Option<TextTarget>, text: &str) {
    let (Some(case), Some(target)) = (current.as_mut(), target) else {
        return;
    };
    match target {
        TextTarget::Outcome => case.text.push_str(text),
        TextTarget::Out => case.system_out.push_str(text),
        TextTarget::Err => case.system_err.push_str(text),
    }
}

fn convert(case: &RawCase, flavor: Flavor, project: &Path) -> TestCase {
    let status = match case.end {
        CaseEnd::Success => TestStatus::Passed,
        CaseEnd::Failure => TestStatus::Failed,
        CaseEnd::Error => TestStatus::Error,
        CaseEnd::Skipped if case.end_type == "pytest.xfail" => TestStatus::XFailed,
        CaseEnd::Skipped => TestStatus::Skipped,
    };
    let (message, text) = (case.message.as_str(), case.text.as_str());
    let classname = case.classname.as_str();
    let (id, mut file) = match flavor {
        Flavor::Pytest => pytest_id(classname, &case.name, case.file.as_deref(), project),
        Flavor::Nextest => (nextest_id(classname, &case.name), None),
        Flavor::Generic if classname.is_empty() => (case.name.clone(), case.file.clone()),
        Flavor::Generic => (format!("{classname}.{}", case.name), case.file.clone()),
    };
    let mut line = None;
    let location = match flavor {
        Flavor::Nextest => panic_location(text).or_else(|| panic_location(message)),
        _ => text.lines().rev().find_map(file_line_prefix),
    };
    if let Some((loc_file, loc_line)) = location {
        let loc_file = relative(&loc_file, project);
        // A traceback may end in library code; keep the test's own file when we know it.
        if file.is_none() || file.as_deref() == Some(loc_file.as_str()) {
            file = Some(loc_file);
            line = Some(loc_line);
        }
    }
    let output = if status == TestStatus::Passed {
        None
    } else {
        join_output(text, &case.system_out, &case.system_err)
    };
    let message = match flavor {
        Flavor::Nextest => panic_message(text),
        _ => None,
    }
    .or_else(|| (!message.is_empty()).then(|| message.to_owned()))
    .or_else(|| first_line(text));
    TestCase {
        id,
        name: case.name.clone(),
        file,
        line,
        status,
        duration_ms: duration_ms(case.time),
        message,
        output,
    }
}

/// The libtest test path, which `cargo test -- --exact` and `-E test(=…)` take. Newer nextest
/// versions prefix the name with the binary id (`demo::it::case` for binary `demo::it`).
fn nextest_id(classname: &str, name: &str) -> String {
    name.strip_prefix(classname)
        .and_then(|rest| rest.strip_prefix("::"))
        .unwrap_or(name)
        .to_owned()
}

fn duration_ms(seconds: f64) -> Option<u64> {
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// The traceback, then captured stdout/stderr when they add something to it.
fn join_output(text: &str, out: &str, err: &str) -> Option<String> {
    let mut joined = text.trim().to_owned();
    for (label, part) in [("stdout", out.trim()), ("stderr", err.trim())] {
        if part.is_empty() {
            continue;
        }
        if part != joined && !joined.contains(part) {
            if !joined.is_empty() {
                joined.push_str("\n\n");
            }
            joined.push_str(&format!("[captured {label}]\n{part}"));
        }
    }
    (!joined.is_empty()).then_some(joined)
}

fn relative(path: &str, project: &Path) -> String {
    Path::new(path)
        .strip_prefix(project)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_owned())
}

/// pytest's node id from a JUnit case: `classname` is the dotted module path plus any
/// classes (`tests.test_calc.TestAdd`); the longest prefix that names a `.py` file in the
/// project is the module.
fn pytest_id(
    classname: &str,
    name: &str,
    file_attr: Option<&str>,
    project: &Path,
) -> (String, Option<String>) {
    if classname.is_empty() {
        // A collection error: the name is the module path.
        let file = format!("{}.py", name.replace('.', "/"));
        return (file.clone(), Some(file));
    }
    let parts: Vec<&str> = classname.split('.').collect();
    let split = (1..=parts.len())
        .rev()
        .find(|&n| {
            let candidate = format!("{}.py", parts.get(..n).unwrap_or_default().join("/"));
            file_attr == Some(candidate.as_str()) || project.join(&candidate).is_file()
        })
        .unwrap_or(
            if parts.len() > 1 && parts.last().is_some_and(|p| starts_upper(p)) {
                parts.len() - 1
            } else {
                parts.len()
            },
        );
    let (module, classes) = parts.split_at(split.min(parts.len()));
    let file = format!("{}.py", module.join("/"));
    let mut id = file.clone();
    for part in classes.iter().copied().chain(std::iter::once(name)) {
        id.push_str("::");
        id.push_str(part);
    }
    (id, Some(file))
}

fn starts_upper(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}
