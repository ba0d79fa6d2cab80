//! Validated revisions and safe substitution into remote shell commands.

use std::fmt;

use crate::error::DeployError;

/// A revision that passed validation: a hex commit id (4 to 64 hex digits) or a git ref
/// name that follows `git check-ref-format` and uses only `[A-Za-z0-9._/+-]`.
///
/// The character set excludes every shell metacharacter, so a `Revision` can never
/// inject into a command; [`shell_quote`] is still applied where it meets a shell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision(String);

impl Revision {
    /// Validates `revision`.
    ///
    /// # Errors
    /// [`DeployError::InvalidRevision`] naming the rule that failed.
    pub fn parse(revision: &str) -> Result<Self, DeployError> {
        let invalid = |reason: &str| DeployError::InvalidRevision {
            revision: revision.to_owned(),
            reason: reason.to_owned(),
        };
        if revision.is_empty() {
            return Err(invalid("empty"));
        }
        if revision.len() > 255 {
            return Err(invalid("longer than 255 characters"));
        }
        if let Some(bad) = revision
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | '+')))
        {
            return Err(invalid(&format!("character {bad:?} is not allowed")));
        }
        if revision.starts_with('-') {
            return Err(invalid("starts with '-'"));
        }
        if revision.starts_with('/') || revision.ends_with('/') || revision.contains("//") {
            return Err(invalid("empty path component"));
        }
        if revision.contains("..") {
            return Err(invalid("contains '..'"));
        }
        if revision.ends_with('.') {
            return Err(invalid("ends with '.'"));
        }
        if revision
            .split('/')
            .any(|part| part.starts_with('.') || part.ends_with(".lock"))
        {
            return Err(invalid(
                "a path component starts with '.' or ends with '.lock'",
            ));
        }
        Ok(Self(revision.to_owned()))
    }

    /// The revision text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the revision looks like an (abbreviated) hex commit id.
    #[must_use]
    pub fn is_commit_id(&self) -> bool {
        (4..=64).contains(&self.0.len()) && self.0.chars().all(|c| c.is_ascii_hexdigit())
    }

    /// Whether a revision reported by a target denotes this one: equal, or (for an
    /// abbreviated commit id) a full id it is a prefix of.
    #[must_use]
    pub fn matches_reported(&self, reported: &str) -> bool {
        let reported = reported.trim();
        reported == self.0
            || (self.is_commit_id()
                && reported.len() > self.0.len()
                && reported
                    .get(..self.0.len())
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(&self.0)))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Quotes `text` as one word for a POSIX shell (single quotes; embedded quotes escaped).
#[must_use]
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Replaces `{revision}` in a configured remote command with the shell-quoted revision.
#[must_use]
pub fn substitute_revision(template: &str, revision: &Revision) -> String {
    template.replace("{revision}", &shell_quote(revision.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_commit_ids_and_ref_names() {
        for ok in [
            "0123abcd",
            "3f786850e387550fdab836ed7e6dc881de23001b",
            "main",
            "release/v1.2.3",
            "feature/task-42_b",
            "v1.0+build",
        ] {
            assert!(Revision::parse(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_injection_and_bad_ref_names() {
        for bad in [
            "",
            "main; rm -rf /",
            "$(reboot)",
            "a b",
            "-rf",
            "--upload-pack=x",
            "../etc",
            "a..b",
            "/abs",
            "trailing/",
            "a//b",
            "x.lock",
            ".hidden",
            "dot.",
            "quote'",
            "back`tick`",
            "new\nline",
            "refs@{1}",
        ] {
            assert!(Revision::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        let revision = Revision::parse("v1.0").unwrap();
        assert_eq!(
            substitute_revision("git checkout {revision} && echo {revision}", &revision),
            "git checkout 'v1.0' && echo 'v1.0'"
        );
    }

    #[test]
    fn abbreviated_ids_match_full_ids() {
        let short = Revision::parse("3f7868").unwrap();
        assert!(short.matches_reported("3f786850e387550fdab836ed7e6dc881de23001b\n"));
        assert!(!short.matches_reported("aaaa850e387550fdab836ed7e6dc881de23001b"));
        let branch = Revision::parse("main").unwrap();
        assert!(branch.matches_reported("main"));
        assert!(!branch.matches_reported("mainline"));
    }
}
