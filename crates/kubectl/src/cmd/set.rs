//! `kubectl set image|env|resources`: edit the containers of a pod or of a
//! workload's pod template, then write the object back (nothing is sent, and
//! nothing printed, when the edit changes nothing).

use std::collections::BTreeMap;

use api_types::quantity::ParsedQuantity;
use http::Method;
use serde_json::{json, Value};

use crate::cmd::{display_name, finish, name_of, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::resource::ApiResource;

#[derive(Debug, clap::Subcommand)]
pub enum SetCommand {
    /// Update the image of a pod template
    Image(ImageArgs),
    /// Update environment variables on a pod template
    Env(EnvArgs),
    /// Update resource requests/limits on objects with pod templates
    Resources(ResourcesArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// TYPE NAME (or TYPE/NAME) followed by CONTAINER=IMAGE pairs
    pub args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    /// TYPE NAME (or TYPE/NAME) followed by KEY=VALUE or KEY- arguments
    pub args: Vec<String>,
    /// The names of containers in the selected pod templates to change - may use wildcards
    #[arg(short = 'c', long, default_value = "*")]
    pub containers: String,
    /// If true, display the environment and any changes in the standard format.
    #[arg(long)]
    pub list: bool,
    /// The name of a resource from which to inject environment variables
    #[arg(long)]
    pub from: Option<String>,
    /// Prefix to append to variable names
    #[arg(long, default_value = "")]
    pub prefix: String,
}

#[derive(Debug, clap::Args)]
pub struct ResourcesArgs {
    pub resources: Vec<String>,
    /// The names of containers in the selected pod templates to change, all containers are selected by default - may use wildcards
    #[arg(short = 'c', long, default_value = "*")]
    pub containers: String,
    /// The resource requirement limits for this container.  For example, 'cpu=200m,memory=512Mi'.
    #[arg(long, default_value = "")]
    pub limits: String,
    /// The resource requirement requests for this container.  For example, 'cpu=100m,memory=256Mi'.
    #[arg(long, default_value = "")]
    pub requests: String,
}

pub async fn run(ctx: &Context, command: SetCommand) -> Result<()> {
    match command {
        SetCommand::Image(args) => image(ctx, args).await,
        SetCommand::Env(args) => env(ctx, args).await,
        SetCommand::Resources(args) => resources(ctx, args).await,
    }
}

/// Where the pod spec lives in an object of `kind`.
pub fn pod_spec_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "ReplicationController"
        | "Job"
        | "PodTemplate" => Some(if kind == "PodTemplate" {
            "/template/spec"
        } else {
            "/spec/template/spec"
        }),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

fn no_template(resource: &ApiResource, name: &str) -> Error {
    Error::usage(format!(
        "{}/{name} the object is not a pod or does not have a pod template: *{}.{}",
        resource.name, resource.version, resource.kind
    ))
}

async fn fetch(ctx: &Context, resources: &[String]) -> Result<Vec<(ApiResource, Value)>> {
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, resources)?;
    if targets.is_empty() || targets.iter().all(|t| t.names.is_empty()) {
        return Err(Error::usage(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>",
        ));
    }
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let mut out = Vec::new();
    for target in targets {
        for name in &target.names {
            let obj = client
                .get(&target.resource.object_path(&namespace, name))
                .await?;
            out.push((target.resource.clone(), obj));
        }
    }
    Ok(out)
}

/// Upstream's container-name wildcard match (`*` anywhere).
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i + 1 == parts.len() {
            return rest.ends_with(part);
        } else if let Some(idx) = rest.find(part) {
            rest = &rest[idx + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Applies `edit` to every container (init containers first) of the object;
/// writes the object back if anything changed and prints `<name> <message>`.
async fn update(
    ctx: &Context,
    resource: &ApiResource,
    original: &Value,
    modified: Value,
    message: &str,
) -> Result<()> {
    if &modified == original {
        return Ok(());
    }
    let client = ctx.client().await?;
    let name = name_of(original);
    client
        .send_json(
            Method::PUT,
            &resource.object_path(&ctx.namespace(), name),
            &modified,
        )
        .await?;
    println!("{} {message}", display_name(resource, name));
    Ok(())
}

fn containers_mut<'a>(spec: &'a mut Value, field: &str) -> Vec<&'a mut Value> {
    spec.get_mut(field)
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut().collect())
        .unwrap_or_default()
}

