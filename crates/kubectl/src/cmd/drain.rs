//! `kubectl cordon|uncordon NODE` (`spec.unschedulable`) and `kubectl drain NODE`:
//! cordon, then evict (the `eviction` subresource) every pod on the node that
//! upstream's filters allow, and wait for them to go.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct CordonArgs {
    /// NODE
    pub nodes: Vec<String>,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// NODE
    pub nodes: Vec<String>,
    /// Selector (label query) to filter on
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Ignore DaemonSet-managed pods.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained).
    #[arg(long)]
    pub delete_emptydir_data: bool,
    /// Continue even if there are pods that do not declare a controller.
    #[arg(long)]
    pub force: bool,
    /// Period of time in seconds given to each pod to terminate gracefully. If negative, the default value specified in the pod will be used.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// The length of time to wait before giving up, zero means infinite
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Label selector to filter pods on the node
    #[arg(long)]
    pub pod_selector: Option<String>,
    /// Delete pods instead of evicting them.
    #[arg(long)]
    pub disable_eviction: bool,
}

async fn node_names(
    ctx: &Context,
    nodes: &[String],
    selector: Option<&str>,
) -> Result<Vec<String>> {
    let mut names: Vec<String> = nodes
        .iter()
        .map(|n| {
            n.strip_prefix("node/")
                .or(n.strip_prefix("nodes/"))
                .unwrap_or(n)
                .to_string()
        })
        .collect();
    if let Some(sel) = selector {
        let client = ctx.client().await?;
        let list = client
            .get(&format!(
                "/api/v1/nodes{}",
                crate::cmd::list_query(Some(sel), None)
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
            "USAGE: cordon NODE [flags]\nSee 'kubectl cordon -h' for help and examples",
        ));
    }
    Ok(names)
}

/// Sets `spec.unschedulable`; prints `node/x cordoned` (or `already cordoned`).
async fn set_unschedulable(ctx: &Context, name: &str, desired: bool) -> Result<()> {
    let client = ctx.client().await?;
    let path = format!("/api/v1/nodes/{name}");
    let node = client.get(&path).await?;
    let current = node["spec"]["unschedulable"].as_bool().unwrap_or(false);
    let word = if desired { "cordoned" } else { "uncordoned" };
    if current == desired {
        println!("node/{name} already {word}");
        return Ok(());
    }
    let value = if desired { json!(true) } else { Value::Null };
    let patch = json!({"spec": {"unschedulable": value}});
    client.merge_patch(&path, &patch).await?;
    println!("node/{name} {word}");
    Ok(())
}

pub async fn run_cordon(ctx: &Context, args: CordonArgs, desired: bool) -> Result<()> {
    for name in node_names(ctx, &args.nodes, args.selector.as_deref()).await? {
        set_unschedulable(ctx, &name, desired).await?;
    }
    Ok(())
}

/// What upstream's drain filters say about one pod.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Delete,
    Skip,
    Warn(String),
    Fail(String),
}

// Upstream's wording (`kubectl/pkg/drain/filters.go`); errors get a
// `cannot delete ` prefix, which doubles it for `UNMANAGED_FAIL`.
const DS_FAIL: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DS_WARN: &str = "ignoring DaemonSet-managed Pods";
const UNMANAGED_FAIL: &str =
    "cannot delete Pods that declare no controller (use --force to override)";
const UNMANAGED_WARN: &str = "deleting Pods that declare no controller";
const LOCAL_FAIL: &str = "Pods with local storage (use --delete-emptydir-data to override)";

