//! kubectl's JSONPath templates (client-go `util/jsonpath`): literal text with
//! `{expression}` blocks, `{range ...}{end}`, quoted literals (`{"\n"}`), unions,
//! slices, wildcards, recursive descent (`..name`) and filters (`[?(@.a=="x")]`).
//! Missing keys print nothing, as kubectl allows them.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JsonPathError {
    #[error("unclosed action")]
    Unclosed,
    #[error("{0}")]
    Parse(String),
    #[error("not in range, nothing to end")]
    UnmatchedEnd,
    #[error("array index out of bounds: index {index}, length {length}")]
    OutOfBounds { index: i64, length: usize },
}

type Result<T, E = JsonPathError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Wildcard,
    Recursive,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    All,
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Segment>),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    op: Option<String>,
    right: Option<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// Comma separated paths, all printed.
    Paths(Vec<Vec<Segment>>),
    Range(Vec<Segment>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct JsonPath {
    template: String,
    nodes: Vec<Node>,
}

impl JsonPath {
    pub fn parse(template: &str) -> Result<JsonPath> {
        let mut stack: Vec<(Vec<Segment>, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                nodes.push(Node::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
            }
            let close = find_close(&rest[open..]).ok_or(JsonPathError::Unclosed)? + open;
            let action = rest[open + 1..close].trim();
            rest = &rest[close + 1..];
            if let Some(expr) = action.strip_prefix("range ") {
                stack.push((parse_path(expr.trim())?, std::mem::take(&mut nodes)));
            } else if action == "end" {
                let (path, outer) = stack.pop().ok_or(JsonPathError::UnmatchedEnd)?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(path, body));
            } else if action.starts_with('"') || action.starts_with('\'') {
                nodes.push(Node::Text(unquote(action)?));
            } else {
                let paths = split_top_level(action, ',')
                    .into_iter()
                    .map(|p| parse_path(p.trim()))
                    .collect::<Result<Vec<_>>>()?;
                nodes.push(Node::Paths(paths));
            }
        }
        if !stack.is_empty() {
            return Err(JsonPathError::Parse("unterminated range".into()));
        }
        Ok(JsonPath {
            template: template.to_string(),
            nodes,
        })
    }

    /// The template as given.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Renders the template against `data`.
    pub fn execute(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        exec_nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// The values of the template's expressions (for custom columns).
    pub fn values(&self, data: &Value) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        for node in &self.nodes {
            if let Node::Paths(paths) = node {
                for path in paths {
                    values.extend(eval_path(path, data, data)?);
                }
            }
        }
        Ok(values)
    }
}

/// kubectl's `RelaxedJSONPathExpression`: `.a.b`, `a.b` and `{.a.b}` all mean `{.a.b}`.
pub fn relaxed(expr: &str) -> String {
    let trimmed = expr.trim();
    if trimmed.starts_with('{') {
        return trimmed.to_string();
    }
    let inner = trimmed.strip_prefix('.').unwrap_or(trimmed);
    format!("{{.{inner}}}")
}

fn exec_nodes(nodes: &[Node], data: &Value, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Paths(paths) => {
                let mut results = Vec::new();
                for path in paths {
                    results.extend(eval_path(path, data, data)?);
                }
                let texts: Vec<String> = results.iter().map(value_text).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(path, body) => {
                for item in eval_path(path, data, data)? {
                    exec_nodes(body, &item, out)?;
                }
            }
        }
    }
    Ok(())
}

/// How a result prints: strings raw, everything else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => {
            super::json::go_escape(&super::json::sorted(v).to_string())
        }
        other => other.to_string(),
    }
}

/// A value as Go's `%#v` prints decoded JSON (upstream's jsonpath debugging).
pub fn go_syntax(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.to_string(),
        },
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(go_syntax).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let entries: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::to_string(k).unwrap_or_default(),
                        go_syntax(&map[k])
                    )
                })
                .collect();
            format!("map[string]interface {{}}{{{}}}", entries.join(", "))
        }
    }
}

