//! The legacy `kubectl rolling-update OLD (-f NEW | [NEW] --image=IMAGE | [NEW] --rollback)`
//! of upstream 1.x (`pkg/kubectl/rolling_updater.go`, `cmd/rollingupdate`):
//! the new ReplicationController is created with 0 replicas (annotated with
//! `desired-replicas` and `update-source-id`), scaled up one pod over the
//! desired count at a time while the old one is scaled down as new pods become
//! ready (keep all desired pods available, exceed by at most one), then the old
//! controller is deleted; with `--image` and no new name, the new controller is
//! renamed to the old name at the end.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};

use crate::client::Client;
use crate::cmd::attach::duration_flag;
use crate::cmd::list_query;
use crate::context::Context;
use crate::errors::{Error, Result};

const PREFIX: &str = "kubectl.kubernetes.io/";
const SOURCE_ID: &str = "kubectl.kubernetes.io/update-source-id";
const DESIRED_REPLICAS: &str = "kubectl.kubernetes.io/desired-replicas";
const ORIGINAL_REPLICAS: &str = "kubectl.kubernetes.io/original-replicas";
const NEXT_CONTROLLER: &str = "kubectl.kubernetes.io/next-controller-id";

#[derive(Debug, clap::Args)]
pub struct RollingUpdateArgs {
    /// OLD_CONTROLLER_NAME [NEW_CONTROLLER_NAME]
    pub names: Vec<String>,
    /// Filename or URL to file to use to create the new replication controller.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Image to use for upgrading the replication controller.
    #[arg(long, default_value = "")]
    pub image: String,
    /// The key to use to differentiate between two different controllers, default 'deployment'.
    #[arg(long, default_value = "deployment")]
    pub deployment_label_key: String,
    /// Container name which will have its image upgraded.
    #[arg(long, default_value = "")]
    pub container: String,
    /// Explicit policy for when to pull container images.
    #[arg(long, default_value = "")]
    pub image_pull_policy: String,
    /// If true, this is a request to abort an existing rollout that is partially rolled out.
    #[arg(long)]
    pub rollback: bool,
    /// Time to wait between updating pods.
    #[arg(long, default_value = "1m0s")]
    pub update_period: String,
    /// Time delay between polling for replication controller status after the update.
    #[arg(long, default_value = "3s")]
    pub poll_interval: String,
    /// Max time to wait for a replication controller to update before giving up.
    #[arg(long, default_value = "5m0s")]
    pub timeout: String,
    /// Only print the controllers that would be rolled.
    #[arg(long, num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
}

/// What happens to the controllers once the new one is fully scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cleanup {
    Delete,
    Rename,
}

struct Updater<'a> {
    client: &'a Client,
    namespace: String,
    update_period: Duration,
    interval: Duration,
    timeout: Duration,
}

fn usage_error(msg: &str) -> Error {
    Error::usage(format!(
        "{msg}\nSee 'kubectl rolling-update -h' for help and examples"
    ))
}

fn validate(args: &RollingUpdateArgs) -> Result<()> {
    if args.deployment_label_key.is_empty() {
        return Err(usage_error("--deployment-label-key can not be empty"));
    }
    if args.filenames.len() > 1 {
        return Err(usage_error(
            "May only specify a single filename for new controller",
        ));
    }
    if !args.rollback {
        if args.filenames.is_empty() && args.image.is_empty() {
            return Err(usage_error(
                "Must specify --filename or --image for new controller",
            ));
        }
        if !args.filenames.is_empty() && !args.image.is_empty() {
            return Err(usage_error(
                "--filename and --image can not both be specified",
            ));
        }
    } else if !args.filenames.is_empty() || !args.image.is_empty() {
        return Err(usage_error(
            "Don't specify --filename or --image on rollback",
        ));
    }
    if args.names.is_empty() {
        return Err(usage_error("Must specify the controller to update"));
    }
    Ok(())
}

fn name(rc: &Value) -> &str {
    rc["metadata"]["name"].as_str().unwrap_or_default()
}

