//! Label and field selectors with upstream's syntax (`k8s.io/apimachinery/pkg/labels`
//! and `.../fields`): parsing, matching, and the per-resource set of selectable fields.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::validation::names;

mod field;
pub use field::{selectable_subset, FieldRequirement, FieldSelector};

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    #[error("invalid field selector: {0}")]
    FieldEscape(String),
    #[error("{0}")]
    LabelSelector(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Result<Self, SelectorError> {
        let key_errs = names::is_qualified_name(key);
        if !key_errs.is_empty() {
            return Err(SelectorError::Requirement(format!(
                "invalid label key \"{key}\": {}",
                key_errs.join("; ")
            )));
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(SelectorError::Requirement(
                    "for 'in', 'notin' operators, values set can't be empty".into(),
                ));
            }
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                return Err(SelectorError::Requirement(
                    "exact-match compatibility requires one single value".into(),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError::Requirement(
                    "values set must be empty for exists and does not exist".into(),
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(SelectorError::Requirement(
                        "for 'Gt', 'Lt' operators, exactly one value is required".into(),
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(SelectorError::Requirement(
                        "for 'Gt', 'Lt' operators, the value must be an integer".into(),
                    ));
                }
            }
            _ => {}
        }
        if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for v in &values {
                let errs = names::is_valid_label_value(v);
                if !errs.is_empty() {
                    return Err(SelectorError::Requirement(format!(
                        "invalid label value: \"{v}\": at key: \"{key}\": {}",
                        errs.join("; ")
                    )));
                }
            }
        }
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = self.values.join(",");
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, joined),
            Operator::NotEquals => write!(f, "{}!={}", self.key, joined),
            Operator::In => write!(f, "{} in ({})", self.key, joined),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, joined),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, joined),
            Operator::LessThan => write!(f, "{}<{}", self.key, joined),
        }
    }
}

/// A label selector: all requirements must hold; no requirements match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) => f.write_str(s),
            Token::Not => f.write_str("!"),
            Token::Eq => f.write_str("="),
            Token::DoubleEq => f.write_str("=="),
            Token::NotEq => f.write_str("!="),
            Token::Gt => f.write_str(">"),
            Token::Lt => f.write_str("<"),
            Token::Open => f.write_str("("),
            Token::Close => f.write_str(")"),
            Token::Comma => f.write_str(","),
        }
    }
}

fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '!' if next == Some('=') => {
                out.push(Token::NotEq);
                i += 2;
            }
            '!' => {
                out.push(Token::Not);
                i += 1;
            }
            '=' if next == Some('=') => {
                out.push(Token::DoubleEq);
                i += 2;
            }
            '=' => {
                out.push(Token::Eq);
                i += 1;
            }
            '>' => {
                out.push(Token::Gt);
                i += 1;
            }
            '<' => {
                out.push(Token::Lt);
                i += 1;
            }
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"!=<>(),".contains(chars[i])
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
        }
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn found(t: Option<&Token>) -> String {
        t.map_or_else(|| "end of string".to_string(), Token::to_string)
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let err = |msg: String| SelectorError::Requirement(msg);
        let negated = if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            true
        } else {
            false
        };
        let key = match self.next() {
            Some(Token::Ident(k)) => k,
            other => {
                let expected = if negated {
                    "identifier"
                } else {
                    "!, identifier"
                };
                return Err(err(format!(
                    "found '{}', expected: {expected}",
                    Self::found(other.as_ref())
                )));
            }
        };
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        let op = match self.peek() {
            None | Some(Token::Comma) => {
                return Requirement::new(&key, Operator::Exists, Vec::new())
            }
            Some(Token::Ident(w)) if w == "in" => Operator::In,
            Some(Token::Ident(w)) if w == "notin" => Operator::NotIn,
            Some(Token::Eq) | Some(Token::DoubleEq) => Operator::Equals,
            Some(Token::NotEq) => Operator::NotEquals,
            Some(Token::Gt) => Operator::GreaterThan,
            Some(Token::Lt) => Operator::LessThan,
            other => {
                return Err(err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    Self::found(other)
                )));
            }
        };
        self.pos += 1;
        let values = if matches!(op, Operator::In | Operator::NotIn) {
            match self.next() {
                Some(Token::Open) => {}
                other => {
                    return Err(err(format!(
                        "found '{}', expected: '('",
                        Self::found(other.as_ref())
                    )))
                }
            }
            let mut values = Vec::new();
            loop {
                match self.next() {
                    Some(Token::Ident(v)) => {
                        values.push(v);
                        match self.next() {
                            Some(Token::Comma) => continue,
                            Some(Token::Close) => break,
                            other => {
                                return Err(err(format!(
                                    "found '{}', expected: ',' or ')'",
                                    Self::found(other.as_ref())
                                )))
                            }
                        }
                    }
                    // `a in ()` and `a in (x,)` carry empty values, as upstream allows.
                    Some(Token::Close) => {
                        if !values.is_empty() {
                            values.push(String::new());
                        }
                        break;
                    }
                    Some(Token::Comma) => values.push(String::new()),
                    other => {
                        return Err(err(format!(
                            "found '{}', expected: ',', ')' or identifier",
                            Self::found(other.as_ref())
                        )))
                    }
                }
            }
            values
        } else {
            match self.peek() {
                Some(Token::Ident(v)) => {
                    let v = v.clone();
                    self.pos += 1;
                    vec![v]
                }
                // `a=` selects an empty value.
                None | Some(Token::Comma)
                    if matches!(op, Operator::Equals | Operator::NotEquals) =>
                {
                    vec![String::new()]
                }
                other => {
                    return Err(err(format!(
                        "found '{}', expected: identifier",
                        Self::found(other)
                    )))
                }
            }
        };
        Requirement::new(&key, op, values)
    }
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (x,y),!f,g`.
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let mut parser = Parser {
            tokens: lex(s),
            pos: 0,
        };
        let mut requirements = Vec::new();
        if parser.tokens.is_empty() {
            return Ok(LabelSelector::default());
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                None => break,
                Some(Token::Comma) => {}
                Some(other) => {
                    return Err(SelectorError::Requirement(format!(
                        "found '{other}', expected: ',' or 'end of string'"
                    )))
                }
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// A `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`). An empty
    /// object (or `null`) matches everything; callers decide what a missing selector means.
    pub fn from_label_selector_json(sel: &Value) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if sel.is_null() {
            return Ok(LabelSelector::default());
        }
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                let v = v.as_str().ok_or_else(|| {
                    SelectorError::LabelSelector(format!(
                        "matchLabels value for {k:?} must be a string"
                    ))
                })?;
                requirements.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let op_name = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let op = match op_name {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError::LabelSelector(format!(
                            "{other:?} is not a valid label selector operator"
                        )))
                    }
                };
                requirements.push(Requirement::new(key, op, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// The equality selector of a map (ReplicationController and Service selectors).
    pub fn from_map(labels: &BTreeMap<String, String>) -> LabelSelector {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector { requirements }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(Requirement::to_string)
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_full_label_syntax() {
        let s = LabelSelector::parse(
            "app=web,tier==front,env!=prod,zone in (a, b),region notin (x),has,!gone",
        )
        .expect("parses");
        assert_eq!(s.requirements().len(), 7);
        let l = labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("zone", "b"),
            ("region", "y"),
            ("has", ""),
        ]);
        assert!(s.matches(&l));
        let mut l2 = l.clone();
        l2.insert("gone".into(), "1".into());
        assert!(!s.matches(&l2));
        let mut l3 = l.clone();
        l3.insert("env".into(), "prod".into());
        assert!(!s.matches(&l3));
        let mut l4 = l;
        l4.insert("zone".into(), "c".into());
        assert!(!s.matches(&l4));
        assert_eq!(
            s.to_string(),
            "app=web,env!=prod,!gone,has,region notin (x),tier=front,zone in (a,b)"
        );
    }

    #[test]
    fn gt_lt_and_empty() {
        let s = LabelSelector::parse("n>3,m<10").expect("parses");
        assert!(s.matches(&labels(&[("n", "4"), ("m", "9")])));
        assert!(!s.matches(&labels(&[("n", "3"), ("m", "9")])));
        let empty = LabelSelector::parse("").expect("parses");
        assert!(empty.is_empty());
        assert!(empty.matches(&labels(&[])));
        assert!(LabelSelector::parse("a=")
            .expect("parses")
            .matches(&labels(&[("a", "")])));
    }

    #[test]
    fn rejects_bad_label_selectors() {
        for bad in [
            "a b",
            "a in b",
            "a in (b",
            "=a",
            "a=b c",
            "bad key!=x",
            "a=-x",
            "n>x",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
        let e = LabelSelector::parse("a b").expect_err("fails");
        assert_eq!(
            e.to_string(),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn metav1_label_selector() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ]});
        let s = LabelSelector::from_label_selector_json(&sel).expect("valid");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a"), ("gone", "x")])));
        assert!(LabelSelector::from_label_selector_json(&json!({}))
            .expect("valid")
            .matches(&labels(&[])));
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]});
        assert!(LabelSelector::from_label_selector_json(&bad).is_err());
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert!(LabelSelector::from_label_selector_json(&bad).is_err());
    }
}
