//! `kubectl taint nodes NODE KEY[=VALUE]:EFFECT ... [KEY[:EFFECT]-]`.

use serde_json::{json, Value};

use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct TaintArgs {
    /// NODE KEY_1=VAL_1:TAINT_EFFECT_1 ... KEY_N=VAL_N:TAINT_EFFECT_N
    pub args: Vec<String>,
    /// If true, allow taints to be overwritten, otherwise reject taint updates that overwrite existing taints.
    #[arg(long)]
    pub overwrite: bool,
    /// Select all nodes in the cluster
    #[arg(long)]
    pub all: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Taint {
    key: String,
    value: String,
    effect: String,
}

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn parse_taint(spec: &str) -> Result<Taint> {
    let invalid = || Error::usage(format!("invalid taint spec: {spec}"));
    let (kv, effect) = spec.split_once(':').ok_or_else(invalid)?;
    if !EFFECTS.contains(&effect) {
        return Err(Error::usage(format!(
            "invalid taint effect: {effect}, unsupported taint effect\nSee 'kubectl taint -h' for help and examples"
        )));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        return Err(invalid());
    }
    Ok(Taint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
    })
}

/// Removal specs: `key-` or `key:Effect-` (empty effect matches all).
fn parse_removal(spec: &str) -> Result<(String, String)> {
    let body = spec.trim_end_matches('-');
    let (key, effect) = body.split_once(':').unwrap_or((body, ""));
    if !effect.is_empty() && !EFFECTS.contains(&effect) {
        return Err(Error::usage(format!(
            "invalid taint effect: {effect}, unsupported taint effect"
        )));
    }
    Ok((key.to_string(), effect.to_string()))
}

/// The new taint list and upstream's operation word.
fn apply_taints(
    node: &str,
    existing: &[Value],
    add: &[Taint],
    remove: &[(String, String)],
    overwrite: bool,
) -> Result<(Vec<Value>, &'static str)> {
    // Upstream `reorganizeTaints`: the new taints first, then the old ones
    // they do not replace.
    let mut out: Vec<Value> = Vec::new();
    let mut operation = "tainted";
    if !overwrite {
        let clash = add.iter().any(|t| {
            existing
                .iter()
                .any(|e| e["key"] == t.key.as_str() && e["effect"] == t.effect.as_str())
        });
        if clash {
            let keys: Vec<&str> = add.iter().map(|t| t.key.as_str()).collect();
            return Err(Error::usage(format!(
                "node {node} already has {} taint(s) with same effect(s) and --overwrite is false",
                keys.join(",")
            )));
        }
    }
    for t in add {
        let new = if t.value.is_empty() {
            json!({"key": t.key, "effect": t.effect})
        } else {
            json!({"key": t.key, "value": t.value, "effect": t.effect})
        };
        if existing
            .iter()
            .any(|e| e["key"] == t.key.as_str() && e["effect"] == t.effect.as_str())
        {
            operation = "modified";
        }
        out.push(new);
    }
    for old in existing {
        if !add
            .iter()
            .any(|t| old["key"] == t.key.as_str() && old["effect"] == t.effect.as_str())
        {
            out.push(old.clone());
        }
    }
    for (key, effect) in remove {
        let before = out.len();
        out.retain(|e| {
            !(e["key"] == key.as_str() && (effect.is_empty() || e["effect"] == effect.as_str()))
        });
        if out.len() == before {
            let what = if effect.is_empty() {
                key.clone()
            } else {
                format!("{key}:{effect}")
            };
            return Err(Error::usage(format!("taint {what:?} not found")));
        }
        if add.is_empty() {
            operation = "untainted";
        } else {
            operation = "modified";
        }
    }
    Ok((out, operation))
}

