//! JSON as Go's `json.MarshalIndent(obj, "", "    ")` writes it: keys sorted
//! bytewise, `<`, `>`, `&`, U+2028 and U+2029 escaped.

use serde_json::Value;

pub use api_types::json::sorted;

/// Go's HTML-safe escaping of marshalled JSON text.
pub fn go_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Indented with `indent` (kubectl's printer uses four spaces), with a final newline.
pub fn to_json_indent(value: &Value, indent: &str) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    let text = match serde::Serialize::serialize(&sorted(value), &mut ser) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => value.to_string(),
    };
    let mut out = go_escape(&text);
    out.push('\n');
    out
}

/// kubectl's `-o json`.
pub fn to_json(value: &Value) -> String {
    to_json_indent(value, "    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_four_space_indent_and_html_escaping() {
        let v = json!({"b": 1, "a": {"z": [], "y": {}}, "c": "<x&y>"});
        assert_eq!(
            to_json(&v),
            "{\n    \"a\": {\n        \"y\": {},\n        \"z\": []\n    },\n    \"b\": 1,\n    \"c\": \"\\u003cx\\u0026y\\u003e\"\n}\n"
        );
    }
}
