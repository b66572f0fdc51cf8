//! `kubectl config ...`: view and edit kubeconfig files.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::config::{
    self as kc, named, named_mut, normalized, write_file, ConfigFlags, Kubeconfig,
};
use crate::errors::{Error, Result};
use crate::output::{print_value, OutputFormat};
use crate::printers::tabwrite;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Display merged kubeconfig settings or a specified kubeconfig file
    View {
        /// Remove all information not used by current-context from the output
        #[arg(long)]
        minify: bool,
        /// Display raw byte data and sensitive data
        #[arg(long)]
        raw: bool,
        /// Flatten the resulting kubeconfig file into self-contained output
        #[arg(long)]
        flatten: bool,
        #[arg(short = 'o', long, default_value = "yaml")]
        output: String,
    },
    /// Describe one or many contexts
    GetContexts {
        names: Vec<String>,
        #[arg(long)]
        no_headers: bool,
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Display clusters defined in the kubeconfig
    GetClusters,
    /// Display users defined in the kubeconfig
    GetUsers,
    /// Display the current-context
    CurrentContext,
    /// Set the current-context in a kubeconfig file
    UseContext { name: String },
    /// Set a context entry in kubeconfig
    SetContext {
        name: Option<String>,
        /// Modify the current context
        #[arg(long)]
        current: bool,
    },
    /// Set a cluster entry in kubeconfig
    SetCluster {
        name: String,
        #[arg(long)]
        embed_certs: bool,
        #[arg(long)]
        tls_server_name: Option<String>,
        #[arg(long)]
        proxy_url: Option<String>,
    },
    /// Set a user entry in kubeconfig
    SetCredentials {
        name: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        embed_certs: bool,
    },
    /// Delete the specified context from the kubeconfig
    DeleteContext { name: String },
    /// Delete the specified cluster from the kubeconfig
    DeleteCluster { name: String },
    /// Delete the specified user from the kubeconfig
    DeleteUser { name: String },
}

fn load(flags: &ConfigFlags) -> Result<Kubeconfig> {
    // Writing commands may create the file `--kubeconfig` names.
    if let Some(path) = &flags.kubeconfig {
        if !path.exists() {
            return Ok(Kubeconfig {
                write_target: path.clone(),
                merged: kc::empty_config(),
            });
        }
    }
    Kubeconfig::load(flags)
}

/// The file to edit and its current content.
fn target(config: &Kubeconfig) -> Result<(PathBuf, Value)> {
    let path = config.write_target.clone();
    let value = if path.exists() {
        kc::read_file(&path)?
    } else {
        kc::empty_config()
    };
    Ok((path, value))
}

