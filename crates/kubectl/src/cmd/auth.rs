//! `kubectl auth can-i VERB [TYPE | TYPE/NAME | NONRESOURCEURL]`: one
//! SelfSubjectAccessReview, answered `yes` (exit 0) or `no` (exit 1), with
//! upstream's warnings for unknown types, cluster-scoped types and unknown verbs.

use serde_json::{json, Map, Value};

use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Check whether an action is allowed
    CanI(CanIArgs),
}

#[derive(Debug, clap::Args)]
pub struct CanIArgs {
    /// VERB [TYPE | TYPE/NAME | NONRESOURCEURL]
    pub args: Vec<String>,
    /// If true, check the specified action in all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If true, suppress output and just return the exit code.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// SubResource such as pod/log or deployment/scale
    #[arg(long, default_value = "")]
    pub subresource: String,
}

/// Verbs upstream knows for resources and for non-resource URLs.
const RESOURCE_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "use",
    "bind",
    "impersonate",
    "*",
    "approve",
    "sign",
    "escalate",
    "attest",
];
const NON_RESOURCE_VERBS: &[&str] = &[
    "get", "put", "post", "head", "options", "delete", "patch", "*",
];
/// Resources that are not served but that RBAC knows (impersonation targets).
const NON_STANDARD_RESOURCES: &[&str] = &["users", "groups"];

/// What a `TYPE` argument names: group, resource and (when the server serves it)
/// whether it is namespaced.
struct Target {
    group: String,
    resource: String,
    namespaced: Option<bool>,
}

/// Upstream's warning printer adds a newline to messages that end with one: each
/// warning is followed by a blank line.
fn warn(msg: &str) {
    eprintln!("Warning: {msg}\n");
}

pub async fn run(ctx: &Context, command: AuthCommand) -> Result<()> {
    match command {
        AuthCommand::CanI(args) => can_i(ctx, args).await,
    }
}

async fn resolve(ctx: &Context, arg: &str) -> Result<Target> {
    if arg == "*" {
        return Ok(Target {
            group: String::new(),
            resource: "*".into(),
            namespaced: None,
        });
    }
    let discovery = ctx.discovery().await?;
    if let Ok(found) = discovery.resolve(arg) {
        if let [r] = found.as_slice() {
            return Ok(Target {
                group: r.group.clone(),
                resource: r.name.clone(),
                namespaced: Some(r.namespaced),
            });
        }
    }
    let lower = arg.to_lowercase();
    let (resource, group) = lower.split_once('.').unwrap_or((lower.as_str(), ""));
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if !NON_STANDARD_RESOURCES.contains(&qualified.as_str()) {
        if group.is_empty() {
            warn(&format!(
                "the server doesn't have a resource type '{resource}'"
            ));
        } else {
            warn(&format!(
                "the server doesn't have a resource type '{resource}' in group '{group}'"
            ));
        }
    }
    Ok(Target {
        group: String::new(),
        resource: arg.to_string(),
        namespaced: None,
    })
}

async fn can_i(ctx: &Context, args: CanIArgs) -> Result<()> {
    let [verb, what] = args.args.as_slice() else {
        return Err(Error::usage(
            "you must specify two arguments: verb resource or verb resource/resourceName.\nSee 'kubectl auth can-i -h' for help and examples.",
        ));
    };
    let namespace = if args.all_namespaces {
        String::new()
    } else {
        ctx.namespace()
    };
    let spec = if what.starts_with('/') {
        if !args.subresource.is_empty() {
            return Err(Error::usage(
                "--subresource can not be used with NonResourceURL",
            ));
        }
        if !NON_RESOURCE_VERBS.contains(&verb.as_str()) {
            warn(&format!("verb '{verb}' is not a known verb"));
        }
        json!({"nonResourceAttributes": {"path": what, "verb": verb}})
    } else {
        let (type_arg, name) = what.split_once('/').unwrap_or((what.as_str(), ""));
        let target = resolve(ctx, type_arg).await?;
        if !args.all_namespaces && target.namespaced == Some(false) {
            if target.group.is_empty() {
                warn(&format!(
                    "resource '{}' is not namespace scoped",
                    target.resource
                ));
            } else {
                warn(&format!(
                    "resource '{}' is not namespace scoped in group '{}'",
                    target.resource, target.group
                ));
            }
        }
        if !RESOURCE_VERBS.contains(&verb.as_str()) {
            warn(&format!("verb '{verb}' is not a known verb"));
        }
        let mut attrs = Map::new();
        for (key, value) in [
            ("namespace", namespace.as_str()),
            ("verb", verb.as_str()),
            ("group", target.group.as_str()),
            ("resource", target.resource.as_str()),
            ("subresource", args.subresource.as_str()),
            ("name", name),
        ] {
            if !value.is_empty() {
                attrs.insert(key.into(), Value::String(value.into()));
            }
        }
        json!({"resourceAttributes": attrs})
    };
    let review = json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": spec,
    });
    let client = ctx.client().await?;
    let answer = client
        .send_json(
            http::Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &review,
        )
        .await?;
    let status = &answer["status"];
    let allowed = status["allowed"].as_bool().unwrap_or(false);
    if !args.quiet {
        let mut line = String::from(if allowed { "yes" } else { "no" });
        if !allowed {
            for key in ["reason", "evaluationError"] {
                if let Some(text) = status[key].as_str().filter(|s| !s.is_empty()) {
                    line.push_str(" - ");
                    line.push_str(text);
                }
            }
        }
        println!("{line}");
    }
    if allowed {
        Ok(())
    } else {
        Err(Error::Reported)
    }
}
