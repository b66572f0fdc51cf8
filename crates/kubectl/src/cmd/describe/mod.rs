//! `kubectl describe`: upstream's per-kind describers, one file per kind, on top of
//! the shared writer and pod-template blocks.

pub mod apps;
pub mod batch;
pub mod configmap;
pub mod endpoints;
pub mod events;
pub mod generic;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod rbac;
pub mod secret;
pub mod service;
pub mod template;
pub mod workloads;
pub mod writer;

use serde_json::Value;

use crate::cmd::{list_query, name_of, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::resource::ApiResource;

#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// TYPE [NAME_PREFIX] or TYPE/NAME
    pub resources: Vec<String>,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// If true, display events related to the described object.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub show_events: bool,
}

/// Metadata fields every describer reads.
pub fn field<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// An integer field, 0 when absent (Go's zero value).
pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// An int-or-string field (`maxUnavailable: 25%` or `1`) as printed; `absent` when
/// unset (the describers differ: upstream prints a nil pointer or a zero value).
pub fn int_or_string(v: &Value, absent: &str) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => absent.to_string(),
    }
}

/// A list of strings (non-strings read as empty).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The entries of a JSON object sorted by key (Go describers sort map keys);
/// none when `v` is not an object.
pub fn sorted_entries(v: &Value) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = v
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// The bytes of a base64 (`[]byte`) field; empty when absent or not base64.
pub fn base64_bytes(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap_or_default()
}

/// `Kind/Name` of the controlling owner, as upstream's `printController`.
pub fn controller(obj: &Value) -> Option<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| {
            format!(
                "{}/{}",
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            )
        })
}

/// `labels.FormatLabels`: sorted `k=v` joined by commas, `<none>` when empty.
pub fn format_labels(map: &Value) -> String {
    let mut pairs: Vec<String> = map
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs.join(",")
}

/// The describer of a kind (upstream's generic one for kinds without).
async fn describe_one(
    ctx: &Context,
    resource: &ApiResource,
    obj: &Value,
    show_events: bool,
) -> Result<String> {
    let events = if show_events {
        Some(events::for_object(ctx, resource, obj).await?)
    } else {
        None
    };
    let events = events.as_ref();
    let text = match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => pod::describe(obj, events),
        ("apps", "Deployment") => workloads::deployment(ctx, obj, events).await?,
        ("apps", "ReplicaSet") => workloads::replica_set(ctx, obj, events).await?,
        ("", "ReplicationController") => {
            workloads::replication_controller(ctx, obj, events).await?
        }
        ("", "Service") => service::describe(ctx, obj, events).await?,
        ("", "ConfigMap") => configmap::describe(obj, events),
        ("", "Secret") => secret::secret(obj),
        ("", "ServiceAccount") => secret::service_account(ctx, obj, events).await?,
        ("", "Endpoints") => endpoints::endpoints(obj, events),
        ("discovery.k8s.io", "EndpointSlice") => endpoints::endpoint_slice(obj, events),
        ("apps", "DaemonSet") => apps::daemon_set(ctx, obj, events).await?,
        ("apps", "StatefulSet") => apps::stateful_set(ctx, obj, events).await?,
        ("batch", "Job") => batch::job(obj, events),
        ("batch", "CronJob") => batch::cron_job(obj, events),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => rbac::role(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => rbac::binding(obj),
        ("", "Namespace") => namespace::describe(ctx, obj).await?,
        ("", "Node") => node::describe(ctx, resource, obj, events).await?,
        _ => {
            // upstream's generic describer GETs the object: items of a list
            // lack apiVersion and kind
            let mut obj = obj.clone();
            if obj["apiVersion"].is_null() {
                obj["apiVersion"] = Value::String(resource.api_version());
            }
            if obj["kind"].is_null() {
                obj["kind"] = Value::String(resource.kind.clone());
            }
            generic::describe(&obj, events)
        }
    };
    Ok(text)
}

async fn list(
    ctx: &Context,
    resource: &ApiResource,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Value>> {
    let client = ctx.client().await?;
    let path = format!(
        "{}{}",
        resource.collection_path(namespace),
        list_query(selector, None)
    );
    let list = client.get(&path).await?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    let kind = &resource.kind;
    for item in &mut items {
        if item["kind"].is_null() {
            item["kind"] = Value::String(kind.clone());
        }
    }
    Ok(items)
}

pub async fn run(ctx: &Context, args: DescribeArgs) -> Result<()> {
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &args.resources)?;
    if targets.is_empty() {
        return Err(Error::usage("You must specify the type of resource to describe. Use \"kubectl api-resources\" for a complete list of supported resources."));
    }
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let list_ns = (!args.all_namespaces).then_some(namespace.as_str());
    let type_name_form = args.resources.len() == 2 && !args.resources[0].contains('/');
    let mut objects: Vec<(ApiResource, Value)> = Vec::new();
    let mut errors = Vec::new();
    let mut listed_empty = false;
    // upstream prints prefix matches each followed by a newline instead
    let mut prefix_matched = false;
    for target in &targets {
        if target.names.is_empty() {
            let items = list(ctx, &target.resource, list_ns, args.selector.as_deref()).await?;
            listed_empty |= items.is_empty();
            objects.extend(items.into_iter().map(|o| (target.resource.clone(), o)));
            continue;
        }
        for name in &target.names {
            match client
                .get(&target.resource.object_path(&namespace, name))
                .await
            {
                Ok(obj) => objects.push((target.resource.clone(), obj)),
                Err(e) if e.is_not_found() && type_name_form => {
                    // upstream: describe everything whose name starts with NAME
                    let items = list(ctx, &target.resource, Some(&namespace), None).await?;
                    let matching: Vec<Value> = items
                        .into_iter()
                        .filter(|o| name_of(o).starts_with(name.as_str()))
                        .collect();
                    if matching.is_empty() {
                        errors.push(e);
                    }
                    prefix_matched = true;
                    objects.extend(matching.into_iter().map(|o| (target.resource.clone(), o)));
                }
                Err(e) => errors.push(e),
            }
        }
    }
    let mut first = true;
    for (resource, obj) in &objects {
        let text = describe_one(ctx, resource, obj, args.show_events).await?;
        if prefix_matched {
            println!("{text}");
        } else if first {
            print!("{text}");
            first = false;
        } else {
            print!("\n\n{text}");
        }
    }
    if objects.is_empty() && errors.is_empty() && listed_empty {
        if args.all_namespaces || !targets.iter().all(|t| t.resource.namespaced) {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {namespace} namespace.");
        }
    }
    crate::cmd::finish(errors)
}
