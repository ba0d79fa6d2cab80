//! Lexical validation of workspace-relative paths, before any system call.
//!
//! This is the first of two fences: it refuses what is malformed or obviously escaping
//! (absolute paths, `..` above the root, reserved names). The second fence is the
//! kernel-side resolution beneath the root directory handle (see `workspace.rs`), which
//! catches symlinks, including ones created after this check.

use crate::error::{FsError, Result};

/// Longest accepted path, in bytes (Linux `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component, in bytes (Linux `NAME_MAX`).
const MAX_COMPONENT_BYTES: usize = 255;
/// Directory at the root that holds backups; never addressable through the API.
pub(crate) const AGENTD_DIR: &str = ".agentd";
/// Prefix of temporary files made by atomic writes; never addressable or listed.
pub(crate) const TEMP_PREFIX: &str = ".agentd-tmp.";

/// A validated, normalised workspace-relative path. No component is empty, `.`, `..`,
/// reserved, or contains `/`, NUL, a backslash or a control character. Empty means the
/// workspace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelPath {
    components: Vec<String>,
}

/// Unicode format characters that make a name look like another one (bidi overrides,
/// zero-width characters, byte-order mark): refused so that a reviewer reading a path
/// sees what the filesystem sees.
fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether a single name is reserved: `.git` anywhere (hooks and config there run code),
/// and the prefix of our temporary files.
pub(crate) fn is_reserved_name(name: &str) -> bool {
    name.eq_ignore_ascii_case(".git") || name.starts_with(TEMP_PREFIX)
}

impl RelPath {
    /// Parses a path given by a caller. `""` and `"."` are the root.
    pub(crate) fn parse(input: &str) -> Result<Self> {
        let invalid = |reason| FsError::InvalidPath {
            path: input.to_owned(),
            reason,
        };
        if input.len() > MAX_PATH_BYTES {
            return Err(invalid("longer than 4096 bytes"));
        }
        if input.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        if input.contains('\\') {
            return Err(invalid("contains a backslash; use `/` as the separator"));
        }
        if input.chars().any(|c| c.is_control() || is_deceptive(c)) {
            return Err(invalid(
                "contains a control or invisible formatting character",
            ));
        }
        if input.starts_with('/') {
            return Err(FsError::Escape {
                path: input.to_owned(),
            });
        }
        let mut components: Vec<String> = Vec::new();
        for part in input.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if components.pop().is_none() {
                        return Err(FsError::Escape {
                            path: input.to_owned(),
                        });
                    }
                }
                name => {
                    if name.len() > MAX_COMPONENT_BYTES {
                        return Err(invalid("a component is longer than 255 bytes"));
                    }
                    components.push(name.to_owned());
                }
            }
        }
        let reserved_root = components
            .first()
            .is_some_and(|first| first.eq_ignore_ascii_case(AGENTD_DIR));
        if reserved_root || components.iter().any(|c| is_reserved_name(c)) {
            return Err(FsError::Reserved {
                path: input.to_owned(),
            });
        }
        Ok(Self { components })
    }

    /// Whether this is the workspace root.
    pub(crate) fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The normalised path, `/`-separated; `.` for the root.
    pub(crate) fn to_slash(&self) -> String {
        if self.is_root() {
            ".".to_owned()
        } else {
            self.components.join("/")
        }
    }

    /// The parent directory and the final name; `None` for the root.
    pub(crate) fn split_last(&self) -> Option<(RelPath, &str)> {
        let (last, parent) = self.components.split_last()?;
        Some((
            RelPath {
                components: parent.to_vec(),
            },
            last.as_str(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_dots_inside_the_root() {
        let p = RelPath::parse("./a/b/../c//d/.").unwrap();
        assert_eq!(p.to_slash(), "a/c/d");
        assert_eq!(RelPath::parse(".").unwrap().to_slash(), ".");
        assert!(RelPath::parse("").unwrap().is_root());
    }

    #[test]
    fn refuses_climbing_and_reserved_names() {
        assert!(matches!(
            RelPath::parse("a/../../x"),
            Err(FsError::Escape { .. })
        ));
        assert!(matches!(
            RelPath::parse("/etc"),
            Err(FsError::Escape { .. })
        ));
        assert!(matches!(
            RelPath::parse("x/.GIT/config"),
            Err(FsError::Reserved { .. })
        ));
        assert!(matches!(
            RelPath::parse(".agentd/backups"),
            Err(FsError::Reserved { .. })
        ));
        assert!(RelPath::parse("sub/.agentd").is_ok());
    }
}