pub async fn run(ctx: &Context, args: TaintArgs) -> Result<()> {
    let mut rest = args.args.iter();
    let Some(kind) = rest.next() else {
        return Err(Error::usage(
            "at least one taint update is required\nSee 'kubectl taint -h' for help and examples",
        ));
    };
    let (kind, slash_name) = match kind.split_once('/') {
        Some((k, n)) => (k.to_string(), Some(n.to_string())),
        None => (kind.clone(), None),
    };
    if !["node", "nodes", "no"].contains(&kind.as_str()) {
        return Err(Error::usage(format!(
            "invalid resource type {kind}, only node types are supported"
        )));
    }
    let mut names = Vec::new();
    names.extend(slash_name);
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for arg in rest {
        if arg.ends_with('-') {
            remove.push(parse_removal(arg)?);
        } else if arg.contains(':') || arg.contains('=') {
            add.push(parse_taint(arg)?);
        } else {
            names.push(arg.clone());
        }
    }
    if add.is_empty() && remove.is_empty() {
        return Err(Error::usage("at least one taint update is required"));
    }
    let client = ctx.client().await?;
    if args.all || args.selector.is_some() {
        let list = client
            .get(&format!(
                "/api/v1/nodes{}",
                crate::cmd::list_query(args.selector.as_deref(), None)
            ))
            .await?;
        names.extend(
            list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| crate::cmd::name_of(n).to_string()),
        );
    }
    if names.is_empty() {
        return Err(Error::usage(
            "resource(s) were provided, but no name was specified",
        ));
    }
    // upstream visits every node and reports the failures at the end.
    let mut errors = Vec::new();
    for name in names {
        if let Err(err) = taint_node(client, &name, &add, &remove, args.overwrite).await {
            errors.push(err);
        }
    }
    finish_all(errors)
}

async fn taint_node(
    client: &crate::client::Client,
    name: &str,
    add: &[Taint],
    remove: &[(String, String)],
    overwrite: bool,
) -> Result<()> {
    let path = format!("/api/v1/nodes/{name}");
    let node = client.get(&path).await?;
    let existing = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (taints, operation) = apply_taints(name, &existing, add, remove, overwrite)?;
    let taints = if taints.is_empty() {
        Value::Null
    } else {
        json!(taints)
    };
    let patch = json!({"spec": {"taints": taints}});
    client.merge_patch(&path, &patch).await?;
    println!("node/{name} {operation}");
    Ok(())
}

/// Upstream `cmdutil.CheckErr` on the visitor's aggregate: one error prints
/// as itself (`error: ...`), several print one message a line without the
/// `error: ` prefix (`MultipleErrors`).
fn finish_all(mut errors: Vec<Error>) -> Result<()> {
    if errors.len() <= 1 {
        return errors.pop().map_or(Ok(()), Err);
    }
    for err in &errors {
        match err {
            Error::Usage(msg) => eprintln!("{msg}"),
            other => other.print(),
        }
    }
    Err(Error::Reported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_are_added_and_removed() {
        let t = parse_taint("dedicated=gpu:NoSchedule").expect("taint");
        let (out, op) = apply_taints("n", &[], std::slice::from_ref(&t), &[], false).expect("add");
        assert_eq!(op, "tainted");
        assert_eq!(
            out,
            vec![json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})]
        );
        let err = apply_taints("n", &out, &[t], &[], false).expect_err("clash");
        assert_eq!(
            err.to_string(),
            "error: node n already has dedicated taint(s) with same effect(s) and --overwrite is false"
        );
        let (after, op) = apply_taints(
            "n",
            &out,
            &[],
            &[parse_removal("dedicated-").expect("rm")],
            false,
        )
        .expect("remove");
        assert_eq!(op, "untainted");
        assert!(after.is_empty());
        let err = apply_taints("n", &[], &[], &[("x".into(), String::new())], false)
            .expect_err("missing");
        assert_eq!(err.to_string(), "error: taint \"x\" not found");
        assert!(parse_taint("a=b:Bogus").is_err());
    }
}
