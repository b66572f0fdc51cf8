//! Resource lists (`{"cpu": "500m", "memory": "1Gi"}`) and their arithmetic, as
//! upstream's `k8s.io/apiserver/pkg/quota/v1` helpers, plus a pod's aggregate requests
//! and limits (component-helpers' `PodRequests`/`PodLimits`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::quantity::{format_bytes, Format, ParsedQuantity};

/// A quantity held exactly in thousandths, remembering whether it prints in binary
/// units (`Mi`, `Gi`), as upstream's `Quantity` keeps its format through arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qty {
    pub milli: i128,
    pub binary: bool,
}

impl Qty {
    /// Parses a quantity string (`500m`, `1Gi`); `None` when it is not one.
    pub fn parse(s: &str) -> Option<Qty> {
        let q = ParsedQuantity::parse(s).ok()?;
        Some(Qty {
            milli: i128::from(q.milli_value()),
            binary: q.format() == Format::BinarySI,
        })
    }

    /// A plain count (`pods=1`).
    pub fn count(n: i64) -> Qty {
        Qty {
            milli: i128::from(n) * 1000,
            binary: false,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli == 0
    }

    /// The format of `self`, or of `other` when `self` is zero: upstream's
    /// `Quantity.Add`/`Sub` adopt the other operand's format on a zero receiver, so
    /// `0 + 512Mi` prints `512Mi`.
    fn format_with(self, other: Qty) -> bool {
        if self.is_zero() {
            other.binary
        } else {
            self.binary
        }
    }

    /// `self + other`, as `Quantity.Add`.
    pub fn plus(self, other: Qty) -> Qty {
        Qty {
            milli: self.milli.saturating_add(other.milli),
            binary: self.format_with(other),
        }
    }

    /// `self - other`, as `Quantity.Sub`.
    pub fn minus(self, other: Qty) -> Qty {
        Qty {
            milli: self.milli.saturating_sub(other.milli),
            binary: self.format_with(other),
        }
    }
}

impl fmt::Display for Qty {
    /// Upstream's canonical form (`Quantity.String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.binary && self.milli % 1000 == 0 {
            if let Ok(bytes) = i64::try_from(self.milli / 1000) {
                return f.write_str(&format_bytes(bytes));
            }
        }
        match ParsedQuantity::parse(&format!("{}m", self.milli)) {
            Ok(q) => f.write_str(&q.canonical()),
            Err(_) => write!(f, "{}m", self.milli),
        }
    }
}

/// Resource name → quantity, sorted by name.
pub type ResourceList = BTreeMap<String, Qty>;

/// Parses a JSON resource list; unparsable quantities are skipped (validation rejects
/// them before quota code sees the object).
pub fn parse_list(v: Option<&Value>) -> ResourceList {
    let mut out = ResourceList::new();
    for (k, q) in v.and_then(Value::as_object).into_iter().flatten() {
        let parsed = match q {
            Value::String(s) => Qty::parse(s),
            Value::Number(n) => Qty::parse(&n.to_string()),
            _ => None,
        };
        if let Some(q) = parsed {
            out.insert(k.clone(), q);
        }
    }
    out
}

/// The JSON form of a list, quantities in canonical strings.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.to_string())))
            .collect::<Map<_, _>>(),
    )
}

/// `a + b` per key (keys of either side), as `quota.Add`.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        out.entry(k.clone())
            .and_modify(|v| *v = v.plus(*q))
            .or_insert(*q);
    }
    out
}

/// `a - b` per key of `a`, never below zero (`SubtractWithNonNegativeResult`).
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    a.iter()
        .map(|(k, q)| {
            let mut v = match b.get(k) {
                Some(o) => q.minus(*o),
                None => *q,
            };
            if v.milli < 0 {
                v.milli = 0;
            }
            (k.clone(), v)
        })
        .collect()
}

/// Per-key maximum of two lists; on a tie `a`'s entry stays (component-helpers'
/// `maxResourceList`).
pub fn max(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        if out.get(k).is_none_or(|v| v.milli < q.milli) {
            out.insert(k.clone(), *q);
        }
    }
    out
}

/// Only the keys in `names`.
pub fn mask(list: &ResourceList, names: &BTreeSet<String>) -> ResourceList {
    list.iter()
        .filter(|(k, _)| names.contains(*k))
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

/// The list without zero quantities.
pub fn remove_zeros(list: &ResourceList) -> ResourceList {
    list.iter()
        .filter(|(_, q)| !q.is_zero())
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

/// The resource names of a list.
pub fn names(list: &ResourceList) -> BTreeSet<String> {
    list.keys().cloned().collect()
}

/// Same names with equal values, whatever their formats (`quota.Equals`).
pub fn equals(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, q)| b.get(k).is_some_and(|o| o.milli == q.milli))
}

/// Whether every key of `a` that `b` also has is `<=` (`LessThanOrEqual`), and the keys
/// that are not.
pub fn less_than_or_equal(a: &ResourceList, b: &ResourceList) -> (bool, BTreeSet<String>) {
    let exceeded: BTreeSet<String> = b
        .iter()
        .filter(|(k, limit)| a.get(*k).is_some_and(|v| v.milli > limit.milli))
        .map(|(k, _)| k.clone())
        .collect();
    (exceeded.is_empty(), exceeded)
}

