//! Sets of field paths and their `FieldsV1` encoding (upstream structured-merge-diff
//! `fieldpath`): `f:<field>`, `k:<json of the key fields>` for list-map items,
//! `v:<json>` for set items, `i:<index>`, and `.` for "the node itself".

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path. The derived order (fields, keys, values, indexes) is the order
/// upstream serializes them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElement {
    Field(String),
    /// The key fields of a list-map item, as a JSON object string with sorted keys.
    Key(String),
    /// A set item, as JSON.
    Value(String),
    Index(usize),
}

impl PathElement {
    fn encode(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<PathElement> {
        let (prefix, rest) = s.split_at_checked(2)?;
        match prefix {
            "f:" => Some(PathElement::Field(rest.to_string())),
            // Re-serialize so equal keys compare equal however they were spaced.
            "k:" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| PathElement::Key(v.to_string())),
            "v:" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| PathElement::Value(v.to_string())),
            "i:" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

/// A path from the object root, printed as upstream prints conflicts:
/// `.spec.template.spec.containers[name="nginx"].image`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            match e {
                PathElement::Field(name) => write!(f, ".{name}")?,
                PathElement::Key(k) => {
                    let parts: Vec<String> = match key_fields(k) {
                        Some(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                        None => vec![k.clone()],
                    };
                    write!(f, "[{}]", parts.join(","))?
                }
                PathElement::Value(v) => write!(f, "[={v}]")?,
                PathElement::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// The key fields of a [`PathElement::Key`] (its text is their JSON object).
pub(crate) fn key_fields(key: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(key) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A set of paths, stored as a tree. A node is in the set when `member` is true.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// The node at `path`, created if missing.
    pub fn node_mut(&mut self, path: &[PathElement]) -> &mut FieldSet {
        let mut node = self;
        for e in path {
            node = node.children.entry(e.clone()).or_default();
        }
        node
    }

    pub fn node(&self, path: &[PathElement]) -> Option<&FieldSet> {
        let mut node = self;
        for e in path {
            node = node.children.get(e)?;
        }
        Some(node)
    }

    pub fn insert(&mut self, path: &[PathElement]) {
        self.node_mut(path).member = true;
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.node(path).is_some_and(|n| n.member)
    }

    /// Whether `path` or anything below it is in the set.
    pub fn contains_prefix(&self, path: &[PathElement]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    /// Every member path, depth first in serialization order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect(&mut prefix, &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        if self.member {
            out.push(Path(prefix.clone()));
        }
        for (e, child) in &self.children {
            prefix.push(e.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (e, child) in &other.children {
            self.children.entry(e.clone()).or_default().union(child);
        }
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (e, child) in &self.children {
            let d = match other.children.get(e) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(e.clone(), d);
            }
        }
        out
    }

    /// Members of both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (e, child) in &self.children {
            if let Some(o) = other.children.get(e) {
                let i = child.intersection(o);
                if !i.is_empty() {
                    out.children.insert(e.clone(), i);
                }
            }
        }
        out
    }

    /// Drops `path` and everything below it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        let Some((last, parent)) = path.split_last() else {
            *self = FieldSet::default();
            return;
        };
        if let Some(node) = self.node_mut_existing(parent) {
            node.children.remove(last);
        }
    }

    fn node_mut_existing(&mut self, path: &[PathElement]) -> Option<&mut FieldSet> {
        let mut node = self;
        for e in path {
            node = node.children.get_mut(e)?;
        }
        Some(node)
    }

    /// Decodes a `fieldsV1` object; `None` when it is malformed.
    pub fn from_fields_v1(v: &Value) -> Option<FieldSet> {
        let Value::Object(m) = v else { return None };
        let mut set = FieldSet {
            member: m.is_empty(),
            children: BTreeMap::new(),
        };
        for (k, child) in m {
            if k == "." {
                set.member = true;
                continue;
            }
            let e = PathElement::decode(k)?;
            set.children.insert(e, FieldSet::from_fields_v1(child)?);
        }
        Some(set)
    }

    /// Encodes as `fieldsV1` (the root's own membership is not encoded).
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode_children())
    }

    fn encode_children(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (e, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            m.insert(e.encode(), child.encode_node());
        }
        m
    }

    fn encode_node(&self) -> Value {
        let children = self.encode_children();
        if children.is_empty() {
            return Value::Object(Map::new());
        }
        let mut m = Map::new();
        if self.member {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        m.extend(children);
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trips() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}
        });
        let set = FieldSet::from_fields_v1(&v).expect("decodes");
        assert!(set.contains(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into())
        ]));
        assert!(!set.contains(&[PathElement::Field("metadata".into())]));
        assert_eq!(set.to_fields_v1(), v);
    }

    #[test]
    fn paths_print_as_upstream() {
        let p = Path(vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(json!({"name": "nginx"}).to_string()),
            PathElement::Field("image".into()),
        ]);
        assert_eq!(p.to_string(), ".spec.containers[name=\"nginx\"].image");
        let v = Path(vec![
            PathElement::Field("finalizers".into()),
            PathElement::Value("\"a\"".into()),
        ]);
        assert_eq!(v.to_string(), ".finalizers[=\"a\"]");
    }

    #[test]
    fn set_algebra() {
        let a = FieldSet::from_fields_v1(&json!({"f:a": {}, "f:b": {"f:c": {}}})).expect("a");
        let b = FieldSet::from_fields_v1(&json!({"f:b": {"f:c": {}}, "f:d": {}})).expect("b");
        assert_eq!(a.difference(&b).to_fields_v1(), json!({"f:a": {}}));
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:b": {"f:c": {}}})
        );
        let mut u = a.clone();
        u.union(&b);
        assert_eq!(u.paths().len(), 3);
    }
}
