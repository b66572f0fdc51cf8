//! YAML as upstream kubectl writes it: `sigs.k8s.io/yaml` (go-yaml v2) over a JSON
//! value. Keys sorted in go-yaml's "natural" order, block sequences not indented
//! inside mappings, strings quoted only where go-yaml quotes them, long plain
//! strings folded past column 80, multi-line strings as literal blocks.

use std::cmp::Ordering;

use serde_json::Value;

const BEST_WIDTH: usize = 80;

/// The YAML document for `value` (ends with a newline).
pub fn to_yaml(value: &Value) -> String {
    let mut out = Emitter::default();
    match value {
        Value::Object(map) if !map.is_empty() => out.mapping(map, 0),
        Value::Array(items) if !items.is_empty() => out.sequence(items, 0),
        other => {
            out.scalar(other, 0, false);
            out.newline();
        }
    }
    out.buf
}

#[derive(Default)]
struct Emitter {
    buf: String,
    column: usize,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        for c in s.chars() {
            if c == '\n' {
                self.column = 0;
            } else {
                self.column += 1;
            }
        }
        self.buf.push_str(s);
    }

    fn newline(&mut self) {
        if !self.buf.is_empty() && !self.buf.ends_with('\n') {
            self.push("\n");
        }
    }

    fn indent_to(&mut self, indent: usize) {
        self.newline();
        self.push(&" ".repeat(indent));
    }

    /// A block mapping whose keys sit at `indent`; the first key is written at the
    /// current position (after `- ` for a sequence item).
    fn mapping(&mut self, map: &serde_json::Map<String, Value>, indent: usize) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| natural_cmp(a, b));
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 {
                self.indent_to(indent);
            }
            self.key(key);
            self.push(":");
            match &map[key] {
                Value::Object(m) if !m.is_empty() => {
                    self.indent_to(indent + 2);
                    self.mapping(m, indent + 2);
                }
                Value::Array(items) if !items.is_empty() => {
                    // go-yaml writes sequences in a mapping without extra indentation.
                    self.indent_to(indent);
                    self.sequence(items, indent);
                }
                other => {
                    self.push(" ");
                    self.scalar(other, indent + 2, false);
                }
            }
        }
        self.newline();
    }

    fn sequence(&mut self, items: &[Value], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.indent_to(indent);
            }
            self.push("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(m, indent + 2),
                Value::Array(inner) if !inner.is_empty() => self.sequence(inner, indent + 2),
                other => self.scalar(other, indent + 2, false),
            }
        }
        self.newline();
    }

    fn key(&mut self, key: &str) {
        self.string(key, 0, true);
    }

    fn scalar(&mut self, value: &Value, indent: usize, simple_key: bool) {
        match value {
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let text = format_number(n);
                self.push(&text);
            }
            Value::String(s) => self.string(s, indent, simple_key),
            Value::Object(_) => self.push("{}"),
            Value::Array(_) => self.push("[]"),
        }
    }

    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        let analysis = analyze(s);
        let can_use_plain = resolves_to_string(s) && !is_base60_float(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if can_use_plain {
            Style::Plain
        } else {
            Style::Double
        };
        if style == Style::Plain && (!analysis.block_plain_allowed || (s.is_empty() && simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(s, indent, allow_breaks),
            Style::Single => self.write_single(s, indent, allow_breaks),
            Style::Double => self.write_double(s, indent, allow_breaks),
            Style::Literal => self.write_literal(s, indent),
        }
    }

    fn write_plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.indent_to(indent);
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                let mut tmp = [0u8; 4];
                self.push(c.encode_utf8(&mut tmp));
                spaces = false;
            }
        }
    }

    fn write_single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.push("'");
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if is_break(c) {
                let mut tmp = [0u8; 4];
                self.push(c.encode_utf8(&mut tmp));
                self.column = 0;
                breaks = true;
                continue;
            }
            if breaks {
                self.push(&" ".repeat(indent));
                breaks = false;
            }
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                    && !next_is_space
                {
                    self.indent_to(indent);
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push("'");
                }
                let mut tmp = [0u8; 4];
                self.push(c.encode_utf8(&mut tmp));
                spaces = false;
            }
        }
        self.push("'");
    }

    fn write_double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.push("\"");
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let escaped = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".to_string(),
                    '\u{8}' => "\\b".to_string(),
                    '\t' => "\\t".to_string(),
                    '\n' => "\\n".to_string(),
                    '\u{b}' => "\\v".to_string(),
                    '\u{c}' => "\\f".to_string(),
                    '\r' => "\\r".to_string(),
                    '\u{1b}' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{a0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.push(&escaped);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                {
                    self.indent_to(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push("\\");
                    }
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                let mut tmp = [0u8; 4];
                self.push(c.encode_utf8(&mut tmp));
                spaces = false;
            }
        }
        self.push("\"");
    }

    fn write_literal(&mut self, s: &str, indent: usize) {
        self.push("|");
        if s.starts_with(' ') || s.starts_with('\n') {
            self.push("2");
        }
        let trailing = s.len() - s.trim_end_matches('\n').len();
        match trailing {
            0 => self.push("-"),
            1 if s.len() > 1 => {}
            _ => self.push("+"),
        }
        // go-yaml always breaks the line after the indicator.
        self.push("\n");
        let mut breaks = true;
        for c in s.chars() {
            if c == '\n' {
                self.push("\n");
                breaks = true;
            } else {
                if breaks {
                    self.push(&" ".repeat(indent));
                }
                let mut tmp = [0u8; 4];
                self.push(c.encode_utf8(&mut tmp));
                breaks = false;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let v = c as u32;
    // libyaml's table: no NEL (0x85), nothing outside the BMP.
    v == 0x0a
        || (0x20..=0x7e).contains(&v)
        || (0xa0..=0xd7ff).contains(&v)
        || ((0xe000..=0xfffd).contains(&v) && v != 0xfeff)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c) || c == '\0',
    }
}

