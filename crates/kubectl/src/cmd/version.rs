//! `kubectl version [--client] [-o json|yaml]`.

use serde_json::{json, Value};

use crate::context::Context;
use crate::errors::{Error, Result};
use crate::printers::yaml::to_yaml;

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// If true, shows client version only (no server required).
    #[arg(long)]
    pub client: bool,
    /// One of 'yaml' or 'json'.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// The Kubernetes release whose kubectl this one mirrors.
pub const GIT_VERSION: &str = "v1.32.0";

fn client_version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rustc",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn run(ctx: &Context, args: VersionArgs) -> Result<()> {
    if let Some(o) = args.output.as_deref() {
        if o != "json" && o != "yaml" {
            return Err(Error::usage("--output must be 'yaml' or 'json'"));
        }
    }
    let mut doc = json!({ "clientVersion": client_version() });
    let mut server_error = None;
    if !args.client {
        match ctx.client().await {
            Ok(client) => match client.get("/version").await {
                Ok(v) => doc["serverVersion"] = v,
                Err(e) => server_error = Some(e),
            },
            Err(e) => server_error = Some(e),
        }
    }
    match args.output.as_deref() {
        Some("json") => {
            let text = serde_json::to_string_pretty(&doc)?;
            println!("{text}");
        }
        Some("yaml") => {
            print!("{}", to_yaml(&doc));
            println!();
        }
        _ => {
            println!("Client Version: {GIT_VERSION}");
            if let Some(server) = doc.get("serverVersion") {
                println!(
                    "Server Version: {}",
                    server["gitVersion"].as_str().unwrap_or_default()
                );
            }
        }
    }
    match server_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
