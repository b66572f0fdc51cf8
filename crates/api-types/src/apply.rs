//! Server-side apply and field ownership (`metadata.managedFields`), as upstream's
//! `apiserver/pkg/endpoints/handlers/fieldmanager` over structured-merge-diff:
//! an apply merges the configuration into the live object, removes fields the manager
//! applied before and dropped (unless someone else owns them), and fails with a 409
//! when it changes fields another manager owns — unless forced. Every other write
//! records the fields it changed for its manager and takes them from the others.

mod create;
pub mod fieldset;
mod walk;

use serde_json::{json, Map, Value};

use crate::patch::schema::{root_shape, FieldMeta, Shape};
use crate::{ApiError, ResourceInfo, StatusCause};
use fieldset::{FieldSet, Path, PathElement};

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    /// `""` for the main resource, `status`/`scale` for subresources.
    pub subresource: String,
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    fn same_manager(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// Upstream `printManager`: `"mgr"`, `"mgr" with subresource "status"`, `... using apps/v1`.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        // `omitempty`: a client with neither `fieldManager` nor a User-Agent.
        if !self.manager.is_empty() {
            m.insert("manager".into(), json!(self.manager));
        }
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Option<ManagedFieldsEntry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let fields = match v.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::default(),
        };
        Some(ManagedFieldsEntry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").unwrap_or_default(),
            fields,
        })
    }
}

/// The entries of an object's `metadata.managedFields` (malformed entries are skipped).
pub fn managed_fields(obj: &Value) -> Vec<ManagedFieldsEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(ManagedFieldsEntry::from_json).collect())
        .unwrap_or_default()
}

/// Writes entries sorted as upstream does (operation, time, manager, apiVersion,
/// subresource), dropping empty ones; removes the field when none are left.
fn set_managed_fields(obj: &mut Value, mut entries: Vec<ManagedFieldsEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedFieldsEntry::to_json).collect()),
        );
    }
}

fn field_path(parts: &[&str]) -> Vec<PathElement> {
    parts
        .iter()
        .map(|p| PathElement::Field((*p).to_string()))
        .collect()
}

/// Paths never owned by anyone (upstream `stripMetaManager`): only the node itself is
/// dropped, so `metadata.labels` stays owned while `metadata` does not.
const STRIPPED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

/// The top-level field a write to this endpoint may not touch (upstream reset fields):
/// `status` through the main resource of kinds with a status subresource, `spec`
/// through `/status`.
fn reset_field(info: &ResourceInfo, subresource: Option<&str>) -> Option<&'static str> {
    match subresource {
        Some("status") => Some("spec"),
        None | Some("") if info.status_is_subresource() => Some("status"),
        _ => None,
    }
}

fn owned_set(mut set: FieldSet, reset: Option<&str>) -> FieldSet {
    for p in STRIPPED {
        if let Some(node) = set.node(&field_path(p)) {
            if node.member {
                set.node_mut(&field_path(p)).member = false;
            }
        }
    }
    if let Some(r) = reset {
        set.remove_subtree(&field_path(&[r]));
    }
    set
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    crate::meta::remove_managed_fields(&mut obj);
    obj
}

fn root_meta(info: &ResourceInfo) -> FieldMeta {
    FieldMeta {
        shape: root_shape(info),
        tag: None,
    }
}

