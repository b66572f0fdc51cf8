//! Field ownership of a new object, built in one walk. With no old object every field
//! of the request is added, so the diff of the general path (`compare({}, new)`, then
//! set algebra on [`FieldSet`](super::fieldset::FieldSet) trees, then the `FieldsV1`
//! encoding) reduces to encoding what `walk::mark_added` would record, straight into
//! the `fieldsV1` JSON bytes (no tree of maps is built). The result is byte-identical
//! to the general path's (the tests compare both); the few inputs where two list items
//! share a key fall back to it.
//!
//! This sits on the create hot path, so the walk writes every node straight into one
//! output buffer: a node's children are collected on a shared stack as (sort key,
//! value), sorted, and written in order; a child that turns out empty is cut back off.
//! Scalars, empty maps and empty lists are leaves whatever their schema says, so the
//! schema is only consulted for non-empty maps and lists.

use serde_json::{Map, Value};

use crate::patch::schema::{field, is_struct, key_default, FieldMeta, ListType, Shape};

/// Two children of one node encode to the same path element (list items sharing a
/// merge key, repeated set values): the general path merges them, this one does not.
#[derive(Debug)]
pub(super) struct Duplicate;

/// Where a node sits relative to the paths nobody owns (`STRIPPED` in `apply.rs`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The object itself: `reset` and [`STRIPPED_TOP`] apply to its children.
    Root,
    /// `metadata`: [`STRIPPED_META`] and `managedFields` apply to its children.
    Metadata,
    Elsewhere,
}

/// Top-level fields nobody owns (the node itself; their children still count).
const STRIPPED_TOP: &[&str] = &["apiVersion", "kind", "metadata"];
/// Fields of `metadata` nobody owns; `managedFields` is skipped entirely.
const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "resourceVersion",
];

/// The `fieldsV1` a create records for `obj` (of shape `shape`), as the JSON that
/// serializing it gives, leaving out the top-level field `reset` (see `reset_field`)
/// and `metadata.managedFields`. `None` when nothing is owned (the entry is then
/// dropped, as the general path drops empty entries).
pub(super) fn created_fields_v1(
    obj: &Value,
    shape: &'static Shape,
    reset: Option<&str>,
) -> Result<Option<Vec<u8>>, Duplicate> {
    if !obj.is_object() {
        return Ok(None);
    }
    memo::remembered(obj, shape, reset, || encode(obj, shape, reset))
}

/// `created_fields_v1` without the memo.
fn encode(
    obj: &Value,
    shape: &'static Shape,
    reset: Option<&str>,
) -> Result<Option<Vec<u8>>, Duplicate> {
    let Value::Object(m) = obj else {
        return Ok(None);
    };
    let mut enc = Encoder::new(reset);
    let owned = enc.object(m, shape, false, Place::Root)?;
    Ok(owned.then_some(enc.out))
}

/// The walk's buffers, reused by every node: `fields` and `items` are stacks of the
/// children of the nodes being written (each node sorts and pops its own slice), and
/// `arena` holds the encoded keys of list items (`items` points into it).
struct Encoder<'a> {
    out: Vec<u8>,
    /// Object children: (field name, value).
    fields: Vec<(&'a str, &'a Value)>,
    /// List children: the `k:`/`v:` element text in `arena` (`start..mid`), the same
    /// text already escaped for the output (`mid..end`; empty for `v:` elements,
    /// escaped when written), and the item.
    items: Vec<(usize, usize, usize, &'a Value)>,
    arena: Vec<u8>,
    reset: Option<&'a str>,
}

impl<'a> Encoder<'a> {
    fn new(reset: Option<&'a str>) -> Self {
        Encoder {
            out: Vec::with_capacity(1024),
            fields: Vec::with_capacity(64),
            items: Vec::with_capacity(64),
            arena: Vec::with_capacity(1024),
            reset,
        }
    }

