//! Upstream's `genericDescriber`: for kinds without a describer of their own,
//! every field of the object as an indented `Label:\tvalue` dump.

use serde_json::{Map, Value};

use super::events;
use super::template::object_header;
use super::writer::{PrefixWriter, LEVEL_0};

/// Fields the generic describer leaves out (printed above or noise).
const SKIP: &[&str] = &[
    ".metadata.managedFields",
    ".metadata.name",
    ".metadata.namespace",
    ".metadata.labels",
    ".metadata.annotations",
];

pub fn describe(obj: &Value, events: Option<&Vec<Value>>) -> String {
    let mut w = PrefixWriter::new();
    object_header(&mut w, obj);
    if let Some(content) = obj.as_object() {
        print_content(&mut w, LEVEL_0, content, "");
    }
    events::describe(events, &mut w);
    w.aligned()
}

/// Go's `%v` of a decoded JSON value.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_value(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// `printUnstructuredContent`.
fn print_content(w: &mut PrefixWriter, level: usize, content: &Map<String, Value>, prefix: &str) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for name in fields {
        let value = &content[name.as_str()];
        let path = format!("{prefix}.{name}");
        if SKIP.contains(&path.as_str()) {
            continue;
        }
        match value {
            Value::Object(m) => {
                w.write(level, &format!("{}:\n", smart_label(name)));
                print_content(w, level + 1, m, &path);
            }
            Value::Array(items) => {
                w.write(level, &format!("{}:\n", smart_label(name)));
                for child in items {
                    match child {
                        Value::Object(m) => print_content(w, level + 1, m, &path),
                        other => w.write(level + 1, &format!("{}\n", go_value(other))),
                    }
                }
            }
            other => w.write(
                level,
                &format!("{}:\t{}\n", smart_label(name), go_value(other)),
            ),
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Lower,
    Upper,
    Digit,
    Other,
}

fn class(c: char) -> Class {
    if c.is_lowercase() {
        Class::Lower
    } else if c.is_uppercase() {
        Class::Upper
    } else if c.is_numeric() {
        Class::Digit
    } else {
        Class::Other
    }
}

/// `github.com/fatih/camelcase.Split`.
fn camel_split(text: &str) -> Vec<String> {
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last: Option<Class> = None;
    for c in text.chars() {
        let cl = class(c);
        match runs.last_mut() {
            Some(run) if last == Some(cl) => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = Some(cl);
    }
    // "PDFLoader" -> "PDF" "Loader": an upper run's last letter starts the
    // lower run after it
    for i in 0..runs.len().saturating_sub(1) {
        let upper = runs[i].first().is_some_and(|c| c.is_uppercase());
        let lower = runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if upper && lower {
            if let Some(c) = runs[i].pop() {
                runs[i + 1].insert(0, c);
            }
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

/// `smartLabelFor`: `apiVersion` -> `API Version`.
fn smart_label(name: &str) -> String {
    if name.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return name.to_string();
    }
    const ACRONYMS: &[&str] = &["API", "URL", "UID", "OSB", "GUID"];
    camel_split(name)
        .into_iter()
        .filter(|p| p != "_")
        .map(|p| {
            let upper = p.to_uppercase();
            if ACRONYMS.contains(&upper.as_str()) {
                upper
            } else {
                let mut chars = p.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => p,
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_field_names() {
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("holderIdentity"), "Holder Identity");
        assert_eq!(smart_label("a.b/c"), "a.b/c");
        assert_eq!(smart_label("PDFLoader"), "PDF Loader");
    }

    #[test]
    fn nested_dump() {
        let obj = serde_json::json!({
            "apiVersion": "v1", "kind": "Thing",
            "metadata": {"name": "x", "namespace": "ns", "uid": "u"},
            "spec": {"items": [{"a": 1}, "b"], "flag": true}
        });
        let text = describe(&obj, None);
        assert!(text.contains("API Version:  v1\n"), "{text}");
        assert!(
            text.contains("Spec:\n  Flag:  true\n  Items:\n    A:  1\n    b\n"),
            "{text}"
        );
    }
}
