//! Compact JSON writing of a [`Value`], byte for byte what `serde_json::to_vec` writes,
//! with a faster string escape.
//!
//! serde_json looks every byte of a string up in a table; most strings of an object
//! (names, labels, images, managed-fields keys) need no escape at all. [`escape_into`]
//! tests eight bytes at a time for the three kinds that need one (`"`, `\` and the
//! control characters below 0x20) and copies clean runs whole. On a stored pod that is
//! half the instructions of serializing it.

use serde_json::Value;

/// `value` with object keys sorted recursively, as Go marshals a map (kubectl's
/// printers, the last-applied annotation).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `value` as compact JSON, the bytes `serde_json::to_vec(value)` gives.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_value(&mut out, value);
    out
}

/// Appends `value` as compact JSON, the bytes `serde_json::to_writer` writes.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                // Floats: serde_json's own formatting (rare in Kubernetes objects).
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, n);
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, v);
            }
            out.push(b'}');
        }
    }
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s.as_bytes());
    out.push(b'"');
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each of the eight bytes of `word` that is below 0x20, `"` or `\`,
/// exact up to the lowest match: each is the "has a zero byte" / "has a byte below n"
/// bit trick, where a borrow can only spill past a byte that already matched (so
/// bits above the lowest may be false), and non-ASCII bytes (high bit set) are masked
/// out by `& !word`.
#[inline]
fn escape_mask(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let q = word ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = word ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGHS
}

/// Whether one of the eight bytes of `word` needs an escape.
#[inline]
fn needs_escape(word: u64) -> bool {
    escape_mask(word) != 0
}

/// The eight bytes of `s` at `at` as one word.
#[inline]
fn word(s: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// Whether no byte of `s` needs an escape.
#[inline]
pub(crate) fn is_clean(s: &[u8]) -> bool {
    next_escape(s, 0).is_none()
}

/// Appends the UTF-8 text `s` escaped as the inside of a JSON string, byte for byte as
/// `serde_json` does: `"` and `\` backslashed, the control characters with a short
/// form as `\b \t \n \f \r`, the others as `\u00xx` (lower-case hex), everything else
/// (DEL and all non-ASCII included) as is. Escaping is per character, so escaping
/// `f:` then a name is escaping `f:<name>`.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if copied_short_clean(out, s) {
        return;
    }
    out.reserve(s.len() + 8);
    // `s[plain..]` is not written yet; each escape writes the clean run before it (a
    // clean string is one run).
    let mut plain = 0;
    while let Some(i) = next_escape(s, plain) {
        out.extend_from_slice(&s[plain..i]);
        let b = s[i];
        match ESCAPE[usize::from(b)] {
            b'u' => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            letter => out.extend_from_slice(&[b'\\', letter]),
        }
        plain = i + 1;
    }
    out.extend_from_slice(&s[plain..]);
}

/// Appends `s` when it is at most 32 bytes long and needs no escape; false (nothing
/// written) otherwise. Most strings of an object are this short: two overlapping
/// words are checked and written as fixed-size copies, the second written over the
/// end of the first (no call to `memcpy` for a handful of bytes).
#[inline]
fn copied_short_clean(out: &mut Vec<u8>, s: &[u8]) -> bool {
    let len = s.len();
    let start = out.len();
    match len {
        0 => true,
        1..=3 => {
            if s.iter().any(|&b| ESCAPE[usize::from(b)] != 0) {
                return false;
            }
            for &b in s {
                out.push(b);
            }
            true
        }
        4..=8 => {
            let mut head = [0u8; 4];
            head.copy_from_slice(&s[..4]);
            let mut tail = [0u8; 4];
            tail.copy_from_slice(&s[len - 4..]);
            let both =
                u64::from(u32::from_le_bytes(head)) | u64::from(u32::from_le_bytes(tail)) << 32;
            if needs_escape(both) {
                return false;
            }
            out.extend_from_slice(&head);
            out.truncate(start + len - 4);
            out.extend_from_slice(&tail);
            true
        }
        9..=16 => copied_clean_ends::<8>(out, s),
        // Values such as image names and env values: four words, two 16-byte copies.
        17..=32 => copied_clean_ends::<16>(out, s),
        _ => false,
    }
}

