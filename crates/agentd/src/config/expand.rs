//! `${VAR}` and `${VAR:-default}` expansion of string values.
//!
//! figment has no expansion of its own, and the `subst` crate spells defaults
//! `${VAR:default}`; the config contract says `${VAR:-default}` (as POSIX shells do),
//! so this is the exact grammar:
//!
//! - `${NAME}`: the variable's value; an unset variable is an error naming it.
//! - `${NAME:-default}`: the value, or `default` when the variable is unset or empty.
//! - `$${`: a literal `${` (so prompts and scripts can still contain one).
//! - any other `$` is kept as it is.

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${NAME}` names a variable that is not set and has no default.
    #[error("environment variable `{0}` is not set (write `${{{0}:-default}}` to give a default)")]
    Unset(String),
    /// `${` without a closing `}`, or a name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("malformed `${{...}}` in {0:?}")]
    Malformed(String),
}

/// Expands `input`, looking variables up with `lookup`.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let close = tail
                .find('}')
                .ok_or_else(|| ExpandError::Malformed(input.to_owned()))?;
            let body = &tail[..close];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if !is_var_name(name) {
                return Err(ExpandError::Malformed(input.to_owned()));
            }
            match (
                lookup(name).filter(|v| default.is_none() || !v.is_empty()),
                default,
            ) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(ExpandError::Unset(name.to_owned())),
            }
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/a".into()),
            "EMPTY" => Some(String::new()),
            "KEY" => Some("s3cr3t".into()),
            _ => None,
        }
    }

    fn ok(input: &str) -> String {
        expand(input, &env).unwrap()
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(ok("${HOME}/x"), "/home/a/x");
        assert_eq!(ok("a${KEY}b${HOME}"), "as3cr3tb/home/a");
        assert_eq!(ok("${NOPE:-fallback}"), "fallback");
        assert_eq!(ok("${EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${HOME:-fallback}"), "/home/a");
        assert_eq!(ok("${NOPE:-}"), "");
        assert_eq!(ok("${NOPE:-a:-b}"), "a:-b");
    }

    #[test]
    fn set_but_empty_without_default_is_empty() {
        assert_eq!(ok("[${EMPTY}]"), "[]");
    }

    #[test]
    fn leaves_other_dollars_alone_and_unescapes() {
        assert_eq!(ok("cost $5, $HOME, $"), "cost $5, $HOME, $");
        assert_eq!(ok("$${HOME}"), "${HOME}");
        assert_eq!(ok("no variables"), "no variables");
        assert_eq!(ok("ünï${HOME}cøde"), "ünï/home/acøde");
    }

    #[test]
    fn unset_without_default_names_the_variable() {
        let err = expand("${OPENAI_API_KEY}", &env).unwrap_err();
        assert_eq!(err, ExpandError::Unset("OPENAI_API_KEY".into()));
        assert!(err.to_string().contains("OPENAI_API_KEY"));
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["${HOME", "${}", "${1X}", "${A B}", "${:-x}"] {
            assert!(
                matches!(expand(bad, &env), Err(ExpandError::Malformed(_))),
                "{bad} should be malformed"
            );
        }
    }
}
