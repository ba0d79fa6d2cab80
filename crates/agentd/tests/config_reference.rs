//! Keeps `docs/config.md` and the config types in sync: every key the types accept is
//! documented, and every documented key is accepted.
//!
//! The keys are discovered from serde itself, by probing `Config` with values it must
//! reject: a struct with `deny_unknown_fields` answers an unknown field with the list of
//! its fields, an internally tagged enum answers an unknown tag with its variants, and a
//! map accepts any key. So a field added to any crate's settings shows up here without
//! anyone listing it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use agentd::config::Config;
use serde_json::{Value, json};

const PROBE: &str = "__probe";

/// One step of a path into the config.
#[derive(Clone, Debug)]
enum Seg {
    /// A struct field.
    Field(String),
    /// Any key of a map (`agents.<name>`).
    MapKey,
    /// A variant of an internally tagged enum: `tag` is set to `variant` at this level.
    Variant { tag: String, variant: String },
}

fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Seg::MapKey => out.push_str(".<name>"),
            Seg::Variant { variant, .. } => out.push_str(&format!("[{variant}]")),
        }
    }
    out
}

/// The config document with `leaf` placed at `path`.
fn document(path: &[Seg], leaf: Value) -> Value {
    fn place(path: &[Seg], leaf: Value) -> Value {
        let Some((first, rest)) = path.split_first() else {
            return leaf;
        };
        match first {
            Seg::Field(name) => json!({ name.clone(): place(rest, leaf) }),
            Seg::MapKey => json!({ "x": place(rest, leaf) }),
            Seg::Variant { tag, variant } => {
                let mut inner = place(rest, leaf);
                match inner.as_object_mut() {
                    Some(map) => {
                        map.insert(tag.clone(), json!(variant));
                        inner
                    }
                    None => panic!("a variant must be followed by its fields"),
                }
            }
        }
    }
    place(path, leaf)
}

fn error_at(path: &[Seg], leaf: Value) -> Option<String> {
    serde_json::from_value::<Config>(document(path, leaf))
        .err()
        .map(|e| e.to_string())
}

/// The backticked names after "expected" in a serde message.
fn names_after_expected(message: &str) -> Vec<String> {
    // Only the first "expected": field names such as `expected_status` follow it.
    let Some((_, tail)) = message.split_once("expected") else {
        return Vec::new();
    };
    tail.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn collect(path: Vec<Seg>, keys: &mut BTreeSet<String>) {
    let probe = json!({ PROBE: 1 });
    let Some(message) = error_at(&path, probe) else {
        // Only a map of numbers takes `{__probe: 1}` whole.
        let mut child = path.clone();
        child.push(Seg::MapKey);
        keys.insert(display(&child));
        return;
    };
    if message.contains(&format!("unknown field `{PROBE}`")) {
        // A struct: recurse into each of its fields.
        let fields = names_after_expected(&message);
        assert!(
            !fields.is_empty() || message.contains("there are no fields"),
            "{message}"
        );
        for field in fields {
            let mut child = path.clone();
            child.push(Seg::Field(field));
            collect(child, keys);
        }
    } else if let Some(tag) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        // An internally tagged enum: its tag is a key, and each variant has its own fields.
        let mut tag_path = path.clone();
        tag_path.push(Seg::Field(tag.to_owned()));
        keys.insert(display(&tag_path));
        let variants_message =
            error_at(&path, json!({ tag: PROBE })).expect("unknown variant is refused");
        for variant in names_after_expected(&variants_message) {
            let mut child = path.clone();
            child.push(Seg::Variant {
                tag: tag.to_owned(),
                variant,
            });
            let unknown = error_at(&child, json!({ PROBE: 1 })).unwrap_or_default();
            if unknown.contains(&format!("unknown field `{PROBE}`")) {
                for field in names_after_expected(&unknown)
                    .into_iter()
                    .filter(|f| f != tag)
                {
                    let mut grandchild = child.clone();
                    grandchild.push(Seg::Field(field));
                    collect(grandchild, keys);
                }
            }
        }
    } else if message.contains("invalid type: integer `1`") {
        // A map: it took the probe as a key and choked on the value.
        let mut child = path.clone();
        child.push(Seg::MapKey);
        if message.contains("expected struct") {
            collect(child, keys);
        } else {
            keys.insert(display(&child));
        }
    } else {
        // A scalar, a list or a plain enum: a key of its own.
        keys.insert(display(&path));
    }
}

fn config_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    collect(Vec::new(), &mut keys);
    keys
}

/// Keys in the first column of the reference's tables: ``| `llm.model` | … |``.
fn documented_keys(reference: &str) -> BTreeSet<String> {
    reference
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// Whether documented `pattern` names `key`; `[*]` in a pattern stands for any variant.
fn matches(pattern: &str, key: &str) -> bool {
    let mut rest = key;
    for (i, part) in pattern.split("[*]").enumerate() {
        if i > 0 {
            let Some(after) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
                return false;
            };
            rest = after.1;
        }
        let Some(after) = rest.strip_prefix(part) else {
            return false;
        };
        rest = after;
    }
    rest.is_empty()
}

#[test]
fn variant_patterns_match_any_variant() {
    assert!(matches(
        "deployment[*].health_check.type",
        "deployment[direct].health_check.type"
    ));
    assert!(matches("llm.model", "llm.model"));
    assert!(!matches("llm.model", "llm.models"));
    assert!(!matches("deployment[*].host", "deployment.host"));
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    let keys = config_keys();
    for expected in [
        "llm.provider",
        "llm.prices.<name>.input",
        "agents.<name>.model",
        "deployment.type",
        "git.protected_branches",
    ] {
        assert!(
            keys.contains(expected),
            "discovery missed {expected}: {keys:#?}"
        );
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md");
    let reference = std::fs::read_to_string(path).expect("docs/config.md");
    let documented = documented_keys(&reference);
    let undocumented: Vec<_> = keys
        .iter()
        .filter(|k| !documented.iter().any(|d| matches(d, k)))
        .collect();
    let unknown: Vec<_> = documented
        .iter()
        .filter(|d| !keys.iter().any(|k| matches(d, k)))
        .collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/config.md is out of sync with the config types.\nundocumented keys: {undocumented:#?}\ndocumented but unknown: {unknown:#?}"
    );
}

#[test]
fn the_probe_sees_through_every_kind_of_field() {
    // Scalars, nested structs, maps of structs, and variants of tagged enums.
    let keys = config_keys();
    assert!(keys.contains("testing.limits.cpu_seconds"), "{keys:#?}");
    assert!(
        keys.iter().any(|k| k.starts_with("deployment[direct].")),
        "{keys:#?}"
    );
    assert!(!keys.iter().any(|k| k.contains(PROBE)), "{keys:#?}");
}
