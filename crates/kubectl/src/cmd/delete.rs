//! `kubectl delete`: by type and name, `type/name`, `-f`, `-l` or `--all`;
//! `--grace-period`, `--force`, `--now`, `--cascade`, and waiting (by default)
//! until the objects are gone.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;

use crate::cmd::create::with_source;
use crate::cmd::{finish, list_query, manifest_target, parse_targets};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::manifest::FilenameArgs;
use crate::resource::ApiResource;

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    pub resources: Vec<String>,
    #[command(flatten)]
    pub files: FilenameArgs,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Delete all resources, in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Period of time in seconds given to the resource to terminate gracefully.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// If true, immediately remove resources from API and bypass graceful deletion.
    #[arg(long)]
    pub force: bool,
    /// If true, resources are signaled for immediate shutdown (same as --grace-period=1).
    #[arg(long)]
    pub now: bool,
    /// If true, wait for resources to be gone before returning.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub wait: bool,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Must be "background", "orphan", or "foreground".
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// The length of time to wait before giving up on a delete, zero means determine a timeout.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long, num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
    /// Output mode. Use "-o name" for shorter output (resource/name).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

struct Deleted {
    resource: ApiResource,
    namespace: String,
    name: String,
    uid: String,
}

pub async fn run(ctx: &Context, args: DeleteArgs) -> Result<()> {
    let mut grace = args.grace_period;
    if args.now {
        if grace != -1 {
            return Err(Error::usage(
                "--now and --grace-period cannot be specified together",
            ));
        }
        grace = 1;
    }
    if grace == 0 && !args.force {
        grace = 1;
    }
    if args.force && grace < 0 {
        grace = 0;
    }
    let propagation = match args.cascade.as_str() {
        "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => {
            return Err(Error::usage(format!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
            )))
        }
    };
    let mut body =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation});
    if grace >= 0 {
        body["gracePeriodSeconds"] = json!(grace);
    }
    // upstream warns once its builder has the sources and types (a missing
    // file or unknown type fails first), before any object is mapped or fetched.
    let warn_force = || {
        if args.force {
            eprintln!("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.");
        }
    };
    let discovery = ctx.discovery().await?;
    // (resource, namespace, name, source file)
    let mut work: Vec<(ApiResource, String, String, String)> = Vec::new();
    let mut errors = Vec::new();
    let namespace = ctx.namespace();
    if !args.files.is_empty() {
        let manifests = args.files.read()?;
        warn_force();
        for m in manifests {
            let (resource, ns) = manifest_target(ctx, discovery, &m)?;
            let name = m.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            work.push((resource, ns, name, m.source));
        }
    } else {
        if args.resources.is_empty() {
            return Err(Error::usage("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'"));
        }
        let targets = parse_targets(discovery, &args.resources)?;
        let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
        if !selecting && targets.iter().any(|t| t.names.is_empty()) {
            return Err(Error::usage(
                "resource(s) were provided, but no name was specified",
            ));
        }
        warn_force();
        for target in targets {
            if !target.names.is_empty() {
                for name in &target.names {
                    work.push((
                        target.resource.clone(),
                        namespace.clone(),
                        name.clone(),
                        String::new(),
                    ));
                }
                continue;
            }
            let client = ctx.client().await?;
            let ns = (!args.all_namespaces).then_some(namespace.as_str());
            let path = format!(
                "{}{}",
                target.resource.collection_path(ns),
                list_query(args.selector.as_deref(), args.field_selector.as_deref())
            );
            let list = client.get(&path).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                let item_ns = item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&namespace)
                    .to_string();
                let name = item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                work.push((target.resource.clone(), item_ns, name, String::new()));
            }
        }
        if work.is_empty() {
            println!("No resources found");
            return Ok(());
        }
    }
    let dry_run = match args.dry_run.as_deref() {
        None | Some("none") => "",
        Some("client") => " (dry run)",
        Some("server") => " (server dry run)",
        Some(other) => {
            return Err(Error::usage(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            )))
        }
    };
    let client = ctx.client().await?;
    let mut deleted = Vec::new();
    for (resource, ns, name, source) in work {
        let mut path = resource.object_path(&ns, &name);
        if dry_run == " (dry run)" {
            println!("{} \"{name}\" deleted{dry_run}", resource.group_kind());
            continue;
        }
        if !dry_run.is_empty() {
            path.push_str("?dryRun=All");
        }
        match client.send_json(Method::DELETE, &path, &body).await {
            Ok(answer) => {
                if args.output.as_deref() == Some("name") {
                    println!("{}/{name}", resource.group_kind());
                } else {
                    let verb = if args.force {
                        "force deleted"
                    } else {
                        "deleted"
                    };
                    println!("{} \"{name}\" {verb}{dry_run}", resource.group_kind());
                }
                if !dry_run.is_empty() {
                    continue;
                }
                let uid = answer["metadata"]["uid"]
                    .as_str()
                    .or_else(|| answer["details"]["uid"].as_str())
                    .unwrap_or_default()
                    .to_string();
                deleted.push(Deleted {
                    resource,
                    namespace: ns,
                    name,
                    uid,
                });
            }
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) => errors.push(with_source(e, "deleting", &source)),
        }
    }
    if args.wait {
        let timeout = wait_timeout(args.timeout.as_deref(), grace);
        for d in &deleted {
            if let Err(e) = wait_gone(ctx, d, timeout).await {
                errors.push(e);
            }
        }
    }
    finish(errors)
}

fn wait_timeout(flag: Option<&str>, grace: i64) -> Duration {
    let parsed = flag.and_then(|t| {
        let t = t.trim();
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: u64 = num.parse().ok()?;
        Some(match unit {
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "ms" => Duration::from_millis(n),
            _ => return None,
        })
    });
    match parsed {
        Some(d) if !d.is_zero() => d,
        // Upstream: a week when nothing says otherwise; bounded here by the grace period.
        _ => Duration::from_secs(u64::try_from(grace.max(30)).unwrap_or(30) + 60),
    }
}

async fn wait_gone(ctx: &Context, d: &Deleted, timeout: Duration) -> Result<()> {
    let client = ctx.client().await?;
    let path = d.resource.object_path(&d.namespace, &d.name);
    let deadline = Instant::now() + timeout;
    loop {
        match client.get(&path).await {
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
            Ok(obj) => {
                let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
                if !d.uid.is_empty() && uid != d.uid {
                    return Ok(());
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::usage(format!(
                "timed out waiting for the condition on {}/{}",
                d.resource.name, d.name
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
