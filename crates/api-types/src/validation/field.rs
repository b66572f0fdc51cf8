//! Field paths and error constructors in upstream's `field.ErrorList` shape:
//! `spec.containers[0].image`, `metadata.labels`, `data[key]`, and messages
//! `Required value`, `Invalid value: "x": detail`, `Duplicate value: "x"`, ...

use serde_json::Value;

use crate::status::StatusCause;

/// A dotted field path (`spec.containers[0].ports[1].containerPort`), built lazily:
/// each step borrows its parent, and the text is only written for an error. Paths
/// are made for every field validated, error or not; as strings they were a fifth of
/// the allocations of a pod create.
#[derive(Debug, Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// The text the path starts with (may itself be dotted, or empty).
    Root(&'a str),
    /// `.name`, or `name` at the start.
    Field(&'a str),
    /// Several [`Step::Field`]s.
    Fields(&'a [&'a str]),
    /// `[i]`
    Index(usize),
    /// `[key]`
    Key(&'a str),
}

impl<'a> Path<'a> {
    pub fn new(root: &'a str) -> Self {
        Path {
            parent: None,
            step: Step::Root(root),
        }
    }

    fn step<'s>(&'s self, step: Step<'s>) -> Path<'s> {
        Path {
            parent: Some(self),
            step,
        }
    }

    pub fn child<'s>(&'s self, name: &'s str) -> Path<'s> {
        self.step(Step::Field(name))
    }

    /// `a.b.c` in one call.
    pub fn children<'s>(&'s self, names: &'s [&'s str]) -> Path<'s> {
        self.step(Step::Fields(names))
    }

    pub fn index(&self, i: usize) -> Path<'_> {
        self.step(Step::Index(i))
    }

    pub fn key<'s>(&'s self, k: &'s str) -> Path<'s> {
        self.step(Step::Key(k))
    }

    /// Appends the path's text to `out` (which holds the text before it, if any).
    fn write(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write(out);
        }
        let field = |out: &mut String, name: &str| {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
        };
        match self.step {
            Step::Root(root) => out.push_str(root),
            Step::Field(name) => field(out, name),
            Step::Fields(names) => names.iter().for_each(|n| field(out, n)),
            Step::Index(i) => {
                out.push('[');
                out.push_str(itoa::Buffer::new().format(i));
                out.push(']');
            }
            Step::Key(k) => {
                out.push('[');
                out.push_str(k);
                out.push(']');
            }
        }
    }

    /// The path's text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

