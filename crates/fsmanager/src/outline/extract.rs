//! Per-language extraction of declarations from a tree-sitter tree.
//!
//! Only declaration containers are entered (modules, impls, traits, classes,
//! interfaces, namespaces); function bodies are not, so local helpers stay out of the
//! outline.

use tree_sitter::Node;

use super::{ItemKind, Language, OutlineItem};

pub(super) fn items(language: Language, root: Node<'_>, src: &[u8]) -> Vec<OutlineItem> {
    let mut out = Vec::new();
    match language {
        Language::Rust => rust(root, src, false, &mut out),
        Language::Python => python(root, src, false, &mut out),
        Language::JavaScript | Language::TypeScript | Language::Tsx => js(root, src, &mut out),
        Language::Go => go(root, src, &mut out),
    }
    out
}

fn text<'a>(node: Option<Node<'_>>, src: &'a [u8]) -> &'a str {
    node.and_then(|n| n.utf8_text(src).ok()).unwrap_or("?")
}

fn field_text<'a>(node: Node<'_>, field: &str, src: &'a [u8]) -> &'a str {
    text(node.child_by_field_name(field), src)
}

/// An item spanning `span`, named by its `name` field.
fn item(
    kind: ItemKind,
    span: Node<'_>,
    name: impl Into<String>,
    children: Vec<OutlineItem>,
) -> OutlineItem {
    let start = span.start_position();
    let end = span.end_position();
    // A node that ends at column 0 ends on the previous line's newline.
    let end_line = if end.column == 0 && end.row > start.row {
        end.row
    } else {
        end.row + 1
    };
    OutlineItem {
        kind,
        name: name.into(),
        start_line: start.row + 1,
        end_line,
        children,
    }
}

fn named_children<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

fn rust(node: Node<'_>, src: &[u8], in_container: bool, out: &mut Vec<OutlineItem>) {
    for child in named_children(node) {
        let name = || field_text(child, "name", src);
        let body_items = |in_container| {
            let mut nested = Vec::new();
            if let Some(body) = child.child_by_field_name("body") {
                rust(body, src, in_container, &mut nested);
            }
            nested
        };
        let found = match child.kind() {
            "function_item" | "function_signature_item" => {
                let kind = if in_container {
                    ItemKind::Method
                } else {
                    ItemKind::Function
                };
                item(kind, child, name(), Vec::new())
            }
            "struct_item" | "union_item" => item(ItemKind::Struct, child, name(), Vec::new()),
            "enum_item" => item(ItemKind::Enum, child, name(), Vec::new()),
            "type_item" => item(ItemKind::Type, child, name(), Vec::new()),
            "trait_item" => item(ItemKind::Trait, child, name(), body_items(true)),
            "mod_item" => item(ItemKind::Module, child, name(), body_items(false)),
            "impl_item" => {
                let ty = field_text(child, "type", src);
                let label = match child.child_by_field_name("trait") {
                    Some(trait_node) => format!("{} for {ty}", text(Some(trait_node), src)),
                    None => ty.to_owned(),
                };
                item(ItemKind::Impl, child, label, body_items(true))
            }
            _ => continue,
        };
        out.push(found);
    }
}

fn python(node: Node<'_>, src: &[u8], in_class: bool, out: &mut Vec<OutlineItem>) {
    for child in named_children(node) {
        // Decorators belong to the item: the span is the decorated node.
        let (span, def) = if child.kind() == "decorated_definition" {
            match child.child_by_field_name("definition") {
                Some(def) => (child, def),
                None => continue,
            }
        } else {
            (child, child)
        };
        let name = field_text(def, "name", src);
        let found = match def.kind() {
            "function_definition" => {
                let kind = if in_class {
                    ItemKind::Method
                } else {
                    ItemKind::Function
                };
                item(kind, span, name, Vec::new())
            }
            "class_definition" => {
                let mut members = Vec::new();
                if let Some(body) = def.child_by_field_name("body") {
                    python(body, src, true, &mut members);
                }
                item(ItemKind::Class, span, name, members)
            }
            _ => continue,
        };
        out.push(found);
    }
}

fn js(node: Node<'_>, src: &[u8], out: &mut Vec<OutlineItem>) {
    for child in named_children(node) {
        js_statement(child, child, src, out);
    }
}