/// `cpu=1,memory=1Gi` (sorted by name), upstream's `prettyPrint`.
pub fn pretty_print(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={q}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A container's `resources.requests` and `resources.limits`.
pub fn container_resources(container: &Value) -> (ResourceList, ResourceList) {
    let res = container.get("resources");
    (
        parse_list(res.and_then(|r| r.get("requests"))),
        parse_list(res.and_then(|r| r.get("limits"))),
    )
}

/// A pod's effective requests (or limits, `bucket = "limits"`): the sum over containers
/// and restartable (sidecar) init containers, at least as large as any regular init
/// container plus the sidecars started before it, plus `spec.overhead` when
/// `with_overhead` — component-helpers' `PodRequests`.
pub fn pod_aggregate(pod: &Value, bucket: &str, with_overhead: bool) -> ResourceList {
    let spec = pod.get("spec");
    let list = |c: &Value| parse_list(c.get("resources").and_then(|r| r.get(bucket)));
    let containers = |field: &str| {
        spec.and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let mut sum = ResourceList::new();
    for c in containers("containers") {
        sum = add(&sum, &list(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in containers("initContainers") {
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars = add(&sidecars, &list(c));
            init_max = max(&init_max, &sidecars);
        } else {
            init_max = max(&init_max, &add(&list(c), &sidecars));
        }
    }
    let mut out = max(&add(&sum, &sidecars), &init_max);
    if with_overhead {
        out = add(&out, &parse_list(spec.and_then(|s| s.get("overhead"))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(v: Value) -> ResourceList {
        parse_list(Some(&v))
    }

    fn qty(s: &str) -> Qty {
        Qty::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn arithmetic_keeps_formats_and_prints_canonically() {
        let a = list(json!({"cpu": "500m", "memory": "1Gi", "pods": "2"}));
        let b = list(json!({"cpu": "1", "memory": "512Mi", "pods": "1"}));
        let sum = add(&a, &b);
        assert_eq!(pretty_print(&sum), "cpu=1500m,memory=1536Mi,pods=3");
        assert_eq!(
            to_json(&sum),
            json!({"cpu": "1500m", "memory": "1536Mi", "pods": "3"})
        );
        assert_eq!(sum["cpu"].to_string(), "1500m");
        assert_eq!(
            add(&sum, &list(json!({"cpu": "500m"})))["cpu"].to_string(),
            "2"
        );
        let d = subtract_non_negative(&b, &a);
        assert_eq!(pretty_print(&d), "cpu=500m,memory=0,pods=0");
        assert_eq!(pretty_print(&remove_zeros(&d)), "cpu=500m");
        assert_eq!(Qty::count(0).to_string(), "0");
        assert_eq!(list(json!({"pods": 3, "x": "bad", "y": true})).len(), 1);
    }

    #[test]
    fn zero_adopts_the_other_operands_format() {
        // Upstream `Quantity.Add`: a zero receiver takes the addend's format, so a quota
        // whose usage starts at "0" records "512Mi", not "536870912".
        assert_eq!(Qty::count(0).plus(qty("512Mi")).to_string(), "512Mi");
        let z = add(
            &list(json!({"memory": "0"})),
            &list(json!({"memory": "1Gi"})),
        );
        assert_eq!(pretty_print(&z), "memory=1Gi");
        assert_eq!(
            to_json(&add(&z, &list(json!({"memory": "512Mi"})))),
            json!({"memory": "1536Mi"})
        );
        // `Quantity.Sub` does the same.
        assert_eq!(Qty::count(0).minus(qty("-1Ki")).to_string(), "1Ki");
        // A non-zero receiver keeps its own format.
        assert_eq!(qty("1000").plus(qty("1Ki")).to_string(), "2024");
        assert_eq!(qty("1Ki").plus(qty("1000")).to_string(), "2024");
        assert_eq!(qty("2Ki").minus(qty("1000")).to_string(), "1048");
    }

    #[test]
    fn comparisons_ignore_formats() {
        let used = list(json!({"pods": "3", "cpu": "1"}));
        let hard = list(json!({"pods": "2", "cpu": "2", "memory": "1Gi"}));
        let (ok, exceeded) = less_than_or_equal(&used, &hard);
        assert!(!ok);
        assert_eq!(
            exceeded.into_iter().collect::<Vec<_>>(),
            vec!["pods".to_string()]
        );
        assert!(less_than_or_equal(&list(json!({"pods": "2"})), &hard).0);
        assert!(equals(
            &list(json!({"memory": "512Mi", "cpu": "1"})),
            &list(json!({"memory": "536870912", "cpu": "1000m"}))
        ));
        assert!(!equals(&used, &list(json!({"pods": "3"}))));
        assert!(!equals(&used, &list(json!({"pods": "3", "cpu": "2"}))));
        let m = max(&used, &hard);
        assert_eq!(pretty_print(&m), "cpu=2,memory=1Gi,pods=3");
        let names: BTreeSet<String> = ["cpu".to_string()].into();
        assert_eq!(pretty_print(&mask(&m, &names)), "cpu=2");
    }

    #[test]
    fn pod_aggregate_sums_containers_and_maxes_init_containers() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
            ],
            "initContainers": [
                {"name": "init", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}
            ],
            "overhead": {"cpu": "10m"}
        }});
        assert_eq!(
            pretty_print(&pod_aggregate(&pod, "requests", false)),
            "cpu=1,memory=64Mi"
        );
        assert_eq!(
            pretty_print(&pod_aggregate(&pod, "requests", true)),
            "cpu=1010m,memory=64Mi"
        );
        assert!(pod_aggregate(&pod, "limits", false).is_empty());
    }

    #[test]
    fn pod_aggregate_counts_sidecars_before_init_containers() {
        let pod = json!({"spec": {
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "init", "resources": {"requests": {"cpu": "500m"}}}
            ]
        }});
        // max(100m + 200m, 200m + 500m)
        assert_eq!(
            pretty_print(&pod_aggregate(&pod, "requests", true)),
            "cpu=700m"
        );
    }
}
