//! `kubectl apply -f`: client-side apply (the `last-applied-configuration`
//! annotation and a three-way strategic merge patch) or `--server-side`.

use http::Method;
use serde_json::{json, Value};

use crate::cmd::create::{
    clear_resource_version, send, with_source, DryRun, ValidateArgs, WriteOptions,
};
use crate::cmd::{finish, manifest_target};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::manifest::{FilenameArgs, Manifest};
use crate::printers::json::sorted;
use crate::resource::ApiResource;

pub use api_types::apply::LAST_APPLIED;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub files: FilenameArgs,
    #[command(flatten)]
    pub write: WriteOptions,
    #[command(flatten)]
    pub validate: ValidateArgs,
    /// If true, apply runs in the server instead of the client.
    #[arg(long)]
    pub server_side: bool,
    /// If true, server-side apply will force the changes against conflicts.
    #[arg(long)]
    pub force_conflicts: bool,
}

pub async fn run(ctx: &Context, args: ApplyArgs) -> Result<()> {
    if args.files.is_empty() {
        return Err(Error::usage("must specify one of -f and -k"));
    }
    let manifests = args.files.read()?;
    let mut errors = Vec::new();
    for m in manifests {
        let result = if args.server_side {
            apply_server_side(ctx, &args, m).await
        } else {
            apply_client_side(ctx, &args.write, &args.validate, m).await
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    finish(errors)
}

/// The object with the annotation holding its own configuration (upstream
/// `GetModifiedConfiguration`): compact JSON, keys sorted, a final newline.
pub fn with_last_applied(object: &Value) -> Result<Value> {
    let mut config = object.clone();
    if !config["metadata"]["annotations"].is_object() {
        config["metadata"]["annotations"] = json!({});
    }
    if let Some(a) = config["metadata"]["annotations"].as_object_mut() {
        a.remove(LAST_APPLIED);
    }
    let text = serde_json::to_string(&sorted(&config))? + "\n";
    let mut modified = config;
    modified["metadata"]["annotations"][LAST_APPLIED] = json!(text);
    Ok(modified)
}

fn registry_info(resource: &ApiResource) -> Option<&'static api_types::ResourceInfo> {
    api_types::registry::lookup(&resource.group, &resource.version, &resource.name)
}

async fn apply_client_side(
    ctx: &Context,
    write: &WriteOptions,
    validate: &ValidateArgs,
    m: Manifest,
) -> Result<()> {
    // Checked before any request, as upstream's Complete does.
    let query = validate.add_to(write.query("kubectl-client-side-apply")?)?;
    let discovery = ctx.discovery().await?;
    let (resource, namespace) = manifest_target(ctx, discovery, &m)?;
    let mut object = m.object.clone();
    if resource.namespaced {
        object["metadata"]["namespace"] = json!(namespace);
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let modified = with_last_applied(&object)?;
    let client = ctx.client().await?;
    let path = resource.object_path(&namespace, &name);
    let current = match client.get(&path).await {
        Ok(current) => current,
        Err(e) if e.is_not_found() => {
            if write.dry_run()? == DryRun::Client {
                return write.report(&modified, "created");
            }
            let create_path = format!("{}{query}", resource.collection_path(Some(&namespace)));
            let mut modified = modified;
            clear_resource_version(&mut modified);
            let created = send::write(
                client,
                Method::POST,
                &create_path,
                "application/json",
                serde_json::to_vec(&modified)?,
            )
            .await
                .map_err(|e| with_source(e, "creating", &m.source))?;
            return write.report(&created, "created");
        }
        Err(e) => {
            return Err(with_source(
                e,
                &format!(
                    "retrieving current configuration of:\nResource: \"{}\", GroupVersionKind: \"{}\"\nName: \"{name}\", Namespace: \"{namespace}\"\nfrom server for:",
                    resource.qualified_name(),
                    gvk(&resource)
                ),
                &m.source,
            ))
        }
    };
    if current["metadata"]["annotations"][LAST_APPLIED].is_null() {
        eprintln!(
            "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively by either kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically.",
            resource.name
        );
    }
    let original: Value = current["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| json!({}));
    let (patch, content_type) = match registry_info(&resource) {
        Some(info) => (
            api_types::patch::three_way_merge_patch(info, &original, &modified, &current)
                .map_err(|e| Error::usage(format!("creating patch: {}", e.message)))?,
            "application/strategic-merge-patch+json",
        ),
        None => (
            json_merge_three_way(&original, &modified, &current),
            "application/merge-patch+json",
        ),
    };
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        return write.report(&current, "unchanged");
    }
    if write.dry_run()? == DryRun::Client {
        return write.report(&current, "configured");
    }
    let patch_path = format!("{path}{query}");
    let patched = send::write(
        client,
        Method::PATCH,
        &patch_path,
        content_type,
        serde_json::to_vec(&patch)?,
    )
    .await
    .map_err(|e| with_source(e, "applying patch:\n", &m.source))?;
    write.report(&patched, "configured")
}

fn gvk(resource: &ApiResource) -> String {
    format!(
        "{}/{}, Kind={}",
        resource.group, resource.version, resource.kind
    )
}

/// A JSON merge patch from `current` to `modified` plus the deletions from
/// `original` (for types without strategic merge metadata).
fn json_merge_three_way(original: &Value, modified: &Value, current: &Value) -> Value {
    fn diff(from: &Value, to: &Value, deletions_from: Option<&Value>) -> Value {
        let mut out = serde_json::Map::new();
        if let (Some(f), Some(t)) = (from.as_object(), to.as_object()) {
            for (k, tv) in t {
                match f.get(k) {
                    Some(fv) if fv == tv => {}
                    Some(fv) if fv.is_object() && tv.is_object() => {
                        let orig = deletions_from.and_then(|o| o.get(k));
                        let d = diff(fv, tv, orig);
                        if d.as_object().is_some_and(|m| !m.is_empty()) {
                            out.insert(k.clone(), d);
                        }
                    }
                    _ => {
                        out.insert(k.clone(), tv.clone());
                    }
                }
            }
        }
        if let (Some(o), Some(t)) = (deletions_from.and_then(Value::as_object), to.as_object()) {
            for k in o.keys() {
                if !t.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
        }
        Value::Object(out)
    }
    diff(current, modified, Some(original))
}

async fn apply_server_side(ctx: &Context, args: &ApplyArgs, m: Manifest) -> Result<()> {
    let discovery = ctx.discovery().await?;
    let (resource, namespace) = manifest_target(ctx, discovery, &m)?;
    let mut object = m.object.clone();
    if resource.namespaced {
        object["metadata"]["namespace"] = json!(namespace);
    }
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let client = ctx.client().await?;
    let manager = args.write.field_manager.as_deref().unwrap_or("kubectl");
    let mut path = format!(
        "{}?fieldManager={}&force={}",
        resource.object_path(&namespace, &name),
        crate::client::encode(manager),
        args.force_conflicts
    );
    if args.write.dry_run()? == DryRun::Server {
        path.push_str("&dryRun=All");
    }
    let path = args.validate.add_to(path)?;
    let applied = send::write(
        client,
        Method::PATCH,
        &path,
        "application/apply-patch+yaml",
        serde_json::to_vec(&object)?,
    )
    .await
    .map_err(|e| match e {
        Error::Server(s) if s.code == 409 => conflict_error(&s.message),
        other => with_source(other, "patching", &m.source),
    })?;
    args.write.report(&applied, "serverside-applied")
}

/// Upstream `apply` turns a server-side apply conflict into a plain error
/// with advice on resolving it (no `Error from server` prefix).
fn conflict_error(message: &str) -> Error {
    Error::usage(format!(
        "{message}
Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_applied_is_sorted_compact_json_with_newline() {
        let obj = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}});
        let m = with_last_applied(&obj).expect("annotate");
        assert_eq!(
            m["metadata"]["annotations"][LAST_APPLIED],
            "{\"apiVersion\":\"v1\",\"data\":{\"k\":\"v\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"a\",\"namespace\":\"default\"}}\n"
        );
    }

    #[test]
    fn merge_three_way_deletes_what_was_applied_before() {
        let original = json!({"data": {"a": "1", "b": "2"}});
        let modified = json!({"data": {"a": "1", "c": "3"}});
        let current = json!({"data": {"a": "1", "b": "2", "x": "live"}, "metadata": {"uid": "u"}});
        assert_eq!(
            json_merge_three_way(&original, &modified, &current),
            json!({"data": {"c": "3", "b": null}})
        );
    }
}
