//! `kubectl rollout status|history|undo|pause|resume|restart`: upstream's
//! status viewers, history viewer, rollbacker, pauser/resumer and restarter for
//! deployments (status and restart also for daemonsets and statefulsets).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::AsyncBufReadExt;
use serde_json::{json, Value};

use crate::cmd::describe::template::describe_pod_template;
use crate::cmd::describe::writer::{tabwrite, PrefixWriter};
use crate::cmd::{display_name, finish, name_of, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::resource::ApiResource;

const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
const HASH_LABEL: &str = "pod-template-hash";

#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Show the status of the rollout
    Status(StatusArgs),
    /// View rollout history
    History(HistoryArgs),
    /// Undo a previous rollout
    Undo(UndoArgs),
    /// Mark the provided resource as paused
    Pause(TargetArgs),
    /// Resume a paused resource
    Resume(TargetArgs),
    /// Restart a resource
    Restart(TargetArgs),
}

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    pub resources: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    pub resources: Vec<String>,
    /// Watch the status of the rollout until it's done.
    #[arg(short = 'w', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub watch: bool,
    /// Pin to a specific revision for showing its status. Defaults to 0 (last revision).
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
    /// The length of time to wait before ending watch, zero means never.
    #[arg(long, default_value = "0s")]
    pub timeout: String,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    pub resources: Vec<String>,
    /// See the details, including podTemplate of the revision specified
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, clap::Args)]
pub struct UndoArgs {
    pub resources: Vec<String>,
    /// The revision to rollback to. Default to 0 (last revision).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

pub async fn run(ctx: &Context, command: RolloutCommand) -> Result<()> {
    match command {
        RolloutCommand::Status(args) => status(ctx, args).await,
        RolloutCommand::History(args) => history(ctx, args).await,
        RolloutCommand::Undo(args) => undo(ctx, args).await,
        RolloutCommand::Pause(args) => pause_resume(ctx, args, true).await,
        RolloutCommand::Resume(args) => pause_resume(ctx, args, false).await,
        RolloutCommand::Restart(args) => restart(ctx, args).await,
    }
}

/// The named objects of the arguments, fetched.
async fn objects(ctx: &Context, args: &[String]) -> Result<Vec<(ApiResource, Value)>> {
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, args)?;
    if targets.is_empty() || targets.iter().all(|t| t.names.is_empty()) {
        return Err(Error::usage("required resource not specified"));
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

/// `Deployment.apps`, `ConfigMap`: upstream's `GroupKind.String()`.
fn group_kind_string(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.kind.clone()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Upstream's status viewers: (message, done).
pub fn status_message(kind: &str, obj: &Value, revision: i64) -> Result<(String, bool)> {
    let name = name_of(obj);
    let generation = int(&obj["metadata"]["generation"]);
    let st = &obj["status"];
    let spec = &obj["spec"];
    match kind {
        "Deployment" => {
            if revision > 0 {
                let current = obj["metadata"]["annotations"][REVISION_ANNOTATION]
                    .as_str()
                    .and_then(|r| r.parse::<i64>().ok())
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "cannot get the revision of deployment {name:?}: no revision annotation"
                        ))
                    })?;
                if revision != current {
                    return Err(Error::usage(format!(
                        "desired revision ({revision}) is different from the running revision ({current})"
                    )));
                }
            }
            if generation <= int(&st["observedGeneration"]) {
                let timed_out = st["conditions"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded"
                    })
                });
                if timed_out {
                    return Err(Error::usage(format!(
                        "deployment {name:?} exceeded its progress deadline"
                    )));
                }
                let updated = int(&st["updatedReplicas"]);
                if let Some(replicas) = spec["replicas"].as_i64() {
                    if updated < replicas {
                        return Ok((format!("Waiting for deployment {name:?} rollout to finish: {updated} out of {replicas} new replicas have been updated...\n"), false));
                    }
                }
                let total = int(&st["replicas"]);
                if total > updated {
                    return Ok((format!("Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...\n", total - updated), false));
                }
                let available = int(&st["availableReplicas"]);
                if available < updated {
                    return Ok((format!("Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available...\n"), false));
                }
                return Ok((
                    format!("deployment {name:?} successfully rolled out\n"),
                    true,
                ));
            }
            Ok((
                "Waiting for deployment spec update to be observed...\n".into(),
                false,
            ))
        }
        "DaemonSet" => {
            if spec["updateStrategy"]["type"]
                .as_str()
                .unwrap_or("RollingUpdate")
                != "RollingUpdate"
            {
                return Err(Error::usage(
                    "rollout status is only available for RollingUpdate strategy type",
                ));
            }
            if generation <= int(&st["observedGeneration"]) {
                let updated = int(&st["updatedNumberScheduled"]);
                let desired = int(&st["desiredNumberScheduled"]);
                if updated < desired {
                    return Ok((format!("Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated...\n"), false));
                }
                let available = int(&st["numberAvailable"]);
                if available < desired {
                    return Ok((format!("Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available...\n"), false));
                }
                return Ok((
                    format!("daemon set {name:?} successfully rolled out\n"),
                    true,
                ));
            }
            Ok((
                "Waiting for daemon set spec update to be observed...\n".into(),
                false,
            ))
        }
        "StatefulSet" => {
            let strategy = &spec["updateStrategy"];
            if strategy["type"].as_str().unwrap_or("RollingUpdate") != "RollingUpdate" {
                return Err(Error::usage(
                    "rollout status is only available for RollingUpdate strategy type",
                ));
            }
            let observed = int(&st["observedGeneration"]);
            if observed == 0 || generation > observed {
                return Ok((
                    "Waiting for statefulset spec update to be observed...\n".into(),
                    false,
                ));
            }
            let replicas = spec["replicas"].as_i64();
            if let Some(r) = replicas {
                let ready = int(&st["readyReplicas"]);
                if ready < r {
                    return Ok((
                        format!("Waiting for {} pods to be ready...\n", r - ready),
                        false,
                    ));
                }
            }
            let updated = int(&st["updatedReplicas"]);
            if strategy["rollingUpdate"].is_object() {
                if let (Some(r), Some(p)) =
                    (replicas, strategy["rollingUpdate"]["partition"].as_i64())
                {
                    if updated < r - p {
                        return Ok((format!("Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...\n", r - p), false));
                    }
                }
                return Ok((
                    format!(
                        "partitioned roll out complete: {updated} new pods have been updated...\n"
                    ),
                    true,
                ));
            }
            let update_rev = st["updateRevision"].as_str().unwrap_or_default();
            let current_rev = st["currentRevision"].as_str().unwrap_or_default();
            if update_rev != current_rev {
                return Ok((format!("waiting for statefulset rolling update to complete {updated} pods at revision {update_rev}...\n"), false));
            }
            Ok((
                format!(
                    "statefulset rolling update complete {} pods at revision {current_rev}...\n",
                    int(&st["currentReplicas"])
                ),
                true,
            ))
        }
        _ => Err(Error::usage(format!(
            "no status viewer has been implemented for {kind}"
        ))),
    }
}

