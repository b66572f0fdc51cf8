//! `create job NAME --image=X [-- COMMAND]` and `create job NAME
//! --from=cronjob/NAME` (upstream `create_job.go`).

use serde_json::{json, Value};

use super::WriteOptions;
use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    pub name: String,
    /// Image name to run.
    #[arg(long)]
    pub image: Option<String>,
    /// The name of the resource to create a Job from (only cronjob is supported).
    #[arg(long)]
    pub from: Option<String>,
    /// The command to run (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub write: WriteOptions,
}

pub async fn job(ctx: &Context, args: &JobArgs) -> Result<Value> {
    match (&args.image, &args.from) {
        (Some(_), Some(_)) | (None, None) => {
            Err(Error::usage("either --image or --from must be specified"))
        }
        (Some(image), None) => Ok(from_image(&args.name, image, &args.command)),
        (None, Some(from)) => {
            if !args.command.is_empty() {
                return Err(Error::usage("cannot specify --from and command"));
            }
            let (kind, cron_name) = from.split_once('/').ok_or_else(|| {
                Error::usage(format!(
                    "from must be of the form <resource>/<name>, got {from}"
                ))
            })?;
            let discovery = ctx.discovery().await?;
            let resource = discovery
                .resolve(kind)?
                .into_iter()
                .next()
                .filter(|r| r.group == "batch" && r.name == "cronjobs")
                .ok_or_else(|| Error::usage(format!("unknown object type {kind}")))?;
            let client = ctx.client().await?;
            let cronjob = client
                .get(&resource.object_path(&ctx.namespace(), cron_name))
                .await?;
            Ok(from_cronjob(&args.name, &cronjob))
        }
    }
}

fn from_image(name: &str, image: &str, command: &[String]) -> Value {
    let mut container = json!({"name": name, "image": image, "resources": {}});
    if !command.is_empty() {
        container["command"] = json!(command);
    }
    json!({"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name},
           "spec": {"template": {"metadata": {},
                                 "spec": {"containers": [container], "restartPolicy": "Never"}}},
           "status": {}})
}

/// Upstream `createJobFromCronJob`: the job template, annotated as a manual
/// run and owned by the CronJob.
fn from_cronjob(name: &str, cronjob: &Value) -> Value {
    let template = &cronjob["spec"]["jobTemplate"];
    let mut annotations = json!({"cronjob.kubernetes.io/instantiate": "manual"});
    if let Some(extra) = template["metadata"]["annotations"].as_object() {
        for (k, v) in extra {
            annotations[k] = v.clone();
        }
    }
    let mut metadata = json!({
        "name": name,
        "annotations": annotations,
        "ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": cronjob["metadata"]["name"],
            "uid": cronjob["metadata"]["uid"],
            "controller": true,
        }],
    });
    if let Some(labels) = template["metadata"]["labels"].as_object() {
        metadata["labels"] = json!(labels);
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
           "spec": template["spec"].clone(), "status": {}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_from_cronjob_is_owned_and_annotated() {
        let cron = json!({"metadata": {"name": "c", "uid": "u1"},
                          "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}},
                                                   "spec": {"template": {"spec": {}}}}}});
        let job = from_cronjob("j", &cron);
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(job["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(
            job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
            "manual"
        );
        let plain = from_image("j", "busybox", &["sleep".into(), "1".into()]);
        assert_eq!(
            plain["spec"]["template"]["spec"]["containers"][0]["command"],
            json!(["sleep", "1"])
        );
    }
}
