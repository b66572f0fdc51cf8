//! `kubectl create -f ...` and the generators `create namespace|configmap|secret
//! generic|deployment|service clusterip|nodeport`.

use clap::Subcommand;
use http::Method;
use serde_json::{json, Map, Value};

use crate::cmd::{finish, manifest_target, name_of};
use crate::context::Context;
use crate::errors::{Error, Result, ServerError};
use crate::manifest::FilenameArgs;
use crate::output::{object_name, print_objects, OutputFormat};

mod job;
mod quota;
mod rbac;
pub mod send;

/// `--validate` of create, apply, replace and edit (upstream
/// `cmdutil.AddValidateFlags`): the `fieldValidation` the server applies.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ValidateArgs {
    /// Must be one of: strict (or true), warn, ignore (or false).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "strict")]
    pub validate: Option<String>,
}

impl ValidateArgs {
    /// The `fieldValidation` directive (upstream `GetValidationDirective`).
    pub fn directive(&self) -> Result<&'static str> {
        match self
            .validate
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("strict") | Some("true") => Ok("Strict"),
            Some("warn") => Ok("Warn"),
            Some("ignore") | Some("false") => Ok("Ignore"),
            Some(other) => Err(Error::usage(format!(
                "invalid - validate option \"{other}\"; must be one of: strict (or true), warn, ignore (or false)"
            ))),
        }
    }

    /// `query` (from [`WriteOptions::query`]) with `fieldValidation` added.
    pub fn add_to(&self, query: String) -> Result<String> {
        let sep = if query.is_empty() { '?' } else { '&' };
        Ok(format!("{query}{sep}fieldValidation={}", self.directive()?))
    }
}

/// Upstream's `Helper.Create(.., modify=true, ..)` clears `resourceVersion`
/// so an exported object can be created again.
pub fn clear_resource_version(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("resourceVersion");
    }
}

/// `--dry-run` and `-o` of the object-writing verbs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WriteOptions {
    /// Output format. One of: (json, yaml, name, jsonpath, ...).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long, num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<String>,
    /// Name of the manager used to track field ownership.
    #[arg(long)]
    pub field_manager: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    None,
    Client,
    Server,
}

impl WriteOptions {
    pub fn dry_run(&self) -> Result<DryRun> {
        match self.dry_run.as_deref() {
            None | Some("none") => Ok(DryRun::None),
            Some("client") => Ok(DryRun::Client),
            Some("server") => Ok(DryRun::Server),
            Some(other) => Err(Error::usage(format!(
                "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
            ))),
        }
    }

    /// Query parameters for a write (`dryRun`, `fieldManager`).
    pub fn query(&self, default_manager: &str) -> Result<String> {
        let mut params = vec![format!(
            "fieldManager={}",
            crate::client::encode(self.field_manager.as_deref().unwrap_or(default_manager))
        )];
        if self.dry_run()? == DryRun::Server {
            params.push("dryRun=All".into());
        }
        Ok(format!("?{}", params.join("&")))
    }

    /// Prints the result of a write: the object in `-o` format, or `kind/name verb`.
    pub fn report(&self, obj: &Value, verb: &str) -> Result<()> {
        match self.output.as_deref() {
            Some(o) if !o.is_empty() => {
                let format = OutputFormat::parse(Some(o))?;
                let obj = strip_managed_fields(obj.clone());
                print!("{}", print_objects(&format, vec![obj], true)?);
            }
            _ => {
                let suffix = match self.dry_run()? {
                    DryRun::None => "",
                    DryRun::Client => " (dry run)",
                    DryRun::Server => " (server dry run)",
                };
                println!("{} {verb}{suffix}", object_name(obj));
            }
        }
        Ok(())
    }
}

/// Upstream hides `metadata.managedFields` in YAML/JSON output.
pub fn strip_managed_fields(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    obj
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub files: FilenameArgs,
    #[command(flatten)]
    pub write: WriteOptions,
    #[command(flatten)]
    pub validate: ValidateArgs,
    #[command(subcommand)]
    pub generator: Option<Generator>,
}