/// Go durations as flags take them (`30s`, `1m30s`, `500ms`, `0`).
pub fn parse_duration(text: &str) -> Result<Duration> {
    crate::cmd::wait::parse_duration(text)
        .ok_or_else(|| crate::cmd::wait::duration_flag_error("timeout", text))
}

async fn status(ctx: &Context, args: StatusArgs) -> Result<()> {
    let timeout = parse_duration(&args.timeout)?;
    let objs = objects(ctx, &args.resources).await?;
    for (resource, obj) in objs {
        let watching = watch_status(ctx, &resource, obj, args.watch, args.revision);
        if timeout.is_zero() {
            watching.await?;
        } else {
            match tokio::time::timeout(timeout, watching).await {
                Ok(result) => result?,
                Err(_) => return Err(Error::usage("timed out waiting for the condition")),
            }
        }
    }
    Ok(())
}

async fn watch_status(
    ctx: &Context,
    resource: &ApiResource,
    obj: Value,
    watch: bool,
    revision: i64,
) -> Result<()> {
    use std::io::Write;
    let kind = resource.kind.clone();
    if !matches!(kind.as_str(), "Deployment" | "DaemonSet" | "StatefulSet") {
        return Err(Error::usage(format!(
            "no status viewer has been implemented for {}",
            group_kind_string(resource)
        )));
    }
    let (msg, done) = status_message(&kind, &obj, revision)?;
    print!("{msg}");
    let _ = std::io::stdout().flush();
    if done || !watch {
        return Ok(());
    }
    let client = ctx.client().await?;
    let name = name_of(&obj).to_string();
    let mut rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = ctx.namespace();
    loop {
        let path = format!(
            "{}?fieldSelector={}&watch=1&resourceVersion={}",
            resource.collection_path(Some(&namespace)),
            crate::client::encode(&format!("metadata.name={name}")),
            crate::client::encode(&rv)
        );
        let mut stream = client.stream(&path, "application/json").await?;
        let mut line = String::new();
        loop {
            line.clear();
            let n = stream
                .read_line(&mut line)
                .await
                .map_err(|e| Error::Transport(format!("error: {e}")))?;
            if n == 0 {
                break; // the server closed the watch: start another
            }
            let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            match event["type"].as_str().unwrap_or_default() {
                "ADDED" | "MODIFIED" => {
                    let object = &event["object"];
                    if let Some(v) = object["metadata"]["resourceVersion"].as_str() {
                        rv = v.to_string();
                    }
                    let (msg, done) = status_message(&kind, object, revision)?;
                    print!("{msg}");
                    let _ = std::io::stdout().flush();
                    if done {
                        return Ok(());
                    }
                }
                "DELETED" => return Err(Error::usage("object has been deleted")),
                "ERROR" => {
                    // e.g. a too old resource version: re-read the object
                    let fresh = client.get(&resource.object_path(&namespace, &name)).await?;
                    rv = fresh["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    break;
                }
                _ => {}
            }
        }
    }
}

/// `matchLabels` (and simple `matchExpressions`) as a label selector string.
pub fn selector_string(selector: &Value) -> String {
    // (key, requirement) pairs, sorted by key as upstream's selector `String()`
    let mut parts: Vec<(String, String)> = selector["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default();
    for e in selector["matchExpressions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut values = values;
        values.sort_unstable();
        let text = match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        parts.push((key.to_string(), text));
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// The ReplicaSets a Deployment controls.
pub async fn replica_sets(ctx: &Context, deployment: &Value) -> Result<Vec<Value>> {
    let client = ctx.client().await?;
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let uid = &deployment["metadata"]["uid"];
    let path = format!(
        "/apis/apps/v1/namespaces/{ns}/replicasets?labelSelector={}",
        crate::client::encode(&selector_string(&deployment["spec"]["selector"]))
    );
    let list = client.get(&path).await?;
    Ok(list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["controller"] == true && &r["uid"] == uid)
                })
        })
        .collect())
}