async fn image(ctx: &Context, args: ImageArgs) -> Result<()> {
    let mut resources = Vec::new();
    let mut images: Vec<(String, String)> = Vec::new();
    for arg in &args.args {
        match arg.split_once('=') {
            Some((c, i)) => images.push((c.to_string(), i.to_string())),
            None if images.is_empty() => resources.push(arg.clone()),
            None => {
                return Err(Error::usage(format!(
                    "all resources must be specified before image changes: {arg}"
                )))
            }
        }
    }
    if images.is_empty() {
        return Err(Error::usage("at least one image update is required"));
    }
    let objs = fetch(ctx, &resources).await?;
    let mut errors = Vec::new();
    for (resource, obj) in objs {
        let name = name_of(&obj).to_string();
        let Some(pointer) = pod_spec_pointer(&resource.kind) else {
            errors.push(no_template(&resource, &name));
            continue;
        };
        let mut modified = obj.clone();
        let Some(spec) = modified.pointer_mut(pointer) else {
            errors.push(no_template(&resource, &name));
            continue;
        };
        let mut missing = None;
        for (container, img) in &images {
            let mut found = false;
            for field in ["initContainers", "containers"] {
                for c in containers_mut(spec, field) {
                    if container == "*" || c["name"].as_str() == Some(container.as_str()) {
                        c["image"] = json!(img);
                        found = true;
                    }
                }
            }
            if !found {
                missing = Some(container.clone());
                break;
            }
        }
        if let Some(container) = missing {
            errors.push(Error::usage(format!(
                "unable to find container named {container:?}"
            )));
            continue;
        }
        if let Err(e) = update(ctx, &resource, &obj, modified, "image updated").await {
            errors.push(e);
        }
    }
    finish(errors)
}

/// `KEY=VALUE` sets, `KEY-` removals, in order.
enum EnvChange {
    Set(String, String),
    Remove(String),
}

fn is_env_arg(arg: &str) -> bool {
    arg.contains('=') || (arg.ends_with('-') && arg.len() > 1)
}

/// Upstream's name for a config map or secret key as a variable.
fn key_to_env_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn env_ref_string(from: &Value) -> String {
    if let Some(r) = from.get("configMapKeyRef") {
        format!(
            "configmap {}, key {}",
            r["name"].as_str().unwrap_or_default(),
            r["key"].as_str().unwrap_or_default()
        )
    } else if let Some(r) = from.get("secretKeyRef") {
        format!(
            "secret {}, key {}",
            r["name"].as_str().unwrap_or_default(),
            r["key"].as_str().unwrap_or_default()
        )
    } else if let Some(r) = from.get("fieldRef") {
        format!("field path {}", r["fieldPath"].as_str().unwrap_or_default())
    } else if let Some(r) = from.get("resourceFieldRef") {
        let container = r["containerName"].as_str().unwrap_or_default();
        let resource = r["resource"].as_str().unwrap_or_default();
        if container.is_empty() {
            format!("resource {resource}")
        } else {
            format!("resource {resource}, container {container}")
        }
    } else {
        "invalid valueFrom".to_string()
    }
}

async fn from_source(ctx: &Context, from: &str, prefix: &str) -> Result<Vec<Value>> {
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &[from.to_string()])?;
    let client = ctx.client().await?;
    let mut vars = Vec::new();
    for target in targets {
        for name in &target.names {
            let obj = client
                .get(&target.resource.object_path(&ctx.namespace(), name))
                .await?;
            let (field, keys): (&str, BTreeMap<String, Value>) = match target.resource.kind.as_str()
            {
                "ConfigMap" => {
                    let mut keys: BTreeMap<String, Value> = BTreeMap::new();
                    for data in ["data"] {
                        if let Some(m) = obj[data].as_object() {
                            keys.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                        }
                    }
                    ("configMapKeyRef", keys)
                }
                "Secret" => (
                    "secretKeyRef",
                    obj["data"]
                        .as_object()
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default(),
                ),
                _ => return Err(Error::usage("unsupported resource specified in --from")),
            };
            for key in keys.keys() {
                let env_name = key_to_env_name(key);
                if &env_name != key {
                    eprintln!("Warning: key {key} transferred to {env_name}");
                }
                vars.push(json!({
                    "name": format!("{prefix}{}", key_to_env_name(key)),
                    "valueFrom": {field: {"name": name, "key": key}},
                }));
            }
        }
    }
    Ok(vars)
}