/// go-yaml's `yaml_emitter_analyze_scalar`, reduced to block context.
fn analyze(s: &str) -> Analysis {
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if s.is_empty() {
        return a;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let first = i == 0;
        let last = i == chars.len() - 1;
        let followed_by_whitespace = is_blankz(chars.get(i + 1).copied());
        if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if first {
                leading_space = true;
            }
            if last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if first {
                leading_break = true;
            }
            if last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c);
    }
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// Whether go-yaml v2's `resolve` reads the plain scalar `s` back as a string.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE", "n", "N", "no",
        "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if s.is_empty() || SPECIAL.contains(&s) {
        return false;
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => s.parse::<f64>().is_err() || s.eq_ignore_ascii_case(".inf"),
        b'0'..=b'9' | b'+' | b'-' => {
            if is_timestamp(s) {
                return false;
            }
            let plain = s.replace('_', "");
            !(is_go_int(&plain) || is_yaml_float(&plain) || is_binary(&plain))
        }
        _ => true,
    }
}

fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = lower.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    if let Some(bin) = lower.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    if body.len() > 1 && body.starts_with('0') {
        return body.chars().all(|c| ('0'..='7').contains(&c));
    }
    body.chars().all(|c| c.is_ascii_digit())
}

fn is_binary(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    body.strip_prefix("0b")
        .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() && !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit()))
                || (!int.is_empty()
                    && int.chars().all(|c| c.is_ascii_digit())
                    && frac.chars().all(|c| c.is_ascii_digit()))
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exponent_ok
}

/// go-yaml's timestamp formats: `2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00`
/// (also `t`), `2006-1-2 15:4:5.999999999`.
fn is_timestamp(s: &str) -> bool {
    fn digits(s: &str, min: usize, max: usize) -> Option<&str> {
        let n = s.chars().take_while(|c| c.is_ascii_digit()).count();
        (n >= min && n <= max).then(|| &s[n..])
    }
    let Some(rest) = digits(s, 4, 4) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('-').and_then(|r| digits(r, 1, 2)) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('-').and_then(|r| digits(r, 1, 2)) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let (sep, rest) = rest.split_at(1);
    let Some(mut rest) = digits(rest, 1, 2)
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| digits(r, 1, 2))
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| digits(r, 1, 2))
    else {
        return false;
    };
    if let Some(frac) = rest.strip_prefix('.') {
        match digits(frac, 1, 9) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    match sep {
        " " => rest.is_empty(),
        "T" | "t" => {
            rest == "Z"
                || (rest.len() == 6
                    && (rest.starts_with('+') || rest.starts_with('-'))
                    && digits(&rest[1..], 2, 2)
                        .and_then(|r| r.strip_prefix(':'))
                        .and_then(|r| digits(r, 2, 2))
                        == Some(""))
        }
        _ => false,
    }
}

