//! `kubectl autoscale (-f FILE | TYPE NAME | TYPE/NAME) [--min=N] --max=M
//! [--cpu-percent=P] [--name=NAME]`: creates a HorizontalPodAutoscaler for a
//! scalable object.
//!
//! Upstream 1.32 builds an `autoscaling/v1` HPA (`targetCPUUtilizationPercentage`);
//! our apiserver serves `autoscaling/v2` only, so we build the same object in
//! its v2 form (what the apiserver's v1→v2 conversion gives): the CPU target
//! becomes a `Resource` metric with a `Utilization` target.

use serde_json::{json, Value};

use crate::cmd::create::{DryRun, WriteOptions};
use crate::cmd::{manifest_target, name_of, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::manifest::FilenameArgs;
use crate::resource::ApiResource;

#[derive(Debug, clap::Args)]
pub struct AutoscaleArgs {
    /// (TYPE NAME | TYPE/NAME)
    pub resources: Vec<String>,
    /// The lower limit for the number of pods that can be set by the autoscaler.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub min: i32,
    /// The upper limit for the number of pods that can be set by the autoscaler. Required.
    #[arg(long, allow_negative_numbers = true)]
    pub max: Option<i32>,
    /// The target average CPU utilization (represented as a percent of requested CPU) over all the pods.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub cpu_percent: i32,
    /// The name for the newly created object. If not specified, the name of the input resource will be used.
    #[arg(long)]
    pub name: Option<String>,
    /// If true, the configuration of current object will be saved in its annotation.
    #[arg(long)]
    pub save_config: bool,
    #[command(flatten)]
    pub filenames: FilenameArgs,
    #[command(flatten)]
    pub write: WriteOptions,
}

/// Upstream's `Validate`.
fn validate(args: &AutoscaleArgs) -> Result<i32> {
    // upstream: cobra's required-flag check (printed through klog there)
    let max = args
        .max
        .ok_or_else(|| Error::usage("required flag(s) \"max\" not set"))?;
    if max < 1 {
        return Err(Error::usage(format!(
            "--max=MAXPODS is required and must be at least 1, max: {}",
            max
        )));
    }
    if max < args.min {
        return Err(Error::usage(format!(
            "--max=MAXPODS must be larger or equal to --min=MINPODS, max: {}, min: {}",
            max, args.min
        )));
    }
    Ok(max)
}

/// The HPA for the object `ref_name` of `resource` (upstream's
/// `createHorizontalPodAutoscaler`, in its autoscaling/v2 form).
pub fn build_hpa(
    resource: &ApiResource,
    ref_name: &str,
    name: Option<&str>,
    min: i32,
    max: i32,
    cpu_percent: i32,
) -> Value {
    let name = name.filter(|n| !n.is_empty()).unwrap_or(ref_name);
    let mut spec = json!({
        "scaleTargetRef": {
            "apiVersion": resource.api_version(),
            "kind": resource.kind,
            "name": ref_name,
        },
        "maxReplicas": max,
    });
    if min > 0 {
        spec["minReplicas"] = json!(min);
    }
    if cpu_percent >= 0 {
        spec["metrics"] = json!([{
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": cpu_percent},
            },
        }]);
    }
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "creationTimestamp": null},
        "spec": spec,
        "status": {"currentMetrics": null, "desiredReplicas": 0},
    })
}

/// Whether discovery lists a `scale` subresource for `resource`
/// (upstream's `ScaleKindResolver`).
async fn has_scale(ctx: &Context, resource: &ApiResource) -> Result<bool> {
    let client = ctx.client().await?;
    let path = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    let list = client.get(&path).await?;
    let wanted = format!("{}/scale", resource.name);
    Ok(list["resources"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["name"] == wanted.as_str())))
}

fn scale_error(resource: &ApiResource) -> Error {
    let gvr = if resource.group.is_empty() {
        format!("/{}, Resource={}", resource.version, resource.name)
    } else {
        format!(
            "{}/{}, Resource={}",
            resource.group, resource.version, resource.name
        )
    };
    Error::usage(format!(
        "cannot autoscale a {}: could not find scale subresource for {gvr} in discovery information",
        resource.kind
    ))
}

pub async fn run(ctx: &Context, args: AutoscaleArgs) -> Result<()> {
    let dry_run = args.write.dry_run()?;
    let max = validate(&args)?;
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    // (resource, namespace, name) of every object to autoscale
    let mut objects: Vec<(ApiResource, String, String)> = Vec::new();
    if !args.filenames.is_empty() {
        for manifest in args.filenames.read()? {
            let (resource, ns) = manifest_target(ctx, discovery, &manifest)?;
            objects.push((resource, ns, name_of(&manifest.object).to_string()));
        }
    }
    for target in parse_targets(discovery, &args.resources)? {
        if target.names.is_empty() {
            return Err(Error::usage(
                "resource(s) were provided, but no name was specified",
            ));
        }
        for name in target.names {
            objects.push((target.resource.clone(), namespace.clone(), name));
        }
    }
    if objects.is_empty() {
        return Err(Error::usage(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let hpa_resource = discovery.resolve("horizontalpodautoscalers.autoscaling")?;
    let hpa_resource = hpa_resource
        .into_iter()
        .next()
        .ok_or_else(|| Error::usage("the server doesn't have a resource type \"hpa\""))?;
    for (resource, ns, name) in objects {
        // upstream's builder fetches each object first
        client.get(&resource.object_path(&ns, &name)).await?;
        if !has_scale(ctx, &resource).await? {
            return Err(scale_error(&resource));
        }
        let mut hpa = build_hpa(
            &resource,
            &name,
            args.name.as_deref(),
            args.min,
            max,
            args.cpu_percent,
        );
        if dry_run == DryRun::Client {
            args.write.report(&hpa, "created")?;
            continue;
        }
        if args.save_config {
            let text = serde_json::to_string(&hpa)?;
            hpa["metadata"]["annotations"] =
                json!({"kubectl.kubernetes.io/last-applied-configuration": format!("{text}\n")});
        }
        let path = format!(
            "{}{}",
            hpa_resource.collection_path(Some(&ns)),
            args.write.query("kubectl-autoscale")?
        );
        let created = client.send_json(http::Method::POST, &path, &hpa).await?;
        args.write.report(&created, "autoscaled")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> ApiResource {
        ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            name: "deployments".into(),
            singular: "deployment".into(),
            kind: "Deployment".into(),
            namespaced: true,
            short_names: vec!["deploy".into()],
            verbs: vec![],
            categories: vec![],
            preferred: true,
        }
    }

    #[test]
    fn builds_v2_hpa_as_upstream_generator() {
        let hpa = build_hpa(&deployments(), "web", None, 2, 5, 80);
        assert_eq!(hpa["metadata"]["name"], "web");
        assert_eq!(
            hpa["spec"],
            json!({
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}],
            })
        );
        // no --min / --cpu-percent: left to the server's defaults
        let hpa = build_hpa(&deployments(), "web", Some("other"), -1, 3, -1);
        assert_eq!(hpa["metadata"]["name"], "other");
        assert!(hpa["spec"].get("minReplicas").is_none());
        assert!(hpa["spec"].get("metrics").is_none());
        assert_eq!(scale_error(&deployments()).to_string(), "error: cannot autoscale a Deployment: could not find scale subresource for apps/v1, Resource=deployments in discovery information");
    }
}