fn cause(reason: &str, message: String, path: &Path) -> StatusCause {
    StatusCause {
        reason: reason.to_string(),
        message,
        field: path.text(),
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

/// `Required value[: detail]`
pub fn required(path: &Path, detail: &str) -> StatusCause {
    cause(
        "FieldValueRequired",
        with_detail("Required value", detail),
        path,
    )
}

/// `Invalid value: <go repr of value>: detail`
pub fn invalid(path: &Path, value: &Value, detail: &str) -> StatusCause {
    invalid_shown(path, &go_repr(value), detail)
}

/// `Invalid value: <shown>: detail` with a preformatted value.
pub fn invalid_shown(path: &Path, shown: &str, detail: &str) -> StatusCause {
    cause(
        "FieldValueInvalid",
        with_detail(&format!("Invalid value: {shown}"), detail),
        path,
    )
}

pub fn invalid_str(path: &Path, value: &str, detail: &str) -> StatusCause {
    invalid_shown(path, &go_quote(value), detail)
}

pub fn invalid_int(path: &Path, value: i64, detail: &str) -> StatusCause {
    invalid_shown(path, &value.to_string(), detail)
}

pub fn duplicate(path: &Path, value: &Value) -> StatusCause {
    cause(
        "FieldValueDuplicate",
        format!("Duplicate value: {}", go_repr(value)),
        path,
    )
}

pub fn not_found(path: &Path, value: &Value) -> StatusCause {
    cause(
        "FieldValueNotFound",
        format!("Not found: {}", go_repr(value)),
        path,
    )
}

/// `Unsupported value: "x": supported values: "a", "b"`
pub fn not_supported(path: &Path, value: &Value, supported: &[&str]) -> StatusCause {
    let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
    cause(
        "FieldValueNotSupported",
        format!(
            "Unsupported value: {}: supported values: {}",
            go_repr(value),
            list.join(", ")
        ),
        path,
    )
}

pub fn forbidden(path: &Path, detail: &str) -> StatusCause {
    cause(
        "FieldValueForbidden",
        with_detail("Forbidden", detail),
        path,
    )
}

pub fn too_long(path: &Path, max_bytes: usize) -> StatusCause {
    cause(
        "FieldValueTooLong",
        format!("Too long: must have at most {max_bytes} bytes"),
        path,
    )
}

/// Go's `%q` for the strings we print (ASCII escapes match Rust's `{:?}`).
pub fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// How Go's `field.Invalid` prints a bad value: strings quoted, numbers and
/// booleans bare, string maps as `map[string]string{"k":"v"}`, string lists as
/// `[]string{"a", "b"}`; anything else as JSON.
pub fn go_repr(value: &Value) -> String {
    match value {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Object(m) if m.values().all(Value::is_string) => string_map_repr(Some(value)),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let items: Vec<String> = a.iter().filter_map(Value::as_str).map(go_quote).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// `map[string]string{"a":"b", "c":"d"}` (keys sorted, as Go prints maps), or
/// `map[string]string(nil)` when absent.
pub fn string_map_repr(value: Option<&Value>) -> String {
    match value.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        go_quote(k),
                        go_quote(v.as_str().unwrap_or_default())
                    )
                })
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// A `metav1.LabelSelector` as Go's `%#v` prints it.
pub fn label_selector_repr(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return "(*v1.LabelSelector)(nil)".to_string();
    };
    let labels = string_map_repr(sel.get("matchLabels"));
    let exprs =
        match sel.get("matchExpressions").and_then(Value::as_array) {
            None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
            Some(list) => {
                let items: Vec<String> =
                    list.iter()
                        .map(|e| {
                            let values = match e.get("values").and_then(Value::as_array) {
                                None => "[]string(nil)".to_string(),
                                Some(vs) => {
                                    let vs: Vec<String> =
                                        vs.iter().filter_map(Value::as_str).map(go_quote).collect();
                                    format!("[]string{{{}}}", vs.join(", "))
                                }
                            };
                            format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        go_quote(e.get("key").and_then(Value::as_str).unwrap_or_default()),
                        go_quote(e.get("operator").and_then(Value::as_str).unwrap_or_default()),
                    )
                        })
                        .collect();
                format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
            }
        };
    format!("&v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_messages() {
        let spec = Path::new("spec");
        let containers = spec.child("containers");
        let first = containers.index(0);
        let p = first.child("image");
        assert_eq!(p.to_string(), "spec.containers[0].image");
        assert_eq!(required(&p, "").message, "Required value");
        assert_eq!(required(&p, "").field, "spec.containers[0].image");
        assert_eq!(Path::new("data").key("a/b").to_string(), "data[a/b]");
        let c = not_supported(
            &Path::new("spec.restartPolicy"),
            &json!("x"),
            &["Always", "Never"],
        );
        assert_eq!(
            c.message,
            "Unsupported value: \"x\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(c.reason, "FieldValueNotSupported");
        assert_eq!(
            go_repr(&json!({"b": "2", "a": "1"})),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(go_repr(&json!(["10.0.0.1"])), "[]string{\"10.0.0.1\"}");
        assert_eq!(
            label_selector_repr(Some(&json!({"matchLabels": {"app": "x"}}))),
            "&v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }

    #[test]
    fn paths_print_as_upstream_field_paths() {
        let root = Path::new("spec");
        assert_eq!(
            root.child("containers")
                .index(0)
                .child("ports")
                .index(12)
                .child("containerPort")
                .to_string(),
            "spec.containers[0].ports[12].containerPort"
        );
        assert_eq!(
            Path::new("")
                .child("metadata")
                .key("app.kubernetes.io/name")
                .to_string(),
            "metadata[app.kubernetes.io/name]"
        );
        assert_eq!(
            root.index(usize::MAX).to_string(),
            format!("spec[{}]", usize::MAX)
        );
        assert_eq!(
            root.children(&["template", "spec"]).index(10).to_string(),
            "spec.template.spec[10]"
        );
    }
}