/// The filters in upstream's order (daemonSet, mirror, localStorage,
/// unreplicated): the first that refuses decides, else the last one's verdict.
/// `daemon_set_found` is the lookup of a DaemonSet owner (`Err(message)` when
/// it failed).
fn judge(pod: &Value, args: &DrainArgs, daemon_set_found: Option<Result<(), String>>) -> Verdict {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    let finished = phase == "Succeeded" || phase == "Failed";
    let controller = pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["controller"].as_bool() == Some(true));
    // daemonSetFilter
    if controller.is_some_and(|c| c["kind"] == "DaemonSet") && !finished {
        match daemon_set_found {
            // An orphan goes with --force (its warning is dropped by the later filters).
            Some(Err(msg)) if args.force && msg.ends_with("not found") => {}
            Some(Err(msg)) => return Verdict::Fail(msg),
            _ if !args.ignore_daemonsets => return Verdict::Fail(DS_FAIL.into()),
            _ => return Verdict::Warn(DS_WARN.into()),
        }
    }
    // mirrorPodFilter
    if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        return Verdict::Skip;
    }
    // localStorageFilter (its warning, too, is dropped by the last filter)
    let has_empty_dir = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| v.get("emptyDir").is_some());
    if has_empty_dir && !finished && !args.delete_emptydir_data {
        return Verdict::Fail(LOCAL_FAIL.into());
    }
    // unreplicatedFilter
    if finished || controller.is_some() {
        return Verdict::Delete;
    }
    if args.force {
        Verdict::Warn(UNMANAGED_WARN.into())
    } else {
        Verdict::Fail(UNMANAGED_FAIL.into())
    }
}

