//! `kubectl get`: server-side Tables for human output (`-o wide`, `--show-labels`,
//! `-L`, `-A`, several types with `kind/name` names), full objects for
//! `-o yaml|json|name|jsonpath|custom-columns`, `-w` to keep printing changes.

use futures::AsyncBufReadExt;
use http::Method;
use serde_json::Value;

use crate::client::{encode, ACCEPT_TABLE};
use crate::cmd::{finish, parse_targets, Target};
use crate::context::Context;
use crate::errors::{Error, Result};
use crate::output::{print_objects, OutputFormat};
use crate::printers::jsonpath::{relaxed, value_text, JsonPath};
use crate::printers::table::{table_rows, TableOptions};
use crate::printers::{tabwrite, TabWriter};

#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// TYPE[.VERSION][.GROUP] [NAME ...] or TYPE[.VERSION][.GROUP]/NAME ...
    pub resources: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Template string or path to template file to use when -o=go-template, -o=go-template-file.
    #[arg(long)]
    pub template: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// After listing/getting the requested object, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes to the requested object(s), without listing/getting first.
    #[arg(long)]
    pub watch_only: bool,
    /// When printing, show all labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// Accepts a comma separated list of labels that are going to be presented as columns.
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// If non-empty, sort list types using this field specification.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// When using the default or custom-column output format, don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// If the requested object does not exist the command will return exit code 0.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// If present, list the resource type for the requested object(s).
    #[arg(long)]
    pub show_kind: bool,
    /// If true, keep the managedFields when printing objects in JSON or YAML format.
    #[arg(long)]
    pub show_managed_fields: bool,
    /// Return large lists in chunks rather than all at once (accepted, ignored).
    #[arg(long)]
    pub chunk_size: Option<i64>,
    /// Raw URI to request from the server.  Uses the transport specified by the kubeconfig file.
    #[arg(long)]
    pub raw: Option<String>,
}

