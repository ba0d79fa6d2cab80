//! Code outlines and syntax errors through tree-sitter.

mod extract;

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Parser, Tree};

use crate::error::{FsError, Result};
use crate::path::RelPath;
use crate::workspace::Workspace;

/// At most this many syntax errors are reported per file.
const MAX_SYNTAX_ERRORS: usize = 50;

/// A language that can be outlined and syntax-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// `.rs`
    Rust,
    /// `.py`, `.pyi`
    Python,
    /// `.js`, `.jsx`, `.mjs`, `.cjs`
    JavaScript,
    /// `.ts`, `.mts`, `.cts`
    TypeScript,
    /// `.tsx`
    Tsx,
    /// `.go`
    Go,
}

impl Language {
    /// The language of a path, by extension.
    pub fn from_path(path: &str) -> Option<Self> {
        let (_, ext) = path.rsplit_once('.')?;
        Some(match ext {
            "rs" => Self::Rust,
            "py" | "pyi" => Self::Python,
            "js" | "jsx" | "mjs" | "cjs" => Self::JavaScript,
            "ts" | "mts" | "cts" => Self::TypeScript,
            "tsx" => Self::Tsx,
            "go" => Self::Go,
            _ => return None,
        })
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Self::Rust => tree_sitter_rust::LANGUAGE.into(),
            Self::Python => tree_sitter_python::LANGUAGE.into(),
            Self::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Self::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Self::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Self::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }
}

/// What an outline item declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A free function.
    Function,
    /// A function inside an impl, trait, class, interface, or a Go method.
    Method,
    /// A class.
    Class,
    /// A struct (or Rust union).
    Struct,
    /// An enum.
    Enum,
    /// A Rust trait.
    Trait,
    /// A TypeScript or Go interface.
    Interface,
    /// A Rust impl block; its name is `Type` or `Trait for Type`.
    Impl,
    /// A Rust `mod` or TypeScript namespace/module.
    Module,
    /// A type alias or other named type.
    Type,
}

impl ItemKind {
    /// The short keyword used in repo maps.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Function => "fn",
            Self::Method => "method",
            Self::Class => "class",
            Self::Struct => "struct",
            Self::Enum => "enum",
            Self::Trait => "trait",
            Self::Interface => "interface",
            Self::Impl => "impl",
            Self::Module => "mod",
            Self::Type => "type",
        }
    }
}

/// One declaration in an outline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlineItem {
    /// What it declares.
    pub kind: ItemKind,
    /// Its name as written (for impls: `Type` or `Trait for Type`).
    pub name: String,
    /// First line, 1-based (includes decorators and attributes the grammar attaches).
    pub start_line: usize,
    /// Last line, 1-based, inclusive.
    pub end_line: usize,
    /// Nested items: methods of impls, traits, classes, interfaces, Go types; items of
    /// modules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<OutlineItem>,
}

/// A syntax error found by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong: `missing ";"` or `unexpected "..."`.
    pub message: String,
}

/// The outline of one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outline {
    /// The language it was parsed as.
    pub language: Language,
    /// Number of lines in the source.
    pub line_count: usize,
    /// Top-level items in source order, with nested items as children.
    pub items: Vec<OutlineItem>,
    /// Syntax errors (at most 50); items are still extracted around them.
    pub syntax_errors: Vec<SyntaxError>,
}

fn parse(language: Language, source: &str) -> Result<Tree> {
    let mut parser = Parser::new();
    parser
        .set_language(&language.grammar())
        .map_err(|e| FsError::Parser {
            language,
            message: e.to_string(),
        })?;
    parser.parse(source, None).ok_or(FsError::Parser {
        language,
        message: "the parser returned no tree".to_owned(),
    })
}

/// Outlines source text of a known language.
pub fn outline_source(language: Language, source: &str) -> Result<Outline> {
    let tree = parse(language, source)?;
    let root = tree.root_node();
    Ok(Outline {
        language,
        line_count: source.lines().count(),
        items: extract::items(language, root, source.as_bytes()),
        syntax_errors: collect_errors(root, source),
    })
}

/// Syntax errors of source text of a known language (empty when it parses cleanly).
pub fn syntax_errors(language: Language, source: &str) -> Result<Vec<SyntaxError>> {
    let tree = parse(language, source)?;
    Ok(collect_errors(tree.root_node(), source))
}

fn collect_errors(root: Node<'_>, source: &str) -> Vec<SyntaxError> {
    let mut errors = Vec::new();
    if root.has_error() {
        visit_errors(root, source, &mut errors);
    }
    errors
}

fn visit_errors(node: Node<'_>, source: &str, out: &mut Vec<SyntaxError>) {
    if out.len() >= MAX_SYNTAX_ERRORS {
        return;
    }
    // An ERROR node often wraps valid code around the real mistake; report the
    // innermost error region, which is where a human would look.
    let mut cursor = node.walk();
    let inner_errors = node.is_error()
        && node
            .children(&mut cursor)
            .any(|c| c.has_error() || c.is_missing());
    if node.is_missing() || (node.is_error() && !inner_errors) {
        // Error regions often begin with the whitespace before the offending token.
        let text = source.get(node.byte_range()).unwrap_or_default();
        let leading = text.len() - text.trim_start().len();
        let start = node.start_byte() + if node.is_missing() { 0 } else { leading };
        let message = if node.is_missing() {
            format!("missing {:?}", node.kind())
        } else {
            let first_line = text.trim_start().lines().next().unwrap_or_default();
            let snippet: String = first_line.chars().take(30).collect();
            format!("unexpected {:?}", snippet.trim_end())
        };
        let before = source.get(..start).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = source
            .get(line_start..start)
            .map_or(1, |s| s.chars().count() + 1);
        out.push(SyntaxError {
            line,
            column,
            message,
        });
        return;
    }
    for child in node.children(&mut cursor) {
        if child.has_error() || child.is_missing() {
            visit_errors(child, source, out);
        }
    }
}

impl Workspace {
    /// Reads a source file (with the usual limits) and outlines it.
    #[tracing::instrument(level = "debug", skip(self))]
    pub fn parse_code(&self, path: &str) -> Result<Outline> {
        let rel = RelPath::parse(path)?;
        let language =
            Language::from_path(&rel.to_slash()).ok_or_else(|| FsError::UnsupportedLanguage {
                path: path.to_owned(),
            })?;
        let source = self.read(path)?;
        outline_source(language, &source)
    }
}
