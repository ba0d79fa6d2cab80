#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Outlines of real-looking files in every supported language, and syntax errors.

use agentd_fsmanager::{
    FileSystemSettings, FsError, ItemKind, Language, Outline, Workspace, outline_source,
    syntax_errors,
};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Renders an outline as an indented text tree, easy to review in a snapshot.
fn render(outline: &Outline) -> String {
    fn walk(items: &[agentd_fsmanager::OutlineItem], depth: usize, out: &mut String) {
        for item in items {
            out.push_str(&format!(
                "{}{:?} {} [{}-{}]\n",
                "  ".repeat(depth),
                item.kind,
                item.name,
                item.start_line,
                item.end_line
            ));
            walk(&item.children, depth + 1, out);
        }
    }
    let mut out = format!("{:?}, {} lines\n", outline.language, outline.line_count);
    walk(&outline.items, 0, &mut out);
    for e in &outline.syntax_errors {
        out.push_str(&format!("error {}:{} {}\n", e.line, e.column, e.message));
    }
    out
}

fn outline_of(name: &str) -> Outline {
    let language = Language::from_path(name).unwrap();
    outline_source(language, &fixture(name)).unwrap()
}

#[test]
fn rust_outline() {
    let outline = outline_of("inventory.rs");
    assert!(outline.syntax_errors.is_empty());
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn python_outline() {
    let outline = outline_of("billing.py");
    assert!(outline.syntax_errors.is_empty());
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn javascript_outline() {
    let outline = outline_of("router.js");
    assert!(outline.syntax_errors.is_empty());
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn typescript_outline() {
    let outline = outline_of("store.ts");
    assert!(outline.syntax_errors.is_empty());
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn tsx_outline() {
    let outline = outline_of("TodoList.tsx");
    assert!(outline.syntax_errors.is_empty());
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn go_outline() {
    let outline = outline_of("server.go");
    assert!(outline.syntax_errors.is_empty());
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn outline_serialises_as_json_for_the_tool_layer() {
    let outline = outline_source(
        Language::Rust,
        "struct A;\nimpl A {\n    fn f(&self) {}\n}\n",
    )
    .unwrap();
    insta::assert_json_snapshot!(outline);
}

#[test]
fn methods_nest_inside_their_containers() {
    let outline = outline_of("inventory.rs");
    let inventory_impl = outline
        .items
        .iter()
        .find(|i| i.kind == ItemKind::Impl && i.name.starts_with("Inventory"))
        .unwrap();
    let names: Vec<_> = inventory_impl
        .children
        .iter()
        .map(|c| (c.kind, c.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            (ItemKind::Method, "new"),
            (ItemKind::Method, "on_hand"),
            (ItemKind::Method, "receive"),
            (ItemKind::Method, "ship")
        ]
    );
    let go = outline_of("server.go");
    let cache = go.items.iter().find(|i| i.name == "Cache").unwrap();
    assert_eq!(cache.kind, ItemKind::Struct);
    let methods: Vec<_> = cache.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(methods, vec!["shardFor", "Get", "Set", "Purge"]);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let rust = "fn ok() {}\n\nfn broken( {\n    let x = 1;\n}\n";
    let errors = syntax_errors(Language::Rust, rust).unwrap();
    assert!(!errors.is_empty());
    assert_eq!(errors[0].line, 3, "{errors:?}");

    let python = "def f():\n    return 1\n\nclass C:\n    def g(self)\n        pass\n";
    let errors = syntax_errors(Language::Python, python).unwrap();
    assert_eq!((errors[0].line, errors[0].column), (5, 5), "{errors:?}");
    assert_eq!(errors[0].message, "unexpected \"def g(self)\"");

    let go = "package main\n\nfunc main() {\n\tx := \n}\n";
    let errors = syntax_errors(Language::Go, go).unwrap();
    assert_eq!(errors[0].line, 4, "{errors:?}");

    // Columns count characters, not bytes.
    let js = "const s = 'ééé'; let = ;\n";
    let errors = syntax_errors(Language::JavaScript, js).unwrap();
    assert_eq!(errors[0].line, 1, "{errors:?}");
    assert!(errors[0].column <= 22, "{errors:?}");

    let ts = "interface A {\n  x: number\n\nfunction f(: string) {}\n";
    assert!(!syntax_errors(Language::TypeScript, ts).unwrap().is_empty());
    let tsx = "const a = <div>;\n";
    assert!(!syntax_errors(Language::Tsx, tsx).unwrap().is_empty());
}

#[test]
fn syntax_error_report_is_stable() {
    let source = "def f(:\n    pass\n\nclass C:\n    x = [1, 2\n";
    let outline = outline_source(Language::Python, source).unwrap();
    insta::assert_snapshot!(render(&outline));
}

#[test]
fn clean_files_have_no_errors_in_every_language() {
    for (language, source) in [
        (Language::Rust, "fn main() {}\n"),
        (Language::Python, "def main():\n    pass\n"),
        (Language::JavaScript, "function main() {}\n"),
        (Language::TypeScript, "function main(): void {}\n"),
        (Language::Tsx, "const a = <div />;\n"),
        (Language::Go, "package main\n\nfunc main() {}\n"),
    ] {
        assert_eq!(
            syntax_errors(language, source).unwrap(),
            vec![],
            "{language:?}"
        );
    }
}

#[test]
fn parse_code_reads_through_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(FileSystemSettings::new(dir.path())).unwrap();
    ws.write("src/lib.rs", &fixture("inventory.rs")).unwrap();
    let outline = ws.parse_code("src/lib.rs").unwrap();
    assert_eq!(outline, outline_of("inventory.rs"));
    ws.write("notes.txt", "hello").unwrap();
    assert!(matches!(
        ws.parse_code("notes.txt"),
        Err(FsError::UnsupportedLanguage { .. })
    ));
    assert!(matches!(
        ws.parse_code("../x.rs"),
        Err(FsError::Escape { .. })
    ));
}

#[test]
fn language_detection_by_extension() {
    let cases = [
        ("a.rs", Some(Language::Rust)),
        ("a.pyi", Some(Language::Python)),
        ("a.mjs", Some(Language::JavaScript)),
        ("a.jsx", Some(Language::JavaScript)),
        ("a.cts", Some(Language::TypeScript)),
        ("a.tsx", Some(Language::Tsx)),
        ("a.go", Some(Language::Go)),
        ("Makefile", None),
        ("a.txt", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Language::from_path(path), expected, "{path}");
    }
}