fn revision_of(rs: &Value) -> Option<i64> {
    rs["metadata"]["annotations"][REVISION_ANNOTATION]
        .as_str()
        .and_then(|r| r.parse().ok())
}

fn unsupported_history(resource: &ApiResource) -> Error {
    Error::usage(format!(
        "error retrieving history for \"{0}\", no visitor method exists for {{{1} {0}}}",
        resource.kind, resource.group
    ))
}

async fn history(ctx: &Context, args: HistoryArgs) -> Result<()> {
    let objs = objects(ctx, &args.resources).await?;
    for (resource, obj) in objs {
        if resource.kind != "Deployment" {
            return Err(unsupported_history(&resource));
        }
        let mut info: BTreeMap<i64, Value> = BTreeMap::new();
        for rs in replica_sets(ctx, &obj).await? {
            let Some(rev) = revision_of(&rs) else {
                continue;
            };
            let mut template = rs["spec"]["template"].clone();
            if let Some(cause) = rs["metadata"]["annotations"][CHANGE_CAUSE_ANNOTATION]
                .as_str()
                .filter(|c| !c.is_empty())
            {
                template["metadata"]["annotations"][CHANGE_CAUSE_ANNOTATION] = json!(cause);
            }
            info.insert(rev, template);
        }
        let text = if info.is_empty() {
            "No rollout history found.".to_string()
        } else if args.revision > 0 {
            let template = info
                .get(&args.revision)
                .ok_or_else(|| Error::usage("unable to find the specified revision"))?;
            let mut w = PrefixWriter::new();
            describe_pod_template(template, &mut w);
            w.raw().to_string()
        } else {
            let mut table = String::from("REVISION\tCHANGE-CAUSE\n");
            for (rev, template) in &info {
                let cause = template["metadata"]["annotations"][CHANGE_CAUSE_ANNOTATION]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .unwrap_or("<none>");
                table.push_str(&format!("{rev}\t{cause}\n"));
            }
            tabwrite(&table, 0, 2)
        };
        let with_revision = if args.revision > 0 {
            format!("with revision #{}", args.revision)
        } else {
            String::new()
        };
        println!(
            "{} {with_revision}\n{text}",
            display_name(&resource, name_of(&obj))
        );
    }
    Ok(())
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    t
}