/// `get --raw URI`: the body of one GET, printed as the server sent it.
async fn run_raw(ctx: &Context, args: &GetArgs, uri: &str) -> Result<()> {
    if !args.resources.is_empty() {
        return Err(Error::usage(
            "arguments may not be passed when --raw is specified",
        ));
    }
    if args.watch || args.watch_only || args.selector.is_some() {
        return Err(Error::usage(
            "--raw may not be specified with other flags that filter the server request or alter the output",
        ));
    }
    if args.output.as_deref().is_some_and(|o| !o.is_empty()) {
        return Err(Error::usage("--raw and --output are mutually exclusive"));
    }
    if !uri.starts_with('/') {
        return Err(Error::usage(format!(
            "--raw must be a valid URL path: parse \"{uri}\": invalid URI for request"
        )));
    }
    let body = ctx.client().await?.get_text(uri).await?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(body.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// What one target fetched: a Table (human output) or objects.
struct Fetched {
    target: Target,
    tables: Vec<Value>,
    objects: Vec<Value>,
    resource_version: String,
}

pub async fn run(ctx: &Context, args: GetArgs) -> Result<()> {
    if let Some(uri) = args.raw.as_deref() {
        return run_raw(ctx, &args, uri).await;
    }
    let format = OutputFormat::parse(output_with_template(&args).as_deref())?;
    if args.resources.is_empty() {
        eprintln!("You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.\n");
        return Err(Error::usage(
            "Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples",
        ));
    }
    let discovery = ctx.discovery().await?;
    let targets = parse_targets(discovery, &args.resources)?;
    if args.selector.is_some() && targets.iter().any(|t| !t.names.is_empty()) {
        return Err(Error::usage(
            "name cannot be provided when a selector is specified",
        ));
    }
    let watching = args.watch || args.watch_only;
    if watching && targets.len() > 1 {
        return Err(Error::usage("you may only specify a single resource type"));
    }
    let sort_path = match &args.sort_by {
        Some(s) => Some(
            JsonPath::parse(&relaxed(s))
                .map_err(|e| Error::usage(format!("couldn't parse --sort-by {s}: {e}")))?,
        ),
        None => None,
    };
    let single = targets.len() == 1 && targets[0].names.len() == 1;
    let mut errors = Vec::new();
    let mut fetched = Vec::new();
    // `--watch-only` lists too (unprinted): the watch starts at the list's
    // resourceVersion so that existing objects are not replayed.
    for target in &targets {
        match fetch(ctx, &args, &format, target, &mut errors).await {
            Ok(f) => fetched.push(f),
            Err(e) => errors.push(e),
        }
    }
    if args.ignore_not_found {
        errors.retain(|e| !e.is_not_found());
    }
    if !format.is_human() {
        let mut items: Vec<Value> = fetched.iter().flat_map(|f| f.objects.clone()).collect();
        if let Some(path) = &sort_path {
            sort_values(&mut items, path, |v| v);
        }
        if !args.show_managed_fields && matches!(format, OutputFormat::Yaml | OutputFormat::Json) {
            items = items
                .into_iter()
                .map(crate::cmd::create::strip_managed_fields)
                .collect();
        }
        if !args.watch_only && (!items.is_empty() || !single) {
            print!("{}", print_objects(&format, items, single)?);
        }
    }
    let mut writer = TabWriter::default();
    let mut printed = false;
    if format.is_human() && !args.watch_only {
        printed = print_tables(
            &args,
            &format,
            &fetched,
            targets.len() > 1,
            sort_path.as_ref(),
            &mut writer,
        );
        // As upstream: only when nothing was written and nothing failed.
        if !printed
            && !watching
            && errors.is_empty()
            && !args.ignore_not_found
            && fetched.iter().all(|f| f.target.names.is_empty())
        {
            if !args.all_namespaces && fetched.iter().all(|f| f.target.resource.namespaced) {
                eprintln!("No resources found in {} namespace.", ctx.namespace());
            } else {
                eprintln!("No resources found");
            }
        }
    }
    if watching {
        finish(errors)?;
        if let Some(target) = targets.first() {
            let rv = fetched
                .first()
                .map(|f| f.resource_version.clone())
                .unwrap_or_default();
            return watch(ctx, &args, &format, target, &rv, writer, printed).await;
        }
        return Ok(());
    }
    finish(errors)
}

/// `-o` with `--template` folded in as upstream's print flags do: the
/// template alone means go-template; a template format without `=` takes it.
fn output_with_template(args: &GetArgs) -> Option<String> {
    let Some(template) = &args.template else {
        return args.output.clone();
    };
    match args.output.as_deref() {
        None | Some("") => Some(format!("go-template={template}")),
        Some(
            o @ ("go-template" | "template" | "go-template-file" | "templatefile" | "jsonpath"
            | "jsonpath-file" | "jsonpath-as-json"),
        ) => Some(format!("{o}={template}")),
        Some(o) => Some(o.to_string()),
    }
}

fn list_path(ctx: &Context, args: &GetArgs, target: &Target) -> String {
    let namespace = ctx.namespace();
    let ns = (!args.all_namespaces).then_some(namespace.as_str());
    let mut path = target.resource.collection_path(ns);
    let mut params = Vec::new();
    if let Some(l) = &args.selector {
        params.push(format!("labelSelector={}", encode(l)));
    }
    if let Some(f) = &args.field_selector {
        params.push(format!("fieldSelector={}", encode(f)));
    }
    if !params.is_empty() {
        path.push('?');
        path.push_str(&params.join("&"));
    }
    path
}

async fn fetch(
    ctx: &Context,
    args: &GetArgs,
    format: &OutputFormat,
    target: &Target,
    errors: &mut Vec<Error>,
) -> Result<Fetched> {
    let client = ctx.client().await?;
    let namespace = ctx.namespace();
    let human = format.is_human();
    let accept = if human {
        ACCEPT_TABLE
    } else {
        "application/json"
    };
    let include = if args.sort_by.is_some() {
        "Object"
    } else {
        "Metadata"
    };
    let mut out = Fetched {
        target: target.clone(),
        tables: Vec::new(),
        objects: Vec::new(),
        resource_version: String::new(),
    };
    let with_include = |path: String| {
        if !human {
            return path;
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}includeObject={include}")
    };
    if target.names.is_empty() {
        let path = with_include(list_path(ctx, args, target));
        let list = client.request(Method::GET, &path, accept, None).await?;
        out.resource_version = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if human {
            out.tables.push(list);
        } else {
            let kind = list["kind"].as_str().unwrap_or_default();
            let kind = kind.strip_suffix("List").unwrap_or(kind).to_string();
            let api_version = list["apiVersion"].clone();
            for mut item in list["items"].as_array().cloned().unwrap_or_default() {
                item["kind"] = Value::String(kind.clone());
                item["apiVersion"] = api_version.clone();
                out.objects.push(item);
            }
        }
        return Ok(out);
    }
    for name in &target.names {
        let path = with_include(target.resource.object_path(&namespace, name));
        match client.request(Method::GET, &path, accept, None).await {
            Ok(obj) if human => out.tables.push(obj),
            Ok(obj) => out.objects.push(obj),
            Err(e) => errors.push(e),
        }
    }
    Ok(out)
}

fn sort_values<T>(items: &mut [T], path: &JsonPath, object: impl Fn(&T) -> &Value) {
    let key = |v: &Value| -> (Option<f64>, String) {
        let vals = path.values(v).unwrap_or_default();
        let first = vals.first().cloned().unwrap_or(Value::Null);
        (first.as_f64(), value_text(&first))
    };
    items.sort_by(|a, b| {
        let (ka, kb) = (key(object(a)), key(object(b)));
        match (ka.0, kb.0) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => ka.1.cmp(&kb.1),
        }
    });
}

fn table_options(
    args: &GetArgs,
    format: &OutputFormat,
    target: &Target,
    with_kind: bool,
) -> TableOptions {
    TableOptions {
        wide: matches!(format, OutputFormat::Human { wide: true }),
        no_headers: args.no_headers,
        with_namespace: args.all_namespaces && target.resource.namespaced,
        kind_prefix: (with_kind || args.show_kind).then(|| target.resource.group_kind()),
        show_labels: args.show_labels,
        label_columns: args.label_columns.clone(),
    }
}

/// Merges the row lists of several tables of one type (one per named object).
fn merged_table(tables: &[Value]) -> Option<Value> {
    let first = tables.first()?;
    let mut merged = first.clone();
    let rows: Vec<Value> = tables
        .iter()
        .flat_map(|t| t["rows"].as_array().cloned().unwrap_or_default())
        .collect();
    merged["rows"] = Value::Array(rows);
    Some(merged)
}

/// Prints the fetched tables; whether any row was printed.
fn print_tables(
    args: &GetArgs,
    format: &OutputFormat,
    fetched: &[Fetched],
    with_kind: bool,
    sort_path: Option<&JsonPath>,
    writer: &mut TabWriter,
) -> bool {
    let mut printed_any = false;
    let mut out = String::new();
    for f in fetched {
        let Some(mut table) = merged_table(&f.tables) else {
            continue;
        };
        if let Some(path) = sort_path {
            if let Some(rows) = table["rows"].as_array_mut() {
                sort_values(rows, path, |r| &r["object"]);
            }
        }
        if table["rows"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        if printed_any && !args.no_headers {
            out.push('\n');
        }
        let rows = table_rows(&table, &table_options(args, format, &f.target, with_kind));
        if fetched.len() > 1 {
            out.push_str(&tabwrite(&rows));
        } else {
            out.push_str(&writer.write(&rows));
        }
        printed_any = true;
    }
    print!("{out}");
    printed_any
}

async fn watch(
    ctx: &Context,
    args: &GetArgs,
    format: &OutputFormat,
    target: &Target,
    resource_version: &str,
    mut writer: TabWriter,
    header_printed: bool,
) -> Result<()> {
    let client = ctx.client().await?;
    let human = format.is_human();
    let mut path = match target.names.as_slice() {
        [name] => {
            let ns = (!args.all_namespaces).then(|| ctx.namespace());
            let base = target.resource.collection_path(ns.as_deref());
            format!(
                "{base}?fieldSelector={}",
                encode(&format!("metadata.name={name}"))
            )
        }
        _ => list_path(ctx, args, target),
    };
    path.push(if path.contains('?') { '&' } else { '?' });
    path.push_str("watch=1");
    if !resource_version.is_empty() {
        path.push_str(&format!("&resourceVersion={}", encode(resource_version)));
    }
    if human {
        path.push_str("&includeObject=Metadata");
    }
    let accept = if human {
        ACCEPT_TABLE
    } else {
        "application/json"
    };
    let mut stream = client.stream(&path, accept).await?;
    let opts = table_options(args, format, target, false);
    let mut header_printed = header_printed;
    let mut line = String::new();
    loop {
        line.clear();
        let n = stream
            .read_line(&mut line)
            .await
            .map_err(|e| Error::Transport(format!("error: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        let Ok(event) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        if event["type"] == "ERROR" {
            let status = &event["object"];
            return Err(Error::Server(crate::errors::ServerError {
                code: status["code"].as_u64().unwrap_or(500) as u16,
                reason: status["reason"].as_str().unwrap_or_default().to_string(),
                message: status["message"].as_str().unwrap_or_default().to_string(),
            }));
        }
        if event["type"] == "BOOKMARK" {
            continue;
        }
        let object = &event["object"];
        if human && object["kind"] == "Table" {
            let mut o = opts.clone();
            o.no_headers = header_printed || args.no_headers;
            let rows = table_rows(object, &o);
            print!("{}", writer.write(&rows));
            header_printed = true;
        } else {
            print!("{}", print_objects(format, vec![object.clone()], true)?);
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}