#[derive(Debug, Subcommand)]
pub enum Generator {
    /// Create a namespace with the specified name
    #[command(alias = "ns")]
    Namespace {
        name: String,
        #[command(flatten)]
        write: WriteOptions,
    },
    /// Create a config map from a local file, directory or literal value
    #[command(alias = "cm")]
    Configmap {
        name: String,
        #[arg(long)]
        from_literal: Vec<String>,
        #[arg(long)]
        from_file: Vec<String>,
        #[command(flatten)]
        write: WriteOptions,
    },
    /// Create a secret using a specified subcommand
    #[command(subcommand)]
    Secret(SecretKind),
    /// Create a deployment with the specified name
    #[command(alias = "deploy")]
    Deployment {
        name: String,
        #[arg(long, required = true)]
        image: Vec<String>,
        #[arg(short = 'r', long, default_value_t = 1)]
        replicas: i64,
        #[arg(long)]
        port: Option<i64>,
        #[command(flatten)]
        write: WriteOptions,
    },
    /// Create a service using a specified subcommand
    #[command(subcommand, alias = "svc")]
    Service(ServiceKind),
    /// Create a service account with the specified name
    #[command(alias = "sa")]
    Serviceaccount(rbac::ServiceAccountArgs),
    /// Create a role with single rule
    Role(rbac::RoleArgs),
    /// Create a cluster role
    Clusterrole(rbac::ClusterRoleArgs),
    /// Create a role binding for a particular role or cluster role
    Rolebinding(rbac::RoleBindingArgs),
    /// Create a cluster role binding for a particular cluster role
    Clusterrolebinding(rbac::BindingArgs),
    /// Create a job with the specified name
    Job(job::JobArgs),
    /// Create a quota with the specified name
    #[command(alias = "resourcequota")]
    Quota(quota::QuotaArgs),
}