fn replicas(rc: &Value) -> i64 {
    rc["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn annotation<'v>(rc: &'v Value, key: &str) -> Option<&'v str> {
    rc["metadata"]["annotations"][key].as_str()
}

fn set_annotation(rc: &mut Value, key: &str, value: &str) {
    if !rc["metadata"]["annotations"].is_object() {
        rc["metadata"]["annotations"] = json!({});
    }
    rc["metadata"]["annotations"][key] = json!(value);
}

/// A stable hex digest of an object (upstream hashes its encoding with md5).
fn hash_object(obj: &Value) -> String {
    let text = obj.to_string();
    let mut out = String::new();
    for salt in [0u8, 1] {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        text.hash(&mut hasher);
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// Go's `map[k:v ...]` rendering of annotations, for upstream's error text.
fn go_map(value: &Value) -> String {
    let mut pairs: Vec<String> = value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    format!("map[{}]", pairs.join(" "))
}

/// `a=b,c=d` of an RC's selector (a plain map).
fn selector(rc: &Value) -> String {
    let mut pairs: Vec<String> = rc["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

impl Updater<'_> {
    fn path(&self, name: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/replicationcontrollers/{name}",
            self.namespace
        )
    }

    async fn get(&self, name: &str) -> Result<Value> {
        self.client.get(&self.path(name)).await
    }

    /// Get, change, PUT; again on a conflict (upstream `updateRcWithRetries`).
    async fn update(&self, name: &str, change: impl Fn(&mut Value)) -> Result<Value> {
        let mut attempts = 0;
        loop {
            let mut rc = self.get(name).await?;
            change(&mut rc);
            match self
                .client
                .send_json(Method::PUT, &self.path(name), &rc)
                .await
            {
                Err(e) if matches!(&e, Error::Server(s) if s.code == 409) && attempts < 5 => {
                    attempts += 1
                }
                other => return other,
            }
        }
    }

    /// Scales `name` to `count` and waits until the controller reports it.
    async fn scale_and_wait(&self, name: &str, count: i64) -> Result<Value> {
        let patch = json!({"spec": {"replicas": count}});
        self.client
            .patch(
                &self.path(name),
                "application/merge-patch+json",
                serde_json::to_vec(&patch)?,
            )
            .await?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let rc = self.get(name).await?;
            let generation = rc["metadata"]["generation"].as_i64().unwrap_or(0);
            let observed = rc["status"]["observedGeneration"].as_i64().unwrap_or(0);
            if observed >= generation
                && rc["status"]["replicas"].as_i64().unwrap_or(0) == replicas(&rc)
            {
                return Ok(rc);
            }
            if Instant::now() >= deadline {
                return Err(Error::usage("timed out waiting for the condition"));
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// Ready (and not deleted) pods of a controller.
    async fn ready_pods(&self, rc: &Value) -> Result<i64> {
        let list = self
            .client
            .get(&format!(
                "/api/v1/namespaces/{}/pods{}",
                self.namespace,
                list_query(Some(&selector(rc)), None)
            ))
            .await?;
        let ready = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        Ok(i64::try_from(ready).unwrap_or(i64::MAX))
    }

    /// The new controller: created with 0 replicas, or an interrupted update's.
    async fn get_or_create_target(
        &self,
        mut new_rc: Value,
        source_id: &str,
        out: &mut Vec<String>,
    ) -> Result<Value> {
        match self.get(name(&new_rc)).await {
            Ok(existing) => {
                let ok = annotation(&existing, SOURCE_ID) == Some(source_id)
                    && annotation(&existing, DESIRED_REPLICAS).is_some();
                if !ok {
                    return Err(Error::usage(format!(
                        "Missing/unexpected annotations for controller {}, expected {source_id} : {}",
                        name(&new_rc),
                        go_map(&existing["metadata"]["annotations"])
                    )));
                }
                out.push(format!(
                    "Continuing update with existing controller {}.",
                    name(&existing)
                ));
                Ok(existing)
            }
            Err(e) if e.is_not_found() => {
                let count = replicas(&new_rc);
                if count <= 0 {
                    return Err(Error::usage(format!(
                        "Invalid controller spec for {}; required: > 0 replicas, actual: {count}\n",
                        name(&new_rc)
                    )));
                }
                set_annotation(&mut new_rc, DESIRED_REPLICAS, &count.to_string());
                set_annotation(&mut new_rc, SOURCE_ID, source_id);
                new_rc["spec"]["replicas"] = json!(0);
                let created = self
                    .client
                    .send_json(
                        Method::POST,
                        &format!(
                            "/api/v1/namespaces/{}/replicationcontrollers",
                            self.namespace
                        ),
                        &new_rc,
                    )
                    .await?;
                out.push(format!("Created {}", name(&created)));
                Ok(created)
            }
            Err(e) => Err(e),
        }
    }

    /// Upstream `RollingUpdater.Update` with maxSurge 1 and maxUnavailable 0.
    async fn rolling_update(&self, old_rc: Value, new_rc: Value, cleanup: Cleanup) -> Result<()> {
        let source_id = format!(
            "{}:{}",
            name(&old_rc),
            old_rc["metadata"]["uid"].as_str().unwrap_or_default()
        );
        let mut lines = Vec::new();
        let mut new_rc = self
            .get_or_create_target(new_rc, &source_id, &mut lines)
            .await?;
        say(&mut lines);
        let desired: i64 = annotation(&new_rc, DESIRED_REPLICAS)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::usage(format!(
                    "Unable to parse annotation for {}: {DESIRED_REPLICAS}={}",
                    name(&new_rc),
                    annotation(&new_rc, DESIRED_REPLICAS).unwrap_or_default()
                ))
            })?;
        let mut old_rc = old_rc;
        if annotation(&old_rc, ORIGINAL_REPLICAS).is_none() {
            old_rc = self
                .update(name(&old_rc), |rc| {
                    let count = replicas(rc).to_string();
                    set_annotation(rc, ORIGINAL_REPLICAS, &count);
                })
                .await?;
        }
        let max_surge: i64 = 1;
        let (min_available, _max_unavailable) = if desired == 0 {
            (0, replicas(&old_rc))
        } else {
            (desired, 0)
        };
        println!(
            "Scaling up {} from {} to {desired}, scaling down {} from {} to 0 (keep {min_available} pods available, don't exceed {} pods)",
            name(&new_rc),
            replicas(&new_rc),
            name(&old_rc),
            replicas(&old_rc),
            desired + max_surge
        );
        let mut progress_deadline = Instant::now() + self.timeout;
        while replicas(&new_rc) != desired || replicas(&old_rc) != 0 {
            let (new_before, old_before) = (replicas(&new_rc), replicas(&old_rc));
            // Scale up as far as the surge allows.
            if replicas(&new_rc) != desired {
                let mut increment = (desired + max_surge) - (replicas(&old_rc) + replicas(&new_rc));
                if replicas(&old_rc) == 0 {
                    increment = desired - replicas(&new_rc);
                }
                if increment > 0 {
                    let target = (replicas(&new_rc) + increment).min(desired);
                    println!("Scaling {} up to {target}", name(&new_rc));
                    new_rc = self
                        .scale_and_wait(name(&new_rc).to_string().as_str(), target)
                        .await?;
                }
            }
            tokio::time::sleep(self.update_period).await;
            // Scale down as far as availability allows.
            if replicas(&old_rc) != 0 {
                let new_available = self.ready_pods(&new_rc).await?;
                let all = replicas(&old_rc) + replicas(&new_rc);
                let new_unavailable = replicas(&new_rc) - new_available;
                let decrement = all - min_available - new_unavailable;
                if decrement > 0 {
                    let mut target = (replicas(&old_rc) - decrement).max(0);
                    if replicas(&new_rc) == desired && new_available == desired {
                        target = 0;
                    }
                    println!("Scaling {} down to {target}", name(&old_rc));
                    old_rc = self
                        .scale_and_wait(name(&old_rc).to_string().as_str(), target)
                        .await?;
                }
            }
            if replicas(&new_rc) != new_before || replicas(&old_rc) != old_before {
                progress_deadline = Instant::now() + self.timeout;
            } else if Instant::now() > progress_deadline {
                return Err(Error::usage(
                    "timed out waiting for any update progress to be made",
                ));
            }
        }
        self.cleanup(&old_rc, &new_rc, cleanup).await
    }

    async fn cleanup(&self, old_rc: &Value, new_rc: &Value, policy: Cleanup) -> Result<()> {
        let new_rc = self
            .update(name(new_rc), |rc| {
                if let Some(a) = rc["metadata"]["annotations"].as_object_mut() {
                    a.remove(SOURCE_ID);
                    a.remove(DESIRED_REPLICAS);
                }
            })
            .await?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let rc = self.get(name(&new_rc)).await?;
            let generation = rc["metadata"]["generation"].as_i64().unwrap_or(0);
            if rc["status"]["observedGeneration"].as_i64().unwrap_or(0) >= generation
                && rc["status"]["replicas"].as_i64().unwrap_or(0) == replicas(&rc)
            {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::usage("timed out waiting for the condition"));
            }
            tokio::time::sleep(self.interval).await;
        }
        let old_name = name(old_rc);
        match policy {
            Cleanup::Delete => {
                println!("Update succeeded. Deleting {old_name}");
                self.client
                    .request(
                        Method::DELETE,
                        &self.path(old_name),
                        "application/json",
                        None,
                    )
                    .await?;
            }
            Cleanup::Rename => {
                println!("Update succeeded. Deleting old controller: {old_name}");
                self.client
                    .request(
                        Method::DELETE,
                        &self.path(old_name),
                        "application/json",
                        None,
                    )
                    .await?;
                println!("Renaming {} to {old_name}", name(&new_rc));
                self.rename(new_rc, old_name).await?;
            }
        }
        Ok(())
    }

    /// Upstream `Rename`: delete the controller orphaning its pods, wait until
    /// it is gone, create it again under `new_name` (it adopts the pods).
    async fn rename(&self, mut rc: Value, new_name: &str) -> Result<()> {
        let old_name = name(&rc).to_string();
        let orphan =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"});
        match self
            .client
            .send_json(Method::DELETE, &self.path(&old_name), &orphan)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.get(&old_name).await {
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
                Ok(_) if Instant::now() >= deadline => {
                    return Err(Error::usage("timed out waiting for the condition"))
                }
                Ok(_) => tokio::time::sleep(self.interval.min(Duration::from_secs(5))).await,
            }
        }
        rc["metadata"] = json!({
            "name": new_name,
            "labels": rc["metadata"]["labels"].clone(),
            "annotations": rc["metadata"]["annotations"].clone(),
        });
        if rc["metadata"]["labels"].is_null() {
            rc["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
        if let Some(obj) = rc.as_object_mut() {
            obj.remove("status");
        }
        self.client
            .send_json(
                Method::POST,
                &format!(
                    "/api/v1/namespaces/{}/replicationcontrollers",
                    self.namespace
                ),
                &rc,
            )
            .await?;
        Ok(())
    }

    /// Finds the controller an interrupted `--image` update was renaming.
    async fn find_source_controller(&self, old_name: &str) -> Result<Value> {
        let list = self
            .client
            .get(&format!(
                "/api/v1/namespaces/{}/replicationcontrollers",
                self.namespace
            ))
            .await?;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|rc| {
                annotation(rc, SOURCE_ID).is_some_and(|s| s.split(':').next() == Some(old_name))
            })
            .cloned()
            .ok_or_else(|| {
                Error::usage(format!(
                    "couldn't find a replication controller with source id == {}/{old_name}",
                    self.namespace
                ))
            })
    }

    /// The new controller of `--image`: the old one with the image replaced and
    /// the deployment key (the hash of the result) in selector and labels.
    async fn new_from_current(
        &self,
        old_rc: &Value,
        new_name: &str,
        args: &RollingUpdateArgs,
    ) -> Result<Value> {
        let mut new_rc = old_rc.clone();
        let containers = new_rc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut index = 0;
        if !args.container.is_empty() {
            index = containers
                .iter()
                .position(|c| c["name"].as_str() == Some(args.container.as_str()))
                .ok_or_else(|| {
                    Error::usage(format!("container {} not found in pod", args.container))
                })?;
        }
        if containers.len() > 1 && args.container.is_empty() {
            return Err(Error::usage(
                "must specify container to update when updating a multi-container pod",
            ));
        }
        if containers.is_empty() {
            return Err(Error::usage(format!(
                "pod has no containers! ({})",
                name(old_rc)
            )));
        }
        let container = &mut new_rc["spec"]["template"]["spec"]["containers"][index];
        container["image"] = json!(args.image);
        if !args.image_pull_policy.is_empty() {
            container["imagePullPolicy"] = json!(args.image_pull_policy);
        }
        let hash = hash_object(&new_rc);
        let new_name = if new_name.is_empty() {
            format!("{}-{hash}", name(old_rc))
        } else {
            new_name.to_string()
        };
        let key = &args.deployment_label_key;
        new_rc["spec"]["selector"][key] = json!(hash);
        if !new_rc["spec"]["template"]["metadata"]["labels"].is_object() {
            new_rc["spec"]["template"]["metadata"]["labels"] = json!({});
        }
        new_rc["spec"]["template"]["metadata"]["labels"][key] = json!(hash);
        new_rc["metadata"] = json!({
            "name": new_name,
            "namespace": self.namespace,
            "labels": old_rc["metadata"]["labels"].clone(),
            "annotations": old_rc["metadata"]["annotations"].clone(),
        });
        for field in ["labels", "annotations"] {
            if new_rc["metadata"][field].is_null() {
                new_rc["metadata"].as_object_mut().map(|m| m.remove(field));
            }
        }
        if let Some(a) = new_rc["metadata"]["annotations"].as_object_mut() {
            a.retain(|k, _| {
                !k.starts_with(PREFIX) || k == "kubectl.kubernetes.io/last-applied-configuration"
            });
        }
        if let Some(obj) = new_rc.as_object_mut() {
            obj.remove("status");
        }
        Ok(new_rc)
    }

    /// Upstream `UpdateExistingReplicationController`: the old controller
    /// points at the next one and gets its own deployment key (relabelling its
    /// pods first) when it has none.
    async fn update_existing(
        &self,
        old_rc: Value,
        new_name: &str,
        key: &str,
        value: &str,
    ) -> Result<Value> {
        if old_rc["spec"]["selector"].get(key).is_some() {
            return self
                .update(name(&old_rc), |rc| {
                    set_annotation(rc, NEXT_CONTROLLER, new_name)
                })
                .await;
        }
        let old_name = name(&old_rc).to_string();
        let old_rc = self
            .update(&old_name, |rc| {
                set_annotation(rc, NEXT_CONTROLLER, new_name);
                if !rc["spec"]["template"]["metadata"]["labels"].is_object() {
                    rc["spec"]["template"]["metadata"]["labels"] = json!({});
                }
                rc["spec"]["template"]["metadata"]["labels"][key] = json!(value);
            })
            .await?;
        let original_selector = selector(&old_rc);
        let pods_path = |sel: &str| {
            format!(
                "/api/v1/namespaces/{}/pods{}",
                self.namespace,
                list_query(Some(sel), None)
            )
        };
        let pods = self.client.get(&pods_path(&original_selector)).await?;
        for pod in pods["items"].as_array().into_iter().flatten() {
            let patch = json!({"metadata": {"labels": {key: value}}});
            let path = format!(
                "/api/v1/namespaces/{}/pods/{}",
                self.namespace,
                crate::cmd::name_of(pod)
            );
            self.client.merge_patch(&path, &patch).await?;
        }
        let old_rc = self
            .update(&old_name, |rc| rc["spec"]["selector"][key] = json!(value))
            .await?;
        // Pods the controller made with the old labels meanwhile are orphans now.
        let pods = self.client.get(&pods_path(&original_selector)).await?;
        for pod in pods["items"].as_array().into_iter().flatten() {
            if pod["metadata"]["labels"][key].as_str() != Some(value) {
                let path = format!(
                    "/api/v1/namespaces/{}/pods/{}",
                    self.namespace,
                    crate::cmd::name_of(pod)
                );
                self.client
                    .request(Method::DELETE, &path, "application/json", None)
                    .await?;
            }
        }
        Ok(old_rc)
    }
}

fn say(lines: &mut Vec<String>) {
    for line in lines.drain(..) {
        println!("{line}");
    }
}

/// The one ReplicationController of `-f FILE`; whether it left `replicas` out.
fn read_new_controller(file: &str) -> Result<(Value, bool)> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|_| Error::usage(format!("the path \"{file}\" does not exist")))?
    };
    let docs = crate::manifest::parse_documents(&text, file)?;
    if docs.len() > 1 {
        return Err(Error::usage(format!("{file} specifies multiple items")));
    }
    let Some(doc) = docs.into_iter().next() else {
        return Err(Error::usage(format!(
            "please make sure {file} exists and is not empty"
        )));
    };
    let obj = doc.object;
    if obj["kind"] != "ReplicationController" {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        return Err(Error::usage(format!(
            "{file} contains a {group}/{version}, Kind={} not a ReplicationController",
            obj["kind"].as_str().unwrap_or_default()
        )));
    }
    let defaulted = obj["spec"]["replicas"].is_null();
    Ok((obj, defaulted))
}

