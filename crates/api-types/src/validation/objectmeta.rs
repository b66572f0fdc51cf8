//! `metadata` validation (upstream `ValidateObjectMeta` / `ValidateObjectMetaUpdate`).

use serde_json::Value;

use super::field::{forbidden, invalid, invalid_int, invalid_str, required, too_long, Path};
use super::names::{self, NameValidator};
use crate::status::StatusCause;

/// Upstream's `TotalAnnotationSizeLimitB`.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validates `metadata` of an object being created.
pub fn validate_object_meta(
    obj: &Value,
    namespaced: bool,
    name_fn: NameValidator,
    path: &Path,
) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let empty = Value::Object(Default::default());
    let meta = crate::meta::field(obj, "metadata").unwrap_or(&empty);
    let s = |k: &str| {
        crate::meta::field(meta, k)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };

    let generate_name = s("generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(invalid_str(
                &path.child("generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    let name = s("name");
    if name.is_empty() {
        errs.push(required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(invalid_str(&path.child("name"), name, &msg));
        }
    }
    let namespace = s("namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(required(&path.child("namespace"), ""));
        } else {
            for msg in names::name_is_dns_label(namespace, false) {
                errs.push(invalid_str(&path.child("namespace"), namespace, &msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(generation) = crate::meta::field(meta, "generation").and_then(Value::as_i64) {
        if generation < 0 {
            errs.push(invalid_int(
                &path.child("generation"),
                generation,
                super::IS_NEGATIVE_ERROR_MSG,
            ));
        }
    }
    errs.extend(validate_labels(
        crate::meta::field(meta, "labels"),
        &path.child("labels"),
    ));
    errs.extend(validate_annotations(
        crate::meta::field(meta, "annotations"),
        &path.child("annotations"),
    ));
    if let Some(finalizers) = crate::meta::field(meta, "finalizers").and_then(Value::as_array) {
        for f in finalizers.iter().filter_map(Value::as_str) {
            for msg in names::is_qualified_name(f) {
                errs.push(invalid_str(&path.child("finalizers"), f, &msg));
            }
        }
    }
    if let Some(refs) = crate::meta::field(meta, "ownerReferences").and_then(Value::as_array) {
        let refs_path = path.child("ownerReferences");
        for (i, r) in refs.iter().enumerate() {
            let rp = refs_path.index(i);
            for field in ["apiVersion", "kind", "name", "uid"] {
                if r.get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    let detail = match field {
                        "apiVersion" => "version must not be empty",
                        "kind" => "kind must not be empty",
                        "name" => "name must not be empty",
                        _ => "uid must not be empty",
                    };
                    errs.push(invalid(
                        &rp.child(field),
                        r.get(field).unwrap_or(&Value::String(String::new())),
                        detail,
                    ));
                }
            }
        }
    }
    errs
}

/// `ValidateLabels`: keys are qualified names, values label values; errors sit at `path`.
pub fn validate_labels(labels: Option<&Value>, path: &Path) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        for msg in names::is_qualified_name(k) {
            errs.push(invalid_str(path, k, &msg));
        }
        match v.as_str() {
            Some(v) => {
                for msg in names::is_valid_label_value(v) {
                    errs.push(invalid_str(path, v, &msg));
                }
            }
            None => errs.push(invalid(path, v, "label values must be strings")),
        }
    }
    errs
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitive), total size bounded.
pub fn validate_annotations(annotations: Option<&Value>, path: &Path) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in map {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid_str(path, k, &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields may not change.
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &Path) -> Vec<StatusCause> {
    let mut errs = Vec::new();
    let get = |o: &Value, k: &str| {
        crate::meta::field(o, "metadata")
            .and_then(|m| m.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        let (n, o) = (get(new, field), get(old, field));
        // A missing uid/creationTimestamp in the request is filled from the stored object
        // by the apiserver, so only a conflicting value is an error.
        let n_empty = n.is_null() || n.as_str() == Some("");
        if matches!(field, "uid" | "creationTimestamp") && n_empty {
            continue;
        }
        let o_empty = o.is_null() || o.as_str() == Some("");
        if n != o && !(n_empty && o_empty) {
            let shown = if n.is_null() {
                Value::String(String::new())
            } else {
                n
            };
            errs.push(invalid(&path.child(field), &shown, super::FIELD_IMMUTABLE));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_required_unless_generate_name() {
        let errs = validate_object_meta(
            &json!({"metadata": {"namespace": "d"}}),
            true,
            names::name_is_dns_subdomain,
            &Path::new("metadata"),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(
            errs[0].message,
            "Required value: name or generateName is required"
        );
        let errs = validate_object_meta(
            &json!({"metadata": {"namespace": "d", "generateName": "web-", "name": "web-abcde"}}),
            true,
            names::name_is_dns_subdomain,
            &Path::new("metadata"),
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn namespace_rules() {
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "n"}}),
            true,
            names::name_is_dns_subdomain,
            &Path::new("metadata"),
        );
        assert_eq!(errs[0].field, "metadata.namespace");
        assert_eq!(errs[0].message, "Required value");
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "n", "namespace": "x"}}),
            false,
            names::name_is_dns_subdomain,
            &Path::new("metadata"),
        );
        assert_eq!(errs[0].message, "Forbidden: not allowed on this type");
    }

    #[test]
    fn labels_and_annotations() {
        let errs = validate_labels(
            Some(&json!({"bad key": "v", "ok": "-bad"})),
            &Path::new("metadata.labels"),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|e| e.field == "metadata.labels"));
        assert!(errs[0]
            .message
            .starts_with("Invalid value: \"bad key\": name part must consist of"));
        assert!(errs[1]
            .message
            .starts_with("Invalid value: \"-bad\": a valid label must be an empty string"));
        let errs = validate_annotations(
            Some(&json!({"Example.com/X": "y"})),
            &Path::new("metadata.annotations"),
        );
        assert!(errs.is_empty());
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT + 1);
        let errs =
            validate_annotations(Some(&json!({"a": big})), &Path::new("metadata.annotations"));
        assert_eq!(errs[0].message, "Too long: must have at most 262144 bytes");
    }

    #[test]
    fn update_immutability() {
        let old = json!({"metadata": {"name": "a", "namespace": "d", "uid": "1"}});
        let new = json!({"metadata": {"name": "b", "namespace": "d"}});
        let errs = validate_object_meta_update(&new, &old, &Path::new("metadata"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(errs[0].message, "Invalid value: \"b\": field is immutable");
    }
}