fn find_close(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '}' => return Some(i),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Result<String> {
    let quote = s.chars().next().unwrap_or('"');
    let inner = s
        .strip_prefix(quote)
        .and_then(|r| r.strip_suffix(quote))
        .ok_or_else(|| JsonPathError::Parse(format!("unterminated string {s}")))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Ok(out)
}

fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => depth -= 1,
            (None, c) if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_path(expr: &str) -> Result<Vec<Segment>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    if chars.first().is_some_and(|c| *c == '$' || *c == '@') {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if chars.get(i + 1) == Some(&'.') {
                    segments.push(Segment::Recursive);
                    i += 2;
                } else {
                    i += 1;
                }
                if chars.get(i) == Some(&'*') {
                    segments.push(Segment::Wildcard);
                    i += 1;
                    continue;
                }
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                if !name.is_empty() {
                    segments.push(Segment::Field(name));
                }
            }
            '[' => {
                let start = i + 1;
                let mut depth = 1;
                let mut quote: Option<char> = None;
                i += 1;
                while i < chars.len() && depth > 0 {
                    match (quote, chars[i]) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '"' | '\'') => quote = Some(chars[i]),
                        (None, '[') => depth += 1,
                        (None, ']') => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                if depth != 0 {
                    return Err(JsonPathError::Parse(format!(
                        "unterminated array in {expr}"
                    )));
                }
                let inner: String = chars[start..i - 1].iter().collect();
                segments.push(parse_bracket(inner.trim(), expr)?);
            }
            c => {
                return Err(JsonPathError::Parse(format!(
                    "unrecognized character in action: {c:?}"
                )))
            }
        }
    }
    Ok(segments)
}

fn parse_bracket(inner: &str, expr: &str) -> Result<Segment> {
    if inner == "*" {
        return Ok(Segment::All);
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return Ok(Segment::Filter(Box::new(parse_filter(filter.trim())?)));
    }
    if inner.starts_with('\'') || inner.starts_with('"') {
        return Ok(Segment::Field(unquote(inner)?));
    }
    if inner.contains(':') {
        let parts: Vec<&str> = inner.split(':').collect();
        let num = |s: &str| -> Result<Option<i64>> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse()
                .map(Some)
                .map_err(|_| JsonPathError::Parse(format!("invalid array index {s:?}")))
        };
        return Ok(Segment::Slice(
            num(parts[0])?,
            num(parts.get(1).copied().unwrap_or(""))?,
            num(parts.get(2).copied().unwrap_or(""))?,
        ));
    }
    inner.parse::<i64>().map(Segment::Index).map_err(|_| {
        JsonPathError::Parse(format!(
            "error parsing jsonpath {expr}, invalid array index {inner:?}"
        ))
    })
}

fn parse_filter(filter: &str) -> Result<Filter> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some(pos) = filter.find(op) {
            return Ok(Filter {
                left: parse_operand(filter[..pos].trim())?,
                op: Some(op.to_string()),
                right: Some(parse_operand(filter[pos + op.len()..].trim())?),
            });
        }
    }
    Ok(Filter {
        left: parse_operand(filter)?,
        op: None,
        right: None,
    })
}

fn parse_operand(s: &str) -> Result<Operand> {
    if s.starts_with('@') || s.starts_with('$') || s.starts_with('.') {
        return Ok(Operand::Path(parse_path(s)?));
    }
    if s.starts_with('"') || s.starts_with('\'') {
        return Ok(Operand::Literal(Value::String(unquote(s)?)));
    }
    serde_json::from_str(s)
        .map(Operand::Literal)
        .map_err(|_| JsonPathError::Parse(format!("unrecognized filter operand {s:?}")))
}

fn eval_path(path: &[Segment], data: &Value, root: &Value) -> Result<Vec<Value>> {
    let mut current = vec![data.clone()];
    for seg in path {
        let mut next = Vec::new();
        for v in &current {
            apply(seg, v, root, &mut next)?;
        }
        current = next;
    }
    Ok(current)
}