pub async fn run(ctx: &Context, args: RollingUpdateArgs) -> Result<()> {
    validate(&args)?;
    let old_name = args.names[0].clone();
    // As the classic 1.x command: only `--image` without a new name renames.
    let keep_old_name = args.names.len() == 1 && !args.image.is_empty();
    let updater = Updater {
        client: ctx.client().await?,
        namespace: ctx.namespace(),
        update_period: duration_flag("update-period", &args.update_period)?,
        interval: duration_flag("poll-interval", &args.poll_interval)?,
        timeout: duration_flag("timeout", &args.timeout)?,
    };
    let find_new_name = |old: &Value| -> String {
        args.names
            .get(1)
            .cloned()
            .or_else(|| annotation(old, NEXT_CONTROLLER).map(str::to_string))
            .unwrap_or_default()
    };
    let mut old_rc = match updater.get(&old_name).await {
        Ok(rc) => rc,
        Err(e) if e.is_not_found() && !args.image.is_empty() && keep_old_name => {
            // Interrupted in the middle of the rename: finish it.
            let new_rc = updater.find_source_controller(&old_name).await?;
            return updater.rename(new_rc, &old_name).await;
        }
        Err(e) => return Err(e),
    };
    let filename = args.filenames.first().cloned().unwrap_or_default();
    let mut new_rc = Value::Null;
    let mut replicas_defaulted = false;
    if !filename.is_empty() {
        let (rc, defaulted) = read_new_controller(&filename)?;
        new_rc = rc;
        replicas_defaulted = defaulted;
        new_rc["metadata"]["namespace"] = json!(updater.namespace);
    }
    if !args.image.is_empty() {
        let new_name = find_new_name(&old_rc);
        let existing = if new_name.is_empty() {
            None
        } else {
            match updater.get(&new_name).await {
                Ok(rc) => Some(rc),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        };
        new_rc = match existing {
            Some(rc) => {
                let in_progress = rc["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default();
                if in_progress != args.image {
                    return Err(Error::usage(format!(
                        "Found existing in-progress update to image ({in_progress}).\nEither continue in-progress update with --image={in_progress} or rollback with --rollback"
                    )));
                }
                println!(
                    "Found existing update in progress ({}), resuming.",
                    name(&rc)
                );
                rc
            }
            None => {
                if old_rc["spec"]["template"]["spec"]["containers"][0]["image"].as_str()
                    == Some(args.image.as_str())
                    && args.image_pull_policy.is_empty()
                {
                    return Err(Error::usage(
                        "--image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the same as existing container image",
                    ));
                }
                updater.new_from_current(&old_rc, &new_name, &args).await?
            }
        };
        let old_hash = format!("{}-orig", hash_object(&old_rc));
        old_rc = updater
            .update_existing(old_rc, name(&new_rc), &args.deployment_label_key, &old_hash)
            .await?;
    }
    if args.rollback {
        let new_name = find_new_name(&old_rc);
        new_rc = match updater.get(&new_name).await {
            Ok(rc) => rc,
            Err(e) if e.is_not_found() || new_name.is_empty() => {
                return Err(Error::usage(format!(
                    "Could not find {new_name} to rollback.\n"
                )))
            }
            Err(e) => return Err(e),
        };
    }
    if old_name == name(&new_rc) {
        return Err(Error::usage(format!(
            "{filename} cannot have the same name as the existing ReplicationController {old_name}"
        )));
    }
    let differs = old_rc["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .any(|(k, v)| new_rc["spec"]["selector"].get(k).is_some_and(|nv| nv != v));
    if !differs {
        return Err(Error::usage(format!(
            "{filename} must specify a matching key with non-equal value in Selector for {old_name}"
        )));
    }
    if replicas_defaulted {
        new_rc["spec"]["replicas"] = json!(replicas(&old_rc));
    }
    if args.dry_run.as_deref().is_some_and(|d| d != "none") {
        println!("Rolling from:\n{}\nTo:\n{}", name(&old_rc), name(&new_rc));
        return Ok(());
    }
    let mut cleanup = if keep_old_name {
        Cleanup::Rename
    } else {
        Cleanup::Delete
    };
    if args.rollback {
        // Upstream `AbortRollingUpdate`: swap the controllers and go back to
        // the original size of the one being restored.
        std::mem::swap(&mut old_rc, &mut new_rc);
        let source = format!(
            "{}:{}",
            name(&old_rc),
            old_rc["metadata"]["uid"].as_str().unwrap_or_default()
        );
        let original = annotation(&new_rc, ORIGINAL_REPLICAS)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::usage(format!(
                    "couldn't find original replica count of {:?}",
                    name(&new_rc)
                ))
            })?;
        println!("Setting {:?} replicas to {original}", name(&new_rc));
        cleanup = Cleanup::Delete;
        new_rc = updater
            .update(name(&new_rc).to_string().as_str(), |rc| {
                set_annotation(rc, SOURCE_ID, &source);
                set_annotation(rc, DESIRED_REPLICAS, &original);
            })
            .await?;
    }
    let new_name = name(&new_rc).to_string();
    updater.rolling_update(old_rc, new_rc, cleanup).await?;
    if keep_old_name {
        println!("replicationcontroller/{old_name} rolling updated");
    } else {
        println!("replicationcontroller/{old_name} rolling updated to {new_name:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(names: &[&str], file: Option<&str>, image: &str, rollback: bool) -> RollingUpdateArgs {
        RollingUpdateArgs {
            names: names.iter().map(|s| s.to_string()).collect(),
            filenames: file.map(|f| vec![f.to_string()]).unwrap_or_default(),
            image: image.into(),
            deployment_label_key: "deployment".into(),
            container: String::new(),
            image_pull_policy: String::new(),
            rollback,
            update_period: "1m0s".into(),
            poll_interval: "3s".into(),
            timeout: "5m0s".into(),
            dry_run: None,
        }
    }

    #[test]
    fn arguments_are_validated_as_upstream() {
        let err = |a: RollingUpdateArgs| validate(&a).expect_err("invalid").to_string();
        assert!(err(args(&["a"], None, "", false))
            .starts_with("error: Must specify --filename or --image for new controller"));
        assert!(err(args(&["a"], Some("f"), "img", false))
            .starts_with("error: --filename and --image can not both be specified"));
        assert!(err(args(&["a"], Some("f"), "", true))
            .starts_with("error: Don't specify --filename or --image on rollback"));
        assert!(err(args(&[], Some("f"), "", false))
            .starts_with("error: Must specify the controller to update"));
        assert!(validate(&args(&["a"], None, "img", false)).is_ok());
        assert!(validate(&args(&["a", "b"], None, "", true)).is_ok());
    }

    #[test]
    fn hashes_are_stable_and_distinct() {
        let a = json!({"spec": {"template": {"spec": {"containers": [{"image": "a"}]}}}});
        let b = json!({"spec": {"template": {"spec": {"containers": [{"image": "b"}]}}}});
        assert_eq!(hash_object(&a), hash_object(&a));
        assert_ne!(hash_object(&a), hash_object(&b));
        assert_eq!(hash_object(&a).len(), 32);
        assert_eq!(go_map(&json!({"b": "2", "a": "1"})), "map[a:1 b:2]");
        assert_eq!(
            selector(&json!({"spec": {"selector": {"b": "2", "a": "1"}}})),
            "a=1,b=2"
        );
    }
}