/// Appends `s` (`N` to `2 * N` bytes long, `N` a multiple of 8) when it needs no
/// escape, as its first and its last `N` bytes, the second copy written over the end
/// of the first; false (nothing written) otherwise.
#[inline]
fn copied_clean_ends<const N: usize>(out: &mut Vec<u8>, s: &[u8]) -> bool {
    let (len, start) = (s.len(), out.len());
    let (mut head, mut tail) = ([0u8; N], [0u8; N]);
    head.copy_from_slice(&s[..N]);
    tail.copy_from_slice(&s[len - N..]);
    // A plain loop over a constant count: an iterator chain here was not inlined.
    for i in 0..N / 8 {
        if needs_escape(word(&head, i * 8)) || needs_escape(word(&tail, i * 8)) {
            return false;
        }
    }
    out.extend_from_slice(&head);
    out.truncate(start + len - N);
    out.extend_from_slice(&tail);
    true
}

/// The offset of the first byte at or after `from` that needs an escape: whole words
/// while they last (the lowest bit of the word's mask is exact), then byte by byte.
#[inline]
fn next_escape(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 8 <= s.len() {
        let mask = escape_mask(word(s, i));
        if mask != 0 {
            return Some(i + (mask.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..]
        .iter()
        .position(|&b| ESCAPE[usize::from(b)] != 0)
        .map(|p| i + p)
}

/// For each byte, the letter after the backslash that escapes it (`u`: `\u00xx`), or 0
/// when it is written as is.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[0x22] = b'"';
    t[0x5c] = b'\\';
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_character_at_every_offset_of_a_word_is_escaped_as_serde_json_does() {
        let mut text: String = (0u8..0x80).map(char::from).collect();
        text.push_str("\u{e9}\u{80}\u{2028}\u{ffff}\u{10ffff}\u{a2}\u{dc}");
        for c in text.chars() {
            // The character at each offset of a 16-byte run, and twice in one word.
            for at in 0..17 {
                let s = format!("{}{c}{}{c}", "a".repeat(at), "b".repeat(at % 5));
                let mut ours = Vec::new();
                write_str(&mut ours, &s);
                assert_eq!(
                    String::from_utf8(ours).expect("utf-8"),
                    serde_json::to_string(&s).expect("json"),
                    "{c:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn strings_of_every_length_up_to_forty_are_escaped_as_serde_json_does() {
        for len in 0..=40 {
            // No two neighbouring bytes alike, so a misplaced overlapping copy shows.
            let clean: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let mut out = b"<".to_vec();
            write_str(&mut out, &clean);
            assert_eq!(out, format!("<\"{clean}\"").into_bytes(), "{len}");
            for at in 0..len {
                for c in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é'] {
                    let mut s: Vec<char> = clean.chars().collect();
                    s[at] = c;
                    let s: String = s.into_iter().collect();
                    let mut ours = b"<".to_vec();
                    write_str(&mut ours, &s);
                    let theirs = format!("<{}", serde_json::to_string(&s).expect("json"));
                    assert_eq!(
                        String::from_utf8(ours).expect("utf-8"),
                        theirs,
                        "{c:?} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(1.0),
            json!(-0.0),
            json!(1e300),
            json!(0.1),
            json!(""),
            json!([]),
            json!({}),
            json!([1, "two", [3.5], {"four": null}]),
            json!({"metadata": {"name": "p\"q", "labels": {"a\\b": "c\nd"}},
                   "spec": {"containers": [{"name": "web", "env": [{"name": "X", "value": "\u{1}\u{7f}é"}]}]},
                   "z": [true, false, null, 12345678901234_i64]}),
        ];
        for v in values {
            assert_eq!(to_vec(&v), serde_json::to_vec(&v).expect("json"), "{v}");
        }
    }
}
