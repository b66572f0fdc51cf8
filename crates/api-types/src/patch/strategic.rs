//! Applying a strategic merge patch, as upstream `strategicpatch.StrategicMergeMapPatch`
//! (`MergeParallelList` and `IgnoreUnmatchedNulls` on).

use serde_json::{Map, Value};

use super::schema::{field, FieldMeta, Shape};
use super::PatchError;

pub(crate) const DIRECTIVE: &str = "$patch";
pub(crate) const RETAIN_KEYS: &str = "$retainKeys";
pub(crate) const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
pub(crate) const SET_ELEMENT_ORDER: &str = "$setElementOrder";

type Result<T, E = PatchError> = std::result::Result<T, E>;

/// Upstream `MergeOptions`. Applying a patch sets both; combining two patches (the
/// three-way patch) sets neither, which keeps directives and nulls in the result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergeOptions {
    /// Process `$deleteFromPrimitiveList`, `$retainKeys` and `$setElementOrder` (rather
    /// than carry them over).
    pub merge_parallel_list: bool,
    /// Drop `null`s that match nothing (rather than keep them as deletions).
    pub ignore_unmatched_nulls: bool,
}

pub(crate) const APPLY: MergeOptions = MergeOptions {
    merge_parallel_list: true,
    ignore_unmatched_nulls: true,
};

/// Merges `patch` into `original` for a value of shape `shape`.
pub(crate) fn merge_map(
    original: Map<String, Value>,
    patch: Map<String, Value>,
    shape: &'static Shape,
) -> Result<Map<String, Value>> {
    merge_map_with(original, patch, shape, APPLY)
}

pub(crate) fn merge_map_with(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    shape: &'static Shape,
    opts: MergeOptions,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                if opts.merge_parallel_list {
                    // Applying: the replacement itself may not leave directives behind.
                    merge_map_with(Map::new(), patch, shape, opts)
                } else {
                    Ok(patch)
                }
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(PatchError::BadPatchType(directive.to_string())),
        };
    }

    apply_retain_keys(&mut original, &mut patch, opts)?;
    merge_set_element_order(&mut original, &mut patch, shape, opts)?;

    for (key, patch_value) in patch {
        if !opts.merge_parallel_list && key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            original.insert(key, patch_value);
            continue;
        }
        let (key, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(k) => (k.to_string(), true),
                None => return Err(PatchError::BadPrimitiveListFormat),
            },
            None => (key, false),
        };
        if patch_value.is_null() {
            original.shift_remove(&key);
            if !opts.ignore_unmatched_nulls {
                original.insert(key, Value::Null);
            }
            continue;
        }
        let meta = field(shape, &key);
        let Some(current) = original.get_mut(&key) else {
            if !opts.merge_parallel_list {
                original.insert(key, patch_value);
            } else if !is_delete_list {
                let added = merge_value(None, patch_value, meta, false, opts)?;
                original.insert(key, added);
            }
            continue;
        };
        let taken = std::mem::take(current);
        *current = merge_value(Some(taken), patch_value, meta, is_delete_list, opts)?;
    }
    Ok(original)
}

/// Merges one field's patch value into its current value (`None` when absent).
fn merge_value(
    current: Option<Value>,
    patch: Value,
    meta: FieldMeta,
    is_delete_list: bool,
    opts: MergeOptions,
) -> Result<Value> {
    match (current, patch) {
        (Some(Value::Object(orig)), Value::Object(p)) => {
            if meta.replaces() {
                Ok(Value::Object(merge_map_with(
                    Map::new(),
                    p,
                    meta.shape,
                    opts,
                )?))
            } else {
                Ok(Value::Object(merge_map_with(orig, p, meta.shape, opts)?))
            }
        }
        (None, Value::Object(p)) => Ok(Value::Object(merge_map_with(
            Map::new(),
            p,
            meta.shape,
            opts,
        )?)),
        (Some(Value::Array(orig)), Value::Array(p)) => {
            if meta.merges_list() {
                Ok(Value::Array(merge_list(
                    orig,
                    p,
                    meta,
                    is_delete_list,
                    opts,
                )?))
            } else {
                Ok(Value::Array(p))
            }
        }
        (None, Value::Array(p)) if meta.merges_list() => {
            Ok(Value::Array(merge_list(Vec::new(), p, meta, false, opts)?))
        }
        (_, p) => Ok(p),
    }
}

