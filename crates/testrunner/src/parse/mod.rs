//! Parsers from each runner's output into [`Parsed`] results.
//!
//! Each parser is a pure function over text, so the fixtures of real runs test them directly.

pub(crate) mod cargo_text;
pub(crate) mod gotest;
pub(crate) mod jest;
pub(crate) mod junit;
pub(crate) mod nextest_console;
pub(crate) mod pytest_console;

use crate::report::{CouldNotRunKind, TestCase, TestCounts};

/// What a parser read from one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Parsed {
    pub tests: Vec<TestCase>,
    /// The counts; usually `TestCounts::from_tests(&tests)`, but a console summary may know
    /// more (tests it does not name).
    pub counts: TestCounts,
    /// A reason the suite did not (completely) run, seen in the output itself.
    pub problem: Option<(CouldNotRunKind, String)>,
}

impl Parsed {
    pub fn from_tests(tests: Vec<TestCase>) -> Self {
        Self {
            counts: TestCounts::from_tests(&tests),
            tests,
            problem: None,
        }
    }
}

/// `file` and `line` of a Rust panic message: `panicked at src/lib.rs:16:9`.
pub(crate) fn panic_location(text: &str) -> Option<(String, u32)> {
    let rest = text.split("panicked at ").nth(1)?;
    let location = rest.split_whitespace().next()?.trim_end_matches([':', ',']);
    let mut parts = location.rsplitn(3, ':');
    let _column = parts.next()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    Some((file.to_owned(), line))
}

/// The panic message: the lines after `panicked at …:` up to the backtrace note.
pub(crate) fn panic_message(text: &str) -> Option<String> {
    let mut lines = text.lines().skip_while(|l| !l.contains("panicked at "));
    lines.next()?;
    let message: Vec<&str> = lines
        .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace:"))
        .collect();
    let message = message.join("\n").trim().to_owned();
    (!message.is_empty()).then_some(message)
}

/// Parses `path:line` (as in `test_calc.py:10: AssertionError`) at the start of a line.
pub(crate) fn file_line_prefix(line: &str) -> Option<(String, u32)> {
    let mut parts = line.trim().splitn(3, ':');
    let file = parts.next()?;
    let line_no: u32 = parts.next()?.trim().parse().ok()?;
    (!file.is_empty() && !file.contains(' ')).then(|| (file.to_owned(), line_no))
}

/// The first line of `text` that is not blank.
pub(crate) fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_panic_location_and_message() {
        let text = "thread 'tests::it_fails' (7517) panicked at src/lib.rs:16:9:\nassertion `left == right` failed\n  left: 4\n right: 5\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(panic_location(text), Some(("src/lib.rs".to_owned(), 16)));
        assert_eq!(
            panic_message(text).as_deref(),
            Some("assertion `left == right` failed\n  left: 4\n right: 5")
        );
        assert_eq!(panic_location("no panic here"), None);
    }

    #[test]
    fn reads_file_line_prefixes() {
        assert_eq!(
            file_line_prefix("test_calc.py:10: AssertionError"),
            Some(("test_calc.py".to_owned(), 10))
        );
        assert_eq!(file_line_prefix("E   assert 4 == 5"), None);
    }
}
