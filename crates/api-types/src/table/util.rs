//! Helpers shared by the printers: tolerant accessors on JSON objects (absent or
//! mistyped fields read as empty, the way Go's zero values do), upstream's label and
//! selector formatting, quantity strings, container layout and column descriptions
//! taken from the API schema (upstream uses `SwaggerDoc()`, the same text).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::quantity::ParsedQuantity;

/// The value at `path`, if every step exists.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// The string at `path`, `""` when absent (Go's zero value).
pub(crate) fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The string at `path`, `None` when absent (a Go `*string`).
pub(crate) fn opt_s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// The integer at `path`, 0 when absent.
pub(crate) fn i(v: &Value, path: &[&str]) -> i64 {
    opt_i(v, path).unwrap_or(0)
}

/// The integer at `path`, `None` when absent (a Go `*int32`).
pub(crate) fn opt_i(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(Value::as_i64)
}

/// The boolean at `path`, `None` when absent.
pub(crate) fn opt_b(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

/// The array at `path`, empty when absent.
pub(crate) fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, `None` when absent.
pub(crate) fn obj<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// Number of entries of the map at `path` (0 when absent).
pub(crate) fn map_len(v: &Value, path: &[&str]) -> usize {
    obj(v, path).map_or(0, Map::len)
}

pub(crate) fn name(v: &Value) -> &str {
    s(v, &["metadata", "name"])
}

pub(crate) fn has_deletion_timestamp(v: &Value) -> bool {
    opt_s(v, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_empty())
}

/// Parses an RFC 3339 `Time`/`MicroTime`; `None` for absent, empty or malformed.
pub(crate) fn parse_time(ts: Option<&str>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The `Age` cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(v: &Value, now: DateTime<Utc>) -> Value {
    Value::from(super::translate_timestamp_since(
        opt_s(v, &["metadata", "creationTimestamp"]),
        now,
    ))
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by `,`, `<none>` when empty.
pub(crate) fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&String, &str)> = map
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`; `Err` where upstream's
/// conversion fails (unknown operator, wrong number of values).
pub(crate) fn label_selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        // A nil selector selects nothing; its string form is empty.
        return Ok(String::new());
    };
    // (key, rendered requirement); upstream sorts requirements by key.
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(ml) = obj(sel, &["matchLabels"]) {
        for (k, v) in ml {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in arr(sel, &["matchExpressions"]) {
        let key = s(expr, &["key"]);
        let values: BTreeSet<&str> = arr(expr, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let joined = values.iter().copied().collect::<Vec<_>>().join(",");
        let rendered = match s(expr, &["operator"]) {
            "In" if !values.is_empty() => format!("{key} in ({joined})"),
            "NotIn" if !values.is_empty() => format!("{key} notin ({joined})"),
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: `<none>` when empty, `<error>` when invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// `Quantity.String()` of the quantity at `path`; a missing quantity is the zero
/// value `0`, an unparsable one is printed as stored.
pub(crate) fn quantity(v: &Value, path: &[&str]) -> String {
    match at(v, path) {
        None | Some(Value::Null) => "0".to_string(),
        Some(q) => quantity_string(q),
    }
}

/// `Quantity.String()` of a JSON quantity (string or number).
pub(crate) fn quantity_string(q: &Value) -> String {
    let raw = match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    ParsedQuantity::parse(&raw)
        .map(|p| p.canonical())
        .unwrap_or(raw)
}

/// `IntOrString.String()`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `layoutContainerCells`: container names and images, each joined by `,`.
pub(crate) fn container_cells(pod_spec: Option<&Value>) -> (Value, Value) {
    let containers = pod_spec.map_or(&[][..], |spec| arr(spec, &["containers"]));
    let names: Vec<&str> = containers.iter().map(|c| s(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, &["image"])).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// `printBoolPtr`: `True`/`False`, `<unset>` when absent.
pub(crate) fn bool_ptr(v: Option<bool>) -> String {
    match v {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

/// `net.JoinHostPort`: brackets IPv6 literals.
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `list + " + N more..."` as upstream's `listWithMoreString` (`<unset>` when empty).
pub(crate) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(max));
    }
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

/// The description of `field` in `T`'s API schema (upstream: `T{}.SwaggerDoc()[field]`).
pub(crate) fn doc<T: schemars::JsonSchema>(field: &str) -> String {
    let mut generator = schemars::SchemaGenerator::default();
    let schema = T::json_schema(&mut generator);
    schema
        .get("properties")
        .and_then(|p| p.get(field))
        .and_then(|f| f.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_sorted_and_none_when_empty() {
        let v = json!({"b": "2", "a": "1"});
        assert_eq!(format_labels(v.as_object()), "a=1,b=2");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(json!({}).as_object()), "<none>");
    }

    #[test]
    fn selectors_format_like_upstream() {
        let sel = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "x", "operator": "Exists"},
                {"key": "y", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            format_label_selector(Some(&sel)),
            "app=web,env notin (prod),tier in (a,b),x,!y"
        );
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
    }

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(quantity(&json!({"q": "1024Mi"}), &["q"]), "1Gi");
        assert_eq!(quantity(&json!({}), &["q"]), "0");
        assert_eq!(quantity(&json!({"q": "garbage"}), &["q"]), "garbage");
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }

    #[test]
    fn docs_come_from_the_schema() {
        let d = doc::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>("name");
        assert!(
            d.starts_with("Name must be unique within a namespace."),
            "{d}"
        );
        assert_eq!(
            doc::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>("nope"),
            ""
        );
    }
}