/// `$retainKeys`: drop every key of `original` the directive does not list.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    opts: MergeOptions,
) -> Result<()> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    if !opts.merge_parallel_list {
        // Combining patches: both must agree; carry the directive over.
        match original.get(RETAIN_KEYS) {
            Some(existing) if *existing != retain => {
                return Err(PatchError::Other(format!(
                    "{existing} and {retain} are not deep equal: this may happen when calculating the 3-way diff patch"
                )))
            }
            Some(_) => {}
            None => {
                original.insert(RETAIN_KEYS.into(), retain);
            }
        }
        return Ok(());
    }
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeysFormat);
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::BadRetainKeysFormat);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge that list and order it as the directive says.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    shape: &'static Shape,
    opts: MergeOptions,
) -> Result<()> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(order) = patch.shift_remove(&directive_key) else {
            continue;
        };
        if !opts.merge_parallel_list {
            match original.get(&directive_key) {
                Some(existing) if *existing != order => {
                    return Err(PatchError::BadSetElementOrderFormat)
                }
                Some(_) => {}
                None => {
                    original.insert(directive_key.clone(), order.clone());
                }
            }
        }
        let Value::Array(order) = order else {
            return Err(PatchError::BadSetElementOrderFormat);
        };
        let key = directive_key
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or(PatchError::BadSetElementOrderFormat)?
            .to_string();
        let meta = field(shape, &key);
        let merge_key = meta.merge_key();
        let original_list = match original.get(&key) {
            Some(Value::Array(l)) => Some(l.clone()),
            Some(_) => return Err(PatchError::BadSetElementOrderFormat),
            None => None,
        };
        let patch_list = match patch.shift_remove(&key) {
            Some(Value::Array(l)) => Some(l),
            Some(_) => return Err(PatchError::BadSetElementOrderFormat),
            None => None,
        };
        if let Some(p) = &patch_list {
            validate_patch_with_set_order(p, &order, merge_key)?;
        }
        let merged = match (original_list.clone(), patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => match merge_value(None, Value::Array(p), meta, false, opts)? {
                Value::Array(l) => l,
                _ => continue,
            },
            (Some(o), Some(p)) => {
                match merge_value(Some(Value::Array(o)), Value::Array(p), meta, false, opts)? {
                    Value::Array(l) => l,
                    _ => continue,
                }
            }
            (None, None) => continue,
        };
        let (patch_items, server_only) = partition(merged, &order, merge_key)?;
        let server_order = original_list.unwrap_or_default();
        let both =
            normalize_element_order(patch_items, server_only, &order, &server_order, merge_key)?;
        original.insert(key, Value::Array(both));
    }
    Ok(())
}