/// Applies `applied` (an apply configuration, already decoded from YAML) as `manager`.
/// `live` is `None` when the object does not exist yet (apply creates it). Returns the
/// merged object with `metadata.managedFields` updated. `subresource` is `Some("status")`
/// for applies to `/status`.
///
/// `metadata.resourceVersion` in the configuration is left in the result: the caller
/// checks it against the live object as upstream does.
// The Status error type is shared crate-wide; boxing it is status.rs's call.
#[allow(clippy::result_large_err)]
pub fn server_side_apply(
    info: &ResourceInfo,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
    subresource: Option<&str>,
) -> Result<Value, ApiError> {
    if manager.is_empty() {
        let mut cause = StatusCause::required("fieldManager");
        cause.message = "Required value: is required for apply patch".into();
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![cause],
        ));
    }
    let Value::Object(applied_map) = applied else {
        return Err(ApiError::bad_request(
            "apply configuration must be an object",
        ));
    };
    if let Some(kind) = applied_map.get("kind").and_then(Value::as_str) {
        if kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the apply configuration ({kind}) does not match the resource ({})",
                info.kind
            )));
        }
    }
    let subresource_name = subresource.unwrap_or("");
    let reset = reset_field(info, subresource);
    let shape = root_shape(info);

    let mut config = without_managed_fields(applied);
    if let (Some(r), Some(m)) = (reset, config.as_object_mut()) {
        m.shift_remove(r);
    }
    let live_clean = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    let mut entries = live.map(managed_fields).unwrap_or_default();

    let mut merged = walk::merge(Some(live_clean.clone()), &config, root_meta(info));
    let new_set = owned_set(walk::field_set(&config, shape), reset);

    let mine = entries
        .iter()
        .position(|e| e.same_manager(manager, "Apply", subresource_name));
    let last_set = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();
    let mut others = FieldSet::default();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != mine {
            others.union(&e.fields);
        }
    }

    // Fields this manager applied before and dropped now go, unless something at or
    // below them is still owned: by someone else, or by this configuration (a list
    // this manager owned as a whole, as kubectl's move from client-side apply makes it,
    // stays for the items the configuration still sets). Shallowest first: a dropped
    // list item goes whole, its fields with it. An item that stays keeps its key
    // fields, which are what names it: removing them first would leave the item
    // unfindable, and half there.
    let mut dropped = last_set.difference(&new_set).paths();
    dropped.sort_by_key(|p| p.0.len());
    let mut gone: Vec<Path> = Vec::new();
    for path in dropped {
        if gone.iter().any(|g| path.0.starts_with(&g.0)) || names_its_item(&path.0) {
            continue;
        }
        if !others.contains_prefix(&path.0) && !new_set.contains_prefix(&path.0) {
            walk::remove_path(&mut merged, &path.0, shape);
            gone.push(path);
        }
    }

    let comparison = walk::compare(&live_clean, &merged, shape);
    let changed = comparison.changed();
    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        for p in e.fields.intersection(&changed).paths() {
            conflicts.push((i, p));
        }
    }
    if !conflicts.is_empty() && !force && manager == KUBECTL {
        // Moving from client-side to server-side apply: kubectl may take over the
        // fields its last client-side apply set and nobody has changed since.
        let allowed = allowed_by_last_applied(&live_clean, shape);
        conflicts.retain(|(_, p)| !allowed.contains(&p.0));
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&entries, conflicts));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == mine {
            continue;
        }
        e.fields = e
            .fields
            .difference(&changed)
            .difference(&comparison.removed);
    }

    let entry = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: info.api_version(),
        time: Some(now.to_string()),
        subresource: subresource_name.to_string(),
        fields: new_set,
    };
    match mine {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    set_managed_fields(&mut merged, entries);
    if manager == KUBECTL {
        keep_last_applied_in_step(&mut merged, applied);
    }
    Ok(merged)
}

/// The manager name of `kubectl apply --server-side`, for which (and only which)
/// upstream bridges client-side apply's `last-applied-configuration` annotation.
const KUBECTL: &str = "kubectl";
/// The annotation in which client-side apply keeps the configuration it applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Upstream's `lastAppliedManager`: the fields of the object's last client-side
/// apply configuration whose live values still are what it set. Conflicts on these
/// are not conflicts for `kubectl`: it set them, with its other hat on.
fn allowed_by_last_applied(live: &Value, shape: &'static Shape) -> FieldSet {
    let Some(last) = live
        .pointer("/metadata/annotations")
        .and_then(|a| crate::meta::field(a, LAST_APPLIED))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return FieldSet::default();
    };
    let comparison = walk::compare(&last, live, shape);
    walk::field_set(&last, shape)
        .difference(&comparison.changed())
        .difference(&comparison.removed)
}

