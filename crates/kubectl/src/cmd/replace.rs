//! `kubectl replace -f`: PUT each object (`--force`: delete, then create).

use http::Method;
use serde_json::json;

use crate::cmd::create::{
    clear_resource_version, send, with_source, DryRun, ValidateArgs, WriteOptions,
};
use crate::cmd::{finish, manifest_target};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::manifest::FilenameArgs;

#[derive(Debug, clap::Args)]
pub struct ReplaceArgs {
    #[command(flatten)]
    pub files: FilenameArgs,
    #[command(flatten)]
    pub write: WriteOptions,
    #[command(flatten)]
    pub validate: ValidateArgs,
    /// If true, immediately remove resources from API and bypass graceful deletion, then re-create.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &Context, args: ReplaceArgs) -> Result<()> {
    if args.files.is_empty() {
        return Err(Error::usage("must specify --filename to replace"));
    }
    let query = args.validate.add_to(args.write.query("kubectl-replace")?)?;
    let discovery = ctx.discovery().await?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    for m in args.files.read()? {
        let (resource, namespace) = match manifest_target(ctx, discovery, &m) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut object = m.object.clone();
        if resource.namespaced {
            object["metadata"]["namespace"] = json!(namespace);
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if args.write.dry_run()? == DryRun::Client {
            args.write.report(&object, "replaced")?;
            continue;
        }
        let result = if args.force {
            let path = resource.object_path(&namespace, &name);
            let body =
                json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0});
            match client.send_json(Method::DELETE, &path, &body).await {
                Ok(_) => println!("{} \"{name}\" deleted", resource.group_kind()),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    errors.push(with_source(e, "deleting", &m.source));
                    continue;
                }
            }
            // Wait for the old object to go before re-creating it.
            for _ in 0..120 {
                match client.get(&path).await {
                    Err(e) if e.is_not_found() => break,
                    _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
                }
            }
            let create = format!("{}{query}", resource.collection_path(Some(&namespace)));
            let mut object = object;
            clear_resource_version(&mut object);
            send::write(
                client,
                Method::POST,
                &create,
                "application/json",
                serde_json::to_vec(&object)?,
            )
            .await
            .map(|o| (o, "replaced"))
            .map_err(|e| with_source(e, "creating", &m.source))
        } else {
            let path = format!("{}{query}", resource.object_path(&namespace, &name));
            send::write(
                client,
                Method::PUT,
                &path,
                "application/json",
                serde_json::to_vec(&object)?,
            )
            .await
            .map(|o| (o, "replaced"))
            .map_err(|e| with_source(e, "replacing", &m.source))
        };
        match result {
            Ok((obj, verb)) => args.write.report(&obj, verb)?,
            Err(e) => errors.push(e),
        }
    }
    finish(errors)
}