fn apply(seg: &Segment, v: &Value, root: &Value, out: &mut Vec<Value>) -> Result<()> {
    match seg {
        Segment::Field(name) => {
            if let Some(x) = v.get(name.as_str()) {
                out.push(x.clone());
            }
        }
        Segment::Wildcard | Segment::All => match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.extend(keys.into_iter().map(|k| m[k].clone()));
            }
            Value::Array(items) => out.extend(items.iter().cloned()),
            _ => {}
        },
        Segment::Recursive => descendants(v, out),
        Segment::Index(i) => {
            if let Value::Array(items) = v {
                let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                match usize::try_from(idx).ok().and_then(|i| items.get(i)) {
                    Some(x) => out.push(x.clone()),
                    None => {
                        return Err(JsonPathError::OutOfBounds {
                            index: *i,
                            length: items.len(),
                        })
                    }
                }
            }
        }
        Segment::Slice(start, end, step) => {
            if let Value::Array(items) = v {
                let len = items.len() as i64;
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = norm(start.unwrap_or(0));
                let e = norm(end.unwrap_or(len));
                let step = step.unwrap_or(1).max(1);
                let mut i = s;
                while i < e {
                    out.push(items[i as usize].clone());
                    i += step;
                }
            }
        }
        Segment::Filter(filter) => {
            let candidates: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for item in candidates {
                if filter_matches(filter, item, root)? {
                    out.push(item.clone());
                }
            }
        }
    }
    Ok(())
}

fn descendants(v: &Value, out: &mut Vec<Value>) {
    out.push(v.clone());
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                descendants(&m[k], out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| descendants(x, out)),
        _ => {}
    }
}

fn operand_values(op: &Operand, item: &Value, root: &Value) -> Result<Vec<Value>> {
    match op {
        Operand::Literal(v) => Ok(vec![v.clone()]),
        Operand::Path(p) => eval_path(p, item, root),
    }
}

fn filter_matches(filter: &Filter, item: &Value, root: &Value) -> Result<bool> {
    let left = operand_values(&filter.left, item, root)?;
    let (Some(op), Some(right)) = (&filter.op, &filter.right) else {
        return Ok(!left.is_empty());
    };
    let right = operand_values(right, item, root)?;
    for l in &left {
        for r in &right {
            let ok = match op.as_str() {
                "==" => l == r,
                "!=" => l != r,
                _ => match (l.as_f64(), r.as_f64()) {
                    (Some(a), Some(b)) => match op.as_str() {
                        "<" => a < b,
                        ">" => a > b,
                        "<=" => a <= b,
                        _ => a >= b,
                    },
                    _ => false,
                },
            };
            if ok {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, data: &Value) -> String {
        JsonPath::parse(t)
            .and_then(|p| p.execute(data))
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn kubectl_templates() {
        let pod = json!({"metadata": {"name": "web", "labels": {"tier": "fe", "app": "web"}},
                         "spec": {"containers": [{"name": "c", "args": ["sleep", "3600"]}, {"name": "d"}]}});
        assert_eq!(
            run("{.metadata.labels}", &pod),
            r#"{"app":"web","tier":"fe"}"#
        );
        assert_eq!(
            run("{.metadata.name} {.spec.containers[*].name}", &pod),
            "web c d"
        );
        assert_eq!(
            run(r#"{.spec.containers[0].args}{"\n"}"#, &pod),
            "[\"sleep\",\"3600\"]\n"
        );
        assert_eq!(run("{.nope}|{.metadata.labels.app}", &pod), "|web");
        assert_eq!(run("{..name}", &pod), "web c d");
        assert_eq!(run("{.spec.containers[-1].name}", &pod), "d");
        assert_eq!(run("{.spec.containers[0:1].name}", &pod), "c");
        assert_eq!(
            run("{.spec.containers[5]}", &pod),
            "ERR array index out of bounds: index 5, length 2"
        );
        assert_eq!(
            run("{.metadata.name,.metadata.labels.tier}", &pod),
            "web fe"
        );
        assert_eq!(run("{.metadata.labels['app']}", &pod), "web");
    }

    #[test]
    fn range_and_filters() {
        let list = json!({"items": [
            {"metadata": {"name": "a"}, "status": {"phase": "Running"}, "n": 1},
            {"metadata": {"name": "b"}, "status": {"phase": "Pending"}, "n": 3}]});
        assert_eq!(
            run(
                r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
                &list
            ),
            "a\tRunning\nb\tPending\n"
        );
        assert_eq!(
            run(
                r#"{.items[?(@.status.phase=="Pending")].metadata.name}"#,
                &list
            ),
            "b"
        );
        assert_eq!(run("{.items[?(@.n>2)].metadata.name}", &list), "b");
        assert_eq!(run("{.items[?(@.n)].metadata.name}", &list), "a b");
        assert_eq!(relaxed(".metadata.name"), "{.metadata.name}");
        assert_eq!(relaxed("metadata.name"), "{.metadata.name}");
    }
}
