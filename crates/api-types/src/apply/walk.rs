//! Typed walks over objects for server-side apply: the field set of a value, the
//! structural merge of an applied configuration into the live object, the comparison
//! of two objects, and removing one path.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, PathElement};
use crate::patch::schema::{field, is_struct, key_default, FieldMeta, ListType, Shape};

/// How a value of some shape is owned: as one unit, or field by field.
pub(super) fn granular(shape: &Shape) -> bool {
    match shape {
        Shape::Struct(_) => is_struct(shape),
        Shape::Map(_) | Shape::Unknown => true,
        Shape::Leaf | Shape::List(_) => false,
    }
}

/// The `k:` element of a list-map item; `None` when a key field is missing.
pub(crate) fn item_key(item: &Value, keys: &[&str]) -> Option<PathElement> {
    let Value::Object(m) = item else { return None };
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let mut out = Map::new();
    for k in sorted {
        let v = m.get(k).cloned().or_else(|| key_default(k))?;
        out.insert(k.to_string(), v);
    }
    Some(PathElement::Key(Value::Object(out).to_string()))
}

/// Every path set in `value` (an object of shape `shape`), as an applier owns them:
/// leaves, atomic values, list-map items and set items.
pub(crate) fn field_set(value: &Value, shape: &'static Shape) -> FieldSet {
    let mut set = FieldSet::default();
    if let Value::Object(m) = value {
        object_fields(m, shape, &mut set);
    }
    set
}

fn object_fields(m: &Map<String, Value>, shape: &'static Shape, node: &mut FieldSet) {
    for (k, v) in m {
        let meta = field(shape, k);
        let child = node
            .children
            .entry(PathElement::Field(k.clone()))
            .or_default();
        value_fields(v, meta, child);
    }
}

fn value_fields(v: &Value, meta: FieldMeta, node: &mut FieldSet) {
    match v {
        Value::Object(m) if granular(meta.shape) && !m.is_empty() => {
            object_fields(m, meta.shape, node)
        }
        Value::Array(items) if !items.is_empty() => match meta.list_type() {
            ListType::Set => {
                for item in items {
                    node.node_mut(&[PathElement::Value(item.to_string())])
                        .member = true;
                }
            }
            ListType::Map(keys) if items.iter().all(|i| item_key(i, keys).is_some()) => {
                for item in items {
                    let Some(key) = item_key(item, keys) else {
                        continue;
                    };
                    let child = node.node_mut(&[key]);
                    child.member = true;
                    if let Value::Object(m) = item {
                        object_fields(m, meta.elem(), child);
                    }
                }
            }
            _ => node.member = true,
        },
        _ => node.member = true,
    }
}

/// Merges an applied configuration into the live value (upstream `TypedValue.Merge`):
/// granular maps merge by field, list-maps by key, sets by value; everything else
/// takes the applied value. `null` in the applied value removes the field.
pub(crate) fn merge(live: Option<Value>, applied: &Value, meta: FieldMeta) -> Value {
    match (live, applied) {
        (Some(Value::Object(mut live)), Value::Object(applied)) if granular(meta.shape) => {
            for (k, v) in applied {
                let child = field(meta.shape, k);
                if v.is_null() {
                    live.shift_remove(k);
                    continue;
                }
                let current = live.get_mut(k).map(std::mem::take);
                let merged = merge(current, v, child);
                live.insert(k.clone(), merged);
            }
            Value::Object(live)
        }
        (Some(Value::Array(mut live)), Value::Array(applied)) => match meta.list_type() {
            ListType::Set => {
                for item in applied {
                    if !live.contains(item) {
                        live.push(item.clone());
                    }
                }
                Value::Array(live)
            }
            ListType::Map(keys) => {
                for item in applied {
                    let Some(key) = item_key(item, keys) else {
                        return Value::Array(applied.clone());
                    };
                    match live
                        .iter()
                        .position(|l| item_key(l, keys).as_ref() == Some(&key))
                    {
                        Some(i) => {
                            let current = std::mem::take(&mut live[i]);
                            live[i] = merge(Some(current), item, elem_meta(meta));
                        }
                        None => live.push(merge(None, item, elem_meta(meta))),
                    }
                }
                Value::Array(live)
            }
            ListType::Atomic => Value::Array(applied.clone()),
        },
        (_, Value::Object(applied)) if granular(meta.shape) => merge(
            Some(Value::Object(Map::new())),
            &Value::Object(applied.clone()),
            meta,
        ),
        (_, applied) => strip_nulls(applied.clone()),
    }
}

pub(super) fn elem_meta(meta: FieldMeta) -> FieldMeta {
    FieldMeta {
        shape: meta.elem(),
        tag: None,
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// What changed from `old` to `new` (upstream `TypedValue.Compare`).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub modified: FieldSet,
    pub added: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub fn changed(&self) -> FieldSet {
        let mut s = self.modified.clone();
        s.union(&self.added);
        s
    }
}

pub(crate) fn compare(old: &Value, new: &Value, shape: &'static Shape) -> Comparison {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    let empty = Map::new();
    let old_m = old.as_object().unwrap_or(&empty);
    let new_m = new.as_object().unwrap_or(&empty);
    compare_objects(old_m, new_m, shape, &mut path, &mut c);
    c
}

fn compare_objects(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    shape: &'static Shape,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    for (k, nv) in new {
        path.push(PathElement::Field(k.clone()));
        let meta = field(shape, k);
        match old.get(k) {
            Some(ov) => compare_values(ov, nv, meta, path, c),
            None => added(nv, meta, path, false, &mut c.added),
        }
        path.pop();
    }
    for (k, ov) in old {
        if !new.contains_key(k) {
            path.push(PathElement::Field(k.clone()));
            added(ov, field(shape, k), path, false, &mut c.removed);
            path.pop();
        }
    }
}

