//! `kubectl scale --replicas=N TYPE NAME`: a merge patch on the `scale` subresource.

use serde_json::json;

use crate::cmd::{display_name, finish, list_query, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::resource::ApiResource;

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    pub resources: Vec<String>,
    // Upstream's usage keeps its full stop (a doc comment would lose it).
    // Required, but checked in `run`: cobra's missing-required-flag message
    // is not clap's.
    #[arg(long, help = "The new desired number of replicas. Required.")]
    pub replicas: Option<i64>,
    /// Precondition for current size.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
    /// Select all resources in the namespace of the specified resource types
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2). Matching objects must satisfy all of the specified label constraints.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// How upstream's `cli.Run` reports an error cobra returned before the
/// command ran (a missing required flag): a klog error line, exit code 1.
fn klog_command_failed(message: &str) {
    let now = chrono::Local::now().format("%m%d %H:%M:%S%.6f");
    let quoted = serde_json::to_string(message).unwrap_or_default();
    eprintln!(
        "E{now} {:>7} run.go:72] \"command failed\" err={quoted}",
        std::process::id()
    );
}

/// An error's text inside another message (no `Error from server` prefix), as
/// Go's `err.Error()`.
fn bare_message(err: &Error) -> String {
    match err {
        Error::Server(s) => s.message.clone(),
        Error::Usage(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: one message as itself, several
/// (duplicates dropped) as `[a, b]`.
fn aggregate_message(errors: &[Error]) -> String {
    let mut messages: Vec<String> = Vec::new();
    for m in errors.iter().map(bare_message) {
        if !messages.contains(&m) {
            messages.push(m);
        }
    }
    match messages.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

pub async fn run(ctx: &Context, args: ScaleArgs) -> Result<()> {
    let Some(replicas) = args.replicas else {
        klog_command_failed("required flag(s) \"replicas\" not set");
        return Err(Error::Reported);
    };
    if replicas < 0 {
        return Err(Error::usage(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        ));
    }
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &args.resources)?;
    if targets.is_empty() {
        return Err(Error::usage("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'"));
    }
    let selecting = args.all || args.selector.is_some();
    if !selecting && targets.iter().any(|t| t.names.is_empty()) {
        return Err(Error::usage(
            "resource(s) were provided, but no name was specified",
        ));
    }
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    // upstream's builder fetches every object first; the ones it could not
    // fetch are reported after the others are scaled.
    let mut found: Vec<(ApiResource, String)> = Vec::new();
    let mut fetch_errors = Vec::new();
    for target in &targets {
        if target.names.is_empty() {
            let path = format!(
                "{}{}",
                target.resource.collection_path(Some(&namespace)),
                list_query(args.selector.as_deref(), None)
            );
            let list = client.get(&path).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                let name = crate::cmd::name_of(item).to_string();
                found.push((target.resource.clone(), name));
            }
            continue;
        }
        for name in &target.names {
            match client
                .get(&target.resource.object_path(&namespace, name))
                .await
            {
                Ok(_) => found.push((target.resource.clone(), name.clone())),
                Err(e) => fetch_errors.push(e),
            }
        }
    }
    if found.is_empty() {
        if fetch_errors.is_empty() {
            return Err(Error::usage("no objects passed to scale"));
        }
        return Err(Error::usage(format!(
            "no objects passed to scale {}",
            aggregate_message(&fetch_errors)
        )));
    }
    for (resource, name) in found {
        let path = format!("{}/scale", resource.object_path(&namespace, &name));
        if args.current_replicas >= 0 {
            let scale = client.get(&path).await?;
            let current = scale["spec"]["replicas"].as_i64().unwrap_or(0);
            if current != args.current_replicas {
                return Err(Error::usage(format!(
                    "Expected replicas to be {}, was {current}",
                    args.current_replicas
                )));
            }
        }
        let patch = json!({"spec": {"replicas": replicas}});
        client.merge_patch(&path, &patch).await?;
        println!("{} scaled", display_name(&resource, &name));
    }
    finish(fetch_errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ServerError;

    fn not_found(name: &str) -> Error {
        Error::Server(ServerError {
            code: 404,
            reason: "NotFound".into(),
            message: format!("replicationcontrollers {name:?} not found"),
        })
    }

    #[test]
    fn aggregates_read_as_go_prints_them() {
        assert_eq!(
            aggregate_message(&[not_found("a")]),
            "replicationcontrollers \"a\" not found"
        );
        assert_eq!(
            aggregate_message(&[not_found("a"), not_found("b"), not_found("a")]),
            "[replicationcontrollers \"a\" not found, replicationcontrollers \"b\" not found]"
        );
    }
}
