//! A per-thread memo of recent `created_fields_v1` results, keyed by everything the
//! encoding depends on. Objects created in bulk share their shape (a ReplicaSet's or
//! a Job's pods, Events of one kind): they differ in names, UIDs, timestamps and label
//! values, none of which the encoding records, so the walk that sorts, escapes and
//! consults the schema at every node is done once per shape.
//!
//! The key is exact, not a hash. It is the *outline* of the object: every field name
//! in order, every node's kind (map, list, scalar, empty), and the value of every
//! scalar at any depth inside a list (list-map keys and set values are written into the
//! encoding; the others are kept too, which only costs hits). Scalars outside lists
//! are reduced to their kind, which is all the encoding reads of them. With the shape
//! and the reset field prepended, equal keys mean equal encodings. The outline is
//! prefix-free: each map entry starts with `k` and a length, each node with a tag, and
//! a map or list ends with a byte that no entry or node starts with.

use std::cell::RefCell;

use serde_json::Value;

use crate::patch::schema::Shape;

/// Results kept per thread (most recently used first).
const ENTRIES: usize = 16;
/// Outlines longer than this are not kept (such objects are large and rarely alike).
const MAX_KEY: usize = 32 * 1024;

struct Entry {
    key: Vec<u8>,
    fields: Option<Vec<u8>>,
}

#[derive(Default)]
struct Memo {
    /// The outline being looked up; it becomes an entry's key on a miss.
    scratch: Vec<u8>,
    entries: Vec<Entry>,
    #[cfg(test)]
    hits: usize,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// `encode()`'s result for `obj` encoded with `shape` and `reset`: from the memo when a
/// like object was encoded on this thread lately. Errors are not kept.
pub(super) fn remembered<E>(
    obj: &Value,
    shape: &'static Shape,
    reset: Option<&str>,
    encode: impl FnOnce() -> Result<Option<Vec<u8>>, E>,
) -> Result<Option<Vec<u8>>, E> {
    let found = MEMO.with_borrow_mut(|memo| {
        let key = &mut memo.scratch;
        key.clear();
        key.extend_from_slice(&(shape as *const Shape as usize).to_le_bytes());
        match reset {
            Some(r) => {
                key.push(b'r');
                push_len(key, r.len());
                key.extend_from_slice(r.as_bytes());
            }
            None => key.push(b'-'),
        }
        outline(key, obj, false);
        let at = memo.entries.iter().position(|e| e.key == memo.scratch)?;
        // The hit moves to the front.
        memo.entries[..=at].rotate_right(1);
        let fields = memo.entries[0].fields.clone();
        #[cfg(test)]
        {
            memo.hits += 1;
        }
        Some(fields)
    });
    if let Some(fields) = found {
        return Ok(fields);
    }
    let fields = encode()?;
    MEMO.with_borrow_mut(|memo| {
        if memo.scratch.len() > MAX_KEY {
            return;
        }
        // The evicted entry's buffer becomes the next scratch.
        let spare = if memo.entries.len() == ENTRIES {
            memo.entries.pop().map(|e| e.key).unwrap_or_default()
        } else {
            Vec::new()
        };
        let key = std::mem::replace(&mut memo.scratch, spare);
        memo.entries.insert(
            0,
            Entry {
                key,
                fields: fields.clone(),
            },
        );
    });
    Ok(fields)
}

/// Bytes of a length in the outline.
const LEN: usize = 4;

/// Appends a length (the outline is not kept for objects near 4 GiB).
fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// Appends the outline of `v`; `in_list` when `v` is inside a list, at any depth.
fn outline(out: &mut Vec<u8>, v: &Value, in_list: bool) {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            for (k, v) in m {
                out.push(b'k');
                push_len(out, k.len());
                out.extend_from_slice(k.as_bytes());
                outline(out, v, in_list);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for item in items {
                outline(out, item, true);
            }
            out.push(b']');
        }
        // Inside a list, a scalar's JSON is a function of what is written here.
        Value::String(s) if in_list => {
            out.push(b'"');
            push_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(_) if in_list => {
            out.push(b'#');
            let at = out.len();
            push_len(out, 0);
            crate::json::write_value(out, v);
            let len = out.len() - at - LEN;
            out[at..at + LEN].copy_from_slice(&(len as u32).to_le_bytes());
        }
        Value::Bool(b) if in_list => out.push(if *b { b't' } else { b'f' }),
        Value::String(_) => out.push(b's'),
        Value::Number(_) => out.push(b'n'),
        Value::Bool(_) => out.push(b'b'),
        Value::Null => out.push(b'0'),
    }
}

/// Hits on this thread so far (tests check that like objects hit and unlike ones miss).
#[cfg(test)]
pub(super) fn hits() -> usize {
    MEMO.with_borrow(|memo| memo.hits)
}