    /// Writes the node of `v` recorded as wholly added (`walk::mark_added`) when `v`
    /// is the field of a value of shape `parent` named `name`; returns whether anything
    /// was written. `strip` drops the node's own membership.
    fn field_value(
        &mut self,
        v: &'a Value,
        parent: &'static Shape,
        name: &str,
        place: Place,
        strip: bool,
    ) -> Result<bool, Duplicate> {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let meta = field(parent, name);
                match granularity(meta.shape) {
                    Some(is_struct) => self.object(m, meta.shape, !is_struct && !strip, place),
                    None => Ok(self.leaf(!strip)),
                }
            }
            Value::Array(items) if !items.is_empty() => {
                self.list(items, field(parent, name), !strip)
            }
            _ => Ok(self.leaf(!strip)),
        }
    }

    /// Writes `{}` for a member leaf; nothing otherwise.
    fn leaf(&mut self, member: bool) -> bool {
        if member {
            self.out.extend_from_slice(b"{}");
        }
        member
    }

    /// Writes a granular, non-empty map of shape `shape`.
    fn object(
        &mut self,
        m: &'a Map<String, Value>,
        shape: &'static Shape,
        member: bool,
        place: Place,
    ) -> Result<bool, Duplicate> {
        let base = self.fields.len();
        for (k, v) in m {
            let skip = match place {
                Place::Root => self.reset == Some(k.as_str()),
                Place::Metadata => k == "managedFields",
                Place::Elsewhere => false,
            };
            if !skip {
                self.fields.push((k.as_str(), v));
            }
        }
        // Sorting by the field name is sorting by the element `f:<name>` (a common
        // prefix), which is the order of `PathElement::Field`. The names of one JSON
        // object are distinct, so no duplicate check.
        self.fields[base..].sort_unstable_by(|a, b| a.0.cmp(b.0));
        let start = self.open(member);
        let mut any = false;
        for i in base..self.fields.len() {
            let (k, v) = self.fields[i];
            let (child_place, strip) = match place {
                Place::Root => (
                    if k == "metadata" {
                        Place::Metadata
                    } else {
                        Place::Elsewhere
                    },
                    STRIPPED_TOP.contains(&k),
                ),
                Place::Metadata => (Place::Elsewhere, STRIPPED_META.contains(&k)),
                Place::Elsewhere => (Place::Elsewhere, false),
            };
            let mark = self.child_key(member || any, b"f:", k.as_bytes());
            if self.field_value(v, shape, k, child_place, strip)? {
                any = true;
            } else {
                self.out.truncate(mark);
            }
        }
        self.fields.truncate(base);
        Ok(self.close(start, member, any))
    }

    /// Writes a non-empty list of field `meta`; `member` is the list's own membership.
    fn list(
        &mut self,
        items: &'a [Value],
        meta: FieldMeta,
        member: bool,
    ) -> Result<bool, Duplicate> {
        let base = self.items.len();
        let arena_base = self.arena.len();
        let elem = match meta.list_type() {
            ListType::Atomic => return Ok(self.leaf(member)),
            ListType::Set => {
                for item in items {
                    let s = self.arena.len();
                    crate::json::write_value(&mut self.arena, item);
                    let m = self.arena.len();
                    self.items.push((s, m, m, item));
                }
                None
            }
            ListType::Map(keys) => {
                if !self.item_keys(items, keys) {
                    // A list-map item without its key makes the list atomic.
                    self.items.truncate(base);
                    self.arena.truncate(arena_base);
                    return Ok(self.leaf(member));
                }
                Some(FieldMeta {
                    shape: meta.elem(),
                    tag: None,
                })
            }
        };
        let (children, arena) = (&mut self.items[base..], &self.arena);
        children.sort_unstable_by(|a, b| arena[a.0..a.1].cmp(&arena[b.0..b.1]));
        if children
            .windows(2)
            .any(|w| arena[w[0].0..w[0].1] == arena[w[1].0..w[1].1])
        {
            return Err(Duplicate);
        }
        let prefix: &[u8] = if elem.is_some() { b"k:" } else { b"v:" };
        let start = self.open(member);
        let mut any = false;
        for i in base..self.items.len() {
            let (s, m, e, item) = self.items[i];
            let mark = self.out.len();
            if member || any {
                self.out.push(b',');
            }
            self.out.push(b'"');
            self.out.extend_from_slice(prefix);
            if e > m {
                self.out.extend_from_slice(&self.arena[m..e]);
            } else {
                crate::json::escape_into(&mut self.out, &self.arena[s..m]);
            }
            self.out.extend_from_slice(b"\":");
            let written = match (elem, item) {
                // A list-map item is always a member (`whole`) and always an object.
                (Some(elem), Value::Object(m)) if !m.is_empty() => match granularity(elem.shape) {
                    Some(_) => self.object(m, elem.shape, true, Place::Elsewhere)?,
                    None => self.leaf(true),
                },
                _ => self.leaf(true),
            };
            if written {
                any = true;
            } else {
                self.out.truncate(mark);
            }
        }
        self.items.truncate(base);
        self.arena.truncate(arena_base);
        Ok(self.close(start, member, any))
    }

    /// Pushes the `k:` text of every item (upstream's key object: the key fields in
    /// name order, as compact JSON — what `walk::item_key` serializes) onto `items`,
    /// followed by that text escaped as the inside of a JSON string; false when an item
    /// is not an object or lacks a key field with no default. The escaped text is
    /// written directly (`{\"name\":\"web\"}`): escaping the JSON of a key made
    /// of quotes takes the slow, byte-by-byte way.
    fn item_keys(&mut self, items: &'a [Value], keys: &[&str]) -> bool {
        let sorted_keys;
        let keys = if keys.windows(2).all(|w| w[0] < w[1]) {
            keys
        } else {
            let mut k = keys.to_vec();
            k.sort_unstable();
            k.dedup();
            sorted_keys = k;
            &sorted_keys[..]
        };
        for item in items {
            let Value::Object(m) = item else {
                return false;
            };
            let s = self.arena.len();
            let (write_str, write_value) = (crate::json::write_str, crate::json::write_value);
            if !key_object(&mut self.arena, m, keys, write_str, write_value) {
                return false;
            }
            let mid = self.arena.len();
            // The same fields again, found above: this cannot fail.
            key_object(
                &mut self.arena,
                m,
                keys,
                write_escaped_str,
                write_escaped_json,
            );
            self.items.push((s, mid, self.arena.len(), item));
        }
        true
    }

    /// Starts a node with children: `{` and, for a member, `".":{}`. Returns where the
    /// node starts.
    fn open(&mut self, member: bool) -> usize {
        let start = self.out.len();
        self.out.push(b'{');
        if member {
            self.out.extend_from_slice(br#"".":{}"#);
        }
        start
    }

    /// Writes `,"<prefix><name>":` (no comma for the first entry); returns where it
    /// starts, to cut an empty child back off.
    fn child_key(&mut self, comma: bool, prefix: &[u8], name: &[u8]) -> usize {
        let mark = self.out.len();
        if comma {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(prefix);
        crate::json::escape_into(&mut self.out, name);
        self.out.extend_from_slice(b"\":");
        mark
    }

    /// Ends a node opened at `start`: `}` after its children; with none, `{}` for a
    /// member and nothing otherwise (as `FieldSet::encode_node` and the dropping of
    /// empty children do).
    fn close(&mut self, start: usize, member: bool, any: bool) -> bool {
        if any {
            self.out.push(b'}');
            return true;
        }
        self.out.truncate(start);
        self.leaf(member)
    }
}

/// Appends the key object of list item `m` (its `keys` fields, a missing one taking
/// its default), its names written by `name` and its values by `value`; false when a
/// key field is missing and has no default.
fn key_object(
    out: &mut Vec<u8>,
    m: &Map<String, Value>,
    keys: &[&str],
    name: impl Fn(&mut Vec<u8>, &str),
    value: impl Fn(&mut Vec<u8>, &Value),
) -> bool {
    out.push(b'{');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        name(out, k);
        out.push(b':');
        match crate::meta::map_field(m, k) {
            Some(v) => value(out, v),
            None => match key_default(k) {
                Some(v) => value(out, &v),
                None => return false,
            },
        }
    }
    out.push(b'}');
    true
}

