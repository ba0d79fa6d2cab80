//! A simple per-file assertion count, to notice tests that were weakened.
//!
//! It counts textual assertion markers, not semantics: enough to see that a file that had
//! twelve `assert_eq!` now has three.

use std::path::Path;

/// Markers counted per language (by file extension).
fn markers(extension: &str) -> &'static [&'static str] {
    match extension {
        "rs" => &[
            "assert!(",
            "assert_eq!(",
            "assert_ne!(",
            "assert_matches!(",
            "debug_assert",
            "#[should_panic",
            "assert_snapshot!(",
            "assert_debug_snapshot!(",
            "assert_json_snapshot!(",
            "assert_yaml_snapshot!(",
        ],
        "py" => &["assert ", "self.assert", "pytest.raises(", "pytest.fail("],
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => &["expect(", "assert(", "assert."],
        "go" => &["t.Error", "t.Fatal", "assert.", "require."],
        _ => &[],
    }
}

/// Counts assertion markers in source text of the given extension (comments included: a
/// heuristic, compared only between two versions of the same file).
pub fn count_assertions(text: &str, extension: &str) -> usize {
    markers(extension)
        .iter()
        .map(|marker| text.matches(marker).count())
        .sum()
}

/// Counts assertion markers in a file; `None` when it cannot be read.
pub fn count_assertions_in_file(path: &Path) -> Option<usize> {
    let extension = path.extension()?.to_str()?;
    let text = std::fs::read_to_string(path).ok()?;
    Some(count_assertions(&text, extension))
}

/// True for file names that hold tests by convention in the supported ecosystems.
pub(crate) fn is_test_file_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let in_tests_dir = path.components().any(|c| c.as_os_str() == "tests");
    (name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py")))
        || name.ends_with("_test.go")
        || [".test.", ".spec."].iter().any(|m| name.contains(m))
        || (name.ends_with(".rs") && in_tests_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_language() {
        assert_eq!(count_assertions("assert_eq!(a, b); assert!(c);", "rs"), 2);
        assert_eq!(
            count_assertions("    assert x == 1\n    assert y\n", "py"),
            2
        );
        assert_eq!(
            count_assertions("expect(a).toBe(1); expect(b).toBe(2);", "js"),
            2
        );
        assert_eq!(count_assertions("if got != 1 { t.Errorf(\"x\") }", "go"), 1);
        assert_eq!(count_assertions("assert x", "txt"), 0);
    }

    #[test]
    fn recognises_test_files() {
        for name in [
            "tests/test_a.py",
            "a_test.go",
            "src/sum.test.js",
            "tests/api.rs",
            "x.spec.ts",
        ] {
            assert!(is_test_file_name(Path::new(name)), "{name}");
        }
        for name in ["src/lib.rs", "calc.py", "index.js"] {
            assert!(!is_test_file_name(Path::new(name)), "{name}");
        }
    }
}