/// The relative order of the patch list must agree with `$setElementOrder`.
fn validate_patch_with_set_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = patch.iter().filter(|v| !has_directive(v)).collect();
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if identity(non_delete[pi], merge_key)? == identity(&order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() {
        return Err(PatchError::Other(format!(
            "The order in patch list:\n{}\n doesn't match $setElementOrder list:\n{}\n",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn has_directive(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.contains_key(DIRECTIVE))
}

/// The value a list element is matched by: its merge key for maps, itself for scalars.
fn identity<'a>(item: &'a Value, merge_key: Option<&str>) -> Result<&'a Value> {
    match (item, merge_key) {
        (Value::Object(m), Some(k)) => m.get(k).ok_or_else(|| no_merge_key(m, k)),
        (Value::Object(_), None) => Err(PatchError::Other(
            "cannot merge lists without merge key for type map".into(),
        )),
        (Value::Array(_), _) => Err(PatchError::NoListOfLists),
        (scalar, _) => Ok(scalar),
    }
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::NoMergeKey(Value::Object(m.clone()).to_string(), key.to_string())
}

fn position(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    let wanted = identity(item, merge_key).ok()?;
    list.iter()
        .position(|v| identity(v, merge_key).ok() == Some(wanted))
}

/// Merges a list with a `merge` patch strategy.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
    is_delete_list: bool,
    opts: MergeOptions,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let all_maps = original.iter().chain(&patch).all(Value::is_object);
    let any_map = original.iter().chain(&patch).any(Value::is_object);
    if original.iter().chain(&patch).any(Value::is_array) {
        return Err(PatchError::NoListOfLists);
    }
    if any_map && !all_maps {
        return Err(PatchError::Other(
            "list element types are not identical".into(),
        ));
    }

    if !all_maps {
        if is_delete_list && opts.merge_parallel_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(&patch) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (patch_items, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(patch_items, server_only, &patch, &original, None);
    }

    let key = meta.merge_key().ok_or_else(|| {
        PatchError::Other("cannot merge lists without merge key for type map".into())
    })?;
    let (original, patch) = merge_special_elements(original, patch, key)?;
    let mut merged = original.clone();
    for item in &patch {
        let Value::Object(p) = item else { continue };
        let value = p.get(key).ok_or_else(|| no_merge_key(p, key))?;
        let found = merged
            .iter()
            .position(|o| o.as_object().and_then(|o| o.get(key)) == Some(value));
        match found {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut merged[i]) else {
                    continue;
                };
                merged[i] = Value::Object(merge_map_with(o, p.clone(), meta.elem(), opts)?);
            }
            None if !opts.merge_parallel_list => merged.push(item.clone()),
            None => merged.push(Value::Object(merge_map(
                Map::new(),
                p.clone(),
                meta.elem(),
            )?)),
        }
    }
    let (patch_items, server_only) = partition(merged, &patch, Some(key))?;
    normalize_element_order(patch_items, server_only, &patch, &original, Some(key))
}

/// Handles `$patch: delete|replace` elements; returns the list to merge into and the
/// patch without those elements.
fn merge_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = &item else {
            plain.push(item);
            continue;
        };
        match m.get(DIRECTIVE) {
            None => plain.push(item),
            Some(d) => match d.as_str() {
                Some("delete") => {
                    let value = m.get(key).ok_or_else(|| no_merge_key(m, key))?;
                    original.retain(|o| o.as_object().and_then(|o| o.get(key)) != Some(value));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(PatchError::Other(
                        "merging lists cannot yet be specified in the patch".into(),
                    ))
                }
                _ => return Err(PatchError::BadPatchType(d.to_string())),
            },
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Splits `list` into items present in `by` and the rest (server-only items).
fn partition(
    list: Vec<Value>,
    by: &[Value],
    merge_key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = Vec::new();
    let mut server_only = Vec::new();
    for item in list {
        identity(&item, merge_key)?;
        if position(by, &item, merge_key).is_some() {
            present.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((present, server_only))
}

/// Orders patch items by `patch_order`, server-only items by `server_order`, then
/// interleaves them keeping the live order where both are known (upstream
/// `normalizeElementOrder` + `mergeSortedSlice`).
fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>> {
    sort_by_order(&mut patch_items, patch_order, merge_key);
    sort_by_order(&mut server_only, server_order, merge_key);
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let li = position(server_order, l, merge_key);
                let ri = position(server_order, r, merge_key);
                match (li, ri) {
                    (Some(li), Some(ri)) if li < ri => out.extend(left.next()),
                    _ => out.extend(right.next()),
                }
            }
        }
    }
    Ok(out)
}

fn sort_by_order(items: &mut [Value], order: &[Value], merge_key: Option<&str>) {
    // Items missing from `order` keep their place relative to each other at the end.
    items.sort_by_key(|v| position(order, v, merge_key).unwrap_or(usize::MAX));
}