/// Appends the JSON string of `s`, escaped as the inside of a JSON string: `\"s\"`
/// when `s` itself needs no escape.
fn write_escaped_str(out: &mut Vec<u8>, s: &str) {
    if crate::json::is_clean(s.as_bytes()) {
        out.extend_from_slice(b"\\\"");
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\\\"");
    } else {
        let mut json = Vec::with_capacity(s.len() + 2);
        crate::json::write_str(&mut json, s);
        crate::json::escape_into(out, &json);
    }
}

/// Appends the JSON of `v`, escaped as the inside of a JSON string.
fn write_escaped_json(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_escaped_str(out, s),
        // Numbers, booleans and null have nothing to escape.
        Value::Number(_) | Value::Bool(_) | Value::Null => crate::json::write_value(out, v),
        _ => {
            let mut json = Vec::new();
            crate::json::write_value(&mut json, v);
            crate::json::escape_into(out, &json);
        }
    }
}

/// `None` when a value of this shape is owned as a unit (`walk::granular` is false);
/// otherwise whether it is a known struct (whose node is then not a member itself).
/// One schema lookup where `granular` then `is_struct` would take two.
fn granularity(shape: &Shape) -> Option<bool> {
    match shape {
        Shape::Struct(_) => is_struct(shape).then_some(true),
        Shape::Map(_) | Shape::Unknown => Some(false),
        Shape::Leaf | Shape::List(_) => None,
    }
}

mod memo;
#[cfg(test)]
mod tests;
