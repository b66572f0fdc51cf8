//! One module per verb.
//!
//! Adding a verb (e.g. `describe`):
//! 1. `cmd/describe.rs` with `#[derive(clap::Args)] pub struct DescribeArgs {..}` (the
//!    verb's own flags; global flags live in `config::ConfigFlags` and `-v` in `cli`)
//!    and `pub async fn run(ctx: &Context, args: DescribeArgs) -> Result<()>`.
//! 2. `pub mod describe;` below, a `Describe(cmd::describe::DescribeArgs)` variant in
//!    `cli::Command` (its doc comment is the help line), and one arm in [`run`].
//! 3. Use the shared pieces: `ctx.client()` (JSON requests, upstream error wording),
//!    `ctx.discovery()` + [`parse_targets`] (type/name arguments), `manifest::FilenameArgs`
//!    (`-f`), `output::OutputFormat` (`-o`), `printers::{tabwrite, table, yaml, json,
//!    jsonpath}`, [`finish`] (report per-object errors, exit 1). Return `Error::usage`
//!    for `error: ...` lines; server failures print as `Error from server (Reason): ...`.
//! 4. Test it in `tests/compat.rs` against upstream kubectl on the same apiserver.

pub mod api_resources;
pub mod apply;
pub mod attach;
pub mod auth;
pub mod autoscale;
pub mod cluster_info;
pub mod complete;
pub mod completion;
pub mod config;
pub mod cp;
pub mod create;
pub mod delete;
pub mod describe;
pub mod drain;
pub mod edit;
pub mod exec;
pub mod explain;
pub mod expose;
pub mod get;
pub mod label;
pub mod logs;
pub mod patch;
pub mod port_forward;
pub mod replace;
pub mod rolling_update;
pub mod rollout;
pub mod run;
pub mod scale;
pub mod set;
pub mod taint;
pub mod top;
pub mod version;
pub mod wait;

use serde_json::Value;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::manifest::Manifest;
use crate::resource::{ApiResource, Discovery};

pub async fn run(cli: Cli) -> Result<()> {
    // `config` edits files and must work without a usable kubeconfig.
    if let Command::Config(command) = cli.command {
        return config::run(&cli.config, command);
    }
    if let Command::Completion(args) = cli.command {
        return completion::run(args);
    }
    let ctx = Context::new(cli.config)?;
    match cli.command {
        Command::Get(args) => get::run(&ctx, args).await,
        Command::Create(args) => create::run(&ctx, args).await,
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Replace(args) => replace::run(&ctx, args).await,
        Command::Delete(args) => delete::run(&ctx, args).await,
        Command::Patch(args) => patch::run(&ctx, args).await,
        Command::Label(args) => label::run(&ctx, args, label::Kind::Label).await,
        Command::Annotate(args) => label::run(&ctx, args, label::Kind::Annotate).await,
        Command::Scale(args) => scale::run(&ctx, args).await,
        Command::Version(args) => version::run(&ctx, args).await,
        Command::ClusterInfo(args) => cluster_info::run(&ctx, args).await,
        Command::ApiResources(args) => api_resources::run(&ctx, args).await,
        Command::ApiVersions => api_resources::run_versions(&ctx).await,
        Command::Rollout(command) => rollout::run(&ctx, command).await,
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Attach(args) => attach::run(&ctx, args).await,
        Command::PortForward(args) => port_forward::run(&ctx, args).await,
        Command::Cp(args) => cp::run(&ctx, args).await,
        Command::RollingUpdate(args) => rolling_update::run(&ctx, args).await,
        Command::Expose(args) => expose::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Run(args) => run::run(&ctx, args).await,
        Command::Wait(args) => wait::run(&ctx, args).await,
        Command::Cordon(args) => drain::run_cordon(&ctx, args, true).await,
        Command::Uncordon(args) => drain::run_cordon(&ctx, args, false).await,
        Command::Drain(args) => drain::run_drain(&ctx, args).await,
        Command::Taint(args) => taint::run(&ctx, args).await,
        Command::Auth(command) => auth::run(&ctx, command).await,
        Command::Top(command) => top::run(&ctx, command).await,
        Command::Set(command) => set::run(&ctx, command).await,
        Command::Describe(args) => describe::run(&ctx, args).await,
        Command::Config(_) => Ok(()),
        Command::Completion(_) => Ok(()),
        Command::Autoscale(args) => autoscale::run(&ctx, args).await,
        Command::Edit(args) => edit::run(&ctx, args).await,
        Command::Explain(args) => explain::run(&ctx, args).await,
    }
}

/// One resource type with the names asked for (none: the whole collection).
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: ApiResource,
    pub names: Vec<String>,
}

/// Upstream's argument forms: `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`.
pub fn parse_targets(discovery: &Discovery, args: &[String]) -> Result<Vec<Target>> {
    let Some(first) = args.first() else {
        return Ok(Vec::new());
    };
    if first.contains('/') {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let (kind, name) = arg.split_once('/').ok_or_else(|| {
                Error::usage(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'",
                )
            })?;
            if name.is_empty() {
                return Err(Error::usage(
                    "arguments in resource/name form must have a single resource and name",
                ));
            }
            for resource in discovery.resolve(kind)? {
                match targets.iter_mut().find(|t| t.resource == resource) {
                    Some(t) => t.names.push(name.to_string()),
                    None => targets.push(Target {
                        resource,
                        names: vec![name.to_string()],
                    }),
                }
            }
        }
        return Ok(targets);
    }
    if args[1..].iter().any(|a| a.contains('/')) {
        return Err(Error::usage(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'",
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    for kind in first.split(',').filter(|k| !k.is_empty()) {
        for resource in discovery.resolve(kind)? {
            if !targets.iter().any(|t| t.resource == resource) {
                targets.push(Target {
                    resource,
                    names: args[1..].to_vec(),
                });
            }
        }
    }
    Ok(targets)
}

/// The resource and namespace of a manifest object; a namespace in the file must
/// agree with an explicit `-n`.
pub fn manifest_target(
    ctx: &Context,
    discovery: &Discovery,
    manifest: &Manifest,
) -> Result<(ApiResource, String)> {
    let obj = &manifest.object;
    let resource = discovery.for_object(obj, &manifest.source)?;
    let default_ns = ctx.namespace();
    let namespace = match obj["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() && resource.namespaced => {
            if ctx.namespace_explicit() && ns != default_ns {
                return Err(Error::usage(format!(
                    "the namespace from the provided object \"{ns}\" does not match the namespace \"{default_ns}\". You must pass '--namespace={ns}' to perform this operation."
                )));
            }
            ns.to_string()
        }
        _ => default_ns,
    };
    Ok((resource, namespace))
}

/// `pod/x`-style display name (`deployment.apps/x`).
pub fn display_name(resource: &ApiResource, name: &str) -> String {
    format!("{}/{name}", resource.group_kind())
}

/// `metadata.name` of an object.
pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// Query string for list calls.
pub fn list_query(label_selector: Option<&str>, field_selector: Option<&str>) -> String {
    let mut params = Vec::new();
    if let Some(l) = label_selector {
        params.push(format!("labelSelector={}", crate::client::encode(l)));
    }
    if let Some(f) = field_selector {
        params.push(format!("fieldSelector={}", crate::client::encode(f)));
    }
    if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    }
}

/// Prints several errors (each on its own line) and fails if there were any;
/// upstream keeps going over the other objects first.
pub fn finish(errors: Vec<Error>) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        e.print();
    }
    Err(Error::Reported)
}
