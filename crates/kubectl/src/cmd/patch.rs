//! `kubectl patch TYPE NAME -p PATCH [--type strategic|merge|json]`.

use serde_json::Value;

use crate::cmd::create::{DryRun, WriteOptions};
use crate::cmd::{finish, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::output::object_name;

#[derive(Debug, clap::Args)]
pub struct PatchArgs {
    pub resources: Vec<String>,
    /// The patch to be applied to the resource JSON file.
    #[arg(short = 'p', long)]
    pub patch: Option<String>,
    /// A file containing a patch to be applied to the resource.
    #[arg(long)]
    pub patch_file: Option<String>,
    /// The type of patch being provided; one of [json merge strategic]
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
    /// The subresource to patch (status, scale).
    #[arg(long)]
    pub subresource: Option<String>,
    #[command(flatten)]
    pub write: WriteOptions,
}

pub async fn run(ctx: &Context, args: PatchArgs) -> Result<()> {
    let content_type = match args.patch_type.as_str() {
        "strategic" => "application/strategic-merge-patch+json",
        "merge" => "application/merge-patch+json",
        "json" => "application/json-patch+json",
        other => {
            return Err(Error::usage(format!(
                "--type must be one of [json merge strategic], not \"{other}\""
            )))
        }
    };
    let text = match (&args.patch, &args.patch_file) {
        (Some(p), None) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)?,
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "cannot specify --patch and --patch-file together",
            ))
        }
        (None, None) => {
            return Err(Error::usage(
                "must specify --patch or --patch-file containing the contents of the patch",
            ))
        }
    };
    // Upstream accepts YAML too.
    let patch: Value = serde_norway::from_str(&text)
        .map_err(|e| Error::usage(format!("unable to parse \"{text}\": {e}")))?;
    let body = serde_json::to_vec(&patch)?;
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &args.resources)?;
    if targets.is_empty() {
        return Err(Error::usage(
            "You must provide one or more resources by argument or filename.",
        ));
    }
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let mut errors = Vec::new();
    for target in targets {
        if target.names.is_empty() {
            return Err(Error::usage(
                "resource(s) were provided, but no name was specified",
            ));
        }
        for name in &target.names {
            let mut path = target.resource.object_path(&namespace, name);
            if let Some(sub) = &args.subresource {
                path = format!("{path}/{sub}");
            }
            let before = match client.get(&path).await {
                Ok(b) => b,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let query = args.write.query("kubectl-patch")?;
            if args.write.dry_run()? == DryRun::Client {
                args.write.report(&before, "patched")?;
                continue;
            }
            match client
                .patch(&format!("{path}{query}"), content_type, body.clone())
                .await
            {
                Ok(after) => {
                    let unchanged = before["metadata"]["resourceVersion"]
                        == after["metadata"]["resourceVersion"];
                    if args.write.output.as_deref().is_some_and(|o| !o.is_empty()) {
                        args.write.report(&after, "patched")?;
                    } else if unchanged {
                        println!("{} patched (no change)", object_name(&after));
                    } else {
                        println!("{} patched", object_name(&after));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }
    finish(errors)
}
