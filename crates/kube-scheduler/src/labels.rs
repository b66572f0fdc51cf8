//! Matching that the plugins share: label selectors, node selector terms and
//! tolerations, compiled once per pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, op: &str, values: &[String]) -> Option<Self> {
        let op = match op {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        };
        // Upstream `labels.NewRequirement` validation of the value count.
        let ok = match op {
            Op::In | Op::NotIn => !values.is_empty(),
            Op::Exists | Op::DoesNotExist => values.is_empty(),
            Op::Gt | Op::Lt => values.len() == 1 && values[0].parse::<i64>().is_ok(),
        };
        ok.then(|| Requirement {
            key: key.to_string(),
            op,
            values: values.to_vec(),
        })
    }

    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A compiled label selector (upstream `metav1.LabelSelectorAsSelector`): `None`
/// matches nothing, an empty selector everything, an invalid one nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    pub fn everything() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    pub fn from_map(map: &Labels) -> Self {
        Selector {
            requirements: map
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Self {
        let Some(sel) = sel else {
            return Self::nothing();
        };
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            requirements.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            if !matches!(
                e.operator.as_str(),
                "In" | "NotIn" | "Exists" | "DoesNotExist"
            ) {
                return Self::nothing();
            }
            match Requirement::new(&e.key, &e.operator, &values) {
                Some(r) => requirements.push(r),
                None => return Self::nothing(),
            }
        }
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// Adds `key == value` (upstream merges `matchLabelKeys` this way).
    pub fn and_equals(&mut self, key: &str, value: &str) {
        self.requirements.push(Requirement {
            key: key.to_string(),
            op: Op::In,
            values: vec![value.to_string()],
        });
    }

    /// Whether this is the selector that matches nothing.
    pub fn is_empty_nothing(&self) -> bool {
        self.nothing
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// One `nodeSelectorTerm`: its expressions on labels and fields ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Vec<Requirement>,
    /// `metadata.name` requirements (the only field upstream supports).
    fields: Vec<Requirement>,
    valid: bool,
}

fn compile_requirements(
    reqs: Option<&Vec<NodeSelectorRequirement>>,
    fields: bool,
) -> Option<Vec<Requirement>> {
    let mut out = Vec::new();
    for r in reqs.into_iter().flatten() {
        let values = r.values.clone().unwrap_or_default();
        if fields
            && (r.key != "metadata.name"
                || !matches!(r.operator.as_str(), "In" | "NotIn")
                || values.len() != 1)
        {
            return None;
        }
        out.push(Requirement::new(&r.key, &r.operator, &values)?);
    }
    Some(out)
}

impl NodeTerm {
    pub fn compile(term: &NodeSelectorTerm) -> Self {
        let labels = compile_requirements(term.match_expressions.as_ref(), false);
        let fields = compile_requirements(term.match_fields.as_ref(), true);
        match (labels, fields) {
            (Some(labels), Some(fields)) => {
                // A term with no requirements at all matches no objects.
                let valid = !(labels.is_empty() && fields.is_empty());
                NodeTerm {
                    labels,
                    fields,
                    valid,
                }
            }
            _ => NodeTerm {
                labels: Vec::new(),
                fields: Vec::new(),
                valid: false,
            },
        }
    }

    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if !self.valid {
            return false;
        }
        if !self.labels.iter().all(|r| r.matches(labels)) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        let mut name_labels = Labels::new();
        name_labels.insert("metadata.name".to_string(), node_name.to_string());
        self.fields.iter().all(|r| r.matches(&name_labels))
    }
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = tol.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = tol.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match tol.operator.as_deref().unwrap_or("") {
        "" | "Equal" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

pub fn tolerations_tolerate(tols: &[Toleration], taint: &Taint) -> bool {
    tols.iter().any(|t| tolerates(t, taint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .expect("selector");
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!Selector::from_label_selector(None).matches(&labels(&[])));
        assert!(
            Selector::from_label_selector(Some(&LabelSelector::default())).matches(&labels(&[]))
        );
    }

    #[test]
    fn node_terms_with_all_operators() {
        let term: NodeSelectorTerm = serde_json::from_value(json!({"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a", "b"]},
            {"key": "gpu", "operator": "DoesNotExist"},
            {"key": "disk", "operator": "Exists"},
            {"key": "cores", "operator": "Gt", "values": ["4"]},
            {"key": "age", "operator": "Lt", "values": ["10"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]}
        ]}))
        .expect("term");
        let t = NodeTerm::compile(&term);
        let good = labels(&[("zone", "a"), ("disk", "ssd"), ("cores", "8"), ("age", "3")]);
        assert!(t.matches("n", &good));
        let mut bad = good.clone();
        bad.insert("cores".into(), "4".into());
        assert!(!t.matches("n", &bad));
        let mut bad = good.clone();
        bad.insert("gpu".into(), "x".into());
        assert!(!t.matches("n", &bad));
        let mut bad = good.clone();
        bad.insert("env".into(), "prod".into());
        assert!(!t.matches("n", &bad));
        let mut bad = good;
        bad.insert("age".into(), "ten".into());
        assert!(!t.matches("n", &bad));
        let empty = NodeTerm::compile(&NodeSelectorTerm::default());
        assert!(!empty.matches("n", &labels(&[])));
    }

    #[test]
    fn match_fields_on_node_name() {
        let term: NodeSelectorTerm = serde_json::from_value(json!({"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n1"]}
        ]}))
        .expect("term");
        let t = NodeTerm::compile(&term);
        assert!(t.matches("n1", &labels(&[])));
        assert!(!t.matches("n2", &labels(&[])));
    }

    #[test]
    fn toleration_rules() {
        let taint: Taint =
            serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"}))
                .expect("taint");
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).expect("tol") };
        assert!(tolerates(&tol(json!({"key": "k", "value": "v"})), &taint));
        assert!(tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(&tol(json!({"key": "k", "value": "w"})), &taint));
        assert!(!tolerates(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }
}
