//! Computing strategic merge patches (upstream `CreateTwoWayMergePatch` and
//! `CreateThreeWayMergePatch`), for our kubectl's client-side `apply`, `edit`, `label`...

use serde_json::{Map, Value};

use super::schema::{field, FieldMeta, Shape};
use super::strategic::{
    merge_map_with, MergeOptions, DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE, RETAIN_KEYS,
    SET_ELEMENT_ORDER,
};
use super::PatchError;
use crate::{ApiError, ResourceInfo};

type Result<T, E = PatchError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, Default)]
struct DiffOptions {
    ignore_changes_and_additions: bool,
    ignore_deletions: bool,
    set_element_order: bool,
    build_retain_keys: bool,
}

/// The strategic merge patch turning `original` into `modified` (upstream
/// `CreateTwoWayMergePatch`).
#[allow(clippy::result_large_err)] // the crate-wide Status error
pub fn two_way_merge_patch(
    info: &ResourceInfo,
    original: &Value,
    modified: &Value,
) -> Result<Value, ApiError> {
    let opts = DiffOptions {
        set_element_order: true,
        ..DiffOptions::default()
    };
    let patch = diff_maps(
        as_map(original)?,
        as_map(modified)?,
        super::schema::root_shape(info),
        opts,
    )?;
    Ok(Value::Object(patch))
}

/// The patch `kubectl apply` sends (upstream `CreateThreeWayMergePatch` with
/// `overwrite`): changes from `current` (live) to `modified` (the new configuration)
/// without deletions, plus the deletions from `original` (the last applied
/// configuration) to `modified`.
#[allow(clippy::result_large_err)] // the crate-wide Status error
pub fn three_way_merge_patch(
    info: &ResourceInfo,
    original: &Value,
    modified: &Value,
    current: &Value,
) -> Result<Value, ApiError> {
    let shape = super::schema::root_shape(info);
    let delta = diff_maps(
        as_map(current)?,
        as_map(modified)?,
        shape,
        DiffOptions {
            ignore_deletions: true,
            set_element_order: true,
            ..DiffOptions::default()
        },
    )?;
    let deletions = diff_maps(
        as_map(original)?,
        as_map(modified)?,
        shape,
        DiffOptions {
            ignore_changes_and_additions: true,
            set_element_order: true,
            ..DiffOptions::default()
        },
    )?;
    let combine = MergeOptions {
        merge_parallel_list: false,
        ignore_unmatched_nulls: false,
    };
    Ok(Value::Object(merge_map_with(
        deletions, delta, shape, combine,
    )?))
}

fn as_map(v: &Value) -> Result<&Map<String, Value>> {
    static EMPTY: once_cell::sync::Lazy<Map<String, Value>> = once_cell::sync::Lazy::new(Map::new);
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(&EMPTY),
        _ => Err(PatchError::BadJsonDoc),
    }
}

