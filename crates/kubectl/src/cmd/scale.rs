//! `kubectl scale --replicas=N TYPE NAME`: a merge patch on the `scale` subresource.

use serde_json::json;

use crate::cmd::{display_name, finish, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    pub resources: Vec<String>,
    /// The new desired number of replicas. Required.
    #[arg(long, required = true)]
    pub replicas: i64,
    /// Precondition for current size.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i64,
}

pub async fn run(ctx: &Context, args: ScaleArgs) -> Result<()> {
    if args.replicas < 0 {
        return Err(Error::usage(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        ));
    }
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
        for name in &target.names {
            let path = format!("{}/scale", target.resource.object_path(&namespace, name));
            if args.current_replicas >= 0 {
                match client.get(&path).await {
                    Ok(scale)
                        if scale["spec"]["replicas"].as_i64().unwrap_or(0)
                            != args.current_replicas =>
                    {
                        errors.push(Error::usage(format!(
                            "Expected replicas to be {}, was {}",
                            args.current_replicas,
                            scale["spec"]["replicas"].as_i64().unwrap_or(0)
                        )));
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            }
            let patch = json!({"spec": {"replicas": args.replicas}});
            match client
                .patch(
                    &path,
                    "application/merge-patch+json",
                    serde_json::to_vec(&patch)?,
                )
                .await
            {
                Ok(_) => println!("{} scaled", display_name(&target.resource, name)),
                Err(e) => errors.push(e),
            }
        }
    }
    finish(errors)
}