/// Records `v` at `path` as wholly added (or removed): the node itself and everything
/// below it — except that a struct with fields is not a member itself (upstream:
/// non-pointer structs exist in the zero object, so only their fields change).
/// `whole` marks list items, which always are.
fn added(v: &Value, meta: FieldMeta, path: &[PathElement], whole: bool, set: &mut FieldSet) {
    mark_added(v, meta, whole, set.node_mut(path));
}

fn mark_added(v: &Value, meta: FieldMeta, whole: bool, node: &mut FieldSet) {
    match v {
        Value::Object(m) if granular(meta.shape) && !m.is_empty() => {
            node.member = whole || !is_struct(meta.shape);
            for (k, child) in m {
                let entry = node
                    .children
                    .entry(PathElement::Field(k.clone()))
                    .or_default();
                mark_added(child, field(meta.shape, k), false, entry);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            node.member = true;
            match meta.list_type() {
                ListType::Set => {
                    for item in items {
                        node.node_mut(&[PathElement::Value(item.to_string())])
                            .member = true;
                    }
                }
                ListType::Map(keys) if items.iter().all(|i| item_key(i, keys).is_some()) => {
                    for item in items {
                        let Some(key) = item_key(item, keys) else {
                            continue;
                        };
                        mark_added(item, elem_meta(meta), true, node.node_mut(&[key]));
                    }
                }
                _ => {}
            }
        }
        _ => node.member = true,
    }
}

fn compare_values(
    old: &Value,
    new: &Value,
    meta: FieldMeta,
    path: &mut Vec<PathElement>,
    c: &mut Comparison,
) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if granular(meta.shape) => {
            compare_objects(o, n, meta.shape, path, c)
        }
        (Value::Array(o), Value::Array(n)) => match meta.list_type() {
            ListType::Set => {
                for item in n.iter().filter(|i| !o.contains(i)) {
                    c.added
                        .insert(&child_path(path, PathElement::Value(item.to_string())));
                }
                for item in o.iter().filter(|i| !n.contains(i)) {
                    c.removed
                        .insert(&child_path(path, PathElement::Value(item.to_string())));
                }
            }
            ListType::Map(keys) if o.iter().chain(n).all(|i| item_key(i, keys).is_some()) => {
                let elem = elem_meta(meta);
                for item in n {
                    let Some(key) = item_key(item, keys) else {
                        continue;
                    };
                    path.push(key.clone());
                    match o.iter().find(|i| item_key(i, keys).as_ref() == Some(&key)) {
                        Some(old_item) => compare_values(old_item, item, elem, path, c),
                        None => added(item, elem, path, true, &mut c.added),
                    }
                    path.pop();
                }
                for item in o {
                    let Some(key) = item_key(item, keys) else {
                        continue;
                    };
                    if !n.iter().any(|i| item_key(i, keys).as_ref() == Some(&key)) {
                        path.push(key);
                        added(item, elem, path, true, &mut c.removed);
                        path.pop();
                    }
                }
            }
            _ => c.modified.insert(path),
        },
        _ => c.modified.insert(path),
    }
}

fn child_path(path: &[PathElement], e: PathElement) -> Vec<PathElement> {
    let mut p = path.to_vec();
    p.push(e);
    p
}

/// Removes the value at `path` from `obj` (a no-op when it is not there). Maps left
/// empty by the removal are removed too.
pub(crate) fn remove_path(obj: &mut Value, path: &[PathElement], shape: &'static Shape) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (obj, first) {
        (Value::Object(m), PathElement::Field(f)) => {
            let meta = field(shape, f);
            if rest.is_empty() {
                m.shift_remove(f);
                return;
            }
            if let Some(child) = m.get_mut(f) {
                remove_path(child, rest, container_shape(meta));
                let now_empty = child.as_object().is_some_and(Map::is_empty);
                if now_empty && matches!(meta.shape, Shape::Map(_)) {
                    m.shift_remove(f);
                }
            }
        }
        (Value::Array(items), PathElement::Key(k)) => {
            let Some(fields) = super::fieldset::key_fields(k) else {
                return;
            };
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            let Some(i) = items
                .iter()
                .position(|item| item_key(item, &names).as_ref() == Some(first))
            else {
                return;
            };
            if rest.is_empty() {
                items.remove(i);
            } else {
                remove_path(&mut items[i], rest, shape);
            }
        }
        (Value::Array(items), PathElement::Value(v)) if rest.is_empty() => {
            items.retain(|item| &item.to_string() != v);
        }
        _ => {}
    }
}

/// The shape to continue with below a field: a list's element shape for list fields.
fn container_shape(meta: FieldMeta) -> &'static Shape {
    match meta.shape {
        Shape::List(inner) => inner,
        other => other,
    }
}