/// Upstream's `lastAppliedUpdater`: when the object keeps a client-side apply
/// annotation, a server-side apply by `kubectl` rewrites it to the configuration just
/// applied (without the annotation itself), so that a later client-side apply diffs
/// against it. Written as Go's encoder writes a map: keys sorted, then a newline.
fn keep_last_applied_in_step(merged: &mut Value, applied: &Value) {
    let Some(annotations) = merged
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if annotations
        .get(LAST_APPLIED)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return;
    }
    let mut config = applied.clone();
    if let Some(a) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.shift_remove(LAST_APPLIED);
    }
    let mut text = serde_json::to_string(&crate::json::sorted(&config)).unwrap_or_default();
    text.push('\n');
    annotations.insert(LAST_APPLIED.into(), Value::String(text));
}

/// Whether `path` is a key field of a list-map item (`...[name=x].name`).
fn names_its_item(path: &[PathElement]) -> bool {
    match path {
        [.., PathElement::Key(key), PathElement::Field(field)] => {
            fieldset::key_fields(key).is_some_and(|m| m.contains_key(field))
        }
        _ => false,
    }
}

/// Upstream `NewConflictError`: 409 Conflict with one `FieldManagerConflict` cause per
/// conflicting field.
fn conflict_error(entries: &[ManagedFieldsEntry], mut conflicts: Vec<(usize, Path)>) -> ApiError {
    let manager_order = |i: usize| {
        let e = &entries[i];
        (
            e.manager.clone(),
            e.operation.clone(),
            e.api_version.clone(),
            e.subresource.clone(),
        )
    };
    conflicts.sort_by(|a, b| {
        manager_order(a.0)
            .cmp(&manager_order(b.0))
            .then_with(|| a.1.cmp(&b.1))
    });
    let causes: Vec<StatusCause> = conflicts
        .iter()
        .map(|(i, p)| StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", entries[*i].describe()),
            field: p.to_string(),
        })
        .collect();
    let message = if let [(i, p)] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {p}",
            entries[*i].describe()
        )
    } else {
        let mut lines = Vec::new();
        let mut current: Option<usize> = None;
        for (i, p) in &conflicts {
            if current.is_none_or(|c| manager_order(c) != manager_order(*i)) {
                lines.push(format!("conflicts with {}:", entries[*i].describe()));
                current = Some(*i);
            }
            lines.push(format!("- {p}"));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut err = ApiError::new(409, "Conflict", message);
    err.causes = causes;
    err
}

/// Records field ownership for a non-apply write (create, update, patch) by `manager`:
/// the fields that changed from `old` (`None` on create) to `new` join the manager's
/// `operation` entry (normally `Update`) and leave every other manager; removed fields
/// leave everyone. `new.metadata.managedFields` is rewritten. If the client sent
/// managedFields different from the live ones they are taken as the starting point
/// (`[{}]` clears them), as upstream allows.
pub fn update_managed_fields(
    info: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    operation: &str,
    now: &str,
    subresource: Option<&str>,
) {
    let sent_entries = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    if old.is_none() && !sent_entries {
        // A create without managedFields of its own: one walk, no diff.
        if let Ok(entries) = created_entries_json(info, new, manager, operation, now, subresource) {
            if let Ok(entries) = entries.map(|b| serde_json::from_slice(&b)).transpose() {
                set_created_managed_fields(new, entries);
                return;
            }
        }
    }
    update_managed_fields_by_diff(info, old, new, manager, operation, now, subresource);
}

/// For a create whose body sent no `metadata.managedFields` key at all: the
/// `managedFields` value [`update_managed_fields`] would set, as the JSON bytes
/// serializing it gives (`Ok(None)`: none is set). The caller splices it in as the
/// last field of `metadata`, which is where the Value path appends it. `Err(())` when
/// only the general path can say (list items sharing a key, a non-object metadata).
#[allow(clippy::result_unit_err)]
pub fn created_managed_fields_json(
    info: &ResourceInfo,
    obj: &Value,
    manager: &str,
    operation: &str,
    now: &str,
    subresource: Option<&str>,
) -> Result<Option<Vec<u8>>, ()> {
    match obj.get("metadata") {
        Some(Value::Object(m)) if !m.contains_key("managedFields") => {}
        _ => return Err(()),
    }
    created_entries_json(info, obj, manager, operation, now, subresource).map_err(|_| ())
}

/// The one-entry `managedFields` list of a create as JSON (the entry [`set_managed_fields`]
/// would write, without building the [`FieldSet`] first); `None` when nothing is owned.
fn created_entries_json(
    info: &ResourceInfo,
    obj: &Value,
    manager: &str,
    operation: &str,
    now: &str,
    subresource: Option<&str>,
) -> Result<Option<Vec<u8>>, create::Duplicate> {
    let reset = reset_field(info, subresource);
    let Some(fields) = create::created_fields_v1(obj, root_shape(info), reset)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(fields.len() + 160);
    out.extend_from_slice(b"[{");
    if !manager.is_empty() {
        out.extend_from_slice(br#""manager":"#);
        crate::json::write_str(&mut out, manager);
        out.push(b',');
    }
    out.extend_from_slice(br#""operation":"#);
    crate::json::write_str(&mut out, operation);
    out.extend_from_slice(br#","apiVersion":"#);
    crate::json::write_str(&mut out, &info.api_version());
    out.extend_from_slice(br#","time":"#);
    crate::json::write_str(&mut out, now);
    out.extend_from_slice(br#","fieldsType":"FieldsV1","fieldsV1":"#);
    out.extend_from_slice(&fields);
    if let Some(sub) = subresource.filter(|s| !s.is_empty()) {
        out.extend_from_slice(br#","subresource":"#);
        crate::json::write_str(&mut out, sub);
    }
    out.extend_from_slice(b"}]");
    Ok(Some(out))
}

/// Sets a create's `managedFields` (removes the key when nothing is owned).
fn set_created_managed_fields(obj: &mut Value, entries: Option<Value>) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    match entries {
        Some(entries) => meta.insert("managedFields".into(), entries),
        None => meta.shift_remove("managedFields"),
    };
}

/// [`update_managed_fields`] through the general diff of `old` and `new`.
fn update_managed_fields_by_diff(
    info: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    operation: &str,
    now: &str,
    subresource: Option<&str>,
) {
    let subresource_name = subresource.unwrap_or("");
    let reset = reset_field(info, subresource);
    let shape = root_shape(info);
    let old_entries = old.map(managed_fields).unwrap_or_default();
    let sent = new.pointer("/metadata/managedFields").cloned();
    let old_sent = old.and_then(|o| o.pointer("/metadata/managedFields").cloned());
    let mut entries = match sent {
        Some(Value::Array(list))
            if Some(Value::Array(list.clone())) != old_sent && !list.is_empty() =>
        {
            list.iter()
                .filter_map(ManagedFieldsEntry::from_json)
                .collect()
        }
        _ => old_entries,
    };

    let old_clean = old.map(without_managed_fields).unwrap_or_else(|| json!({}));
    let new_clean = without_managed_fields(new);
    let comparison = walk::compare(&old_clean, &new_clean, shape);
    let changed = owned_set(comparison.changed(), reset);
    let removed = &comparison.removed;

    let mine = entries
        .iter()
        .position(|e| e.same_manager(manager, operation, subresource_name));
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != mine {
            e.fields = e.fields.difference(&changed).difference(removed);
        }
    }
    let mut fields = mine
        .map(|i| entries[i].fields.difference(removed))
        .unwrap_or_default();
    fields.union(&changed);
    let changed_anything = !changed.is_empty() || mine.is_none();
    let entry = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: operation.to_string(),
        api_version: info.api_version(),
        time: match mine {
            Some(i) if !changed_anything => entries[i].time.clone(),
            _ => Some(now.to_string()),
        },
        subresource: subresource_name.to_string(),
        fields,
    };
    match mine {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    set_managed_fields(new, entries);
}

#[cfg(test)]
mod tests;