async fn undo(ctx: &Context, args: UndoArgs) -> Result<()> {
    const SKIP: [&str; 6] = [
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    ];
    let objs = objects(ctx, &args.resources).await?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    for (resource, obj) in objs {
        if resource.kind != "Deployment" {
            errors.push(Error::usage(format!(
                "no rollbacker has been implemented for {}",
                group_kind_string(&resource)
            )));
            continue;
        }
        let name = name_of(&obj);
        if obj["spec"]["paused"] == true {
            errors.push(Error::usage("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"));
            continue;
        }
        let sets = replica_sets(ctx, &obj).await?;
        let chosen = if args.to_revision > 0 {
            sets.iter()
                .find(|rs| revision_of(rs) == Some(args.to_revision))
                .ok_or_else(|| {
                    Error::usage(format!(
                        "unable to find specified revision {} in history",
                        args.to_revision
                    ))
                })
        } else {
            let mut revs: Vec<(i64, &Value)> = sets
                .iter()
                .filter_map(|rs| revision_of(rs).map(|r| (r, rs)))
                .collect();
            revs.sort_by_key(|(r, _)| *r);
            if revs.len() < 2 {
                Err(Error::usage(format!(
                    "no rollout history found for deployment {name:?}"
                )))
            } else {
                Ok(revs[revs.len() - 2].1)
            }
        };
        let rs = match chosen {
            Ok(rs) => rs,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let template = without_hash(&rs["spec"]["template"]);
        if template == without_hash(&obj["spec"]["template"]) {
            println!(
                "{} skipped rollback (current template already matches revision {})",
                display_name(&resource, name),
                args.to_revision
            );
            continue;
        }
        let mut annotations = serde_json::Map::new();
        for k in SKIP {
            if let Some(v) = obj["metadata"]["annotations"].get(k) {
                annotations.insert(k.to_string(), v.clone());
            }
        }
        if let Some(m) = rs["metadata"]["annotations"].as_object() {
            for (k, v) in m {
                if !SKIP.contains(&k.as_str()) {
                    annotations.insert(k.clone(), v.clone());
                }
            }
        }
        let patch = json!([
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]);
        let path = resource.object_path(&ctx.namespace(), name);
        match client
            .patch(
                &path,
                "application/json-patch+json",
                serde_json::to_vec(&patch)?,
            )
            .await
        {
            Ok(_) => println!("{} rolled back", display_name(&resource, name)),
            Err(e) => errors.push(Error::usage(format!(
                "failed restoring revision {}: {}",
                args.to_revision,
                e.to_string().trim_start_matches("error: ")
            ))),
        }
    }
    finish(errors)
}

async fn pause_resume(ctx: &Context, args: TargetArgs, pause: bool) -> Result<()> {
    let objs = objects(ctx, &args.resources).await?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    for (resource, obj) in objs {
        let name = name_of(&obj);
        let qualified = resource.qualified_name();
        if resource.kind != "Deployment" {
            let verb = if pause { "pausing" } else { "resuming" };
            errors.push(Error::usage(format!(
                "{qualified} {name:?} {verb} is not supported"
            )));
            continue;
        }
        let paused = obj["spec"]["paused"] == true;
        if pause && paused {
            errors.push(Error::usage(format!(
                "{qualified} {name:?} is already paused"
            )));
            continue;
        }
        if !pause && !paused {
            errors.push(Error::usage(format!("{qualified} {name:?} is not paused")));
            continue;
        }
        let patch = if pause {
            json!({"spec": {"paused": true}})
        } else {
            json!({"spec": {"paused": null}})
        };
        match client
            .patch(
                &resource.object_path(&ctx.namespace(), name),
                "application/strategic-merge-patch+json",
                serde_json::to_vec(&patch)?,
            )
            .await
        {
            Ok(_) => println!(
                "{} {}",
                display_name(&resource, name),
                if pause { "paused" } else { "resumed" }
            ),
            Err(e) => errors.push(e),
        }
    }
    finish(errors)
}

async fn restart(ctx: &Context, args: TargetArgs) -> Result<()> {
    let objs = objects(ctx, &args.resources).await?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (resource, obj) in objs {
        let name = name_of(&obj);
        let qualified = resource.qualified_name();
        if !matches!(
            resource.kind.as_str(),
            "Deployment" | "DaemonSet" | "StatefulSet"
        ) {
            errors.push(Error::usage(format!(
                "{qualified} {name:?} restarting is not supported"
            )));
            continue;
        }
        if obj["spec"]["paused"] == true {
            errors.push(Error::usage(format!(
                "{qualified} {name:?} can't restart paused deployment (run rollout resume first)"
            )));
            continue;
        }
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": now}}}}});
        match client
            .patch(
                &resource.object_path(&ctx.namespace(), name),
                "application/strategic-merge-patch+json",
                serde_json::to_vec(&patch)?,
            )
            .await
        {
            Ok(_) => println!("{} restarted", display_name(&resource, name)),
            Err(e) => errors.push(e),
        }
    }
    finish(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_status_messages() {
        let d = json!({"metadata": {"name": "app", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1}});
        assert_eq!(
            status_message("Deployment", &d, 0).unwrap(),
            ("Waiting for deployment \"app\" rollout to finish: 1 out of 2 new replicas have been updated...\n".to_string(), false)
        );
        let d = json!({"metadata": {"name": "app", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(
            status_message("Deployment", &d, 0).unwrap(),
            (
                "deployment \"app\" successfully rolled out\n".to_string(),
                true
            )
        );
        let d = json!({"metadata": {"name": "app", "generation": 3}, "status": {"observedGeneration": 2}});
        assert!(!status_message("Deployment", &d, 0).unwrap().1);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn selectors() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&s), "app=web,tier in (a,b)");
    }
}
