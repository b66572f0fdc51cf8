//! Field selectors (`metadata.name=x,status.phase!=Running`) and the fields each
//! resource lets clients select on.

use std::fmt;

use serde_json::Value;

use super::SelectorError;
use crate::registry::ResourceInfo;
use crate::status::ApiError;

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub equals: bool,
    pub value: String,
}

/// A field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Splits on `sep` outside backslash escapes.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

fn find_unescaped(s: &str, op: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if s[i..].starts_with(op) {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => {
                    return Err(SelectorError::FieldEscape(format!(
                        "invalid escape sequence in {s:?}"
                    )))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Fields every resource supports.
const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Per-kind selectable fields for kinds upstream registers a conversion function for.
fn supported_fields(info: &ResourceInfo) -> Option<&'static [&'static str]> {
    Some(match (info.group, info.kind) {
        ("", "Pod") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
            "spec.host",
        ],
        ("", "Node") => &["metadata.name", "spec.unschedulable"],
        ("", "ReplicationController") | ("apps", "ReplicaSet") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("", "Event") | ("events.k8s.io", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        ("", "Namespace") => &["status.phase", "metadata.name"],
        ("", "Secret") => &["type", "metadata.namespace", "metadata.name"],
        ("", "Service") => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        ("batch", "Job") => &["metadata.name", "metadata.namespace", "status.successful"],
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            &["metadata.name", "spec.signerName"]
        }
        _ => return None,
    })
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        for term in split_unescaped(s, ',') {
            let parsed = [("!=", false), ("==", true), ("=", true)]
                .iter()
                .find_map(|(op, equals)| find_unescaped(term, op).map(|i| (i, op.len(), *equals)));
            let Some((i, len, equals)) = parsed else {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: term.to_string(),
                });
            };
            let field = term[..i].trim();
            if field.is_empty() {
                return Err(SelectorError::FieldTerm {
                    selector: s.to_string(),
                    term: term.to_string(),
                });
            }
            requirements.push(FieldRequirement {
                field: unescape(field)?,
                equals,
                value: unescape(&term[i + len..])?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// 400 BadRequest when a field is not selectable for this resource, with upstream's message.
    // The apiserver hands this error straight back to the client, so it is the full ApiError.
    #[allow(clippy::result_large_err)]
    pub fn check_supported(&self, info: &ResourceInfo) -> Result<(), ApiError> {
        for r in &self.requirements {
            match supported_fields(info) {
                Some(fields) => {
                    if !fields.contains(&r.field.as_str()) {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {}",
                            r.field
                        )));
                    }
                }
                None => {
                    if !META_FIELDS.contains(&r.field.as_str()) {
                        return Err(ApiError::bad_request(format!(
                            "{:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                            r.field
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements
            .iter()
            .all(|r| (field_value(obj, &r.field) == r.value) == r.equals)
    }

    /// `Some(name)` when the selector is exactly `metadata.name=<name>`.
    pub fn single_name(&self) -> Option<&str> {
        match self.requirements.as_slice() {
            [r] if r.field == "metadata.name" && r.equals => Some(&r.value),
            _ => None,
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escape = |s: &str| {
            s.replace('\\', "\\\\")
                .replace(',', "\\,")
                .replace('=', "\\=")
        };
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                format!(
                    "{}{}{}",
                    escape(&r.field),
                    if r.equals { "=" } else { "!=" },
                    escape(&r.value)
                )
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Where a selectable field lives in the object (two are aliases).
fn stored_path(field: &str) -> &str {
    match field {
        "spec.host" => "spec.nodeName",
        "source" => "source.component",
        other => other,
    }
}

/// The part of `obj` that label and field selectors read, in the same places:
/// `metadata.name`, `metadata.namespace`, `metadata.labels` and every field `info`
/// lets clients select on, plus the dotted paths in `also`. Selectors match this
/// subset exactly as they match `obj`. The parts are moved out of `obj`, not copied.
pub fn selectable_subset(info: &ResourceInfo, mut obj: Value, also: &[&str]) -> Value {
    use crate::meta::{field, field_mut, map_field_mut};
    fn insert(out: &mut serde_json::Map<String, Value>, path: &[&str], found: Value) {
        match path {
            [] => {}
            [last] => {
                out.insert((*last).to_string(), found);
            }
            [first, rest @ ..] => {
                // Looked up by a scan first: these maps hold a handful of keys.
                if map_field_mut(out, first).is_none() {
                    out.insert((*first).to_string(), Value::Object(serde_json::Map::new()));
                }
                if let Some(Value::Object(m)) = map_field_mut(out, first) {
                    insert(m, rest, found);
                }
            }
        }
    }
    let mut out = Value::Object(serde_json::Map::new());
    let own = supported_fields(info).unwrap_or(&[]);
    let meta = ["metadata.name", "metadata.namespace", "metadata.labels"];
    for field_name in meta.iter().chain(own).chain(also) {
        // Selectable paths are a few segments deep: no allocation per field.
        let stored = stored_path(field_name);
        let mut segments = [""; 8];
        let mut depth = 0;
        let mut split = stored.split('.');
        for (slot, seg) in segments.iter_mut().zip(&mut split) {
            *slot = seg;
            depth += 1;
        }
        let deeper: Vec<&str>;
        let path = match split.next() {
            None => &segments[..depth],
            Some(_) => {
                deeper = stored.split('.').collect();
                &deeper[..]
            }
        };
        // An alias names a path already moved over.
        if path.iter().try_fold(&out, |v, seg| field(v, seg)).is_some() {
            continue;
        }
        let found = path.iter().try_fold(&mut obj, |v, seg| field_mut(v, seg));
        if let (Some(found), Value::Object(out)) = (found, &mut out) {
            insert(out, path, std::mem::take(found));
        }
    }
    out
}

/// The string a field selector compares against: the value at the dotted path, with
/// upstream's Go zero values for absent booleans and counters.
fn field_value(obj: &Value, field: &str) -> String {
    let path = stored_path(field);
    let mut cur = Some(obj);
    for seg in path.split('.') {
        cur = cur.and_then(|v| v.get(seg));
    }
    match cur {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) if path == "status.podIPs" => a
            .iter()
            .filter_map(|ip| ip.get("ip").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(","),
        _ => match path {
            "spec.hostNetwork" | "spec.unschedulable" => "false".to_string(),
            "status.replicas" | "status.successful" => "0".to_string(),
            _ => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup_kind;
    use serde_json::json;

    #[test]
    fn selectors_match_the_selectable_subset_as_the_whole_object() {
        let pods = lookup_kind("v1", "Pod").expect("pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "d", "uid": "u1", "labels": {"app": "a"}, "annotations": {"x": "y"}},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}], "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}});
        let subset = selectable_subset(pods, pod.clone(), &["metadata.uid"]);
        assert!(
            subset
                .get("spec")
                .and_then(|s| s.get("containers"))
                .is_none(),
            "{subset}"
        );
        assert!(subset["metadata"].get("annotations").is_none());
        assert_eq!(subset["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(subset["metadata"]["uid"], "u1");
        let events = lookup_kind("v1", "Event").expect("events");
        let event = json!({"metadata": {"name": "e", "namespace": "d"}, "involvedObject": {"kind": "Pod", "name": "web", "uid": "u"},
            "reason": "Started", "source": {"component": "kubelet", "host": "n1"}, "type": "Normal", "message": "long"});
        let event_subset = selectable_subset(events, event.clone(), &[]);
        assert!(event_subset.get("message").is_none());
        for (info, obj, subset) in [(pods, &pod, &subset), (events, &event, &event_subset)] {
            for field in supported_fields(info).expect("fields") {
                for value in [
                    "",
                    "web",
                    "n1",
                    "Running",
                    "true",
                    "false",
                    "10.0.0.1\\,fd00::1",
                    "kubelet",
                    "Pod",
                    "u",
                    "Started",
                    "Normal",
                    "d",
                ] {
                    for op in ["=", "!="] {
                        let s =
                            FieldSelector::parse(&format!("{field}{op}{value}")).expect("parses");
                        assert_eq!(s.matches(obj), s.matches(subset), "{field}{op}{value}");
                    }
                }
            }
        }
    }

    #[test]
    fn field_selectors_parse_and_match() {
        let s =
            FieldSelector::parse("metadata.name=web,status.phase!=Running,spec.hostNetwork==false")
                .expect("parses");
        let pod = json!({"metadata": {"name": "web"}, "status": {"phase": "Pending"}, "spec": {}});
        assert!(s.matches(&pod));
        let running = json!({"metadata": {"name": "web"}, "status": {"phase": "Running"}});
        assert!(!s.matches(&running));
        assert_eq!(s.single_name(), None);
        let one = FieldSelector::parse("metadata.name=abc").expect("parses");
        assert_eq!(one.single_name(), Some("abc"));
        assert!(FieldSelector::parse("metadata.name").is_err());
        let escaped = FieldSelector::parse(r"metadata.name=a\,b").expect("parses");
        assert_eq!(escaped.requirements()[0].value, "a,b");
        assert_eq!(escaped.to_string(), r"metadata.name=a\,b");
        let missing = FieldSelector::parse("spec.nodeName=").expect("parses");
        assert!(missing.matches(&json!({"spec": {}})));
    }

    #[test]
    fn field_support_per_resource() {
        let pods = lookup_kind("v1", "Pod").expect("pods registered");
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase=Running").expect("parses");
        assert!(s.check_supported(pods).is_ok());
        let bad = FieldSelector::parse("spec.foo=x").expect("parses");
        let err = bad.check_supported(pods).expect_err("unsupported");
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.foo");
        let cms = lookup_kind("v1", "ConfigMap").expect("configmaps registered");
        assert!(FieldSelector::parse("metadata.namespace=x")
            .expect("parses")
            .check_supported(cms)
            .is_ok());
        let err = bad.check_supported(cms).expect_err("unsupported");
        assert_eq!(err.message, "\"spec.foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"");
        let events = lookup_kind("v1", "Event").expect("events registered");
        let s = FieldSelector::parse("involvedObject.name=web,source=kubelet").expect("parses");
        assert!(s.check_supported(events).is_ok());
        assert!(s.matches(
            &json!({"involvedObject": {"name": "web"}, "source": {"component": "kubelet"}})
        ));
        let nodes = lookup_kind("v1", "Node").expect("nodes registered");
        let s = FieldSelector::parse("spec.unschedulable=false").expect("parses");
        assert!(s.check_supported(nodes).is_ok());
        assert!(s.matches(&json!({"spec": {}})));
    }
}