/// Upstream groups pods by message: `msg: ns/a, ns/b`.
fn group(items: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (msg, id) in items {
        match groups.iter_mut().find(|(m, _)| m == msg) {
            Some((_, ids)) => ids.push(id.clone()),
            None => groups.push((msg.clone(), vec![id.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(m, ids)| format!("{prefix}{m}: {}", ids.join(", ")))
        .collect()
}

fn parse_timeout(text: &str) -> Result<Option<Duration>> {
    let d = crate::cmd::wait::parse_duration(text)
        .ok_or_else(|| crate::cmd::wait::duration_flag_error("timeout", text))?;
    Ok((!d.is_zero()).then_some(d))
}

pub async fn run_drain(ctx: &Context, args: DrainArgs) -> Result<()> {
    let timeout = parse_timeout(&args.timeout)?;
    let client = ctx.client().await?;
    for name in node_names(ctx, &args.nodes, args.selector.as_deref()).await? {
        set_unschedulable(ctx, &name, true).await?;
        let mut query = format!(
            "?fieldSelector={}",
            crate::client::encode(&format!("spec.nodeName={name}"))
        );
        if let Some(sel) = &args.pod_selector {
            query.push_str(&format!("&labelSelector={}", crate::client::encode(sel)));
        }
        let list = client.get(&format!("/api/v1/pods{query}")).await?;
        let pods: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
        let mut failures: Vec<(String, String)> = Vec::new();
        let mut warnings: Vec<(String, String)> = Vec::new();
        let mut to_delete = Vec::new();
        for pod in &pods {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let id = format!("{ns}/{}", crate::cmd::name_of(pod));
            let ds_owner = pod["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["controller"].as_bool() == Some(true) && o["kind"] == "DaemonSet")
                .and_then(|o| o["name"].as_str());
            let ds_found = match ds_owner {
                Some(ds) => Some(
                    match client
                        .get(&format!("/apis/apps/v1/namespaces/{ns}/daemonsets/{ds}"))
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(Error::Server(e)) => Err(e.message),
                        Err(e) => return Err(e),
                    },
                ),
                None => None,
            };
            match judge(pod, &args, ds_found) {
                Verdict::Delete => to_delete.push(pod.clone()),
                Verdict::Skip => {}
                Verdict::Warn(msg) => {
                    // Ignored DaemonSet pods stay; other warnings go ahead.
                    if msg != DS_WARN {
                        to_delete.push(pod.clone());
                    }
                    warnings.push((msg, id));
                }
                Verdict::Fail(msg) => failures.push((msg, id)),
            }
        }
        if !failures.is_empty() {
            let errors = group(&failures, "cannot delete ");
            let text = if errors.len() == 1 {
                errors[0].clone()
            } else {
                format!("[{}]", errors.join(", "))
            };
            eprintln!(
                "error: unable to drain node {name:?} due to error: {text}, continuing command..."
            );
            eprintln!("There are pending nodes to be drained:");
            eprintln!(" {name}");
            for e in &errors {
                eprintln!("{e}");
            }
            return Err(Error::Reported);
        }
        if !warnings.is_empty() {
            eprintln!("Warning: {}", group(&warnings, "").join("; "));
        }
        let started = Instant::now();
        for pod in &to_delete {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let pod_name = crate::cmd::name_of(pod);
            let mut delete_options = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
            if args.grace_period >= 0 {
                delete_options["gracePeriodSeconds"] = json!(args.grace_period);
            }
            let path = format!("/api/v1/namespaces/{ns}/pods/{pod_name}");
            if args.disable_eviction {
                client
                    .send_json(http::Method::DELETE, &path, &delete_options)
                    .await?;
            } else {
                println!("evicting pod {ns}/{pod_name}");
                let eviction = json!({
                    "apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": pod_name, "namespace": ns},
                    "deleteOptions": delete_options,
                });
                client
                    .send_json(http::Method::POST, &format!("{path}/eviction"), &eviction)
                    .await?;
            }
        }
        for pod in &to_delete {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            let pod_name = crate::cmd::name_of(pod);
            let uid = &pod["metadata"]["uid"];
            let path = format!("/api/v1/namespaces/{ns}/pods/{pod_name}");
            loop {
                match client.get(&path).await {
                    Err(e) if e.is_not_found() => break,
                    Ok(p) if &p["metadata"]["uid"] != uid => break,
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
                if timeout.is_some_and(|t| started.elapsed() > t) {
                    return Err(Error::usage(format!(
                        "unable to drain node {name:?} due to error: drain did not complete within {}, continuing command...",
                        args.timeout
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let verb = if args.disable_eviction {
                "deleted"
            } else {
                "evicted"
            };
            println!("pod/{pod_name} {verb}");
        }
        println!("node/{name} drained");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: DrainArgs,
    }

    #[test]
    fn drain_filters_follow_upstream() {
        let plain = Wrap::parse_from(["drain", "n"]).args;
        let forced = Wrap::parse_from(["drain", "n", "--force", "--ignore-daemonsets"]).args;
        let bare = json!({"metadata": {"name": "p"}, "spec": {}});
        assert_eq!(
            judge(&bare, &plain, None),
            Verdict::Fail(UNMANAGED_FAIL.into())
        );
        assert_eq!(
            judge(&bare, &forced, None),
            Verdict::Warn(UNMANAGED_WARN.into())
        );
        let ds = json!({"metadata": {"ownerReferences": [{"kind": "DaemonSet", "controller": true}]}, "spec": {}});
        assert_eq!(
            judge(&ds, &plain, Some(Ok(()))),
            Verdict::Fail(DS_FAIL.into())
        );
        assert_eq!(
            judge(&ds, &forced, Some(Ok(()))),
            Verdict::Warn(DS_WARN.into())
        );
        let gone = || Some(Err("daemonsets.apps \"x\" not found".to_string()));
        assert_eq!(
            judge(&ds, &plain, gone()),
            Verdict::Fail("daemonsets.apps \"x\" not found".into())
        );
        assert_eq!(judge(&ds, &forced, gone()), Verdict::Delete);
        let rs = json!({"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "controller": true}]},
                        "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        assert_eq!(judge(&rs, &plain, None), Verdict::Fail(LOCAL_FAIL.into()));
        let mirror = json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}});
        assert_eq!(judge(&mirror, &plain, None), Verdict::Skip);
        assert_eq!(
            group(
                &[("m".into(), "a/x".into()), ("m".into(), "a/y".into())],
                "cannot delete "
            ),
            vec!["cannot delete m: a/x, a/y"]
        );
    }
}
