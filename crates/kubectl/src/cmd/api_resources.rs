//! `kubectl api-resources` and `kubectl api-versions`, printed from discovery.

use crate::context::Context;
use crate::errors::{Error, Result};
use crate::printers::tabwrite;

#[derive(Debug, clap::Args)]
pub struct ApiResourcesArgs {
    /// Output format. One of: (wide, name).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// If false, non-namespaced resources will be returned, otherwise returning namespaced resources by default.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub namespaced: Option<bool>,
    /// Limit to resources in the specified API group.
    #[arg(long)]
    pub api_group: Option<String>,
    /// Limit to resources that support the specified verbs.
    #[arg(long, value_delimiter = ',')]
    pub verbs: Vec<String>,
    /// When using the default or custom-column output format, don't print headers (default print headers).
    #[arg(long)]
    pub no_headers: bool,
    /// If non-empty, sort list of resources using specified field. The field can be either 'name' or 'kind'.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Use the cached list of resources if available.
    #[arg(long)]
    pub cached: bool,
}

pub async fn run(ctx: &Context, args: ApiResourcesArgs) -> Result<()> {
    let output = args.output.as_deref().unwrap_or("");
    if !matches!(output, "" | "wide" | "name") {
        return Err(Error::usage(format!("--output {output} is not available")));
    }
    let discovery = ctx.discovery().await?;
    let mut resources: Vec<_> = discovery
        .preferred()
        .filter(|r| !r.verbs.is_empty())
        .filter(|r| args.verbs.iter().all(|v| r.has_verb(v)))
        .filter(|r| args.api_group.as_ref().is_none_or(|g| &r.group == g))
        .filter(|r| args.namespaced.is_none_or(|n| r.namespaced == n))
        .collect();
    match args.sort_by.as_deref() {
        Some("name") => resources.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("kind") => resources.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name))),
        Some(other) => {
            return Err(Error::usage(format!(
                "--sort-by accepts only name or kind, got {other}"
            )))
        }
        None => resources.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name))),
    }
    if output == "name" {
        for r in resources {
            println!("{}", r.qualified_name());
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    if !args.no_headers {
        let mut header = vec!["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"];
        if output == "wide" {
            header.extend(["VERBS", "CATEGORIES"]);
        }
        rows.push(header.into_iter().map(str::to_string).collect());
    }
    for r in resources {
        let mut row = vec![
            r.name.clone(),
            r.short_names.join(","),
            r.api_version(),
            r.namespaced.to_string(),
            r.kind.clone(),
        ];
        if output == "wide" {
            row.push(r.verbs.join(","));
            row.push(r.categories.join(","));
        }
        rows.push(row);
    }
    print!("{}", tabwrite(&rows));
    Ok(())
}

pub async fn run_versions(ctx: &Context) -> Result<()> {
    let discovery = ctx.discovery().await?;
    let mut versions = discovery.group_versions.clone();
    versions.sort();
    versions.dedup();
    for v in versions {
        println!("{v}");
    }
    Ok(())
}