/// One statement; `span` is the node whose lines are reported (an enclosing `export`).
fn js_statement(span: Node<'_>, node: Node<'_>, src: &[u8], out: &mut Vec<OutlineItem>) {
    let name = || field_text(node, "name", src);
    match node.kind() {
        "export_statement" => match node.child_by_field_name("declaration") {
            Some(declaration) => js_statement(span, declaration, src, out),
            None => {
                for inner in named_children(node) {
                    js_statement(span, inner, src, out);
                }
            }
        },
        "ambient_declaration" | "expression_statement" => {
            for inner in named_children(node) {
                js_statement(span, inner, src, out);
            }
        }
        "function_declaration" | "generator_function_declaration" | "function_signature" => {
            out.push(item(ItemKind::Function, span, name(), Vec::new()));
        }
        "class_declaration" | "abstract_class_declaration" | "class" => {
            let label = node
                .child_by_field_name("name")
                .map_or("default", |n| text(Some(n), src));
            out.push(item(ItemKind::Class, span, label, js_members(node, src)));
        }
        "interface_declaration" => out.push(item(
            ItemKind::Interface,
            span,
            name(),
            js_members(node, src),
        )),
        "enum_declaration" => out.push(item(ItemKind::Enum, span, name(), Vec::new())),
        "type_alias_declaration" => out.push(item(ItemKind::Type, span, name(), Vec::new())),
        "internal_module" | "module" => {
            let mut nested = Vec::new();
            if let Some(body) = node.child_by_field_name("body") {
                js(body, src, &mut nested);
            }
            out.push(item(ItemKind::Module, span, name(), nested));
        }
        "lexical_declaration" | "variable_declaration" => {
            for declarator in named_children(node) {
                let Some(value) = declarator.child_by_field_name("value") else {
                    continue;
                };
                let label = field_text(declarator, "name", src);
                match value.kind() {
                    "arrow_function"
                    | "function_expression"
                    | "function"
                    | "generator_function" => {
                        out.push(item(ItemKind::Function, span, label, Vec::new()));
                    }
                    "class" => out.push(item(ItemKind::Class, span, label, js_members(value, src))),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Methods of a class or interface body (fields holding functions count as methods).
fn js_members(node: Node<'_>, src: &[u8]) -> Vec<OutlineItem> {
    let Some(body) = node.child_by_field_name("body") else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for member in named_children(body) {
        match member.kind() {
            "method_definition" | "method_signature" | "abstract_method_signature" => {
                members.push(item(
                    ItemKind::Method,
                    member,
                    field_text(member, "name", src),
                    Vec::new(),
                ));
            }
            "public_field_definition" | "field_definition" => {
                let holds_function = member.child_by_field_name("value").is_some_and(|v| {
                    matches!(
                        v.kind(),
                        "arrow_function" | "function_expression" | "function"
                    )
                });
                if holds_function {
                    let label = member
                        .child_by_field_name("name")
                        .or_else(|| member.child_by_field_name("property"));
                    members.push(item(ItemKind::Method, member, text(label, src), Vec::new()));
                }
            }
            _ => {}
        }
    }
    members
}

/// The receiver's type name of a Go method: `(s *Server[T])` gives `Server`.
fn go_receiver(method: Node<'_>, src: &[u8]) -> Option<String> {
    let receiver = method.child_by_field_name("receiver")?;
    let parameter = named_children(receiver).into_iter().next()?;
    let ty = parameter.child_by_field_name("type")?.utf8_text(src).ok()?;
    let ty = ty.trim_start_matches('*');
    Some(ty.split('[').next().unwrap_or(ty).trim().to_owned())
}

fn go(root: Node<'_>, src: &[u8], out: &mut Vec<OutlineItem>) {
    let mut methods: Vec<(Option<String>, OutlineItem)> = Vec::new();
    for child in named_children(root) {
        match child.kind() {
            "function_declaration" => out.push(item(
                ItemKind::Function,
                child,
                field_text(child, "name", src),
                Vec::new(),
            )),
            "method_declaration" => {
                let method = item(
                    ItemKind::Method,
                    child,
                    field_text(child, "name", src),
                    Vec::new(),
                );
                methods.push((go_receiver(child, src), method));
            }
            "type_declaration" => {
                for spec in named_children(child) {
                    if !matches!(spec.kind(), "type_spec" | "type_alias") {
                        continue;
                    }
                    // A lone spec spans the whole `type` declaration (with its doc span).
                    let span = if child.named_child_count() == 1 {
                        child
                    } else {
                        spec
                    };
                    let name = field_text(spec, "name", src);
                    let ty = spec.child_by_field_name("type");
                    let found = match ty.map(|t| t.kind()) {
                        Some("struct_type") => item(ItemKind::Struct, span, name, Vec::new()),
                        Some("interface_type") => {
                            let members = ty
                                .map(named_children)
                                .unwrap_or_default()
                                .into_iter()
                                .filter(|m| m.kind() == "method_elem")
                                .map(|m| {
                                    item(
                                        ItemKind::Method,
                                        m,
                                        field_text(m, "name", src),
                                        Vec::new(),
                                    )
                                })
                                .collect();
                            item(ItemKind::Interface, span, name, members)
                        }
                        _ => item(ItemKind::Type, span, name, Vec::new()),
                    };
                    out.push(found);
                }
            }
            _ => {}
        }
    }
    // Methods nest under their receiver type when it is declared in this file.
    for (receiver, mut method) in methods {
        let owner = receiver.as_deref().and_then(|r| {
            out.iter_mut()
                .find(|i| i.name == r && i.kind != ItemKind::Function)
        });
        match owner {
            Some(owner) => owner.children.push(method),
            None => {
                if let Some(receiver) = receiver {
                    method.name = format!("{receiver}.{}", method.name);
                }
                out.push(method);
            }
        }
    }
    out.sort_by_key(|i| i.start_line);
}
