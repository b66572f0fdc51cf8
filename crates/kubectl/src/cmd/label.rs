//! `kubectl label` and `kubectl annotate`: `KEY=VALUE` and `KEY-` on objects
//! named by type and name, `type/name`, `-l` or `--all`; `--overwrite` to change
//! existing values.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::cmd::{finish, list_query, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::output::object_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Label,
    Annotate,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Label => "labels",
            Kind::Annotate => "annotations",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Label => "label",
            Kind::Annotate => "annotation",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    /// TYPE NAME KEY_1=VAL_1 ... KEY_N=VAL_N, or KEY- to remove.
    pub args: Vec<String>,
    /// If true, allow labels/annotations to be overwritten.
    #[arg(long)]
    pub overwrite: bool,
    /// Select all resources, in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If present, the namespace scope (all namespaces).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// If true, display the labels for a given resource.
    #[arg(long)]
    pub list: bool,
}

/// Resources, `key=value` changes and `key-` removals.
type SplitArgs = (Vec<String>, BTreeMap<String, String>, Vec<String>);

/// Splits arguments into resources and `key=value`/`key-` pairs (upstream
/// `cmdutil.GetResourcesAndPairs`): every resource comes before the first pair.
fn resources_and_pairs(args: &[String], kind: Kind) -> Result<(Vec<String>, Vec<String>)> {
    let mut resources = Vec::new();
    let mut pairs = Vec::new();
    for arg in args {
        let is_pair =
            (arg.contains('=') && !arg.starts_with('=')) || (arg.ends_with('-') && arg != "-");
        match (pairs.is_empty(), is_pair) {
            (_, true) => pairs.push(arg.clone()),
            (true, false) => resources.push(arg.clone()),
            (false, false) => {
                return Err(Error::usage(format!(
                    "all resources must be specified before {} changes: {arg}",
                    kind.singular()
                )))
            }
        }
    }
    Ok((resources, pairs))
}

/// Splits arguments into resources, `key=value` changes and `key-` removals,
/// checking label values before anything reaches the server (upstream
/// `parseLabels`/`parseAnnotations`).
fn split_args(args: &[String], kind: Kind) -> Result<SplitArgs> {
    let (resources, pairs) = resources_and_pairs(args, kind)?;
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for pair in &pairs {
        if let Some((k, v)) = pair.split_once('=') {
            if kind == Kind::Label {
                if v.contains('=') {
                    return Err(Error::usage(format!("invalid label spec: {pair}")));
                }
                let errs = api_types::validation::names::is_valid_label_value(v);
                if !errs.is_empty() {
                    return Err(Error::usage(format!(
                        "invalid label value: {pair:?}: {}",
                        errs.join(";")
                    )));
                }
            }
            set.insert(k.to_string(), v.to_string());
        } else if let Some(k) = pair.strip_suffix('-') {
            remove.push(k.to_string());
        }
    }
    for k in &remove {
        if set.contains_key(k) {
            return Err(Error::usage(match kind {
                Kind::Label => "can not both modify and remove a label in the same command".into(),
                Kind::Annotate => format!(
                    "can not both modify and remove the following annotation(s) in the same command: {k}"
                ),
            }));
        }
    }
    Ok((resources, set, remove))
}

pub async fn run(ctx: &Context, args: LabelArgs, kind: Kind) -> Result<()> {
    let (resources, set, remove) = split_args(&args.args, kind)?;
    // upstream `Validate`: resources first, then the updates.
    if resources.is_empty() {
        return Err(Error::usage(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>",
        ));
    }
    if set.is_empty() && remove.is_empty() && !args.list {
        return Err(Error::usage(format!(
            "at least one {} update is required",
            kind.singular()
        )));
    }
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &resources)?;
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for target in &targets {
        if target.names.is_empty() {
            if !args.all && args.selector.is_none() {
                return Err(Error::usage(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            let ns = (!args.all_namespaces).then_some(namespace.as_str());
            let path = format!(
                "{}{}",
                target.resource.collection_path(ns),
                list_query(args.selector.as_deref(), None)
            );
            let list = client.get(&path).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                let item_ns = item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&namespace)
                    .to_string();
                let name = item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                objects.push((target.resource.clone(), item_ns, name));
            }
        } else {
            for name in &target.names {
                objects.push((target.resource.clone(), namespace.clone(), name.clone()));
            }
        }
    }
    for (resource, ns, name) in objects {
        let path = resource.object_path(&ns, &name);
        let mut current = match client.get(&path).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        current["kind"] = json!(resource.kind);
        current["apiVersion"] = json!(resource.api_version());
        let existing: Map<String, Value> = current["metadata"][kind.field()]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if args.list {
            let mut keys: Vec<&String> = existing.keys().collect();
            keys.sort();
            for k in keys {
                println!("{k}={}", existing[k].as_str().unwrap_or_default());
            }
            continue;
        }
        if !args.overwrite {
            let conflicts: Vec<String> = set
                .iter()
                .filter_map(|(k, v)| {
                    existing
                        .get(k)
                        .and_then(Value::as_str)
                        .filter(|old| *old != v)
                        .map(|old| format!("'{k}' already has a value ({old})"))
                })
                .collect();
            if !conflicts.is_empty() {
                let msg = match kind {
                    Kind::Label => format!("{}, and --overwrite is false", conflicts.join(", ")),
                    Kind::Annotate => format!(
                        "--overwrite is false but found the following declared annotation(s): {}",
                        conflicts.join(", ")
                    ),
                };
                errors.push(Error::usage(msg));
                continue;
            }
        }
        let mut changes = Map::new();
        for (k, v) in &set {
            if existing.get(k).and_then(Value::as_str) != Some(v.as_str()) {
                changes.insert(k.clone(), json!(v));
            }
        }
        for k in &remove {
            if existing.contains_key(k) {
                changes.insert(k.clone(), Value::Null);
            } else if kind == Kind::Label {
                eprintln!("label \"{k}\" not found.");
            }
        }
        let verb = match kind {
            Kind::Label if !remove.is_empty() && set.is_empty() => "unlabeled",
            Kind::Label => "labeled",
            Kind::Annotate => "annotated",
        };
        if changes.is_empty() {
            let not = match kind {
                Kind::Label => "not labeled",
                Kind::Annotate => "annotated",
            };
            println!("{} {not}", object_name(&current));
            continue;
        }
        let patch = json!({"metadata": {kind.field(): changes}});
        match client.merge_patch(&path, &patch).await {
            Ok(mut after) => {
                after["kind"] = json!(resource.kind);
                after["apiVersion"] = json!(resource.api_version());
                println!("{} {verb}", object_name(&after));
            }
            Err(e) => errors.push(e),
        }
    }
    finish(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_resources_from_changes() {
        let args: Vec<String> = ["pod", "web", "a=1", "b-", "c="]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (res, set, remove) = split_args(&args, Kind::Label).expect("split");
        assert_eq!(res, vec!["pod", "web"]);
        assert_eq!(set.get("a").map(String::as_str), Some("1"));
        assert_eq!(set.get("c").map(String::as_str), Some(""));
        assert_eq!(remove, vec!["b"]);
    }
}