#[derive(Debug, Subcommand)]
pub enum SecretKind {
    /// Create a secret from a local file, directory, or literal value
    Generic {
        name: String,
        #[arg(long)]
        from_literal: Vec<String>,
        #[arg(long)]
        from_file: Vec<String>,
        #[arg(long = "type")]
        secret_type: Option<String>,
        #[command(flatten)]
        write: WriteOptions,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceKind {
    /// Create a ClusterIP service
    Clusterip {
        name: String,
        #[arg(long, value_delimiter = ',')]
        tcp: Vec<String>,
        #[arg(long)]
        clusterip: Option<String>,
        #[command(flatten)]
        write: WriteOptions,
    },
    /// Create a NodePort service
    Nodeport {
        name: String,
        #[arg(long, value_delimiter = ',')]
        tcp: Vec<String>,
        #[arg(long)]
        node_port: Option<i64>,
        #[command(flatten)]
        write: WriteOptions,
    },
}

pub async fn run(ctx: &Context, args: CreateArgs) -> Result<()> {
    match args.generator {
        Some(generator) => {
            let (mut object, write) = generate(ctx, generator).await?;
            // Printed Go objects carry these nulls (the wire form drops them).
            if write.dry_run()? == DryRun::Client {
                object["metadata"]["creationTimestamp"] = Value::Null;
                if let Some(template) = object.get_mut("spec").and_then(|s| s.get_mut("template")) {
                    template["metadata"]["creationTimestamp"] = Value::Null;
                }
            }
            // `-n` pins the namespace of namespaced kinds.
            let cluster_scoped = ["Namespace", "ClusterRole", "ClusterRoleBinding"];
            if ctx.namespace_explicit() && !cluster_scoped.iter().any(|k| object["kind"] == *k) {
                object["metadata"]["namespace"] = json!(ctx.namespace());
            }
            let is_job = object["kind"] == "Job";
            let result = create_object(ctx, object, &write, &args.validate, "").await;
            match result {
                // upstream create_job.go wraps its create error.
                Err(Error::Server(s)) if is_job => {
                    Err(Error::usage(format!("failed to create job: {}", s.message)))
                }
                other => other,
            }
        }
        None => {
            if args.files.is_empty() {
                return Err(Error::usage("must specify one of -f and -k"));
            }
            let manifests = args.files.read()?;
            let mut errors = Vec::new();
            for m in manifests {
                if let Err(e) =
                    create_object(ctx, m.object, &args.write, &args.validate, &m.source).await
                {
                    errors.push(e);
                }
            }
            finish(errors)
        }
    }
}

/// Prefixes a server error as upstream does for `-f` objects
/// (`error when creating "x.yaml": ...`).
pub fn with_source(err: Error, action: &str, source: &str) -> Error {
    match err {
        Error::Server(s) if !source.is_empty() => Error::Server(ServerError {
            message: format!("error when {action} \"{source}\": {}", s.message),
            ..s
        }),
        other => other,
    }
}

async fn create_object(
    ctx: &Context,
    object: Value,
    write: &WriteOptions,
    validate: &ValidateArgs,
    source: &str,
) -> Result<()> {
    let directive_query = validate.add_to(write.query("kubectl-create")?)?;
    let discovery = ctx.discovery().await?;
    let manifest = crate::manifest::Manifest {
        source: source.to_string(),
        object,
    };
    let (resource, namespace) = manifest_target(ctx, discovery, &manifest)?;
    let mut object = manifest.object;
    if write.dry_run()? == DryRun::Client {
        if resource.namespaced && ctx.namespace_explicit() {
            object["metadata"]["namespace"] = json!(namespace);
        }
        return write.report(&object, "created");
    }
    if resource.namespaced {
        object["metadata"]["namespace"] = json!(namespace);
    }
    clear_resource_version(&mut object);
    let client = ctx.client().await?;
    let path = format!(
        "{}{directive_query}",
        resource.collection_path(Some(&namespace)),
    );
    let created = send::write(
        client,
        Method::POST,
        &path,
        "application/json",
        serde_json::to_vec(&object)?,
    )
    .await
    .map_err(|e| with_source(e, "creating", source))?;
    let _ = name_of(&created);
    write.report(&created, "created")
}

fn key_values(items: &[String], what: &str) -> Result<Vec<(String, Vec<u8>)>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .ok_or_else(|| Error::usage(format!("invalid {what}: {kv}")))
        })
        .collect()
}

fn from_files(items: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in items {
        let (key, path) = match item.split_once('=') {
            Some((k, p)) => (k.to_string(), p.to_string()),
            None => {
                let key = std::path::Path::new(item)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| item.clone());
                (key, item.clone())
            }
        };
        let data =
            std::fs::read(&path).map_err(|e| Error::usage(format!("error reading {path}: {e}")))?;
        out.push((key, data));
    }
    Ok(out)
}