fn diff_maps(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    shape: &'static Shape,
    opts: DiffOptions,
) -> Result<Map<String, Value>> {
    let mut patch = Map::new();
    let retain_keys: Vec<Value> = if opts.build_retain_keys {
        modified.keys().map(|k| Value::String(k.clone())).collect()
    } else {
        Vec::new()
    };
    let child_opts = DiffOptions {
        build_retain_keys: false,
        ..opts
    };
    for (key, modified_value) in modified {
        if key == DIRECTIVE {
            continue;
        }
        let Some(original_value) = original.get(key) else {
            if !opts.ignore_changes_and_additions {
                patch.insert(key.clone(), modified_value.clone());
            }
            continue;
        };
        let meta = field(shape, key);
        match (original_value, modified_value) {
            (Value::Object(o), Value::Object(m)) => {
                diff_map_field(key, o, m, meta, &mut patch, child_opts)?
            }
            (Value::Array(o), Value::Array(m)) => {
                diff_list_field(key, o, m, meta, &mut patch, child_opts)?
            }
            (o, m) => {
                if !opts.ignore_changes_and_additions && o != m {
                    patch.insert(key.clone(), m.clone());
                }
            }
        }
    }
    if !opts.ignore_deletions {
        for key in original.keys() {
            if !modified.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
    }
    let has_new_field = original.keys().any(|k| !modified.contains_key(k));
    if !retain_keys.is_empty() && (!patch.is_empty() || has_new_field) {
        let mut sorted = retain_keys;
        sorted.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
        patch.insert(RETAIN_KEYS.into(), Value::Array(sorted));
    }
    Ok(patch)
}

fn diff_map_field(
    key: &str,
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    meta: FieldMeta,
    patch: &mut Map<String, Value>,
    opts: DiffOptions,
) -> Result<()> {
    let retain = meta
        .tag
        .is_some_and(|t| t.strategy.split(',').any(|s| s == "retainKeys"));
    if meta.replaces() {
        if !opts.ignore_changes_and_additions && original != modified {
            let mut m = modified.clone();
            m.insert(DIRECTIVE.into(), Value::String("replace".into()));
            patch.insert(key.to_string(), Value::Object(m));
        }
        return Ok(());
    }
    let child = diff_maps(
        original,
        modified,
        meta.shape,
        DiffOptions {
            build_retain_keys: retain,
            ..opts
        },
    )?;
    if !child.is_empty() {
        patch.insert(key.to_string(), Value::Object(child));
    }
    Ok(())
}

fn diff_list_field(
    key: &str,
    original: &[Value],
    modified: &[Value],
    meta: FieldMeta,
    patch: &mut Map<String, Value>,
    opts: DiffOptions,
) -> Result<()> {
    if !meta.merges_list() {
        if !opts.ignore_changes_and_additions && original != modified {
            patch.insert(key.to_string(), Value::Array(modified.to_vec()));
        }
        return Ok(());
    }
    let (add, delete, order) = diff_lists(original, modified, meta, opts)?;
    if !add.is_empty() {
        patch.insert(key.to_string(), Value::Array(add));
    }
    if !delete.is_empty() {
        patch.insert(
            format!("{DELETE_FROM_PRIMITIVE_LIST}/{key}"),
            Value::Array(delete),
        );
    }
    if !order.is_empty() {
        patch.insert(format!("{SET_ELEMENT_ORDER}/{key}"), Value::Array(order));
    }
    Ok(())
}

type ListDiff = (Vec<Value>, Vec<Value>, Vec<Value>);

/// Upstream `diffLists`: the patch list, the parallel deletion list (scalars only) and
/// the `$setElementOrder` list.
fn diff_lists(
    original: &[Value],
    modified: &[Value],
    meta: FieldMeta,
    opts: DiffOptions,
) -> Result<ListDiff> {
    if original.is_empty() {
        if modified.is_empty() || opts.ignore_changes_and_additions {
            return Ok((Vec::new(), Vec::new(), Vec::new()));
        }
        return Ok((modified.to_vec(), Vec::new(), Vec::new()));
    }
    if original.iter().chain(modified).any(Value::is_array) {
        return Err(PatchError::NoListOfLists);
    }
    if original.iter().chain(modified).all(Value::is_object) {
        let key = meta
            .merge_key()
            .ok_or_else(|| PatchError::Other("cannot merge lists without merge key".into()))?;
        let (mut patch_list, deletions) = diff_lists_of_maps(original, modified, meta, key, opts)?;
        sort_by(&mut patch_list, modified, |v| v.get(key));
        let order_same = original.len() == modified.len()
            && original
                .iter()
                .zip(modified)
                .all(|(o, m)| o.get(key) == m.get(key));
        patch_list.extend(deletions);
        let changes = !patch_list.is_empty();
        let order = if opts.set_element_order
            && ((!opts.ignore_changes_and_additions && (changes || !order_same))
                || (!opts.ignore_deletions && changes))
        {
            modified
                .iter()
                .map(|m| {
                    let mut o = Map::new();
                    o.insert(key.to_string(), m.get(key).cloned().unwrap_or(Value::Null));
                    Value::Object(o)
                })
                .collect()
        } else {
            Vec::new()
        };
        return Ok((patch_list, Vec::new(), order));
    }
    let mut add: Vec<Value> = Vec::new();
    let mut delete: Vec<Value> = Vec::new();
    if !opts.ignore_changes_and_additions {
        add = modified
            .iter()
            .filter(|m| !original.contains(m))
            .cloned()
            .collect();
        sort_by(&mut add, modified, |v| Some(v));
    }
    if !opts.ignore_deletions {
        for o in original {
            if !modified.contains(o) && !delete.contains(o) {
                delete.push(o.clone());
            }
        }
    }
    let order = if opts.set_element_order
        && ((!opts.ignore_deletions && !delete.is_empty())
            || (!opts.ignore_changes_and_additions && original != modified))
    {
        modified.to_vec()
    } else {
        Vec::new()
    };
    Ok((add, delete, order))
}

fn sort_by<F>(items: &mut [Value], order: &[Value], ident: F)
where
    F: Fn(&Value) -> Option<&Value> + Copy,
{
    items.sort_by_key(|v| {
        let id = ident(v).cloned();
        order
            .iter()
            .position(|o| ident(o).cloned() == id)
            .unwrap_or(usize::MAX)
    });
}

/// Changed and added items (recursive patches carrying the merge key), and
/// `$patch: delete` items for removed ones.
fn diff_lists_of_maps(
    original: &[Value],
    modified: &[Value],
    meta: FieldMeta,
    key: &str,
    opts: DiffOptions,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut patch = Vec::new();
    let mut deletions = Vec::new();
    let no_key = |m: &Value| PatchError::NoMergeKey(m.to_string(), key.to_string());
    for m in modified {
        let mk = m.get(key).ok_or_else(|| no_key(m))?;
        match original.iter().find(|o| o.get(key) == Some(mk)) {
            Some(o) => {
                let (Value::Object(om), Value::Object(mm)) = (o, m) else {
                    continue;
                };
                let mut p = diff_maps(om, mm, meta.elem(), opts)?;
                if !p.is_empty() {
                    p.insert(key.to_string(), mk.clone());
                    patch.push(Value::Object(p));
                }
            }
            None => {
                if !opts.ignore_changes_and_additions {
                    patch.push(m.clone());
                }
            }
        }
    }
    if !opts.ignore_deletions {
        for o in original {
            let ok = o.get(key).ok_or_else(|| no_key(o))?;
            if !modified.iter().any(|m| m.get(key) == Some(ok)) {
                let mut d = Map::new();
                d.insert(key.to_string(), ok.clone());
                d.insert(DIRECTIVE.into(), Value::String("delete".into()));
                deletions.push(Value::Object(d));
            }
        }
    }
    Ok((patch, deletions))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::patch::{apply_patch, PatchType};
    use crate::registry::lookup_kind;

    fn deployments() -> &'static ResourceInfo {
        lookup_kind("apps/v1", "Deployment").expect("deployments registered")
    }

    fn dep(image: &str, replicas: i64, extra_label: Option<&str>) -> Value {
        let mut labels = json!({"app": "web"});
        if let Some(l) = extra_label {
            labels[l] = json!("x");
        }
        json!({
            "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "nginx", "image": image}, {"name": "side", "image": "busybox"}
            ]}}}
        })
    }

    #[test]
    fn two_way_patch_round_trips() {
        let original = dep("nginx:1", 2, Some("old"));
        let modified = dep("nginx:2", 2, None);
        let patch = two_way_merge_patch(deployments(), &original, &modified).expect("diff");
        assert_eq!(patch["metadata"]["labels"], json!({"old": null}));
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:2"}])
        );
        assert_eq!(
            patch["spec"]["template"]["spec"]["$setElementOrder/containers"],
            json!([{"name": "nginx"}, {"name": "side"}])
        );
        let out = apply_patch(deployments(), &original, PatchType::StrategicMerge, &patch)
            .expect("apply");
        assert_eq!(out, modified);
    }

    #[test]
    fn three_way_patch_keeps_live_only_changes_and_deletes_dropped_fields() {
        // Last applied had label "old" and container "side"; the new config drops both;
        // the live object has a label added by someone else and a scaled replica count.
        let original = dep("nginx:1", 2, Some("old"));
        let mut modified = dep("nginx:2", 2, None);
        modified["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "nginx", "image": "nginx:2"}]);
        let mut current = dep("nginx:1", 2, Some("old"));
        current["metadata"]["labels"]["someone"] = json!("else");
        let patch =
            three_way_merge_patch(deployments(), &original, &modified, &current).expect("diff");
        let out =
            apply_patch(deployments(), &current, PatchType::StrategicMerge, &patch).expect("apply");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "someone": "else"})
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "nginx", "image": "nginx:2"}])
        );
    }
}
