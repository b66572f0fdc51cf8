//! Container resource requirements (upstream `ValidateContainerResourceRequirements`).

use serde_json::Value;

use super::field::{invalid_shown, invalid_str, Path};
use super::{names, IS_NEGATIVE_ERROR_MSG};
use crate::quantity::ParsedQuantity;
use crate::status::StatusCause;

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Native resources (no domain, or `kubernetes.io/`) other than hugepages may be overcommitted.
fn is_overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

fn is_extended_resource_name(name: &str) -> bool {
    if !name.contains('/') || name.starts_with("kubernetes.io/") || name.starts_with("requests.") {
        return false;
    }
    names::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn validate_resource_name(name: &str, path: &Path, errs: &mut Vec<StatusCause>) {
    let msgs = names::is_qualified_name(name);
    if !msgs.is_empty() {
        for msg in msgs {
            errs.push(invalid_str(path, name, &msg));
        }
        return;
    }
    if !is_standard_container_resource(name) && !is_extended_resource_name(name) {
        errs.push(invalid_str(
            path,
            name,
            "must be a standard resource for containers",
        ));
    }
}

/// Parses every quantity of a ResourceList, reporting unparsable and negative ones.
fn parse_list<'a>(
    list: Option<&'a Value>,
    path: &Path,
    errs: &mut Vec<StatusCause>,
) -> Vec<(&'a str, ParsedQuantity)> {
    let mut out = Vec::new();
    let Some(map) = list.and_then(Value::as_object) else {
        return out;
    };
    for (name, raw) in map {
        let key_path = path.key(name);
        validate_resource_name(name, &key_path, errs);
        let text = match raw {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        match ParsedQuantity::parse(&text) {
            Ok(q) => {
                if q.is_negative() {
                    errs.push(invalid_str(
                        &key_path,
                        &q.canonical(),
                        IS_NEGATIVE_ERROR_MSG,
                    ));
                }
                out.push((name.as_str(), q));
            }
            Err(e) => errs.push(invalid_str(&key_path, &text, &e.to_string())),
        }
    }
    out
}

/// `resources.limits` / `resources.requests` of one container.
pub fn validate_resource_requirements(resources: Option<&Value>, path: &Path) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let Some(resources) = resources else {
        return errs;
    };
    let limits = parse_list(
        crate::meta::field(resources, "limits"),
        &path.child("limits"),
        &mut errs,
    );
    let requests_path = path.child("requests");
    let requests = parse_list(
        crate::meta::field(resources, "requests"),
        &requests_path,
        &mut errs,
    );
    for (name, req) in &requests {
        let Some((_, limit)) = limits.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let ord = req.cmp_value(limit);
        // The shown value is built only for an error.
        let req_path = || requests_path.key(name);
        let shown = || format!("{:?}", req.canonical());
        if ord != std::cmp::Ordering::Equal && !is_overcommit_allowed(name) {
            errs.push(invalid_shown(
                &req_path(),
                &shown(),
                &format!("must be equal to {name} limit of {}", limit.canonical()),
            ));
        } else if ord == std::cmp::Ordering::Greater {
            errs.push(invalid_shown(
                &req_path(),
                &shown(),
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    limit.canonical()
                ),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_must_not_exceed_limits() {
        let errs = validate_resource_requirements(
            Some(
                &json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "1", "memory": "64Mi"}}),
            ),
            &Path::new("spec.containers[0].resources"),
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "spec.containers[0].resources.requests[cpu]");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
        );
    }

    #[test]
    fn bad_quantities_and_names() {
        let errs = validate_resource_requirements(
            Some(
                &json!({"limits": {"cpu": "lots", "memory": "-1", "foo": "1"}, "requests": {"example.com/gpu": "1"}}),
            ),
            &Path::new("r"),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"r.limits[cpu]"));
        assert!(errs.iter().any(|e| e
            .message
            .contains("quantities must match the regular expression")));
        assert!(errs
            .iter()
            .any(|e| e.field == "r.limits[memory]" && e.message.ends_with(IS_NEGATIVE_ERROR_MSG)));
        assert!(errs.iter().any(|e| e.field == "r.limits[foo]"
            && e.message
                .ends_with("must be a standard resource for containers")));
        assert!(!fields.contains(&"r.requests[example.com/gpu]"), "{errs:?}");
    }

    #[test]
    fn extended_resources_must_be_equal() {
        let errs = validate_resource_requirements(
            Some(
                &json!({"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}}),
            ),
            &Path::new("r"),
        );
        assert_eq!(
            errs[0].message,
            "Invalid value: \"1\": must be equal to example.com/gpu limit of 2"
        );
    }
}
