//! Compact JSON writing of a [`Value`], byte for byte what `serde_json::to_vec` writes,
//! with a faster string escape.
//!
//! serde_json looks every byte of a string up in a table; most strings of an object
//! (names, labels, images, managed-fields keys) need no escape at all. [`escape_into`]
//! tests eight bytes at a time for the three kinds that need one (`"`, `\` and the
//! control characters below 0x20) and copies clean runs whole. On a stored pod that is
//! half the instructions of serializing it.

use serde_json::Value;

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

/// Whether one of the eight bytes of `word` is below 0x20, `"` or `\`. Each test is
/// the exact "has a zero byte" / "has a byte below n" bit trick: a borrow can only
/// spill past a byte that already matched, and non-ASCII bytes (high bit set) are
/// masked out by `& !word`.
#[inline]
fn needs_escape(word: u64) -> bool {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let q = word ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = word ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGHS != 0
}

/// The eight bytes of `s` at `at` as one word.
#[inline]
fn word(s: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// Whether no byte of `s` needs an escape: word by word, the last word overlapping
/// the one before it; a string shorter than a word byte by byte.
#[inline]
fn is_clean(s: &[u8]) -> bool {
    if s.len() < 8 {
        return s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
    }
    let mut at = 0;
    while at + 8 < s.len() {
        if needs_escape(word(s, at)) {
            return false;
        }
        at += 8;
    }
    !needs_escape(word(s, s.len() - 8))
}

/// Appends the UTF-8 text `s` escaped as the inside of a JSON string, byte for byte as
/// `serde_json` does: `"` and `\` backslashed, the control characters with a short
/// form as `\b \t \n \f \r`, the others as `\u00xx` (lower-case hex), everything else
/// (DEL and all non-ASCII included) as is. Escaping is per character, so escaping
/// `f:` then a name is escaping `f:<name>`.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if is_clean(s) {
        out.extend_from_slice(s);
        return;
    }
    // `s[plain..i]` is written as is once an escape (or the end) is reached.
    let mut plain = 0;
    let mut i = 0;
    while i < s.len() {
        // Whole clean words first, then the bytes of the word that is not clean.
        while i + 8 <= s.len() && !needs_escape(word(s, i)) {
            i += 8;
        }
        let end = (i + 8).min(s.len());
        while i < end {
            let b = s[i];
            let escape = ESCAPE[usize::from(b)];
            if escape != 0 {
                out.extend_from_slice(&s[plain..i]);
                if escape == b'u' {
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ]);
                } else {
                    out.extend_from_slice(&[b'\\', escape]);
                }
                plain = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&s[plain..]);
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
