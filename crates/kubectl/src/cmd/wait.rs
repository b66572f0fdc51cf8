//! `kubectl wait (TYPE NAME | TYPE/NAME) --for=condition=C[=V] | --for=delete |
//! --for=create | --for=jsonpath='{...}'=V [--timeout]`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::{display_name, list_query, name_of, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::printers::jsonpath::{relaxed, JsonPath};

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// (TYPE NAME | TYPE/NAME)
    pub resources: Vec<String>,
    /// The condition to wait on: [create|delete|condition=condition-name[=condition-value]|jsonpath='{JSONPath expression}'=[JSONPath value]].
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// The length of time to wait before giving up.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all resources in the namespace of the specified resource types
    #[arg(long)]
    pub all: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// Go `time.Duration` flag values (`30s`, `1m30s`, `500ms`, `0`), as upstream's
/// duration flags take them: a number without a unit (other than `0`) is refused.
pub fn parse_duration(text: &str) -> Option<Duration> {
    kube_common::leader::parse_go_duration(text).ok()
}

/// Upstream's (pflag + `time.ParseDuration`) message for a bad duration flag.
pub fn duration_flag_error(flag: &str, text: &str) -> Error {
    let reason = if !text.is_empty()
        && text
            .trim_start_matches(['-', '+'])
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && text != "."
    {
        "missing unit in duration"
    } else {
        "invalid duration"
    };
    Error::Flag(format!(
        "invalid argument {text:?} for \"--{flag}\" flag: time: {reason} {text:?}"
    ))
}

#[derive(Debug)]
enum Condition {
    Delete,
    Create,
    Status {
        kind: String,
        value: String,
    },
    JsonPath {
        path: JsonPath,
        value: Option<String>,
    },
}

fn parse_for(text: &str) -> Result<Condition> {
    let lower = text.to_lowercase();
    if lower == "delete" {
        return Ok(Condition::Delete);
    }
    if lower == "create" {
        return Ok(Condition::Create);
    }
    if let Some(rest) = text.strip_prefix("condition=") {
        let (kind, value) = rest.split_once('=').unwrap_or((rest, "true"));
        return Ok(Condition::Status {
            kind: kind.to_string(),
            value: value.to_string(),
        });
    }
    if let Some(rest) = text.strip_prefix("jsonpath=") {
        // `{.a.b}=value` or `{.a.b}` (existence).
        let (expr, value) = match rest.rfind("}=") {
            Some(i) => (&rest[..=i], Some(rest[i + 2..].to_string())),
            None => (rest, None),
        };
        let expr = expr.trim_matches('\'');
        let path = JsonPath::parse(&relaxed(expr))
            .map_err(|e| Error::usage(format!("unrecognized condition: {e}")))?;
        return Ok(Condition::JsonPath { path, value });
    }
    Err(Error::usage(format!("unrecognized condition: {text:?}")))
}

/// Whether `obj` satisfies the condition (objects, not deletion).
fn satisfied(cond: &Condition, obj: &Value) -> bool {
    match cond {
        Condition::Delete => false,
        Condition::Create => true,
        Condition::Status { kind, value } => obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
                    && c["status"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(value))
            }),
        Condition::JsonPath { path, value } => match path.execute(obj) {
            Ok(text) => match value {
                Some(v) => text.trim() == v,
                None => !text.trim().is_empty(),
            },
            Err(_) => false,
        },
    }
}

pub async fn run(ctx: &Context, args: WaitArgs) -> Result<()> {
    let cond = parse_for(args.for_.as_deref().unwrap_or_default())?;
    let timeout = parse_duration(&args.timeout)
        .ok_or_else(|| duration_flag_error("timeout", &args.timeout))?;
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &args.resources)?;
    if targets.is_empty() {
        return Err(Error::usage(
            "resource(s) were provided, but no name was specified",
        ));
    }
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let started = Instant::now();
    // (resource, namespace, name)
    let mut objects = Vec::new();
    for target in &targets {
        if target.names.is_empty() {
            if !args.all && args.selector.is_none() {
                return Err(Error::usage(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            let ns = (!args.all_namespaces).then_some(namespace.as_str());
            let list = client
                .get(&format!(
                    "{}{}",
                    target.resource.collection_path(ns),
                    list_query(args.selector.as_deref(), None)
                ))
                .await?;
            for item in list["items"].as_array().into_iter().flatten() {
                let ns = item["metadata"]["namespace"].as_str().unwrap_or(&namespace);
                objects.push((
                    target.resource.clone(),
                    ns.to_string(),
                    name_of(item).to_string(),
                ));
            }
        } else {
            for name in &target.names {
                objects.push((target.resource.clone(), namespace.clone(), name.clone()));
            }
        }
    }
    if objects.is_empty() {
        return Err(Error::usage("no matching resources found"));
    }
    for (resource, ns, name) in objects {
        let path = resource.object_path(&ns, &name);
        let mut first = true;
        let mut uid: Option<Value> = None;
        loop {
            match client.get(&path).await {
                Ok(obj) => {
                    if matches!(cond, Condition::Delete) {
                        let this_uid = obj["metadata"]["uid"].clone();
                        if uid.get_or_insert_with(|| this_uid.clone()) != &this_uid {
                            println!("{} condition met", display_name(&resource, &name));
                            break;
                        }
                    } else if satisfied(&cond, &obj) {
                        println!("{} condition met", display_name(&resource, &name));
                        break;
                    }
                }
                Err(e) if e.is_not_found() => match cond {
                    Condition::Delete => {
                        if !first {
                            println!("{} condition met", display_name(&resource, &name));
                        }
                        break;
                    }
                    Condition::Create => {}
                    _ if first => return Err(e),
                    _ => {}
                },
                Err(e) => return Err(e),
            }
            first = false;
            if started.elapsed() >= timeout {
                let what = match cond {
                    Condition::Delete => "delete",
                    Condition::Create => "create",
                    _ => "the condition",
                };
                return Err(Error::usage(format!(
                    "timed out waiting for {what} on {}/{name}",
                    resource.qualified_name()
                )));
            }
            let left = timeout.saturating_sub(started.elapsed());
            tokio::time::sleep(left.min(Duration::from_millis(250))).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("x"), None);
        // upstream (time.ParseDuration) wants a unit
        assert_eq!(parse_duration("30"), None);
        assert_eq!(
            duration_flag_error("timeout", "30").to_string(),
            "Error: invalid argument \"30\" for \"--timeout\" flag: time: missing unit in duration \"30\""
        );
        assert_eq!(
            duration_flag_error("timeout", "abc").to_string(),
            "Error: invalid argument \"abc\" for \"--timeout\" flag: time: invalid duration \"abc\""
        );
    }

    #[test]
    fn conditions_match_case_insensitively() {
        let pod = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(satisfied(&parse_for("condition=ready").expect("c"), &pod));
        assert!(!satisfied(
            &parse_for("condition=Ready=false").expect("c"),
            &pod
        ));
        assert!(satisfied(
            &parse_for("jsonpath={.status.phase}=Running").expect("j"),
            &pod
        ));
        assert!(!satisfied(
            &parse_for("jsonpath={.status.phase}=Pending").expect("j"),
            &pod
        ));
        assert!(parse_for("bogus").is_err());
    }
}