async fn generate(ctx: &Context, generator: Generator) -> Result<(Value, WriteOptions)> {
    use base64::Engine;
    Ok(match generator {
        Generator::Serviceaccount(a) => (rbac::service_account(&a), a.write),
        Generator::Role(a) => (rbac::role(ctx, &a, None).await?, a.write),
        Generator::Clusterrole(a) => (
            rbac::role(ctx, &a.role, Some(&a.non_resource_url)).await?,
            a.role.write,
        ),
        Generator::Rolebinding(a) => (
            rbac::binding(&a.binding, a.role.as_deref(), false)?,
            a.binding.write,
        ),
        Generator::Clusterrolebinding(a) => (rbac::binding(&a, None, true)?, a.write),
        Generator::Job(a) => (job::job(ctx, &a).await?, a.write),
        Generator::Quota(a) => (quota::quota(&a)?, a.write),
        Generator::Namespace { name, write } => (
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}, "status": {}}),
            write,
        ),
        Generator::Configmap {
            name,
            from_literal,
            from_file,
            write,
        } => {
            let mut data = Map::new();
            let mut binary = Map::new();
            for (k, v) in key_values(&from_literal, "literal")?
                .into_iter()
                .chain(from_files(&from_file)?)
            {
                match String::from_utf8(v) {
                    Ok(s) => {
                        data.insert(k, json!(s));
                    }
                    Err(e) => {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(e.into_bytes());
                        binary.insert(k, json!(b64));
                    }
                }
            }
            let mut obj =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
            if !data.is_empty() {
                obj["data"] = Value::Object(data);
            }
            if !binary.is_empty() {
                obj["binaryData"] = Value::Object(binary);
            }
            (obj, write)
        }
        Generator::Secret(SecretKind::Generic {
            name,
            from_literal,
            from_file,
            secret_type,
            write,
        }) => {
            let mut data = Map::new();
            for (k, v) in key_values(&from_literal, "literal")?
                .into_iter()
                .chain(from_files(&from_file)?)
            {
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            let mut obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
            if let Some(t) = secret_type {
                obj["type"] = json!(t);
            }
            (obj, write)
        }
        Generator::Deployment {
            name,
            image,
            replicas,
            port,
            write,
        } => {
            let containers: Vec<Value> = image
                .iter()
                .map(|img| {
                    let mut c = json!({"name": container_name(img), "image": img, "resources": {}});
                    if let Some(p) = port {
                        c["ports"] = json!([{"containerPort": p}]);
                    }
                    c
                })
                .collect();
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": name, "labels": {"app": name}},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "strategy": {},
                                "template": {"metadata": {"labels": {"app": name}},
                                             "spec": {"containers": containers}}},
                       "status": {}}),
                write,
            )
        }
        Generator::Service(kind) => service(kind)?,
    })
}

/// `create service clusterip|nodeport`.
fn service(kind: ServiceKind) -> Result<(Value, WriteOptions)> {
    let (name, tcp, svc_type, extra, write) = match kind {
        ServiceKind::Clusterip {
            name,
            tcp,
            clusterip,
            write,
        } => (
            name,
            tcp,
            "ClusterIP",
            clusterip.map(|ip| ("clusterIP", json!(ip))),
            write,
        ),
        ServiceKind::Nodeport {
            name,
            tcp,
            node_port,
            write,
        } => (
            name,
            tcp,
            "NodePort",
            node_port.map(|p| ("nodePort", json!(p))),
            write,
        ),
    };
    let mut ports = Vec::new();
    for spec in &tcp {
        let (port, target) = spec.split_once(':').unwrap_or((spec, spec));
        let port_num: i64 = port
            .parse()
            .map_err(|_| Error::usage(format!("invalid port: {spec}")))?;
        let target_value = target
            .parse::<i64>()
            .map_or_else(|_| json!(target), |t| json!(t));
        let mut p = json!({"name": format!("{port}-{target}"), "port": port_num, "protocol": "TCP", "targetPort": target_value});
        if let Some(("nodePort", v)) = &extra {
            p["nodePort"] = v.clone();
        }
        ports.push(p);
    }
    let mut spec = json!({"ports": ports, "selector": {"app": name}, "type": svc_type});
    if let Some(("clusterIP", ip)) = &extra {
        spec["clusterIP"] = ip.clone();
    }
    Ok((
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "labels": {"app": name}},
               "spec": spec, "status": {"loadBalancer": {}}}),
        write,
    ))
}

/// Upstream names a generated container after the image's last path segment.
fn container_name(image: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split(['@', ':']).next().unwrap_or(base);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_objects() {
        assert_eq!(
            container_name("registry.local/team/busybox:1.36"),
            "busybox"
        );
        let (svc, _) = service(ServiceKind::Clusterip {
            name: "s".into(),
            tcp: vec!["80:8080".into()],
            clusterip: None,
            write: WriteOptions::default(),
        })
        .expect("generate");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080})
        );
    }
}