pub fn run(flags: &ConfigFlags, command: ConfigCommand) -> Result<()> {
    let config = load(flags)?;
    match command {
        ConfigCommand::View {
            minify,
            raw,
            flatten: _,
            output,
        } => view(&config, flags, minify, raw, &output),
        ConfigCommand::GetContexts {
            names,
            no_headers,
            output,
        } => get_contexts(&config, &names, no_headers, output.as_deref()),
        ConfigCommand::GetClusters => list_names(&config, "clusters", "NAME"),
        ConfigCommand::GetUsers => list_names(&config, "users", "NAME"),
        ConfigCommand::CurrentContext => {
            let current = config.current_context();
            if current.is_empty() {
                return Err(Error::usage("current-context is not set"));
            }
            println!("{current}");
            Ok(())
        }
        ConfigCommand::UseContext { name } => {
            if named(&config.merged, "contexts", &name).is_none() {
                return Err(Error::usage(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            let (path, mut file) = target(&config)?;
            file["current-context"] = json!(name);
            write_file(&path, &file)?;
            println!("Switched to context \"{name}\".");
            Ok(())
        }
        ConfigCommand::SetContext { name, current } => {
            let name = match (name, current) {
                (Some(n), false) => n,
                (None, true) => {
                    let c = config.current_context();
                    if c.is_empty() {
                        return Err(Error::usage("no current context is set"));
                    }
                    c.to_string()
                }
                (Some(_), true) => {
                    return Err(Error::usage(
                        "you cannot specify both a context name and --current",
                    ))
                }
                (None, false) => {
                    return Err(Error::usage(
                        "you must specify a non-empty context name or --current",
                    ))
                }
            };
            let (path, mut file) = target(&config)?;
            let (ctx, existed) = named_mut(&mut file, "contexts", "context", &name);
            if let Some(c) = &flags.cluster {
                ctx["cluster"] = json!(c);
            }
            if let Some(u) = &flags.user {
                ctx["user"] = json!(u);
            }
            if let Some(ns) = &flags.namespace {
                ctx["namespace"] = json!(ns);
            }
            write_file(&path, &file)?;
            let verb = if existed { "modified" } else { "created" };
            println!("Context \"{name}\" {verb}.");
            Ok(())
        }
        ConfigCommand::SetCluster {
            name,
            embed_certs,
            tls_server_name,
            proxy_url,
        } => {
            let (path, mut file) = target(&config)?;
            let (cluster, _) = named_mut(&mut file, "clusters", "cluster", &name);
            if let Some(s) = &flags.server {
                cluster["server"] = json!(s);
            }
            if flags.insecure_skip_tls_verify {
                cluster["insecure-skip-tls-verify"] = json!(true);
            }
            if let Some(ca) = &flags.certificate_authority {
                if embed_certs {
                    let data = std::fs::read(ca)?;
                    cluster["certificate-authority-data"] = json!(b64(&data));
                } else {
                    cluster["certificate-authority"] = json!(absolute(ca));
                }
            }
            if let Some(t) = tls_server_name {
                cluster["tls-server-name"] = json!(t);
            }
            if let Some(p) = proxy_url {
                cluster["proxy-url"] = json!(p);
            }
            write_file(&path, &file)?;
            println!("Cluster \"{name}\" set.");
            Ok(())
        }
        ConfigCommand::SetCredentials {
            name,
            username,
            password,
            embed_certs,
        } => {
            let (path, mut file) = target(&config)?;
            let (user, _) = named_mut(&mut file, "users", "user", &name);
            if let Some(t) = &flags.token {
                user["token"] = json!(t);
            }
            if let Some(u) = username {
                user["username"] = json!(u);
            }
            if let Some(p) = password {
                user["password"] = json!(p);
            }
            for (flag, key) in [
                (&flags.client_certificate, "client-certificate"),
                (&flags.client_key, "client-key"),
            ] {
                if let Some(file_path) = flag {
                    if embed_certs {
                        let data = std::fs::read(file_path)?;
                        user[format!("{key}-data")] = json!(b64(&data));
                    } else {
                        user[key] = json!(absolute(file_path));
                    }
                }
            }
            write_file(&path, &file)?;
            println!("User \"{name}\" set.");
            Ok(())
        }
        ConfigCommand::DeleteContext { name } => {
            delete_named(&config, "contexts", "context", &name)
        }
        ConfigCommand::DeleteCluster { name } => {
            delete_named(&config, "clusters", "cluster", &name)
        }
        ConfigCommand::DeleteUser { name } => delete_named(&config, "users", "user", &name),
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn absolute(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

fn delete_named(config: &Kubeconfig, list: &str, item: &str, name: &str) -> Result<()> {
    let (path, mut file) = target(config)?;
    let display = path.display().to_string();
    let Some(entries) = file.get_mut(list).and_then(Value::as_array_mut) else {
        return Err(Error::usage(format!(
            "cannot delete {item} {name}, not in {display}"
        )));
    };
    let before = entries.len();
    entries.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
    if entries.len() == before {
        return Err(Error::usage(format!(
            "cannot delete {item} {name}, not in {display}"
        )));
    }
    if item == "context" && config.current_context() == name {
        eprintln!("warning: this removed your active context, use \"kubectl config use-context\" to select a different one");
    }
    write_file(&path, &file)?;
    println!("deleted {item} {name} from {display}");
    Ok(())
}

fn redact(config: &mut Value) {
    for (list, item, keys) in [
        (
            "users",
            "user",
            &[
                "client-certificate-data",
                "client-key-data",
                "token",
                "password",
            ][..],
        ),
        ("clusters", "cluster", &["certificate-authority-data"][..]),
    ] {
        for entry in config
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            for key in keys {
                if let Some(v) = entry[item].get_mut(*key) {
                    if v.as_str().is_some_and(|s| !s.is_empty()) {
                        let secret = *key == "token" || *key == "password";
                        *v = json!(if secret { "REDACTED" } else { "DATA+OMITTED" });
                    }
                }
            }
        }
    }
}

fn view(
    config: &Kubeconfig,
    flags: &ConfigFlags,
    minify: bool,
    raw: bool,
    output: &str,
) -> Result<()> {
    let mut value = config.merged.clone();
    if minify {
        let ctx_name = config.context_name(flags);
        if ctx_name.is_empty() {
            return Err(Error::usage(
                "current-context must exist in order to minify",
            ));
        }
        let ctx = named(&value, "contexts", &ctx_name)
            .cloned()
            .ok_or_else(|| Error::usage(format!("cannot locate context {ctx_name}")))?;
        let cluster = ctx["context"]["cluster"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let user = ctx["context"]["user"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        value["contexts"] = json!([ctx]);
        value["current-context"] = json!(ctx_name);
        let keep = |list: &str, name: &str| -> Value {
            named(&config.merged, list, name).map_or_else(|| json!([]), |e| json!([e]))
        };
        value["clusters"] = keep("clusters", &cluster);
        value["users"] = keep("users", &user);
    }
    if !raw {
        redact(&mut value);
    }
    let mut value = normalized(&value);
    for (list, _) in kc::NAMED_LISTS {
        if value.get(list).is_none() {
            value[list] = Value::Null;
        }
    }
    if value.get("current-context").is_none() {
        value["current-context"] = json!("");
    }
    let format = OutputFormat::parse(Some(output))?;
    print!("{}", print_value(&format, &value)?);
    Ok(())
}

fn get_contexts(
    config: &Kubeconfig,
    names: &[String],
    no_headers: bool,
    output: Option<&str>,
) -> Result<()> {
    let mut contexts: Vec<Value> = config.merged["contexts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    contexts.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    if !names.is_empty() {
        for n in names {
            if !contexts.iter().any(|c| c["name"] == n.as_str()) {
                return Err(Error::usage(format!("context {n} not found")));
            }
        }
        contexts.retain(|c| names.iter().any(|n| c["name"] == n.as_str()));
    }
    if output == Some("name") {
        for c in &contexts {
            println!("{}", c["name"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    if !no_headers {
        rows.push(
            ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
                .map(str::to_string)
                .to_vec(),
        );
    }
    for c in &contexts {
        let name = c["name"].as_str().unwrap_or_default();
        let current = if name == config.current_context() {
            "*"
        } else {
            ""
        };
        let field = |k: &str| c["context"][k].as_str().unwrap_or_default().to_string();
        rows.push(vec![
            current.to_string(),
            name.to_string(),
            field("cluster"),
            field("user"),
            field("namespace"),
        ]);
    }
    print!("{}", tabwrite(&rows));
    Ok(())
}

fn list_names(config: &Kubeconfig, list: &str, header: &str) -> Result<()> {
    println!("{header}");
    let mut names: Vec<&str> = config.merged[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    names.sort();
    for n in names {
        println!("{n}");
    }
    Ok(())
}