async fn env(ctx: &Context, args: EnvArgs) -> Result<()> {
    let mut resources = Vec::new();
    let mut changes = Vec::new();
    for arg in &args.args {
        if is_env_arg(arg) {
            match arg.split_once('=') {
                Some((k, v)) => changes.push(EnvChange::Set(k.to_string(), v.to_string())),
                None => changes.push(EnvChange::Remove(arg.trim_end_matches('-').to_string())),
            }
        } else if changes.is_empty() {
            resources.push(arg.clone());
        } else {
            return Err(Error::usage(format!(
                "all resources must be specified before environment changes: {arg}"
            )));
        }
    }
    let from_vars = match &args.from {
        Some(from) => from_source(ctx, from, &args.prefix).await?,
        None => Vec::new(),
    };
    let objs = fetch(ctx, &resources).await?;
    let mut errors = Vec::new();
    for (resource, obj) in objs {
        let name = name_of(&obj).to_string();
        let Some(pointer) = pod_spec_pointer(&resource.kind) else {
            errors.push(no_template(&resource, &name));
            continue;
        };
        let mut modified = obj.clone();
        let Some(spec) = modified.pointer_mut(pointer) else {
            errors.push(no_template(&resource, &name));
            continue;
        };
        let mut matched = false;
        for field in ["initContainers", "containers"] {
            for c in containers_mut(spec, field) {
                let cname = c["name"].as_str().unwrap_or_default().to_string();
                if !matches_pattern(&args.containers, &cname) {
                    continue;
                }
                matched = true;
                if args.list {
                    println!("# {} {name}, container {cname}", resource.kind);
                    for e in c["env"].as_array().cloned().unwrap_or_default() {
                        let key = e["name"].as_str().unwrap_or_default();
                        if e["valueFrom"].is_object() {
                            println!("# {key} from {}", env_ref_string(&e["valueFrom"]));
                        } else {
                            println!("{key}={}", e["value"].as_str().unwrap_or_default());
                        }
                    }
                    continue;
                }
                let mut env = c["env"].as_array().cloned().unwrap_or_default();
                fn set(env: &mut Vec<Value>, var: Value) {
                    match env.iter_mut().find(|e| e["name"] == var["name"]) {
                        Some(existing) => *existing = var,
                        None => env.push(var),
                    }
                }
                for var in &from_vars {
                    set(&mut env, var.clone());
                }
                for change in &changes {
                    match change {
                        EnvChange::Set(k, v) => set(&mut env, json!({"name": k, "value": v})),
                        EnvChange::Remove(k) => env.retain(|e| e["name"].as_str() != Some(k)),
                    }
                }
                if env.is_empty() {
                    if let Some(m) = c.as_object_mut() {
                        m.remove("env");
                    }
                } else {
                    c["env"] = Value::Array(env);
                }
            }
        }
        if args.list {
            continue;
        }
        if !matched {
            eprintln!(
                "Warning: {}/{name} does not have any containers matching {:?}",
                resource.kind, args.containers
            );
            continue;
        }
        if let Err(e) = update(ctx, &resource, &obj, modified, "env updated").await {
            errors.push(e);
        }
    }
    finish(errors)
}

fn parse_resource_list(text: &str) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("invalid argument syntax {pair}")))?;
        let q = ParsedQuantity::parse(v).map_err(|_| {
            Error::usage("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        })?;
        out.insert(k.to_string(), json!(q.canonical()));
    }
    Ok(out)
}

async fn resources(ctx: &Context, args: ResourcesArgs) -> Result<()> {
    if args.limits.is_empty() && args.requests.is_empty() {
        return Err(Error::usage(
            "you must specify an update to requests or limits (in the form of --requests/--limits)",
        ));
    }
    let limits = parse_resource_list(&args.limits)?;
    let requests = parse_resource_list(&args.requests)?;
    let objs = fetch(ctx, &args.resources).await?;
    let mut errors = Vec::new();
    for (resource, obj) in objs {
        let name = name_of(&obj).to_string();
        let Some(pointer) = pod_spec_pointer(&resource.kind) else {
            errors.push(no_template(&resource, &name));
            continue;
        };
        let mut modified = obj.clone();
        let Some(spec) = modified.pointer_mut(pointer) else {
            errors.push(no_template(&resource, &name));
            continue;
        };
        let mut found = false;
        for field in ["initContainers", "containers"] {
            for c in containers_mut(spec, field) {
                if !matches_pattern(&args.containers, c["name"].as_str().unwrap_or_default()) {
                    continue;
                }
                found = true;
                for (part, values) in [("limits", &limits), ("requests", &requests)] {
                    if values.is_empty() {
                        continue;
                    }
                    if !c["resources"].is_object() {
                        c["resources"] = json!({});
                    }
                    if !c["resources"][part].is_object() {
                        c["resources"][part] = json!({});
                    }
                    for (k, v) in values {
                        c["resources"][part][k] = v.clone();
                    }
                }
            }
        }
        if !found {
            errors.push(Error::usage(format!(
                "unable to find container named {}",
                args.containers
            )));
            continue;
        }
        if let Err(e) = update(
            ctx,
            &resource,
            &obj,
            modified,
            "resource requirements updated",
        )
        .await
        {
            errors.push(e);
        }
    }
    finish(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches_pattern("*", "web"));
        assert!(matches_pattern("w*", "web"));
        assert!(matches_pattern("*b", "web"));
        assert!(!matches_pattern("x*", "web"));
        assert!(matches_pattern("web", "web"));
    }

    #[test]
    fn env_names_from_keys() {
        assert_eq!(key_to_env_name("log.level-x"), "LOG_LEVEL_X");
    }

    #[test]
    fn resource_lists_are_canonical() {
        let m = parse_resource_list("cpu=0.5,memory=512Mi").unwrap();
        assert_eq!(m["cpu"], "500m");
        assert_eq!(m["memory"], "512Mi");
        assert!(parse_resource_list("cpu=abc").is_err());
    }
}