fn is_base60_float(s: &str) -> bool {
    // `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if let Some(f) = frac {
        if !f.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return false;
        }
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut count = 0;
    for part in parts {
        count += 1;
        let ok = match part.len() {
            1 => part.chars().all(|c| c.is_ascii_digit()),
            2 => {
                let b = part.as_bytes();
                (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit()
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    count > 0
}

fn format_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

/// go-yaml v2's key order (`keyList.Less`): letters before digits, digit runs
/// compared as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_print_like_go_yaml() {
        let v = json!({
            "metadata": {"name": "x", "resourceVersion": "12", "labels": {"app": "web"},
                         "creationTimestamp": "2024-01-01T00:00:00Z", "annotations": {}},
            "kind": "Pod",
            "apiVersion": "v1",
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "3600"],
                                      "ports": [{"containerPort": 80}]}],
                     "enabled": true, "empty": "", "nothing": null, "list": []},
        });
        assert_eq!(
            to_yaml(&v),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {}\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  labels:\n    app: web\n  name: x\n  resourceVersion: \"12\"\nspec:\n  containers:\n  - args:\n    - sleep\n    - \"3600\"\n    image: busybox\n    name: c\n    ports:\n    - containerPort: 80\n  empty: \"\"\n  enabled: true\n  list: []\n  nothing: null\n"
        );
    }

    #[test]
    fn strings_are_quoted_as_go_yaml_quotes_them() {
        let y = |s: &str| to_yaml(&json!({ "k": s }));
        assert_eq!(y("true"), "k: \"true\"\n");
        assert_eq!(y("y"), "k: \"y\"\n");
        assert_eq!(y("1.5"), "k: \"1.5\"\n");
        assert_eq!(y("0x1F"), "k: \"0x1F\"\n");
        assert_eq!(y("a: b"), "k: 'a: b'\n");
        assert_eq!(y("*star"), "k: '*star'\n");
        assert_eq!(y(" lead"), "k: ' lead'\n");
        assert_eq!(y("it's"), "k: it's\n");
        assert_eq!(y("tab\there"), "k: \"tab\\there\"\n");
        assert_eq!(y("1.2.3"), "k: 1.2.3\n");
        assert_eq!(y("a\nb\n"), "k: |\n  a\n  b\n");
        assert_eq!(y("a\nb"), "k: |-\n  a\n  b\n");
        assert_eq!(y("10:30"), "k: \"10:30\"\n");
        assert_eq!(y("web-1"), "k: web-1\n");
        assert_eq!(y("\u{1F600}"), "k: \"\\U0001F600\"\n");
        assert_eq!(y("\nabc"), "k: |2-\n\n  abc\n");
        assert_eq!(y("a\n\n"), "k: |+\n  a\n\n");
    }

    #[test]
    fn literal_in_sequences_and_wrapping() {
        let v = json!({"a": {"b": "x\ny\n"}, "l": ["p\nq\n"]});
        assert_eq!(to_yaml(&v), "a:\n  b: |\n    x\n    y\nl:\n- |\n  p\n  q\n");
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let out = to_yaml(&json!({ "message": long }));
        let first = out.lines().next().unwrap_or_default();
        assert!(first.len() > 80 && first.len() < 90, "{out}");
        assert!(
            out.lines().nth(1).is_some_and(|l| l.starts_with("  word")),
            "{out}"
        );
    }

    #[test]
    fn keys_sort_naturally() {
        let mut keys = vec!["a10", "a2", "b", "A", "_x", "1"];
        keys.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(keys, vec!["_x", "1", "A", "a2", "a10", "b"]);
    }
}
